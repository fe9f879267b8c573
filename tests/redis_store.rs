//! memfs with `--store` on a real Redis Cluster started by the test (tests/common/cluster.rs):
//! chunks stored once across mounts, a killed mount's references expire, fsck checks the
//! cluster's copy, a master killed mid-workload with replicas loses nothing acknowledged, and
//! a lost cluster answers EIO rather than wrong bytes.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{redis_cli, wait_for, Cluster};
use common::{Mount, MEMFS};

const MIB: usize = 1 << 20;

fn stats(m: &Mount) -> serde_json::Value {
    let text = std::fs::read_to_string(m.join(".memfs/stats.json")).expect("stats.json");
    serde_json::from_str(&text).expect("stats.json parses")
}

fn store_stat(m: &Mount, key: &str) -> u64 {
    stats(m)["store"][key].as_u64().unwrap_or(u64::MAX)
}

/// Waits until the mount has no chunk the cluster has not acknowledged.
fn wait_stored(m: &Mount) {
    let start = std::time::Instant::now();
    while store_stat(m, "unsaved_chunks") != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "chunks not stored within 60 s: {}",
            stats(m)["store"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the cluster holds `want` chunk keys (at most 10 s). A chunk let go (the last
/// piece a checkpoint cut, which the commit after it cuts again) leaves the cluster by a
/// release its mount queues, so the count can trail the mount's for a moment.
fn wait_chunk_keys(cluster: &Cluster, want: usize, why: &str) {
    wait_for(Duration::from_secs(10), || {
        let keys = cluster.count_keys("memfs:c:*");
        if keys != want {
            // Shown if the wait fails (the harness keeps a passing test's output).
            eprintln!("{why}: {keys} chunk keys on the cluster, {want} chunks");
        }
        keys == want
    });
}

fn fsck(m: &Mount) -> serde_json::Value {
    let text = std::fs::read_to_string(m.join(".memfs/fsck")).expect("fsck");
    serde_json::from_str(&text).expect("fsck parses")
}

/// Pseudo-random bytes from a seed (xorshift), so two mounts can write the same data.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Drops the kernel's cached pages of a file, so the next read reaches memfs.
fn drop_cached_pages(path: &Path) {
    let f = File::open(path).expect("open");
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

fn mount_on(cluster: &Cluster, extra: &str, cache: &str) -> Mount {
    let url = format!("{}{extra}", cluster.url());
    Mount::with_args(&["--store", &url, "--cache-memory", cache])
}

#[test]
fn two_mounts_writing_the_same_64_mib_store_it_once() {
    let cluster = Cluster::start(3, 0);
    let data = noise(64, 64 * MIB);
    let a = mount_on(&cluster, "", "8M");
    let b = mount_on(&cluster, "", "8M");
    std::fs::write(a.join("big"), &data).unwrap();
    std::fs::write(b.join("same-bytes-other-name"), &data).unwrap();
    wait_stored(&a);
    wait_stored(&b);
    let chunks = store_stat(&a, "chunks");
    assert_eq!(store_stat(&b, "chunks"), chunks);
    assert!(chunks > 1000, "64 MiB in {chunks} chunks");
    wait_chunk_keys(&cluster, chunks as usize, "each chunk stored once");
    assert!(fsck(&b)["ok"].as_bool().unwrap(), "{}", fsck(&b));
    let shown = Command::new(MEMFS)
        .arg("stats")
        .arg(a.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("store                        redis 127.0.0.1:"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("store chunks (this mount)    {chunks}")),
        "{shown}"
    );
    // A's unmount hands back its references; B still holds every chunk.
    assert!(a.unmount().success());
    wait_chunk_keys(&cluster, chunks as usize, "after A's unmount");
    assert!(fsck(&b)["ok"].as_bool().unwrap(), "{}", fsck(&b));
    drop_cached_pages(&b.join("same-bytes-other-name"));
    assert!(std::fs::read(b.join("same-bytes-other-name")).unwrap() == data);
    assert!(
        store_stat(&b, "cache_misses") > 0,
        "the read went to the cluster"
    );
    assert!(b.unmount().success());
    assert_eq!(
        cluster.count_keys("memfs:*"),
        0,
        "nothing left once no mount holds it"
    );
}

#[test]
fn a_killed_mount_leaks_nothing_once_its_lease_expires() {
    let cluster = Cluster::start(3, 0);
    let mut a = mount_on(&cluster, "?lease=1", "4M");
    std::fs::write(a.join("f"), noise(1, 8 * MIB)).unwrap();
    std::fs::write(a.join("g"), noise(2, 3 * MIB)).unwrap();
    wait_stored(&a);
    let held = store_stat(&a, "chunks") as usize;
    assert_eq!(cluster.count_keys("memfs:c:*"), held);
    // SIGKILL to the server itself: no unmount, no release. (On rings the process the test
    // started is a wrapper; killed, it would have its server unmount cleanly.)
    assert_eq!(unsafe { libc::kill(a.pid() as i32, libc::SIGKILL) }, 0);
    a.wait_exit(Duration::from_secs(5)).expect("killed");
    drop(a);
    assert_eq!(
        cluster.count_keys("memfs:c:*"),
        held,
        "a dead mount's chunks stay until its lease expires"
    );
    // Any live mount sweeps what dead ones held.
    let b = mount_on(&cluster, "?lease=1", "4M");
    wait_for(Duration::from_secs(15), || {
        cluster.count_keys("memfs:c:*") == 0
    });
    wait_for(Duration::from_secs(5), || {
        cluster.count_keys("memfs:h:*") == 0
    });
    assert_eq!(cluster.count_keys("memfs:m:*"), 0);
    assert_eq!(store_stat(&b, "mounts_swept"), 1);
    assert_eq!(store_stat(&b, "references_swept") as usize, held);
    assert!(b.unmount().success());
}

#[test]
fn fsck_checks_the_clusters_copy_and_reads_never_return_wrong_bytes() {
    let cluster = Cluster::start(3, 0);
    // A cache of one byte holds nothing: every read of a chunk goes to the cluster.
    let m = mount_on(&cluster, "", "1");
    let data = noise(3, 2 * MIB);
    std::fs::write(m.join("f"), &data).unwrap();
    wait_stored(&m);
    assert!(fsck(&m)["ok"].as_bool().unwrap(), "{}", fsck(&m));
    drop_cached_pages(&m.join("f"));
    assert!(std::fs::read(m.join("f")).unwrap() == data);

    // Corrupt one chunk on the cluster and delete another.
    let mut keys: Vec<(u16, String)> = Vec::new();
    for port in cluster.master_ports() {
        for k in redis_cli(port, &["--scan", "--pattern", "memfs:c:*"]).lines() {
            keys.push((port, k.to_string()));
        }
    }
    keys.sort();
    let (p1, corrupt) = &keys[0];
    let (p2, gone) = &keys[1];
    redis_cli(*p1, &["SET", corrupt, "not the bytes"]);
    redis_cli(*p2, &["DEL", gone]);
    let check = fsck(&m);
    assert!(!check["ok"].as_bool().unwrap());
    let problems = check["problems"].to_string();
    assert!(problems.contains("does not hash to its key"), "{problems}");
    assert!(problems.contains("not on the store"), "{problems}");

    drop_cached_pages(&m.join("f"));
    let mut f = File::open(m.join("f")).unwrap();
    let mut all = Vec::new();
    let err = f
        .read_to_end(&mut all)
        .expect_err("a damaged chunk fails the read");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(
        data.starts_with(&all),
        "bytes read before the error are the file's"
    );
}

#[test]
fn a_master_killed_mid_workload_with_replicas_loses_nothing_acknowledged() {
    let mut cluster = Cluster::start(3, 1);
    let m = mount_on(&cluster, "?replicas=1", "1");
    let masters = cluster.master_ports();
    assert_eq!(masters.len(), 3);
    let writer = {
        let dir = m.path().to_path_buf();
        std::thread::spawn(move || {
            for i in 0..40u64 {
                let mut f = File::create(dir.join(format!("f{i}"))).unwrap();
                f.write_all(&noise(100 + i, MIB)).unwrap();
                f.sync_all().unwrap();
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    cluster.kill(masters[0]);
    writer
        .join()
        .expect("the writer never fails: chunks wait in memory");
    // The replica takes over and the uploader's retries go through.
    wait_for(Duration::from_secs(30), || cluster.healthy());
    wait_stored(&m);
    // The lease thread may meet the dead master after the uploads got through (its next
    // renewal, 3 s later in one CI run) and say "lost" until its retry after a backoff.
    wait_for(Duration::from_secs(30), || {
        stats(&m)["store"]["state"] == "ok"
    });
    let check = fsck(&m);
    assert!(check["ok"].as_bool().unwrap(), "{check}");
    for i in 0..40u64 {
        let path = m.join(format!("f{i}"));
        drop_cached_pages(&path);
        assert!(std::fs::read(&path).unwrap() == noise(100 + i, MIB), "f{i}");
    }
    assert!(m.unmount().success());
}

#[test]
fn a_lost_cluster_answers_eio_and_says_so_in_stats() {
    let mut cluster = Cluster::start(3, 0);
    let m = mount_on(&cluster, "", "1");
    let data = noise(5, MIB);
    std::fs::write(m.join("f"), &data).unwrap();
    wait_stored(&m);
    for port in cluster.master_ports() {
        cluster.kill(port);
    }
    drop_cached_pages(&m.join("f"));
    let err = std::fs::read(m.join("f")).expect_err("no server, no bytes");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    // New data still goes in (kept in memory, retried) and reads back from memory.
    std::fs::write(m.join("g"), noise(6, MIB)).unwrap();
    wait_for(Duration::from_secs(10), || {
        stats(&m)["store"]["state"] == "lost"
    });
    assert!(store_stat(&m, "unsaved_chunks") > 0);
    drop_cached_pages(&m.join("g"));
    assert!(std::fs::read(m.join("g")).unwrap() == noise(6, MIB));
    assert!(store_stat(&m, "errors") > 0);
}

#[test]
fn an_unreachable_store_fails_the_mount_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(MEMFS)
        .arg("mount")
        .arg(dir.path())
        .args(["--store", "redis://127.0.0.1:1"])
        .output()
        .expect("run memfs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot use the store"), "{err}");
}

#[test]
fn a_mount_stalled_past_its_lease_takes_it_again_and_never_reads_wrong_bytes() {
    let cluster = Cluster::start(3, 0);
    let a = mount_on(&cluster, "?lease=1", "1");
    let old = noise(7, 2 * MIB);
    std::fs::write(a.join("old"), &old).unwrap();
    wait_stored(&a);
    // Stop A for longer than its lease: B takes it for dead and sweeps its chunks.
    let pid = a.pid() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let b = mount_on(&cluster, "?lease=1", "1");
    let swept = std::panic::catch_unwind(|| {
        wait_for(Duration::from_secs(15), || {
            cluster.count_keys("memfs:c:*") == 0
        })
    });
    unsafe { libc::kill(pid, libc::SIGCONT) };
    swept.expect("B swept the stalled mount's chunks");
    // A notices, takes a new lease and claims what it still references.
    wait_for(Duration::from_secs(10), || {
        cluster.count_keys("memfs:l:*") == 2
    });
    drop_cached_pages(&a.join("old"));
    let err = std::fs::read(a.join("old")).expect_err("swept chunks are gone");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    // New data is stored and held again; B's next sweep leaves it alone.
    let new = noise(8, 2 * MIB);
    std::fs::write(a.join("new"), &new).unwrap();
    wait_stored(&a);
    std::thread::sleep(Duration::from_millis(1500));
    drop_cached_pages(&a.join("new"));
    assert!(std::fs::read(a.join("new")).unwrap() == new);
    assert!(fsck(&a)["problems"]
        .to_string()
        .contains("not on the store"));
    drop(b);
}
