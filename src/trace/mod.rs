//! Tracing every FUSE request: the record schema, the writer (a bounded queue drained by a
//! thread of its own), and the streaming analyses behind `memfs trace`.

pub mod analyze;
pub mod flags;
mod op;

pub use flags::Flags;
pub use op::{Op, Outcome};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Records waiting for the writer. When the queue is full the request path waits (back
/// pressure): a trace never drops a record.
const QUEUE: usize = 64 * 1024;

/// One FUSE request. Fields an op does not have are left out of the JSON.
///
/// `F` is how the flags are held: raw ([`Flags`]) on the way to the writer, which names them,
/// and as those names (`String`) when a trace is read back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record<F = String> {
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
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newparent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newname: Option<String>,
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
pub struct Tracer {
    start: Instant,
    queue: Mutex<Option<SyncSender<Record<Flags>>>>,
    writer: Mutex<Option<JoinHandle<std::io::Result<u64>>>>,
}

impl Tracer {
    /// Creates the trace file, writes its header, and starts the writer.
    pub fn create(path: &Path, header: &Header) -> std::io::Result<Tracer> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        out.flush()?;
        let (tx, rx) = sync_channel::<Record<Flags>>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("memfs-trace".into())
            .spawn(move || -> std::io::Result<u64> {
                let mut n = 0u64;
                for record in rx {
                    serde_json::to_writer(&mut out, &record)?;
                    out.write_all(b"\n")?;
                    n += 1;
                }
                out.flush()?;
                out.get_ref().sync_all()?;
                Ok(n)
            })?;
        Ok(Tracer {
            start: Instant::now(),
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Nanoseconds since the mount.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Queues a record, waiting if the writer is behind.
    pub fn record(&self, record: Record<Flags>) {
        let tx = self.queue.lock().ok().and_then(|q| q.clone());
        if let Some(tx) = tx {
            let _ = tx.send(record);
        }
    }

    /// Stops taking records, writes out the queue and flushes the file. Returns the number
    /// of records written.
    pub fn finish(&self) -> std::io::Result<u64> {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        match handle {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("trace writer panicked"))),
            None => Ok(0),
        }
    }
}
