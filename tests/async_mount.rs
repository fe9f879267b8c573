//! Commits handed off to the commit workers, through a real mount: a version shows in
//! `memfs log`, `.memfs/versions` and the versions xattr as soon as the close that made it
//! has returned, and an unmount right after big closes installs them before the stats file
//! is written.

mod common;
use common::*;

use std::io::Write;
use std::process::Command;

use memfs::control::Stats;
use memfs::fs::VersionInfo;
use memfs::testdata::noise;

const MIB: usize = 1 << 20;

fn write_and_close(path: &std::path::Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    for piece in data.chunks(MIB) {
        f.write_all(piece).unwrap();
    }
    drop(f);
}

#[test]
fn a_version_shows_once_the_close_that_made_it_returns() {
    let m = Mount::new();
    let f = m.join("big");
    for round in 1..=3u64 {
        let data = noise(24 * MIB, 2 * round + 1);
        write_and_close(&f, &data);
        let out = Command::new(MEMFS).arg("log").arg(&f).output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{log}");
        let sizes: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&(24 * MIB).to_string()))
            .collect();
        assert_eq!(
            sizes.len() as u64,
            round,
            "memfs log after close {round}:\n{log}"
        );
        let versions: Vec<VersionInfo> =
            serde_json::from_slice(&xattr_get(&f, "user.memfs.versions").unwrap()).unwrap();
        let newest = versions.last().unwrap();
        assert_eq!(newest.size, 24 * MIB as u64);
        let copy = m.join(format!(".memfs/versions/big/{}", newest.version));
        assert!(
            std::fs::read(copy).unwrap() == data,
            "version {}",
            newest.version
        );
        assert!(std::fs::read(&f).unwrap() == data);
    }
}

#[test]
fn unmount_installs_pending_commits_before_the_stats_file() {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let m = Mount::with_args(&["--stats-out", out_file.path().to_str().unwrap()]);
    for i in 0..4u64 {
        write_and_close(&m.join(format!("f{i}")), &noise(16 * MIB, 2 * i + 11));
    }
    assert!(m.unmount().success());
    let s: Stats = serde_json::from_slice(&std::fs::read(out_file.path()).unwrap()).unwrap();
    // dd-like writers open with O_TRUNC: an empty file's close is not a version, the data's
    // is. Other test threads fork and exec while this one holds a file open: each exec
    // closes an inherited copy of the descriptor, a real FLUSH that may commit a partial
    // version too. So: at least the four full versions, all installed.
    assert!(s.versions >= 4, "{s:?}");
    assert!(s.version_bytes >= 64 * MIB as u64, "{s:?}");
    assert_eq!(s.dirty_bytes, 0, "{s:?}");
    assert_eq!(s.logical_bytes, 64 * MIB as u64);
}

/// A commit worker that panics poisons only the file it was committing: the close that
/// handed it off has returned, the file answers EIO from then on and can be removed, and
/// everything else (and the store's counts) stays intact.
#[test]
fn a_panicking_commit_worker_poisons_only_its_file() {
    let m = Mount::with_env(&[], &[("MEMFS_TEST_PANIC_IN", "commit:BOOM-COMMIT")]);
    let mut bad = b"BOOM-COMMIT".to_vec();
    bad.extend(noise(4 * MIB, 5));
    let good = noise(4 * MIB, 7);
    write_and_close(&m.join("bad"), &bad);
    write_and_close(&m.join("good"), &good);
    // (Reads may come from the kernel's page cache; the versions attribute asks memfs.)
    assert_eq!(
        xattr_get(&m.join("bad"), "user.memfs.versions").map(|_| ()),
        Err(libc::EIO)
    );
    assert!(std::fs::read(m.join("good")).unwrap() == good);
    assert!(xattr_get(&m.join("good"), "user.memfs.versions").is_ok());
    std::fs::remove_file(m.join("bad")).unwrap();
    let raw = std::fs::read(m.join(".memfs/fsck")).unwrap();
    let check: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(check["ok"], true, "fsck: {check:#}");
    assert!(m.unmount().success());
}

/// A long write's bytes are held twice for a while (written, and chunked); once the
/// commit workers have been idle for a moment, memfs holds about the bytes it stores
/// (`crate::memory`: one allocator arena, and the free pages given back).
#[test]
fn memory_freed_by_a_long_write_goes_back_once_idle() {
    let m = Mount::new();
    let start = m.stats().rss_bytes;
    write_and_close(&m.join("big"), &noise(160 * MIB, 41));
    let s = m.stats();
    assert_eq!(s.dirty_bytes, 0, "{s:?}");
    // The chunks themselves, and a little for their index, the file and the stats read.
    let enough = s.stored_bytes + s.stored_bytes / 20 + 8 * MIB as u64;
    let idle = memfs::memory::IDLE_BEFORE_GIVING_BACK;
    let deadline = std::time::Instant::now() + idle * 3;
    let mut grown = m.stats().rss_bytes - start;
    while grown > enough && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        grown = m.stats().rss_bytes - start;
    }
    assert!(
        grown <= enough,
        "memfs grew by {} MiB holding {} MiB (allowed {} MiB)",
        grown >> 20,
        s.stored_bytes >> 20,
        enough >> 20
    );
    assert!(m.unmount().success());
}
