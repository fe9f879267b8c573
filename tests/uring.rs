//! FUSE over io_uring (`memfs mount --io-uring`): the rings serve the requests, stats.json
//! names the transport, unmount and SIGTERM end the server cleanly, and its threads yield
//! the CPU to their callers only where that cannot starve them. The rest of the suite runs
//! on rings too when scripts/test.sh sets MEMFS_TEST_TRANSPORT=io-uring.

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

/// Without --io-uring or --dev-fuse, memfs serves on rings where the kernel offers them,
/// and otherwise on /dev/fuse; rings it cannot make send it to /dev/fuse, not away, and
/// then it does not yield the CPU (that pays on rings only).
#[test]
fn the_default_is_rings_where_the_kernel_offers_them() {
    let m = Mount::on_default_transport(&[]);
    assert_eq!(transport(m.path()), default_transport_name());
    std::fs::write(m.join("a"), b"on the default transport").unwrap();
    assert_eq!(
        std::fs::read(m.join("a")).unwrap(),
        b"on the default transport"
    );
    assert!(m.unmount().success());
    if !rings_available() {
        return;
    }
    let failing = [("MEMFS_TEST_RINGS_FAIL", "1")];
    let m = Mount::on_default_transport(&failing);
    assert_eq!(transport(m.path()), "dev-fuse");
    std::fs::write(m.join("a"), b"on /dev/fuse after all").unwrap();
    assert_eq!(
        std::fs::read(m.join("a")).unwrap(),
        b"on /dev/fuse after all"
    );
    let policies = thread_policies(m.pid(), &["fuser-0"]);
    assert!(
        policies.iter().any(|(name, _)| name == "fuser-0"),
        "no fuser-0: {policies:?}"
    );
    assert!(
        policies.iter().all(|&(_, p)| p == libc::SCHED_OTHER),
        "memfs yields on /dev/fuse: {policies:?}"
    );
    assert!(m.unmount().success());
    // Asked for rings, memfs fails instead, with one line that says why.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(MEMFS)
        .args(["mount", "--io-uring"])
        .arg(dir.path())
        .env("MEMFS_TEST_RINGS_FAIL", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("injected failure"), "{stderr}");
    assert!(!is_mounted(dir.path()));
}

#[test]
fn dev_fuse_forces_the_classic_transport() {
    let m = Mount::with_args(&["--dev-fuse"]);
    assert_eq!(transport(m.path()), "dev-fuse");
    std::fs::write(m.join("a"), b"served on /dev/fuse").unwrap();
    assert_eq!(std::fs::read(m.join("a")).unwrap(), b"served on /dev/fuse");
}

/// Whether a server in a session of its own has a scheduling group to itself on this
/// machine: autogroup scheduling on, and the CPU controller's cgroup the root (cgroup v1),
/// or no CPU controller at all. memfs checks the same before it yields (uring/sched.rs).
fn sessions_are_scheduling_groups() -> bool {
    let autogroup =
        std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled").unwrap_or_default();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let cpu_at_root = cgroups
        .lines()
        .any(|l| l.ends_with(":cpu:/") || l.ends_with(":cpu,cpuacct:/"))
        || cgroups.trim() == "0::/";
    autogroup.trim() == "1" && cpu_at_root
}

/// The session `pid` belongs to.
fn session_of(pid: u32) -> i32 {
    unsafe { libc::getsid(pid as i32) }
}

