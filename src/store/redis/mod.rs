//! The content store on Redis Cluster (or one Redis server): chunk bytes live on the
//! servers, keyed by their blake3 id and written with set-if-absent, so identical chunks
//! written by any mount are stored once. This process keeps the index of the chunks it
//! references (with their exact counts, as `MemoryStore` does), the bytes not yet
//! acknowledged by the servers (`unsaved`, served to readers from memory), and a cache of
//! recent chunks bounded by `--cache-memory`.
//!
//! Writes leave the request path: a new chunk is queued in the outbox and sent by the
//! uploader thread (`upload.rs`); a release when the last reference goes, likewise. Reads
//! of chunks neither unsaved nor cached fetch them in one pipelined round trip and check
//! that they hash to their id, so a read answers the right bytes or EIO. Cross-mount
//! garbage collection (holders per chunk, per-mount leases, sweeps) is in `lease.rs` and
//! `link.rs`; the README ("Beyond one machine") gives the argument for its safety.
//!
//! Lock order: as in `MemoryStore`, the index's shard locks are innermost for the core.
//! Under one, `put` and `reclaim` take the outbox's mutex (innermost of all) and touch the
//! `unsaved` map, whose shard locks are never held while calling out.

mod lease;
mod link;
mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::mapref::entry::Entry;
use parking_lot::{Condvar, Mutex};
use redis::Value;

use super::chunk::{find_or_insert, Chunk, ChunkId, ChunkIndex, ChunkRef};
use super::engine::{ChunkInfo, ContentStore, Put, StoreError, StoreReport, StoreStats};
use super::recipe::{PieceData, Recipe};
use link::{data_key, holders_key, Link};
use upload::{Op, Outboxes};

/// What `--store redis://...` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    /// `host:port` of each server given (any of a cluster's nodes will do).
    pub nodes: Vec<String>,
    /// The bound on the cache of chunks read or written recently.
    pub cache_bytes: u64,
    /// A mount that does not renew its lease for this long is taken for dead.
    pub lease: Duration,
    /// Replicas that must acknowledge each batch of writes (`WAIT`) before its chunks count
    /// as stored; 0 to not wait.
    pub replicas: u32,
}

/// Uploader threads, each with its own connection: more round trips in flight at once.
const UPLOADERS: usize = 3;

pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

impl RedisConfig {
    /// Parses `redis://HOST:PORT[,HOST:PORT...][?lease=SECONDS&replicas=N]`.
    pub fn parse(spec: &str, cache_bytes: u64) -> Result<RedisConfig, String> {
        let rest = spec.strip_prefix("redis://").ok_or_else(|| {
            format!("--store {spec:?}: expected redis://HOST:PORT[,HOST:PORT...]")
        })?;
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        let nodes: Vec<String> = hosts
            .trim_end_matches('/')
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if nodes.is_empty() || nodes.iter().any(|n| !n.contains(':')) {
            return Err(format!("--store {spec:?}: each server must be HOST:PORT"));
        }
        let mut config = RedisConfig {
            nodes,
            cache_bytes,
            lease: DEFAULT_LEASE,
            replicas: 0,
        };
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "lease" => {
                    let secs: f64 =
                        value
                            .parse()
                            .ok()
                            .filter(|s: &f64| *s >= 0.3)
                            .ok_or_else(|| {
                                format!(
                                    "--store: lease={value:?} is not a number of seconds >= 0.3"
                                )
                            })?;
                    config.lease = Duration::from_secs_f64(secs);
                }
                "replicas" => {
                    config.replicas = value
                        .parse()
                        .map_err(|_| format!("--store: replicas={value:?} is not a count"))?;
                }
                _ => return Err(format!("--store: unknown option {key:?} (lease, replicas)")),
            }
        }
        Ok(config)
    }
}

/// The cache's measure of a chunk: its bytes.
#[derive(Clone)]
struct ByLen;

impl quick_cache::Weighter<ChunkId, Bytes> for ByLen {
    fn weight(&self, _: &ChunkId, bytes: &Bytes) -> u64 {
        bytes.len() as u64
    }
}

/// How the servers have been doing, for the log and stats.json.
#[derive(Default)]
struct Health {
    lost: AtomicBool,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    sent: AtomicU64,
    received: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    mounts_swept: AtomicU64,
    references_swept: AtomicU64,
    replica_shortfalls: AtomicU64,
    replicas_short: AtomicBool,
}

