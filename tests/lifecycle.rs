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
    let m = Mount::new();
    assert!(mount_fails(m.path()).contains("already a mount point"));
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
