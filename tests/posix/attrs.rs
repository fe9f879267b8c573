//! Attributes and permissions: setattr (mode, owner, times), times before the epoch,
//! access(2) as root and as another user, statfs(2).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::common::*;
use crate::sys::*;

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