impl Health {
    fn failed(&self, doing: &str, e: &redis::RedisError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(format!("{doing}: {e}"));
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::error!("lost the store while {doing} ({e}); retrying with backoff");
        }
    }

    fn ok(&self) {
        if self.lost.swap(false, Ordering::AcqRel) {
            tracing::warn!("the store answers again");
        }
    }
}

/// What the store shares with its uploader and lease threads.
struct Shared {
    nodes: Vec<String>,
    mount: String,
    lease: Duration,
    replicas: u32,
    /// Chunks this mount wrote and the servers have not acknowledged yet.
    unsaved: ChunkIndex<Bytes>,
    unsaved_bytes: AtomicU64,
    cache: quick_cache::sync::Cache<ChunkId, Bytes, ByLen>,
    outbox: Outboxes,
    /// Counts the uploader's finished batches, to wait on.
    stored: (Mutex<u64>, Condvar),
    health: Health,
    /// The threads finish their work and exit.
    stopping: AtomicBool,
    /// The uploader drops what it cannot send (unmount with the servers lost).
    giving_up: AtomicBool,
}

impl Shared {
    fn keep_unsaved(&self, id: ChunkId, bytes: Bytes) {
        let len = bytes.len() as u64;
        if self.unsaved.insert(id, bytes).is_none() {
            self.unsaved_bytes.fetch_add(len, Ordering::Relaxed);
        }
    }

    fn forget_unsaved(&self, id: &ChunkId) {
        if let Some((_, bytes)) = self.unsaved.remove(id) {
            self.unsaved_bytes
                .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
        }
    }
}

pub struct RedisStore {
    index: ChunkIndex<Arc<Chunk>>,
    chunks: AtomicU64,
    bytes: AtomicU64,
    shared: Arc<Shared>,
    /// Connections for reads, taken one per read and put back.
    readers: Mutex<Vec<Link>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    this: Weak<RedisStore>,
}

impl RedisStore {
    /// Connects, registers this mount and starts the uploader and lease threads. An error
    /// (one line) when no server answers.
    pub fn connect(config: &RedisConfig) -> Result<Arc<RedisStore>, String> {
        let fail = |e: redis::RedisError| {
            format!("cannot use the store at {}: {e}", config.nodes.join(","))
        };
        let mut link = Link::connect(&config.nodes).map_err(fail)?;
        let uploader_links = (0..UPLOADERS)
            .map(|_| Link::connect(&config.nodes))
            .collect::<redis::RedisResult<Vec<Link>>>()
            .map_err(fail)?;
        let shared = Arc::new(Shared {
            nodes: config.nodes.clone(),
            mount: mount_id(),
            lease: config.lease,
            replicas: config.replicas,
            unsaved: ChunkIndex::default(),
            unsaved_bytes: AtomicU64::new(0),
            cache: quick_cache::sync::Cache::with_weighter(
                (config.cache_bytes / 16384).max(16) as usize,
                config.cache_bytes.max(1),
                ByLen,
            ),
            outbox: Outboxes::new(UPLOADERS),
            stored: (Mutex::new(0), Condvar::new()),
            health: Health::default(),
            stopping: AtomicBool::new(false),
            giving_up: AtomicBool::new(false),
        });
        lease::register(&mut link, &shared).map_err(fail)?;
        // Dead mounts' garbage goes before this one adds its own.
        lease::sweep(&mut link, &shared).map_err(fail)?;
        let store = Arc::new_cyclic(|this| RedisStore {
            index: ChunkIndex::default(),
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            shared: shared.clone(),
            readers: Mutex::new(vec![link]),
            threads: Mutex::new(Vec::new()),
            this: this.clone(),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| format!("cannot start the store's {name} thread: {e}"))
        };
        let mut threads = Vec::new();
        for (shard, link) in uploader_links.into_iter().enumerate() {
            let shared = shared.clone();
            let run = Box::new(move || upload::run(shared, shard, link));
            threads.push(spawn(&format!("memfs-upload-{shard}"), run)?);
        }
        let renew = {
            let shared = shared.clone();
            let weak = Arc::downgrade(&store);
            spawn("memfs-lease", Box::new(move || lease::run(shared, weak)))?
        };
        threads.push(renew);
        store.threads.lock().extend(threads);
        tracing::info!(
            mount = %shared.mount,
            nodes = %config.nodes.join(","),
            "chunks are stored on redis"
        );
        Ok(store)
    }

