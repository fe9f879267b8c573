//! POSIX behaviour of a mounted memfs, exercised with real syscalls (std::fs and raw libc)
//! and checked against what Linux tmpfs does, down to the errno of each failure.

mod common;
use common::*;

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Runs a libc call: Ok(its return value), or Err(errno) when it returns a negative value.
macro_rules! sys {
    ($e:expr) => {{
        #[allow(unused_unsafe)]
        let r = unsafe { $e };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r)
        }
    }};
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn errno_name(e: i32) -> String {
    format!("{e} ({})", std::io::Error::from_raw_os_error(e))
}

/// Asserts that `r` failed with exactly `want`.
#[track_caller]
fn expect_errno<T: std::fmt::Debug>(r: Result<T, i32>, want: i32, what: &str) {
    match r {
        Ok(v) => panic!(
            "{what}: succeeded ({v:?}), expected errno {}",
            errno_name(want)
        ),
        Err(e) => assert_eq!(
            e,
            want,
            "{what}: errno {}, expected {}",
            errno_name(e),
            errno_name(want)
        ),
    }
}

/// Unwraps a syscall result, naming the errno on failure.
#[track_caller]
fn must<T>(r: Result<T, i32>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: failed with errno {}", errno_name(e)),
    }
}

fn open(path: &Path, flags: i32, mode: u32) -> Result<OwnedFd, i32> {
    let fd = sys!(libc::open(
        cpath(path).as_ptr(),
        flags | libc::O_CLOEXEC,
        mode as libc::c_uint
    ))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn try_stat(path: &Path) -> Result<libc::stat, i32> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(libc::stat(cpath(path).as_ptr(), &mut st)).map(|_| st)
}

fn try_lstat(path: &Path) -> Result<libc::stat, i32> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(libc::lstat(cpath(path).as_ptr(), &mut st)).map(|_| st)
}

#[track_caller]
fn stat(path: &Path) -> libc::stat {
    must(try_stat(path), &format!("stat {}", path.display()))
}

#[track_caller]
fn lstat(path: &Path) -> libc::stat {
    must(try_lstat(path), &format!("lstat {}", path.display()))
}

#[track_caller]
fn fstat(fd: &impl AsRawFd) -> libc::stat {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    must(sys!(libc::fstat(fd.as_raw_fd(), &mut st)), "fstat");
    st
}

fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

fn pwrite(fd: &impl AsRawFd, buf: &[u8], offset: i64) -> Result<isize, i32> {
    sys!(libc::pwrite(
        fd.as_raw_fd(),
        buf.as_ptr().cast(),
        buf.len(),
        offset
    ))
}

fn pread(fd: &impl AsRawFd, len: usize, offset: i64) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len];
    let n = sys!(libc::pread(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast(),
        buf.len(),
        offset
    ))?;
    buf.truncate(n as usize);
    Ok(buf)
}

fn lseek(fd: &impl AsRawFd, offset: i64, whence: i32) -> Result<i64, i32> {
    sys!(libc::lseek(fd.as_raw_fd(), offset, whence))
}

fn fallocate(fd: &impl AsRawFd, mode: i32, offset: i64, len: i64) -> Result<i32, i32> {
    sys!(libc::fallocate(fd.as_raw_fd(), mode, offset, len))
}

fn mkdir(path: &Path, mode: u32) -> Result<i32, i32> {
    sys!(libc::mkdir(cpath(path).as_ptr(), mode))
}

fn rmdir(path: &Path) -> Result<i32, i32> {
    sys!(libc::rmdir(cpath(path).as_ptr()))
}

fn unlink(path: &Path) -> Result<i32, i32> {
    sys!(libc::unlink(cpath(path).as_ptr()))
}

fn rename(from: &Path, to: &Path) -> Result<i32, i32> {
    sys!(libc::rename(cpath(from).as_ptr(), cpath(to).as_ptr()))
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<libc::c_long, i32> {
    sys!(libc::syscall(
        libc::SYS_renameat2,
        libc::AT_FDCWD,
        cpath(from).as_ptr(),
        libc::AT_FDCWD,
        cpath(to).as_ptr(),
        flags
    ))
}

fn link(from: &Path, to: &Path) -> Result<i32, i32> {
    sys!(libc::link(cpath(from).as_ptr(), cpath(to).as_ptr()))
}

fn symlink(target: &[u8], path: &Path) -> Result<i32, i32> {
    let target = CString::new(target).unwrap();
    sys!(libc::symlink(target.as_ptr(), cpath(path).as_ptr()))
}

fn readlink(path: &Path, bufsize: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; bufsize];
    let n = sys!(libc::readlink(
        cpath(path).as_ptr(),
        buf.as_mut_ptr().cast(),
        buf.len()
    ))?;
    buf.truncate(n as usize);
    Ok(buf)
}

fn chmod(path: &Path, mode: u32) -> Result<i32, i32> {
    sys!(libc::chmod(cpath(path).as_ptr(), mode))
}

fn access(path: &Path, mode: i32) -> Result<i32, i32> {
    sys!(libc::access(cpath(path).as_ptr(), mode))
}

fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> Result<i32, i32> {
    sys!(libc::mknod(cpath(path).as_ptr(), mode, dev))
}

fn utimensat(path: &Path, times: [(i64, i64); 2]) -> Result<i32, i32> {
    let ts = times.map(|(sec, nsec)| libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    });
    sys!(libc::utimensat(
        libc::AT_FDCWD,
        cpath(path).as_ptr(),
        ts.as_ptr(),
        0
    ))
}

fn setxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<i32, i32> {
    sys!(libc::setxattr(
        cpath(path).as_ptr(),
        cstr(name).as_ptr(),
        value.as_ptr().cast(),
        value.len(),
        flags
    ))
}

/// getxattr(2) with a buffer of exactly `size` bytes (0 probes the length).
fn getxattr_sized(path: &Path, name: &str, size: usize) -> Result<(isize, Vec<u8>), i32> {
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr()
    };
    let n = sys!(libc::getxattr(
        cpath(path).as_ptr(),
        cstr(name).as_ptr(),
        ptr.cast(),
        size
    ))?;
    buf.truncate(if size == 0 { 0 } else { n as usize });
    Ok((n, buf))
}

/// listxattr(2) with a buffer of exactly `size` bytes (0 probes the length).
fn listxattr_sized(path: &Path, size: usize) -> Result<(isize, Vec<u8>), i32> {
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr()
    };
    let n = sys!(libc::listxattr(cpath(path).as_ptr(), ptr.cast(), size))?;
    buf.truncate(if size == 0 { 0 } else { n as usize });
    Ok((n, buf))
}

