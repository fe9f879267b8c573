//! Tracing every FUSE request: the record schema, the writer (a bounded queue drained by a
//! thread of its own), and the streaming analyses, export and plots behind `memfs trace`.

pub mod analyze;
pub mod by_process;
pub mod export;
pub mod flags;
mod json;
mod name;
mod op;
pub mod plot;
pub mod read;

pub use flags::Flags;
pub use name::Name;
pub use op::{Op, Outcome};

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Records waiting for the writer: far more than arrive between two looks of the writer
/// (FUSE serves some 10^5 requests/s here, so about 1,000 in the 10 ms between looks while
/// busy). The channel allocates and touches every slot up front: 32K records of some 500
/// bytes are 16 MB.
const QUEUE: usize = 32 * 1024;

/// Slots of [`Tracer`]'s table of recently seen pids, by pid modulo this.
const RECENT_PIDS: usize = 4096;

/// One FUSE request: what the kernel asked and what memfs answered. Fields an op does not
/// have are left out of the JSON. README "Tracing" has the schema as a table; keys are only
/// ever added, so a trace written today stays readable by later analyses.
///
/// `F` is how the flags are held and `N` how the names are: raw ([`Flags`], [`Name`]) on the
/// way to the writer, which names them ([`Queued`]), and as text (`String`) when a trace is
/// read back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record<F = String, N = String> {
    /// The kernel's request id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unique: u64,
    /// Start, in nanoseconds since the mount.
    pub t_ns: u64,
    pub dur_ns: u64,
    /// Written as the lowercase op name fuser's methods have (`lookup`, `write`, ...).
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<N>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newparent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newname: Option<N>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fh: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Decoded flags (`O_WRONLY|O_CREAT|O_TRUNC`, `RENAME_NOREPLACE`, ...); for setattr, the
    /// attributes set, named as the kernel's `FATTR_*` bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<F>,
    /// setattr: the mode set (permission and type bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// setattr: the owner set (a chown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_uid: Option<u32>,
    /// setattr: the group set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_gid: Option<u32>,
    /// setattr: the times set, in nanoseconds since the epoch. A time set to "now" has
    /// `FATTR_ATIME_NOW` / `FATTR_MTIME_NOW` in `flags` and no value here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<i64>,
    /// Written as `ok` or the errno name (`ENOENT`).
    pub result: Outcome,
    /// lookup: the answer was a negative entry (node id 0: "no such name"), which the kernel
    /// caches for the entry TTL. `result` is `ENOENT`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub negative: bool,
    /// An entry's generation (lookup, create, mkdir, mknod, symlink, link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The file size in the attributes sent back (entries, getattr, setattr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr_size: Option<u64>,
    /// open, create, opendir: the `FOPEN_*` flags answered (`FOPEN_KEEP_CACHE`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fopen: Option<F>,
    /// Bytes transferred (read, write, readlink, copy_file_range, getxattr, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// flush, fsync, release: the version committed, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// lseek: the offset answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_offset: Option<i64>,
    /// readdir, readdirplus: the entries sent (0 at the end of the directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u32>,
}

/// A record as the request path makes it and the writer takes it.
pub type Queued = Record<Flags, Name>;