    /// Queues a claim of every chunk this mount references (after losing its lease).
    fn claim_all(&self) {
        for entry in self.index.iter() {
            let id = *entry.key();
            if !self.shared.unsaved.contains_key(&id) {
                self.shared.outbox.push(id, Op::Claim);
            }
        }
    }

    /// A read connection: one from the pool, or a new one.
    fn reader(&self) -> redis::RedisResult<Link> {
        if let Some(link) = self.readers.lock().pop() {
            return Ok(link);
        }
        Link::connect(&self.shared.nodes)
    }

    /// Fetches `ids` from the servers in one pipeline (a second try on a fresh connection).
    fn fetch(&self, ids: &[ChunkId]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut last = None;
        for _ in 0..2 {
            let cmds = ids
                .iter()
                .map(|id| {
                    let mut c = redis::cmd("GET");
                    c.arg(data_key(id));
                    c
                })
                .collect();
            let got = self.reader().and_then(|mut link| {
                let replies = link.run(cmds)?;
                self.readers.lock().push(link);
                Ok(replies)
            });
            match got {
                Ok(replies) => {
                    self.shared.health.ok();
                    return Ok(replies.into_iter().map(bulk).collect());
                }
                Err(e) => {
                    self.shared.health.failed("reading chunks", &e);
                    last = Some(e);
                }
            }
        }
        let why = last.map_or_else(String::new, |e| e.to_string());
        Err(StoreError::Unavailable(why))
    }

    /// The bytes of `id` if this process has them (unsaved or cached).
    fn local(&self, id: &ChunkId) -> Option<Bytes> {
        if let Some(b) = self.shared.unsaved.get(id) {
            return Some(b.clone());
        }
        self.shared.cache.get(id)
    }
}

