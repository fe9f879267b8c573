//! Mounting and unmounting: signals and `umount` end the server cleanly with no mount left
//! behind, and bad mount points give one clear line and a non-zero exit.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

fn signal_unmounts(sig: i32) {
    let mut m = Mount::new();
    std::fs::write(m.join("f"), b"data").unwrap();
    unsafe { libc::kill(m.pid() as i32, sig) };
    let status = m
        .wait_exit(Duration::from_secs(20))
        .expect("memfs did not exit on the signal");
    assert!(status.success(), "exit status {status:?}");
    assert!(!is_mounted(m.path()), "mount left behind");
    // The directory is usable again (no "Transport endpoint is not connected").
    std::fs::read_dir(m.path()).expect("mount point readable after exit");
}

#[test]
fn sigint_unmounts_and_exits_zero() {
    signal_unmounts(libc::SIGINT);
}

#[test]
fn sigterm_unmounts_and_exits_zero() {
    signal_unmounts(libc::SIGTERM);
}

#[test]
fn sigterm_while_the_mount_is_busy_still_unmounts() {
    let mut m = Mount::new();
    // A process with its working directory inside keeps the mount busy.
    let mut busy = Command::new("sleep")
        .arg("30")
        .current_dir(m.path())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(m.pid() as i32, libc::SIGTERM) };
    let status = m.wait_exit(Duration::from_secs(20));
    let _ = busy.kill();
    let _ = busy.wait();
    let status = status.expect("memfs did not exit while busy");
    assert!(status.success(), "exit status {status:?}");
    assert!(!is_mounted(m.path()), "mount left behind");
}

#[test]
fn umount_from_outside_exits_zero() {
    let m = Mount::new();
    std::fs::create_dir(m.join("d")).unwrap();
    let status = m.unmount();
    assert!(status.success(), "exit status {status:?}");
}

fn mount_fails(path: &std::path::Path) -> String {
    let out = Command::new(MEMFS)
        .arg("mount")
        .arg(path)
        .output()
        .expect("run memfs");
    assert!(
        !out.status.success(),
        "mount of {} succeeded",
        path.display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(
        stderr.contains(&path.display().to_string()),
        "message does not name the path: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_mount_points_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(mount_fails(&missing).contains("does not exist"));
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(mount_fails(&file).contains("not a directory"));
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("precious"), b"x").unwrap();
    assert!(mount_fails(&full).contains("not empty"));
    let m = Mount::new();
    assert!(mount_fails(m.path()).contains("already a mount point"));
}

#[test]
fn a_killed_memfs_leaves_a_stale_mount_that_force_clears() {
    let mut m = Mount::new();
    std::fs::write(m.join("f"), b"gone with the process").unwrap();
    unsafe { libc::kill(m.pid() as i32, libc::SIGKILL) };
    m.wait_exit(Duration::from_secs(10))
        .expect("memfs survived SIGKILL");
    assert!(is_mounted(m.path()), "the kernel keeps a dead FUSE mount");
    let err = std::fs::metadata(m.path()).unwrap_err();
    // On io_uring, a request in the moment between the dead server's rings being cancelled
    // and its /dev/fuse being closed is ended with ECONNABORTED instead.
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENOTCONN | libc::ECONNABORTED)
        ),
        "{err}"
    );

    let message = mount_fails(m.path());
    assert!(message.contains("stale"), "{message}");
    assert!(message.contains("--force"), "no way out offered: {message}");

    let again = Command::new(MEMFS)
        .arg("mount")
        .arg(m.path())
        .arg("--force")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    m.child = Some(again); // the guard unmounts and reaps it
    let t0 = std::time::Instant::now();
    while std::fs::metadata(m.path()).is_err() || !is_mounted(m.path()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "--force did not mount"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(m.join("g"), b"new life").unwrap();
    assert_eq!(std::fs::read(m.join("g")).unwrap(), b"new life");
    assert!(!m.join("f").exists(), "a fresh mount is empty");
    let status = m.unmount();
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_finishes_the_trace_and_the_stats_file() {
    let out = tempfile::tempdir().unwrap();
    let trace = out.path().join("trace.jsonl");
    let stats = out.path().join("stats.json");
    let mut m = Mount::with_args(&[
        "--trace",
        trace.to_str().unwrap(),
        "--stats-out",
        stats.to_str().unwrap(),
    ]);
    for i in 0..20 {
        std::fs::write(m.join(format!("f{i}")), vec![i as u8; 10_000]).unwrap();
    }
    unsafe { libc::kill(m.pid() as i32, libc::SIGTERM) };
    let status = m.wait_exit(Duration::from_secs(20)).expect("no exit");
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(m.path()));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["files"], 20, "{s}");
    assert_eq!(s["logical_bytes"], 200_000, "{s}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every trace line is whole JSON"))
        .collect();
    let creates = records.iter().filter(|r| r["op"] == "create").count();
    assert_eq!(creates, 20, "trace lost records");
}

/// Runs a memfs subcommand that must fail with one line naming `what`.
fn command_fails(args: &[&str], what: &str) -> String {
    let out = Command::new(MEMFS).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("memfs: "), "{stderr}");
    assert!(
        stderr.contains(what),
        "{args:?} does not name {what}: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr
}

