//! The checks: a sequence run on the core and the model, the whole trees compared, and
//! the store emptied; random sequences and every named error case.

use std::collections::BTreeMap;

use memfs::fs::{DirEntry, FileKind, Fs, FsConfig, ROOT_INO};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::driver::Core;
use crate::ops::{op, Name, Off, Op, Out, Res};
use crate::reference::{join, Model, Path, PAGE};

/// The entries of directory `ino`, after `.` and `..` (cookies 1 and 2).
fn entries(fs: &Fs, ino: u64) -> Vec<DirEntry> {
    let mut out = Vec::new();
    fs.readdir(ino, 2, |e| {
        out.push(e.clone());
        false
    })
    .unwrap();
    out
}

/// Every path below `ino` in the core, with (kind, nlink, size).
fn core_tree(fs: &Fs, ino: u64, prefix: &Path, out: &mut BTreeMap<Path, (FileKind, u32, u64)>) {
    for e in entries(fs, ino) {
        let path = join(prefix, &e.name);
        let a = fs.getattr(e.ino).unwrap();
        let size = if a.kind == FileKind::Directory {
            0
        } else {
            a.size
        };
        out.insert(path.clone(), (a.kind, a.nlink, size));
        if e.kind == FileKind::Directory {
            core_tree(fs, e.ino, &path, out);
        }
    }
}

