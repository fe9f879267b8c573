//! Symbolic and hard links.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
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

/// `linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH)`: a name for an open file (root only).
fn link_fd(fd: &impl AsRawFd, path: &std::path::Path) -> Result<i32, i32> {
    let path = cpath(path);
    let rc = unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        Ok(rc)
    } else {
        Err(errno())
    }
}

/// What `open(O_TMPFILE)` does in `dir`, as lines to compare between file systems.
fn tmpfile_story(dir: &std::path::Path) -> Vec<String> {
    let mut said = Vec::new();
    let mut say = |line: String| said.push(line);
    let d = dir.join("d");
    fs::create_dir(&d).unwrap();
    let tmp = libc::O_TMPFILE | libc::O_RDWR;
    let f = must(open(&d, tmp, 0o640), "open(O_TMPFILE)");
    must(pwrite(&f, b"nameless", 0), "write");
    let st = fstat(&f);
    say(format!(
        "made: nlink {} mode {:o} size {}",
        st.st_nlink, st.st_mode, st.st_size
    ));
    say(format!("listed: {:?}", fs::read_dir(&d).unwrap().count()));
    say(format!("linked: {:?}", link_fd(&f, &d.join("named"))));
    let st = fstat(&f);
    say(format!(
        "then: nlink {} content {:?}",
        st.st_nlink,
        fs::read(d.join("named")).unwrap()
    ));
    say(format!(
        "linked again: {:?}",
        link_fd(&f, &dir.join("second"))
    ));
    say(format!("nlink: {}", stat(&dir.join("second")).st_nlink));
    drop(f);
    let excl = must(
        open(&d, tmp | libc::O_EXCL, 0o600),
        "open(O_TMPFILE|O_EXCL)",
    );
    say(format!(
        "O_EXCL linked: {:?}",
        link_fd(&excl, &d.join("excl")).map_err(errno_name)
    ));
    drop(excl);
    drop(must(
        open(&d, libc::O_TMPFILE | libc::O_WRONLY, 0o600),
        "a tmpfile closed unnamed",
    ));
    let mut names: Vec<_> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    say(format!("names: {names:?}"));
    for (what, path, flags) in [
        ("on a file", d.join("named"), tmp),
        ("missing dir", dir.join("missing"), tmp),
        ("read-only", d.clone(), libc::O_TMPFILE | libc::O_RDONLY),
    ] {
        say(format!(
            "{what}: {:?}",
            open(&path, flags, 0o600).map(drop).map_err(errno_name)
        ));
    }
    said
}

/// `open(O_TMPFILE)` (FUSE_TMPFILE) as on tmpfs: a file with no name and a link count of 0,
/// named by a later `linkat` unless made with `O_EXCL`, and freed at its last close if it
/// never was. Nothing counts it while it has no name.
#[test]
fn o_tmpfile_makes_a_nameless_file_that_a_link_can_name() {
    let tmpfs = Tmpfs::new();
    let expected = tmpfile_story(tmpfs.path());
    let m = Mount::new();
    let used = m.stats().used_bytes;
    let got = tmpfile_story(m.path());
    assert_eq!(got, expected, "memfs (left) against tmpfs (right)");
    assert!(expected[2].contains("Ok"), "{expected:?}");
    assert_counts_match_walk(m.path());
    // The named file, its second name, and nothing of the two never named.
    assert_eq!(m.stats().files, 1);
    let fsck = fs::read_to_string(m.join(".memfs/fsck")).unwrap();
    assert!(fsck.contains("\"ok\": true"), "{fsck}");
    expect_errno(
        open(&m.join(".memfs"), libc::O_TMPFILE | libc::O_RDWR, 0o600),
        libc::EROFS,
        "open(.memfs, O_TMPFILE)",
    );
    // Gone with their names, the files hold nothing any more.
    fs::remove_dir_all(m.join("d")).unwrap();
    fs::remove_file(m.join("second")).unwrap();
    assert_used_bytes_return_to(&m, used);
}