#[test]
fn threads_yield_the_cpu_from_a_session_of_their_own() {
    if !rings_available() {
        return;
    }
    // Started by the test, memfs is in the test's session (and scheduling group).
    let shared = ring_mount();
    let policies = thread_policies(shared.pid(), &["memfs-ring"]);
    assert!(policies.iter().any(|(name, _)| name == "memfs-ring"));
    if !sessions_are_scheduling_groups() {
        assert_eq!(shared.pid(), shared.started_pid(), "forked for nothing");
        assert!(
            policies.iter().all(|&(_, p)| p == libc::SCHED_OTHER),
            "memfs yields where a session is no scheduling group: {policies:?}"
        );
        eprintln!("skipping the rest: a session is no scheduling group of its own here");
        return;
    }
    // So it serves from a child that leads a new session.
    let server = shared.pid();
    assert_ne!(server, shared.started_pid(), "memfs did not fork");
    assert_eq!(session_of(server), server as i32);
    assert_eq!(
        session_of(shared.started_pid()),
        unsafe { libc::getsid(0) },
        "the process started left the test's session"
    );
    // Started leading a session, it serves from it. Traced: the trace's writer alone does
    // not yield (it must name short-lived processes before they exit).
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("t.jsonl");
    let own = Mount::in_own_session(&["--io-uring", "--trace", trace.to_str().unwrap()]);
    assert_eq!(
        own.pid(),
        own.started_pid(),
        "forked in a session of its own"
    );
    for mount in [&shared, &own] {
        std::fs::write(mount.join("a"), b"served by yielding threads").unwrap();
        assert_eq!(
            std::fs::read(mount.join("a")).unwrap(),
            b"served by yielding threads"
        );
        let names = ["memfs-ring", "memfs-commit-0", "memfs-hash-0", "fuser-0"];
        let policies = thread_policies(mount.pid(), &names);
        for name in names {
            assert!(
                policies.iter().any(|(n, _)| n == name),
                "no {name}: {policies:?}"
            );
        }
        assert!(
            policies
                .iter()
                .all(|(name, p)| *p == libc::SCHED_IDLE || name == "memfs-trace"),
            "memfs in a session of its own does not yield: {policies:?}"
        );
    }
    let writer = thread_policies(own.pid(), &["memfs-trace"]);
    assert!(
        writer
            .iter()
            .any(|(name, p)| name == "memfs-trace" && *p == libc::SCHED_OTHER),
        "the trace's writer yields: {writer:?}"
    );
    assert!(shared.unmount().success());
    assert!(own.unmount().success());
}