/// The names listxattr(2) returns.
fn xattr_names(path: &Path) -> Vec<String> {
    let (_, list) = must(listxattr_sized(path, 65536), "listxattr");
    list.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

fn removexattr(path: &Path, name: &str) -> Result<i32, i32> {
    sys!(libc::removexattr(cpath(path).as_ptr(), cstr(name).as_ptr()))
}

/// Every entry of a directory as getdents returns it, "." and ".." included:
/// (name, d_ino, d_type).
fn readdir_raw(dir: &Path) -> Vec<(Vec<u8>, u64, u8)> {
    let d = unsafe { libc::opendir(cpath(dir).as_ptr()) };
    assert!(!d.is_null(), "opendir {}: {}", dir.display(), errno());
    let mut out = Vec::new();
    loop {
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        let e = unsafe { &*e };
        let name = unsafe { CStr::from_ptr(e.d_name.as_ptr()) };
        out.push((name.to_bytes().to_vec(), e.d_ino, e.d_type));
    }
    unsafe { libc::closedir(d) };
    out
}

/// Names in a directory (without "." and ".."), sorted.
fn names(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

fn ns(sec: i64, nsec: i64) -> i128 {
    sec as i128 * 1_000_000_000 + nsec as i128
}

fn ctime_ns(st: &libc::stat) -> i128 {
    ns(st.st_ctime, st.st_ctime_nsec)
}

fn mtime_ns(st: &libc::stat) -> i128 {
    ns(st.st_mtime, st.st_mtime_nsec)
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// A deterministic byte pattern, different for each `seed`.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((j * 7 + seed * 31 + j / 4093) % 251) as u8)
        .collect()
}

/// Asserts two byte strings are equal without printing megabytes when they differ.
#[track_caller]
fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes read, {} expected; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// create / open
// ---------------------------------------------------------------------------------------

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
fn name_length_limit() {
    let m = Mount::new();
    let long = "n".repeat(256);
    expect_errno(
        open(&m.join(&long), libc::O_CREAT | libc::O_WRONLY, 0o644),
        libc::ENAMETOOLONG,
        "open(256-byte name, O_CREAT)",
    );
    expect_errno(
        open(&m.join(&long), libc::O_RDONLY, 0),
        libc::ENAMETOOLONG,
        "open(256-byte name)",
    );
    expect_errno(
        mkdir(&m.join(&long), 0o755),
        libc::ENAMETOOLONG,
        "mkdir(256-byte name)",
    );
    expect_errno(
        symlink(b"t", &m.join(&long)),
        libc::ENAMETOOLONG,
        "symlink(256-byte name)",
    );
    fs::write(m.join("short"), b"x").unwrap();
    expect_errno(
        rename(&m.join("short"), &m.join(&long)),
        libc::ENAMETOOLONG,
        "rename to a 256-byte name",
    );
    expect_errno(
        link(&m.join("short"), &m.join(&long)),
        libc::ENAMETOOLONG,
        "link to a 256-byte name",
    );

    // 255 bytes is fine.
    let max = "m".repeat(255);
    fs::write(m.join(&max), b"max").unwrap();
    assert_eq!(fs::read(m.join(&max)).unwrap(), b"max");
    assert_eq!(names(m.path()), vec![OsString::from(&max), "short".into()]);
}

#[test]
fn non_utf8_name_round_trip() {
    let m = Mount::new();
    let name = OsStr::from_bytes(b"\xff\xfe");
    let p = m.join(name);
    fs::write(&p, b"bytes").unwrap();
    let listed = readdir_raw(m.path());
    let found: Vec<_> = listed.iter().filter(|e| e.0 == b"\xff\xfe").collect();
    assert_eq!(found.len(), 1, "readdir: {listed:?}");
    assert_eq!(found[0].2, libc::DT_REG);
    assert_eq!(found[0].1, stat(&p).st_ino);
    assert_eq!(names(m.path()), vec![name.to_os_string()]);
    assert_eq!(fs::read(&p).unwrap(), b"bytes");

    // Also a directory with such a name, with a child.
    let d = m.join(OsStr::from_bytes(b"dir-\x80\xc0-x"));
    fs::create_dir(&d).unwrap();
    fs::write(d.join(OsStr::from_bytes(b"\xe9t\xe9")), b"child").unwrap();
    assert_eq!(
        fs::read(d.join(OsStr::from_bytes(b"\xe9t\xe9"))).unwrap(),
        b"child"
    );

    must(unlink(&p), "unlink non-UTF-8 name");
    expect_errno(try_stat(&p), libc::ENOENT, "stat after unlink");
    assert_eq!(names(m.path()), vec![d.file_name().unwrap().to_os_string()]);
}

// ---------------------------------------------------------------------------------------
// read / write
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// truncate / setattr
// ---------------------------------------------------------------------------------------

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
fn setattr_mode_owner_and_times() {
    let m = Mount::new();
    let p = m.join("f");
    fs::write(&p, b"x").unwrap();

    let before = stat(&p);
    std::thread::sleep(Duration::from_millis(20));
    must(chmod(&p, 0o640), "chmod 0640");
    let st = stat(&p);
    assert_eq!(file_type(&st), libc::S_IFREG);
    assert_eq!(st.st_mode & 0o7777, 0o640);
    assert!(
        ctime_ns(&st) > ctime_ns(&before),
        "chmod did not change ctime"
    );
    assert_eq!(mtime_ns(&st), mtime_ns(&before), "chmod changed mtime");
    must(chmod(&p, 0o7755), "chmod 07755");
    assert_eq!(stat(&p).st_mode & 0o7777, 0o7755);

    let before = stat(&p);
    std::thread::sleep(Duration::from_millis(20));
    must(
        sys!(libc::chown(cpath(&p).as_ptr(), 1234, 5678)),
        "chown 1234:5678",
    );
    let st = stat(&p);
    assert_eq!((st.st_uid, st.st_gid), (1234, 5678));
    assert!(
        ctime_ns(&st) > ctime_ns(&before),
        "chown did not change ctime"
    );
    // chown by root clears setuid and setgid (group-executable file) as on tmpfs.
    assert_eq!(st.st_mode & 0o7777, 0o1755, "mode after chown");
    // -1 leaves one of them alone.
    must(
        sys!(libc::chown(cpath(&p).as_ptr(), u32::MAX, 99)),
        "chown -1:99",
    );
    let st = stat(&p);
    assert_eq!((st.st_uid, st.st_gid), (1234, 99));

    // Explicit times with nanoseconds survive exactly.
    must(
        utimensat(
            &p,
            [(1_000_000_000, 123_456_789), (1_500_000_000, 987_654_321)],
        ),
        "utimensat explicit",
    );
    let st = stat(&p);
    assert_eq!(
        (st.st_atime, st.st_atime_nsec),
        (1_000_000_000, 123_456_789)
    );
    assert_eq!(
        (st.st_mtime, st.st_mtime_nsec),
        (1_500_000_000, 987_654_321)
    );
    // Also through a fresh open (not only the kernel's cached attributes).
    let f = File::open(&p).unwrap();
    let fst = fstat(&f);
    assert_eq!(
        (fst.st_mtime, fst.st_mtime_nsec),
        (1_500_000_000, 987_654_321)
    );
    drop(f);

    // UTIME_OMIT leaves atime alone while UTIME_NOW sets mtime to now.
    let t0 = now_ns();
    let ctime_before = ctime_ns(&stat(&p));
    std::thread::sleep(Duration::from_millis(20));
    must(
        utimensat(&p, [(0, libc::UTIME_OMIT), (0, libc::UTIME_NOW)]),
        "utimensat OMIT/NOW",
    );
    let t1 = now_ns();
    let st = stat(&p);
    assert_eq!(
        (st.st_atime, st.st_atime_nsec),
        (1_000_000_000, 123_456_789)
    );
    let mt = mtime_ns(&st);
    assert!(
        mt >= t0 - 20_000_000 && mt <= t1 + 20_000_000,
        "UTIME_NOW mtime {mt} not within [{t0}, {t1}]"
    );
    assert!(ctime_ns(&st) > ctime_before, "utimensat kept ctime");

    // UTIME_NOW for atime, UTIME_OMIT for mtime.
    must(
        utimensat(&p, [(0, libc::UTIME_NOW), (0, libc::UTIME_OMIT)]),
        "utimensat NOW/OMIT",
    );
    let st2 = stat(&p);
    assert_eq!(mtime_ns(&st2), mt, "UTIME_OMIT changed mtime");
    let at = ns(st2.st_atime, st2.st_atime_nsec);
    assert!(at >= t0 - 20_000_000, "UTIME_NOW atime {at} is old");

    // Both omitted: nothing changes, not even ctime.
    std::thread::sleep(Duration::from_millis(20));
    must(
        utimensat(&p, [(0, libc::UTIME_OMIT), (0, libc::UTIME_OMIT)]),
        "utimensat OMIT/OMIT",
    );
    let st3 = stat(&p);
    assert_eq!(
        (
            ns(st3.st_atime, st3.st_atime_nsec),
            mtime_ns(&st3),
            ctime_ns(&st3)
        ),
        (at, mt, ctime_ns(&st2))
    );

    // A directory takes mode, owner and times too.
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    must(chmod(&d, 0o1777), "chmod dir");
    must(utimensat(&d, [(5, 6), (7, 8)]), "utimensat dir");
    let st = stat(&d);
    assert_eq!(st.st_mode, libc::S_IFDIR | 0o1777);
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (7, 8));
}

#[test]
fn timestamps_before_the_epoch() {
    let m = Mount::new();
    let p = m.join("f");
    fs::write(&p, b"x").unwrap();
    // Whole seconds.
    must(
        utimensat(&p, [(-1, 0), (-86_400, 0)]),
        "utimensat whole seconds before 1970",
    );
    let st = stat(&p);
    assert_eq!((st.st_atime, st.st_atime_nsec), (-1, 0));
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (-86_400, 0));
    // With nanoseconds: -1 s + 0.5 s is half a second before the epoch.
    must(
        utimensat(&p, [(-1, 500_000_000), (-86_400, 1)]),
        "utimensat before 1970 with nanoseconds",
    );
    let st = stat(&p);
    assert_eq!((st.st_atime, st.st_atime_nsec), (-1, 500_000_000));
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (-86_400, 1));
}

