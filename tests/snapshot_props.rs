//! Snapshots, Merkle hashes and diffs against the core directly (no kernel): for random
//! trees and random change sequences,
//! - the diff of two snapshots equals a brute-force comparison of their full contents;
//! - two snapshots have equal root hashes exactly when their trees are equal;
//! - the live root hash (cached, updated lazily) equals a snapshot's taken at that moment,
//!   and a fresh computation (fsck);
//! - a snapshot never changes while the live tree does, including files that were open
//!   with uncommitted writes when it was taken;
//! - dropping every snapshot and every file empties the store, and the counters agree.

use std::collections::BTreeMap;

use memfs::fs::snapshot::{diff, Change, ChangeKind, Snapshot};
use memfs::fs::{Caller, FileKind, Fs, FsConfig, RenameMode, SetAttr, ROOT_INO};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Write `bytes` at `at` into file name `n` of directory `d` (created if missing), and
    /// close it (a commit) unless `keep_open`.
    Write {
        d: usize,
        n: u8,
        at: u16,
        bytes: Vec<u8>,
        keep_open: bool,
    },
    Mkdir(usize, u8),
    Symlink(usize, u8, u8),
    Remove(usize, u8),
    Chmod(usize, u8, u16),
    Rename(usize, u8, usize, u8),
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    let dir = 0usize..5;
    let name = 0u8..4;
    prop_oneof![
        4 => (dir.clone(), name.clone(), 0u16..3000, prop::collection::vec(0u8..4, 1..600), any::<bool>())
            .prop_map(|(d, n, at, bytes, keep_open)| Op::Write { d, n, at, bytes, keep_open }),
        2 => (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        1 => (dir.clone(), name.clone(), 0u8..3).prop_map(|(d, n, t)| Op::Symlink(d, n, t)),
        2 => (dir.clone(), name.clone()).prop_map(|(d, n)| Op::Remove(d, n)),
        1 => (dir.clone(), name.clone(), prop_oneof![Just(0o644u16), Just(0o600), Just(0o755)])
            .prop_map(|(d, n, m)| Op::Chmod(d, n, m)),
        2 => (dir.clone(), name.clone(), dir, name).prop_map(|(a, n, b, m)| Op::Rename(a, n, b, m)),
        2 => Just(Op::Snapshot),
    ]
}

fn name(n: u8) -> Vec<u8> {
    format!("n{n}").into_bytes()
}

/// What a node is, compared whole: kind, permission bits, and bytes or target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Leaf {
    kind: FileKind,
    perm: u16,
    bytes: Vec<u8>,
}

/// A whole tree as path → node (the root itself not included: its own mode is not in its
/// hash).
type Flat = BTreeMap<String, Leaf>;

