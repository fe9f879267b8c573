//! Whole-tree snapshots, Merkle hashes, `memfs diff` and `memfs restore --snapshot` through
//! a real mount.

mod common;
use common::*;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn memfs(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(MEMFS).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hash(path: &Path) -> String {
    String::from_utf8(xattr_get(path, "user.memfs.hash").expect("hash xattr")).unwrap()
}

fn errno_of(r: std::io::Result<impl Sized>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

#[test]
fn mkdir_takes_a_snapshot_that_stays_as_it_was_and_refuses_changes() {
    let m = Mount::new();
    sh(
        m.path(),
        "mkdir -p a/b && echo one > a/b/f && echo two > g && ln -s f a/b/l",
    );
    let snaps = m.join(".memfs/snapshots");
    std::fs::create_dir(snaps.join("s1")).unwrap();
    assert_eq!(
        errno_of(std::fs::create_dir(snaps.join("s1"))),
        libc::EEXIST
    );
    assert_eq!(
        errno_of(std::fs::create_dir(snaps.join("x".repeat(256)))),
        libc::ENAMETOOLONG
    );
    let listed = sh(m.path(), "ls .memfs/snapshots");
    assert_eq!(listed, "s1\n");
    // The live tree changes; the snapshot does not.
    sh(m.path(), "echo changed > a/b/f && rm g && mkdir new");
    let s1 = snaps.join("s1");
    assert_eq!(std::fs::read_to_string(s1.join("a/b/f")).unwrap(), "one\n");
    assert_eq!(std::fs::read_to_string(s1.join("g")).unwrap(), "two\n");
    assert_eq!(
        std::fs::read_link(s1.join("a/b/l")).unwrap(),
        Path::new("f")
    );
    assert!(!s1.join("new").exists());
    // Its own descendant counts: a, a/b, a/b/f, a/b/l, g.
    assert_eq!(descendants(&s1), 5);
    assert_eq!(descendants(&s1.join("a")), 3);
    // Read-only, like the rest of .memfs.
    assert_eq!(errno_of(std::fs::write(s1.join("g"), "x")), libc::EROFS);
    assert_eq!(errno_of(std::fs::write(s1.join("h"), "x")), libc::EROFS);
    assert_eq!(errno_of(std::fs::remove_file(s1.join("g"))), libc::EROFS);
    assert_eq!(errno_of(std::fs::create_dir(s1.join("d"))), libc::EROFS);
    assert_eq!(
        errno_of(std::fs::rename(s1.join("g"), s1.join("h"))),
        libc::EROFS
    );
    // Hashes: a file's equals the live one's while the content is the same.
    sh(m.path(), "echo one > a/b/f");
    assert_eq!(hash(&s1.join("a/b/f")), hash(&m.join("a/b/f")));
    assert_ne!(hash(&s1), hash(m.path()));
    assert_eq!(hash(&s1.join("a")), hash(&m.join("a")));
    // Not listed, not settable.
    let listed = sh(
        m.path(),
        "python3 -c 'import os; print(os.listxattr(\"a/b/f\"))'",
    );
    assert!(!listed.contains("memfs.hash"), "{listed}");
    let set = sh(
        m.path(),
        "python3 -c 'import os\ntry:\n os.setxattr(\"a/b/f\", \"user.memfs.hash\", b\"0\")\nexcept OSError as e: print(e.errno)'",
    );
    assert_eq!(set.trim(), libc::EPERM.to_string());
    // rmdir deletes it.
    std::fs::remove_dir(&s1).unwrap();
    assert!(!s1.exists());
    assert_eq!(sh(m.path(), "ls .memfs/snapshots"), "");
    let fsck = std::fs::read_to_string(m.join(".memfs/fsck")).unwrap();
    assert!(fsck.contains("\"ok\": true"), "{fsck}");
}

#[test]
fn the_cli_takes_lists_diffs_and_deletes_snapshots() {
    let m = Mount::new();
    // 20 directories of 40 files: a diff of three changes visits a few hundred nodes.
    sh(
        m.path(),
        "for d in $(seq 20); do mkdir d$d; for f in $(seq 40); do echo $d.$f > d$d/f$f; done; done",
    );
    let mount = m.path().to_str().unwrap();
    let (ok, out, err) = memfs(&["snapshot", "create", mount, "before"]);
    assert!(ok, "{err}");
    assert!(out.contains("before"), "{out}");
    sh(
        m.path(),
        "echo x >> d3/f7 && rm d9/f1 && echo new > d15/added && chmod 600 d20/f40",
    );
    let (ok, _, err) = memfs(&["snapshot", "create", mount, "after"]);
    assert!(ok, "{err}");
    let (ok, out, _) = memfs(&["snapshot", "list", mount]);
    assert!(
        ok && out.contains("before") && out.contains("after"),
        "{out}"
    );
    let (ok, _, err) = memfs(&["snapshot", "create", mount, "after"]);
    assert!(!ok && err.contains("exists"), "{err}");

    let before = m.join(".memfs/snapshots/before");
    let after = m.join(".memfs/snapshots/after");
    let expected = "M d20/f40\nA d15/added\nM d3/f7\nD d9/f1\n";
    let mut sorted: Vec<&str> = expected.lines().collect();
    sorted.sort_by_key(|l| &l[2..]);
    let expected = sorted.join("\n") + "\n";
    for b in [after.as_path(), m.path()] {
        let (ok, out, err) = memfs(&["diff", before.to_str().unwrap(), b.to_str().unwrap()]);
        assert!(ok, "{err}");
        assert_eq!(out, expected, "against {}", b.display());
        let (ok, json, _) = memfs(&[
            "diff",
            "--json",
            before.to_str().unwrap(),
            b.to_str().unwrap(),
        ]);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["changes"].as_array().unwrap().len(), 4);
        assert_eq!(v["changes"][0]["kind"], "A");
        assert_eq!(v["changes"][0]["path"], "d15/added");
        let visited = v["visited"].as_u64().unwrap();
        // Root (20 + 20), four changed directories (about 40 + 40 each): far from 1,640.
        assert!(visited <= 400, "visited {visited}");
    }
    // Equal trees: nothing printed, only the two roots looked at.
    let (ok, json, _) = memfs(&["diff", "--json", after.to_str().unwrap(), mount]);
    assert!(ok);
    assert_eq!(json.trim(), r#"{"changes":[],"visited":2}"#);
    // Not on memfs: one line.
    let (ok, _, err) = memfs(&["diff", "/tmp", mount]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not on a memfs mount"), "{err}");

    let (ok, _, err) = memfs(&["snapshot", "delete", mount, "before"]);
    assert!(ok, "{err}");
    let (_, out, _) = memfs(&["snapshot", "list", mount]);
    assert!(!out.contains("before"), "{out}");
    let (ok, _, err) = memfs(&["snapshot", "delete", mount, "before"]);
    assert!(!ok && err.contains("no snapshot"), "{err}");
}

#[test]
fn restore_brings_back_a_file_or_a_subtree_and_deletes_only_when_asked() {
    let m = Mount::new();
    sh(
        m.path(),
        "mkdir -p src/lib && echo main > src/main.c && echo lib > src/lib/a.c && chmod 640 src/lib/a.c",
    );
    let mount = m.path().to_str().unwrap();
    assert!(memfs(&["snapshot", "create", mount, "s"]).0);
    sh(
        m.path(),
        "echo broken > src/main.c && rm -r src/lib && echo junk > src/junk.o",
    );
    // One file.
    let main = m.join("src/main.c");
    let (ok, out, err) = memfs(&["restore", "--snapshot", "s", main.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 files written"), "{out}");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), "main\n");
    // A new version of the file, not a replacement (at least: created, broken, restored).
    let log = memfs(&["log", main.to_str().unwrap()]).1;
    assert!(log.lines().count() > 3, "{log}");
    // A subtree, keeping what the snapshot lacks...
    let src = m.join("src");
    let (ok, _, err) = memfs(&["restore", "--snapshot", "s", src.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(m.join("src/lib/a.c")).unwrap(),
        "lib\n"
    );
    let mode = std::fs::metadata(m.join("src/lib/a.c"))
        .unwrap()
        .permissions();
    assert_eq!(mode.mode() & 0o777, 0o640);
    assert!(m.join("src/junk.o").exists());
    // ... and with --delete, not.
    let (ok, _, err) = memfs(&[
        "restore",
        "--snapshot",
        "s",
        "--delete",
        src.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(!m.join("src/junk.o").exists());
    let snap_src = m.join(".memfs/snapshots/s/src");
    assert_eq!(hash(&snap_src), hash(&src));
    let (_, out, _) = memfs(&["diff", snap_src.to_str().unwrap(), src.to_str().unwrap()]);
    assert_eq!(out, "");
    // The whole mount, from its root.
    sh(m.path(), "rm -r src && echo other > top");
    let (ok, _, err) = memfs(&["restore", "--snapshot", "s", "--delete", mount]);
    assert!(ok, "{err}");
    assert_eq!(
        hash(m.path()),
        hash(&m.join(".memfs/snapshots/s")),
        "{}",
        sh(m.path(), "ls -laR")
    );
}

#[test]
fn a_snapshot_taken_mid_write_holds_the_bytes_written_so_far() {
    // Without the writeback cache every write(2) reaches memfs at once.
    let m = Mount::with_args(&["--no-writeback-cache"]);
    let path = m.join("log");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"committed ").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"uncommitted").unwrap();
    let snaps = m.join(".memfs/snapshots");
    std::fs::create_dir(snaps.join("mid")).unwrap();
    // The live file's hash covers its uncommitted bytes too, as the snapshot's does.
    assert_eq!(hash(&path), hash(&snaps.join("mid/log")));
    f.write_all(b" and more after the snapshot").unwrap();
    drop(f);
    assert_eq!(
        std::fs::read_to_string(snaps.join("mid/log")).unwrap(),
        "committed uncommitted"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "committed uncommitted and more after the snapshot"
    );
    let fsck = std::fs::read_to_string(m.join(".memfs/fsck")).unwrap();
    assert!(fsck.contains("\"ok\": true"), "{fsck}");
}

#[test]
fn tree_shows_hashes_and_a_chmod_or_a_write_changes_them_up_the_path() {
    let m = Mount::new();
    sh(m.path(), "mkdir -p x/y z && echo a > x/y/f && echo b > z/g");
    let before = (hash(m.path()), hash(&m.join("x")), hash(&m.join("z")));
    std::fs::set_permissions(m.join("x/y/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_ne!(hash(m.path()), before.0);
    assert_ne!(hash(&m.join("x")), before.1);
    assert_eq!(hash(&m.join("z")), before.2);
    let (ok, out, err) = memfs(&["tree", "--hash", m.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    let x = hash(&m.join("x"));
    assert!(out.contains(&format!("x/ [2] {}", &x[..16])), "{out}");
}

#[test]
fn a_big_snapshot_directory_lists_every_entry_once() {
    let m = Mount::new();
    sh(
        m.path(),
        "mkdir big && python3 -c 'import os\nfor i in range(2500): open(\"big/f%d\" % i, \"w\").close()'",
    );
    std::fs::create_dir(m.join(".memfs/snapshots/s")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(m.join(".memfs/snapshots/s/big"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut live: Vec<String> = (0..2500).map(|i| format!("f{i}")).collect();
    live.sort();
    assert_eq!(names, live);
    assert_eq!(descendants(&m.join(".memfs/snapshots/s/big")), 2500);
}