// ---------------------------------------------------------------------------------------
// directories
// ---------------------------------------------------------------------------------------

#[test]
fn mkdir_rmdir_unlink_errors_and_dir_nlink() {
    let m = Mount::new();
    let d = m.join("d");
    must(mkdir(&d, 0o750), "mkdir");
    let st = stat(&d);
    assert_eq!(st.st_mode, libc::S_IFDIR | 0o750);
    assert_eq!(st.st_nlink, 2);
    assert_eq!(stat(m.path()).st_nlink, 3);
    // tmpfs reports 20 bytes per entry plus 40.
    assert_eq!(st.st_size, 40);

    for s in ["s1", "s2", "s3"] {
        must(mkdir(&d.join(s), 0o755), "mkdir sub");
    }
    fs::write(d.join("f"), b"file").unwrap();
    let st = stat(&d);
    assert_eq!(st.st_nlink, 5, "nlink is 2 + subdirectories");
    assert_eq!(st.st_size, 40 + 4 * 20);

    expect_errno(rmdir(&d), libc::ENOTEMPTY, "rmdir(non-empty)");
    expect_errno(rmdir(&d.join("f")), libc::ENOTDIR, "rmdir(file)");
    expect_errno(unlink(&d.join("s1")), libc::EISDIR, "unlink(dir)");
    expect_errno(mkdir(&d, 0o755), libc::EEXIST, "mkdir(existing dir)");
    expect_errno(
        mkdir(&d.join("f"), 0o755),
        libc::EEXIST,
        "mkdir(existing file)",
    );
    expect_errno(rmdir(&d.join("missing")), libc::ENOENT, "rmdir(missing)");
    expect_errno(unlink(&d.join("missing")), libc::ENOENT, "unlink(missing)");
    expect_errno(rmdir(&d.join("s1/.")), libc::EINVAL, "rmdir(dir/.)");
    expect_errno(
        mkdir(&d.join("missing/x"), 0o755),
        libc::ENOENT,
        "mkdir(missing/x)",
    );
    expect_errno(mkdir(&d.join("f/x"), 0o755), libc::ENOTDIR, "mkdir(file/x)");

    must(rmdir(&d.join("s1")), "rmdir(empty)");
    assert_eq!(stat(&d).st_nlink, 4);
    must(mkdir(&d.join("s2/deeper"), 0o755), "mkdir deeper");
    assert_eq!(stat(&d).st_nlink, 4, "grandchildren do not count");
    assert_eq!(stat(&d.join("s2")).st_nlink, 3);
    must(unlink(&d.join("f")), "unlink file");
    must(rmdir(&d.join("s2/deeper")), "rmdir deeper");
    must(rmdir(&d.join("s2")), "rmdir s2");
    must(rmdir(&d.join("s3")), "rmdir s3");
    assert_eq!(stat(&d).st_nlink, 2);
    assert_eq!(stat(&d).st_size, 40);

    // A removed directory that is still open: empty, and nothing can be created in it.
    let held = File::open(&d).unwrap();
    must(rmdir(&d), "rmdir d");
    assert_eq!(stat(m.path()).st_nlink, 2);
    expect_errno(try_stat(&d), libc::ENOENT, "stat(removed dir)");
    let dfd = held.as_raw_fd();
    expect_errno(
        sys!(libc::mkdirat(dfd, cstr("x").as_ptr(), 0o755)),
        libc::ENOENT,
        "mkdirat(removed dir, x)",
    );
    expect_errno(
        sys!(libc::openat(
            dfd,
            cstr("x").as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644 as libc::c_uint
        )),
        libc::ENOENT,
        "openat(removed dir, x, O_CREAT)",
    );
    assert_eq!(fstat(&held).st_nlink, 0);
}

