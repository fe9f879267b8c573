//! Extended attributes: set/get/list/remove, POSIX ACLs (refused), the virtual
//! descendants attribute.

use std::fs;
use std::time::Duration;

use crate::common::*;
use crate::sys::*;

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
