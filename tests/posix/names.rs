//! Names: the 255-byte limit and names that are not UTF-8.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;
use crate::sys::*;

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
