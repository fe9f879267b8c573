//! The request layer, independent of any transport: one handler per FUSE op, taking plain
//! arguments (a request struct per op) and answering plain values. A transport (fuser today,
//! FUSE over io_uring later) decodes a kernel request into one of these structs, hands it to
//! [`Server::call`], and encodes the answer in its own reply format.
//!
//! [`Server::call`] is the one place that maps errors to errnos, turns a panic into EIO for
//! that request alone, and records the request in the trace. The cache policy (TTLs,
//! negative entries, direct I/O) lives here too, so every transport answers alike.

mod dir;
mod file;
mod meta;
mod namespace;
mod recording;
mod reply;

pub use dir::{Fsyncdir, Listed, Opendir, Readdir, Readdirplus, Releasedir};
pub use file::{CopyFileRange, Fallocate, Flush, Fsync, Ioctl, Lseek, Open, Read, Release, Write};
pub use meta::{
    Access, Getattr, Getxattr, Listxattr, Readlink, Removexattr, Setattr, Setxattr, Statfs,
};
pub use namespace::{Create, Link, Lookup, Mkdir, Mknod, Rename, Rmdir, Symlink, TmpFile, Unlink};
pub use recording::{Args, Noted};
pub use reply::{
    Attributes, Committed, Created, DirPlusSink, DirSink, Entry, Opened, Xattr, XattrValue,
    FOPEN_CACHE_DIR, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, GENERATION,
};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, error};

use crate::fs::{Attr, Caller, Errno, Result, SetidChange};
use crate::router::Router;
use crate::trace::{Negotiated, Op, Outcome, Tracer};

/// What the request layer calls: the router, which sends `.memfs` to the control plane and
/// everything else to the core.
pub type Core = Router;

/// The kernel settings memfs asks for. See README "Kernel settings" for the measurements
/// behind the defaults. The transport negotiates them at init in its own terms.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// How long the kernel may cache attributes and directory entries.
    pub ttl: Duration,
    /// Let the kernel cache writes and send them in large batches.
    pub writeback_cache: bool,
    /// Largest write request, in bytes (the kernel caps it at max_pages_limit pages).
    pub max_write: u32,
    /// Answer `readdir` with attributes, saving a lookup per entry.
    pub readdirplus: bool,
    /// Let the kernel keep a file's pages and a directory's listing across opens
    /// (`FOPEN_KEEP_CACHE`), which holds because every change to memfs passes through it.
    pub keep_cache: bool,
    /// Clear setuid/setgid in memfs when the kernel asks (`FUSE_HANDLE_KILLPRIV_V2`),
    /// sparing it a `getxattr(security.capability)` round trip per write and chown.
    pub handle_killpriv: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            ttl: Duration::from_secs(60),
            writeback_cache: true,
            max_write: 1 << 20,
            readdirplus: true,
            keep_cache: true,
            handle_killpriv: true,
        }
    }
}

/// Who sent a request, and the kernel's id for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    pub unique: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Context {
    pub fn caller(&self) -> Caller {
        Caller {
            uid: self.uid,
            gid: self.gid,
            pid: self.pid,
        }
    }
}

/// What the request layer may tell the kernel outside a reply, provided by the transport.
pub trait KernelCache: Send + Sync {
    /// The kernel must fetch the attributes of `ino` again: memfs changed them along with a
    /// request whose reply does not carry them.
    fn forget_attributes(&self, ino: u64);

    /// Has the kernel write back the file's dirty pages and drop its cached pages; returns
    /// once it has (the writes come in as WRITE requests on other threads). False if it
    /// could not be done now (no thread to spare for those writes).
    fn write_back(&self, ino: u64) -> bool;

    /// The kernel must drop its cached listing of directory `dir` (and its attributes):
    /// memfs changes it without the kernel seeing it (`.memfs`).
    fn forget_listing(&self, dir: u64);
}

/// One FUSE op's request: its arguments, what the trace shows of them, and its handler.
pub trait Request: Sized {
    const OP: Op;
    type Reply: Noted;

    /// The arguments as the trace records them.
    fn args(&self) -> Args<'_>;

    /// Runs the request against the core. Only [`Server::call`] calls it.
    fn handle(self, server: &Server, ctx: &Context) -> Result<Self::Reply>;
}

/// Serves requests from any transport: the core, the kernel options, and the tracer.
pub struct Server {
    core: Arc<Core>,
    options: KernelOptions,
    tracer: Option<Arc<Tracer>>,
    kernel: Option<Arc<dyn KernelCache>>,
}

impl Server {
    /// A server over `core`; with a tracer, every request is recorded.
    pub fn new(core: Arc<Core>, options: KernelOptions, tracer: Option<Arc<Tracer>>) -> Server {
        Server {
            core,
            options,
            tracer,
            kernel: None,
        }
    }

    /// This server, telling the kernel through `kernel` what it caches that memfs changed.
    pub fn with_kernel_cache(self, kernel: Arc<dyn KernelCache>) -> Server {
        Server {
            kernel: Some(kernel),
            ..self
        }
    }

    pub fn options(&self) -> &KernelOptions {
        &self.options
    }

