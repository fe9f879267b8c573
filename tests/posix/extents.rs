//! Byte ranges of a file: fallocate modes, SEEK_DATA/SEEK_HOLE, copy_file_range.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::common::*;
use crate::sys::*;

#[test]
fn fallocate_modes() {
    let m = Mount::new();
    let p = m.join("f");
    let f = File::from(must(
        open(&p, libc::O_CREAT | libc::O_RDWR, 0o644),
        "create",
    ));
    f.write_all_at(&[b'a'; 100], 0).unwrap();

    // Mode 0 extends the size; the old bytes stay and the new ones read as zeros.
    must(fallocate(&f, 0, 0, MIB as i64), "fallocate(0, 1 MiB)");
    assert_eq!(fstat(&f).st_size, MIB as i64);
    assert_eq!(stat(&p).st_size, MIB as i64);
    let got = must(pread(&f, 2 * MIB, 0), "pread");
    assert_eq!(got.len(), MIB);
    assert_eq!(&got[..100], &[b'a'; 100]);
    assert!(got[100..].iter().all(|&b| b == 0));
    // Mode 0 inside the file changes nothing.
    must(fallocate(&f, 0, 10, 20), "fallocate inside");
    assert_eq!(fstat(&f).st_size, MIB as i64);
    assert_eq!(must(pread(&f, 100, 0), "pread"), [b'a'; 100]);

    // KEEP_SIZE does not change the size.
    must(
        fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, MIB as i64, MIB as i64),
        "fallocate KEEP_SIZE",
    );
    assert_eq!(fstat(&f).st_size, MIB as i64);
    assert_eq!(stat(&p).st_size, MIB as i64);

    // PUNCH_HOLE|KEEP_SIZE zeros the range and keeps the size.
    let data = pattern(9, 200 * KIB);
    f.write_all_at(&data, 0).unwrap();
    must(
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            10_000,
            140_000,
        ),
        "punch hole",
    );
    assert_eq!(fstat(&f).st_size, MIB as i64);
    let got = must(pread(&f, MIB, 0), "pread");
    assert_eq!(&got[..10_000], &data[..10_000]);
    assert!(
        got[10_000..150_000].iter().all(|&b| b == 0),
        "punched range not zero"
    );
    assert_eq!(&got[150_000..200 * KIB], &data[150_000..]);
    // Also after reopening (not only through the page cache).
    drop(f);
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), MIB);
    assert_eq!(&got[..10_000], &data[..10_000]);
    assert!(
        got[10_000..150_000].iter().all(|&b| b == 0),
        "punched range not zero"
    );
    assert_eq!(&got[150_000..200 * KIB], &data[150_000..]);

    // A hole punched past the end changes nothing.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    must(
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            2 * MIB as i64,
            4096,
        ),
        "punch past the end",
    );
    assert_eq!(fstat(&f).st_size, MIB as i64);

    expect_errno(
        fallocate(&f, libc::FALLOC_FL_PUNCH_HOLE, 0, 10),
        libc::EOPNOTSUPP,
        "PUNCH_HOLE without KEEP_SIZE",
    );
    expect_errno(
        fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, 0, 10),
        libc::EOPNOTSUPP,
        "ZERO_RANGE",
    );
    expect_errno(fallocate(&f, 0, 0, 0), libc::EINVAL, "fallocate(len 0)");
    expect_errno(
        fallocate(&f, 0, -1, 10),
        libc::EINVAL,
        "fallocate(offset -1)",
    );
    let ro = File::open(&p).unwrap();
    expect_errno(
        fallocate(&ro, 0, 0, 10),
        libc::EBADF,
        "fallocate(read-only fd)",
    );
}

/// A 2 MiB file with data in [0, 64K) and [1M, 1M+64K).
fn two_extent_file(p: &Path) -> File {
    let f = File::from(must(open(p, libc::O_CREAT | libc::O_RDWR, 0o644), "create"));
    f.set_len(2 * MIB as u64).unwrap();
    f.write_all_at(&pattern(1, 64 * KIB), 0).unwrap();
    f.write_all_at(&pattern(2, 64 * KIB), MIB as u64).unwrap();
    f
}

fn check_seek_data_hole(f: &File) {
    const K64: i64 = 64 * KIB as i64;
    const M1: i64 = MIB as i64;
    assert_eq!(lseek(f, 0, libc::SEEK_DATA), Ok(0), "SEEK_DATA(0)");
    assert_eq!(lseek(f, 100, libc::SEEK_DATA), Ok(100), "SEEK_DATA(100)");
    assert_eq!(lseek(f, 0, libc::SEEK_HOLE), Ok(K64), "SEEK_HOLE(0)");
    assert_eq!(lseek(f, K64, libc::SEEK_HOLE), Ok(K64), "SEEK_HOLE(64K)");
    assert_eq!(lseek(f, K64, libc::SEEK_DATA), Ok(M1), "SEEK_DATA(64K)");
    assert_eq!(lseek(f, M1, libc::SEEK_DATA), Ok(M1), "SEEK_DATA(1M)");
    assert_eq!(lseek(f, M1, libc::SEEK_HOLE), Ok(M1 + K64), "SEEK_HOLE(1M)");
    expect_errno(
        lseek(f, M1 + K64, libc::SEEK_DATA),
        libc::ENXIO,
        "SEEK_DATA(1M+64K)",
    );
    assert_eq!(
        lseek(f, M1 + K64, libc::SEEK_HOLE),
        Ok(M1 + K64),
        "SEEK_HOLE(1M+64K)"
    );
    expect_errno(
        lseek(f, 2 * M1, libc::SEEK_HOLE),
        libc::ENXIO,
        "SEEK_HOLE(size)",
    );
    expect_errno(
        lseek(f, 3 * M1, libc::SEEK_HOLE),
        libc::ENXIO,
        "SEEK_HOLE(> size)",
    );
    expect_errno(
        lseek(f, 2 * M1, libc::SEEK_DATA),
        libc::ENXIO,
        "SEEK_DATA(size)",
    );
    expect_errno(lseek(f, -1, libc::SEEK_DATA), libc::ENXIO, "SEEK_DATA(-1)");
    // The file offset moved to the last answer.
    assert_eq!(lseek(f, M1, libc::SEEK_HOLE), Ok(M1 + K64));
    assert_eq!(lseek(f, 0, libc::SEEK_CUR), Ok(M1 + K64));
}

