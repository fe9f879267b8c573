//! Versions, dedup and the `.memfs` control directory through a real mount.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use memfs::control::Stats;
use memfs::testdata::noise;

fn memfs(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(MEMFS).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `path` from a child process doing exactly open, write, close.
fn write_once(path: &std::path::Path, text: &str) {
    let status = Command::new("python3")
        .arg("-c")
        .arg("import sys; f = open(sys.argv[1], 'w'); f.write(sys.argv[2]); f.close()")
        .arg(path)
        .arg(text)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn identical_files_and_copies_are_stored_once() {
    let m = Mount::new();
    let data = noise(1 << 20, 1);
    std::fs::write(m.join("a"), &data).unwrap();
    let one = m.stats();
    assert!(one.stored_bytes >= data.len() as u64);
    std::fs::write(m.join("b"), &data).unwrap();
    sh(m.path(), "cp a c && cp --reflink=never a d");
    let four = m.stats();
    assert_eq!(four.stored_bytes, one.stored_bytes, "copies stored again");
    assert_eq!(four.logical_bytes, 4 * data.len() as u64);
    assert!(four.dedup_ratio > 3.9, "dedup ratio {}", four.dedup_ratio);
    assert_eq!(std::fs::read(m.join("d")).unwrap(), data);
}

#[test]
fn a_small_edit_to_a_large_file_stores_a_few_chunks() {
    let m = Mount::new();
    let data = noise(16 << 20, 2);
    std::fs::write(m.join("big"), &data).unwrap();
    let before = m.stats();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.join("big"))
            .unwrap();
        f.write_all_at(b"a small edit", 5 << 20).unwrap();
    }
    let after = m.stats();
    let added = after.stored_bytes - before.stored_bytes;
    assert!(
        added <= 3 * 64 * 1024,
        "a 12-byte edit stored {added} new bytes"
    );
    // Other test threads fork and exec while this one holds the file open: each exec
    // closes an inherited copy of the descriptor, a real FLUSH that may commit a partial
    // version. So count only what the edit added: one version holding the new chunks.
    let log = String::from_utf8(xattr_get(&m.join("big"), "user.memfs.versions").unwrap()).unwrap();
    let versions: Vec<memfs::fs::VersionInfo> = serde_json::from_str(&log).unwrap();
    assert_eq!(after.versions, before.versions + 1, "{versions:?}");
    let last = versions.last().unwrap();
    assert_eq!((last.size, last.new_bytes), (data.len() as u64, added));
}