#[test]
fn cli_commands_give_one_line_naming_the_path_and_cause() {
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    let d = other.path().to_str().unwrap();
    for args in [["log", f], ["stats", d], ["tree", d]] {
        let e = command_fails(&args, "");
        assert!(e.contains("not on a memfs mount"), "{e}");
    }
    assert!(command_fails(&["restore", f, "1"], f).contains("not on a memfs mount"));
    let missing = other.path().join("missing");
    let missing = missing.to_str().unwrap();
    assert!(command_fails(&["log", missing], missing).contains("No such file"));

    let m = Mount::new();
    std::fs::write(m.join("a"), b"one").unwrap();
    let a = m.join("a");
    let a = a.to_str().unwrap();
    let e = command_fails(&["restore", a, "7"], a);
    assert!(e.contains("no version 7"), "{e}");
    let e = command_fails(&["restore", a, "seven"], "seven");
    assert!(e.contains("invalid"), "{e}");
    let trace = other.path().join("no/such/dir/t.jsonl");
    let empty = tempfile::tempdir().unwrap();
    let e = command_fails(
        &[
            "mount",
            empty.path().to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
        ],
        trace.to_str().unwrap(),
    );
    assert!(e.contains("No such file"), "{e}");
    assert!(!is_mounted(empty.path()));
}

/// Numbers out of range are refused before mounting, in one line naming the option: the
/// kernel would have taken `--max-write 100` as 4096, and `--threads 0` mounted with one
/// thread while saying "0 threads".
#[test]
fn mount_options_out_of_range_are_refused_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    for (option, bad) in [
        ("--threads", "0"),
        ("--max-write", "100"),
        ("--max-write", "33554432"),
        ("--read-ahead-kb", "99999999"),
        ("--poll-us", "99999999999"),
        ("--chunk-min", "0"),
    ] {
        let e = command_fails(&["mount", dir, option, bad], bad);
        assert!(e.contains(option.trim_start_matches('-')), "{e}");
    }
    assert!(!is_mounted(empty.path()));
}

#[test]
fn tree_prints_counts_and_refuses_other_file_systems() {
    let m = Mount::new();
    sh(m.path(), "mkdir -p a/b/c && touch a/f a/b/g && mkdir d");
    let out = Command::new(MEMFS)
        .arg("tree")
        .arg(m.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("[6]"), "{text}");
    assert_eq!(
        &lines[1..],
        [
            "├── a/ [4]",
            "│   └── b/ [2]",
            "│       └── c/ [0]",
            "└── d/ [0]"
        ]
    );
    let shallow = Command::new(MEMFS)
        .args(["tree", "--depth", "1"])
        .arg(m.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shallow.stdout).lines().count(), 3);

    let other = tempfile::tempdir().unwrap();
    let out = Command::new(MEMFS)
        .arg("tree")
        .arg(other.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on a memfs mount"));
}

#[test]
fn a_panicking_request_fails_alone_and_the_mount_keeps_serving() {
    let m = Mount::with_env(&[], &[("MEMFS_TEST_PANIC_ON_LOOKUP", "boom")]);
    std::fs::write(m.join("before"), b"kept").unwrap();
    for _ in 0..3 {
        let err = std::fs::metadata(m.join("boom")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    assert_eq!(std::fs::read(m.join("before")).unwrap(), b"kept");
    std::fs::write(m.join("after"), b"still serving").unwrap();
    assert_eq!(std::fs::read(m.join("after")).unwrap(), b"still serving");
    assert_counts_match_walk(m.path());
    assert!(m.unmount().success());
}

/// Serving threads on /dev/fuse poll for the next request before sleeping (`--poll-us`):
/// requests back to back, requests after the threads went to sleep, and requests from
/// several threads at once are all answered, an idle mount burns no CPU, and unmount still
/// ends the server, with polling off, at the default and with a long budget.
#[test]
fn polling_threads_serve_sleep_when_idle_and_unmount() {
    let fuser_ticks = |pid| thread_ticks(pid, "fuser-0") + thread_ticks(pid, "fuser-1");
    for poll in [&["--poll-us", "0"][..], &[], &["--poll-us", "5000"]] {
        let args = &[&["--dev-fuse"][..], poll].concat();
        let m = Mount::with_args(args);
        for i in 0..300 {
            std::fs::write(m.join(format!("f{i}")), format!("file {i}")).unwrap();
        }
        // Longer than any budget: every thread is asleep when the next request comes.
        std::thread::sleep(Duration::from_millis(50));
        std::thread::scope(|s| {
            for t in 0..4 {
                let m = &m;
                s.spawn(move || {
                    for i in (t..300).step_by(4) {
                        let got = std::fs::read_to_string(m.join(format!("f{i}"))).unwrap();
                        assert_eq!(got, format!("file {i}"), "{args:?}");
                        std::fs::remove_file(m.join(format!("f{i}"))).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), 0, "{args:?}");
        std::thread::sleep(Duration::from_millis(100));
        let before = fuser_ticks(m.pid());
        std::thread::sleep(Duration::from_secs(1));
        let idle = fuser_ticks(m.pid()) - before;
        // Clock ticks are 10 ms: a thread still polling would show about 100.
        assert!(
            idle <= 5,
            "{args:?}: {idle} ticks of CPU in one idle second"
        );
        let status = m.unmount();
        assert!(status.success(), "{args:?}: exit status {status:?}");
    }
}
