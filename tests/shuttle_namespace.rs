//! A model check of the namespace's locking with shuttle: small races of rename, rmdir, mkdir
//! and create on shared directories, each run under many schedules that shuttle picks (every
//! lock acquisition and atomic access of the core is a point where it may switch threads).
//! After every execution the descendant counts, link counts and the metadata estimate must
//! match a fresh walk, and no schedule may deadlock (shuttle reports that itself).
//!
//! Needs the `shuttle` feature, which swaps the core's locks and atomics for shuttle's
//! (src/sync.rs): `cargo test --features shuttle --test shuttle_namespace`.
#![cfg(feature = "shuttle")]

use std::sync::Arc;

use memfs::fs::{Caller, Errno, Fs, FsConfig, RenameMode, ROOT_INO};
use shuttle::thread;

/// Schedules tried per scenario and strategy: a few seconds each in a debug build.
const RANDOM_SCHEDULES: usize = 1000;
const PCT_SCHEDULES: usize = 500;
/// PCT's depth: how many forced switches a schedule gets (bugs of depth 2 or 3 are common).
const PCT_DEPTH: usize = 3;

const WHO: Caller = Caller::ROOT;

fn mkdir(fs: &Fs, parent: u64, name: &[u8]) -> u64 {
    fs.mkdir(parent, name, 0o755, WHO).unwrap().ino
}

/// Makes a file in `dir` through `create` (with a handle, as open(O_CREAT) does), then lets
/// the handle and the reference go.
fn create(fs: &Fs, dir: u64, name: &[u8]) -> Result<(), Errno> {
    let (attr, fh) = fs.create(dir, name, 0o644, libc::O_RDWR | libc::O_CREAT, WHO)?;
    fs.release(fh)?;
    fs.forget(attr.ino, 1);
    Ok(())
}

/// Runs `threads` concurrently on a fresh file system made by `setup`, then checks it.
fn race<S>(setup: fn(&Fs) -> S, threads: &[fn(&Fs, &S)])
where
    S: Send + Sync + 'static,
{
    race_kept(setup, threads);
}