#[test]
fn versions_of_repeated_writes_are_readable_and_restorable() {
    let m = Mount::new();
    let f = m.join("notes.txt");
    // Written by a child that only opens, writes and closes: shell redirections and dd
    // dup2 and close the descriptor (a flush of their own), and another test thread's fork
    // would hold a copy of ours.
    for i in 1..=3 {
        write_once(&f, &format!("version {i}\n"));
    }
    let dir = m.join(".memfs/versions/notes.txt");
    let names: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    assert_eq!(names, vec![1, 2, 3]);
    assert_eq!(
        std::fs::read_to_string(dir.join("2")).unwrap(),
        "version 2\n"
    );
    sh(m.path(), "diff .memfs/versions/notes.txt/3 notes.txt");

    let (ok, out, err) = memfs(&["log", f.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().nth(2).unwrap().contains("close"), "{out}");

    let (ok, out, err) = memfs(&["restore", f.to_str().unwrap(), "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("now version 4"), "{out}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "version 1\n");
    let (ok, _, err) = memfs(&["restore", f.to_str().unwrap(), "99"]);
    assert!(!ok);
    assert!(
        err.contains("no version 99") && err.lines().count() == 1,
        "{err}"
    );

    // Nested paths mirror the tree.
    std::fs::create_dir_all(m.join("a/b")).unwrap();
    write_once(&m.join("a/b/c"), "x\n");
    write_once(&m.join("a/b/c"), "y\n");
    assert_eq!(
        std::fs::read_to_string(m.join(".memfs/versions/a/b/c/1")).unwrap(),
        "x\n"
    );
}

#[test]
fn a_commit_that_changes_nothing_makes_no_version() {
    let m = Mount::new();
    std::fs::write(m.join("f"), b"same").unwrap();
    std::fs::write(m.join("f"), b"same").unwrap();
    sh(m.path(), "exec 3>>f; exec 3>&-");
    let versions: Vec<memfs::fs::VersionInfo> =
        serde_json::from_slice(&xattr_get(&m.join("f"), "user.memfs.versions").unwrap()).unwrap();
    // write() truncates then writes: the truncation may be seen at a close of its own, but
    // the same bytes again, or an open and close, add nothing.
    assert!(
        versions.iter().filter(|v| v.size == 4).count() <= 2,
        "{versions:?}"
    );
    let last = versions.last().unwrap().version;
    sh(m.path(), "cat f > /dev/null; touch f");
    let again: Vec<memfs::fs::VersionInfo> =
        serde_json::from_slice(&xattr_get(&m.join("f"), "user.memfs.versions").unwrap()).unwrap();
    assert_eq!(again.last().unwrap().version, last);
}

#[test]
fn keep_versions_bounds_history_and_frees_chunks() {
    let m = Mount::with_args(&["--keep-versions", "2"]);
    for i in 0..5u64 {
        std::fs::write(m.join("f"), noise(200_000, 10 + i)).unwrap();
    }
    let s = m.stats();
    assert_eq!(s.versions, 2);
    assert!(
        s.stored_bytes <= 2 * 200_000 + 4096,
        "stored {}",
        s.stored_bytes
    );
}

#[test]
fn everything_under_memfs_is_read_only() {
    let m = Mount::new();
    std::fs::write(m.join("f"), b"x").unwrap();
    let erofs = |r: std::io::Result<()>| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EROFS));
    };
    erofs(std::fs::write(m.join(".memfs/new"), b"x"));
    erofs(std::fs::create_dir(m.join(".memfs/d")));
    erofs(std::fs::write(m.join(".memfs/versions/f/1"), b"y"));
    erofs(std::fs::remove_file(m.join(".memfs/versions/f/1")));
    erofs(std::fs::remove_file(m.join(".memfs/stats.json")));
    erofs(std::fs::rename(m.join("f"), m.join(".memfs/f")));
    erofs(std::fs::remove_dir(m.join(".memfs")));
    use std::os::unix::fs::PermissionsExt;
    erofs(std::fs::set_permissions(
        m.join(".memfs/stats.json"),
        std::fs::Permissions::from_mode(0o666),
    ));
    // Hidden from the root listing, reachable by name.
    let names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["f".to_string()]);
    assert!(m.join(".memfs").is_dir());
}

