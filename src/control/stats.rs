//! `.memfs/stats.json` (and `--stats-out`): statistics of the file system and its store,
//! computed when asked from the core's figures.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::fs::Fs;

/// What `.memfs/stats.json` holds.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Stats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Sum of the sizes of the live files.
    pub logical_bytes: u64,
    /// Bytes written but not yet committed.
    pub dirty_bytes: u64,
    pub versions: u64,
    /// Sum of the sizes of all kept versions.
    pub version_bytes: u64,
    pub blobs: u64,
    /// Unique bytes held in blobs.
    pub stored_bytes: u64,
    /// Bytes all kept recipes refer to (what they would take without dedup, holes excluded).
    pub referenced_bytes: u64,
    /// referenced_bytes / stored_bytes.
    pub dedup_ratio: f64,
    /// Chunk count per log2 bucket of chunk size: key "2^k" counts sizes in [2^k, 2^(k+1)).
    pub chunk_size_histogram: BTreeMap<String, u64>,
    /// Blob count per log2 bucket of reference count.
    pub refcount_histogram: BTreeMap<String, u64>,
    /// Resident memory of the memfs process.
    pub rss_bytes: u64,
    pub rss_per_stored_byte: f64,
    pub chunker: String,
    pub keep_versions: usize,
    /// The cap on what memfs holds (`--max-memory`).
    #[serde(default)]
    pub capacity_bytes: u64,
    /// What memfs holds against the cap: stored and dirty bytes plus the metadata estimate.
    #[serde(default)]
    pub used_bytes: u64,
    /// The metadata part of `used_bytes` (inodes, names, xattrs, versions, blob overhead).
    #[serde(default)]
    pub metadata_bytes: u64,
    /// Old versions dropped to make room for new data.
    #[serde(default)]
    pub versions_dropped_for_space: u64,
    /// What serves the mount: `dev-fuse` or `io-uring` (empty outside a mount).
    #[serde(default)]
    pub transport: String,
    /// The content store's engine (`--store`): where chunks live and how it is doing.
    #[serde(default)]
    pub store: crate::store::StoreReport,
}

fn log2_bucket(v: u64) -> String {
    format!("2^{}", 63 - v.max(1).leading_zeros())
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64
}

/// Statistics of the whole file system and its store, computed now.
pub fn stats(fs: &Fs) -> Stats {
    let census = fs.census();
    let config = fs.config();
    let mut s = Stats {
        files: census.files,
        dirs: census.dirs,
        symlinks: census.symlinks,
        logical_bytes: census.logical_bytes,
        dirty_bytes: fs.dirty_bytes(),
        versions: census.versions,
        version_bytes: census.version_bytes,
        blobs: 0,
        stored_bytes: 0,
        referenced_bytes: 0,
        dedup_ratio: 1.0,
        chunk_size_histogram: Default::default(),
        refcount_histogram: Default::default(),
        rss_bytes: 0,
        rss_per_stored_byte: 0.0,
        chunker: format!(
            "{:?} min {} avg {} max {}",
            config.chunker.kind, config.chunker.min, config.chunker.avg, config.chunker.max
        ),
        keep_versions: config.keep_versions,
        capacity_bytes: fs.capacity(),
        used_bytes: fs.used_bytes(),
        metadata_bytes: fs.metadata_bytes(),
        versions_dropped_for_space: fs.versions_dropped_for_space(),
        transport: String::new(),
        store: fs.store().report(),
    };
    fs.store().for_each_chunk(&mut |chunk| {
        s.blobs += 1;
        s.stored_bytes += chunk.len;
        s.referenced_bytes += chunk.len * chunk.refs;
        *s.chunk_size_histogram
            .entry(log2_bucket(chunk.len))
            .or_default() += 1;
        *s.refcount_histogram
            .entry(log2_bucket(chunk.refs))
            .or_default() += 1;
    });
    if s.stored_bytes > 0 {
        s.dedup_ratio = s.referenced_bytes as f64 / s.stored_bytes as f64;
    }
    s.rss_bytes = rss_bytes();
    if s.stored_bytes > 0 {
        s.rss_per_stored_byte = s.rss_bytes as f64 / s.stored_bytes as f64;
    }
    s
}
