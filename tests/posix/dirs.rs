//! Directories and their entries: mkdir/rmdir/unlink errors and link counts, mknod of
//! every file type, readdir (100k entries, entries removed while reading).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::common::*;
use crate::sys::*;

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
