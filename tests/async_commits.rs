//! Commits handed to the commit workers, against the core directly: versions stay in commit
//! order with the bytes of their commit point, reads see the latest writes while commits
//! are pending, an unlink during a pending commit leaks nothing, and a handed-off commit
//! that does not fit is given up with its bytes kept (and retried at the next commit point).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use memfs::fs::{Caller, Errno, Fs, FsConfig, SetAttr, CHECKPOINT_MIN, ROOT_INO};
use memfs::testdata::noise;

const MIB: usize = 1 << 20;

fn fs_with_workers(config: FsConfig) -> Arc<Fs> {
    let fs = Arc::new(Fs::new(config));
    fs.start_commit_workers(2).unwrap();
    fs
}

fn config() -> FsConfig {
    FsConfig {
        keep_versions: 10_000,
        capacity: 1 << 30,
        ..FsConfig::default()
    }
}

fn create(fs: &Fs, name: &str) -> (u64, u64) {
    let (attr, fh) = fs
        .create(ROOT_INO, name.as_bytes(), 0o644, libc::O_RDWR, Caller::ROOT)
        .unwrap();
    (attr.ino, fh)
}

fn read_all(fs: &Fs, fh: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < size {
        let got = fs.read(fh, out.len() as u64, (4 * MIB) as u32).unwrap();
        if got.is_empty() {
            break;
        }
        out.extend(got);
    }
    out
}

fn version_bytes(fs: &Fs, ino: u64, number: u64) -> Vec<u8> {
    let reader = fs.open_version(ino, number).unwrap();
    let size = fs.version_stat(ino, number).unwrap().size;
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        out.extend(
            reader
                .read(out.len() as u64, (4 * MIB) as u32)
                .expect("read")
                .into_vec(),
        );
    }
    out
}

/// Writes `data` from the start in pieces of `piece` bytes until the cap refuses one;
/// returns how many bytes went in.
fn write_until_full(fs: &Fs, fh: u64, data: &[u8], piece: usize) -> usize {
    let mut written = 0usize;
    for piece in data.chunks(piece) {
        match fs.write(fh, written as u64, piece) {
            Ok(_) => written += piece.len(),
            Err(Errno::ENOSPC) => break,
            Err(e) => panic!("write: {e:?}"),
        }
    }
    written
}

fn truncate(fs: &Fs, ino: u64, size: usize) {
    let to = SetAttr {
        size: Some(size as u64),
        ..SetAttr::default()
    };
    fs.setattr(ino, &to).unwrap();
}

fn assert_clean(fs: &Fs) {
    let check = fs.verify_store();
    assert!(check.ok, "{check:?}");
    fs.verify_usage().unwrap();
}

