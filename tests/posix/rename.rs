//! rename(2) and renameat2(2): replacing, directories, NOREPLACE and EXCHANGE, and the
//! descendant counts of moved subtrees.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};

use crate::common::*;
use crate::sys::*;

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

/// What `renameat2(RENAME_WHITEOUT)` does in `dir`, as lines to compare between file systems.
fn whiteout_story(dir: &std::path::Path) -> Vec<String> {
    let mut said = Vec::new();
    let mut say = |line: String| said.push(line);
    let (a, b) = (dir.join("a"), dir.join("b"));
    fs::write(&a, b"moved").unwrap();
    say(format!(
        "rename: {:?}",
        renameat2(&a, &b, libc::RENAME_WHITEOUT)
    ));
    let st = lstat(&a);
    say(format!(
        "left: mode {:o} rdev {} nlink {} size {} uid {}",
        st.st_mode, st.st_rdev, st.st_nlink, st.st_size, st.st_uid
    ));
    say(format!("moved: {:?}", fs::read(&b).unwrap()));
    fs::create_dir_all(dir.join("d/sub")).unwrap();
    let flags = libc::RENAME_WHITEOUT | libc::RENAME_NOREPLACE;
    say(format!(
        "dir: {:?}",
        renameat2(&dir.join("d"), &dir.join("e"), flags)
    ));
    say(format!("dir left: {:o}", lstat(&dir.join("d")).st_mode));
    let noreplace = renameat2(&dir.join("e"), &b, flags).map_err(errno_name);
    say(format!("onto a file, no replace: {noreplace:?}"));
    let exchange = libc::RENAME_WHITEOUT | libc::RENAME_EXCHANGE;
    let swapped = renameat2(&dir.join("e"), &b, exchange).map_err(errno_name);
    say(format!("with exchange: {swapped:?}"));
    // Onto a whiteout, as overlayfs does: the whiteout is replaced, a new one left behind.
    fs::write(dir.join("f"), b"f").unwrap();
    say(format!(
        "onto a whiteout: {:?}",
        renameat2(&dir.join("f"), &a, libc::RENAME_WHITEOUT)
    ));
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    say(format!("names: {names:?}"));
    say(format!(
        "f left: {:o}, a: {:?}",
        lstat(&dir.join("f")).st_mode,
        fs::read(&a).unwrap()
    ));
    said
}

/// `RENAME_WHITEOUT` as on tmpfs: the old name is left to a character device 0:0 with mode
/// 0, with the flag's errors (EEXIST with NOREPLACE, EINVAL with EXCHANGE).
#[test]
fn rename_whiteout_leaves_a_whiteout_as_on_tmpfs() {
    let tmpfs = Tmpfs::new();
    let expected = whiteout_story(tmpfs.path());
    let m = Mount::new();
    let used = m.stats().used_bytes;
    let got = whiteout_story(m.path());
    assert_eq!(got, expected, "memfs (left) against tmpfs (right)");
    assert!(
        expected[1].starts_with("left: mode 20000 rdev 0 nlink 1"),
        "{expected:?}"
    );
    assert_counts_match_walk(m.path());
    for name in ["a", "b", "d", "e/sub", "e", "f"] {
        let path = m.join(name);
        if lstat(&path).st_mode & libc::S_IFMT == libc::S_IFDIR {
            fs::remove_dir(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    assert_used_bytes_return_to(&m, used);
}

/// overlayfs takes memfs as its upper layer: it refused to mount before RENAME_WHITEOUT
/// ("upper fs does not support RENAME_WHITEOUT"). A delete leaves a whiteout in the upper
/// layer, a change copies the file up, and the merged view shows both.
#[test]
fn overlayfs_takes_memfs_as_its_upper_layer() {
    let lower = tempfile::tempdir().unwrap();
    fs::write(lower.path().join("gone"), b"lower").unwrap();
    fs::create_dir(lower.path().join("dir")).unwrap();
    fs::write(lower.path().join("dir/kept"), b"lower\n").unwrap();
    let m = Mount::new();
    fs::create_dir(m.join("upper")).unwrap();
    fs::create_dir(m.join("work")).unwrap();
    let merged = tempfile::tempdir().unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.path().display(),
        m.join("upper").display(),
        m.join("work").display()
    );
    let mounted = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(merged.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t overlay with memfs as upper");
    let view = merged.path();
    let worked = std::panic::catch_unwind(|| {
        fs::remove_file(view.join("gone")).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(view.join("dir/kept"))
            .unwrap()
            .write_all(b"upper\n")
            .unwrap();
        fs::write(view.join("new"), b"new").unwrap();
        let mut names: Vec<_> = fs::read_dir(view)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["dir", "new"]);
        assert_eq!(fs::read(view.join("dir/kept")).unwrap(), b"lower\nupper\n");
    });
    let unmounted = std::process::Command::new("umount")
        .arg(view)
        .status()
        .unwrap();
    if let Err(panic) = worked {
        std::panic::resume_unwind(panic);
    }
    assert!(unmounted.success());
    let whiteout = lstat(&m.join("upper/gone"));
    assert_eq!(
        (whiteout.st_mode & libc::S_IFMT, whiteout.st_rdev),
        (libc::S_IFCHR, 0)
    );
    assert_eq!(
        fs::read(m.join("upper/dir/kept")).unwrap(),
        b"lower\nupper\n"
    );
    assert_counts_match_walk(m.path());
}