fn join(dir: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if dir.is_empty() {
        name.into_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn flat_snapshot(s: &Snapshot) -> Flat {
    let mut out = Flat::new();
    let mut todo = vec![(0u32, String::new())];
    while let Some((dir, path)) = todo.pop() {
        for (name, id) in s.entries(dir).unwrap() {
            let node = s.node(*id).unwrap();
            let p = join(&path, name);
            let bytes = match node.kind() {
                FileKind::Regular => s.read(*id, 0, u32::MAX).unwrap().into_vec(),
                FileKind::Symlink => s.readlink(*id).unwrap().to_vec(),
                FileKind::Directory => {
                    todo.push((*id, p.clone()));
                    Vec::new()
                }
                _ => Vec::new(),
            };
            out.insert(
                p,
                Leaf {
                    kind: node.kind(),
                    perm: node.attr().perm,
                    bytes,
                },
            );
        }
    }
    out
}

/// Every directory of the live tree (index 0 is the root), without kernel references.
fn live_dirs(fs: &Fs) -> Vec<u64> {
    let mut out = vec![ROOT_INO];
    let mut i = 0;
    while i < out.len() {
        let mut subdirs = Vec::new();
        fs.readdir(out[i], 2, |e| {
            if e.kind == FileKind::Directory {
                subdirs.push((e.name.clone(), e.ino));
            }
            false
        })
        .unwrap();
        subdirs.sort();
        out.extend(subdirs.into_iter().map(|(_, ino)| ino));
        i += 1;
    }
    out
}

/// What a brute-force comparison of two whole trees finds, with the diff's rules: the top
/// of an added or deleted subtree only, a kind change as D and A.
fn brute_diff(a: &Flat, b: &Flat) -> Vec<Change> {
    let parent_in_both = |p: &str| match p.rfind('/') {
        None => true,
        Some(i) => {
            let up = &p[..i];
            matches!((a.get(up), b.get(up)), (Some(x), Some(y))
                if x.kind == FileKind::Directory && y.kind == FileKind::Directory)
        }
    };
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    let mut push = |kind, path: &str| {
        out.push(Change {
            kind,
            path: path.to_string(),
        })
    };
    for p in paths {
        if !parent_in_both(p) {
            continue;
        }
        match (a.get(p), b.get(p)) {
            (Some(_), None) => push(ChangeKind::Deleted, p),
            (None, Some(_)) => push(ChangeKind::Added, p),
            (Some(x), Some(y)) if x.kind != y.kind => {
                push(ChangeKind::Deleted, p);
                push(ChangeKind::Added, p);
            }
            (Some(x), Some(y)) if x != y => push(ChangeKind::Modified, p),
            _ => {}
        }
    }
    out
}

/// Runs `ops` on a fresh file system and checks every property along the way.
fn run(ops: &[Op]) {
    let fs = Fs::new(FsConfig::default());
    let mut open: Vec<(u64, u64)> = Vec::new();
    let mut snaps: Vec<(std::sync::Arc<Snapshot>, Flat)> = Vec::new();
    for op in ops {
        let dirs = live_dirs(&fs);
        let dir = |d: usize| dirs[d % dirs.len()];
        match op {
            Op::Write {
                d,
                n,
                at,
                bytes,
                keep_open,
            } => {
                let (parent, nm) = (dir(*d), name(*n));
                let ino = match fs.peek_entry(parent, &nm) {
                    Ok((ino, FileKind::Regular)) => ino,
                    Ok(_) => continue,
                    Err(_) => {
                        let (attr, fh) = fs
                            .create(parent, &nm, 0o644, libc::O_RDWR, Caller::ROOT)
                            .unwrap();
                        fs.release(fh).unwrap();
                        fs.forget(attr.ino, 1);
                        attr.ino
                    }
                };
                let fh = fs.open(ino, libc::O_RDWR).unwrap();
                // Long runs of one byte make chunks repeat across files.
                let data: Vec<u8> = bytes.iter().flat_map(|&b| [b'a' + b; 8]).collect();
                fs.write(fh, *at as u64, &data).unwrap();
                if *keep_open {
                    open.push((ino, fh));
                } else {
                    fs.release(fh).unwrap();
                }
            }
            Op::Mkdir(d, n) => {
                if let Ok(attr) = fs.mkdir(dir(*d), &name(*n), 0o755, Caller::ROOT) {
                    fs.forget(attr.ino, 1);
                }
            }
            Op::Symlink(d, n, t) => {
                if let Ok(attr) = fs.symlink(dir(*d), &name(*n), &name(*t), Caller::ROOT) {
                    fs.forget(attr.ino, 1);
                }
            }
            Op::Remove(d, n) => {
                let _ = fs
                    .unlink(dir(*d), &name(*n))
                    .or_else(|_| fs.rmdir(dir(*d), &name(*n)));
            }
            Op::Chmod(d, n, mode) => {
                if let Ok((ino, _)) = fs.peek_entry(dir(*d), &name(*n)) {
                    let set = SetAttr {
                        mode: Some(*mode as u32),
                        ..Default::default()
                    };
                    fs.setattr(ino, &set).unwrap();
                }
            }
            Op::Rename(a, n, b, m) => {
                let _ = fs.rename(dir(*a), &name(*n), dir(*b), &name(*m), RenameMode::Replace);
            }
            Op::Snapshot => {
                // The live hash, cached and updated lazily since the last snapshot seeded
                // it, is what a frozen copy computes afresh.
                let live = fs.merkle_hash(ROOT_INO).unwrap();
                let s = fs
                    .create_snapshot(format!("s{}", snaps.len()).as_bytes())
                    .unwrap();
                let flat = flat_snapshot(&s);
                assert_eq!(&live, s.node(0).unwrap().hash());
                snaps.push((s, flat));
            }
        }
    }
    let last = fs.create_snapshot(b"last").unwrap();
    let last_flat = flat_snapshot(&last);
    snaps.push((last, last_flat));
    for (s, flat) in &snaps {
        assert_eq!(&flat_snapshot(s), flat, "snapshot {:?} changed", s.name());
    }
    for (a, fa) in &snaps {
        for (b, fb) in &snaps {
            let d = diff(a, 0, b, 0).unwrap();
            assert_eq!(d.changes, brute_diff(fa, fb));
            assert_eq!(
                a.node(0).unwrap().hash() == b.node(0).unwrap().hash(),
                fa == fb,
                "equal hashes must mean equal trees"
            );
            if fa == fb {
                assert_eq!(d.visited, 2, "equal trees are not opened");
            }
        }
    }
    let check = fs.verify_store();
    assert!(check.ok, "{check:?}");
    fs.verify_usage().unwrap();
    fs.verify_tree().unwrap();

    // Everything goes: handles, snapshots, files; then nothing is left in the store.
    for (_, fh) in open {
        fs.release(fh).unwrap();
    }
    let names: Vec<Vec<u8>> = fs
        .snapshot_list()
        .iter()
        .map(|s| s.name().to_vec())
        .collect();
    drop(snaps);
    for n in names {
        fs.delete_snapshot(&n).unwrap();
    }
    for d in live_dirs(&fs).into_iter().rev() {
        let mut names = Vec::new();
        fs.readdir(d, 2, |e| {
            names.push((e.name.clone(), e.kind));
            false
        })
        .unwrap();
        for (n, kind) in names {
            if kind == FileKind::Directory {
                fs.rmdir(d, &n).unwrap();
            } else {
                fs.unlink(d, &n).unwrap();
            }
        }
    }
    assert_eq!(fs.store().stats().chunks, 0, "store not empty");
    assert_eq!(fs.inode_count(), 1);
    fs.verify_usage().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn snapshots_hashes_and_diffs_agree_with_brute_force(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

#[test]
fn a_change_deep_down_is_found_by_visiting_only_its_path() {
    let fs = Fs::new(FsConfig::default());
    // 20 directories of 50 files, one level of nesting below each.
    let mut target = None;
    for d in 0..20 {
        let dir = fs
            .mkdir(ROOT_INO, format!("d{d}").as_bytes(), 0o755, Caller::ROOT)
            .unwrap();
        for f in 0..50 {
            let (attr, fh) = fs
                .create(
                    dir.ino,
                    format!("f{f}").as_bytes(),
                    0o644,
                    libc::O_RDWR,
                    Caller::ROOT,
                )
                .unwrap();
            fs.write(fh, 0, format!("{d}/{f}").as_bytes()).unwrap();
            fs.release(fh).unwrap();
            if d == 7 && f == 3 {
                target = Some(attr.ino);
            }
        }
    }
    let before = fs.create_snapshot(b"before").unwrap();
    let fh = fs.open(target.unwrap(), libc::O_RDWR).unwrap();
    fs.write(fh, 0, b"changed").unwrap();
    fs.release(fh).unwrap();
    let after = fs.create_snapshot(b"after").unwrap();
    let d = diff(&before, 0, &after, 0).unwrap();
    assert_eq!(
        d.changes,
        vec![Change {
            kind: ChangeKind::Modified,
            path: "d7/f3".into()
        }]
    );
    // The root's 20 entries on each side, then d7's 50 on each side.
    assert_eq!(d.visited, 2 + 2 * 20 + 2 * 50);
}

#[test]
fn snapshots_count_against_the_cap_and_keep_what_dropped_versions_held() {
    let fs = Fs::new(FsConfig {
        capacity: 2 << 20,
        ..FsConfig::default()
    });
    let noise = |seed: u32, len: usize| -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    };
    let (attr, fh) = fs
        .create(ROOT_INO, b"f", 0o644, libc::O_RDWR, Caller::ROOT)
        .unwrap();
    let first = noise(1, 300_000);
    fs.write(fh, 0, &first).unwrap();
    fs.release(fh).unwrap();
    let s = fs.create_snapshot(b"s").unwrap();
    // New contents until old versions must be dropped for room: the snapshot's stay.
    for seed in 2..12 {
        let fh = fs.open(attr.ino, libc::O_RDWR).unwrap();
        fs.write(fh, 0, &noise(seed, 300_000)).unwrap();
        let _ = fs.release(fh);
    }
    assert!(fs.versions_dropped_for_space() > 0);
    let id = s.lookup(0, b"f").unwrap();
    assert_eq!(s.read(id, 0, 400_000).unwrap().into_vec(), first);
    fs.verify_usage().unwrap();
    assert!(fs.verify_store().ok);
    // With the room nearly gone, many small files' worth of snapshot metadata does not fit.
    let mut n = 0;
    while fs
        .mknod(
            ROOT_INO,
            format!("e{n}").as_bytes(),
            libc::S_IFREG | 0o644,
            0,
            Caller::ROOT,
        )
        .is_ok()
    {
        n += 1;
    }
    assert_eq!(
        fs.create_snapshot(b"full").unwrap_err(),
        memfs::fs::Errno::ENOSPC
    );
    assert!(fs.snapshot(b"full").is_err());
    fs.verify_usage().unwrap();
    // Deleting the first snapshot gives its room back.
    let before = fs.used_bytes();
    drop(s);
    fs.delete_snapshot(b"s").unwrap();
    assert!(fs.used_bytes() < before);
    fs.verify_usage().unwrap();
}
