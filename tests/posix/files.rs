//! Regular files: open flags, reads and writes (sparse, large, at the largest offset),
//! truncate, unlink while open, fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use crate::common::*;
use crate::sys::*;

#[test]
fn open_flags_excl_trunc_append_and_missing() {
    let m = Mount::new();
    let f = m.join("file");
    fs::write(&f, b"hello world").unwrap();

    expect_errno(
        open(&f, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644),
        libc::EEXIST,
        "open(existing, O_CREAT|O_EXCL)",
    );
    // O_CREAT without O_EXCL opens the existing file and leaves it alone.
    drop(must(
        open(&f, libc::O_CREAT | libc::O_WRONLY, 0o600),
        "open(existing, O_CREAT)",
    ));
    assert_eq!(fs::read(&f).unwrap(), b"hello world");
    assert_eq!(stat(&f).st_mode & 0o7777, 0o644, "O_CREAT changed the mode");

    // O_TRUNC empties the file.
    let fd = must(open(&f, libc::O_WRONLY | libc::O_TRUNC, 0), "O_TRUNC");
    assert_eq!(fstat(&fd).st_size, 0);
    drop(fd);
    assert_eq!(stat(&f).st_size, 0);
    assert!(fs::read(&f).unwrap().is_empty());

    // O_APPEND writes at the end whatever the file offset, even through pwrite (Linux).
    fs::write(&f, b"abc").unwrap();
    let mut a = File::from(must(
        open(&f, libc::O_WRONLY | libc::O_APPEND, 0),
        "O_APPEND",
    ));
    a.write_all(b"def").unwrap();
    a.seek(SeekFrom::Start(0)).unwrap();
    a.write_all(b"ghi").unwrap();
    assert_eq!(must(pwrite(&a, b"jkl", 0), "pwrite O_APPEND"), 3);
    // A second appender sees the first one's writes.
    let mut b = File::from(must(
        open(&f, libc::O_WRONLY | libc::O_APPEND, 0),
        "O_APPEND 2",
    ));
    b.write_all(b"1").unwrap();
    a.write_all(b"2").unwrap();
    b.write_all(b"3").unwrap();
    drop(a);
    drop(b);
    assert_eq!(fs::read(&f).unwrap(), b"abcdefghijkl123");

    expect_errno(
        open(&m.join("missing"), libc::O_RDONLY, 0),
        libc::ENOENT,
        "open(missing)",
    );
    expect_errno(
        open(&m.join("missing"), libc::O_WRONLY, 0),
        libc::ENOENT,
        "open(missing, O_WRONLY)",
    );
    expect_errno(
        open(&m.join("nodir/x"), libc::O_CREAT | libc::O_WRONLY, 0o644),
        libc::ENOENT,
        "open(missing dir/x, O_CREAT)",
    );
    expect_errno(
        open(&f.join("x"), libc::O_CREAT | libc::O_WRONLY, 0o644),
        libc::ENOTDIR,
        "open(file/x, O_CREAT)",
    );
    fs::create_dir(m.join("dir")).unwrap();
    expect_errno(
        open(&m.join("dir"), libc::O_WRONLY, 0),
        libc::EISDIR,
        "open(dir, O_WRONLY)",
    );
}

#[test]
fn sparse_file_hole_reads_zeros() {
    let m = Mount::new();
    let p = m.join("sparse");
    let f = File::create(&p).unwrap();
    f.write_all_at(b"tail", MIB as u64).unwrap();
    // Read while the writer is still open, then after close.
    let mut hole = vec![1u8; 8192];
    File::open(&p)
        .unwrap()
        .read_exact_at(&mut hole, 4096)
        .unwrap();
    assert!(hole.iter().all(|&b| b == 0), "hole does not read as zeros");
    drop(f);

    let st = stat(&p);
    assert_eq!(st.st_size as usize, MIB + 4);
    let data = fs::read(&p).unwrap();
    assert_eq!(data.len(), MIB + 4);
    assert!(
        data[..MIB].iter().all(|&b| b == 0),
        "hole does not read as zeros"
    );
    assert_eq!(&data[MIB..], b"tail");
    // tmpfs: 8 (one page). A dense file would have 2048.
    assert!(
        st.st_blocks <= 16,
        "st_blocks {} for 4 bytes of data",
        st.st_blocks
    );
}

