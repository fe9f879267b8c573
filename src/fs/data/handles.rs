//! The handle table: open files and directories by handle number, and the inode counters
//! (opens, writers) that opening and closing keep.

use std::sync::Arc;

use dashmap::DashMap;

use crate::fs::error::{Errno, Result};
use crate::fs::namespace::inode::{log_poisoned, Inode};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// An open file or directory.
#[derive(Debug)]
pub struct Handle {
    pub inode: Arc<Inode>,
    /// The `open(2)` flags.
    pub flags: i32,
    /// Whether any write went through this handle (a commit at close is owed).
    pub wrote: AtomicBool,
}

/// Every open handle, by number.
pub struct Handles {
    open: DashMap<u64, Arc<Handle>>,
    next_fh: AtomicU64,
}

impl Default for Handles {
    fn default() -> Self {
        Handles {
            open: DashMap::new(),
            next_fh: AtomicU64::new(1),
        }
    }
}

impl Handles {
    /// Opens a handle on `inode` with `open(2)` flags `flags`; returns its number.
    pub fn open(&self, inode: Arc<Inode>, flags: i32) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        inode.opens.fetch_add(1, Ordering::AcqRel);
        if is_writable(flags) {
            inode.writers.fetch_add(1, Ordering::AcqRel);
        }
        self.open.insert(
            fh,
            Arc::new(Handle {
                inode,
                flags,
                wrote: AtomicBool::new(false),
            }),
        );
        fh
    }

    /// An open handle: EIO once its inode is poisoned (closing it still works).
    pub fn get(&self, fh: u64) -> Result<Arc<Handle>> {
        let handle = self
            .open
            .get(&fh)
            .map(|r| r.value().clone())
            .ok_or(Errno::EBADF)?;
        if handle.inode.is_poisoned() {
            log_poisoned(&handle.inode);
            return Err(Errno::EIO);
        }
        Ok(handle)
    }

    /// Closes handle `fh`. The caller frees its inode if nothing else holds it.
    pub fn close(&self, fh: u64) -> Result<Arc<Handle>> {
        let (_, handle) = self.open.remove(&fh).ok_or(Errno::EBADF)?;
        if is_writable(handle.flags) {
            handle.inode.writers.fetch_sub(1, Ordering::AcqRel);
        }
        handle.inode.opens.fetch_sub(1, Ordering::AcqRel);
        Ok(handle)
    }

    /// Number of open handles.
    pub fn len(&self) -> usize {
        self.open.len()
    }
}

/// Whether `open(2)` flags allow writing.
pub fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}
