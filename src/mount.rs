//! Mounting and serving: checks on the mount point, the fuser session, and a clean unmount
//! on SIGINT/SIGTERM/SIGHUP or `umount` from outside.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use fuser::{MountOption, Session, SessionACL};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{info, warn};

use crate::fs::{Fs, FsConfig};
use crate::memory;
use crate::request::KernelOptions;
use crate::router::Router;
use crate::store::Chunker;
use crate::trace::{Header, Tracer};
use crate::transport::fuser::MemFuse;
use crate::transport::uring;

/// `--poll-us`: long enough to catch a program's next request, short enough that a miss
/// costs little (README "Kernel settings").
pub const DEFAULT_POLL_US: u64 = 50;

/// `--read-ahead-kb`: how far the kernel reads ahead of a sequential reader. Two of the
/// largest requests (1 MiB, `max_pages` 256), so that two ring lanes can serve one reader at
/// once (`transport::uring`). The kernel's own default is 128 KiB (README "Kernel
/// settings").
pub const DEFAULT_READ_AHEAD_KB: u32 = 2048;

#[derive(Clone, Debug)]
pub struct MountConfig {
    pub mountpoint: PathBuf,
    /// Threads serving requests.
    pub threads: usize,
    /// Let users other than the mounting one use the mount.
    pub allow_other: bool,
    /// Give each thread its own /dev/fuse descriptor.
    pub clone_fd: bool,
    /// How long a serving thread polls /dev/fuse before it sleeps (zero: never).
    pub poll_wait: std::time::Duration,
    /// The mount's read-ahead in KiB, set after mounting (0: the kernel's default).
    pub read_ahead_kb: u32,
    pub kernel: KernelOptions,
    pub chunker: Chunker,
    pub keep_versions: usize,
    /// The cap on the bytes memfs holds for contents and metadata (`--max-memory`).
    pub max_memory: u64,
    /// Where to write the final statistics (JSON) at unmount.
    pub stats_out: Option<PathBuf>,
    /// Where to record every FUSE request (JSON Lines).
    pub trace: Option<PathBuf>,
    /// Clear a stale mount left at the mount point by a memfs that was killed.
    pub force: bool,
    /// What carries requests between the kernel and memfs.
    pub transport: Transport,
    /// Where chunks live (`--store`): `None` for this process's memory.
    pub store: Option<crate::store::redis::RedisConfig>,
    /// Keep chunks in this process's memory compressed when that pays (off with
    /// `--no-compress`).
    pub compress: bool,
}

/// What carries FUSE requests: reads and writes on /dev/fuse, or io_uring queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Rings where the kernel offers them, else /dev/fuse (README "FUSE over io_uring").
    #[default]
    Auto,
    DevFuse,
    IoUring,
}

impl Transport {
    /// The name `.memfs/stats.json` and the trace give it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::DevFuse => "dev-fuse",
            Transport::IoUring => "io-uring",
        }
    }
}

/// The transport a mount serves on, settled before the mount: rings, or /dev/fuse.
struct Carrier {
    rings: Option<uring::Rings>,
    /// On rings: whether memfs yields the CPU to its callers, or why not.
    yielding: Option<std::result::Result<(), String>>,
    /// Why rings the kernel offered could not be used (`Auto` then serves on /dev/fuse).
    no_rings: Option<String>,
}

impl Carrier {
    /// Settles `asked` (`Auto`: rings where the kernel switched them on), readies memfs to
    /// yield the CPU on rings (which may fork, so this runs before any thread starts, and
    /// before the rings are made, so that only the server holds them), and makes the rings.
    /// Everything about the rings that can fail is done here, before the mount (see uring).
    /// Asked for rings, a failure is an error; in `Auto`, memfs serves on /dev/fuse instead.
    /// The yield itself is [`uring::yield_to_callers`], once the threads that must not
    /// yield have started.
    fn settle(asked: Transport, max_write: u32) -> Result<Carrier> {
        // The kernel's switch first: a fork (below) for an error would be wasted.
        let rings_wanted = match asked {
            Transport::DevFuse => false,
            Transport::IoUring => uring::check_available().map(|()| true)?,
            Transport::Auto => uring::check_available().is_ok(),
        };
        if !rings_wanted {
            return Ok(Carrier::dev_fuse(None));
        }
        let may_yield = uring::prepare_to_yield();
        match uring::Rings::prepare(uring::payload_len(max_write)) {
            Ok(rings) => Ok(Carrier {
                rings: Some(rings),
                yielding: Some(may_yield),
                no_rings: None,
            }),
            // Yielding pays on rings only (uring::sched), so none is asked for here.
            Err(e) if asked == Transport::Auto => Ok(Carrier::dev_fuse(Some(format!("{e:#}")))),
            Err(e) => Err(e),
        }
    }