fn bulk(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

/// A fresh random id for this mount (its lease and chunk set on the servers).
fn mount_id() -> String {
    let mut seed = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
    if got.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        seed[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h = blake3::Hasher::new();
    h.update(&seed).update(host.as_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.finalize().to_hex()[..24].to_string()
}

/// How many times an unmount tries to release the mount's chunks before it leaves them to
/// the lease's expiry.
const RELEASE_TRIES: usize = 3;

impl ContentStore for RedisStore {
    /// No `put_cuts` of its own: a slice of a write buffer would keep the whole buffer
    /// alive while it waits for its upload or sits in the bounded cache, so a new chunk is
    /// copied.
    fn put(&self, bytes: &[u8]) -> Put {
        let id = ChunkId::of(bytes);
        find_or_insert(&self.index, id, || {
            let this: Weak<dyn ContentStore> = self.this.clone();
            let len = bytes.len();
            let bytes = Bytes::copy_from_slice(bytes);
            // Under the shard lock, so the outbox sees puts and releases of one chunk in
            // the order the index made them.
            self.shared.keep_unsaved(id, bytes.clone());
            self.shared.outbox.push(id, Op::Put(bytes));
            self.chunks.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(len as u64, Ordering::Relaxed);
            Chunk::remote(id, len, this)
        })
    }

    fn reference(&self, id: &ChunkId) -> Option<ChunkRef> {
        self.index.get(id).map(|c| c.acquire())
    }

    fn get(&self, id: &ChunkId) -> Option<Bytes> {
        self.load(std::slice::from_ref(id)).ok()?.pop()
    }

    fn load(&self, ids: &[ChunkId]) -> Result<Vec<Bytes>, StoreError> {
        let health = &self.shared.health;
        let mut found: HashMap<ChunkId, Bytes> = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            if found.contains_key(id) || missing.contains(id) {
                continue;
            }
            match self.local(id) {
                Some(b) => {
                    health.hits.fetch_add(1, Ordering::Relaxed);
                    found.insert(*id, b);
                }
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            health
                .misses
                .fetch_add(missing.len() as u64, Ordering::Relaxed);
            let fetched = self.fetch(&missing)?;
            for (id, bytes) in missing.iter().zip(fetched) {
                let bytes = bytes.ok_or(StoreError::Missing(*id))?;
                health
                    .received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if ChunkId::of(&bytes) != *id {
                    return Err(StoreError::Corrupt(*id));
                }
                let bytes = Bytes::from(bytes);
                self.shared.cache.insert(*id, bytes.clone());
                found.insert(*id, bytes);
            }
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn wait_stored(&self, recipe: &Recipe, patience: Duration) -> Result<(), StoreError> {
        let shared = &self.shared;
        // Time counts only while the store is lost: a slow upload is waited for.
        let mut lost_for = Duration::ZERO;
        let mut waiting: Vec<ChunkId> = recipe
            .pieces()
            .iter()
            .filter_map(|p| match &p.data {
                PieceData::Chunk(c) => Some(*c.id()),
                PieceData::Zeros => None,
            })
            .filter(|id| shared.unsaved.contains_key(id))
            .collect();
        loop {
            waiting.retain(|id| shared.unsaved.contains_key(id));
            if waiting.is_empty() {
                return Ok(());
            }
            let lost = shared.health.lost.load(Ordering::Acquire);
            if lost && lost_for >= patience {
                let why = shared.health.last_error.lock().clone().unwrap_or_default();
                return Err(StoreError::Unavailable(why));
            }
            let started = Instant::now();
            let mut generation = shared.stored.0.lock();
            shared
                .stored
                .1
                .wait_for(&mut generation, Duration::from_millis(50));
            if lost {
                lost_for += started.elapsed();
            }
        }
    }

    fn verify_chunks(&self, ids: &[ChunkId]) -> Vec<String> {
        let mut problems = Vec::new();
        let remote: Vec<ChunkId> = ids
            .iter()
            .filter(|id| match self.shared.unsaved.get(*id) {
                Some(bytes) => {
                    if ChunkId::of(&bytes) != **id {
                        problems.push(format!(
                            "unsaved blob {}: bytes do not hash to its name",
                            id.short()
                        ));
                    }
                    false
                }
                None => true,
            })
            .copied()
            .collect();
        let mount = self.shared.mount.clone();
        for page in remote.chunks(256) {
            let mut cmds = Vec::with_capacity(page.len() * 2);
            for id in page {
                let mut get = redis::cmd("GET");
                get.arg(data_key(id));
                let mut member = redis::cmd("SISMEMBER");
                member.arg(holders_key(id)).arg(&mount);
                cmds.push(get);
                cmds.push(member);
            }
            let replies = match self.reader().and_then(|mut l| {
                let r = l.run(cmds)?;
                self.readers.lock().push(l);
                Ok(r)
            }) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("cannot check chunks on the store: {e}"));
                    return problems;
                }
            };
            let mut replies = replies.into_iter();
            for id in page {
                let bytes = replies.next().and_then(bulk);
                let held = matches!(replies.next(), Some(Value::Int(1)));
                // Released since it was listed: nothing to check.
                if !self.index.contains_key(id) {
                    continue;
                }
                match bytes {
                    None => problems.push(format!(
                        "chunk {} is referenced but not on the store",
                        id.short()
                    )),
                    Some(b) if ChunkId::of(&b) != *id => problems.push(format!(
                        "chunk {} on the store does not hash to its key",
                        id.short()
                    )),
                    Some(_) => {}
                }
                if !held {
                    problems.push(format!(
                        "the store does not list this mount as a holder of chunk {}",
                        id.short()
                    ));
                }
            }
        }
        problems
    }

    fn refs(&self, id: &ChunkId) -> u64 {
        self.index.get(id).map_or(0, |c| c.refs())
    }

    fn contains(&self, id: &ChunkId) -> bool {
        self.index.contains_key(id)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            chunks: self.chunks.load(Ordering::Relaxed),
            stored_bytes: self.bytes.load(Ordering::Relaxed),
            resident_bytes: self.shared.unsaved_bytes.load(Ordering::Relaxed),
            // Its chunks are copies.
            held_twice_bytes: 0,
        }
    }

    fn report(&self) -> StoreReport {
        let h = &self.shared.health;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreReport {
            kind: "redis".into(),
            nodes: self.shared.nodes.clone(),
            state: if h.lost.load(Ordering::Acquire) {
                "lost"
            } else {
                "ok"
            }
            .into(),
            chunks: load(&self.chunks),
            bytes: load(&self.bytes),
            unsaved_chunks: self.shared.unsaved.len() as u64,
            unsaved_bytes: load(&self.shared.unsaved_bytes),
            cache_bytes: self.shared.cache.weight(),
            cache_capacity: self.shared.cache.capacity(),
            cache_hits: load(&h.hits),
            cache_misses: load(&h.misses),
            bytes_sent: load(&h.sent),
            bytes_received: load(&h.received),
            errors: load(&h.errors),
            last_error: h.last_error.lock().clone(),
            lease_seconds: self.shared.lease.as_secs_f64(),
            mounts_swept: load(&h.mounts_swept),
            references_swept: load(&h.references_swept),
            // Chunk bytes live on the servers; what this mount holds of them is
            // `unsaved_bytes` and `cache_bytes`.
            held_bytes: 0,
            unused_buffer_bytes: 0,
        }
    }

    fn shutdown(&self, patience: Duration) {
        let shared = &self.shared;
        let deadline = Instant::now() + patience;
        while (shared.outbox.len() > 0 || !shared.unsaved.is_empty()) && Instant::now() < deadline {
            let mut generation = shared.stored.0.lock();
            shared
                .stored
                .1
                .wait_for(&mut generation, Duration::from_millis(50));
        }
        let unsaved = shared.unsaved.len();
        if unsaved > 0 {
            tracing::error!(unsaved, "unmounting with chunks the store never took");
            shared.giving_up.store(true, Ordering::Release);
        }
        shared.stopping.store(true, Ordering::Release);
        shared.outbox.wake();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        // This mount's namespace goes with it: hand back every chunk it held. Every step of
        // the release can be repeated, so one cut short is redone on a fresh link: a socket
        // with a timeout is not restarted after an interruption, and on rings this thread
        // saw EINTR at the unmount.
        let release = || {
            Link::connect(&shared.nodes)
                .and_then(|mut l| lease::release_all(&mut l, &shared.mount, true))
        };
        let mut released = release();
        for _ in 1..RELEASE_TRIES {
            match &released {
                Ok(_) => break,
                Err(e) => tracing::warn!("releasing this mount's chunks ({e}); trying again"),
            }
            released = release();
        }
        match released {
            Ok(n) => tracing::info!(
                references = n.unwrap_or(0),
                "released this mount's chunks on the store"
            ),
            Err(e) => tracing::error!(
                "could not release this mount's chunks ({e}); they go when its lease expires"
            ),
        }
    }

    fn for_each_chunk(&self, visit: &mut dyn FnMut(&ChunkInfo)) {
        for entry in self.index.iter() {
            visit(&ChunkInfo {
                id: *entry.key(),
                refs: entry.refs(),
                len: entry.len() as u64,
            });
        }
    }

    fn reclaim(&self, id: &ChunkId) {
        // As in `MemoryStore`: under the shard's write lock no reference can be taken, so a
        // count of zero stays zero; the release is queued under it too (see `put_cow`).
        if let Entry::Occupied(e) = self.index.entry(*id) {
            if e.get().refs() == 0 {
                let (_, chunk) = e.remove_entry();
                self.shared.forget_unsaved(id);
                self.shared.outbox.push(*id, Op::Release);
                self.chunks.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_with_their_options() {
        let c = RedisConfig::parse("redis://a:1,b:2/?lease=2.5&replicas=1", 9).unwrap();
        assert_eq!(c.nodes, vec!["a:1".to_string(), "b:2".to_string()]);
        assert_eq!(c.lease, Duration::from_millis(2500));
        assert_eq!(c.replicas, 1);
        assert_eq!(c.cache_bytes, 9);
        let d = RedisConfig::parse("redis://h:7000", 1).unwrap();
        assert_eq!((d.lease, d.replicas), (DEFAULT_LEASE, 0));
        for bad in [
            "http://h:1",
            "redis://",
            "redis://host",
            "redis://h:1?lease=0",
            "redis://h:1?replicas=x",
            "redis://h:1?colour=red",
        ] {
            assert!(RedisConfig::parse(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunk_ids_round_trip_through_their_hex_keys() {
        let id = ChunkId::of(b"chunk");
        assert_eq!(link::parse_id(id.to_string().as_bytes()), Some(id));
        assert_eq!(link::parse_id(b"zz"), None);
        // Both keys of a chunk share a hash tag, so one script may touch both.
        let tag = |k: String| k[k.find('{').unwrap()..].to_string();
        assert_eq!(tag(data_key(&id)), tag(holders_key(&id)));
    }
}
