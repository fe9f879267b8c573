//! Open files: open, read, write, flush/fsync/release, fallocate, lseek, copy_file_range.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::attr::FileKind;
use super::content::{checked_end, MAX_FILE_SIZE};
use super::error::{Errno, Result};
use super::inode::Inode;
use super::usage::{bytes_freed, version_cost, Fail};
use super::version::CommitCause;
use super::{is_writable, test_panic_point, Fs};

/// `fallocate` modes memfs knows (the rest answer EOPNOTSUPP, as on tmpfs).
const FALLOC_FL_KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
const FALLOC_FL_PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE;

/// The largest piece `copy_file_range` moves at once.
const COPY_PIECE: u64 = 1 << 20;

impl Fs {
    /// Opens a regular file. `O_TRUNC` on a writable open empties it.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        let inode = self.inode(ino)?;
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
            self.add_dirty(delta);
        }
        let fh = self.new_handle(inode, flags);
        if writable && flags & libc::O_TRUNC != 0 {
            if let Ok(h) = self.handle(fh) {
                h.wrote.store(true, Ordering::Release);
            }
        }
        Ok(fh)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let handle = self.handle(fh)?;
        let data = handle.inode.data.read();
        Ok(data.file()?.read(offset, size as usize))
    }

    pub fn write(&self, fh: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        let handle = self.handle(fh)?;
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
        self.with_room(|_| {
            let mut data = handle.inode.data.write();
            let (meta, content) = data.file_mut()?;
            checked_end(offset, bytes.len() as u64)?;
            // Charged before the bytes are taken, so concurrent writers cannot together
            // pass the cap.
            let growth = content.write_growth(offset, bytes.len() as u64);
            self.charge_dirty(growth)?;
            match content.write(offset, bytes) {
                Ok(delta) => {
                    test_panic_point("write", bytes);
                    self.add_dirty(delta.saturating_sub(growth as i64))
                }
                Err(e) => {
                    self.release_dirty(growth);
                    return Err(e.into());
                }
            }
            meta.touch_modified(SystemTime::now());
            Ok(())
        })?;
        handle.wrote.store(true, Ordering::Release);
        Ok(written)
    }

    /// `close(2)` of one file descriptor of the handle. A handle that may write commits
    /// the file's changes as a new version (close-to-open); returns its number. ENOSPC when
    /// the commit does not fit: the changes stay, uncommitted.
    pub fn flush(&self, fh: u64) -> Result<Option<u64>> {
        let handle = self.handle(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        self.commit(&handle.inode, CommitCause::Close)
    }

    /// `fsync`: commits the file's changes as a new version; returns its number.
    pub fn fsync(&self, fh: u64, _datasync: bool) -> Result<Option<u64>> {
        let handle = self.handle(fh)?;
        self.commit(&handle.inode, CommitCause::Fsync)
    }

    /// The last close of a handle. Changes that reached memfs after the last flush (the
    /// kernel writing back mmap'd pages) are committed here.
    pub fn release(&self, fh: u64) -> Result<Option<u64>> {
        let handle = self.drop_handle(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        self.commit(&handle.inode, CommitCause::Close)
    }

    /// Commits a file's uncommitted changes as a new version, if there are any. Returns the
    /// new version's number. ENOSPC if the result does not fit even after dropping old
    /// versions: then nothing changes, the changes stay dirty and readable.
    pub(super) fn commit(&self, inode: &Inode, cause: CommitCause) -> Result<Option<u64>> {
        // Half-changed content is never made a version.
        if inode.is_poisoned() {
            return Err(Errno::EIO);
        }
        self.with_room(|second_try| self.try_commit(inode, cause, second_try))
    }

    /// One try at a commit. Its new chunks are stored first, then the result is checked
    /// against the cap: what it adds (new chunks, the version's metadata) less what it lets
    /// go (the dirty bytes, and the old versions it drops). On a `second_try` it may drop
    /// all of this file's older versions, oldest first, as far as that is needed to fit: once
    /// the new version is in, none of them is the file's content any more.
    fn try_commit(
        &self,
        inode: &Inode,
        cause: CommitCause,
        second_try: bool,
    ) -> std::result::Result<Option<u64>, Fail> {
        let mut data = inode.data.write();
        let Ok(state) = data.file_state_mut() else {
            return Ok(None);
        };
        let dirty = state.content.dirty_bytes();
        let Some(prepared) = state
            .content
            .prepare_commit(&self.config().chunker, self.store().as_ref())
        else {
            return Ok(None);
        };
        let Some(recipe) = prepared.recipe.clone() else {
            // The same bytes as before: no version, the dirty data just goes.
            state.content.install(prepared);
            self.release_dirty(dirty);
            return Ok(None);
        };
        let added = version_cost(&recipe);
        drop(recipe);
        let old = state.history.len();
        let keep = self.config().keep_versions.max(1);
        // The oldest `must` versions go in any case (beyond --keep-versions); up to `may`
        // if that is what it takes to fit.
        let must = (old + 1).saturating_sub(keep);
        let may = if second_try { old } else { must };
        let cap = self.config().capacity;
        let projected = self
            .used_bytes()
            .saturating_sub(dirty)
            .saturating_add(added);
        let mut drop_n = must;
        if projected > cap {
            loop {
                let after = projected.saturating_sub(self.dropping_frees(state, drop_n));
                if after <= cap {
                    break;
                }
                if drop_n >= may {
                    // Dropping `prepared` frees the chunks only it held.
                    return Err(Fail::Short(after - cap));
                }
                drop_n += 1;
            }
        }
        let Some(committed) = state.content.install(prepared) else {
            return Ok(None);
        };
        self.release_dirty(dirty);
        let number = state.history.push(
            committed.recipe,
            cause,
            committed.new_bytes,
            SystemTime::now(),
        );
        self.add_meta(added);
        if old > 0 {
            // The previous newest is an old version now.
            self.add_prunable(1);
        }
        for _ in 0..drop_n {
            if let Some(v) = state.history.pop_oldest() {
                self.release_meta(version_cost(&v.recipe));
                self.release_prunable(1);
            }
        }
        Ok(Some(number))
    }

    /// What dropping the oldest `n` versions of a file would free once a commit has replaced
    /// its content: their metadata and the chunks no one else holds.
    fn dropping_frees(&self, state: &super::inode::FileState, n: usize) -> u64 {
        if n == 0 {
            return 0;
        }
        let versions: Vec<_> = state.history.versions().take(n).collect();
        let meta: u64 = versions.iter().map(|v| version_cost(&v.recipe)).sum();
        let dropped: Vec<_> = versions.iter().map(|v| &v.recipe).collect();
        // The content's base is not kept: the commit replaces it (when the newest version
        // goes too, its recipe, which is the base's, goes with both holders).
        let kept: Vec<_> = state
            .history
            .versions()
            .skip(n)
            .map(|v| &v.recipe)
            .collect();
        meta.saturating_add(bytes_freed(self.store().as_ref(), &dropped, &kept))
    }

    /// `fallocate`. Allocating (mode 0 or `FALLOC_FL_KEEP_SIZE`) fails with ENOSPC when the
    /// holes in the range would not fit, as on tmpfs; memfs still stores holes as nothing,
    /// so no room is set aside. Punching a hole always succeeds.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        let handle = self.handle(fh)?;
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
                self.add_dirty(delta);
            } else {
                self.room_for(content.hole_bytes(offset, end))?;
                if mode == 0 && end > content.size() {
                    let delta = content.truncate(end)?;
                    self.add_dirty(delta);
                }
            }
            meta.touch_modified(now);
            Ok(())
        })?;
        handle.wrote.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether bytes written through `fh`'s file may still sit in the kernel's cache: the
    /// writeback cache is on and a writer has the file open.
    pub fn may_cache_writes(&self, fh: u64) -> Result<bool> {
        let handle = self.handle(fh)?;
        Ok(self.config().writes_cached_above && handle.inode.writers.load(Ordering::Acquire) > 0)
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE` (the kernel answers the other whences).
    /// `written_back`: the caller had the kernel write back the file's cached pages, so our
    /// holes and size are the file's.
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32, written_back: bool) -> Result<i64> {
        let handle = self.handle(fh)?;
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