#[test]
fn mknod_fifo_socket_and_devices() {
    let m = Mount::new();

    let fifo = m.join("fifo");
    must(sys!(libc::mkfifo(cpath(&fifo).as_ptr(), 0o640)), "mkfifo");
    let st = stat(&fifo);
    assert_eq!(st.st_mode, libc::S_IFIFO | 0o640);
    assert_eq!(st.st_size, 0);
    // It works as a pipe.
    let mut pipe = File::from(must(
        open(&fifo, libc::O_RDWR | libc::O_NONBLOCK, 0),
        "open fifo",
    ));
    pipe.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    pipe.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(pipe);

    let sock = m.join("sock");
    must(mknod(&sock, libc::S_IFSOCK | 0o644, 0), "mknod S_IFSOCK");
    assert_eq!(stat(&sock).st_mode, libc::S_IFSOCK | 0o644);

    let chr = m.join("null");
    let dev = libc::makedev(1, 3);
    must(mknod(&chr, libc::S_IFCHR | 0o666, dev), "mknod S_IFCHR 1:3");
    let st = stat(&chr);
    assert_eq!(file_type(&st), libc::S_IFCHR);
    assert_eq!(st.st_rdev, dev);
    assert_eq!((libc::major(st.st_rdev), libc::minor(st.st_rdev)), (1, 3));

    let blk = m.join("blk");
    let dev = libc::makedev(259, 65_541);
    must(mknod(&blk, libc::S_IFBLK | 0o640, dev), "mknod S_IFBLK");
    let st = stat(&blk);
    assert_eq!(st.st_mode, libc::S_IFBLK | 0o640);
    assert_eq!(st.st_rdev, dev);

    let reg = m.join("reg");
    must(mknod(&reg, libc::S_IFREG | 0o600, 0), "mknod S_IFREG");
    let st = stat(&reg);
    assert_eq!(st.st_mode, libc::S_IFREG | 0o600);
    assert_eq!(st.st_size, 0);
    fs::write(&reg, b"regular").unwrap();
    assert_eq!(fs::read(&reg).unwrap(), b"regular");

    expect_errno(
        mknod(&chr, libc::S_IFCHR | 0o666, libc::makedev(1, 5)),
        libc::EEXIST,
        "mknod(existing)",
    );
    expect_errno(
        sys!(libc::mkfifo(cpath(&fifo).as_ptr(), 0o640)),
        libc::EEXIST,
        "mkfifo(existing)",
    );

    // readdir reports the types.
    let types: HashMap<Vec<u8>, u8> = readdir_raw(m.path())
        .into_iter()
        .map(|(n, _, t)| (n, t))
        .collect();
    assert_eq!(types[&b"fifo"[..]], libc::DT_FIFO);
    assert_eq!(types[&b"sock"[..]], libc::DT_SOCK);
    assert_eq!(types[&b"null"[..]], libc::DT_CHR);
    assert_eq!(types[&b"blk"[..]], libc::DT_BLK);
    assert_eq!(types[&b"reg"[..]], libc::DT_REG);

    // A real unix socket bound on the mount accepts connections.
    let path = m.join("live.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    assert_eq!(file_type(&stat(&path)), libc::S_IFSOCK);
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}

#[test]
fn symlink_and_readlink() {
    let m = Mount::new();
    let l = m.join("l");
    let target = b"some/relative/../target";
    must(symlink(target, &l), "symlink");
    assert_eq!(must(readlink(&l, 4096), "readlink"), target);
    assert_eq!(fs::read_link(&l).unwrap().as_os_str().as_bytes(), target);
    let st = lstat(&l);
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(st.st_mode & 0o777, 0o777);
    assert_eq!(st.st_size as usize, target.len());
    // Dangling: stat follows and fails, lstat does not.
    expect_errno(try_stat(&l), libc::ENOENT, "stat(dangling symlink)");
    // A short buffer truncates without a NUL.
    assert_eq!(must(readlink(&l, 4), "readlink(4-byte buffer)"), b"some");

    // A link to a file resolves to it.
    fs::write(m.join("file"), b"content").unwrap();
    must(symlink(b"file", &m.join("lf")), "symlink to file");
    assert_eq!(fs::read(m.join("lf")).unwrap(), b"content");
    assert_eq!(stat(&m.join("lf")).st_ino, stat(&m.join("file")).st_ino);
    fs::create_dir(m.join("dir")).unwrap();
    fs::write(m.join("dir/inner"), b"inner").unwrap();
    must(symlink(b"../dir", &m.join("dir/self")), "symlink ../dir");
    assert_eq!(fs::read(m.join("dir/self/self/inner")).unwrap(), b"inner");

    // Non-UTF-8 bytes and the longest target (PATH_MAX - 1 bytes).
    must(symlink(b"\xff\xfe/x", &m.join("raw")), "symlink raw bytes");
    assert_eq!(
        must(readlink(&m.join("raw"), 100), "readlink raw"),
        b"\xff\xfe/x"
    );
    let long: Vec<u8> = "a/"
        .repeat(2047)
        .into_bytes()
        .into_iter()
        .chain(*b"b")
        .collect();
    assert_eq!(long.len(), 4095);
    must(symlink(&long, &m.join("long")), "symlink 4095 bytes");
    assert_eq!(must(readlink(&m.join("long"), 8192), "readlink long"), long);
    assert_eq!(lstat(&m.join("long")).st_size, 4095);
    let too_long = vec![b'a'; 4096];
    expect_errno(
        symlink(&too_long, &m.join("toolong")),
        libc::ENAMETOOLONG,
        "symlink(4096-byte target)",
    );

    expect_errno(
        readlink(&m.join("file"), 100),
        libc::EINVAL,
        "readlink(file)",
    );
    expect_errno(readlink(&m.join("dir"), 100), libc::EINVAL, "readlink(dir)");
    expect_errno(
        readlink(&m.join("missing"), 100),
        libc::ENOENT,
        "readlink(missing)",
    );
    expect_errno(symlink(b"x", &l), libc::EEXIST, "symlink(existing)");
    expect_errno(
        symlink(b"x", &m.join("file")),
        libc::EEXIST,
        "symlink over a file",
    );
}

#[test]
fn hard_links() {
    let m = Mount::new();
    let a = m.join("a");
    let b = m.join("b");
    let c = m.join("sub/c");
    fs::create_dir(m.join("sub")).unwrap();
    fs::write(&a, b"shared").unwrap();
    must(link(&a, &b), "link a b");
    let (sa, sb) = (stat(&a), stat(&b));
    assert_eq!(sa.st_ino, sb.st_ino);
    assert_eq!((sa.st_nlink, sb.st_nlink), (2, 2));
    assert_eq!(fs::read(&b).unwrap(), b"shared");

    // Writes through one name show through the other.
    OpenOptions::new()
        .append(true)
        .open(&b)
        .unwrap()
        .write_all(b" content")
        .unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"shared content");
    must(link(&b, &c), "link b sub/c");
    assert_eq!(stat(&a).st_nlink, 3);
    assert_eq!(stat(&c).st_ino, sa.st_ino);

    // Metadata is shared too.
    must(chmod(&c, 0o600), "chmod via one name");
    assert_eq!(stat(&a).st_mode & 0o777, 0o600);

    must(unlink(&a), "unlink a");
    expect_errno(try_stat(&a), libc::ENOENT, "stat(unlinked name)");
    assert_eq!(stat(&b).st_nlink, 2);
    assert_eq!(stat(&c).st_nlink, 2);
    assert_eq!(fs::read(&b).unwrap(), b"shared content");
    must(unlink(&c), "unlink sub/c");
    assert_eq!(stat(&b).st_nlink, 1);
    assert_eq!(fs::read(&b).unwrap(), b"shared content");

    fs::create_dir(m.join("dir")).unwrap();
    expect_errno(
        link(&m.join("dir"), &m.join("dirlink")),
        libc::EPERM,
        "link(dir)",
    );
    expect_errno(link(&b, &m.join("dir")), libc::EEXIST, "link over existing");
    expect_errno(
        link(&m.join("missing"), &m.join("x")),
        libc::ENOENT,
        "link(missing)",
    );
    expect_errno(
        link(&b, &m.join("nodir/x")),
        libc::ENOENT,
        "link into missing dir",
    );
    // Links to symlinks link the symlink itself (link(2) does not follow).
    must(symlink(b"b", &m.join("sl")), "symlink");
    must(link(&m.join("sl"), &m.join("sl2")), "link symlink");
    let st = lstat(&m.join("sl2"));
    assert_eq!(file_type(&st), libc::S_IFLNK);
    assert_eq!(st.st_nlink, 2);
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

// ---------------------------------------------------------------------------------------
// rename
// ---------------------------------------------------------------------------------------

#[test]
fn rename_replaces_a_file_atomically() {
    let m = Mount::new();
    let a = m.join("a");
    let b = m.join("b");
    fs::write(&a, b"from a").unwrap();
    fs::write(&b, b"old b content").unwrap();
    let ino_a = stat(&a).st_ino;
    let mut old_b = File::open(&b).unwrap();

    must(rename(&a, &b), "rename a over b");
    assert_eq!(fs::read(&b).unwrap(), b"from a");
    assert_eq!(stat(&b).st_ino, ino_a);
    expect_errno(try_stat(&a), libc::ENOENT, "stat(old name)");
    assert_eq!(names(m.path()), vec![OsString::from("b")]);
    // The replaced file lives on while open.
    let mut s = String::new();
    old_b.read_to_string(&mut s).unwrap();
    assert_eq!(s, "old b content");
    assert_eq!(fstat(&old_b).st_nlink, 0);

    // Renaming to itself, or onto another link of the same inode, does nothing.
    must(rename(&b, &b), "rename b b");
    must(link(&b, &m.join("c")), "link");
    must(rename(&b, &m.join("c")), "rename onto own hard link");
    assert_eq!(fs::read(&b).unwrap(), b"from a");
    assert_eq!(fs::read(m.join("c")).unwrap(), b"from a");
    assert_eq!(stat(&b).st_nlink, 2);

    // Across directories, replacing.
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/t"), b"target").unwrap();
    must(
        rename(&m.join("c"), &m.join("d/t")),
        "rename into dir over file",
    );
    assert_eq!(fs::read(m.join("d/t")).unwrap(), b"from a");
    assert_eq!(stat(&b).st_nlink, 2);

    expect_errno(
        rename(&m.join("missing"), &b),
        libc::ENOENT,
        "rename(missing)",
    );
    expect_errno(
        rename(&b, &m.join("nodir/x")),
        libc::ENOENT,
        "rename into missing dir",
    );

    // Repeated write-then-rename-over: a reader always sees a whole version.
    let target = m.join("config");
    fs::write(&target, pattern(0, 10_000)).unwrap();
    for i in 1..50 {
        let tmp = m.join(format!("config.tmp{i}"));
        fs::write(&tmp, pattern(i, 10_000)).unwrap();
        must(rename(&tmp, &target), "rename over config");
        assert_eq!(fs::read(&target).unwrap(), pattern(i, 10_000));
    }
    assert_eq!(
        names(m.path()),
        vec![OsString::from("b"), "config".into(), "d".into()]
    );
}

#[test]
fn rename_directories() {
    let m = Mount::new();
    let root = m.path();

    // A directory over an empty directory.
    fs::create_dir(m.join("src")).unwrap();
    fs::write(m.join("src/inner"), b"inner").unwrap();
    fs::create_dir(m.join("empty")).unwrap();
    assert_eq!(stat(root).st_nlink, 4);
    let ino = stat(&m.join("src")).st_ino;
    must(
        rename(&m.join("src"), &m.join("empty")),
        "dir over empty dir",
    );
    assert_eq!(stat(&m.join("empty")).st_ino, ino);
    assert_eq!(fs::read(m.join("empty/inner")).unwrap(), b"inner");
    expect_errno(try_stat(&m.join("src")), libc::ENOENT, "old dir name");
    assert_eq!(stat(root).st_nlink, 3);

    // Over a non-empty directory, a file over a dir, a dir over a file.
    fs::create_dir(m.join("d1")).unwrap();
    expect_errno(
        rename(&m.join("d1"), &m.join("empty")),
        libc::ENOTEMPTY,
        "dir over non-empty dir",
    );
    fs::write(m.join("f"), b"f").unwrap();
    expect_errno(
        rename(&m.join("f"), &m.join("d1")),
        libc::EISDIR,
        "file over dir",
    );
    expect_errno(
        rename(&m.join("d1"), &m.join("f")),
        libc::ENOTDIR,
        "dir over file",
    );
    assert_eq!(fs::read(m.join("f")).unwrap(), b"f");
    assert!(stat(&m.join("d1")).st_mode & libc::S_IFMT == libc::S_IFDIR);

    // Into its own subdirectory, or over an ancestor.
    fs::create_dir_all(m.join("p/sub/deeper")).unwrap();
    expect_errno(
        rename(&m.join("p"), &m.join("p/sub/x")),
        libc::EINVAL,
        "dir into its own subdirectory",
    );
    expect_errno(
        rename(&m.join("p"), &m.join("p/x")),
        libc::EINVAL,
        "dir into itself",
    );
    expect_errno(
        rename(&m.join("p/sub/deeper"), &m.join("p")),
        libc::ENOTEMPTY,
        "dir over its own ancestor",
    );
    expect_errno(
        rename(&m.join("p/sub"), &m.join("p/sub/deeper/x")),
        libc::EINVAL,
        "subdir into its own subdirectory",
    );

    // Across parents: link counts move and ".." follows.
    fs::create_dir(m.join("a")).unwrap();
    fs::create_dir(m.join("b")).unwrap();
    fs::create_dir(m.join("a/x")).unwrap();
    fs::write(m.join("a/x/file"), b"moved").unwrap();
    assert_eq!(
        (stat(&m.join("a")).st_nlink, stat(&m.join("b")).st_nlink),
        (3, 2)
    );
    must(rename(&m.join("a/x"), &m.join("b/x")), "dir across parents");
    assert_eq!(
        (stat(&m.join("a")).st_nlink, stat(&m.join("b")).st_nlink),
        (2, 3)
    );
    assert_eq!(fs::read(m.join("b/x/file")).unwrap(), b"moved");
    let dotdot = readdir_raw(&m.join("b/x"))
        .into_iter()
        .find(|e| e.0 == b"..")
        .expect("..");
    assert_eq!(dotdot.1, stat(&m.join("b")).st_ino, "\"..\" of a moved dir");
    assert_eq!(stat(&m.join("b/x/..")).st_ino, stat(&m.join("b")).st_ino);

    // Across parents, replacing an empty directory.
    fs::create_dir(m.join("a/x")).unwrap();
    must(
        rename(&m.join("b/x"), &m.join("a/x")),
        "dir over empty dir across parents",
    );
    assert_eq!(
        (stat(&m.join("a")).st_nlink, stat(&m.join("b")).st_nlink),
        (3, 2)
    );
    assert_eq!(fs::read(m.join("a/x/file")).unwrap(), b"moved");
    assert!(names(&m.join("b")).is_empty());
}

#[test]
fn renameat2_noreplace_and_exchange() {
    let m = Mount::new();
    let a = m.join("a");
    let b = m.join("b");
    fs::write(&a, b"AAA").unwrap();
    fs::write(&b, b"BBBB").unwrap();

    expect_errno(
        renameat2(&a, &b, libc::RENAME_NOREPLACE),
        libc::EEXIST,
        "RENAME_NOREPLACE onto existing",
    );
    assert_eq!(fs::read(&a).unwrap(), b"AAA");
    assert_eq!(fs::read(&b).unwrap(), b"BBBB");
    must(
        renameat2(&a, &m.join("c"), libc::RENAME_NOREPLACE),
        "RENAME_NOREPLACE to a new name",
    );
    assert_eq!(fs::read(m.join("c")).unwrap(), b"AAA");
    must(rename(&m.join("c"), &a), "rename back");

    // Two files swap.
    let (ia, ib) = (stat(&a).st_ino, stat(&b).st_ino);
    must(
        renameat2(&a, &b, libc::RENAME_EXCHANGE),
        "exchange two files",
    );
    assert_eq!(fs::read(&a).unwrap(), b"BBBB");
    assert_eq!(fs::read(&b).unwrap(), b"AAA");
    assert_eq!((stat(&a).st_ino, stat(&b).st_ino), (ib, ia));

    // A file and a directory swap, in one parent.
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/child"), b"child").unwrap();
    must(
        renameat2(&a, &m.join("d"), libc::RENAME_EXCHANGE),
        "exchange file and dir",
    );
    assert_eq!(file_type(&stat(&a)), libc::S_IFDIR);
    assert_eq!(fs::read(a.join("child")).unwrap(), b"child");
    assert_eq!(fs::read(m.join("d")).unwrap(), b"BBBB");
    assert_eq!(stat(m.path()).st_nlink, 3);

    // Across parents: a file in p and a directory in q swap; link counts follow.
    fs::create_dir(m.join("p")).unwrap();
    fs::create_dir(m.join("q")).unwrap();
    fs::write(m.join("p/file"), b"pfile").unwrap();
    fs::create_dir(m.join("q/dir")).unwrap();
    fs::write(m.join("q/dir/c1"), b"c1").unwrap();
    fs::create_dir(m.join("q/dir/c2")).unwrap();
    must(
        renameat2(&m.join("p/file"), &m.join("q/dir"), libc::RENAME_EXCHANGE),
        "exchange across parents",
    );
    assert_eq!(fs::read(m.join("q/dir")).unwrap(), b"pfile");
    assert_eq!(fs::read(m.join("p/file/c1")).unwrap(), b"c1");
    assert_eq!(stat(&m.join("p")).st_nlink, 3);
    assert_eq!(stat(&m.join("q")).st_nlink, 2);
    let dotdot = readdir_raw(&m.join("p/file"))
        .into_iter()
        .find(|e| e.0 == b"..")
        .unwrap();
    assert_eq!(dotdot.1, stat(&m.join("p")).st_ino);

    // Exchanging a directory into its own subtree is refused.
    expect_errno(
        renameat2(
            &m.join("p/file"),
            &m.join("p/file/c2"),
            libc::RENAME_EXCHANGE,
        ),
        libc::EINVAL,
        "exchange dir with its own child",
    );
    expect_errno(
        renameat2(
            &m.join("p/file/c2"),
            &m.join("p/file"),
            libc::RENAME_EXCHANGE,
        ),
        libc::EINVAL,
        "exchange dir with its own ancestor",
    );

    expect_errno(
        renameat2(&b, &m.join("missing"), libc::RENAME_EXCHANGE),
        libc::ENOENT,
        "RENAME_EXCHANGE with a missing target",
    );
    expect_errno(
        renameat2(&m.join("missing"), &b, libc::RENAME_EXCHANGE),
        libc::ENOENT,
        "RENAME_EXCHANGE with a missing source",
    );
    expect_errno(
        renameat2(&b, &a, libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE),
        libc::EINVAL,
        "RENAME_EXCHANGE|RENAME_NOREPLACE",
    );
    assert_eq!(fs::read(&b).unwrap(), b"AAA");
}

#[test]
fn rename_subtree_updates_descendant_counts() {
    let m = Mount::new();
    let root = m.path();
    fs::create_dir_all(m.join("old/x/y/z")).unwrap();
    for f in [
        "old/x/1",
        "old/x/y/2",
        "old/x/y/z/3",
        "old/x/y/z/4",
        "old/keep",
    ] {
        fs::write(m.join(f), f).unwrap();
    }
    fs::create_dir_all(m.join("new/deep")).unwrap();
    // x, 1, y, 2, z, 3, 4.
    assert_eq!(descendants(&m.join("old")), 8);
    assert_eq!(descendants(&m.join("new")), 1);
    assert_counts_match_walk(root);

    must(
        rename(&m.join("old/x"), &m.join("new/deep/x")),
        "move subtree",
    );
    assert_eq!(descendants(&m.join("old")), 1);
    assert_eq!(descendants(&m.join("new")), 8);
    assert_eq!(descendants(&m.join("new/deep")), 7);
    assert_eq!(descendants(&m.join("new/deep/x/y")), 4);
    assert_eq!(descendants(root), 11);
    assert_counts_match_walk(root);

    // Replacing an empty directory across parents.
    fs::create_dir(m.join("old/x")).unwrap();
    must(
        rename(&m.join("new/deep/x"), &m.join("old/x")),
        "move back over empty dir",
    );
    assert_eq!(descendants(&m.join("old")), 8);
    assert_eq!(descendants(&m.join("new")), 1);
    assert_counts_match_walk(root);

    // A file replacing a file across parents.
    fs::write(m.join("new/keep"), b"other").unwrap();
    must(
        rename(&m.join("old/keep"), &m.join("new/keep")),
        "file over file",
    );
    assert_eq!(descendants(&m.join("old")), 7);
    assert_eq!(descendants(&m.join("new")), 2);
    assert_counts_match_walk(root);

    // Exchanging a subtree with a file across parents.
    must(
        renameat2(&m.join("old/x"), &m.join("new/keep"), libc::RENAME_EXCHANGE),
        "exchange subtree with file",
    );
    assert_eq!(descendants(&m.join("old")), 1);
    assert_eq!(descendants(&m.join("new")), 8);
    assert_counts_match_walk(root);

    // Exchanging two subtrees across parents.
    fs::create_dir_all(m.join("old/t/u")).unwrap();
    must(
        renameat2(&m.join("old/t"), &m.join("new/keep"), libc::RENAME_EXCHANGE),
        "exchange two subtrees",
    );
    assert_eq!(descendants(&m.join("old")), 8);
    assert_eq!(descendants(&m.join("new")), 3);
    assert_counts_match_walk(root);

    // Removing a subtree brings the counts down.
    fs::remove_dir_all(m.join("old/t")).unwrap();
    assert_eq!(descendants(&m.join("old")), 1);
    assert_eq!(descendants(root), 6);
    assert_counts_match_walk(root);
}

// ---------------------------------------------------------------------------------------
// readdir
// ---------------------------------------------------------------------------------------

#[test]
fn readdir_100k_entries() {
    let m = Mount::new();
    let dir = m.join("big");
    fs::create_dir(&dir).unwrap();
    let start = Instant::now();
    for i in 0..100_000 {
        File::create(dir.join(format!("f{i}"))).unwrap();
    }
    let created = start.elapsed();
    let mut seen = HashSet::with_capacity(100_000);
    let mut count = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(seen.insert(name.clone()), "{name:?} listed twice");
        count += 1;
    }
    assert_eq!(count, 100_000);
    for i in (0..100_000).step_by(997) {
        assert!(seen.contains(&OsString::from(format!("f{i}"))));
    }
    assert_eq!(stat(&dir).st_nlink, 2);
    assert_eq!(descendants(&dir), 100_000);
    eprintln!(
        "100k creates: {created:?}, total with listing: {:?}",
        start.elapsed()
    );
}