#[test]
fn lseek_data_and_hole_once_no_writer_is_open() {
    let m = Mount::new();
    let p = m.join("sparse");
    drop(two_extent_file(&p));
    let f = File::open(&p).unwrap();
    check_seek_data_hole(&f);
    let e = File::from(must(
        open(&m.join("empty"), libc::O_CREAT | libc::O_RDWR, 0o644),
        "create empty",
    ));
    expect_errno(
        lseek(&e, 0, libc::SEEK_DATA),
        libc::ENXIO,
        "SEEK_DATA on empty file",
    );
    expect_errno(
        lseek(&e, 0, libc::SEEK_HOLE),
        libc::ENXIO,
        "SEEK_HOLE on empty file",
    );
}

/// With the writeback cache, written bytes may still sit in the kernel when SEEK_DATA comes
/// (the kernel does not flush first). Skipping them would make `cp` and `tar` lose data:
/// memfs has the kernel write the file back first (or, with one serving thread, reports
/// holes as data), and never reports data as a hole.
#[test]
fn lseek_never_skips_data_still_in_the_kernel_cache() {
    const K64: i64 = 64 * KIB as i64;
    const M1: i64 = MIB as i64;
    let m = Mount::new();
    let f = two_extent_file(&m.join("sparse"));
    assert_eq!(lseek(&f, 0, libc::SEEK_DATA), Ok(0), "SEEK_DATA(0)");
    let hole = lseek(&f, 0, libc::SEEK_HOLE).unwrap();
    assert!((K64..=2 * M1).contains(&hole), "SEEK_HOLE(0) = {hole}");
    let data = lseek(&f, K64, libc::SEEK_DATA).unwrap();
    assert!(
        (K64..=M1).contains(&data),
        "SEEK_DATA(64K) = {data} skips the data at 1M"
    );
    let hole = lseek(&f, M1, libc::SEEK_HOLE).unwrap();
    assert!(
        (M1 + K64..=2 * M1).contains(&hole),
        "SEEK_HOLE(1M) = {hole}"
    );
    expect_errno(
        lseek(&f, 2 * M1, libc::SEEK_DATA),
        libc::ENXIO,
        "SEEK_DATA(size)",
    );
}

#[test]
fn copy_file_range_copies_bytes() {
    let m = Mount::new();
    let src_path = m.join("src");
    let data = pattern(4, 300 * KIB);
    fs::write(&src_path, &data).unwrap();
    let src = File::open(&src_path).unwrap();
    let dst = File::from(must(
        open(&m.join("dst"), libc::O_CREAT | libc::O_RDWR, 0o644),
        "create dst",
    ));
    dst.write_all_at(b"prefix", 0).unwrap();

    let mut off_in: i64 = 1000;
    let mut off_out: i64 = 6;
    let mut left = 200_000usize;
    while left > 0 {
        let n = must(
            sys!(libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                left,
                0
            )),
            "copy_file_range",
        );
        assert!(n > 0, "copy_file_range copied nothing");
        left -= n as usize;
    }
    assert_eq!((off_in, off_out), (201_000, 200_006));
    let got = must(pread(&dst, MIB, 0), "pread dst");
    assert_eq!(&got[..6], b"prefix");
    assert_bytes_eq(&got[6..], &data[1000..201_000], "copied bytes");
    drop(dst);
    let got = fs::read(m.join("dst")).unwrap();
    assert_bytes_eq(&got[6..], &data[1000..201_000], "copied bytes after close");

    // Using and advancing the file offsets when no offsets are given.
    let src2 = File::open(&src_path).unwrap();
    let dst2 = File::create(m.join("dst2")).unwrap();
    let mut total = 0;
    loop {
        let n = must(
            sys!(libc::copy_file_range(
                src2.as_raw_fd(),
                std::ptr::null_mut(),
                dst2.as_raw_fd(),
                std::ptr::null_mut(),
                MIB,
                0
            )),
            "copy_file_range",
        );
        if n == 0 {
            break;
        }
        total += n as usize;
    }
    assert_eq!(total, data.len());
    drop(dst2);
    assert_bytes_eq(&fs::read(m.join("dst2")).unwrap(), &data, "whole-file copy");

    // Past the end of the source copies nothing.
    let dst3 = File::create(m.join("dst3")).unwrap();
    let mut off_in = 10 * MIB as i64;
    assert_eq!(
        sys!(libc::copy_file_range(
            src.as_raw_fd(),
            &mut off_in,
            dst3.as_raw_fd(),
            std::ptr::null_mut(),
            100,
            0
        )),
        Ok(0)
    );
}