/// [`race`], returning the file system and the state for more checks.
fn race_kept<S>(setup: fn(&Fs) -> S, threads: &[fn(&Fs, &S)]) -> (Arc<Fs>, Arc<S>)
where
    S: Send + Sync + 'static,
{
    let fs = Arc::new(Fs::new(FsConfig::default()));
    let state = Arc::new(setup(&fs));
    let handles: Vec<_> = threads
        .iter()
        .map(|&body| {
            let fs = fs.clone();
            let state = state.clone();
            thread::spawn(move || body(&fs, &state))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    fs.verify_tree().unwrap();
    fs.verify_usage().unwrap();
    (fs, state)
}

fn check(scenario: fn()) {
    shuttle::check_random(scenario, RANDOM_SCHEDULES);
    shuttle::check_pct(scenario, PCT_SCHEDULES, PCT_DEPTH);
}

/// p/x and p/y are empty directories; `y` is also the inode of p/y, q/z of q/z.
struct Dirs {
    p: u64,
    q: u64,
    y: u64,
}

fn dirs(fs: &Fs) -> Dirs {
    let p = mkdir(fs, ROOT_INO, b"p");
    let q = mkdir(fs, ROOT_INO, b"q");
    mkdir(fs, p, b"x");
    let y = mkdir(fs, p, b"y");
    mkdir(fs, q, b"z");
    Dirs { p, q, y }
}

/// A rename within one parent replaces an empty directory while another thread makes a
/// directory and a file in it: either the rename finds it non-empty, or the makes find it
/// gone (the old code could replace it after its emptiness check, orphaning the new entry).
#[test]
fn rename_over_a_directory_against_mkdir_and_create_in_it() {
    check(|| {
        race(
            dirs,
            &[
                |fs, d| {
                    let r = fs.rename(d.p, b"x", d.p, b"y", RenameMode::Replace);
                    assert!(matches!(r, Ok(()) | Err(Errno::ENOTEMPTY)), "{r:?}");
                },
                |fs, d| {
                    let r = fs.mkdir(d.y, b"c", 0o755, WHO).map(|_| ());
                    assert!(matches!(r, Ok(()) | Err(Errno::ENOENT)), "{r:?}");
                    let r = create(fs, d.y, b"f");
                    assert!(matches!(r, Ok(()) | Err(Errno::ENOENT)), "{r:?}");
                },
            ],
        )
    });
}

/// A rename across parents (under the exclusive tree lock) and one within a parent both
/// replace p/y, while a third thread fills and empties it.
#[test]
fn renames_across_and_within_parents_against_changes_in_the_target() {
    check(|| {
        race(
            dirs,
            &[
                |fs, d| {
                    let _ = fs.rename(d.q, b"z", d.p, b"y", RenameMode::Replace);
                },
                |fs, d| {
                    let _ = fs.rename(d.p, b"x", d.p, b"y", RenameMode::Replace);
                },
                |fs, d| {
                    if fs.mkdir(d.y, b"c", 0o755, WHO).is_ok() {
                        let _ = fs.rmdir(d.y, b"c");
                    }
                    let _ = create(fs, d.y, b"f");
                },
            ],
        )
    });
}

/// rmdir of the target, a rename over it and a create in it: exactly one of rmdir and
/// rename may remove it, and nothing made in it may survive its removal.
#[test]
fn rmdir_and_rename_of_one_directory_against_create_in_it() {
    check(|| {
        race(
            dirs,
            &[
                |fs, d| {
                    let r = fs.rmdir(d.p, b"y");
                    assert!(
                        matches!(r, Ok(()) | Err(Errno::ENOENT | Errno::ENOTEMPTY)),
                        "{r:?}"
                    );
                },
                |fs, d| {
                    let _ = fs.rename(d.p, b"x", d.p, b"y", RenameMode::Replace);
                },
                |fs, d| {
                    if create(fs, d.y, b"f").is_ok() {
                        let _ = fs.unlink(d.y, b"f");
                    }
                },
            ],
        )
    });
}

/// An exchange across parents against mkdir in both exchanged directories and an rmdir of
/// one of them.
#[test]
fn exchange_against_mkdir_and_rmdir() {
    check(|| {
        race(
            dirs,
            &[
                |fs, d| {
                    let _ = fs.rename(d.p, b"y", d.q, b"z", RenameMode::Exchange);
                },
                |fs, d| {
                    let _ = fs.mkdir(d.y, b"c", 0o755, WHO);
                },
                |fs, d| {
                    let _ = fs.rmdir(d.q, b"z");
                    let _ = fs.rmdir(d.p, b"y");
                },
            ],
        )
    });
}

/// One file, opened twice: each handle writes and commits (fsync on one, close on the
/// other) while a third thread reads. A read sees a whole write or none of it, and the
/// newest version is the final content (the later commit comes after both writes). Without
/// commit workers (a shuttle build never starts them) every commit is inline, under the
/// file's lock: this checks that the commit's prepare and install cannot interleave with a
/// write.
#[test]
fn commits_against_writes_and_reads_of_one_file() {
    struct File {
        ino: u64,
        a: u64,
        b: u64,
        reader: u64,
    }
    check(|| {
        let (fs, f) = race_kept(
            |fs| {
                let (attr, a) = fs
                    .create(ROOT_INO, b"f", 0o644, libc::O_RDWR | libc::O_CREAT, WHO)
                    .unwrap();
                let b = fs.open(attr.ino, libc::O_RDWR).unwrap();
                let reader = fs.open(attr.ino, libc::O_RDONLY).unwrap();
                File {
                    ino: attr.ino,
                    a,
                    b,
                    reader,
                }
            },
            &[
                |fs, f: &File| {
                    fs.write(f.a, 0, b"AAAA").unwrap();
                    fs.fsync(f.a, false).unwrap();
                },
                |fs, f: &File| {
                    fs.write(f.b, 2, b"BBBB").unwrap();
                    fs.flush(f.b).unwrap();
                },
                |fs, f: &File| {
                    let seen = fs.read(f.reader, 0, 16).unwrap();
                    let whole: [&[u8]; 5] = [b"", b"AAAA", b"\0\0BBBB", b"AABBBB", b"AAAABB"];
                    assert!(whole.contains(&seen.as_slice()), "{seen:?}");
                    let last = fs.version_stats(f.ino).unwrap();
                    if let Some(v) = last.last() {
                        assert!(v.size == 4 || v.size == 6, "{v:?}");
                    }
                },
            ],
        );
        let content = fs.read(f.reader, 0, 16).unwrap();
        let newest = fs.version_stats(f.ino).unwrap().last().unwrap().number;
        let version = fs.open_version(f.ino, newest).unwrap();
        assert_eq!(version.read(0, 16).expect("read").into_vec(), content);
        assert!(fs.verify_store().ok);
    });
}