#[test]
fn large_file_written_in_4k_pieces() {
    let m = Mount::new();
    let p = m.join("large");
    let mut f = File::create(&p).unwrap();
    let mut expected = Vec::with_capacity(8 * MIB);
    for i in 0..(8 * MIB / (4 * KIB)) {
        let piece = pattern(i, 4 * KIB);
        f.write_all(&piece).unwrap();
        expected.extend_from_slice(&piece);
    }
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(stat(&p).st_size as usize, 8 * MIB);
    assert_bytes_eq(&fs::read(&p).unwrap(), &expected, "8 MiB read back");

    // Reads at odd offsets and lengths, across 64 KiB boundaries.
    let f = File::open(&p).unwrap();
    let mut off = 0usize;
    let mut len = 1usize;
    while off < 8 * MIB {
        let got = must(pread(&f, len, off as i64), "pread");
        let end = (off + len).min(8 * MIB);
        assert_bytes_eq(&got, &expected[off..end], &format!("pread({off}, {len})"));
        off += len + 65_521;
        len = len * 3 + 17;
        if len > 300_000 {
            len = 5;
        }
    }
    assert!(must(pread(&f, 100, 8 * MIB as i64), "pread at EOF").is_empty());
}

#[test]
fn write_at_the_largest_file_offset() {
    let m = Mount::new();
    let p = m.join("big");
    let f = File::from(must(
        open(&p, libc::O_CREAT | libc::O_RDWR, 0o644),
        "create",
    ));
    // offset + count overflows loff_t: the VFS says EINVAL (tmpfs does the same).
    expect_errno(
        pwrite(&f, b"0123456789", i64::MAX - 1),
        libc::EINVAL,
        "pwrite(10 bytes at i64::MAX - 1)",
    );
    expect_errno(
        pwrite(&f, b"0123456789", i64::MAX),
        libc::EINVAL,
        "pwrite(10 bytes at i64::MAX)",
    );
    // fallocate over the limit is EFBIG.
    expect_errno(
        fallocate(&f, 0, i64::MAX - 1, 10),
        libc::EFBIG,
        "fallocate(i64::MAX - 1, 10)",
    );
    // Ending exactly at the largest size works.
    assert_eq!(
        must(
            pwrite(&f, b"0123456789", i64::MAX - 10),
            "pwrite(10 bytes at i64::MAX - 10)"
        ),
        10
    );
    must(sys!(libc::fsync(f.as_raw_fd())), "fsync");
    assert_eq!(fstat(&f).st_size, i64::MAX);
    assert_eq!(
        must(pread(&f, 10, i64::MAX - 10), "pread at the end"),
        b"0123456789"
    );
    assert_eq!(must(pread(&f, 4, 4096), "pread of the hole"), [0u8; 4]);
    drop(f);
    assert_eq!(stat(&p).st_size, i64::MAX);
    let f = File::open(&p).unwrap();
    assert_eq!(
        must(pread(&f, 10, i64::MAX - 10), "pread after reopen"),
        b"0123456789"
    );
}

