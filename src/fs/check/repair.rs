//! Repair after a panic: the namespace recounts its trees and the budget its counters, under
//! the exclusive tree lock, before the next namespace change runs (see `Namespace::repair`).
//! Every namespace change takes the tree lock through here.

use crate::fs::namespace::TreeGuard;
use crate::fs::Fs;
use crate::sync::{RwLockReadGuard, RwLockWriteGuard};

impl Fs {
    /// The tree lock, shared, for a namespace change; counts a panic that cuts the change
    /// short. Repairs what an earlier panic left first.
    pub(crate) fn tree_shared(&self) -> TreeGuard<RwLockReadGuard<'_, ()>> {
        self.repair_if_needed();
        self.namespace.tree_shared()
    }

    /// The tree lock, exclusive (a rename between directories); as `tree_shared`.
    pub(crate) fn tree_exclusive(&self) -> TreeGuard<RwLockWriteGuard<'_, ()>> {
        self.repair_if_needed();
        self.namespace.tree_exclusive()
    }

    /// Repairs the counts if a panic may have left them half-updated since the last repair.
    /// One atomic load when none did.
    pub(crate) fn repair_if_needed(&self) {
        self.namespace
            .repair_if_needed(|live| self.budget.recount(live));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::namespace::inode;
    use crate::fs::{Caller, FsConfig, ROOT_INO};

    const WHO: Caller = Caller::ROOT;

    fn check(fs: &Fs) {
        fs.verify_tree().unwrap();
        fs.verify_usage().unwrap();
        let store = fs.verify_store();
        assert!(store.ok, "{store:?}");
    }

    fn counters(fs: &Fs) -> [u64; 3] {
        fs.budget.counters()
    }

    #[test]
    fn repairs_while_other_requests_run_leave_every_count_exact() {
        let fs = Fs::new(FsConfig::default());
        std::thread::scope(|s| {
            for t in 0..3 {
                let fs = &fs;
                s.spawn(move || {
                    let name = format!("t{t}");
                    let dir = fs.mkdir(ROOT_INO, name.as_bytes(), 0o755, WHO).unwrap().ino;
                    for i in 0..150u32 {
                        let name = format!("f{i}");
                        let (attr, fh) = fs
                            .create(dir, name.as_bytes(), 0o644, libc::O_RDWR, WHO)
                            .unwrap();
                        fs.write(fh, 0, &vec![i as u8; 3000]).unwrap();
                        fs.setxattr(attr.ino, b"user.x", b"v", 0).unwrap();
                        fs.flush(fh).unwrap();
                        fs.write(fh, 100, b"dirty again").unwrap();
                        if i % 2 == 0 {
                            fs.unlink(dir, name.as_bytes()).unwrap();
                            fs.forget(attr.ino, 1);
                        }
                        fs.release(fh).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..100 {
                    inode::note_damage();
                    fs.repair_if_needed();
                    std::thread::yield_now();
                }
            });
        });
        // What the counters say now must be what a fresh walk finds.
        let kept = counters(&fs);
        fs.namespace.repair_now(|live| fs.budget.recount(live));
        assert_eq!(kept, counters(&fs));
        check(&fs);
        assert_eq!(
            fs.namespace.get(ROOT_INO).unwrap().descendants(),
            3 + 3 * 75
        );
    }

    // The injection points exist in debug builds only.
    #[cfg(debug_assertions)]
    #[test]
    fn a_panic_halfway_through_a_change_poisons_what_it_held_and_the_counts_are_repaired() {
        use crate::fs::Errno;
        use std::panic::{catch_unwind, AssertUnwindSafe};

        // Names no other test uses, so the injection points fire only here.
        std::env::set_var(
            "MEMFS_TEST_PANIC_IN",
            "mkdir:zz-unit-panic-dir,write:zz-unit-panic-bytes",
        );
        let fs = Fs::new(FsConfig::default());
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap().ino;
        let (keep, fh) = fs
            .create(ROOT_INO, b"keep", 0o644, libc::O_RDWR, WHO)
            .unwrap();
        fs.write(fh, 0, b"kept").unwrap();
        fs.release(fh).unwrap();

        // mkdir panics with the entry set in d, before d's times and the counts.
        let out = catch_unwind(AssertUnwindSafe(|| {
            fs.mkdir(d, b"zz-unit-panic-dir", 0o755, WHO)
        }));
        assert!(out.is_err());
        assert_eq!(fs.getattr(d).unwrap_err(), Errno::EIO);
        assert_eq!(fs.lookup(d, b"zz-unit-panic-dir").unwrap_err(), Errno::EIO);
        assert_eq!(fs.opendir(d, 0).unwrap_err(), Errno::EIO);
        assert_eq!(fs.mkdir(d, b"more", 0o755, WHO).unwrap_err(), Errno::EIO);
        // The walk sees the new entry; the repair made the counts agree with it.
        check(&fs);
        assert_eq!(fs.namespace.get(ROOT_INO).unwrap().descendants(), 3);
        let fh = fs.open(keep.ino, libc::O_RDONLY).unwrap();
        assert_eq!(fs.read(fh, 0, 100).unwrap(), b"kept");
        fs.release(fh).unwrap();

        // A write panics holding the file's lock, before the dirty bytes are counted.
        let (victim, fh) = fs
            .create(ROOT_INO, b"victim", 0o644, libc::O_RDWR, WHO)
            .unwrap();
        fs.write(fh, 0, &[7u8; 10_000]).unwrap();
        let out = catch_unwind(AssertUnwindSafe(|| {
            fs.write(fh, 20_000, b"zz-unit-panic-bytes")
        }));
        assert!(out.is_err());
        assert_eq!(fs.read(fh, 0, 10).unwrap_err(), Errno::EIO);
        assert_eq!(fs.write(fh, 0, b"x").unwrap_err(), Errno::EIO);
        assert_eq!(fs.getattr(victim.ino).unwrap_err(), Errno::EIO);
        assert_eq!(fs.open(victim.ino, libc::O_RDONLY).unwrap_err(), Errno::EIO);
        // Never committed as a version.
        assert_eq!(fs.release(fh).unwrap_err(), Errno::EIO);
        check(&fs);

        // The damage can be removed, and the rest goes on.
        fs.unlink(ROOT_INO, b"victim").unwrap();
        fs.forget(victim.ino, 1);
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.forget(d, 1);
        check(&fs);
        assert_eq!(fs.namespace.get(ROOT_INO).unwrap().descendants(), 1);
        let e = fs.mkdir(ROOT_INO, b"e", 0o755, WHO).unwrap().ino;
        fs.mkdir(e, b"f", 0o755, WHO).unwrap();
        check(&fs);
        assert_eq!(fs.namespace.get(ROOT_INO).unwrap().descendants(), 3);
    }
}
