//! Open files: open, read, write, flush/fsync/release, fallocate, lseek, copy_file_range.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::fs::attr::FileKind;
use crate::fs::error::{Errno, Result};
use crate::fs::history::{CommitCause, CHECKPOINT_MIN};
use crate::fs::{test_panic_point, Fs};

use super::content::{checked_end, MAX_FILE_SIZE};
use super::handles::{is_writable, Handle};
use super::ReadBytes;

/// `fallocate` modes memfs knows (the rest answer EOPNOTSUPP, as on tmpfs).
const FALLOC_FL_KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
const FALLOC_FL_PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE;

/// The largest piece `copy_file_range` moves at once.
const COPY_PIECE: u64 = 1 << 20;

impl Fs {
    /// Opens a regular file. `O_TRUNC` on a writable open empties it.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        let inode = self.namespace.get(ino)?;
        match inode.kind {
            FileKind::Regular => {}
            FileKind::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENXIO),
        }
        let writable = is_writable(flags);
        if writable && flags & libc::O_TRUNC != 0 {
            let mut data = inode.data.write();
            let (meta, content) = data.file_mut()?;
            let delta = content.truncate(0)?;
            meta.touch_modified(SystemTime::now());
            self.budget.add_dirty(delta);
            drop(data);
            self.namespace.merkle_changed(&inode);
        }
        let fh = self.handles.open(inode, flags);
        if writable && flags & libc::O_TRUNC != 0 {
            if let Ok(h) = self.handles.get(fh) {
                h.wrote.store(true, Ordering::Release);
            }
        }
        Ok(fh)
    }

    /// Up to `size` bytes from `offset`, in a buffer of their own (copy_file_range, tests).
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        self.read_bytes(fh, offset, size).map(ReadBytes::into_vec)
    }

    /// Up to `size` bytes from `offset`, answered from the chunks where it can (see
    /// [`ReadBytes`]): the read path of the mount.
    pub fn read_bytes(&self, fh: u64, offset: u64, size: u32) -> Result<ReadBytes> {
        let handle = self.handles.get(fh)?;
        let data = handle.inode.data.read();
        data.file()?.read_bytes(offset, size as usize)
    }

    pub fn write(&self, fh: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        let handle = self.handles.get(fh)?;
        // As Linux's generic_write_checks: EFBIG at or past the largest file size, and a
        // write that would cross it is cut short (the kernel cuts such writes before they
        // reach memfs; other callers get the same answer).
        if offset >= MAX_FILE_SIZE && !bytes.is_empty() {
            return Err(Errno::EFBIG);
        }
        let bytes = &bytes[..bytes
            .len()
            .min((MAX_FILE_SIZE - offset.min(MAX_FILE_SIZE)) as usize)];
        let written = u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)?;
        let mut checkpoint = false;
        self.with_room(|_| {
            let mut data = handle.inode.data.write();
            let (meta, content) = data.file_mut()?;
            checked_end(offset, bytes.len() as u64)?;
            // Charged before the bytes are taken, so concurrent writers cannot together
            // pass the cap.
            let growth = content.write_growth(offset, bytes.len() as u64);
            self.budget.charge_dirty(growth)?;
            match content.write(offset, bytes) {
                Ok(delta) => {
                    test_panic_point("write", bytes);
                    self.budget.add_dirty(delta.saturating_sub(growth as i64))
                }
                Err(e) => {
                    self.budget.release_dirty(growth);
                    return Err(e.into());
                }
            }
            meta.touch_modified(SystemTime::now());
            checkpoint = content.live_dirty_bytes() >= CHECKPOINT_MIN;
            Ok(())
        })?;
        if checkpoint {
            self.checkpoint(&handle.inode);
        }
        self.namespace.merkle_changed(&handle.inode);
        handle.wrote.store(true, Ordering::Release);
        Ok(written)
    }

    /// `close(2)` of one file descriptor of the handle. A handle that may write commits
    /// the file's changes as a new version (close-to-open); returns its number. ENOSPC when
    /// the commit does not fit: the changes stay, uncommitted.
    pub fn flush(&self, fh: u64) -> Result<Option<u64>> {
        let handle = self.handles.get(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        self.commit(&handle.inode, CommitCause::Close)
    }

    /// How long an `fsync` waits for a lost store to come back before it answers EIO.
    const FSYNC_STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    /// `fsync`: commits the file's changes as a new version; returns its number. With a
    /// remote store it also waits until that version is installed and its chunks are
    /// stored on the servers (EIO while they cannot be reached).
    pub fn fsync(&self, fh: u64, _datasync: bool) -> Result<Option<u64>> {
        let handle = self.handles.get(fh)?;
        let number = self.commit(&handle.inode, CommitCause::Fsync)?;
        if self.store.is_remote() {
            self.wait_for_commits(&handle.inode)?;
            let base = handle.inode.data.read().file()?.base().clone();
            self.store
                .wait_stored(&base, Self::FSYNC_STORE_PATIENCE)
                .map_err(crate::fs::error::store_failed)?;
        }
        Ok(number)
    }

    /// The last close of a handle. Changes that reached memfs after the last flush (the
    /// kernel writing back mmap'd pages) are committed here.
    pub fn release(&self, fh: u64) -> Result<Option<u64>> {
        let handle = self.close_handle(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        self.commit(&handle.inode, CommitCause::Close)
    }

    /// Closes handle `fh`, freeing its inode if that was the last thing holding it.
    pub(crate) fn close_handle(&self, fh: u64) -> Result<std::sync::Arc<Handle>> {
        let handle = self.handles.close(fh)?;
        self.maybe_free(&handle.inode);
        Ok(handle)
    }

    /// `fallocate`. Allocating (mode 0 or `FALLOC_FL_KEEP_SIZE`) fails with ENOSPC when the
    /// holes in the range would not fit, as on tmpfs; memfs still stores holes as nothing,
    /// so no room is set aside. Punching a hole always succeeds.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        let handle = self.handles.get(fh)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // Linux refuses a hole punch without KEEP_SIZE before it looks at the range.
        if mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let end = checked_end(offset, len)?;
        let punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        if mode != 0 && mode != FALLOC_FL_KEEP_SIZE && mode != punch {
            // Checked first, as before: a type error still wins over a bad mode.
            handle.inode.data.read().file()?;
            return Err(Errno::EOPNOTSUPP);
        }
        self.with_room(|_| {
            let mut data = handle.inode.data.write();
            let (meta, content) = data.file_mut()?;
            let now = SystemTime::now();
            if mode == punch {
                let delta = content.punch_hole(offset, len);
                self.budget.add_dirty(delta);
            } else {
                self.budget.room_for(content.hole_bytes(offset, end))?;
                if mode == 0 && end > content.size() {
                    let delta = content.truncate(end)?;
                    self.budget.add_dirty(delta);
                }
            }
            meta.touch_modified(now);
            Ok(())
        })?;
        self.namespace.merkle_changed(&handle.inode);
        handle.wrote.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether bytes written through `fh`'s file may still sit in the kernel's cache: the
    /// writeback cache is on and a writer has the file open.
    pub fn may_cache_writes(&self, fh: u64) -> Result<bool> {
        let handle = self.handles.get(fh)?;
        Ok(self.config().writes_cached_above && handle.inode.writers.load(Ordering::Acquire) > 0)
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE` (the kernel answers the other whences).
    /// `written_back`: the caller had the kernel write back the file's cached pages, so our
    /// holes and size are the file's.
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32, written_back: bool) -> Result<i64> {
        let handle = self.handles.get(fh)?;
        let offset = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
        // Bytes a writer wrote may still wait in the kernel's cache, up to an end of file
        // only the kernel knows, where our holes and size would hide them from `cp`/`tar`.
        // Unless they were written back, call all of the file from `offset` on data, to an
        // end we cannot name: the only answers that never skip data (a copier reads to the
        // end of the file).
        let coarse = !written_back && self.may_cache_writes(fh)?;
        let data = handle.inode.data.read();
        let content = data.file()?;
        let found = match whence {
            libc::SEEK_DATA if coarse => offset,
            libc::SEEK_HOLE if coarse => i64::MAX as u64,
            _ if offset >= content.size()
                && matches!(whence, libc::SEEK_DATA | libc::SEEK_HOLE) =>
            {
                return Err(Errno::ENXIO)
            }
            libc::SEEK_DATA => content.seek_data(offset)?,
            libc::SEEK_HOLE => content.seek_hole(offset)?,
            _ => return Err(Errno::EINVAL),
        };
        i64::try_from(found).map_err(|_| Errno::EINVAL)
    }

    /// Copies up to `len` bytes between two open files; returns the bytes copied.
    pub fn copy_file_range(
        &self,
        fh_in: u64,
        offset_in: u64,
        fh_out: u64,
        offset_out: u64,
        len: u64,
    ) -> Result<u64> {
        self.copy_into(fh_out, offset_out, len, |done, piece| {
            self.read(fh_in, offset_in.saturating_add(done), piece)
        })
    }

    /// Copies up to `len` bytes into an open file from a source that need not be one of the
    /// core's files: `read(done, piece)` gives up to `piece` bytes from `done` bytes into
    /// the source (empty at its end). Returns the bytes copied.
    pub fn copy_into(
        &self,
        fh_out: u64,
        offset_out: u64,
        len: u64,
        mut read: impl FnMut(u64, u32) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        checked_end(offset_out, len.min(COPY_PIECE))?;
        let mut copied = 0u64;
        while copied < len {
            let piece = (len - copied).min(COPY_PIECE) as u32;
            let bytes = read(copied, piece)?;
            if bytes.is_empty() {
                break;
            }
            let n = match self.write(fh_out, offset_out + copied, &bytes) {
                Ok(n) => n,
                // What was copied stays copied (a short count, as write(2) gives).
                Err(_) if copied > 0 => break,
                Err(e) => return Err(e),
            };
            copied += n as u64;
            if (n as usize) < piece as usize {
                break;
            }
        }
        Ok(copied)
    }
}