#[test]
fn readdir_while_entries_are_removed() {
    let m = Mount::new();
    let dir = m.join("d");
    fs::create_dir(&dir).unwrap();
    const N: usize = 4000;
    // Long names, so that one getdents call returns a few hundred entries at most.
    let name = |i: usize| format!("entry-{i:05}-{}", "x".repeat(90));
    for i in 0..N {
        fs::write(dir.join(name(i)), b"").unwrap();
    }
    let index = |n: &OsStr| -> usize { n.to_str().unwrap()[6..11].parse().unwrap() };

    let mut listing = fs::read_dir(&dir).unwrap();
    let mut seen: Vec<usize> = Vec::new();
    for e in listing.by_ref().take(N / 2) {
        seen.push(index(&e.unwrap().file_name()));
    }
    assert_eq!(seen.len(), N / 2);
    let seen_set: HashSet<usize> = seen.iter().copied().collect();
    // Delete every other entry not yet listed, and a few that were.
    let mut deleted = HashSet::new();
    let unseen: Vec<usize> = (0..N).filter(|i| !seen_set.contains(i)).collect();
    for &i in unseen.iter().step_by(2) {
        fs::remove_file(dir.join(name(i))).unwrap();
        deleted.insert(i);
    }
    for &i in seen.iter().step_by(10) {
        fs::remove_file(dir.join(name(i))).unwrap();
        deleted.insert(i);
    }
    for e in listing {
        seen.push(index(&e.unwrap().file_name()));
    }

    let mut times: HashMap<usize, usize> = HashMap::new();
    for &i in &seen {
        *times.entry(i).or_default() += 1;
    }
    let dups: Vec<_> = times.iter().filter(|(_, &n)| n > 1).collect();
    assert!(dups.is_empty(), "listed more than once: {dups:?}");
    let missing: Vec<usize> = (0..N)
        .filter(|i| !deleted.contains(i) && !times.contains_key(i))
        .collect();
    assert!(
        missing.is_empty(),
        "{} never-deleted entries not listed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // A fresh listing shows exactly the survivors.
    assert_eq!(names(&dir).len(), N - deleted.len());
}

// ---------------------------------------------------------------------------------------
// extended attributes
// ---------------------------------------------------------------------------------------

#[test]
fn xattrs_set_get_list_remove() {
    let m = Mount::new();
    let f = m.join("f");
    fs::write(&f, b"x").unwrap();

    must(setxattr(&f, "user.a", b"hello", 0), "setxattr user.a");
    must(setxattr(&f, "user.b", b"", 0), "setxattr empty value");
    must(
        setxattr(&f, "trusted.t", b"\x00\x01\xff", 0),
        "setxattr trusted.t",
    );
    assert_eq!(xattr_get(&f, "user.a"), Ok(b"hello".to_vec()));
    assert_eq!(xattr_get(&f, "user.b"), Ok(vec![]));
    assert_eq!(xattr_get(&f, "trusted.t"), Ok(b"\x00\x01\xff".to_vec()));
    let mut listed = xattr_names(&f);
    listed.sort();
    assert_eq!(listed, ["trusted.t", "user.a", "user.b"]);

    // Size probing and short buffers.
    assert_eq!(getxattr_sized(&f, "user.a", 0), Ok((5, vec![])));
    assert_eq!(getxattr_sized(&f, "user.a", 5), Ok((5, b"hello".to_vec())));
    expect_errno(
        getxattr_sized(&f, "user.a", 4),
        libc::ERANGE,
        "getxattr(4-byte buffer)",
    );
    let list_len = "trusted.t\0user.a\0user.b\0".len() as isize;
    assert_eq!(listxattr_sized(&f, 0).map(|r| r.0), Ok(list_len));
    expect_errno(
        listxattr_sized(&f, 3),
        libc::ERANGE,
        "listxattr(3-byte buffer)",
    );

    // Flags.
    expect_errno(
        setxattr(&f, "user.a", b"new", libc::XATTR_CREATE),
        libc::EEXIST,
        "XATTR_CREATE on existing",
    );
    expect_errno(
        setxattr(&f, "user.missing", b"v", libc::XATTR_REPLACE),
        libc::ENODATA,
        "XATTR_REPLACE on missing",
    );
    must(
        setxattr(&f, "user.a", b"replaced", libc::XATTR_REPLACE),
        "XATTR_REPLACE",
    );
    assert_eq!(xattr_get(&f, "user.a"), Ok(b"replaced".to_vec()));
    must(
        setxattr(&f, "user.c", b"c", libc::XATTR_CREATE),
        "XATTR_CREATE new",
    );
    expect_errno(
        xattr_get(&f, "user.missing"),
        libc::ENODATA,
        "getxattr(missing)",
    );

    // Values up to 64 KiB; larger is E2BIG.
    let big = pattern(5, 65_536);
    must(setxattr(&f, "user.big", &big, 0), "setxattr 64 KiB");
    assert_eq!(xattr_get(&f, "user.big").unwrap(), big);
    expect_errno(
        setxattr(&f, "user.huge", &vec![0u8; 65_537], 0),
        libc::E2BIG,
        "setxattr(64 KiB + 1)",
    );

    // Remove.
    let before = stat(&f);
    std::thread::sleep(Duration::from_millis(20));
    must(removexattr(&f, "user.a"), "removexattr");
    assert!(
        ctime_ns(&stat(&f)) > ctime_ns(&before),
        "removexattr kept ctime"
    );
    expect_errno(xattr_get(&f, "user.a"), libc::ENODATA, "getxattr(removed)");
    expect_errno(
        removexattr(&f, "user.a"),
        libc::ENODATA,
        "removexattr(missing)",
    );
    let mut listed = xattr_names(&f);
    listed.sort();
    assert_eq!(listed, ["trusted.t", "user.b", "user.big", "user.c"]);

    // Names: unknown namespaces and empty or over-long names.
    expect_errno(
        setxattr(&f, "bogus.x", b"v", 0),
        libc::EOPNOTSUPP,
        "setxattr(bogus.x)",
    );
    expect_errno(
        setxattr(&f, &format!("user.{}", "n".repeat(251)), b"v", 0),
        libc::ERANGE,
        "setxattr(256-byte name)",
    );
    must(
        setxattr(&f, &format!("user.{}", "n".repeat(250)), b"v", 0),
        "setxattr(255-byte name)",
    );

    // Directories take user xattrs; symlinks do not (EPERM, as on Linux).
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    must(setxattr(&d, "user.tag", b"dir", 0), "setxattr on dir");
    assert_eq!(xattr_get(&d, "user.tag"), Ok(b"dir".to_vec()));
    must(symlink(b"f", &m.join("l")), "symlink");
    let l = cpath(&m.join("l"));
    expect_errno(
        sys!(libc::lsetxattr(
            l.as_ptr(),
            cstr("user.x").as_ptr(),
            b"v".as_ptr().cast(),
            1,
            0
        )),
        libc::EPERM,
        "lsetxattr(symlink, user.x)",
    );
    // Through the symlink, it is the file's.
    assert_eq!(xattr_get(&m.join("l"), "user.b"), Ok(vec![]));
    // Hard links share xattrs.
    must(link(&f, &m.join("f2")), "link");
    assert_eq!(xattr_get(&m.join("f2"), "user.c"), Ok(b"c".to_vec()));
}

/// A minimal valid POSIX ACL in its xattr form (version 2; user::rw-, group::r--, other::r--).
fn minimal_acl() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 6u16), (0x04, 4), (0x20, 4)] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    v
}