    fn dev_fuse(no_rings: Option<String>) -> Carrier {
        Carrier {
            rings: None,
            yielding: None,
            no_rings,
        }
    }
}

/// The content store `--store` asks for; an error (one line) if its servers do not answer.
fn open_store(config: &MountConfig) -> Result<Arc<dyn crate::store::ContentStore>> {
    Ok(match &config.store {
        None if config.compress => crate::store::MemoryStore::compressing(),
        None => crate::store::MemoryStore::new(),
        Some(redis) => {
            crate::store::redis::RedisStore::connect(redis).map_err(anyhow::Error::msg)?
        }
    })
}

/// How long an unmount waits for chunks the store has not taken yet.
const STORE_DRAIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Checks that `path` can be mounted on, and returns its canonical form. With `force`, a
/// stale mount left there by a memfs that was killed is detached first.
pub fn check_mountpoint(path: &Path, force: bool) -> Result<PathBuf> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => bail!("mount point {shown} is not a directory"),
        Ok(_) => {}
        Err(e) if is_dead_server(&e) && force => {
            detach_stale(path)?;
            return check_mountpoint(path, false);
        }
        Err(e) if is_dead_server(&e) => bail!(
            "mount point {shown} is a stale FUSE mount left by a server that died; \
             clear it with `umount -l {shown}`, or mount again with --force"
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("mount point {shown} does not exist")
        }
        Err(e) => bail!("mount point {shown}: {e}"),
    }
    let canonical = path
        .canonicalize()
        .with_context(|| format!("mount point {shown}"))?;
    if find_mount(&canonical)?.is_some() {
        bail!("mount point {shown} is already a mount point; unmount it first");
    }
    let entries = std::fs::read_dir(&canonical)
        .with_context(|| format!("mount point {shown}"))?
        .count();
    if entries > 0 {
        // Mounting over files hides them, and programs that keep them open would still
        // write to the hidden ones: refuse, as fusermount3 does.
        bail!("mount point {shown} is not empty ({entries} entries); use an empty directory");
    }
    check_fuse_device()?;
    Ok(canonical)
}

/// Whether `e` is what a FUSE mount whose server died answers: ENOTCONN, or ECONNABORTED
/// for a request caught while a dead server's io_uring queues are being torn down.
fn is_dead_server(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::ECONNABORTED))
}

/// Fails with a hint when /dev/fuse is missing or cannot be opened.
fn check_fuse_device() -> Result<()> {
    const DEV: &str = "/dev/fuse";
    match std::fs::OpenOptions::new().read(true).write(true).open(DEV) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "{DEV} does not exist: load the fuse module (`modprobe fuse`) or run where FUSE \
             is available"
        ),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => bail!(
            "{DEV}: permission denied: run as root, or give this user access to {DEV} \
             (its mode is usually 0666)"
        ),
        Err(e) => bail!("{DEV}: {e}"),
    }
}

/// Detaches the dead FUSE mount at `path` (its server is gone, so nothing can be lost).
fn detach_stale(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).context("mount point path")?;
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = io::Error::last_os_error();
        bail!(
            "clearing the stale mount at {}: {e} (unmounting needs root, or \
             `fusermount3 -uz {}`)",
            path.display(),
            path.display()
        );
    }
    warn!("detached the stale mount at {}", path.display());
    Ok(())
}

/// The device ("major:minor") of the file system mounted exactly at `path`, if one is.
pub fn find_mount(path: &Path) -> Result<Option<String>> {
    let table =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let want = path.as_os_str().as_bytes();
    // The last mount on a path is the visible one.
    let mut found = None;
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() > 4 && unescape_mountinfo(fields[4]) == want {
            found = Some(fields[2].to_string());
        }
    }
    Ok(found)
}

