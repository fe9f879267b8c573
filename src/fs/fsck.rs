//! A consistency check of the blob store against the file contents that use it, shown
//! read-only as `.memfs/fsck` and used by the tests. It is only ever run on demand (never on
//! a hot path): it visits every inode and every blob.
//!
//! Checked:
//! - every live blob's reference count equals the number of pieces of the distinct recipes
//!   that name it (live contents, kept versions, open `.memfs/versions` files);
//! - every chunk a recipe names is in the store, with as many bytes as its piece;
//! - every blob's bytes hash back to its name;
//! - recipes are contiguous from 0 and end at their size;
//! - the store's blob and byte counters, and the file system's dirty-byte counter, equal a
//!   recount.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use super::control::VirtualFile;
use super::inode::Body;
use super::Fs;
use crate::store::blob::short_hash;
use crate::store::{Hash, PieceData, RecipeRef};

/// How many times a check that found problems is run again before they are reported: a
/// change that lands while the check runs (a commit, a close) can make one pass see a blob
/// referenced by a recipe it had not yet collected.
const ATTEMPTS: usize = 3;

/// What `.memfs/fsck` holds.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct StoreCheck {
    /// No problem found.
    pub ok: bool,
    /// One line per problem found (at most `MAX_PROBLEMS`).
    pub problems: Vec<String>,
    /// Distinct recipes visited.
    pub recipes: u64,
    /// Live blobs checked.
    pub blobs: u64,
}

/// Problems listed before the rest are only counted.
const MAX_PROBLEMS: usize = 100;

impl Fs {
    /// Recounts every blob's references over all live recipes and kept versions and compares
    /// them, and the store's counters, with what the store says. Exact on a quiet file
    /// system; with changes running at the same time it retries, and may still report a
    /// difference that was only passing.
    pub fn verify_store(&self) -> StoreCheck {
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

    fn verify_store_once(&self) -> StoreCheck {
        let mut problems = Vec::new();
        // Every distinct recipe (by address: each `Recipe` holds one reference per piece).
        let mut recipes: HashMap<*const crate::store::Recipe, RecipeRef> = HashMap::new();
        let mut add = |r: &RecipeRef| {
            recipes.entry(Arc::as_ptr(r)).or_insert_with(|| r.clone());
        };
        let mut dirty = 0u64;
        let inodes: Vec<_> = self.inodes.iter().map(|e| e.value().clone()).collect();
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
        let open_versions: Vec<_> = self
            .virtual_handles
            .iter()
            .map(|e| e.value().clone())
            .collect();
        for file in &open_versions {
            if let VirtualFile::Version(r) = &**file {
                add(r);
            }
        }

        let mut uses: HashMap<Hash, u64> = HashMap::new();
        for r in recipes.values() {
            let mut at = 0u64;
            for p in r.pieces() {
                if p.start != at {
                    problems.push(format!("recipe piece starts at {} not {at}", p.start));
                }
                at = p.end();
                if let PieceData::Chunk(blob) = &p.data {
                    *uses.entry(*blob.hash()).or_default() += 1;
                    if blob.len() as u64 != p.len {
                        problems.push(format!(
                            "chunk {}: piece of {} B, blob of {} B",
                            short_hash(blob.hash()),
                            p.len,
                            blob.len()
                        ));
                    }
                }
            }
            if at != r.size() {
                problems.push(format!("recipe of size {} ends at {at}", r.size()));
            }
        }

        let blobs = self.store().blobs();
        let mut seen: HashSet<Hash> = HashSet::with_capacity(blobs.len());
        let mut bytes = 0u64;
        for blob in &blobs {
            seen.insert(*blob.hash());
            bytes += blob.len() as u64;
            // `blobs` holds one reference of its own.
            let refs = blob.refcount().saturating_sub(1) as u64;
            let used = uses.get(blob.hash()).copied().unwrap_or(0);
            if refs != used {
                problems.push(format!(
                    "blob {} ({} B): {refs} references, recipes hold {used}",
                    short_hash(blob.hash()),
                    blob.len()
                ));
            }
            if blake3::hash(blob.bytes()).as_bytes() != blob.hash() {
                problems.push(format!(
                    "blob {}: bytes do not hash to its name",
                    short_hash(blob.hash())
                ));
            }
        }
        for hash in uses.keys() {
            if !seen.contains(hash) {
                problems.push(format!(
                    "chunk {} is used but not in the store",
                    short_hash(hash)
                ));
            }
        }
        let stats = self.store().stats();
        if stats.blobs != blobs.len() as u64 || stats.stored_bytes != bytes {
            problems.push(format!(
                "store counters say {} blobs, {} B; recount {} blobs, {bytes} B",
                stats.blobs,
                stats.stored_bytes,
                blobs.len()
            ));
        }
        let counted = self.dirty_bytes.load(Ordering::Relaxed);
        if counted != dirty {
            problems.push(format!(
                "dirty bytes counter {counted}, contents hold {dirty}"
            ));
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
            blobs: blobs.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Caller, FsConfig, ROOT_INO};
    use super::*;

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
        let leaked = fs.store().blobs().pop().unwrap();
        let check = fs.verify_store();
        assert!(!check.ok);
        assert!(check.problems[0].contains("references"), "{check:?}");
        drop(leaked);
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.forget(attr.ino, 1);
        let check = fs.verify_store();
        assert!(check.ok && check.blobs == 0, "{check:?}");
    }
}
