//! Namespace races on the core, driven from several OS threads with no kernel in front. Over
//! FUSE the kernel's own directory locks serialise much of this; the core is documented as
//! callable directly, so its invariants (descendant counts, link counts, the metadata
//! estimate) must hold on their own.
//!
//! Renames of directories over existing directories, empty or not, in one parent and across
//! parents, run against mkdir, create, rmdir and unlink inside the directory being replaced.
//! A checker thread walks the tree meanwhile, so a broken invariant is caught close to the
//! iteration that broke it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memfs::fs::{Caller, Errno, Fs, FsConfig, RenameMode, ROOT_INO};

/// Operations per worker thread: the old rename race broke the tree within 3,000 to
/// 120,000 operations of all workers here; a few seconds in a debug build.
const ITERATIONS: u64 = 30_000;
/// A wall-clock bound as well, for slow or heavily shared machines.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Independent renamer/filler pairs, each on its own parent.
const PAIRS: usize = 3;

const WHO: Caller = Caller::ROOT;

struct Race {
    fs: Fs,
    /// Parents whose `y` is replaced by renames within them; the first also receives
    /// renames from `q`, which run under the exclusive tree lock.
    parents: Vec<u64>,
    q: u64,
    /// Operations done by all workers so far.
    done: AtomicU64,
    stop: AtomicBool,
}

impl Race {
    fn new() -> Race {
        let fs = Fs::new(FsConfig::default());
        let parents = (0..PAIRS)
            .map(|i| {
                let name = format!("p{i}");
                fs.mkdir(ROOT_INO, name.as_bytes(), 0o755, WHO).unwrap().ino
            })
            .collect();
        let q = fs.mkdir(ROOT_INO, b"q", 0o755, WHO).unwrap().ino;
        Race {
            fs,
            parents,
            q,
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// A small xorshift generator, so every run explores a different but cheap mix.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Makes `from/x` a directory (maybe holding a file) and renames it over `to/y`.
fn renamer(race: &Race, seed: u64, from: u64, to: u64) {
    let fs = &race.fs;
    let mut x = seed;
    for _ in 0..ITERATIONS {
        if !race.running() {
            return;
        }
        let _ = fs.mkdir(from, b"x", 0o755, WHO);
        match next(&mut x) % 4 {
            // A non-empty source moves its count along.
            0 => {
                if let Ok(attr) = fs.lookup(from, b"x") {
                    let _ = fs.mknod(attr.ino, b"inner", libc::S_IFREG | 0o644, 0, WHO);
                    fs.forget(attr.ino, 1);
                }
            }
            // The target must exist for a replace to race with its emptiness.
            1 => {
                let _ = fs.mkdir(to, b"y", 0o755, WHO);
            }
            _ => {}
        }
        let r = fs.rename(from, b"x", to, b"y", RenameMode::Replace);
        assert!(
            matches!(r, Ok(()) | Err(Errno::ENOENT | Errno::ENOTEMPTY)),
            "rename: {r:?}"
        );
        race.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fills and empties `p/y`, whichever directory that name holds at the moment.
fn filler(race: &Race, seed: u64, p: u64) {
    let fs = &race.fs;
    let mut x = seed;
    for _ in 0..ITERATIONS {
        if !race.running() {
            return;
        }
        let Ok(target) = fs.lookup(p, b"y") else {
            let _ = fs.mkdir(p, b"y", 0o755, WHO);
            continue;
        };
        let dir = target.ino;
        // What a non-empty source brought along, so the name is emptied again.
        let _ = fs.unlink(dir, b"inner");
        // Several changes per lookup keep the target's lock busy, so they land in any gap a
        // rename leaves between its checks and its changes.
        for _ in 0..8 {
            // Each change is undone at once, so the target is often empty when a rename
            // checks it, and a change may land between that check and the replacement.
            let r = match next(&mut x) % 3 {
                0 => fs
                    .mkdir(dir, b"c", 0o755, WHO)
                    .and_then(|_| fs.rmdir(dir, b"c")),
                1 => fs
                    .create(dir, b"f", 0o644, libc::O_RDWR | libc::O_CREAT, WHO)
                    .and_then(|(attr, fh)| {
                        fs.forget(attr.ino, 1);
                        fs.release(fh)?;
                        fs.unlink(dir, b"f")
                    }),
                _ => fs
                    .mknod(dir, b"g", libc::S_IFREG | 0o644, 0, WHO)
                    .and_then(|_| fs.unlink(dir, b"g")),
            };
            // ENOENT: the directory was replaced (or the name was not there).
            assert!(
                matches!(
                    r,
                    Ok(()) | Err(Errno::ENOENT | Errno::EEXIST | Errno::ENOTEMPTY)
                ),
                "filler: {r:?}"
            );
        }
        fs.forget(dir, 1);
        race.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn renames_over_directories_race_with_changes_inside_them() {
    let race = Arc::new(Race::new());
    // A renamer and a filler per parent, and one renamer across parents.
    let workers: Vec<_> = (0..2 * PAIRS as u64 + 1)
        .map(|t| {
            let race = race.clone();
            std::thread::spawn(move || {
                let seed = 0x9e37_79b9_7f4a_7c15 ^ (t + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
                let p = race.parents[t as usize % PAIRS];
                match t as usize / PAIRS {
                    0 => renamer(&race, seed, p, p),
                    1 => filler(&race, seed, p),
                    _ => renamer(&race, seed, race.q, race.parents[0]),
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut broken = None;
    while !workers.iter().all(|w| w.is_finished()) {
        if let Err(e) = race.fs.verify_tree() {
            broken = Some(e);
            break;
        }
        if start.elapsed() > TIME_LIMIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    race.stop.store(true, Ordering::Relaxed);
    let panicked = workers
        .into_iter()
        .map(|w| w.join())
        .filter(Result::is_err)
        .count();
    let done = race.done.load(Ordering::Relaxed);
    eprintln!("{done} operations in {:?}", start.elapsed());
    assert_eq!(panicked, 0, "workers panicked within {done} operations");
    if let Some(e) = broken {
        panic!("tree broken within {done} operations: {e}");
    }
    race.fs
        .verify_tree()
        .unwrap_or_else(|e| panic!("after {done} operations: {e}"));
    race.fs
        .verify_usage()
        .unwrap_or_else(|e| panic!("after {done} operations: {e}"));
}