/// Sets the read-ahead of the mount on `device` ("major:minor"). The kernel offers FUSE
/// its default of 128 KiB at INIT and keeps the smaller of that and the server's answer,
/// so it can only be raised once INIT is done (`Session::new` returns after it), through
/// the mount's backing device in sysfs. A cold 1 GiB read then takes 1,024 requests
/// instead of 8,192. Needs root; without it the kernel's default stays.
fn set_read_ahead(device: &str, kb: u32) {
    let path = format!("/sys/class/bdi/{device}/read_ahead_kb");
    match std::fs::write(&path, kb.to_string()) {
        Ok(()) => info!(kb, "read-ahead set"),
        Err(e) => warn!("leaving the kernel's read-ahead: writing {path}: {e}"),
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Mounts a fresh, empty memfs and serves it until it is unmounted.
pub fn run(config: MountConfig) -> Result<()> {
    // Before any thread starts (the store's, the workers', fuser's).
    memory::share_one_arena();
    let mountpoint = check_mountpoint(&config.mountpoint, config.force)?;
    if let Some(path) = &config.stats_out {
        // Fail now, not after hours of work, if the stats file cannot be written.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("stats file {}", path.display()))?;
    }
    // Before any thread starts (it may fork; see Carrier::settle).
    let Carrier {
        rings,
        yielding,
        no_rings,
    } = Carrier::settle(config.transport, config.kernel.max_write)?;
    let config = MountConfig {
        transport: if rings.is_some() {
            Transport::IoUring
        } else {
            Transport::DevFuse
        },
        ..config
    };
    // The trace's writer starts before memfs yields: it must name a new pid from /proc
    // before the process exits, and at SCHED_IDLE beside a busy test it named 19–53 of 120
    // short processes (tests/trace.rs). It is woken once per new pid.
    let tracer = match &config.trace {
        Some(path) => {
            let header = trace_header(&config, &mountpoint);
            let tracer = Tracer::create(path, &header)
                .with_context(|| format!("trace file {}", path.display()))?;
            Some(Arc::new(tracer))
        }
        None => None,
    };
    // Before any other thread starts: each inherits the policy.
    let yielding = yielding.map(|ready| ready.and_then(|()| uring::yield_to_callers()));
    let store = open_store(&config)?;
    let fs = Arc::new(Fs::with_store(
        FsConfig {
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
            writes_cached_above: config.kernel.writeback_cache,
            chunker: config.chunker.clone(),
            keep_versions: config.keep_versions,
            capacity: config.max_memory,
            ..FsConfig::default()
        },
        store,
    ));
    // Big commits are chunked and hashed off the request path, one file per worker.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    crate::store::engine::start_hash_pool();
    fs.start_commit_workers(workers)
        .context("starting the commit workers")?;
    let router = Arc::new(Router::new(fs.clone()));
    router.control().set_transport(config.transport.name());
    let mut adapter = MemFuse::new(router.clone(), config.kernel.clone(), tracer.clone());
    if rings.is_some() {
        adapter = adapter.with_io_uring();
    }
    let notifier = adapter.notifier_slot();

    let mut options = fuser::Config::default();
    options.mount_options = vec![
        MountOption::FSName("memfs".into()),
        MountOption::Subtype("memfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    options.acl = if config.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    options.n_threads = Some(config.threads.max(1));
    options.clone_fd = config.clone_fd;
    options.poll_wait = config.poll_wait;

    // Signals are caught before mounting, so none can kill us with the mount up.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    let session = Session::new(adapter, &mountpoint, &options).map_err(|e| {
        anyhow::anyhow!(
            "mounting memfs on {}: {}",
            mountpoint.display(),
            mount_error(&e)
        )
    })?;
    let rings = match rings {
        Some(rings) => Some(start_rings(
            rings, &session, &router, &config, &tracer, &notifier,
        )?),
        None => {
            notifier.fill(session.notifier(), config.threads.max(1));
            None
        }
    };
    let device = find_mount(&mountpoint)?.unwrap_or_default();
    if config.read_ahead_kb != 0 {
        set_read_ahead(&device, config.read_ahead_kb);
    }
    let served_by = match &yielding {
        None => match &no_rings {
            None => format!("{} threads", config.threads),
            Some(why) => format!(
                "{} threads on /dev/fuse; no io_uring: {why}",
                config.threads
            ),
        },
        Some(Ok(())) => "io_uring, its threads yielding the CPU to their callers".to_string(),
        Some(Err(why)) => format!("io_uring, its threads not yielding the CPU: {why}"),
    };
    eprintln!(
        "memfs: mounted at {} ({served_by}); stop with Ctrl-C or `umount {}`",
        mountpoint.display(),
        mountpoint.display()
    );

    let signal_handle = signals.handle();
    let watcher = {
        let mountpoint = mountpoint.clone();
        std::thread::Builder::new()
            .name("memfs-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    info!(signal = sig, "unmounting on signal");
                    unmount(&mountpoint, &device);
                }
            })
            .context("starting the signal thread")?
    };

    let served = session.run();
    if let Some(rings) = rings {
        rings.stop();
    }
    signal_handle.close();
    let _ = watcher.join();
    // Commits handed off by the last closes are installed before anything is reported.
    fs.drain_commits();
    // A trace or stats file that cannot be written fails the exit, but only after the rest:
    // the store's uploads are drained whatever happened to the files beside it.
    let trace_written = match (&tracer, &config.trace) {
        (Some(tracer), Some(path)) => match tracer.finish() {
            Ok(n) => {
                info!(records = n, stalls = tracer.stalls(), "trace complete");
                Ok(())
            }
            Err(e) => Err(anyhow!(
                "writing trace {}: {e} ({} records queued after it stopped were not written)",
                path.display(),
                tracer.lost()
            )),
        },
        _ => Ok(()),
    };
    let stats_written = match &config.stats_out {
        Some(path) => serde_json::to_vec_pretty(&router.control().stats())
            .map_err(anyhow::Error::from)
            .and_then(|json| Ok(std::fs::write(path, json)?))
            .with_context(|| format!("writing stats to {}", path.display())),
        None => Ok(()),
    };
    fs.store().shutdown(STORE_DRAIN_PATIENCE);
    served.with_context(|| format!("serving {}", mountpoint.display()))?;
    trace_written?;
    stats_written?;
    info!(
        inodes = fs.inode_count(),
        stored_bytes = fs.stored_bytes(),
        used_bytes = fs.used_bytes(),
        "unmounted"
    );
    Ok(())
}

