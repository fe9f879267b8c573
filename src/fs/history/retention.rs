//! Retention under pressure: when growth does not fit, old versions are dropped, oldest
//! commit first and never a file's newest, and the operation is tried once more.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::fs::attr::FileKind;
use crate::fs::budget::{version_cost, Fail, BLOB_BYTES};
use crate::fs::error::{Errno, Result};
use crate::fs::namespace::inode::Body;
use crate::fs::Fs;
use crate::store::{ChunkId, ContentStore, PieceData, Recipe, RecipeRef};

/// Dropping versions for room frees at least this much more than asked (at most 1/16 of
/// the cap), so a run of writes on a full file system does not walk the inodes each time.
const PRUNE_SLACK: u64 = 1 << 20;

/// Bytes that dropping some of one file's recipes would free: the chunks whose every
/// reference they hold, each with its overhead. `dropped` are the recipes that go, `kept`
/// the file's recipes that stay; a recipe also kept (the same `Arc`) frees nothing. A
/// recipe holds one reference per piece however many holders share it, so each counts once.
/// Any other holder of a chunk (another file, an open version file with its own copy of a
/// recipe) shows in the store's count and keeps the chunk.
pub fn bytes_freed(store: &dyn ContentStore, dropped: &[&RecipeRef], kept: &[&RecipeRef]) -> u64 {
    chunks_freed(store, dropped, kept)
        .map(|len| len.saturating_add(BLOB_BYTES))
        .sum()
}

/// The data bytes of the chunks [`bytes_freed`] counts, without their overhead.
pub fn data_freed(store: &dyn ContentStore, dropped: &[&RecipeRef], kept: &[&RecipeRef]) -> u64 {
    chunks_freed(store, dropped, kept).sum()
}

/// The lengths of the chunks whose every reference `dropped` holds (see [`bytes_freed`]).
fn chunks_freed<'a>(
    store: &'a dyn ContentStore,
    dropped: &[&'a RecipeRef],
    kept: &[&RecipeRef],
) -> impl Iterator<Item = u64> + 'a {
    let mut visited: HashSet<*const Recipe> = kept.iter().map(|r| Arc::as_ptr(r)).collect();
    // Per chunk: references the dropped recipes hold, and its length.
    let mut held: HashMap<&ChunkId, (u64, u64)> = HashMap::new();
    for recipe in dropped {
        if !visited.insert(Arc::as_ptr(recipe)) {
            continue;
        }
        for piece in recipe.pieces() {
            if let PieceData::Chunk(chunk) = &piece.data {
                held.entry(chunk.id()).or_insert((0, chunk.len() as u64)).0 += 1;
            }
        }
    }
    held.into_iter()
        .filter(move |(id, (refs, _))| store.refs(id) == *refs)
        .map(|(_, (_, len))| len)
}

impl Fs {
    /// Runs `op`; if it is short of room, drops old versions to make some and runs it once
    /// more (told it is the second try). Still short: ENOSPC. `op` must return holding no
    /// lock.
    pub(crate) fn with_room<T>(
        &self,
        mut op: impl FnMut(bool) -> std::result::Result<T, Fail>,
    ) -> Result<T> {
        match op(false) {
            Ok(v) => Ok(v),
            Err(Fail::Errno(e)) => Err(e),
            Err(Fail::Short(short)) => {
                self.make_room(short);
                match op(true) {
                    Ok(v) => Ok(v),
                    Err(Fail::Errno(e)) => Err(e),
                    Err(Fail::Short(_)) => Err(Errno::ENOSPC),
                }
            }
        }
    }

    /// Drops old versions, oldest commit first and never a file's newest, until `short`
    /// bytes (and some slack) are freed or none is left. Returns whether it dropped any.
    /// The caller holds no inode lock. Only runs under pressure, so it may walk the inodes.
    pub(crate) fn make_room(&self, short: u64) -> bool {
        let Some(_alone) = self.budget.prune_turn() else {
            return false;
        };
        let start = self.budget.used();
        let goal = short.saturating_add(PRUNE_SLACK.min(self.budget.capacity() / 16));
        // A poisoned file's history may be half-changed: left alone until it is freed.
        let files = self
            .namespace
            .collect(|i| i.kind == FileKind::Regular && !i.is_poisoned());
        let mut old: Vec<(SystemTime, u64, u64, usize)> = Vec::new();
        for (i, inode) in files.iter().enumerate() {
            let data = inode.data.read();
            if let Body::File(f) = &data.body {
                let n = f.history.len().saturating_sub(1);
                old.extend(
                    f.history
                        .versions()
                        .take(n)
                        .map(|v| (v.time, inode.ino, v.number, i)),
                );
            }
        }
        old.sort_unstable();
        let mut dropped = 0u64;
        for (_, _, number, i) in old {
            let version = match &mut files[i].data.write().body {
                Body::File(f) => f.history.remove_old(number),
                _ => None,
            };
            if let Some(v) = version {
                self.budget.release_meta(version_cost(&v.recipe));
                self.budget.release_prunable(1);
                dropped += 1;
                drop(v);
            }
            if start.saturating_sub(self.budget.used()) >= goal {
                break;
            }
        }
        self.budget.note_dropped_for_space(dropped);
        dropped > 0
    }
}