#[test]
fn versions_stay_in_commit_order_under_quick_commits_from_several_threads() {
    let fs = fs_with_workers(config());
    let (ino, fh0) = create(&fs, "f");
    let base = noise(3 * MIB, 7);
    // What the file held at each commit point, by the number the commit point reported.
    let expected: Arc<Mutex<BTreeMap<u64, Vec<u8>>>> = Arc::default();
    let model = Arc::new(Mutex::new(Vec::<u8>::new()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let fs = fs.clone();
            let expected = expected.clone();
            let model = model.clone();
            let base = base.clone();
            std::thread::spawn(move || {
                let fh = fs.open(ino, libc::O_RDWR).unwrap();
                for i in 0..12u64 {
                    let mut model = model.lock().unwrap();
                    if i % 3 == 2 {
                        // A small change: inline unless a commit is pending.
                        let at = (t * 1000 + i) as usize;
                        let tag = format!("small {t} {i}");
                        fs.write(fh, at as u64, tag.as_bytes()).unwrap();
                        let end = at + tag.len();
                        if model.len() < end {
                            model.resize(end, 0);
                        }
                        model[at..end].copy_from_slice(tag.as_bytes());
                    } else {
                        // A big change: handed to a worker.
                        let mut bytes = base.clone();
                        let tag = format!("thread {t} commit {i}");
                        bytes[(i as usize) * 4096..][..tag.len()].copy_from_slice(tag.as_bytes());
                        fs.setattr(
                            ino,
                            &SetAttr {
                                size: Some(0),
                                ..SetAttr::default()
                            },
                        )
                        .unwrap();
                        for (k, piece) in bytes.chunks(MIB / 2).enumerate() {
                            fs.write(fh, (k * MIB / 2) as u64, piece).unwrap();
                        }
                        *model = bytes;
                    }
                    let number = if i % 2 == 0 {
                        fs.fsync(fh, false).unwrap()
                    } else {
                        fs.flush(fh).unwrap()
                    };
                    if let Some(n) = number {
                        let old = expected.lock().unwrap().insert(n, model.clone());
                        assert!(old.is_none(), "version {n} reported twice");
                    }
                }
                // The last close commits too: what another thread wrote and has not yet
                // committed, if anything.
                let model = model.lock().unwrap();
                if let Some(n) = fs.release(fh).unwrap() {
                    expected.lock().unwrap().insert(n, model.clone());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let versions = fs.version_stats(ino).unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.number).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let expected = expected.lock().unwrap();
    // Every version made is one a commit point reported, with its bytes.
    for v in &versions {
        let want = expected.get(&v.number).expect("a reported number");
        assert!(
            version_bytes(&fs, ino, v.number) == *want,
            "version {}",
            v.number
        );
    }
    // Only a commit that changed nothing leaves its number unused: here every one did.
    assert_eq!(versions.len(), expected.len(), "{numbers:?}");
    fs.release(fh0).unwrap();
    assert_clean(&fs);
}

/// A small deterministic generator for the model test.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn reads_see_the_latest_writes_while_commits_are_pending() {
    let fs = fs_with_workers(config());
    let (ino, fh) = create(&fs, "f");
    let mut model: Vec<u8> = Vec::new();
    let mut expected: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..120u64 {
        match rng.next(10) {
            0..=4 => {
                // Writes big enough that most commit points are handed off.
                let len = if rng.next(3) == 0 {
                    64
                } else {
                    MIB + rng.next(MIB as u64) as usize
                };
                let at = rng.next(model.len() as u64 + MIB as u64) as usize;
                let bytes = noise(len, step);
                fs.write(fh, at as u64, &bytes).unwrap();
                if model.len() < at + len {
                    model.resize(at + len, 0);
                }
                model[at..at + len].copy_from_slice(&bytes);
            }
            5 => {
                let size = rng.next(model.len() as u64 + MIB as u64) as usize;
                fs.setattr(
                    ino,
                    &SetAttr {
                        size: Some(size as u64),
                        ..SetAttr::default()
                    },
                )
                .unwrap();
                model.resize(size, 0);
            }
            6 if !model.is_empty() => {
                let at = rng.next(model.len() as u64);
                let len = 1 + rng.next(2 * MIB as u64);
                let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                fs.fallocate(fh, at, len, punch).unwrap();
                let end = (at + len).min(model.len() as u64) as usize;
                model[at as usize..end].fill(0);
            }
            _ => {
                if let Some(n) = fs.flush(fh).unwrap() {
                    expected.insert(n, model.clone());
                }
            }
        }
        assert_eq!(fs.getattr(ino).unwrap().size, model.len() as u64);
        assert!(read_all(&fs, fh, model.len()) == model, "step {step}");
        let at = rng.next(model.len() as u64 + 1);
        let got = fs.read(fh, at, 100_000).unwrap();
        let end = (at as usize + 100_000).min(model.len());
        assert!(got == model[at as usize..end], "step {step}: read at {at}");
    }
    if let Some(n) = fs.flush(fh).unwrap() {
        expected.insert(n, model.clone());
    }
    let versions = fs.version_stats(ino).unwrap();
    assert!(!versions.is_empty());
    for v in &versions {
        let want = expected.get(&v.number).expect("a reported number");
        assert!(
            version_bytes(&fs, ino, v.number) == *want,
            "version {}",
            v.number
        );
    }
    assert!(read_all(&fs, fh, model.len()) == model);
    fs.release(fh).unwrap();
    assert_clean(&fs);
}

#[test]
fn unlink_during_a_pending_commit_leaks_nothing() {
    let fs = fs_with_workers(config());
    for round in 0..8u64 {
        let (ino, fh) = create(&fs, "f");
        fs.write(fh, 0, &noise(8 * MIB, round)).unwrap();
        let number = fs.flush(fh).unwrap();
        assert_eq!(number, Some(1));
        fs.unlink(ROOT_INO, b"f").unwrap();
        if round % 2 == 0 {
            // Write more while the commit is pending, then commit again.
            fs.write(fh, 100, b"more").unwrap();
            fs.fsync(fh, false).unwrap();
        }
        fs.release(fh).unwrap();
        // The kernel's reference from the create goes last: the file is freed now.
        fs.forget(ino, 1);
    }
    fs.drain_commits();
    assert_clean(&fs);
    assert_eq!(fs.dirty_bytes(), 0);
    assert_eq!(fs.store().stats().stored_bytes, 0);
}

#[test]
fn a_handed_off_commit_that_does_not_fit_keeps_its_bytes_and_the_next_commit_retries() {
    let fs = fs_with_workers(FsConfig {
        capacity: 16 << 20,
        ..config()
    });
    let (ino, fh) = create(&fs, "f");
    let data = noise(32 * MIB, 3);
    let written = write_until_full(&fs, fh, &data, 16 * 1024);
    assert!(written < data.len(), "the cap was never reached");
    // The close returns at once with a number; the commit (new chunks and their overhead
    // on top of a full cap) cannot fit and is given up.
    let first = fs.flush(fh).unwrap().expect("a handed-off commit");
    let versions = fs.version_stats(ino).unwrap();
    assert!(versions.is_empty(), "{versions:?}");
    // The bytes stay, readable and charged.
    assert!(read_all(&fs, fh, written) == data[..written]);
    assert_eq!(fs.dirty_bytes(), written as u64);
    fs.verify_usage().unwrap();
    // Half of it fits: the next commit point commits what the file holds now.
    let half = written / 2;
    truncate(&fs, ino, half);
    let second = fs.flush(fh).unwrap().expect("a commit");
    assert!(second > first);
    let versions = fs.version_stats(ino).unwrap();
    assert_eq!(
        versions.iter().map(|v| v.number).collect::<Vec<_>>(),
        [second]
    );
    assert!(version_bytes(&fs, ino, second) == data[..half]);
    assert_eq!(fs.dirty_bytes(), 0);
    fs.release(fh).unwrap();
    assert_clean(&fs);
    fs.unlink(ROOT_INO, b"f").unwrap();
    fs.forget(ino, 1);
    assert_clean(&fs);
    assert_eq!(fs.store().stats().stored_bytes, 0);
}

/// Small commits go to the workers too, unless memory is short: then the commit is made by
/// the close itself, which reports ENOSPC (a handed-off commit that does not fit is given up
/// without a word, as in the test above).
#[test]
fn a_small_commit_near_the_cap_is_made_inline_and_reports_enospc() {
    let fs = fs_with_workers(FsConfig {
        capacity: 1 << 20,
        ..config()
    });
    let (ino, fh) = create(&fs, "f");
    let data = noise(2 * MIB, 5);
    // Pieces of 1 KiB: the cap is full to within 1 KiB.
    let written = write_until_full(&fs, fh, &data, 1024);
    assert!(written < MIB, "the cap was never reached");
    // The new chunks' overhead does not fit on top of a full cap, and the close says so.
    assert_eq!(fs.flush(fh), Err(Errno::ENOSPC));
    assert!(fs.version_stats(ino).unwrap().is_empty());
    assert!(read_all(&fs, fh, written) == data[..written]);
    assert_eq!(fs.dirty_bytes(), written as u64);
    fs.verify_usage().unwrap();
    // A quarter of it fits: the next close commits it.
    let kept = written / 4;
    truncate(&fs, ino, kept);
    let number = fs.flush(fh).unwrap().expect("a version");
    let versions = fs.version_stats(ino).unwrap();
    assert_eq!(
        versions.iter().map(|v| v.number).collect::<Vec<_>>(),
        [number]
    );
    assert!(version_bytes(&fs, ino, number) == data[..kept]);
    assert_eq!(fs.dirty_bytes(), 0);
    fs.release(fh).unwrap();
    fs.unlink(ROOT_INO, b"f").unwrap();
    fs.forget(ino, 1);
    assert_clean(&fs);
    assert_eq!(fs.store().stats().stored_bytes, 0);
}

/// Writes `model` into a new file `name` sequentially, 1 MiB at a time; returns the inode
/// and handle.
fn write_sequentially(fs: &Fs, name: &str, model: &[u8]) -> (u64, u64) {
    let (ino, fh) = create(fs, name);
    for (i, piece) in model.chunks(MIB).enumerate() {
        fs.write(fh, (i * MIB) as u64, piece).unwrap();
    }
    (ino, fh)
}

/// A long write is chunked while it goes on (checkpoints), not held until its commit
/// point: the dirty bytes stay bounded, reads see every write, no version appears before
/// the commit point, and the one version it makes has exactly the bytes, the recipe (so
/// the hash) and the stored bytes of the same content committed at once without workers.
#[test]
fn long_writes_are_chunked_before_their_commit_point_and_make_one_version() {
    let mut model = noise(200 * MIB, 7);
    let fs = fs_with_workers(config());
    let (ino, fh) = write_sequentially(&fs, "f", &model[..150 * MIB]);
    // Rewrite a stretch that a checkpoint has probably chunked already, then go on.
    let patch = noise(3 * MIB, 8);
    fs.write(fh, (10 * MIB + 12345) as u64, &patch).unwrap();
    model[10 * MIB + 12345..13 * MIB + 12345].copy_from_slice(&patch);
    for at in (150 * MIB..200 * MIB).step_by(MIB) {
        fs.write(fh, at as u64, &model[at..at + MIB]).unwrap();
    }
    assert!(read_all(&fs, fh, model.len()) == model);
    // Once the workers are idle, at most what the last checkpoint left is dirty (one more
    // write starts a checkpoint of the rest if that is still too much).
    fs.drain_commits();
    fs.write(fh, 0, &model[..1]).unwrap();
    fs.drain_commits();
    let dirty = fs.dirty_bytes();
    assert!(dirty < CHECKPOINT_MIN, "{dirty} bytes still dirty");
    assert!(
        fs.version_stats(ino).unwrap().is_empty(),
        "a checkpoint made a version"
    );
    assert!(read_all(&fs, fh, model.len()) == model);

    let number = fs.flush(fh).unwrap().expect("the close makes a version");
    let versions = fs.version_stats(ino).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].number, number);
    assert!(version_bytes(&fs, ino, number) == model);
    fs.release(fh).unwrap();
    assert_eq!(fs.dirty_bytes(), 0);

    // The same bytes, committed at once (no workers, so no checkpoints).
    let inline = Fs::new(config());
    let (inline_ino, inline_fh) = create(&inline, "f");
    inline.write(inline_fh, 0, &model).unwrap();
    inline.release(inline_fh).unwrap();
    let hash = |fs: &Fs, ino| fs.getxattr(ino, b"user.memfs.hash").unwrap();
    assert_eq!(hash(&fs, ino), hash(&inline, inline_ino));
    assert_eq!(
        fs.store().stats().stored_bytes,
        inline.store().stats().stored_bytes,
        "a checkpoint's chunks outlived it"
    );
    let new_bytes = |fs: &Fs, ino| fs.versions(ino).unwrap()[0].new_bytes;
    assert_eq!(new_bytes(&fs, ino), new_bytes(&inline, inline_ino));
    assert_clean(&fs);
}

/// A close that finds everything chunked by a checkpoint, with nothing written since, still
/// makes its version; a checkpoint of unchanged bytes makes none; an unlink while a
/// checkpoint is pending leaks nothing.
#[test]
fn a_close_right_after_a_checkpoint_makes_a_version_and_unlink_leaks_nothing() {
    let fs = fs_with_workers(config());
    // Exactly the checkpoint threshold: the last write hands every byte to a checkpoint.
    let model = noise(CHECKPOINT_MIN as usize, 9);
    let (ino, fh) = write_sequentially(&fs, "f", &model);
    fs.drain_commits();
    assert_eq!(fs.dirty_bytes(), 0, "the checkpoint took every byte");
    let number = fs
        .flush(fh)
        .unwrap()
        .expect("a version of the checkpointed bytes");
    assert!(version_bytes(&fs, ino, number) == model);
    // A second close with nothing new makes none, nor does one after a checkpoint of the
    // same bytes written again.
    assert_eq!(fs.flush(fh).unwrap(), None);
    for (i, piece) in model.chunks(MIB).enumerate() {
        fs.write(fh, (i * MIB) as u64, piece).unwrap();
    }
    fs.drain_commits();
    assert_eq!(fs.dirty_bytes(), 0, "the checkpoint took every byte");
    assert_eq!(fs.flush(fh).unwrap(), None);
    fs.release(fh).unwrap();
    assert_eq!(fs.version_stats(ino).unwrap().len(), 1);

    let (ino, fh) = write_sequentially(&fs, "g", &noise(100 * MIB, 10));
    fs.unlink(ROOT_INO, b"g").unwrap();
    fs.release(fh).unwrap();
    fs.forget(ino, 1);
    fs.drain_commits();
    assert_clean(&fs);
    assert_eq!(fs.store().stats().stored_bytes, model.len() as u64);
}

/// Whether every commit handed off so far is installed within `limit`. `drain_commits` only
/// watches the workers (it wakes none), so a commit no worker was told of, or will find,
/// makes this false instead of hanging the test.
fn settles_within(fs: &Arc<Fs>, limit: std::time::Duration) -> bool {
    let (done, settled) = std::sync::mpsc::channel();
    let fs = fs.clone();
    std::thread::spawn(move || {
        fs.drain_commits();
        let _ = done.send(());
    });
    settled.recv_timeout(limit).is_ok()
}

#[test]
fn commits_are_taken_up_by_napping_and_by_sleeping_workers() {
    // While files are queued close together an idle worker naps, and a close wakes none
    // (see `CommitQueue::push`): the napping worker must still find each commit, and a
    // sleeping worker must be woken.
    let limit = std::time::Duration::from_secs(10);
    let fs = fs_with_workers(config());
    let mut files = Vec::new();
    let mut commit = |fs: &Arc<Fs>, name: &str| {
        let (ino, fh) = create(fs, name);
        let bytes = format!("the content of {name}\n").repeat(20).into_bytes();
        fs.write(fh, 0, &bytes).unwrap();
        assert_eq!(fs.flush(fh).unwrap(), Some(1));
        fs.release(fh).unwrap();
        files.push((ino, bytes));
    };
    // Workers asleep since they started: the first commit must wake one.
    commit(&fs, "cold");
    assert!(
        settles_within(&fs, limit),
        "a sleeping worker was not woken"
    );
    // Small commits back to back: after the first few the workers nap between them.
    for i in 0..200u64 {
        commit(&fs, &format!("warm-{i}"));
    }
    assert!(
        settles_within(&fs, limit),
        "a napping worker missed a commit"
    );
    // Long after the last one the workers sleep again and must be woken.
    std::thread::sleep(std::time::Duration::from_millis(100));
    commit(&fs, "cold-again");
    assert!(
        settles_within(&fs, limit),
        "a sleeping worker was not woken"
    );
    for (ino, bytes) in &files {
        assert_eq!(&version_bytes(&fs, *ino, 1), bytes);
    }
    assert_eq!(fs.dirty_bytes(), 0);
    assert_clean(&fs);
}