fn compare_trees(core: &mut Core, model: &Model) {
    let mut got = BTreeMap::new();
    core_tree(&core.fs, ROOT_INO, &Vec::new(), &mut got);
    let want: BTreeMap<Path, (FileKind, u32, u64)> = model
        .paths
        .keys()
        .map(|p| match model.found(p) {
            Out::Found(k, n, s) => (p.clone(), (k, n, s)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(got, want, "the trees differ");
    // Contents: every page the model holds, and the first and last bytes.
    for (p, &n) in &model.paths {
        let node = &model.nodes[n];
        if node.kind != FileKind::Regular {
            continue;
        }
        let dir = core.resolve_dir(&p[..p.len() - 1].to_vec());
        let c = &node.content;
        let mut ranges: Vec<(u64, u64)> = c.pages.keys().map(|k| (k * PAGE, PAGE)).collect();
        ranges.push((0, 8192));
        ranges.push((c.size.saturating_sub(8192), 8192));
        let got: Vec<Vec<u8>> = core
            .with_file(dir, p.last().unwrap(), libc::O_RDONLY, |fs, fh| {
                ranges
                    .iter()
                    .map(|&(o, l)| fs.read(fh, o, l as u32))
                    .collect()
            })
            .unwrap();
        for ((o, l), bytes) in ranges.iter().zip(got) {
            assert!(bytes == c.read(*o, *l), "content of {p:?} at {o} differs");
        }
        for ino in core.refs.drain(..) {
            core.fs.forget(ino, 1);
        }
    }
}

/// Removes everything below `ino`.
fn remove_all(fs: &Fs, ino: u64) {
    for e in entries(fs, ino) {
        if e.kind == FileKind::Directory {
            remove_all(fs, e.ino);
            fs.rmdir(ino, &e.name).unwrap();
        } else {
            fs.unlink(ino, &e.name).unwrap();
        }
    }
}

/// Runs `ops` on the core and the model, which must agree; `expect`, when not empty, gives
/// each op's errno (`None`: success).
fn run(ops: &[Op], expect: &[Option<i32>]) {
    let mut model = Model::new();
    let mut core = Core {
        fs: Fs::new(FsConfig::default()),
        refs: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        let dirs = model.dirs();
        let got = core.apply(op, &dirs, &model);
        let want = model.apply(op, &dirs);
        let show = |r: &Res| match r {
            Ok(Out::Bytes(b)) => format!("Ok({} bytes)", b.len()),
            Err(e) => format!("Err({})", e.name()),
            r => format!("{r:?}"),
        };
        assert!(
            got == want || want == Ok(Out::Skipped),
            "op {i} {op:?}: core {} model {}",
            show(&got),
            show(&want)
        );
        if let Some(want) = expect.get(i) {
            assert_eq!(
                got.as_ref().err().map(|e| e.0),
                *want,
                "op {i} {op:?}: {}",
                show(&got)
            );
        }
        if let Err(e) = core.fs.verify_tree() {
            panic!("after op {i} {op:?}: {e}");
        }
    }
    compare_trees(&mut core, &model);
    let check = core.fs.verify_store();
    assert!(check.ok, "store: {check:?}");
    remove_all(&core.fs, ROOT_INO);
    let check = core.fs.verify_store();
    assert!(
        check.ok && check.blobs == 0,
        "store after removing all: {check:?}"
    );
    assert_eq!(core.fs.inode_count(), 1, "inodes left after removing all");
}

proptest! {
    // The seeds live beside this file (checks.proptest-regressions). The default,
    // SourceParallel, would look for them in tests/proptest-regressions/checks.txt once a
    // main.rs sits in this folder.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn core_answers_as_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops, &[]);
    }
}

/// Each error case named in the module docs once, with the result Linux gives, so they run
/// even when the random search misses one. `None` is success.
#[test]
fn every_named_error_case() {
    use Name::*;
    let e = |n: i32| Some(n);
    let steps: Vec<(Op, Option<i32>)> = vec![
        (Op::Mkdir(0, Pool(0)), None), // /n0; directories: / /n0
        (Op::Mkdir(1, Pool(1)), None), // /n0/n1; directories: / /n0 /n0/n1
        (Op::Mknod(0, Pool(2)), None), // /n2
        (Op::Mknod(0, Long(0)), None), // 255 bytes is a name
        (Op::Mknod(0, TooLong), e(libc::ENAMETOOLONG)),
        (Op::Lookup(0, TooLong), e(libc::ENAMETOOLONG)),
        (Op::Mknod(0, Empty), e(libc::ENOENT)),
        (Op::Mknod(0, Dot), e(libc::EEXIST)),
        (Op::Mkdir(0, DotDot), e(libc::EEXIST)),
        (Op::Mknod(0, Slash), e(libc::EINVAL)),
        (Op::Unlink(0, Slash), e(libc::ENOENT)),
        (Op::Lookup(1, Dot), None),
        (Op::Lookup(1, DotDot), None),
        (Op::Unlink(1, Dot), e(libc::EISDIR)),
        (Op::Rmdir(1, Dot), e(libc::EINVAL)),
        (Op::Rmdir(1, DotDot), e(libc::ENOTEMPTY)),
        (Op::Rename(1, Dot, 0, Pool(3), 0), e(libc::EBUSY)),
        (Op::Rename(0, Pool(2), 1, DotDot, 1), e(libc::EEXIST)),
        (Op::Link(0, Pool(2), 1, Dot), e(libc::EEXIST)),
        (Op::Create(1, Dot, false), e(libc::EISDIR)),
        (Op::Create(1, DotDot, true), e(libc::EEXIST)),
        (Op::Write(0, Pool(2), Off::Huge(0), 10, 1), e(libc::EFBIG)),
        (Op::Write(0, Pool(2), Off::Huge(-4), 10, 1), None), // a short write of 4 bytes
        (Op::Truncate(0, Pool(2), Off::Huge(1)), e(libc::EFBIG)),
        (
            Op::Fallocate(0, Pool(2), Off::Huge(-10), 11, 0),
            e(libc::EFBIG),
        ),
        (
            Op::Fallocate(0, Pool(2), Off::Small(0), 0, 0),
            e(libc::EINVAL),
        ),
        (
            Op::Fallocate(0, Pool(2), Off::Huge(-10), 11, 3),
            e(libc::EOPNOTSUPP),
        ),
        (Op::Read(0, Pool(2), Off::Huge(-8), 100), None),
        (Op::Truncate(0, Pool(2), Off::Small(100)), None),
        (Op::Rename(0, Pool(0), 2, Pool(3), 0), e(libc::EINVAL)), // into its own child
        (Op::Rmdir(0, Pool(0)), e(libc::ENOTEMPTY)),
        (Op::Unlink(0, Pool(0)), e(libc::EISDIR)),
        (Op::Rmdir(0, Pool(2)), e(libc::ENOTDIR)),
        (Op::Mknod(0, Pool(2)), e(libc::EEXIST)),
        (Op::Mkdir(0, Pool(2)), e(libc::EEXIST)),
        (Op::Unlink(0, Pool(3)), e(libc::ENOENT)),
        (Op::Lookup(0, Pool(3)), e(libc::ENOENT)),
        (Op::Link(0, Pool(0), 0, Pool(3)), e(libc::EPERM)),
        (Op::Link(0, Pool(0), 0, Pool(2)), e(libc::EEXIST)), // checked before EPERM
        (Op::Rename(0, Pool(2), 0, Pool(0), 0), e(libc::EISDIR)), // file over directory
        (Op::Mkdir(0, Pool(3)), None),                       // directories: / /n0 /n0/n1 /n3
        (Op::Rename(0, Pool(3), 0, Pool(2), 0), e(libc::ENOTDIR)), // directory over file
        (Op::Rename(0, Pool(3), 0, Pool(0), 0), e(libc::ENOTEMPTY)), // over a non-empty one
        (Op::Mknod(2, Pool(0)), None),                       // /n0/n1/n0
        (Op::Rename(2, Pool(0), 0, Pool(0), 0), e(libc::ENOTEMPTY)), // over its ancestor
        (Op::Link(0, Pool(2), 0, Pool(1)), None),            // /n1 and /n2: one file
        (Op::Rename(0, Pool(2), 0, Pool(1), 1), e(libc::EEXIST)), // NOREPLACE, same file
        (Op::Rename(0, Pool(2), 0, Pool(1), 0), None),       // the same file: nothing happens
        (Op::Rename(0, Pool(3), 3, TooLong, 0), e(libc::ENAMETOOLONG)),
        (Op::Rename(3, Pool(0), 0, TooLong, 0), e(libc::ENOENT)), // the source first
        (Op::Rename(0, Pool(0), 0, Pool(3), 2), None),            // exchange /n0 and /n3
        (Op::Rmdir(0, Pool(3)), e(libc::ENOTEMPTY)),
        (Op::Rmdir(0, Pool(0)), None),
    ];
    let (ops, want): (Vec<Op>, Vec<Option<i32>>) = steps.into_iter().unzip();
    run(&ops, &want);
}
