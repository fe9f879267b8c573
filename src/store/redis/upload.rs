//! Writes to the servers, off the request path: what changed in this mount's references
//! waits in the [`Outbox`] (the latest change per chunk wins) and one uploader thread sends
//! it in batches, each a few pipelined round trips, retrying a failed batch with backoff
//! until it is acknowledged.
//!
//! Every change is idempotent (a set add or remove, SET NX), which is what lets the outbox
//! keep only the latest change per chunk and the uploader resend a batch after an error.
//! The order of the round trips of one batch is what keeps a killed mount from leaking:
//! a chunk enters the mount's own set (`memfs:m:MOUNT`) before the mount becomes one of
//! its holders, and leaves the set only after the mount stopped holding it, so the set
//! always names every chunk a sweeper must release for a dead mount (see `lease.rs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use redis::Value;

use super::link::{chunk_script, mount_chunks_key, Link, CLAIM_SCRIPT, PUT_SCRIPT, RELEASE_SCRIPT};
use super::Shared;
use crate::store::ChunkId;

/// What a batch sends at most: enough to hide the round trips, small enough to retry.
const BATCH_CHUNKS: usize = 512;
const BATCH_BYTES: usize = 8 << 20;
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The change to send for one chunk.
#[derive(Clone)]
pub(super) enum Op {
    /// This mount holds the chunk: store the bytes if absent and add the mount as a holder.
    Put(Bytes),
    /// This mount no longer holds it.
    Release,
    /// This mount holds it again after losing its lease; the bytes must still be there.
    Claim,
}

/// One outbox per uploader thread. A chunk always goes through the same one (by its id),
/// so the changes of one chunk are sent in the order they were made, while different
/// chunks go out over several connections at once.
pub(super) struct Outboxes(Vec<Outbox>);

impl Outboxes {
    pub(super) fn new(n: usize) -> Outboxes {
        Outboxes((0..n.max(1)).map(|_| Outbox::default()).collect())
    }

    /// Queues a change; it replaces a change of the same chunk not sent yet.
    pub(super) fn push(&self, id: ChunkId, op: Op) {
        let shard = id.as_bytes()[0] as usize % self.0.len();
        self.0[shard].push(id, op);
    }

    /// Changes not sent yet, in all of them.
    pub(super) fn len(&self) -> usize {
        self.0.iter().map(Outbox::len).sum()
    }

    pub(super) fn wake(&self) {
        self.0.iter().for_each(Outbox::wake);
    }
}

#[derive(Default)]
pub(super) struct Outbox {
    ops: Mutex<HashMap<ChunkId, Op>>,
    ready: Condvar,
}

impl Outbox {
    fn push(&self, id: ChunkId, op: Op) {
        self.ops.lock().insert(id, op);
        self.ready.notify_one();
    }

    fn len(&self) -> usize {
        self.ops.lock().len()
    }

    fn wake(&self) {
        self.ready.notify_all();
    }

    /// Up to a batch of changes; waits up to `wait` for the first one.
    fn take(&self, wait: Duration) -> Vec<(ChunkId, Op)> {
        let mut ops = self.ops.lock();
        if ops.is_empty() {
            self.ready.wait_for(&mut ops, wait);
        }
        let mut bytes = 0;
        let ids: Vec<ChunkId> = ops
            .iter()
            .take_while(|(_, op)| {
                if let Op::Put(b) = op {
                    bytes += b.len();
                }
                bytes <= BATCH_BYTES
            })
            .take(BATCH_CHUNKS)
            .map(|(id, _)| *id)
            .collect();
        // A single chunk over the byte limit still goes.
        let ids = if ids.is_empty() {
            ops.keys().take(1).copied().collect()
        } else {
            ids
        };
        ids.into_iter()
            .filter_map(|id| ops.remove(&id).map(|op| (id, op)))
            .collect()
    }
}