    /// Runs one request. Errors come back as errnos; a panic becomes EIO for this request
    /// only, and the server keeps serving. With tracing on, the request is recorded here and
    /// nowhere else, before the caller replies: whatever the reply lets the kernel do next is
    /// recorded after it, so the trace is in causal order.
    pub fn call<R: Request>(&self, ctx: &Context, request: R) -> Result<R::Reply> {
        let Some(tracer) = &self.tracer else {
            return self.run(ctx, request);
        };
        let start = tracer.now_ns();
        let mut record = recording::record(Some(ctx), R::OP, request.args());
        let result = self.run(ctx, request);
        record.t_ns = start;
        record.result = Outcome::from(&result);
        if let Ok(reply) = &result {
            reply.note(&mut record);
        }
        record.dur_ns = tracer.now_ns().saturating_sub(start);
        tracer.record(record);
        result
    }

    fn run<R: Request>(&self, ctx: &Context, request: R) -> Result<R::Reply> {
        match catch_unwind(AssertUnwindSafe(|| request.handle(self, ctx))) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                debug!(op = R::OP.as_str(), error = e.name(), "request failed");
                Err(e)
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                error!(
                    op = R::OP.as_str(),
                    "bug: handler panicked: {msg}; answering EIO"
                );
                Err(Errno::EIO)
            }
        }
    }

    /// What the kernel and the transport agreed on at INIT, for the trace's header. Call it
    /// before [`Server::init`].
    pub fn negotiated(&self, negotiated: Negotiated) {
        if let Some(tracer) = &self.tracer {
            tracer.negotiated(negotiated);
        }
    }

    /// The session starts: recorded, nothing to run.
    pub fn init(&self, ctx: &Context) {
        self.record_untimed(Some(ctx), Op::Init, Args::default());
    }

    /// The session ends: recorded, nothing to run.
    pub fn destroy(&self) {
        self.record_untimed(None, Op::Destroy, Args::default());
    }

    /// The kernel drops `nlookup` references to `ino`. It takes no reply, so a panic is
    /// logged and goes no further.
    pub fn forget(&self, ctx: &Context, ino: u64, nlookup: u64) {
        if catch_unwind(AssertUnwindSafe(|| self.core.forget(ino, nlookup))).is_err() {
            error!(op = "forget", "bug: handler panicked");
        }
        let args = Args {
            ino: Some(ino),
            size: Some(nlookup),
            ..Args::default()
        };
        self.record_untimed(Some(ctx), Op::Forget, args);
    }

    /// Records a request that has no reply or no core call, as done now and in no time.
    fn record_untimed(&self, ctx: Option<&Context>, op: Op, args: Args) {
        if let Some(tracer) = &self.tracer {
            let mut record = recording::record(ctx, op, args);
            record.t_ns = tracer.now_ns();
            tracer.record(record);
        }
    }

    /// How long the kernel may cache an inode's attributes and name: the mount's TTL, but
    /// nothing for the control files under `.memfs`, which change without the kernel seeing
    /// it (except snapshots and the directories above them, which change only through the
    /// kernel).
    fn attr_ttl(&self, ino: u64) -> Duration {
        if self.core.changes_unseen(ino) {
            Duration::ZERO
        } else {
            self.options.ttl
        }
    }

    /// The open flags of a file. Its pages stay cached across opens, as every change reaches
    /// memfs through this kernel. Control files are the exception: generated ones
    /// (stats.json) have no size until read, so they bypass the page cache, and the others
    /// can take a number another node had, so their pages are dropped at each open.
    fn open_flags(&self, ino: u64) -> u32 {
        if self.core.changes_unseen(ino) {
            if self.core.direct_io(ino) {
                FOPEN_DIRECT_IO
            } else {
                0
            }
        } else if self.options.keep_cache {
            FOPEN_KEEP_CACHE
        } else {
            0
        }
    }

    /// After a listing of `dir` that reached its end (no entry left): under `.memfs`, where
    /// listings change without the kernel seeing it, the kernel must not keep what it
    /// cached. It opens directories itself (see `Opendir`), with their listings kept, so
    /// memfs drops the one it just completed: the next `getdents` from the start asks
    /// again, as it did when each opendir dropped it.
    fn listed(&self, dir: u64, entries: u32) {
        if entries != 0 || !self.options.keep_cache {
            return;
        }
        if self.core.changes_unseen(dir) {
            if let Some(kernel) = &self.kernel {
                kernel.forget_listing(dir);
            }
        }
    }

    /// Clears setuid/setgid of `ino` as the kernel asked with a flagged request. Writes and
    /// opens answer without attributes, and the writeback cache keeps the mode the kernel
    /// knew, so the kernel is told to fetch them again.
    fn clear_setid(&self, ino: u64, change: SetidChange, ctx: &Context) -> Result<()> {
        if self.core.clear_setid(ino, change, ctx.caller())? {
            if let Some(kernel) = &self.kernel {
                kernel.forget_attributes(ino);
            }
        }
        Ok(())
    }

    fn entry(&self, attr: Attr) -> Entry {
        Entry {
            ttl: self.attr_ttl(attr.ino),
            attr,
            generation: GENERATION,
        }
    }

    /// A create's or tmpfile's answer: the new file's entry and its open handle.
    fn created(&self, attr: Attr, fh: u64) -> Created {
        let opened = Opened {
            fh,
            flags: self.open_flags(attr.ino),
        };
        Created {
            entry: Entry {
                attr,
                ttl: self.options.ttl,
                generation: GENERATION,
            },
            opened,
        }
    }

    /// "No such name": the kernel caches the miss for the TTL (every create goes through it,
    /// so the cache cannot go stale), sparing the repeated probes of compilers and git.
    fn negative_entry(&self) -> Entry {
        Entry::negative(self.options.ttl)
    }
}

#[cfg(test)]
mod tests;
