//! What the tests share: syscall wrappers that return Ok(the call's value) or Err(errno),
//! stat and time helpers, byte patterns, and assertions that name the errno.

use std::ffi::{CStr, CString, OsString};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::*;

pub(crate) const KIB: usize = 1024;
pub(crate) const MIB: usize = 1024 * 1024;

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

pub(crate) fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

pub(crate) fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

pub(crate) fn errno_name(e: i32) -> String {
    format!("{e} ({})", std::io::Error::from_raw_os_error(e))
}

/// Asserts that `r` failed with exactly `want`.
#[track_caller]
pub(crate) fn expect_errno<T: std::fmt::Debug>(r: Result<T, i32>, want: i32, what: &str) {
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
pub(crate) fn must<T>(r: Result<T, i32>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: failed with errno {}", errno_name(e)),
    }
}

pub(crate) fn open(path: &Path, flags: i32, mode: u32) -> Result<OwnedFd, i32> {
    let fd = sys!(libc::open(
        cpath(path).as_ptr(),
        flags | libc::O_CLOEXEC,
        mode as libc::c_uint
    ))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn try_stat(path: &Path) -> Result<libc::stat, i32> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(libc::stat(cpath(path).as_ptr(), &mut st)).map(|_| st)
}

pub(crate) fn try_lstat(path: &Path) -> Result<libc::stat, i32> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(libc::lstat(cpath(path).as_ptr(), &mut st)).map(|_| st)
}

#[track_caller]
pub(crate) fn stat(path: &Path) -> libc::stat {
    must(try_stat(path), &format!("stat {}", path.display()))
}

#[track_caller]
pub(crate) fn lstat(path: &Path) -> libc::stat {
    must(try_lstat(path), &format!("lstat {}", path.display()))
}

#[track_caller]
pub(crate) fn fstat(fd: &impl AsRawFd) -> libc::stat {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    must(sys!(libc::fstat(fd.as_raw_fd(), &mut st)), "fstat");
    st
}

pub(crate) fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

pub(crate) fn pwrite(fd: &impl AsRawFd, buf: &[u8], offset: i64) -> Result<isize, i32> {
    sys!(libc::pwrite(
        fd.as_raw_fd(),
        buf.as_ptr().cast(),
        buf.len(),
        offset
    ))
}

pub(crate) fn pread(fd: &impl AsRawFd, len: usize, offset: i64) -> Result<Vec<u8>, i32> {
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

pub(crate) fn lseek(fd: &impl AsRawFd, offset: i64, whence: i32) -> Result<i64, i32> {
    sys!(libc::lseek(fd.as_raw_fd(), offset, whence))
}

pub(crate) fn fallocate(fd: &impl AsRawFd, mode: i32, offset: i64, len: i64) -> Result<i32, i32> {
    sys!(libc::fallocate(fd.as_raw_fd(), mode, offset, len))
}

pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<i32, i32> {
    sys!(libc::mkdir(cpath(path).as_ptr(), mode))
}

pub(crate) fn rmdir(path: &Path) -> Result<i32, i32> {
    sys!(libc::rmdir(cpath(path).as_ptr()))
}

pub(crate) fn unlink(path: &Path) -> Result<i32, i32> {
    sys!(libc::unlink(cpath(path).as_ptr()))
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<i32, i32> {
    sys!(libc::rename(cpath(from).as_ptr(), cpath(to).as_ptr()))
}

pub(crate) fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<libc::c_long, i32> {
    sys!(libc::syscall(
        libc::SYS_renameat2,
        libc::AT_FDCWD,
        cpath(from).as_ptr(),
        libc::AT_FDCWD,
        cpath(to).as_ptr(),
        flags
    ))
}

pub(crate) fn link(from: &Path, to: &Path) -> Result<i32, i32> {
    sys!(libc::link(cpath(from).as_ptr(), cpath(to).as_ptr()))
}

pub(crate) fn symlink(target: &[u8], path: &Path) -> Result<i32, i32> {
    let target = CString::new(target).unwrap();
    sys!(libc::symlink(target.as_ptr(), cpath(path).as_ptr()))
}

pub(crate) fn readlink(path: &Path, bufsize: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; bufsize];
    let n = sys!(libc::readlink(
        cpath(path).as_ptr(),
        buf.as_mut_ptr().cast(),
        buf.len()
    ))?;
    buf.truncate(n as usize);
    Ok(buf)
}

pub(crate) fn chmod(path: &Path, mode: u32) -> Result<i32, i32> {
    sys!(libc::chmod(cpath(path).as_ptr(), mode))
}

pub(crate) fn access(path: &Path, mode: i32) -> Result<i32, i32> {
    sys!(libc::access(cpath(path).as_ptr(), mode))
}

pub(crate) fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> Result<i32, i32> {
    sys!(libc::mknod(cpath(path).as_ptr(), mode, dev))
}

pub(crate) fn utimensat(path: &Path, times: [(i64, i64); 2]) -> Result<i32, i32> {
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

pub(crate) fn setxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<i32, i32> {
    sys!(libc::setxattr(
        cpath(path).as_ptr(),
        cstr(name).as_ptr(),
        value.as_ptr().cast(),
        value.len(),
        flags
    ))
}

/// getxattr(2) with a buffer of exactly `size` bytes (0 probes the length).
pub(crate) fn getxattr_sized(
    path: &Path,
    name: &str,
    size: usize,
) -> Result<(isize, Vec<u8>), i32> {
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
pub(crate) fn listxattr_sized(path: &Path, size: usize) -> Result<(isize, Vec<u8>), i32> {
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
pub(crate) fn xattr_names(path: &Path) -> Vec<String> {
    let (_, list) = must(listxattr_sized(path, 65536), "listxattr");
    list.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

pub(crate) fn removexattr(path: &Path, name: &str) -> Result<i32, i32> {
    sys!(libc::removexattr(cpath(path).as_ptr(), cstr(name).as_ptr()))
}

/// Every entry of a directory as getdents returns it, "." and ".." included:
/// (name, d_ino, d_type).
pub(crate) fn readdir_raw(dir: &Path) -> Vec<(Vec<u8>, u64, u8)> {
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
pub(crate) fn names(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

pub(crate) fn ns(sec: i64, nsec: i64) -> i128 {
    sec as i128 * 1_000_000_000 + nsec as i128
}

pub(crate) fn ctime_ns(st: &libc::stat) -> i128 {
    ns(st.st_ctime, st.st_ctime_nsec)
}

pub(crate) fn mtime_ns(st: &libc::stat) -> i128 {
    ns(st.st_mtime, st.st_mtime_nsec)
}

pub(crate) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// A deterministic byte pattern, different for each `seed`.
pub(crate) fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((j * 7 + seed * 31 + j / 4093) % 251) as u8)
        .collect()
}

/// Asserts two byte strings are equal without printing megabytes when they differ.
#[track_caller]
pub(crate) fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes read, {} expected; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}
