//! One connection to the servers behind `--store`: a Redis Cluster or a single Redis server,
//! with the key names and the server-side scripts every mount agrees on.
//!
//! Keys (the `{...}` hash tag puts a chunk's two keys in one slot, so one script can change
//! both atomically):
//!
//! | key | holds |
//! |---|---|
//! | `memfs:c:{ID}` | the chunk's bytes (`ID`: 64 hex digits of its blake3 hash) |
//! | `memfs:h:{ID}` | the set of mounts that hold the chunk |
//! | `memfs:m:MOUNT` | the set of chunk ids `MOUNT` may hold (a superset of the truth) |
//! | `memfs:l:MOUNT` | `MOUNT`'s lease: exists while the mount is alive |
//! | `memfs:mounts` | every mount that may hold chunks |

use std::time::Duration;

use redis::{Cmd, ConnectionLike, Value};

use crate::store::ChunkId;

/// Takes a holder and stores the bytes if they are absent, in one step: a chunk's bytes
/// never exist without a holder.
pub(super) const PUT_SCRIPT: &str = "redis.call('SADD', KEYS[2], ARGV[1]) \
     if redis.call('SET', KEYS[1], ARGV[2], 'NX') then return 1 end return 0";

/// Drops a holder; the last one to go deletes the bytes, in the same step, so a chunk is
/// deleted only when no mount holds it.
pub(super) const RELEASE_SCRIPT: &str = "redis.call('SREM', KEYS[2], ARGV[1]) \
     if redis.call('SCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) return 1 end return 0";

/// Takes a holder again on bytes that must still be stored (a mount that lost its lease);
/// 0 when they are gone.
pub(super) const CLAIM_SCRIPT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then \
     redis.call('SADD', KEYS[2], ARGV[1]) return 1 end return 0";

/// Renews a lease if it still exists; 0 when it expired (the mount's references may have
/// been swept).
pub(super) const RENEW_SCRIPT: &str = "return redis.call('PEXPIRE', KEYS[1], ARGV[1])";

pub(super) const MOUNTS_KEY: &str = "memfs:mounts";

pub(super) fn data_key(id: &ChunkId) -> String {
    format!("memfs:c:{{{id}}}")
}

pub(super) fn holders_key(id: &ChunkId) -> String {
    format!("memfs:h:{{{id}}}")
}

pub(super) fn mount_chunks_key(mount: &str) -> String {
    format!("memfs:m:{mount}")
}

pub(super) fn lease_key(mount: &str) -> String {
    format!("memfs:l:{mount}")
}

/// A chunk id from the hex digits kept in a mount's set.
pub(super) fn parse_id(hex: &[u8]) -> Option<ChunkId> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(ChunkId::from_bytes(out))
}

/// `EVAL script 2 data holders args...` for one chunk.
pub(super) fn chunk_script(script: &str, id: &ChunkId, args: &[&[u8]]) -> Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(script).arg(2).arg(data_key(id)).arg(holders_key(id));
    for a in args {
        c.arg(*a);
    }
    c
}

/// How long a connection attempt and a reply may take before the try counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) enum Link {
    Cluster(Box<redis::cluster::ClusterConnection>),
    Single(redis::Connection),
}

impl Link {
    /// Connects to `nodes` (`host:port`): as a cluster client when the first node that
    /// answers runs in cluster mode, else to that one server.
    pub(super) fn connect(nodes: &[String]) -> redis::RedisResult<Link> {
        let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}/")).collect();
        let mut last = None;
        for url in &urls {
            let probe = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT));
            let mut conn = match probe {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            conn.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
            conn.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
            let info: String = redis::cmd("INFO").arg("cluster").query(&mut conn)?;
            if !info.contains("cluster_enabled:1") {
                return Ok(Link::Single(conn));
            }
            let client = redis::cluster::ClusterClientBuilder::new(urls.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(3)
                .build()?;
            return Ok(Link::Cluster(Box::new(client.get_connection()?)));
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no server given"))
        }))
    }

    /// Runs `cmds` as one pipeline (per node, in order) and returns their replies.
    pub(super) fn run(&mut self, cmds: Vec<Cmd>) -> redis::RedisResult<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Link::Cluster(conn) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for c in cmds {
                    pipe.add_command(c);
                }
                pipe.query(conn)
            }
            Link::Single(conn) => {
                let mut pipe = redis::pipe();
                for c in cmds {
                    pipe.add_command(c);
                }
                pipe.query(conn)
            }
        }
    }

    /// One command.
    pub(super) fn one<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> redis::RedisResult<T> {
        let value = match self {
            Link::Cluster(conn) => conn.req_command(cmd)?,
            Link::Single(conn) => conn.req_command(cmd)?,
        };
        Ok(redis::from_redis_value(value)?)
    }
}