/// Registers the ring queues on the mounted session and starts serving them. On failure the
/// session is dropped, which unmounts: nothing is left waiting on queues that never came.
fn start_rings(
    rings: uring::Rings,
    session: &Session<MemFuse>,
    router: &Arc<Router>,
    config: &MountConfig,
    tracer: &Option<Arc<Tracer>>,
    notifier: &crate::transport::fuser::NotifierSlot,
) -> Result<uring::Running> {
    // A write-back's WRITEs are served by the other lanes of the queue while the request
    // that asked for it waits in its lane; fewer may wait at once than a queue has lanes.
    notifier.fill(session.notifier(), uring::LANES_PER_QUEUE);
    let server = crate::request::Server::new(router.clone(), config.kernel.clone(), tracer.clone())
        .with_kernel_cache(Arc::new(notifier.clone()));
    let access = uring::Access {
        owner_uid: unsafe { libc::geteuid() },
        allow_other: config.allow_other,
    };
    let dispatcher = Arc::new(uring::Dispatcher::new(server, access));
    rings
        .start(session, dispatcher)
        .context("starting FUSE over io_uring")
}

/// How requests reach memfs, as the trace header names it.
fn transport_name(config: &MountConfig) -> &'static str {
    config.transport.name()
}

/// The trace's first line: the format, memfs and the kernel, and the mount's settings as
/// JSON (what INIT grants is added by the tracer).
fn trace_header(config: &MountConfig, mountpoint: &Path) -> Header {
    let k = &config.kernel;
    let c = &config.chunker;
    let options = serde_json::json!({
        "threads": config.threads,
        "allow_other": config.allow_other,
        "clone_fd": config.clone_fd,
        "poll_us": config.poll_wait.as_micros() as u64,
        "read_ahead_kb": config.read_ahead_kb,
        "ttl_s": k.ttl.as_secs_f64(),
        "writeback_cache": k.writeback_cache,
        "max_write": k.max_write,
        "readdirplus": k.readdirplus,
        "keep_cache": k.keep_cache,
        "handle_killpriv": k.handle_killpriv,
        "chunker": format!("{:?}", c.kind).to_lowercase(),
        "chunk_min": c.min,
        "chunk_avg": c.avg,
        "chunk_max": c.max,
        "keep_versions": config.keep_versions,
        "max_memory": config.max_memory,
        "compress": config.compress,
        "stats_out": config.stats_out,
        "trace": config.trace,
        "store": config.store.as_ref().map(|s| serde_json::json!({
            "nodes": s.nodes,
            "cache_bytes": s.cache_bytes,
            "lease_s": s.lease.as_secs_f64(),
            "replicas": s.replicas,
        })),
    });
    Header::new(
        &mountpoint.display().to_string(),
        transport_name(config),
        options,
    )
}