#[test]
fn truncate_and_ftruncate_grow_and_shrink() {
    let m = Mount::new();
    let p = m.join("t");
    let data = pattern(1, 200_000);
    fs::write(&p, &data).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();

    let before = stat(&p);
    std::thread::sleep(Duration::from_millis(20));
    f.set_len(10).unwrap();
    assert_eq!(fstat(&f).st_size, 10);
    let after = stat(&p);
    assert_eq!(after.st_size, 10);
    assert!(mtime_ns(&after) > mtime_ns(&before), "shrink kept mtime");
    assert!(ctime_ns(&after) > ctime_ns(&before), "shrink kept ctime");
    assert_eq!(fs::read(&p).unwrap(), &data[..10]);

    // Growing reads as zeros: the cut-off bytes do not come back.
    f.set_len(150_000).unwrap();
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), 150_000);
    assert_eq!(&got[..10], &data[..10]);
    assert!(got[10..].iter().all(|&b| b == 0), "grown part not zero");

    // truncate(2) by path.
    must(sys!(libc::truncate(cpath(&p).as_ptr(), 3)), "truncate(3)");
    assert_eq!(stat(&p).st_size, 3);
    assert_eq!(fs::read(&p).unwrap(), &data[..3]);
    must(
        sys!(libc::truncate(cpath(&p).as_ptr(), 2 * MIB as i64)),
        "truncate(2 MiB)",
    );
    assert_eq!(stat(&p).st_size, 2 * MIB as i64);
    let got = fs::read(&p).unwrap();
    assert_eq!(&got[..3], &data[..3]);
    assert!(got[3..].iter().all(|&b| b == 0));
    // Writing after a grow past the old end keeps the zeros in between.
    f.write_all_at(b"end", 2 * MIB as u64 - 3).unwrap();
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), 2 * MIB);
    assert!(got[3..2 * MIB - 3].iter().all(|&b| b == 0));
    assert_eq!(&got[2 * MIB - 3..], b"end");
    f.set_len(0).unwrap();
    assert!(fs::read(&p).unwrap().is_empty());

    expect_errno(
        sys!(libc::truncate(cpath(&p).as_ptr(), -1)),
        libc::EINVAL,
        "truncate(-1)",
    );
    fs::create_dir(m.join("d")).unwrap();
    expect_errno(
        sys!(libc::truncate(cpath(&m.join("d")).as_ptr(), 0)),
        libc::EISDIR,
        "truncate(dir)",
    );
    let ro = File::open(&p).unwrap();
    expect_errno(
        sys!(libc::ftruncate(ro.as_raw_fd(), 5)),
        libc::EINVAL,
        "ftruncate(read-only fd)",
    );
}

#[test]
fn unlink_while_open() {
    let m = Mount::new();
    let p = m.join("f");
    let mut f = File::from(must(
        open(&p, libc::O_CREAT | libc::O_RDWR, 0o644),
        "create",
    ));
    f.write_all(b"before").unwrap();
    must(unlink(&p), "unlink open file");
    expect_errno(try_stat(&p), libc::ENOENT, "stat(unlinked)");
    assert!(names(m.path()).is_empty());

    f.write_all(b"+after").unwrap();
    f.write_all_at(b"X", 0).unwrap();
    let big = pattern(3, 300_000);
    f.write_all_at(&big, 100_000).unwrap();
    let mut back = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut back).unwrap();
    assert_eq!(&back[..12], b"Xefore+after");
    assert!(back[12..100_000].iter().all(|&b| b == 0));
    assert_bytes_eq(&back[100_000..], &big, "data written after unlink");
    let st = fstat(&f);
    assert_eq!(st.st_nlink, 0);
    assert_eq!(st.st_size, 400_000);
    f.set_len(3).unwrap();
    assert_eq!(must(pread(&f, 100, 0), "pread"), b"Xef");

    // A new file with the same name is a different file.
    fs::write(&p, b"new").unwrap();
    assert_ne!(stat(&p).st_ino, st.st_ino);
    assert_eq!(must(pread(&f, 100, 0), "pread old"), b"Xef");
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"new");
    must(unlink(&p), "unlink new");
    assert!(names(m.path()).is_empty());
    expect_errno(try_stat(&p), libc::ENOENT, "stat after close");
}

#[test]
fn fsync_fdatasync_and_directory_fsync() {
    let m = Mount::new();
    let p = m.join("f");
    let mut f = File::create(&p).unwrap();
    f.write_all(b"data").unwrap();
    must(sys!(libc::fsync(f.as_raw_fd())), "fsync");
    f.write_all(b"more").unwrap();
    must(sys!(libc::fdatasync(f.as_raw_fd())), "fdatasync");
    f.sync_all().unwrap();
    f.sync_data().unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"datamore");

    let ro = File::open(&p).unwrap();
    must(sys!(libc::fsync(ro.as_raw_fd())), "fsync(read-only fd)");

    fs::create_dir(m.join("d")).unwrap();
    for dir in [m.join("d"), m.path().to_path_buf()] {
        let d = must(
            open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0),
            "open dir",
        );
        must(sys!(libc::fsync(d.as_raw_fd())), "fsync(dir)");
        must(sys!(libc::fdatasync(d.as_raw_fd())), "fdatasync(dir)");
    }
    must(sys!(libc::syncfs(ro.as_raw_fd())), "syncfs");
}