#[test]
fn the_store_is_empty_after_removing_everything() {
    let m = Mount::new();
    sh(
        m.path(),
        "mkdir -p d/e && head -c 3000000 /dev/urandom > d/e/r && cp d/e/r d/copy && \
         echo hello > d/h && echo again > d/h && seq 1 100000 > s",
    );
    assert!(m.stats().blobs > 0);
    sh(m.path(), "rm -rf d s");
    // The kernel forgets unlinked inodes asynchronously.
    let start = Instant::now();
    loop {
        let s = m.stats();
        if s.blobs == 0 && s.stored_bytes == 0 && s.versions == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "store not empty: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stats_command_and_stats_out() {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let m = Mount::with_args(&["--stats-out", out_file.path().to_str().unwrap()]);
    std::fs::write(m.join("f"), noise(100_000, 3)).unwrap();
    let (ok, table, err) = memfs(&["stats", m.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        table.contains("dedup ratio") && table.contains("stored bytes"),
        "{table}"
    );
    // Noise does not compress: its chunks are held whole.
    assert!(
        table.contains("chunks held in memory") && table.contains("(100% of the stored bytes)"),
        "{table}"
    );
    let (ok, json, _) = memfs(&["stats", "--json", m.path().to_str().unwrap()]);
    assert!(ok);
    let s: Stats = serde_json::from_str(&json).unwrap();
    assert_eq!(s.files, 1);
    let other = tempfile::tempdir().unwrap();
    let (ok, _, err) = memfs(&["stats", other.path().to_str().unwrap()]);
    assert!(!ok && err.contains("not on a memfs mount"), "{err}");
    let status = m.unmount();
    assert!(status.success());
    let s: Stats = serde_json::from_slice(&std::fs::read(out_file.path()).unwrap()).unwrap();
    assert_eq!(s.logical_bytes, 100_000);
}

/// The kernel keeps a file's pages and a directory's listing across opens (FOPEN_KEEP_CACHE):
/// every change must still show, whichever name or descriptor made it, and `.memfs`, whose
/// listings change without the kernel seeing it, must never show a stale one.
#[test]
fn cached_pages_and_listings_follow_every_change() {
    let m = Mount::new();
    let f = m.join("cached.txt");
    let read = || std::fs::read_to_string(&f).unwrap();
    write_once(&f, "first version, the longer one\n");
    assert_eq!(read(), "first version, the longer one\n");
    assert_eq!(
        read(),
        "first version, the longer one\n",
        "read from the cache"
    );

    // The same inode under another name, and a second descriptor.
    std::fs::hard_link(&f, m.join("alias.txt")).unwrap();
    write_once(&m.join("alias.txt"), "second\n");
    assert_eq!(read(), "second\n");
    let versions = m.join(".memfs/versions/cached.txt");
    let listed = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&versions)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(), ["1", "2"]);
    let mut listing = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    listing.sort();
    assert_eq!(listing, ["alias.txt", "cached.txt"]);

    // A third version appears under .memfs at once, and restore reads back the first.
    write_once(&f, "third\n");
    assert_eq!(listed(), ["1", "2", "3"]);
    let (ok, _, err) = memfs(&["restore", f.to_str().unwrap(), "1"]);
    assert!(ok, "{err}");
    assert_eq!(read(), "first version, the longer one\n");
    assert_eq!(listed(), ["1", "2", "3", "4"]);
    assert_eq!(
        std::fs::read_to_string(versions.join("2")).unwrap(),
        "second\n"
    );
    assert_eq!(
        std::fs::read_to_string(versions.join("4")).unwrap(),
        "first version, the longer one\n"
    );

    // A listing kept across opens still shows what was added and removed since.
    std::fs::remove_file(m.join("alias.txt")).unwrap();
    std::fs::write(m.join("new.txt"), b"n").unwrap();
    let mut listing = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    listing.sort();
    assert_eq!(listing, ["cached.txt", "new.txt"]);

    // The same through descriptors kept open, with no path walk between two listings (as
    // in `cd .memfs/versions/cached.txt; ls; ...; ls`): rewinding shows the new version,
    // and the new file in the mirror of the root.
    let history = OpenDir::new(&versions);
    let mirror = OpenDir::new(&m.join(".memfs/versions"));
    assert_eq!(history.names(), ["1", "2", "3", "4"]);
    assert_eq!(mirror.names(), ["cached.txt", "new.txt"]);
    write_once(&f, "fifth\n");
    std::fs::write(m.join("newer.txt"), b"n").unwrap();
    assert_eq!(history.names(), ["1", "2", "3", "4", "5"]);
    assert_eq!(mirror.names(), ["cached.txt", "new.txt", "newer.txt"]);
}

/// A directory stream held open across listings.
struct OpenDir(*mut libc::DIR);

impl OpenDir {
    fn new(path: &Path) -> OpenDir {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let dir = unsafe { libc::opendir(c.as_ptr()) };
        assert!(!dir.is_null(), "opendir {}", path.display());
        OpenDir(dir)
    }

    /// Every name but "." and "..", sorted, read from the start (`rewinddir`).
    fn names(&self) -> Vec<String> {
        unsafe { libc::rewinddir(self.0) };
        let mut names = Vec::new();
        loop {
            let entry = unsafe { libc::readdir(self.0) };
            if entry.is_null() {
                break;
            }
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            let name = name.to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        names
    }
}

impl Drop for OpenDir {
    fn drop(&mut self) {
        unsafe { libc::closedir(self.0) };
    }
}
