//! SEEK_DATA/SEEK_HOLE while a writer's last bytes may still sit in the kernel's page cache
//! (the writeback cache is on by default, and the kernel sends LSEEK without writing them
//! back): memfs must answer as tmpfs does.

mod common;
use common::*;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;

const MIB: i64 = 1 << 20;

fn lseek(f: &File, offset: i64, whence: i32) -> Result<i64, i32> {
    let r = unsafe { libc::lseek(f.as_raw_fd(), offset, whence) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// The sequence: a 1 MiB file, one byte written at 8 MiB, then SEEK_DATA/SEEK_HOLE
/// on the same descriptor, before any close or fsync.
fn answers(dir: &Path) -> Vec<(&'static str, Result<i64, i32>)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("sparse"))
        .unwrap();
    f.write_all_at(&vec![b'x'; MIB as usize], 0).unwrap();
    f.write_all_at(b"y", 8 * MIB as u64).unwrap();
    let answers = vec![
        ("SEEK_DATA(2M)", lseek(&f, 2 * MIB, libc::SEEK_DATA)),
        ("SEEK_HOLE(0)", lseek(&f, 0, libc::SEEK_HOLE)),
        ("SEEK_DATA(0)", lseek(&f, 0, libc::SEEK_DATA)),
        ("SEEK_HOLE(8M)", lseek(&f, 8 * MIB, libc::SEEK_HOLE)),
        ("SEEK_DATA(8M+1)", lseek(&f, 8 * MIB + 1, libc::SEEK_DATA)),
        ("SEEK_HOLE(8M+1)", lseek(&f, 8 * MIB + 1, libc::SEEK_HOLE)),
    ];
    // The file grows again while the seeks above ran: a byte at 9 MiB, in the cache.
    f.write_all_at(b"z", 9 * MIB as u64).unwrap();
    let mut answers = answers;
    // tmpfs holds whole pages, so it finds data right after 8M+1, in the page of the "y";
    // memfs holds the byte alone. Both are right: it is checked below, not compared.
    let data = lseek(&f, 8 * MIB + 1, libc::SEEK_DATA).unwrap();
    assert!(
        data == 8 * MIB + 1 || data == 9 * MIB,
        "SEEK_DATA(8M+1) = {data}"
    );
    answers.push((
        "SEEK_HOLE(9M) after a write at 9M",
        lseek(&f, 9 * MIB, libc::SEEK_HOLE),
    ));
    let mut read = [0u8; 1];
    f.read_exact_at(&mut read, 9 * MIB as u64).unwrap();
    assert_eq!(&read, b"z");
    answers
}

#[test]
fn seek_data_and_hole_see_writes_still_in_the_kernel_cache_as_tmpfs_does() {
    let tmpfs = Tmpfs::new();
    let expected = answers(tmpfs.path());
    let m = Mount::new();
    let got = answers(m.path());
    assert_eq!(got, expected, "memfs (left) against tmpfs (right)");
    // Once the file is closed, its holes are exact.
    let f = File::open(m.join("sparse")).unwrap();
    assert_eq!(lseek(&f, 2 * MIB, libc::SEEK_DATA), Ok(8 * MIB));
    assert_eq!(lseek(&f, 0, libc::SEEK_HOLE), Ok(MIB));
}

/// With one thread serving /dev/fuse there is none to spare for the write-back's WRITEs:
/// memfs answers coarsely (data from the offset on, to an end it cannot name) rather than
/// wait on itself. (On rings, the other lanes of the queue serve them.)
#[test]
fn one_thread_answers_coarsely_without_hanging() {
    let m = Mount::with_args(&["--threads", "1", "--dev-fuse"]);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.join("sparse"))
        .unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync_all().unwrap();
    f.write_all_at(b"y", 8 * MIB as u64).unwrap();
    assert_eq!(lseek(&f, 2 * MIB, libc::SEEK_DATA), Ok(2 * MIB));
    assert_eq!(lseek(&f, 0, libc::SEEK_HOLE), Ok(i64::MAX));
}

#[test]
fn stress_ng_seek_passes() {
    if Command::new("stress-ng").arg("--version").output().is_err() {
        eprintln!("stress-ng is not installed (scripts/test.sh installs it); skipping");
        return;
    }
    let m = Mount::new();
    let out = Command::new("stress-ng")
        .args(["--seek", "1", "--seek-ops", "2000", "--temp-path"])
        .arg(m.path())
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stress-ng --seek: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
