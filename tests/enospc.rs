//! `--max-memory` through a real mount: filling memfs fails cleanly with ENOSPC, df tells
//! the truth, and deleting frees the room again.

mod common;
use common::*;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::IntoRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use memfs::fs::VersionInfo;
use memfs::testdata::noise;

const MIB: u64 = 1 << 20;

fn statvfs(path: &Path) -> libc::statvfs {
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(p.as_ptr(), &mut sv) };
    assert_eq!(r, 0, "statvfs: errno {}", errno());
    sv
}

/// (size, free) in bytes as `df` computes them.
fn df(path: &Path) -> (u64, u64) {
    let sv = statvfs(path);
    (sv.f_blocks * sv.f_frsize, sv.f_bavail * sv.f_frsize)
}

/// Where writing a file failed, and with which errno.
#[derive(Debug, PartialEq)]
enum Failed {
    Open(i32),
    Write(i32),
    Close(i32),
}

/// Creates `path` and writes `data` in pieces of `piece` bytes, then closes it and reports
/// the close's result too (`File`'s drop would swallow it).
fn write_file(path: &Path, data: &[u8], piece: usize) -> Result<(), Failed> {
    let mut f = std::fs::File::create(path).map_err(|e| Failed::Open(e.raw_os_error().unwrap()))?;
    for c in data.chunks(piece) {
        if let Err(e) = f.write_all(c) {
            return Err(Failed::Write(e.raw_os_error().unwrap()));
        }
    }
    let fd = f.into_raw_fd();
    if unsafe { libc::close(fd) } != 0 {
        return Err(Failed::Close(errno()));
    }
    Ok(())
}

/// Polls `cond` for up to 10 s (the kernel sends FORGET for unlinked inodes on its own time).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fills a 64 MiB memfs with 16 MiB files of incompressible data until one fails, checks the
/// failure and the state it leaves, deletes everything and writes the failed file again.
/// Returns where the failure came.
fn fill_fail_free_refill(extra: &[&str]) -> Failed {
    let mut args = vec!["--max-memory", "64M"];
    args.extend_from_slice(extra);
    let m = Mount::with_args(&args);
    let (size, free) = df(m.path());
    assert_eq!(size, 64 * MIB);
    assert!(free > 63 * MIB, "an empty memfs has {free} bytes free");

    let file = |i: u64| m.join(format!("f{i}"));
    let data = |i: u64| noise(16 * MIB as usize, 2 * i + 1);
    let mut failure = None;
    for i in 0..6 {
        if let Err(e) = write_file(&file(i), &data(i), MIB as usize) {
            failure = Some((i, e));
            break;
        }
    }
    let (failed, how) = failure.expect("64 MiB of memfs took 96 MiB of noise");
    // 3 × 16 MiB fit; the fourth does not fit beside them and their metadata.
    assert_eq!(failed, 3, "failed at file {failed}: {how:?}");
    match how {
        Failed::Write(e) | Failed::Close(e) => {
            assert_eq!(
                e,
                libc::ENOSPC,
                "{how:?}: {}",
                std::io::Error::from_raw_os_error(e)
            )
        }
        Failed::Open(_) => panic!("{how:?}"),
    }

    // The mount keeps serving: the files that fit read back intact, and df shows it full.
    for i in 0..failed {
        assert!(std::fs::read(file(i)).unwrap() == data(i), "f{i} changed");
    }
    let (_, free) = df(m.path());
    assert!(
        free < 2 * MIB,
        "after ENOSPC df still shows {free} bytes free"
    );
    let s = m.stats();
    assert_eq!(s.capacity_bytes, 64 * MIB);
    assert!(s.used_bytes <= 64 * MIB && s.used_bytes > 62 * MIB, "{s:?}");
    let shown = Command::new(MEMFS)
        .arg("stats")
        .arg(m.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("64.0 MiB"), "memfs stats:\n{shown}");

    // Deleting frees the room at once (once the kernel lets go of the inodes).
    for i in 0..=failed {
        std::fs::remove_file(file(i)).unwrap();
    }
    eventually("df shows the room free again", || df(m.path()).1 > 63 * MIB);
    assert_eq!(m.stats().blobs, 0);

    // Now the write that failed succeeds, and memfs holds every byte of it.
    write_file(&m.join("again"), &data(failed), MIB as usize).unwrap();
    assert!(std::fs::read(m.join("again")).unwrap() == data(failed));
    // The newest version is what memfs committed. (Not always version 1: a test running in
    // parallel may fork while our descriptor is open, and the child's exec closes its copy.)
    let versions: Vec<VersionInfo> =
        serde_json::from_slice(&xattr_get(&m.join("again"), "user.memfs.versions").unwrap())
            .unwrap();
    let newest = versions.last().expect("a version").version;
    let committed = std::fs::read(m.join(format!(".memfs/versions/again/{newest}"))).unwrap();
    assert!(committed == data(failed), "version {newest} differs");
    let (_, free) = df(m.path());
    assert!(free < 48 * MIB && free > 46 * MIB, "{free}");
    how
}

