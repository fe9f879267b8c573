//! Counts over the whole tree, for statistics (the control plane's `stats.json` and
//! `--stats-out`). Only computed on demand: it visits every inode.

use crate::fs::namespace::inode::Body;
use crate::fs::Fs;

/// What the live tree holds, counted now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Regular files with at least one name.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Sum of the sizes of the live files.
    pub logical_bytes: u64,
    /// Versions kept by every file, including files being let go.
    pub versions: u64,
    /// Sum of the sizes of all kept versions.
    pub version_bytes: u64,
}

impl Fs {
    /// Counts the files, directories, symlinks and versions the tree holds now.
    pub fn census(&self) -> Census {
        // Every version a close that has returned made is counted.
        self.drain_commits();
        let mut c = Census::default();
        let inodes = self.namespace.collect(|_| true);
        for inode in inodes {
            let data = inode.data.read();
            match &data.body {
                Body::File(f) => {
                    if data.meta.nlink > 0 {
                        c.files += 1;
                        c.logical_bytes += f.content.size();
                    }
                    c.versions += f.history.len() as u64;
                    c.version_bytes += f.history.versions().map(|v| v.size).sum::<u64>();
                }
                Body::Dir(_) => c.dirs += 1,
                Body::Symlink(_) => c.symlinks += 1,
                Body::Special => {}
            }
        }
        c
    }
}
