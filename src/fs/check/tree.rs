//! The namespace check: every directory's descendant and link counts against a walk.

use crate::fs::attr::FileKind;
use crate::fs::{Fs, ROOT_INO};

impl Fs {
    /// Walks the whole tree and checks every directory's descendant count and link count
    /// against what the walk finds. Returns the first mismatch.
    pub fn verify_tree(&self) -> std::result::Result<(), String> {
        fn walk(fs: &Fs, ino: u64) -> std::result::Result<u64, String> {
            let inode = fs
                .namespace
                .get_even_poisoned(ino)
                .map_err(|_| format!("inode {ino} missing"))?;
            let children: Vec<(u64, FileKind)> = {
                let data = inode.data.read();
                let dir = data
                    .dir()
                    .map_err(|_| format!("{ino} is not a directory"))?;
                dir.entries().map(|e| (e.ino, e.kind)).collect()
            };
            let mut total = 0u64;
            let mut subdirs = 0u32;
            for (child, kind) in children {
                total += 1;
                if kind == FileKind::Directory {
                    subdirs += 1;
                    let c = fs
                        .namespace
                        .get_even_poisoned(child)
                        .map_err(|_| format!("inode {child} missing"))?;
                    if c.parent() != ino {
                        return Err(format!("dir {child} has parent {} not {ino}", c.parent()));
                    }
                    total += walk(fs, child)?;
                }
            }
            let counted = inode.descendants();
            if counted != total {
                return Err(format!("dir {ino}: count {counted}, walk finds {total}"));
            }
            let nlink = inode.data.read().meta.nlink;
            if nlink != 2 + subdirs {
                return Err(format!(
                    "dir {ino}: nlink {nlink}, expected {}",
                    2 + subdirs
                ));
            }
            Ok(total)
        }
        self.repair_if_needed();
        let _still = self.namespace.still();
        walk(self, ROOT_INO).map(|_| ())
    }
}