#[test]
fn filling_with_the_writeback_cache_fails_with_enospc_and_deleting_frees_it() {
    // The kernel's cache takes the write(2)s; memfs refuses the data when the kernel writes
    // it back, and close(2) reports that.
    fill_fail_free_refill(&[]);
}

#[test]
fn filling_without_the_writeback_cache_fails_at_write() {
    let how = fill_fail_free_refill(&["--no-writeback-cache"]);
    assert_eq!(how, Failed::Write(libc::ENOSPC));
}

#[test]
fn many_empty_files_under_a_tiny_cap_run_out_and_unlinking_restores_room() {
    let m = Mount::with_args(&["--max-memory", "1M"]);
    let name = |i: usize| m.join(format!("empty-{i:05}"));
    let mut n = 0;
    let err = loop {
        match std::fs::File::create(name(n)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100_000, "1 MiB held 100,000 files");
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // About 560 bytes each.
    assert!((1000..2000).contains(&n), "{n} files");
    let sv = statvfs(m.path());
    assert_eq!(sv.f_ffree, 0);
    assert_eq!(sv.f_files, n as u64 + 1, "df -i: every live inode is used");
    assert_eq!(
        std::fs::create_dir(m.join("dir"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOSPC)
    );
    assert_eq!(
        std::os::unix::fs::symlink("target", m.join("link"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOSPC)
    );
    // Existing files still open, read and list.
    assert_eq!(std::fs::read(name(0)).unwrap(), b"");
    assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), n);

    for i in 0..n {
        std::fs::remove_file(name(i)).unwrap();
    }
    // All but the root's few hundred bytes are free again.
    eventually("the room is free again", || df(m.path()).1 >= MIB - 4096);
    for i in 0..n {
        std::fs::File::create(name(i)).unwrap();
    }
    std::fs::create_dir(m.join("dir")).unwrap_err();
}

#[test]
fn max_memory_takes_sizes_and_percentages_and_defaults_to_half_the_ram() {
    let ram = unsafe {
        libc::sysconf(libc::_SC_PHYS_PAGES) as u64 * libc::sysconf(libc::_SC_PAGESIZE) as u64
    };
    let size = |args: &[&str]| df(Mount::with_args(args).path()).0;
    let blocks = |bytes: u64| bytes / 4096 * 4096;
    assert_eq!(size(&[]), blocks(ram / 2));
    assert_eq!(size(&["--max-memory", "25%"]), blocks(ram / 4));
    assert_eq!(size(&["--max-memory", "512M"]), 512 * MIB);
    assert_eq!(size(&["--max-memory", "3g"]), 3 << 30);
    assert_eq!(size(&["--max-memory", "1048576"]), MIB);
}

#[test]
fn bad_max_memory_values_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["12Q", "0", "150%", "-5", "1.5G", "", "lots"] {
        let out = Command::new(MEMFS)
            .arg("mount")
            .arg(dir.path())
            .arg(format!("--max-memory={bad}"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "--max-memory {bad:?} was accepted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "memfs: invalid value '{bad}' for '--max-memory <SIZE>': "
            )),
            "{err}"
        );
    }
    assert!(!is_mounted(dir.path()));
}
