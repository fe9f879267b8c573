//! Tracing every FUSE request: the record schema, the writer (a bounded queue drained by a
//! thread of its own), and the streaming analyses behind `memfs trace`.

pub mod analyze;
pub mod flags;
mod json;
mod name;
mod op;

pub use flags::Flags;
pub use name::Name;
pub use op::{Op, Outcome};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Records waiting for the writer: far more than arrive between two looks of the writer
/// (FUSE serves some 10^5 requests/s here; the writer looks every millisecond while busy,
/// every 50 at most). The channel allocates and touches every slot up front: 32K records of
/// some 340 bytes are 11 MB.
const QUEUE: usize = 32 * 1024;

/// One FUSE request. Fields an op does not have are left out of the JSON.
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
    /// Decoded flags (`O_WRONLY|O_CREAT|O_TRUNC`, `RENAME_NOREPLACE`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<F>,
    /// Written as `ok` or the errno name (`ENOENT`).
    pub result: Outcome,
    /// Bytes transferred (read, write, readlink, copy_file_range, getxattr, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// flush, fsync, release: the version committed, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A record as the request path makes it and the writer takes it.
pub type Queued = Record<Flags, Name>;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The first line of a trace file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub memfs_trace: u32,
    pub memfs_version: String,
    pub mountpoint: String,
    pub options: String,
    /// Wall-clock start, seconds since the epoch.
    pub start_unix: f64,
}

/// Sends records to the writer thread. Cheap to share between request threads.
///
/// The request path takes no lock and never wakes the writer: a record goes into a bounded
/// lock-free queue (std's channel, crossbeam's array queue underneath), and the writer drains
/// it on its own clock, every [`POLL_BUSY`] while records come, backing off to [`POLL_IDLE`]
/// while none do. Waking the writer for each record (a futex call, and on a busy 2-core
/// machine the woken writer preempting the request thread) was most of what a traced request
/// cost: 31 µs against 0.3 µs untraced in `benches/trace.rs`'s paced run. A record is queued
/// before its reply is sent, so the trace is in causal order.
///
/// When the writer falls behind and the queue is full, the request wakes the writer and waits
/// for room (back pressure): a trace never drops a record. Each such wait is counted
/// ([`Tracer::stalls`]) and logged when the trace ends.
pub struct Tracer {
    start: Instant,
    queue: SyncSender<Queued>,
    /// Set by [`Tracer::finish`]; the writer drains what is queued and stops.
    closed: Arc<AtomicBool>,
    stalls: AtomicU64,
    writer_thread: Thread,
    writer: Mutex<Option<JoinHandle<std::io::Result<u64>>>>,
}

/// How often the writer looks at the queue while records arrive.
const POLL_BUSY: Duration = Duration::from_millis(1);
/// The longest the writer sleeps while none do.
const POLL_IDLE: Duration = Duration::from_millis(50);

impl Tracer {
    /// Creates the trace file, writes its header, and starts the writer.
    pub fn create(path: &Path, header: &Header) -> std::io::Result<Tracer> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        out.flush()?;
        let (tx, rx) = sync_channel::<Queued>(QUEUE);
        let closed = Arc::new(AtomicBool::new(false));
        let writer = {
            let closed = closed.clone();
            std::thread::Builder::new()
                .name("memfs-trace".into())
                .spawn(move || write_records(&rx, out, &closed))?
        };
        Ok(Tracer {
            start: Instant::now(),
            queue: tx,
            closed,
            stalls: AtomicU64::new(0),
            writer_thread: writer.thread().clone(),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Nanoseconds since the mount.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Queues a record; if the queue is full, wakes the writer and waits for room.
    pub fn record(&self, record: Queued) {
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record)) => {
                self.stalls.fetch_add(1, Ordering::Relaxed);
                self.writer_thread.unpark();
                // Fails only once the writer has stopped (an I/O error, or finish).
                let _ = self.queue.send(record);
            }
            // The writer stopped on an I/O error, which `finish` reports.
            Err(TrySendError::Disconnected(_)) => {}
        }
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

/// The writer thread: drains the queue on its own clock until the tracer is closed.
fn write_records(
    queue: &Receiver<Queued>,
    mut out: BufWriter<File>,
    closed: &AtomicBool,
) -> std::io::Result<u64> {
    let mut n = 0u64;
    let mut nap = POLL_BUSY;
    let mut line = Vec::with_capacity(512);
    loop {
        // Read before draining: whatever was queued before the close is then drained below.
        let last = closed.load(Ordering::Acquire);
        let before = n;
        while let Ok(record) = queue.try_recv() {
            line.clear();
            json::write_record(&mut line, &record);
            out.write_all(&line)?;
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
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(n)
}