#[test]
fn the_process_started_stands_for_a_server_in_its_own_session() {
    if !rings_available() || !sessions_are_scheduling_groups() {
        return;
    }
    let signal = |pid: u32, sig: i32| unsafe { libc::kill(pid as i32, sig) };
    // A stop signal to the process started (a Ctrl-C in its terminal) unmounts cleanly.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let mut m = ring_mount();
        assert_ne!(m.pid(), m.started_pid());
        std::fs::write(m.join("f"), b"x").unwrap();
        signal(m.started_pid(), sig);
        let status = m
            .wait_exit(Duration::from_secs(20))
            .expect("memfs did not exit on the signal");
        assert!(status.success(), "signal {sig}: {status:?}");
        assert!(!is_mounted(m.path()), "signal {sig} left the mount");
    }
    // A killed server: the process started dies the same way, and leaves the same stale
    // mount as a server killed without a session of its own.
    let mut m = ring_mount();
    signal(m.pid(), libc::SIGKILL);
    let status = m.wait_exit(Duration::from_secs(10)).expect("still running");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(is_mounted(m.path()));
    assert!(std::process::Command::new("umount")
        .arg("-l")
        .arg(m.path())
        .status()
        .unwrap()
        .success());
    // A killed process started: nothing waits for the mount any more, so the server
    // unmounts.
    let mut m = ring_mount();
    let server = m.pid();
    signal(m.started_pid(), libc::SIGKILL);
    m.wait_exit(Duration::from_secs(10))
        .expect("survived SIGKILL");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while is_mounted(m.path()) || signal(server, 0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server outlived the process started, mounted: {}",
            is_mounted(m.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Busy loops, one pinned to each CPU, until dropped or `limit` has passed.
struct BusyLoops {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyLoops {
    fn start(limit: Duration) -> BusyLoops {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus)
            .map(|cpu| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    pin_this_thread(cpu);
                    let start = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyLoops { stop, threads }
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A yielding memfs waits behind every runnable thread of its scheduling group; so started
/// from the session of busy loops, it must either leave it or not yield (it would not
/// answer until they end), and in a session of its own it must still get its share. Either
/// way 2,000 round trips take well under a second here; a starved server takes the 30 s
/// the loops run.
#[test]
fn ring_mounts_answer_beside_busy_loops() {
    if !rings_available() {
        return;
    }
    for (how, m) in [
        ("started from the caller's session", ring_mount()),
        (
            "in a session of its own",
            Mount::in_own_session(&["--io-uring"]),
        ),
    ] {
        std::fs::write(m.join("f"), b"x").unwrap();
        let busy = BusyLoops::start(Duration::from_secs(30));
        let start = std::time::Instant::now();
        for _ in 0..2000 {
            // A user attribute that is not there: a round trip each (the kernel caches
            // no answer to getxattr).
            assert_eq!(xattr_get(&m.join("f"), "user.absent"), Err(libc::ENODATA));
        }
        let took = start.elapsed();
        drop(busy);
        assert!(
            took < Duration::from_secs(10),
            "memfs {how}: 2,000 getxattr beside busy loops took {took:?}"
        );
        assert!(m.unmount().success());
    }
}

/// One field of each ring thread's /proc status (`Cpus_allowed_list`, ...), trimmed, by
/// thread id.
fn ring_thread_status(pid: u32, field: &str) -> Vec<(u64, String)> {
    thread_files(pid, "status")
        .into_iter()
        .filter(|(_, comm, _)| comm == "memfs-ring")
        .map(|(tid, _, status)| {
            let value = status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .unwrap_or_default();
            (tid, value.trim().to_string())
        })
        .collect()
}

/// The CPUs a thread of `pid` may run on (`Cpus_allowed_list`), for each ring thread.
fn ring_thread_cpus(pid: u32) -> Vec<String> {
    let mut all: Vec<String> = ring_thread_status(pid, "Cpus_allowed_list")
        .into_iter()
        .map(|(_, cpus)| cpus)
        .collect();
    all.sort();
    all
}

/// Runs `work` while watching the ring threads of `pid`: whether one was allowed off its
/// CPU (off the `pinned` single-CPU lists) at some point, or else the CPUs seen last.
/// Watched while the work runs, not only after it: a small request that comes between the
/// last big one and a look afterwards pins the thread again (seen with four test threads
/// on two CPUs).
fn left_cpu_during<T>(
    pid: u32,
    pinned: &[String],
    work: impl FnOnce() -> T,
) -> (T, Result<(), Vec<String>>) {
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (running, pinned) = (running.clone(), pinned.to_vec());
        std::thread::spawn(move || loop {
            // One more look once the work is done.
            let done = !running.load(std::sync::atomic::Ordering::Relaxed);
            let now = ring_thread_cpus(pid);
            if now.iter().any(|c| !pinned.contains(c)) {
                return Ok(());
            }
            if done {
                return Err(now);
            }
            std::thread::sleep(Duration::from_micros(100));
        })
    };
    let out = work();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    (out, watcher.join().unwrap())
}

/// Waits up to 5 s until every ring thread of `pid` is back on its own CPU (the `pinned`
/// lists, sorted), doing `between` before each look; the failure names what came `after`.
fn wait_until_pinned(pid: u32, pinned: &[String], after: &str, mut between: impl FnMut()) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        between();
        let now = ring_thread_cpus(pid);
        if now == pinned {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ring threads not pinned again after {after}: {now:?}"
        );
    }
}

/// A ring thread stays on its CPU for small requests and may leave it while it serves big
/// READs (whose copy into the page cache would otherwise share the reader's CPU with the
/// reader) or WRITEs, and comes back once they end.
#[test]
fn a_ring_thread_leaves_its_cpu_only_for_big_reads_and_writes() {
    if !rings_available() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipping: one CPU, nowhere to go");
        return;
    }
    let m = ring_mount();
    let pinned: Vec<String> = (0..cpus).map(|c| c.to_string()).collect();
    // Each CPU's lanes, each thread pinned to it.
    let lanes = memfs::transport::uring::LANES_PER_QUEUE;
    let mut sorted: Vec<String> = pinned
        .iter()
        .flat_map(|c| std::iter::repeat_n(c.clone(), lanes))
        .collect();
    sorted.sort();
    // Requests from this thread go to CPU 0's queue.
    let on_cpu0 = std::thread::spawn(move || {
        assert!(pin_this_thread(0), "pinning the test thread to CPU 0");
        let path = m.join("big");
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let pid = m.pid();
        assert_eq!(ring_thread_cpus(pid), sorted, "ring threads not pinned");
        // Written back at close in 1 MiB WRITEs.
        let ((), wrote) = left_cpu_during(pid, &pinned, || std::fs::write(&path, &data).unwrap());
        assert!(
            wrote.is_ok(),
            "no ring thread left its CPU for the writes: {wrote:?}"
        );
        // The write's big WRITEs may have let lanes leave; 20 ms without requests brings
        // them back.
        wait_until_pinned(pid, &sorted, "the writes", || {
            std::thread::sleep(Duration::from_millis(5))
        });
        // Written back and then dropped from the page cache, the file is read through
        // 1 MiB READs (the read-ahead).
        // Read on the descriptor kept open: its close would send small requests.
        use std::io::Read;
        let mut file = std::fs::File::open(&path).unwrap();
        write_back_and_drop_cache(&file);
        let ((), watched) = left_cpu_during(pid, &pinned, || {
            let mut back = vec![0u8; data.len()];
            file.read_exact(&mut back).unwrap();
            assert!(back == data, "read back other bytes");
        });
        drop(file);
        assert!(
            watched.is_ok(),
            "no ring thread left its CPU for the reads: {watched:?}"
        );
        // Small requests (getxattr always asks memfs) pin the lane that serves them again;
        // the others go back after a while without requests.
        wait_until_pinned(pid, &sorted, "the reads", || {
            let _ = xattr_get(&path, "user.absent");
        });
        m
    });
    let m = on_cpu0.join().expect("the test thread failed");
    assert!(m.unmount().success());
}

/// The voluntary context switches of each ring thread of `pid`, by thread id: one for each
/// request it waited for, at least.
fn ring_thread_waits(pid: u32) -> std::collections::BTreeMap<u64, u64> {
    ring_thread_status(pid, "voluntary_ctxt_switches")
        .into_iter()
        .map(|(tid, n)| (tid, n.parse().unwrap_or(0)))
        .collect()
}

/// The READs a read-ahead keeps in flight for one reader (two of 1 MiB) are served by two
/// lanes of the reader's CPU queue at once. A thread of several entries took both, one
/// after the other, while the other CPU idled.
#[test]
fn one_readers_reads_in_flight_are_served_by_several_lanes() {
    if !rings_available() {
        return;
    }
    let m = ring_mount();
    let pid = m.pid();
    let path = m.join("big");
    let data: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    // From one CPU, so that every READ goes to that CPU's queue.
    let reader = std::thread::spawn(move || {
        assert!(pin_this_thread(0), "pinning the test thread to CPU 0");
        use std::io::Read;
        let mut file = std::fs::File::open(&path).unwrap();
        write_back_and_drop_cache(&file);
        let before = ring_thread_waits(pid);
        let mut back = vec![0u8; data.len()];
        file.read_exact(&mut back).unwrap();
        assert!(back == data, "read back other bytes");
        (before, ring_thread_waits(pid))
    });
    let (before, after) = reader.join().expect("the reader failed");
    // 32 READs: each of two lanes waits for several of them.
    let busy: Vec<u64> = after
        .iter()
        .map(|(tid, n)| n - before.get(tid).copied().unwrap_or(0))
        .filter(|&waits| waits >= 5)
        .collect();
    assert!(
        busy.len() >= 2,
        "the READs were served by {} ring thread(s): waits before {before:?}, after {after:?}",
        busy.len()
    );
    assert!(m.unmount().success());
}