/// An uploader thread: sends batches from outbox `shard` until the store stops and the
/// outbox is empty (or, when stopping with the servers lost, until it is told to give up).
pub(super) fn run(shared: Arc<Shared>, shard: usize, first: Link) {
    let mut link = Some(first);
    loop {
        if shared.giving_up.load(Ordering::Acquire) {
            // Unmount with the servers lost: what is left cannot be sent.
            return;
        }
        let batch = shared.outbox.0[shard].take(Duration::from_millis(100));
        if batch.is_empty() {
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            continue;
        }
        let mut backoff = BACKOFF_FIRST;
        loop {
            let sent = match link.as_mut() {
                Some(l) => send(l, &shared, &batch),
                None => Link::connect(&shared.nodes).and_then(|mut l| {
                    let r = send(&mut l, &shared, &batch);
                    link = Some(l);
                    r
                }),
            };
            match sent {
                Ok(()) => {
                    shared.health.ok();
                    break;
                }
                Err(e) => {
                    shared.health.failed("storing chunks", &e);
                    link = None;
                    if shared.giving_up.load(Ordering::Acquire) {
                        tracing::error!(
                            chunks = batch.len(),
                            "giving up on chunks the store could not take before unmount"
                        );
                        break;
                    }
                    sleep_unless_giving_up(&shared, backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        for (id, op) in batch {
            if let Op::Put(bytes) = op {
                // Cached before it leaves `unsaved`, so a reader always finds it somewhere.
                shared.cache.insert(id, bytes);
                shared.forget_unsaved(&id);
            }
        }
        let mut generation = shared.stored.0.lock();
        *generation += 1;
        shared.stored.1.notify_all();
    }
}

fn sleep_unless_giving_up(shared: &Shared, total: Duration) {
    let end = Instant::now() + total;
    while Instant::now() < end && !shared.giving_up.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(10).min(total));
    }
}

/// One batch: the mount's set first, then the chunks' holders and bytes, then (when asked)
/// the replicas' acknowledgement, then the set again for what was released.
fn send(link: &mut Link, shared: &Shared, batch: &[(ChunkId, Op)]) -> redis::RedisResult<()> {
    let set = mount_chunks_key(&shared.mount);
    let mut held = redis::cmd("SADD");
    held.arg(&set);
    let mut released = redis::cmd("SREM");
    released.arg(&set);
    let (mut n_held, mut n_released) = (0, 0);
    let mut scripts = Vec::with_capacity(batch.len());
    let mut sent = 0u64;
    let mount = shared.mount.as_bytes();
    for (id, op) in batch {
        let hex = id.to_string();
        match op {
            Op::Put(bytes) => {
                held.arg(&hex);
                n_held += 1;
                sent += bytes.len() as u64;
                scripts.push(chunk_script(PUT_SCRIPT, id, &[mount, bytes]));
            }
            Op::Claim => {
                held.arg(&hex);
                n_held += 1;
                scripts.push(chunk_script(CLAIM_SCRIPT, id, &[mount]));
            }
            Op::Release => {
                released.arg(&hex);
                n_released += 1;
                scripts.push(chunk_script(RELEASE_SCRIPT, id, &[mount]));
            }
        }
        sent += 200;
    }
    if n_held > 0 {
        link.one::<i64>(&held)?;
    }
    let replies = link.run(scripts)?;
    let lost = batch
        .iter()
        .zip(&replies)
        .filter(|((_, op), r)| matches!(op, Op::Claim) && matches!(r, Value::Int(0)))
        .count();
    if lost > 0 {
        tracing::error!(
            lost,
            "chunks this mount held were swept while its lease had expired; reads of them fail with EIO"
        );
    }
    if shared.replicas > 0 && n_held > 0 {
        // A master left without replicas (after a failover) would make every batch wait
        // the whole timeout: while short, wait briefly, and say so once.
        let short = shared.health.replicas_short.load(Ordering::Relaxed);
        let timeout = if short { WAIT_SHORT_MS } else { WAIT_MS };
        let acked: i64 = link.one(redis::cmd("WAIT").arg(shared.replicas).arg(timeout))?;
        let now_short = acked < shared.replicas as i64;
        if now_short {
            let h = &shared.health;
            h.replica_shortfalls.fetch_add(1, Ordering::Relaxed);
        }
        if now_short != short {
            shared
                .health
                .replicas_short
                .store(now_short, Ordering::Relaxed);
            if now_short {
                tracing::warn!(
                    acked,
                    wanted = shared.replicas,
                    "writes reach fewer replicas than asked for (a master without replicas?)"
                );
            } else {
                tracing::info!("writes reach their replicas again");
            }
        }
    }
    if n_released > 0 {
        link.one::<i64>(&released)?;
    }
    shared.health.sent.fetch_add(sent, Ordering::Relaxed);
    Ok(())
}

/// How long a batch waits for its replicas' acknowledgement: while they keep up, and while
/// they are known to be short.
const WAIT_MS: u64 = 2000;
const WAIT_SHORT_MS: u64 = 20;