/// memfs has no POSIX ACLs, so it refuses them as a file system without ACL support does.
/// (tmpfs does support them: there this setxattr succeeds.)
#[test]
fn posix_acl_xattr_is_not_supported() {
    let m = Mount::new();
    let f = m.join("f");
    fs::write(&f, b"x").unwrap();
    expect_errno(
        setxattr(&f, "system.posix_acl_access", &minimal_acl(), 0),
        libc::EOPNOTSUPP,
        "setxattr(system.posix_acl_access)",
    );
}

#[test]
fn virtual_descendants_xattr() {
    let m = Mount::new();
    let d = m.join("d");
    fs::create_dir_all(d.join("c/x")).unwrap();
    fs::write(d.join("a"), b"").unwrap();
    fs::write(d.join("c/b"), b"").unwrap();
    assert_eq!(xattr_get(&d, "user.memfs.descendants"), Ok(b"4".to_vec()));
    assert_eq!(descendants(m.path()), 5);
    assert_eq!(
        getxattr_sized(&d, "user.memfs.descendants", 0),
        Ok((1, vec![]))
    );
    for i in 0..6 {
        fs::write(d.join(format!("more{i}")), b"").unwrap();
    }
    // "10" does not fit a 1-byte buffer.
    expect_errno(
        getxattr_sized(&d, "user.memfs.descendants", 1),
        libc::ERANGE,
        "descendants into a 1-byte buffer",
    );
    assert_eq!(
        getxattr_sized(&d, "user.memfs.descendants", 2),
        Ok((2, b"10".to_vec()))
    );

    // Not listed, even next to real attributes.
    assert!(xattr_names(&d).is_empty(), "{:?}", xattr_names(&d));
    must(setxattr(&d, "user.tag", b"t", 0), "setxattr user.tag");
    assert_eq!(xattr_names(&d), ["user.tag"]);

    expect_errno(
        setxattr(&d, "user.memfs.descendants", b"7", 0),
        libc::EPERM,
        "setxattr(user.memfs.descendants)",
    );
    expect_errno(
        removexattr(&d, "user.memfs.descendants"),
        libc::EPERM,
        "removexattr(user.memfs.descendants)",
    );
    assert_eq!(descendants(&d), 10);
    // Files have no descendant count.
    expect_errno(
        xattr_get(&d.join("a"), "user.memfs.descendants"),
        libc::ENODATA,
        "descendants of a file",
    );
    fs::remove_dir_all(d.join("c")).unwrap();
    assert_eq!(descendants(&d), 7);
    assert_counts_match_walk(m.path());
}

