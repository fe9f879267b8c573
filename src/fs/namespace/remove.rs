//! Removing names: unlink and rmdir.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::fs::attr::FileKind;
use crate::fs::budget::entry_cost;
use crate::fs::error::{Errno, Result};
use crate::fs::{Fs, NAME_MAX};

use super::inode::{Body, Inode};
use super::table::Namespace;

impl Fs {
    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove_entry(parent, name, false)
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove_entry(parent, name, true)
    }

    fn remove_entry(&self, parent: u64, name: &[u8], want_dir: bool) -> Result<()> {
        check_removal_name(name, want_dir)?;
        let _tree = self.tree_shared();
        let dir = self.namespace.get(parent)?;
        let now = SystemTime::now();
        let child = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_mut()?;
            let entry = entries.get(name).ok_or(Errno::ENOENT)?;
            let is_dir = entry.kind == FileKind::Directory;
            match (want_dir, is_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            let child = self.namespace.get_even_poisoned(entry.ino)?;
            {
                let mut cdata = child.data.write();
                if is_dir {
                    // A poisoned directory goes with whatever it holds: nothing in it can
                    // be reached to be removed first.
                    if !cdata.dir()?.is_empty() && !child.is_poisoned() {
                        return Err(Errno::ENOTEMPTY);
                    }
                    cdata.meta.nlink = 0;
                    dmeta.nlink -= 1;
                } else {
                    cdata.meta.nlink = cdata.meta.nlink.saturating_sub(1);
                }
                cdata.meta.ctime = now;
            }
            entries.remove(name);
            dmeta.touch_modified(now);
            child
        };
        self.budget.release_meta(entry_cost(name));
        // A healthy child was empty under its lock, so its entry weighs 1 whatever its count
        // says: a change inside it that has already changed its entries may not have
        // counted yet (counts follow after the directory lock is let go, under the shared
        // tree lock), and that change still counts through the child's parent chain. A
        // poisoned one goes with what it holds: its count is exact as of the repair that
        // ran before this request took the tree lock, and a repair follows.
        let weight = if child.is_poisoned() {
            Namespace::weight(&child)
        } else {
            1
        };
        self.namespace.add_descendants(parent, -weight);
        self.namespace.merkle_dir_changed(parent);
        if want_dir && child.is_poisoned() {
            self.discard_below(&child);
            // Entries below it may have been changing concurrently (their own directories
            // are healthy): recount before the next namespace request rather than trust it.
            super::inode::note_damage();
        }
        self.maybe_free(&child);
        Ok(())
    }

    /// Removes every entry below a directory that has just lost its last name (only a
    /// poisoned one can still hold any), freeing what nothing else holds.
    fn discard_below(&self, dir: &Inode) {
        let entries: Vec<_> = match &mut dir.data.write().body {
            Body::Dir(d) => {
                let names: Vec<_> = d.entries().map(|e| e.name.clone()).collect();
                names.iter().filter_map(|n| d.remove(n)).collect()
            }
            _ => return,
        };
        dir.descendants.store(0, Ordering::Release);
        for entry in entries {
            self.budget.release_meta(entry_cost(&entry.name));
            let Ok(child) = self.namespace.get_even_poisoned(entry.ino) else {
                continue;
            };
            if entry.kind == FileKind::Directory {
                child.data.write().meta.nlink = 0;
                self.discard_below(&child);
            } else {
                let mut cdata = child.data.write();
                cdata.meta.nlink = cdata.meta.nlink.saturating_sub(1);
            }
            self.maybe_free(&child);
        }
    }
}

/// The checks of a name to unlink or rmdir (`want_dir`) that come before any lookup: its
/// length, then what Linux answers for a last component "." or ".." (the kernel resolves
/// those itself and never sends them).
pub fn check_removal_name(name: &[u8], want_dir: bool) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    match (name, want_dir) {
        (b".", true) => Err(Errno::EINVAL),
        (b"..", true) => Err(Errno::ENOTEMPTY),
        (b"." | b"..", false) => Err(Errno::EISDIR),
        _ => Ok(()),
    }
}
