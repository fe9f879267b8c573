//! Mounts' leases, and the sweep that releases what dead mounts held.
//!
//! Each mount has a random id, is listed in `memfs:mounts`, and keeps a lease key
//! (`memfs:l:MOUNT`) that expires unless renewed: the lease thread renews it every third of
//! its length. Every mount sweeps now and then: a listed mount whose lease is gone is dead
//! (killed, or cut off for longer than its lease), and the sweeper releases each chunk in
//! that mount's set for it, with the same server-side script the mount itself would have
//! used (so the last holder to go deletes the bytes), then forgets the mount. A mount that
//! finds its own lease expired takes it again and claims its chunks back (`Op::Claim`); the
//! ones swept meanwhile are gone, and reading them answers EIO.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::Value;

use super::link::{
    chunk_script, lease_key, mount_chunks_key, parse_id, Link, MOUNTS_KEY, RELEASE_SCRIPT,
    RENEW_SCRIPT,
};
use super::{RedisStore, Shared};

/// How many chunk ids a sweep takes per round trip.
const SWEEP_PAGE: usize = 512;

/// Lists the mount and takes its lease.
pub(super) fn register(link: &mut Link, shared: &Shared) -> redis::RedisResult<()> {
    link.one::<i64>(redis::cmd("SADD").arg(MOUNTS_KEY).arg(&shared.mount))?;
    link.one::<Value>(
        redis::cmd("SET")
            .arg(lease_key(&shared.mount))
            .arg(1)
            .arg("PX")
            .arg(shared.lease.as_millis() as u64),
    )?;
    Ok(())
}

/// The lease thread: renews the lease and sweeps dead mounts until the store stops.
pub(super) fn run(shared: Arc<Shared>, store: Weak<RedisStore>) {
    let period = shared.lease / 3;
    let mut link: Option<Link> = None;
    let mut next = Instant::now();
    while !shared.stopping.load(Ordering::Acquire) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        next = Instant::now() + period;
        let round = match link.as_mut() {
            Some(l) => renew_and_sweep(l, &shared, &store),
            None => Link::connect(&shared.nodes).and_then(|mut l| {
                let r = renew_and_sweep(&mut l, &shared, &store);
                link = Some(l);
                r
            }),
        };
        match round {
            Ok(()) => shared.health.ok(),
            Err(e) => {
                shared.health.failed("renewing the lease", &e);
                link = None;
                next = Instant::now() + period.min(Duration::from_secs(1));
            }
        }
    }
}

fn renew_and_sweep(
    link: &mut Link,
    shared: &Shared,
    store: &Weak<RedisStore>,
) -> redis::RedisResult<()> {
    let renewed: i64 = link.one(
        redis::cmd("EVAL")
            .arg(RENEW_SCRIPT)
            .arg(1)
            .arg(lease_key(&shared.mount))
            .arg(shared.lease.as_millis() as u64),
    )?;
    if renewed == 0 {
        tracing::error!(
            mount = %shared.mount,
            "this mount's lease on the store expired; taking it again and claiming its chunks"
        );
        register(link, shared)?;
        if let Some(store) = store.upgrade() {
            store.claim_all();
        }
    }
    sweep(link, shared)
}

/// Releases the references of every listed mount whose lease is gone.
pub(super) fn sweep(link: &mut Link, shared: &Shared) -> redis::RedisResult<()> {
    let mounts: Vec<String> = link.one(redis::cmd("SMEMBERS").arg(MOUNTS_KEY))?;
    for mount in mounts {
        if mount == shared.mount || alive(link, &mount)? {
            continue;
        }
        let released = release_all(link, &mount, false)?;
        if let Some(n) = released {
            shared.health.mounts_swept.fetch_add(1, Ordering::Relaxed);
            shared
                .health
                .references_swept
                .fetch_add(n, Ordering::Relaxed);
            tracing::info!(mount = %mount, references = n, "released the chunks of a dead mount");
        }
    }
    Ok(())
}

fn alive(link: &mut Link, mount: &str) -> redis::RedisResult<bool> {
    let n: i64 = link.one(redis::cmd("EXISTS").arg(lease_key(mount)))?;
    Ok(n == 1)
}

/// Releases every chunk in `mount`'s set on its behalf, then forgets the mount. A sweeper
/// (`own == false`) stops if the mount's lease comes back. Returns how many references it
/// released, or `None` if it stopped.
pub(super) fn release_all(
    link: &mut Link,
    mount: &str,
    own: bool,
) -> redis::RedisResult<Option<u64>> {
    let set = mount_chunks_key(mount);
    let mut released = 0u64;
    loop {
        if !own && alive(link, mount)? {
            return Ok(None);
        }
        let page: Vec<Vec<u8>> = link.one(redis::cmd("SRANDMEMBER").arg(&set).arg(SWEEP_PAGE))?;
        if page.is_empty() {
            break;
        }
        let scripts = page
            .iter()
            .filter_map(|hex| parse_id(hex))
            .map(|id| chunk_script(RELEASE_SCRIPT, &id, &[mount.as_bytes()]))
            .collect();
        link.run(scripts)?;
        // Only now out of the set: a sweep cut short here is redone by the next one.
        let mut forget = redis::cmd("SREM");
        forget.arg(&set);
        for hex in &page {
            forget.arg(hex.as_slice());
        }
        link.one::<i64>(&forget)?;
        released += page.len() as u64;
    }
    link.one::<i64>(redis::cmd("SREM").arg(MOUNTS_KEY).arg(mount))?;
    if own {
        link.one::<i64>(redis::cmd("DEL").arg(lease_key(mount)))?;
    }
    Ok(Some(released))
}
