//! Shared helpers for tests that mount a real memfs: a guard that mounts the built binary
//! in a temp dir and always unmounts, even when the test fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;

pub const MEMFS: &str = env!("CARGO_BIN_EXE_memfs");

/// `memfs mount` arguments choosing the transport the suite runs on:
/// `MEMFS_TEST_TRANSPORT=io-uring` or `dev-fuse` forces one; unset, memfs's default (rings
/// where the kernel offers them). scripts/test.sh runs the mounted tests on both.
pub fn transport_args() -> &'static [&'static str] {
    match std::env::var("MEMFS_TEST_TRANSPORT").as_deref() {
        Ok("io-uring") => &["--io-uring"],
        Ok("dev-fuse") => &["--dev-fuse"],
        Err(_) => &[],
        Ok(other) => panic!("MEMFS_TEST_TRANSPORT={other}: expected io-uring or dev-fuse"),
    }
}

/// Whether a test's own mount arguments choose the transport (they win over the suite's).
fn chooses_transport(args: &[&str]) -> bool {
    args.iter()
        .any(|a| *a == "--io-uring" || *a == "--dev-fuse")
}

/// Whether the kernel offers FUSE over io_uring (its switch is on).
pub fn rings_offered() -> bool {
    std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|v| v.trim() == "Y")
}

/// The transport name `.memfs/stats.json` should report for mounts made by [`Mount`].
pub fn transport_name() -> &'static str {
    match transport_args() {
        ["--io-uring"] => "io-uring",
        ["--dev-fuse"] => "dev-fuse",
        _ => default_transport_name(),
    }
}

/// The transport memfs picks when not told: rings where the kernel offers them.
pub fn default_transport_name() -> &'static str {
    if rings_offered() {
        "io-uring"
    } else {
        "dev-fuse"
    }
}

/// `--store` arguments when `MEMFS_TEST_STORE` asks every mount of a test run to keep its
/// chunks on Redis: `cluster` (a cluster this process starts) or a `redis://` URL. The
/// cache is kept small so reads go to the servers too.
fn store_args(args: &[&str]) -> Vec<String> {
    let Ok(want) = std::env::var("MEMFS_TEST_STORE") else {
        return Vec::new();
    };
    if want.is_empty() || args.contains(&"--store") {
        return Vec::new();
    }
    let url = if want == "cluster" {
        cluster::shared().url()
    } else {
        want
    };
    vec!["--store".into(), url, "--cache-memory".into(), "4M".into()]
}

/// A mounted memfs; dropping it unmounts and reaps the server.
pub struct Mount {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl Mount {
    /// Mounts a fresh memfs with default options.
    pub fn new() -> Mount {
        Mount::with_args(&[])
    }

    /// Mounts a fresh memfs with extra `memfs mount` arguments.
    pub fn with_args(args: &[&str]) -> Mount {
        Mount::with_env(args, &[])
    }

    /// Mounts a fresh memfs with extra arguments and environment variables.
    pub fn with_env(args: &[&str], env: &[(&str, &str)]) -> Mount {
        Mount::start(args, env, false, true)
    }

    /// Mounts a fresh memfs whose server leads a session of its own (`setsid`), as a
    /// service manager or scripts/bench-phases.sh starts it.
    pub fn in_own_session(args: &[&str]) -> Mount {
        Mount::start(args, &[], true, true)
    }

    /// Mounts a fresh memfs on the transport memfs picks itself, whatever the suite's.
    pub fn on_default_transport(env: &[(&str, &str)]) -> Mount {
        Mount::start(&[], env, false, false)
    }

