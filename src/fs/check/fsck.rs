//! A consistency check of the content store against the file contents that use it, shown
//! by the control plane as `fsck` and used by the tests. It is only ever run on demand (never on
//! a hot path): it visits every inode and every stored chunk.
//!
//! Checked:
//! - every stored chunk's reference count, as the store keeps it, equals a fresh count of
//!   the pieces of the distinct recipes that name it (live contents, kept versions, open
//!   `.memfs/versions` files, snapshots);
//! - every chunk a recipe names is in the store, with as many bytes as its piece;
//! - every stored chunk's bytes hash back to its id;
//! - recipes are contiguous from 0 and end at their size;
//! - the store's chunk and byte counters, and the file system's dirty-byte counter, equal a
//!   recount;
//! - the root's cached Merkle hash equals one computed afresh (every cache made stale first),
//!   which covers every cached hash on the way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::fs::namespace::inode::Body;
use crate::fs::namespace::merkle::hex;
use crate::fs::{Fs, ROOT_INO};
use crate::store::{ChunkId, ChunkInfo, PieceData, RecipeRef};

/// How many times a check that found problems is run again before they are reported: a
/// change that lands while the check runs (a commit, a close) can make one pass see a chunk
/// referenced by a recipe it had not yet collected.
const ATTEMPTS: usize = 3;

/// The result of a store check (what the control plane shows as `fsck`).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct StoreCheck {
    /// No problem found.
    pub ok: bool,
    /// One line per problem found (at most `MAX_PROBLEMS`).
    pub problems: Vec<String>,
    /// Distinct recipes visited.
    pub recipes: u64,
    /// Stored chunks checked (named `blobs` in `.memfs/fsck`).
    pub blobs: u64,
}

/// Problems listed before the rest are only counted.
const MAX_PROBLEMS: usize = 100;

