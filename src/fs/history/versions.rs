//! A file's kept versions as seen from outside the core: listed (`memfs log`), described
//! one by one, and opened for reading. An open [`VersionReader`] keeps its version's bytes
//! readable after the file drops it (`--keep-versions`, the memory cap, unlink), and the
//! core knows every open reader so that `verify_store` counts the chunks they hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use serde::Serialize;

use crate::fs::error::{Errno, Result};
use crate::fs::namespace::inode::Body;
use crate::fs::{Fs, ReadBytes};
use crate::store::{Recipe, RecipeRef};

/// One version of a file, as `memfs log` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct VersionInfo {
    pub version: u64,
    /// Commit time, seconds since the epoch.
    pub time: f64,
    pub size: u64,
    pub chunks: u64,
    /// Bytes of chunks this version added to the store.
    pub new_bytes: u64,
    /// `close`, `fsync` or `truncate`.
    pub cause: String,
}

/// What a kept version is, without reading its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionStat {
    pub number: u64,
    pub size: u64,
    /// Commit time.
    pub time: SystemTime,
}

/// The recipes of the open version readers, so a store check can count what they hold.
#[derive(Debug, Default)]
pub(crate) struct OpenVersions {
    next_id: AtomicU64,
    open: DashMap<u64, RecipeRef>,
}

impl OpenVersions {
    /// The recipes open readers hold now.
    pub(crate) fn recipes(&self) -> Vec<RecipeRef> {
        self.open.iter().map(|e| e.value().clone()).collect()
    }
}

/// One version of a file, open for reading; readable until dropped, whatever happens to the
/// file.
#[derive(Debug)]
pub struct VersionReader {
    id: u64,
    recipe: RecipeRef,
    registry: Arc<OpenVersions>,
}

impl VersionReader {
    /// Up to `size` bytes from `offset`; fewer at the end of the version. EIO when the
    /// store cannot serve a chunk.
    pub fn read(&self, offset: u64, size: u32) -> Result<ReadBytes> {
        ReadBytes::of_recipe(&self.recipe, offset, size.into())
    }
}

impl Drop for VersionReader {
    fn drop(&mut self) {
        self.registry.open.remove(&self.id);
    }
}

fn seconds(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl Fs {
    /// The versions a regular file keeps, oldest first. ENODATA when `ino` is not a regular
    /// file.
    pub fn versions(&self, ino: u64) -> Result<Vec<VersionInfo>> {
        let inode = self.namespace.get(ino)?;
        self.wait_for_commits(&inode)?;
        let data = inode.data.read();
        let Body::File(f) = &data.body else {
            return Err(Errno::ENODATA);
        };
        let zero_cut = self.config().chunker.zero_cut() as u64;
        Ok(f.history
            .versions()
            .map(|v| VersionInfo {
                version: v.number,
                time: seconds(v.time),
                size: v.size,
                chunks: v.recipe.chunk_count(zero_cut),
                new_bytes: v.new_bytes,
                cause: v.cause.name().to_string(),
            })
            .collect())
    }

    /// Number, size and time of each version a regular file keeps, oldest first (cheaper
    /// than [`Fs::versions`]: no chunk counts). ENODATA when `ino` is not a regular file.
    pub fn version_stats(&self, ino: u64) -> Result<Vec<VersionStat>> {
        let inode = self.namespace.get(ino)?;
        self.wait_for_commits(&inode)?;
        let data = inode.data.read();
        let Body::File(f) = &data.body else {
            return Err(Errno::ENODATA);
        };
        Ok(f.history
            .versions()
            .map(|v| VersionStat {
                number: v.number,
                size: v.size,
                time: v.time,
            })
            .collect())
    }

    /// Version `number` of a regular file. ENOENT when the file does not keep it, ENODATA
    /// when `ino` is not a regular file.
    pub fn version_stat(&self, ino: u64, number: u64) -> Result<VersionStat> {
        let inode = self.namespace.get(ino)?;
        self.wait_for_commits(&inode)?;
        let data = inode.data.read();
        let Body::File(f) = &data.body else {
            return Err(Errno::ENODATA);
        };
        let v = f.history.get(number).ok_or(Errno::ENOENT)?;
        Ok(VersionStat {
            number: v.number,
            size: v.size,
            time: v.time,
        })
    }

    /// Opens version `number` of a regular file for reading. Errors as
    /// [`Fs::version_stat`].
    pub fn open_version(&self, ino: u64, number: u64) -> Result<VersionReader> {
        let inode = self.namespace.get(ino)?;
        self.wait_for_commits(&inode)?;
        let data = inode.data.read();
        let Body::File(f) = &data.body else {
            return Err(Errno::ENODATA);
        };
        // The reader holds its own references (a copy of the recipe), so the store's counts
        // see them and dropping the version meanwhile frees nothing the reader still needs.
        let recipe = Arc::new(Recipe::clone(
            &f.history.get(number).ok_or(Errno::ENOENT)?.recipe,
        ));
        let registry = self.open_versions.clone();
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        registry.open.insert(id, recipe.clone());
        Ok(VersionReader {
            id,
            recipe,
            registry,
        })
    }
}
