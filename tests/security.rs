//! Security semantics as on tmpfs: a private mount, setuid/setgid clearing, sticky
//! directories, setgid directory inheritance; and a writer killed mid-write.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs as user 65534 (nobody) with no supplementary groups.
const NOBODY: &str = "setpriv --reuid=65534 --regid=65534 --clear-groups";

/// Each line prints the mode bits (or error) after one step; run as root in `dir`.
fn security_script() -> String {
    let u = NOBODY;
    // Root without CAP_FSETID, and nobody as a supplementary member of group 100.
    let nofsetid = "setpriv --bounding-set=-fsetid";
    let member = "setpriv --reuid=65534 --regid=65534 --groups=100";
    format!(
        r#"
chmod 1777 .
echo data > f; chown 65534:65534 f; chmod 6755 f; stat -c 'start %a' f
{u} sh -c 'echo more >> f'; stat -c 'write by owner clears suid+sgid: %a' f
chmod 6755 f; {u} truncate -s 1 f; stat -c 'truncate by owner: %a' f
chmod 6755 f; {u} dd if=/dev/zero of=f bs=1 count=1 seek=3 conv=notrunc status=none; stat -c 'pwrite by owner: %a' f
chmod 2745 f; {u} sh -c 'echo m >> f'; stat -c 'sgid without group exec survives a write: %a' f
chmod 6755 f; echo x >> f; stat -c 'write by root keeps both: %a' f
chmod 6755 f; chown 65534:65534 f; stat -c 'chown clears: %a' f
chmod 6755 f; {u} sh -c ': > f'; stat -c 'O_TRUNC open by owner: %a' f
chmod 6755 f; {u} chgrp 65534 f; stat -c 'chgrp by owner: %a' f
chmod 6755 f; {nofsetid} sh -c 'echo r >> f'; stat -c 'write by root without CAP_FSETID: %a' f
chmod 6755 f; {nofsetid} truncate -s 0 f; stat -c 'truncate by root without CAP_FSETID: %a' f
chmod 6755 f; truncate -s 0 f; stat -c 'truncate by root keeps both: %a' f
chown 65534:100 f; chmod 2666 f; {u} sh -c 'echo n >> f'; stat -c 'sgid without group exec, write by a non-member: %a' f
chmod 2666 f; {member} sh -c 'echo n >> f'; stat -c 'write by a supplementary member: %a' f
chmod 6645 f; chown 65534:100 f; stat -c 'chown by root keeps sgid without group exec: %a' f
chmod 2645 f; {nofsetid} chown 65534:100 f; stat -c 'chown by root without CAP_FSETID: %a' f
chown 65534:65534 f
mkdir -p open; chmod 777 open; echo z > open/g; chmod 6777 open/g
{u} sh -c 'echo w >> open/g'; stat -c 'write by another user: %a' open/g
echo a > rootfile; {u} rm -f rootfile 2>&1 | sed 's/.*: //'; ls rootfile
{u} sh -c 'echo b > userfile'; setpriv --reuid=1000 --regid=1000 --clear-groups rm -f userfile 2>&1 | sed 's/.*: //'
setpriv --reuid=1000 --regid=1000 --clear-groups mv userfile stolen 2>&1 | sed 's/.*: //'
{u} rm userfile && echo 'owner removes own file in sticky dir'
mkdir sg; chown 0:100 sg; chmod 2775 sg; mkdir sg/sub; touch sg/file; stat -c '%n %a %g' sg/sub sg/file
{u} sh -c 'touch mine; chgrp 0 mine 2>&1 | sed "s/.*: //"; chmod 2755 mine; stat -c "chmod g+s own group: %a" mine'
chown 65534:100 mine; {u} chmod 2755 mine; stat -c 'chmod g+s by non-member drops it: %a' mine
mkdir closed; chmod 755 closed; {u} sh -c 'echo x > closed/nope' 2>&1 | sed 's/.*: //'
"#
    )
}

#[test]
fn permissions_ownership_and_mode_clearing_match_tmpfs() {
    let tmpfs = tempfile::tempdir().unwrap();
    sh(
        tmpfs.path(),
        &format!("mount -t tmpfs tmpfs {}", tmpfs.path().display()),
    );
    let on_tmpfs = bash(tmpfs.path(), &security_script());
    sh(
        Path::new("/"),
        &format!("umount {}", tmpfs.path().display()),
    );

    // Other users reach into the mount, so it must allow them.
    let m = Mount::with_args(&["--allow-other"]);
    let on_memfs = bash(m.path(), &security_script());
    let expected = String::from_utf8_lossy(&on_tmpfs.stdout);
    let got = String::from_utf8_lossy(&on_memfs.stdout);
    // The script must show the rules at work, or comparing proves nothing.
    for line in [
        "write by owner clears suid+sgid: 755",
        "write by root keeps both: 6755",
        "chown clears: 755",
        "sgid without group exec survives a write: 2745",
        "O_TRUNC open by owner: 755",
        "chgrp by owner: 755",
        "write by root without CAP_FSETID: 755",
        "truncate by root keeps both: 6755",
        "sgid without group exec, write by a non-member: 666",
        "write by a supplementary member: 2666",
        "chown by root keeps sgid without group exec: 2645",
        "chown by root without CAP_FSETID: 645",
        "Operation not permitted",
        "sg/sub 2755 100",
        "chmod g+s by non-member drops it: 755",
    ] {
        assert!(
            expected.contains(line),
            "tmpfs shows no {line:?}: {expected}"
        );
    }
    assert_eq!(got, expected, "memfs differs from tmpfs");
    assert_counts_match_walk(m.path());
}