impl Fs {
    /// Recounts every chunk's references over all live recipes and kept versions and
    /// compares them, and the store's counters, with what the store says. Exact on a quiet file
    /// system; with changes running at the same time it retries, and may still report a
    /// difference that was only passing.
    pub fn verify_store(&self) -> StoreCheck {
        // A commit in a worker's hands holds chunks no recipe holds yet.
        self.drain_commits();
        self.repair_if_needed();
        let mut check = self.verify_store_once();
        for _ in 1..ATTEMPTS {
            if check.ok {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            check = self.verify_store_once();
        }
        check
    }

    /// The root's cached Merkle hash against a fresh computation (O(tree), like the rest).
    fn verify_merkle(&self) -> std::result::Result<(), String> {
        let cached = self
            .merkle_hash(ROOT_INO)
            .map_err(|e| format!("merkle: {e:?}"))?;
        self.namespace.merkle_forget_all();
        let fresh = self
            .merkle_hash(ROOT_INO)
            .map_err(|e| format!("merkle: {e:?}"))?;
        if cached != fresh {
            return Err(format!(
                "merkle: cached root hash {}, computed afresh {}",
                hex(&cached),
                hex(&fresh)
            ));
        }
        Ok(())
    }

    fn verify_store_once(&self) -> StoreCheck {
        let mut problems = Vec::new();
        // Every distinct recipe (by address: each `Recipe` holds one reference per piece).
        let mut recipes: HashMap<*const crate::store::Recipe, RecipeRef> = HashMap::new();
        let mut add = |r: &RecipeRef| {
            recipes.entry(Arc::as_ptr(r)).or_insert_with(|| r.clone());
        };
        let mut dirty = 0u64;
        let inodes = self.namespace.collect(|_| true);
        for inode in &inodes {
            let data = inode.data.read();
            if let Body::File(f) = &data.body {
                add(f.content.base());
                dirty += f.content.dirty_bytes();
                for v in f.history.versions() {
                    add(&v.recipe);
                }
            }
        }
        for r in &self.open_versions.recipes() {
            add(r);
        }
        for r in &self.snapshot_recipes() {
            add(r);
        }

        let mut uses: HashMap<ChunkId, u64> = HashMap::new();
        for r in recipes.values() {
            let mut at = 0u64;
            for p in r.pieces() {
                if p.start != at {
                    problems.push(format!("recipe piece starts at {} not {at}", p.start));
                }
                at = p.end();
                if let PieceData::Chunk(chunk) = &p.data {
                    *uses.entry(*chunk.id()).or_default() += 1;
                    if chunk.len() as u64 != p.len {
                        problems.push(format!(
                            "chunk {}: piece of {} B, blob of {} B",
                            chunk.id().short(),
                            p.len,
                            chunk.len()
                        ));
                    }
                }
            }
            if at != r.size() {
                problems.push(format!("recipe of size {} ends at {at}", r.size()));
            }
        }

        let store = self.store();
        let mut stored: Vec<ChunkInfo> = Vec::new();
        store.for_each_chunk(&mut |c| stored.push(*c));
        let mut seen: HashSet<ChunkId> = HashSet::with_capacity(stored.len());
        let mut bytes = 0u64;
        for c in &stored {
            seen.insert(c.id);
            bytes += c.len;
            let used = uses.get(&c.id).copied().unwrap_or(0);
            if c.refs != used {
                problems.push(format!(
                    "blob {} ({} B): {} references, recipes hold {used}",
                    c.id.short(),
                    c.len,
                    c.refs
                ));
            }
        }
        // Every chunk's bytes hash back to its id (a remote store checks its server's copy).
        let ids: Vec<ChunkId> = stored.iter().map(|c| c.id).collect();
        problems.extend(store.verify_chunks(&ids));
        for id in uses.keys() {
            if !seen.contains(id) {
                problems.push(format!("chunk {} is used but not in the store", id.short()));
            }
        }
        let stats = store.stats();
        if stats.chunks != stored.len() as u64 || stats.stored_bytes != bytes {
            problems.push(format!(
                "store counters say {} blobs, {} B; recount {} blobs, {bytes} B",
                stats.chunks,
                stats.stored_bytes,
                stored.len()
            ));
        }
        let counted = self.budget.dirty();
        if counted != dirty {
            problems.push(format!(
                "dirty bytes counter {counted}, contents hold {dirty}"
            ));
        }
        if let Err(problem) = self.verify_merkle() {
            problems.push(problem);
        }
        if problems.len() > MAX_PROBLEMS {
            let more = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(format!("... and {more} more"));
        }
        StoreCheck {
            ok: problems.is_empty(),
            problems,
            recipes: recipes.len() as u64,
            blobs: stored.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Caller, FsConfig};

    #[test]
    fn a_fresh_and_a_used_file_system_check_clean_and_a_leak_is_found() {
        let fs = Fs::new(FsConfig::default());
        assert!(fs.verify_store().ok);
        let (attr, fh) = fs
            .create(ROOT_INO, b"f", 0o644, libc::O_RDWR, Caller::ROOT)
            .unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs.write(fh, 0, &bytes).unwrap();
        // Uncommitted bytes are counted too.
        assert!(fs.verify_store().ok);
        fs.flush(fh).unwrap();
        fs.write(fh, 1000, b"changed").unwrap();
        fs.release(fh).unwrap();
        let check = fs.verify_store();
        assert!(check.ok, "{check:?}");
        assert!(check.blobs > 0 && check.recipes >= 2);
        // A reference no recipe accounts for is reported.
        let mut any = None;
        fs.store().for_each_chunk(&mut |c| any = Some(c.id));
        let leaked = fs.store().reference(&any.unwrap()).unwrap();
        let check = fs.verify_store();
        assert!(!check.ok);
        assert!(check.problems[0].contains("references"), "{check:?}");
        drop(leaked);
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.forget(attr.ino, 1);
        let check = fs.verify_store();
        assert!(check.ok && check.blobs == 0, "{check:?}");
    }

    #[test]
    fn stats_and_fsck_leave_every_count_as_it_was() {
        let fs = Fs::new(FsConfig::default());
        let (attr, fh) = fs
            .create(ROOT_INO, b"f", 0o644, libc::O_RDWR, Caller::ROOT)
            .unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 241) as u8).collect();
        fs.write(fh, 0, &bytes).unwrap();
        fs.flush(fh).unwrap();
        fs.write(fh, 150_000, b"a second version").unwrap();
        fs.release(fh).unwrap();
        let counts = || {
            let mut all = Vec::new();
            fs.store().for_each_chunk(&mut |c| all.push(*c));
            all.sort_unstable_by_key(|c| c.id);
            all
        };
        let before = counts();
        assert!(before.iter().any(|c| c.refs > 1), "{before:?}");
        let stats = crate::control::stats(&fs);
        assert_eq!(stats.blobs, before.len() as u64);
        let referenced: u64 = before.iter().map(|c| c.len * c.refs).sum();
        assert_eq!(stats.referenced_bytes, referenced);
        assert!(fs.verify_store().ok);
        assert_eq!(counts(), before);
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.forget(attr.ino, 1);
        assert!(counts().is_empty());
    }
}
