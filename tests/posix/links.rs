//! Symbolic and hard links.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;
use crate::sys::*;

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