#[test]
fn the_mount_is_private_unless_allow_other() {
    let private = Mount::new();
    sh(private.path(), "chmod 755 . && echo hi > f && chmod 644 f");
    let out = bash(private.path(), &format!("{NOBODY} cat f"));
    assert!(!out.status.success(), "another user read a private mount");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shared = Mount::with_args(&["--allow-other"]);
    sh(
        shared.path(),
        "chmod 755 . && echo hi > f && chmod 600 f && echo open > g",
    );
    let read = |name: &str| bash(shared.path(), &format!("{NOBODY} cat {name}"));
    assert_eq!(read("g").stdout, b"open\n", "--allow-other lets others in");
    assert!(!read("f").status.success(), "file permissions still apply");
}

#[test]
fn nothing_under_dot_memfs_is_writable_even_by_root() {
    let m = Mount::new();
    std::fs::write(m.join("a"), b"x").unwrap();
    for script in [
        "echo x > .memfs/stats.json",
        "touch .memfs/new",
        "mkdir .memfs/d",
        "rm .memfs/stats.json",
        "chmod 777 .memfs",
        "mv .memfs gone",
        "echo x > .memfs/versions/a/1",
        "rm -r .memfs/versions",
    ] {
        let out = bash(m.path(), script);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{script} succeeded");
        assert!(
            err.contains("Read-only file system") || err.contains("Operation not permitted"),
            "{script}: {err}"
        );
    }
    assert_eq!(std::fs::read(m.join("a")).unwrap(), b"x");
}

#[test]
fn a_writer_killed_mid_write_leaves_the_file_system_consistent() {
    let m = Mount::new();
    // Rewrites, appends and creates as fast as it can until it is killed.
    let script = r#"
import os, sys
os.makedirs("w/sub", exist_ok=True)
block = bytes(range(256)) * 256
i = 0
while True:
    with open(f"w/sub/f{i % 50}", "wb") as f:
        for k in range(4):
            f.write(block)
    with open("w/log", "ab") as f:
        f.write(b"%d\n" % i)
        f.flush()
        os.fsync(f.fileno())
    if i % 7 == 0:
        os.replace(f"w/sub/f{i % 50}", f"w/r{i % 11}")
    i += 1
"#;
    let mut writer = Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(m.path())
        .spawn()
        .unwrap();
    // Kill it once it has been at it for a while, in the middle of whatever it does.
    let t0 = std::time::Instant::now();
    while std::fs::read(m.join("w/log")).map_or(0, |l| l.len()) < 40 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the writer never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(137));
    unsafe { libc::kill(writer.id() as i32, libc::SIGKILL) };
    writer.wait().unwrap();

    assert_counts_match_walk(m.path());
    // Every file reads back whole, its size matching the bytes read.
    for entry in walk_files(m.path()) {
        let meta = std::fs::metadata(&entry).unwrap();
        let bytes = std::fs::read(&entry).unwrap();
        assert_eq!(bytes.len() as u64, meta.len(), "{}", entry.display());
        if entry.file_name().unwrap() != "log" {
            // Whatever was written is the pattern (a kill can cut a file short, not garble it).
            assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 256) as u8));
        }
    }
    // The fsynced log is a run of whole lines 0, 1, 2, ...
    let log = std::fs::read_to_string(m.join("w/log")).unwrap();
    for (i, line) in log.lines().enumerate() {
        assert_eq!(line, i.to_string(), "log line {i}");
    }
    assert!(log.lines().count() > 3, "the writer barely ran: {log}");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join(".memfs/stats.json")).unwrap()).unwrap();
    assert_eq!(
        stats["files"].as_u64().unwrap(),
        walk_files(m.path()).len() as u64
    );
    // Every blob's reference count equals a recount over the recipes.
    let fsck: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join(".memfs/fsck")).unwrap()).unwrap();
    assert_eq!(fsck["ok"], true, "{fsck}");
    // The mount keeps serving.
    std::fs::write(m.join("after"), b"still here").unwrap();
    assert_eq!(std::fs::read(m.join("after")).unwrap(), b"still here");
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".memfs" {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(walk_files(&e.path()));
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out
}
