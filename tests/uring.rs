//! FUSE over io_uring (`memfs mount --io-uring`): the rings serve the requests, stats.json
//! names the transport, and unmount and SIGTERM end the server cleanly. The rest of the
//! suite runs on rings too when scripts/test.sh sets MEMFS_TEST_TRANSPORT=io-uring.

mod common;
use common::*;

use std::path::Path;
use std::time::Duration;

const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// Whether this kernel serves FUSE over io_uring; when not, says why the test is skipped.
fn rings_available() -> bool {
    match std::fs::read_to_string(ENABLE_URING) {
        Ok(v) if v.trim() == "Y" => true,
        Ok(_) => {
            eprintln!("skipping: {ENABLE_URING} is N (scripts/test.sh switches it on as root)");
            false
        }
        Err(_) => {
            eprintln!("skipping: this kernel has no FUSE over io_uring ({ENABLE_URING})");
            false
        }
    }
}

/// A mount on rings, whatever transport the suite runs on.
fn ring_mount() -> Mount {
    Mount::with_args(&["--io-uring"])
}

fn transport(mount: &Path) -> String {
    let json = std::fs::read(mount.join(".memfs/stats.json")).expect("stats.json");
    let stats: serde_json::Value = serde_json::from_slice(&json).expect("stats.json is JSON");
    stats["transport"].as_str().unwrap_or_default().to_string()
}

#[test]
fn stats_name_the_transport_the_suite_runs_on() {
    let m = Mount::new();
    assert_eq!(transport(m.path()), transport_name());
}

#[test]
fn rings_serve_the_requests_and_stats_say_so() {
    if !rings_available() {
        return;
    }
    let m = ring_mount();
    assert_eq!(transport(m.path()), "io-uring");
    // Enough work that the threads that served it show CPU time.
    for i in 0..2000 {
        std::fs::write(m.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::rename(m.join("f0"), m.join("d/moved")).unwrap();
    assert_eq!(std::fs::read(m.join("d/moved")).unwrap(), b"file 0");
    // 1999 files left in the root, and d.
    assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), 1999 + 1);
    for i in 1..2000 {
        std::fs::remove_file(m.join(format!("f{i}"))).unwrap();
    }
    let rings = thread_ticks(m.pid(), "memfs-ring");
    let dev_fuse = thread_ticks(m.pid(), "fuser-0") + thread_ticks(m.pid(), "fuser-1");
    assert!(
        rings > dev_fuse,
        "the ring threads used {rings} ticks, /dev/fuse's {dev_fuse}: rings are not serving"
    );
    let status = m.unmount();
    assert!(status.success(), "memfs exited with {status}");
}

#[test]
fn sigterm_tears_the_rings_down_and_unmounts() {
    if !rings_available() {
        return;
    }
    let mut m = ring_mount();
    std::fs::write(m.join("a"), b"kept until the end").unwrap();
    let path = m.path().to_path_buf();
    unsafe { libc::kill(m.pid() as i32, libc::SIGTERM) };
    let status = m
        .wait_exit(Duration::from_secs(20))
        .expect("memfs did not exit on SIGTERM");
    assert!(status.success(), "memfs exited with {status}");
    assert!(!is_mounted(&path), "still mounted after SIGTERM");
}

#[test]
fn many_mounts_in_parallel_all_register_and_unmount() {
    if !rings_available() {
        return;
    }
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let m = ring_mount();
                std::fs::write(m.join("x"), format!("{i}")).unwrap();
                assert_eq!(
                    std::fs::read_to_string(m.join("x")).unwrap(),
                    format!("{i}")
                );
                assert!(m.unmount().success());
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a mount failed");
    }
}

#[test]
fn dev_fuse_forces_the_classic_transport() {
    let m = Mount::with_args(&["--dev-fuse"]);
    assert_eq!(transport(m.path()), "dev-fuse");
    std::fs::write(m.join("a"), b"served on /dev/fuse").unwrap();
    assert_eq!(std::fs::read(m.join("a")).unwrap(), b"served on /dev/fuse");
}