    /// `suite_transport`: add the suite's transport arguments unless `args` choose one.
    fn start(
        args: &[&str],
        env: &[(&str, &str)],
        own_session: bool,
        suite_transport: bool,
    ) -> Mount {
        let dir = tempfile::Builder::new()
            .prefix("memfs-test-")
            .tempdir()
            .expect("temp dir");
        let mut command = Command::new(MEMFS);
        if own_session {
            use std::os::unix::process::CommandExt;
            // Safety: setsid is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .arg("mount")
            .arg(dir.path())
            .args(if chooses_transport(args) || !suite_transport {
                &[]
            } else {
                transport_args()
            })
            .args(args)
            .args(store_args(args))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn memfs");
        // The first stderr line says the mount is ready.
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).expect("read memfs stderr");
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                eprint!("[memfs] {sink}");
                sink.clear();
            }
        });
        let mount = Mount {
            dir,
            child: Some(child),
        };
        assert!(line.contains("mounted at"), "memfs did not mount: {line:?}");
        assert!(is_mounted(mount.path()), "not in /proc/mounts");
        mount
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path` joined with a relative name.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The mount's `.memfs/stats.json` (which waits for pending commits first).
    pub fn stats(&self) -> memfs::control::Stats {
        let raw = std::fs::read(self.join(".memfs/stats.json")).expect("read stats.json");
        serde_json::from_slice(&raw).expect("stats.json parses")
    }

    /// The server's pid: the process the test started, or the child it forked to serve
    /// the mount from a session of its own (rings; src/transport/uring/sched.rs).
    pub fn pid(&self) -> u32 {
        let started = self.started_pid();
        std::fs::read_to_string(format!("/proc/{started}/task/{started}/children"))
            .ok()
            .and_then(|children| children.split_whitespace().next()?.parse().ok())
            .unwrap_or(started)
    }

    /// The pid of the process the test started.
    pub fn started_pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Unmounts with umount(8) and returns the server's exit status. A busy mount is tried
    /// again for a while: a process another test thread is starting holds copies of this
    /// process's descriptors, files in this mount among them, until its exec closes them.
    pub fn unmount(mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = Command::new("umount")
                .arg(self.path())
                .status()
                .expect("run umount");
            if status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "umount failed");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_exit(Duration::from_secs(20))
            .expect("memfs did not exit after umount")
    }

    /// Waits for the server to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let path = self.dir.path().to_path_buf();
        if is_mounted(&path) {
            let _ = Command::new("umount").arg(&path).status();
            if is_mounted(&path) {
                let _ = Command::new("umount").arg("-l").arg(&path).status();
            }
        }
        if let Some(child) = self.child.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `m` holds `used` bytes again, as after everything made since was removed:
/// the kernel's forgets of removed inodes arrive on their own, after the removals return
/// (on rings, on another thread), and an inode's memory goes with its last forget.
pub fn assert_used_bytes_return_to(m: &Mount, used: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = m.stats().used_bytes;
        if now == used {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "used bytes {now}, not back to {used}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs of our own in a temp dir (we run as root), unmounted on drop.
pub struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    pub fn new() -> Tmpfs {
        Tmpfs::with_options("mode=1777") // tmpfs's own default
    }

    /// With `mount -o` options, such as `size=64k`.
    pub fn with_options(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs -o {options}");
        Tmpfs(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Each thread of `pid`: its id, its name, and the text of its /proc file `file` (stat,
/// status...).
pub fn thread_files(pid: u32, file: &str) -> Vec<(u64, String, String)> {
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let text = std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        all.push((tid, comm.trim().to_string(), text));
    }
    all
}

/// Each thread of `pid`: its name, and the fields of its /proc stat after the ")" that
/// closes the name (so field N of proc(5) is at index N - 3).
fn thread_stats(pid: u32) -> Vec<(String, Vec<String>)> {
    thread_files(pid, "stat")
        .into_iter()
        .map(|(_, comm, stat)| {
            let after = stat.rsplit_once(')').map(|(_, s)| s).unwrap_or_default();
            (comm, after.split_whitespace().map(str::to_string).collect())
        })
        .collect()
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
pub fn pin_this_thread(cpu: usize) -> bool {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// CPU time (clock ticks) the threads of `pid` named `name` have used.
pub fn thread_ticks(pid: u32, name: &str) -> u64 {
    let field = |fields: &[String], n: usize| -> u64 {
        fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0)
    };
    thread_stats(pid)
        .iter()
        .filter(|(comm, _)| comm == name)
        // utime and stime: fields 14 and 15.
        .map(|(_, fields)| field(fields, 14) + field(fields, 15))
        .sum()
}

/// The scheduling policy (`SCHED_*`, field 41) of each thread of `pid`, by thread name,
/// once threads of each of the `names` are there (for up to 5 s). A thread takes its name
/// only once it runs, so one just started still shows its parent's name: the CI once saw
/// a mount's `fuser-0` as `memfs`.
pub fn thread_policies(pid: u32, names: &[&str]) -> Vec<(String, i32)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let policies: Vec<(String, i32)> = thread_stats(pid)
            .into_iter()
            .filter_map(|(comm, fields)| Some((comm, fields.get(41 - 3)?.parse().ok()?)))
            .collect();
        let all_there = names
            .iter()
            .all(|name| policies.iter().any(|(n, _)| n == name));
        if all_there || std::time::Instant::now() > deadline {
            return policies;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Writes `file`'s dirty pages back and drops its cached ones, so that its next reads reach
/// memfs (as READs of the read-ahead's size).
pub fn write_back_and_drop_cache(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    file.sync_all().unwrap();
    assert_eq!(
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) },
        0
    );
}

/// Whether `path` is a mount point in /proc/mounts.
pub fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

/// `memfs trace ARGS...`'s standard output; fails the test if it fails.
pub fn memfs_trace(args: &[&str]) -> String {
    let out = Command::new(MEMFS)
        .arg("trace")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "memfs trace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a shell command in `dir` and returns its output, whether it failed or not.
pub fn bash(dir: &Path, script: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run bash")
}

/// Runs a shell command in `dir`, panicking with its output when it fails.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = bash(dir, script);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "`{script}` failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reads the descendant count of a directory through its virtual extended attribute.
pub fn descendants(path: &Path) -> u64 {
    let value = xattr_get(path, "user.memfs.descendants").expect("descendants xattr");
    String::from_utf8(value).unwrap().parse().unwrap()
}

/// getxattr(2) through libc, following symlinks; Err(errno).
pub fn xattr_get(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 65536];
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(errno());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// Counts entries below `dir` with a fresh walk (not following symlinks).
pub fn walk_count(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        n += 1;
        if e.file_type().unwrap().is_dir() {
            n += walk_count(&e.path());
        }
    }
    n
}

/// Checks every directory's descendant count under `dir` against a fresh walk.
pub fn assert_counts_match_walk(dir: &Path) {
    let counted = descendants(dir);
    let walked = walk_count(dir);
    assert_eq!(counted, walked, "descendants of {}", dir.display());
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            assert_counts_match_walk(&e.path());
        }
    }
}
