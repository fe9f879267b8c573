//! Descendant counts against the core directly (no kernel): after any sequence of
//! create/mkdir/unlink/rmdir/rename/link, every directory's count and link count equal a
//! fresh walk, and the core agrees with a simple path model on what exists.

use std::collections::BTreeMap;

use memfs::fs::{Caller, Errno, FileKind, Fs, FsConfig, RenameMode, ROOT_INO};
use proptest::prelude::*;

/// A small namespace so operations collide often: directories d0..d3 nested at will,
/// names n0..n3 in each.
#[derive(Clone, Debug)]
enum Op {
    Create(usize, u8),
    Mkdir(usize, u8),
    Unlink(usize, u8),
    Rmdir(usize, u8),
    Rename(usize, u8, usize, u8, u8),
    Link(usize, u8, usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let dir = 0usize..6;
    let name = 0u8..4;
    prop_oneof![
        (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Unlink(d, n)),
        (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Rmdir(d, n)),
        (dir.clone(), name.clone(), dir.clone(), name.clone(), 0u8..3)
            .prop_map(|(a, n, b, m, f)| Op::Rename(a, n, b, m, f)),
        (dir.clone(), name.clone(), dir, name).prop_map(|(a, n, b, m)| Op::Link(a, n, b, m)),
    ]
}

fn name(n: u8) -> Vec<u8> {
    format!("n{n}").into_bytes()
}

/// Every directory reachable from the root, in a stable order (index 0 is the root).
fn dirs(fs: &Fs) -> Vec<u64> {
    let mut out = vec![ROOT_INO];
    let mut i = 0;
    while i < out.len() {
        let mut subdirs = Vec::new();
        fs.readdir(out[i], 2, |e| {
            if e.kind == FileKind::Directory {
                subdirs.push(e.ino);
            }
            false
        })
        .unwrap();
        subdirs.sort();
        out.extend(subdirs);
        i += 1;
    }
    out
}

fn apply(fs: &Fs, op: &Op) -> Result<(), Errno> {
    let all = dirs(fs);
    let d = |i: usize| all[i % all.len()];
    let who = Caller::ROOT;
    match *op {
        Op::Create(p, n) => fs
            .mknod(d(p), &name(n), libc::S_IFREG | 0o644, 0, who)
            .map(|_| ()),
        Op::Mkdir(p, n) => fs.mkdir(d(p), &name(n), 0o755, who).map(|_| ()),
        Op::Unlink(p, n) => fs.unlink(d(p), &name(n)),
        Op::Rmdir(p, n) => fs.rmdir(d(p), &name(n)),
        Op::Rename(a, n, b, m, f) => {
            let mode = [
                RenameMode::Replace,
                RenameMode::NoReplace,
                RenameMode::Exchange,
            ][f as usize];
            fs.rename(d(a), &name(n), d(b), &name(m), mode)
        }
        Op::Link(a, n, b, m) => {
            let attr = fs.lookup(d(a), &name(n))?;
            let r = fs.link(attr.ino, d(b), &name(m)).map(|_| ());
            fs.forget(attr.ino, 1);
            r
        }
    }
}

/// Every path below the root with its kind, by walking the core.
fn snapshot(fs: &Fs, ino: u64, prefix: &str, out: &mut BTreeMap<String, FileKind>) {
    fs.readdir(ino, 2, |e| {
        let path = format!("{prefix}/{}", String::from_utf8_lossy(&e.name));
        out.insert(path.clone(), e.kind);
        if e.kind == FileKind::Directory {
            snapshot(fs, e.ino, &path, out);
        }
        false
    })
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn counts_equal_a_fresh_walk(ops in prop::collection::vec(op(), 1..80)) {
        let fs = Fs::new(FsConfig::default());
        for op in &ops {
            let _ = apply(&fs, op);
            if let Err(e) = fs.verify_tree() {
                panic!("after {op:?}: {e}");
            }
        }
        let mut tree = BTreeMap::new();
        snapshot(&fs, ROOT_INO, "", &mut tree);
        prop_assert_eq!(fs.descendants(ROOT_INO).unwrap(), tree.len() as u64);
    }
}

#[test]
fn moving_a_subtree_moves_its_count() {
    let fs = Fs::new(FsConfig::default());
    let who = Caller::ROOT;
    let a = fs.mkdir(ROOT_INO, b"a", 0o755, who).unwrap().ino;
    let b = fs.mkdir(ROOT_INO, b"b", 0o755, who).unwrap().ino;
    let s = fs.mkdir(a, b"s", 0o755, who).unwrap().ino;
    for i in 0..5 {
        fs.mknod(s, format!("f{i}").as_bytes(), libc::S_IFREG | 0o644, 0, who)
            .unwrap();
    }
    assert_eq!(fs.descendants(a).unwrap(), 6);
    fs.rename(a, b"s", b, b"s", RenameMode::Replace).unwrap();
    assert_eq!(fs.descendants(a).unwrap(), 0);
    assert_eq!(fs.descendants(b).unwrap(), 6);
    assert_eq!(fs.descendants(ROOT_INO).unwrap(), 8);
    assert_eq!(
        fs.rename(ROOT_INO, b"b", s, b"x", RenameMode::Replace),
        Err(Errno::EINVAL)
    );
    fs.verify_tree().unwrap();
}

#[test]
fn hard_links_count_once_per_entry() {
    let fs = Fs::new(FsConfig::default());
    let who = Caller::ROOT;
    let d = fs.mkdir(ROOT_INO, b"d", 0o755, who).unwrap().ino;
    let f = fs
        .mknod(d, b"f", libc::S_IFREG | 0o644, 0, who)
        .unwrap()
        .ino;
    fs.link(f, d, b"g").unwrap();
    fs.link(f, ROOT_INO, b"h").unwrap();
    assert_eq!(fs.descendants(d).unwrap(), 2);
    assert_eq!(fs.descendants(ROOT_INO).unwrap(), 4);
    assert_eq!(fs.getattr(f).unwrap().nlink, 3);
    fs.unlink(d, b"f").unwrap();
    assert_eq!(fs.descendants(ROOT_INO).unwrap(), 3);
    fs.verify_tree().unwrap();
}

#[test]
fn concurrent_namespace_changes_keep_counts_exact() {
    let fs = std::sync::Arc::new(Fs::new(FsConfig::default()));
    let who = Caller::ROOT;
    let top: Vec<u64> = (0..3)
        .map(|i| {
            fs.mkdir(ROOT_INO, format!("t{i}").as_bytes(), 0o755, who)
                .unwrap()
                .ino
        })
        .collect();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let fs = fs.clone();
            let top = top.clone();
            std::thread::spawn(move || {
                let mut x = t * 7919 + 1;
                for _ in 0..3000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let op = match (x >> 33) % 6 {
                        0 => Op::Create((x >> 40) as usize % 6, (x >> 45) as u8 % 4),
                        1 => Op::Mkdir((x >> 40) as usize % 6, (x >> 45) as u8 % 4),
                        2 => Op::Unlink((x >> 40) as usize % 6, (x >> 45) as u8 % 4),
                        3 => Op::Rmdir((x >> 40) as usize % 6, (x >> 45) as u8 % 4),
                        4 => Op::Rename(
                            (x >> 40) as usize % 6,
                            (x >> 45) as u8 % 4,
                            (x >> 50) as usize % 6,
                            (x >> 55) as u8 % 4,
                            (x >> 60) as u8 % 3,
                        ),
                        _ => Op::Link(
                            (x >> 40) as usize % 6,
                            (x >> 45) as u8 % 4,
                            (x >> 50) as usize % 6,
                            (x >> 55) as u8 % 4,
                        ),
                    };
                    let _ = apply(&fs, &op);
                }
                let _ = top;
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    fs.verify_tree().unwrap();
}
