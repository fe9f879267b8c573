//! fsx (the File System eXerciser, Rust port `fsx` 0.3.2 from crates.io) against files on
//! memfs mounts: random reads, writes, truncates, fallocate, hole punches, mmap reads and
//! writes, copy_file_range, sendfile, fsync and close/reopen, each read checked against
//! fsx's own copy of the file. Four runs go at once on two mounts (one with the kernel's
//! writeback cache, one without), 200,000 operations in all; afterwards the store must pass
//! `.memfs/fsck`.
//!
//! `scripts/test.sh` installs fsx when it is missing. The binary is found through `$FSX`,
//! then `PATH`, then `${CARGO_HOME:-$HOME/.cargo}/bin`. `MEMFS_FSX_OPS=N` changes the
//! operations per run (e.g. for a long soak).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Mount;

/// An fsx configuration: a file kept within `flen` bytes, operations of up to `max_op`
/// bytes, every kind of operation on (mmap reads and writes `map_weight` as often as the
/// 10 of plain reads and writes).
fn fsx_config(flen: u64, max_op: u64, map_weight: u32) -> String {
    format!(
        r#"
flen = {flen}
[opsize]
max = {max_op}
[weights]
close_open = 2
read = 10
write = 10
mapread = {map_weight}
mapwrite = {map_weight}
invalidate = 1
truncate = 5
fsync = 1
fdatasync = 1
posix_fallocate = 4
punch_hole = 4
copy_file_range = 2
sendfile = 1
posix_fadvise = 1
"#
    )
}

/// One fsx process that has been started.
struct Run {
    name: String,
    command: String,
    child: Child,
    log: PathBuf,
}

/// The fsx binary, or a panic that says how to get it.
fn fsx_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FSX") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "$FSX={} is not a file", p.display());
        return p;
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    dirs.extend(cargo_home.map(|c| c.join("bin")));
    dirs.into_iter()
        .map(|d| d.join("fsx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "fsx is not installed (looked in $FSX, PATH and $CARGO_HOME/bin). \
                 scripts/test.sh installs it; by hand: \
                 cargo install --locked fsx --version 0.3.2"
            )
        })
}

fn ops_per_run(default: u64) -> u64 {
    std::env::var("MEMFS_FSX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start(
    fsx: &Path,
    work: &Path,
    name: &str,
    config: &str,
    file: &Path,
    seed: u64,
    ops: u64,
) -> Run {
    let conf = work.join(format!("{name}.toml"));
    std::fs::write(&conf, config).unwrap();
    let artifacts = work.join(name);
    std::fs::create_dir_all(&artifacts).unwrap();
    let log = work.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(fsx);
    cmd.arg("-f")
        .arg(&conf)
        .arg("-N")
        .arg(ops.to_string())
        .arg("-S")
        .arg(seed.to_string())
        .arg("-P")
        .arg(&artifacts)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let command = format!("{cmd:?}");
    let child = cmd.spawn().expect("spawn fsx");
    Run {
        name: name.to_string(),
        command,
        child,
        log,
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn assert_fsck_clean(m: &Mount) {
    let raw = std::fs::read(m.join(".memfs/fsck")).expect("read .memfs/fsck");
    let check: serde_json::Value = serde_json::from_slice(&raw).expect(".memfs/fsck parses");
    assert_eq!(check["ok"], true, "fsck after fsx: {check:#}");
}

#[test]
fn fsx_finds_no_difference() {
    let fsx = fsx_binary();
    let work = tempfile::Builder::new()
        .prefix("memfs-fsx-")
        .tempdir()
        .unwrap();
    let cached = Mount::new();
    let direct = Mount::with_args(&["--no-writeback-cache"]);
    let small = ops_per_run(60_000);
    let large = ops_per_run(20_000);
    // Small: a file within 256 KiB, operations of up to 64 KiB at any byte offset (many
    // small, unaligned changes, several chunks). Large: up to 4 MiB, operations of up to
    // 512 KiB (commits that re-chunk a long tail, holes of many chunks).
    let small_file = fsx_config(256 << 10, 64 << 10, 10);
    let large_file = fsx_config(4 << 20, 512 << 10, 5);
    let plan = [
        ("cached-1", &small_file, cached.join("a"), small),
        ("cached-2", &small_file, cached.join("b"), small),
        ("direct-3", &small_file, direct.join("c"), small),
        ("large-4", &large_file, cached.join("d"), large),
    ];
    let runs: Vec<Run> = plan
        .iter()
        .zip(1..)
        .map(|((name, config, file, ops), seed)| {
            start(&fsx, work.path(), name, config, file, seed, *ops)
        })
        .collect();
    // A hang (a deadlock in memfs) must fail the test, not stall CI.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let mut failures = Vec::new();
    let mut pending: Vec<Run> = runs;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for mut run in pending {
            let status = match run.child.try_wait().unwrap() {
                Some(status) => Some(status),
                None if Instant::now() > deadline => {
                    let _ = run.child.kill();
                    let _ = run.child.wait();
                    None
                }
                None => {
                    still.push(run);
                    continue;
                }
            };
            eprintln!(
                "fsx {}: {} after {:.1} s",
                run.name,
                status.map_or("killed".to_string(), |s| s.to_string()),
                started.elapsed().as_secs_f64()
            );
            let ok = status.is_some_and(|s| s.success())
                && tail(&run.log, 1).contains("All operations completed A-OK!");
            if !ok {
                failures.push(format!(
                    "fsx run {} failed ({}):\n  {}\n--- last lines of its log ---\n{}\n",
                    run.name,
                    status.map_or("timed out after 600 s".to_string(), |s| s.to_string()),
                    run.command,
                    tail(&run.log, 80)
                ));
            }
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    if !failures.is_empty() {
        // Keep fsx's artifacts (its `.fsxgood` copy of what the file should hold).
        let kept = work.keep();
        panic!(
            "{}\nlogs and fsx artifacts kept in {}",
            failures.join("\n"),
            kept.display()
        );
    }
    assert_fsck_clean(&cached);
    assert_fsck_clean(&direct);
}