// ---------------------------------------------------------------------------------------
// access, fallocate, lseek, copy_file_range, statfs, fsync
// ---------------------------------------------------------------------------------------

#[test]
fn access_as_root() {
    let m = Mount::new();
    let f = m.join("f");
    fs::write(&f, b"x").unwrap();
    must(chmod(&f, 0o644), "chmod");
    must(access(&f, libc::F_OK), "F_OK");
    must(access(&f, libc::R_OK), "R_OK on 0644");
    must(access(&f, libc::W_OK), "W_OK on 0644");
    must(access(&f, libc::R_OK | libc::W_OK), "R_OK|W_OK on 0644");
    expect_errno(access(&f, libc::X_OK), libc::EACCES, "X_OK on 0644 as root");
    expect_errno(
        access(&f, libc::R_OK | libc::X_OK),
        libc::EACCES,
        "R_OK|X_OK on 0644 as root",
    );
    must(chmod(&f, 0o755), "chmod");
    must(access(&f, libc::X_OK), "X_OK on 0755");
    must(chmod(&f, 0o000), "chmod");
    must(
        access(&f, libc::R_OK | libc::W_OK),
        "R_OK|W_OK on 0000 as root",
    );
    expect_errno(access(&f, libc::X_OK), libc::EACCES, "X_OK on 0000 as root");
    for mode in [0o100, 0o010, 0o001] {
        must(chmod(&f, mode), "chmod");
        must(
            access(&f, libc::X_OK),
            &format!("X_OK on {mode:04o} as root"),
        );
    }
    // Root may search any directory.
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    must(chmod(&d, 0o000), "chmod dir");
    must(
        access(&d, libc::R_OK | libc::W_OK | libc::X_OK),
        "rwx on a 0000 dir as root",
    );
    expect_errno(
        access(&m.join("missing"), libc::F_OK),
        libc::ENOENT,
        "F_OK(missing)",
    );
}