/// Parses a `--max-memory` value: bytes with an optional K, M, G or T suffix (powers of
/// 1024), or a percentage of physical memory (`25%`).
pub fn parse_max_memory(text: &str) -> std::result::Result<u64, String> {
    parse_size(text, crate::fs::physical_memory())
}

/// [`parse_max_memory`] against a given amount of RAM.
pub fn parse_size(text: &str, ram: u64) -> std::result::Result<u64, String> {
    const FORMS: &str = "give bytes, a size such as 512M or 2G (K/M/G/T, powers of 1024), or a percentage of RAM such as 25%";
    let t = text.trim();
    let bytes = if let Some(pct) = t.strip_suffix('%') {
        let pct: f64 = pct
            .trim()
            .parse()
            .map_err(|_| format!("not a percentage; {FORMS}"))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err("a percentage of RAM must be above 0% and at most 100%".into());
        }
        if ram == 0 {
            return Err("the size of physical memory is unknown; give a size in bytes".into());
        }
        // A float-to-int cast saturates; it cannot panic.
        (ram as f64 * pct / 100.0) as u64
    } else {
        let (digits, unit) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let unit: u64 = match c.to_ascii_uppercase() {
                    'K' => 1 << 10,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    'T' => 1 << 40,
                    _ => return Err(format!("unknown unit '{c}'; {FORMS}")),
                };
                (&t[..i], unit)
            }
            _ => (t, 1),
        };
        let n: u64 = digits.parse().map_err(|_| format!("not a size; {FORMS}"))?;
        n.checked_mul(unit).ok_or("too large for 64 bits")?
    };
    if bytes == 0 {
        return Err("the cap must be more than 0 bytes".into());
    }
    Ok(bytes)
}

fn mount_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("{e} (mounting needs root, or the fuse3 package's fusermount3)")
        }
        Some(libc::ENOENT) => format!("{e} (is /dev/fuse present?)"),
        _ => e.to_string(),
    }
}

/// Unmounts `mountpoint`. When something still uses the mount, detaches it from the tree and
/// aborts the FUSE connection (`device` is its "major:minor"), so the server stops at once
/// and no dead mount is left behind.
pub fn unmount(mountpoint: &Path, device: &str) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return;
    }
    let err = io::Error::last_os_error();
    warn!("umount {}: {err}; detaching it", mountpoint.display());
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
        warn!(
            "lazy umount {}: {}",
            mountpoint.display(),
            io::Error::last_os_error()
        );
    }
    abort_connection(device);
}

/// Aborts a FUSE connection through fusectl, ending every request in flight. Mounts fusectl
/// first if nobody has (that needs root; without it the detached mount lives on until its
/// last user leaves).
fn abort_connection(device: &str) {
    const FUSECTL: &str = "/sys/fs/fuse/connections";
    let Some(minor) = device.split(':').nth(1) else {
        return;
    };
    let abort = format!("{FUSECTL}/{minor}/abort");
    if !Path::new(&abort).exists() {
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "fusectl", FUSECTL])
            .stderr(std::process::Stdio::null())
            .status();
    }
    if let Err(e) = std::fs::write(&abort, b"1") {
        warn!("aborting the FUSE connection via {abort}: {e}; it ends when its last user leaves");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_suffixes_and_percentages() {
        let ram = 16 << 30;
        assert_eq!(parse_size("4096", ram), Ok(4096));
        assert_eq!(parse_size("512M", ram), Ok(512 << 20));
        assert_eq!(parse_size("512m", ram), Ok(512 << 20));
        assert_eq!(parse_size("2G", ram), Ok(2 << 30));
        assert_eq!(parse_size("64k", ram), Ok(64 << 10));
        assert_eq!(parse_size("1T", ram), Ok(1 << 40));
        assert_eq!(parse_size("25%", ram), Ok(4 << 30));
        assert_eq!(parse_size("50%", ram), Ok(8 << 30));
        assert_eq!(parse_size("12.5%", ram), Ok(2 << 30));
        for bad in [
            "",
            "M",
            "0",
            "0M",
            "-1",
            "1.5G",
            "12X",
            "10 MB",
            "0%",
            "101%",
            "x%",
            "%",
            "99999999999T",
        ] {
            assert!(parse_size(bad, ram).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_size("25%", 0).is_err());
    }
}