impl<F, N> Record<F, N> {
    /// A successful record of `op` at time 0, with no fields; the caller fills what it has.
    pub fn new(op: Op) -> Self {
        Record {
            unique: 0,
            t_ns: 0,
            dur_ns: 0,
            op,
            ino: None,
            parent: None,
            name: None,
            newparent: None,
            newname: None,
            fh: None,
            pid: None,
            uid: None,
            gid: None,
            offset: None,
            size: None,
            flags: None,
            mode: None,
            set_uid: None,
            set_gid: None,
            atime_ns: None,
            mtime_ns: None,
            ctime_ns: None,
            result: Outcome::Ok,
            negative: false,
            generation: None,
            attr_size: None,
            fopen: None,
            bytes: None,
            version: None,
            new_offset: None,
            entries: None,
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The trace format this build writes: 2 added process lines, the header as JSON throughout
/// and the reply fields. Analyses read 1 and 2.
pub const FORMAT: u32 = 2;

/// The first line of a trace file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    /// The trace format ([`FORMAT`]).
    pub memfs_trace: u32,
    pub memfs_version: String,
    pub mountpoint: String,
    /// How requests reached memfs (`dev-fuse`: read from /dev/fuse).
    #[serde(default)]
    pub transport: String,
    /// The kernel, from uname(2).
    #[serde(default)]
    pub kernel: Option<Kernel>,
    /// The mount's settings, as a JSON object (format 1: a Rust `Debug` string).
    pub options: serde_json::Value,
    /// What the kernel granted at INIT. Empty until INIT, so a trace of a mount that never
    /// got one has none.
    #[serde(default)]
    pub fuse: Option<Negotiated>,
    /// Wall-clock start, seconds since the epoch.
    pub start_unix: f64,
}

impl Header {
    /// The header of a trace this build writes, starting now, on this kernel.
    pub fn new(mountpoint: &str, transport: &str, options: serde_json::Value) -> Header {
        Header {
            memfs_trace: FORMAT,
            memfs_version: env!("CARGO_PKG_VERSION").to_string(),
            mountpoint: mountpoint.to_string(),
            transport: transport.to_string(),
            kernel: Kernel::current(),
            options,
            fuse: None,
            start_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// The running kernel, as uname(2) names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Kernel {
    pub release: String,
    pub version: String,
    pub machine: String,
}

impl Kernel {
    /// This machine's kernel; None if uname fails.
    pub fn current() -> Option<Kernel> {
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut u) } != 0 {
            return None;
        }
        let text = |field: &[libc::c_char]| {
            let bytes: Vec<u8> = field
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Some(Kernel {
            release: text(&u.release),
            version: text(&u.version),
            machine: text(&u.machine),
        })
    }
}

/// The FUSE session the kernel and memfs agreed on at INIT.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Negotiated {
    /// The kernel's protocol version, `major.minor`.
    pub abi: String,
    /// The `FUSE_*` init flags both sides want, so in force for the session.
    pub capabilities: Vec<String>,
    pub max_write: u32,
}

/// A process, written the first time its pid appears in the trace (before that record).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Process {
    /// The pid (a thread id, for a thread other than the main one).
    pub process: u32,
    /// The start of the pid's first request, ns since the mount. The writer, woken by that
    /// request, reads /proc right after.
    pub t_ns: u64,
    /// The command name (`comm`: the executable's name, 15 bytes at most). None if the
    /// process had already exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// The thread group (the process id) the pid belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgid: Option<u32>,
}

/// Sends records to the writer thread. Cheap to share between request threads.
///
/// The request path takes no lock and wakes the writer only for a pid it has not seen
/// lately: a record goes into a bounded lock-free queue (std's channel, crossbeam's array
/// queue underneath), and the writer drains it on its own clock, every `POLL_BUSY` while
/// records come, backing off to `POLL_IDLE` while none do. Waking the writer for each
/// record (a futex call, and on a busy 2-core machine the woken writer preempting the
/// request thread) was most of what a traced request cost: 31 µs against 0.3 µs untraced in
/// `benches/trace.rs`'s paced run. A new pid is the exception: the writer names a process
/// from /proc, which a short one (`touch`, `chmod`) leaves within milliseconds, so the
/// first record of a pid not in `Tracer::recent_pids` wakes the writer at once. A
/// record is queued before its reply is sent, so the trace is in causal order.
///
/// When the writer falls behind and the queue is full, the request wakes the writer and waits
/// for room (back pressure): a trace never drops a record. Each such wait is counted
/// ([`Tracer::stalls`]) and logged when the trace ends.
///
/// If the file cannot be written (its disk is full), the writer logs the error at once and
/// stops, and the mount goes on untraced: a request never waits for a writer that is gone.
/// The records it could not take are counted ([`Tracer::lost`]), and [`Tracer::finish`]
/// returns the error.
pub struct Tracer {
    start: Instant,
    queue: SyncSender<Queued>,
    /// Set by [`Tracer::finish`]; the writer drains what is queued and stops.
    closed: Arc<AtomicBool>,
    /// What INIT agreed on, for the header, which the writer writes before the first record.
    negotiated: Arc<OnceLock<Negotiated>>,
    stalls: AtomicU64,
    /// Records queued after the writer stopped on an I/O error.
    lost: AtomicU64,
    /// Pids seen lately, one per slot by pid modulo [`RECENT_PIDS`]: a pid missing from its
    /// slot is taken for new and wakes the writer. A pid pushed out by another that shares
    /// its slot wakes it again when it comes back, which costs a wake-up, nothing more:
    /// the writer names each pid once.
    recent_pids: Box<[AtomicU32]>,
    writer_thread: Thread,
    writer: Mutex<Option<JoinHandle<std::io::Result<u64>>>>,
}

/// How often the writer looks at the queue while records arrive. Every millisecond, as at
/// first, the writer's own wake-ups cost more than its formatting: in an untar of
/// postgresql-15 with `rm -rf` after it (about 150,000 records) it used 190 ms of CPU and
/// woke 3,920 times; every 10 ms (with the wake for new pids), 100 ms and 555.
const POLL_BUSY: Duration = Duration::from_millis(10);
/// The longest the writer sleeps while none do.
const POLL_IDLE: Duration = Duration::from_millis(50);

impl Tracer {
    /// Creates the trace file and starts the writer. A path ending in `.zst` is written
    /// zstd-compressed. The header goes out with the first record, once INIT has said what
    /// the kernel granted ([`Tracer::negotiated`]), or at [`Tracer::finish`].
    pub fn create(path: &Path, header: &Header) -> std::io::Result<Tracer> {
        let file = File::create(path)?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let out = if path.extension().is_some_and(|e| e == "zst") {
            Sink::Zstd(zstd::Encoder::new(out, ZSTD_LEVEL)?)
        } else {
            Sink::Plain(out)
        };
        let (tx, rx) = sync_channel::<Queued>(QUEUE);
        let closed = Arc::new(AtomicBool::new(false));
        let negotiated = Arc::new(OnceLock::new());
        let writer = {
            let writer = Writer {
                out,
                header: Some(header.clone()),
                negotiated: negotiated.clone(),
                processes: Processes::default(),
            };
            let closed = closed.clone();
            let shown = path.display().to_string();
            std::thread::Builder::new()
                .name("memfs-trace".into())
                .spawn(move || {
                    let written = writer.run(&rx, &closed);
                    if let Err(e) = &written {
                        // Said now, not at unmount: a mount can run for days after.
                        tracing::error!(
                            "trace {shown} stopped: {e}; the mount goes on, not traced"
                        );
                    }
                    written
                })?
        };
        Ok(Tracer {
            start: Instant::now(),
            queue: tx,
            closed,
            negotiated,
            stalls: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            recent_pids: (0..RECENT_PIDS).map(|_| AtomicU32::new(0)).collect(),
            writer_thread: writer.thread().clone(),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// What INIT agreed on, for the header. Call it before INIT's own record is queued; a
    /// second call is ignored.
    pub fn negotiated(&self, negotiated: Negotiated) {
        let _ = self.negotiated.set(negotiated);
    }

    /// Nanoseconds since the mount.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Queues a record; if the queue is full, wakes the writer and waits for room. Wakes
    /// the writer too when the record's pid was not seen lately, so that it reads the
    /// process's name while the process is still there.
    pub fn record(&self, record: Queued) {
        let new_pid = record.pid.filter(|&pid| pid != 0).is_some_and(|pid| {
            let slot = &self.recent_pids[pid as usize % RECENT_PIDS];
            // Read first: a slot that already holds the pid stays shared between the
            // serving threads' caches instead of bouncing on every record.
            slot.load(Ordering::Relaxed) != pid && slot.swap(pid, Ordering::Relaxed) != pid
        });
        match self.queue.try_send(record) {
            Ok(()) => {
                if new_pid {
                    self.writer_thread.unpark();
                }
            }
            Err(TrySendError::Full(record)) => {
                self.stalls.fetch_add(1, Ordering::Relaxed);
                self.writer_thread.unpark();
                // Fails only once the writer has stopped (an I/O error, or finish).
                if self.queue.send(record).is_err() {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
            // The writer stopped on an I/O error, which `finish` reports.
            Err(TrySendError::Disconnected(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many records were not written because the writer had stopped on an I/O error.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// How many times a request waited for room in the queue.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// Stops the writer once it has written out the queue, and flushes the file. Returns the
    /// number of records written. Call it once no request can come (after the session ends):
    /// a record queued later is not written.
    pub fn finish(&self) -> std::io::Result<u64> {
        self.closed.store(true, Ordering::Release);
        self.writer_thread.unpark();
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        match handle {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("trace writer panicked"))),
            None => Ok(0),
        }
    }
}

/// zstd's default level: about 300 MB/s on one core, far above what FUSE delivers, and a
/// trace shrinks some 10×.
const ZSTD_LEVEL: i32 = 3;

/// Where the writer puts lines: the file, or a zstd stream into it.
enum Sink {
    Plain(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Zstd(w) => w.write_all(bytes),
        }
    }

    /// Ends the stream, flushes and syncs the file.
    fn finish(self) -> std::io::Result<()> {
        let mut out = match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.finish()?,
        };
        out.flush()?;
        out.get_ref().sync_all()
    }
}

/// The writer thread's state: the file, the header until it is written, and the pids seen.
struct Writer {
    out: Sink,
    header: Option<Header>,
    negotiated: Arc<OnceLock<Negotiated>>,
    processes: Processes,
}

impl Writer {
    /// Drains the queue on its own clock until the tracer is closed. Returns the number of
    /// request records written.
    fn run(mut self, queue: &Receiver<Queued>, closed: &AtomicBool) -> std::io::Result<u64> {
        let mut n = 0u64;
        let mut nap = POLL_BUSY;
        let mut line = Vec::with_capacity(512);
        loop {
            // Read before draining: whatever was queued before the close is then drained below.
            let last = closed.load(Ordering::Acquire);
            let before = n;
            while let Ok(record) = queue.try_recv() {
                self.write_header()?;
                line.clear();
                if let Some(pid) = record.pid {
                    if let Some(process) = self.processes.first_sight(pid, record.t_ns) {
                        json::write_process(&mut line, &process);
                    }
                }
                json::write_record(&mut line, &record);
                self.out.write_all(&line)?;
                n += 1;
            }
            if last {
                break;
            }
            nap = if n > before {
                POLL_BUSY
            } else {
                (nap * 2).min(POLL_IDLE)
            };
            std::thread::park_timeout(nap);
        }
        self.write_header()?;
        self.out.finish()?;
        Ok(n)
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        if let Some(mut header) = self.header.take() {
            header.fuse = self.negotiated.get().cloned();
            let mut line = serde_json::to_vec(&header)?;
            line.push(b'\n');
            self.out.write_all(&line)?;
        }
        Ok(())
    }
}

/// The pids the writer has looked up in /proc: each once, on the writer thread, so the
/// request path never reads /proc.
#[derive(Default)]
struct Processes {
    seen: HashSet<u32>,
}

impl Processes {
    /// The process behind `pid` if this is its first record; pid 0 (the kernel) is none.
    fn first_sight(&mut self, pid: u32, t_ns: u64) -> Option<Process> {
        if pid == 0 || !self.seen.insert(pid) {
            return None;
        }
        Some(process_info(pid, t_ns))
    }
}

/// What /proc/PID/status says of a pid: its command name, parent and thread group. A pid
/// that has exited gives only itself.
pub fn process_info(pid: u32, t_ns: u64) -> Process {
    let mut p = Process {
        process: pid,
        t_ns,
        comm: None,
        ppid: None,
        tgid: None,
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return p;
    };
    for line in status.lines() {
        if let Some(name) = line.strip_prefix("Name:\t") {
            p.comm = Some(unescape_status_name(name));
        } else if let Some(v) = line.strip_prefix("Tgid:\t") {
            p.tgid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("PPid:\t") {
            p.ppid = v.trim().parse().ok();
            // Name, Tgid and PPid are the first lines; nothing later is wanted.
            break;
        }
    }
    p
}

/// /proc/PID/status escapes a name's newline as `\n` and backslash as `\\`.
fn unescape_status_name(name: &str) -> String {
    name.replace("\\n", "\n").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    /// The queue holds [`super::QUEUE`] records, allocated up front, and each request copies
    /// one in: keep them small.
    #[test]
    fn a_queued_record_stays_small() {
        let size = std::mem::size_of::<super::Queued>();
        assert!(size <= 512, "a queued record is {size} bytes");
        eprintln!("a queued record is {size} bytes");
    }
}