#[test]
fn access_as_another_user() {
    let m = Mount::with_args(&["--allow-other"]);
    // (name, mode, owner uid, owner gid, access mask, expected errno or 0), as uid 1234
    // gid 5678.
    let cases: Vec<(&str, u32, u32, u32, i32, i32)> = vec![
        ("root0644", 0o644, 0, 0, libc::R_OK, 0),
        ("root0644", 0o644, 0, 0, libc::W_OK, libc::EACCES),
        ("root0644", 0o644, 0, 0, libc::X_OK, libc::EACCES),
        ("root0640", 0o640, 0, 0, libc::R_OK, libc::EACCES),
        ("root0640", 0o640, 0, 0, libc::F_OK, 0),
        ("root0755", 0o755, 0, 0, libc::R_OK | libc::X_OK, 0),
        ("mine0600", 0o600, 1234, 0, libc::R_OK | libc::W_OK, 0),
        ("mine0600", 0o600, 1234, 0, libc::X_OK, libc::EACCES),
        ("mine0100", 0o100, 1234, 0, libc::X_OK, 0),
        ("mine0100", 0o100, 1234, 0, libc::R_OK, libc::EACCES),
        // The owner class decides for the owner, even when the group class grants more.
        ("mine0070", 0o070, 1234, 5678, libc::R_OK, libc::EACCES),
        (
            "group0070",
            0o070,
            0,
            5678,
            libc::R_OK | libc::W_OK | libc::X_OK,
            0,
        ),
        ("group0604", 0o604, 0, 5678, libc::R_OK, libc::EACCES),
        ("other0604", 0o604, 0, 0, libc::R_OK, 0),
        ("other0604", 0o604, 0, 0, libc::W_OK, libc::EACCES),
    ];
    let mut prepared = Vec::new();
    for &(name, mode, uid, gid, mask, want) in &cases {
        let p = m.join(name);
        if !p.exists() {
            fs::write(&p, b"x").unwrap();
            must(sys!(libc::chown(cpath(&p).as_ptr(), uid, gid)), "chown");
            must(chmod(&p, mode), "chmod");
        }
        prepared.push((cpath(&p), mask, want));
    }
    // The child drops to uid 1234, gid 5678 and runs only async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            let groups = [5678 as libc::gid_t];
            if libc::syscall(libc::SYS_setgroups, 1, groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, 5678, 5678, 5678) != 0
                || libc::syscall(libc::SYS_setresuid, 1234, 1234, 1234) != 0
            {
                libc::_exit(100);
            }
            for (i, (p, mask, want)) in prepared.iter().enumerate() {
                let r = libc::access(p.as_ptr(), *mask);
                let got = if r == 0 { 0 } else { *libc::__errno_location() };
                if got != *want {
                    libc::_exit(1 + i as i32);
                }
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    must(sys!(libc::waitpid(pid, &mut status, 0)), "waitpid");
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    let code = libc::WEXITSTATUS(status);
    assert_ne!(code, 100, "could not drop privileges");
    assert!(
        code == 0,
        "access as uid 1234 gave the wrong answer for {:?}",
        cases[(code - 1) as usize]
    );
}

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

#[test]
fn statfs_values() {
    let m = Mount::new();
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    must(
        sys!(libc::statvfs(cpath(m.path()).as_ptr(), &mut sv)),
        "statvfs",
    );
    assert_eq!(sv.f_namemax, 255);
    assert!(sv.f_bsize > 0);
    assert!(sv.f_frsize > 0);
    assert!(sv.f_blocks > 0);
    assert!(sv.f_bfree <= sv.f_blocks && sv.f_bavail <= sv.f_blocks);
    assert!(sv.f_files > 0 && sv.f_ffree <= sv.f_files);
    let (bfree, ffree) = (sv.f_bfree, sv.f_ffree);

    // Storing 4 MiB and a few files uses blocks and inodes.
    fs::write(m.join("data"), pattern(0, 4 * MIB)).unwrap();
    for i in 0..10 {
        fs::write(m.join(format!("f{i}")), b"x").unwrap();
    }
    must(
        sys!(libc::statvfs(cpath(m.path()).as_ptr(), &mut sv)),
        "statvfs",
    );
    let used = (bfree - sv.f_bfree) * sv.f_frsize;
    assert!(
        used >= 4 * MIB as u64,
        "f_bfree went down by {used} bytes after writing 4 MiB"
    );
    assert!(
        sv.f_ffree <= ffree - 11,
        "f_ffree {} -> {}",
        ffree,
        sv.f_ffree
    );

    // fstatvfs on a file and statvfs on a subdirectory answer for the same file system.
    let f = File::open(m.join("data")).unwrap();
    let mut fsv: libc::statvfs = unsafe { std::mem::zeroed() };
    must(sys!(libc::fstatvfs(f.as_raw_fd(), &mut fsv)), "fstatvfs");
    assert_eq!(fsv.f_namemax, 255);
    assert_eq!(fsv.f_blocks, sv.f_blocks);
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

// ---------------------------------------------------------------------------------------
// concurrency
// ---------------------------------------------------------------------------------------

fn body(t: usize, i: usize) -> Vec<u8> {
    format!("thread {t} file {i};")
        .repeat(1 + i % 50)
        .into_bytes()
}

#[test]
fn concurrent_creates_renames_and_unlinks() {
    let m = Mount::new();
    let root = m.path().to_path_buf();
    let shared = m.join("shared");
    let p1 = m.join("p1");
    let p2 = m.join("p2");
    for d in [&shared, &p1, &p2] {
        fs::create_dir(d).unwrap();
    }
    const SUBDIRS: usize = 8;
    for s in 0..SUBDIRS {
        let d = p1.join(format!("s{s}"));
        fs::create_dir_all(d.join("inner")).unwrap();
        fs::write(d.join("a"), format!("a{s}")).unwrap();
        fs::write(d.join("inner/b"), format!("b{s}")).unwrap();
    }

    let in_p2 = std::thread::scope(|scope| {
        for t in 0..4 {
            let shared = &shared;
            scope.spawn(move || {
                for i in 0..500 {
                    let tmp = shared.join(format!("t{t}-{i}.tmp"));
                    let fin = shared.join(format!("t{t}-{i}"));
                    fs::write(&tmp, body(t, i)).unwrap();
                    must(rename(&tmp, &fin), "rename tmp to final");
                    if i % 5 == 0 {
                        // Atomic replace of a per-thread "latest".
                        let tmp = shared.join(format!("t{t}-latest-{i}.tmp"));
                        fs::write(&tmp, body(t, i)).unwrap();
                        must(
                            rename(&tmp, &shared.join(format!("t{t}-latest"))),
                            "rename over latest",
                        );
                    }
                    if i % 3 == 0 {
                        must(unlink(&fin), "unlink");
                    }
                }
            });
        }
        // A lister: no name that is created once may show up twice in one listing.
        let lister = {
            let shared = &shared;
            scope.spawn(move || {
                let mut listings = 0;
                for _ in 0..20 {
                    let mut seen = HashSet::new();
                    for e in fs::read_dir(shared).unwrap() {
                        let name = e.unwrap().file_name();
                        if name.to_str().unwrap().contains("latest") {
                            continue;
                        }
                        assert!(seen.insert(name.clone()), "{name:?} listed twice");
                    }
                    listings += 1;
                }
                listings
            })
        };
        let mover = {
            let (p1, p2) = (&p1, &p2);
            scope.spawn(move || {
                let mut in_p2 = [false; SUBDIRS];
                for k in 0..400 {
                    let s = (k * 5) % SUBDIRS;
                    let name = format!("s{s}");
                    let (from, to) = if in_p2[s] { (p2, p1) } else { (p1, p2) };
                    must(rename(&from.join(&name), &to.join(&name)), "move subdir");
                    in_p2[s] = !in_p2[s];
                }
                in_p2
            })
        };
        assert_eq!(lister.join().unwrap(), 20);
        mover.join().unwrap()
    });

    for t in 0..4 {
        for i in 0..500 {
            let fin = shared.join(format!("t{t}-{i}"));
            if i % 3 == 0 {
                expect_errno(try_stat(&fin), libc::ENOENT, &format!("unlinked t{t}-{i}"));
            } else {
                assert_eq!(fs::read(&fin).unwrap(), body(t, i), "t{t}-{i}");
            }
        }
        assert_eq!(
            fs::read(shared.join(format!("t{t}-latest"))).unwrap(),
            body(t, 495)
        );
    }
    let listed = names(&shared);
    assert!(
        listed
            .iter()
            .all(|n| !n.to_str().unwrap().ends_with(".tmp")),
        "temporary names left"
    );
    assert_eq!(listed.len(), 4 * (500 - 167) + 4);
    for (s, &is_in_p2) in in_p2.iter().enumerate() {
        let name = format!("s{s}");
        let (home, other) = if is_in_p2 { (&p2, &p1) } else { (&p1, &p2) };
        let d = home.join(&name);
        assert_eq!(fs::read(d.join("a")).unwrap(), format!("a{s}").as_bytes());
        assert_eq!(
            fs::read(d.join("inner/b")).unwrap(),
            format!("b{s}").as_bytes()
        );
        expect_errno(try_stat(&other.join(&name)), libc::ENOENT, "moved subdir");
    }
    let moved = in_p2.iter().filter(|&&b| b).count() as u64;
    assert_eq!(stat(&p2).st_nlink, 2 + moved);
    assert_eq!(stat(&p1).st_nlink, 2 + SUBDIRS as u64 - moved);
    assert_eq!(descendants(&p2), 4 * moved);
    assert_counts_match_walk(&root);
}
