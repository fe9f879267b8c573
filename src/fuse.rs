//! The thin adapter between the kernel (through `fuser`) and the core [`Fs`]: each handler
//! decodes its request, calls the core once, and replies. Every handler goes through
//! [`MemFuse::serve`], the one place that maps errors, catches panics and logs.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, CopyFileRangeFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tracing::{debug, error};

use crate::fs::{self, Attr, Caller, FileKind, Fs, RenameMode, SetAttr, SetTime};
use crate::trace::{flags, Record, Tracer};

/// The kernel settings memfs asks for. See README "Kernel settings" for the measurements
/// behind the defaults.
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
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            ttl: Duration::from_secs(60),
            writeback_cache: true,
            max_write: 1 << 20,
            readdirplus: true,
        }
    }
}

pub struct MemFuse {
    fs: Arc<Fs>,
    options: KernelOptions,
    tracer: Option<Arc<Tracer>>,
}

/// Debug builds only: a lookup of the name in `MEMFS_TEST_PANIC_ON_LOOKUP` panics, so tests
/// can show that a panic costs one request (EIO), not the mount.
fn panic_if_asked(name: &OsStr) {
    if cfg!(debug_assertions)
        && std::env::var_os("MEMFS_TEST_PANIC_ON_LOOKUP").is_some_and(|n| n == name)
    {
        panic!("injected panic on lookup of {name:?}");
    }
}

/// A request's arguments, as plain data: turned into a trace record only when tracing.
#[derive(Default, Clone, Copy)]
struct Args<'a> {
    ino: Option<u64>,
    parent: Option<u64>,
    name: Option<&'a OsStr>,
    newparent: Option<u64>,
    newname: Option<&'a OsStr>,
    fh: Option<u64>,
    offset: Option<i64>,
    size: Option<u64>,
    flags: Option<Flags>,
}

impl Args<'_> {
    fn ino(ino: INodeNo) -> Self {
        Args {
            ino: Some(ino.0),
            ..Args::default()
        }
    }

    fn handle(ino: INodeNo, fh: FileHandle) -> Self {
        Args {
            ino: Some(ino.0),
            fh: Some(fh.0),
            ..Args::default()
        }
    }
}

/// Flags of a request, decoded to names only when a record is written.
#[derive(Clone, Copy)]
enum Flags {
    Open(i32),
    Mode(u32),
    Rename(u32),
    Xattr(i32),
    Access(i32),
    Fallocate(i32),
    Whence(i32),
    Ioctl(u32),
    /// copy_file_range's destination: inode, handle, offset.
    CopyTo(u64, u64, u64),
}

impl Flags {
    fn describe(self) -> String {
        match self {
            Flags::Open(f) => flags::open_flags(f),
            Flags::Mode(m) => format!("{m:#o}"),
            Flags::Rename(f) => flags::rename_flags(f),
            Flags::Xattr(f) => flags::xattr_flags(f),
            Flags::Access(m) => flags::access_mask(m),
            Flags::Fallocate(m) => flags::fallocate_mode(m),
            Flags::Whence(w) => flags::whence(w),
            Flags::Ioctl(cmd) => format!("cmd={cmd:#x}"),
            Flags::CopyTo(ino, fh, off) => format!("to ino={ino} fh={fh} off={off}"),
        }
    }
}

fn name_text(name: &OsStr) -> String {
    String::from_utf8_lossy(name.as_bytes()).into_owned()
}

/// What a request's result adds to its trace record.
trait Outcome {
    fn note(&self, _record: &mut Record) {}
}

impl Outcome for () {}
impl Outcome for i64 {}
impl Outcome for fs::StatFs {}

impl Outcome for Attr {
    fn note(&self, record: &mut Record) {
        record.ino = Some(self.ino);
    }
}

impl Outcome for Option<Attr> {
    fn note(&self, record: &mut Record) {
        if let Some(a) = self {
            a.note(record);
        }
    }
}

impl Outcome for (Attr, u64) {
    fn note(&self, record: &mut Record) {
        record.ino = Some(self.0.ino);
        record.fh = Some(self.1);
    }
}

/// Bytes transferred.
impl Outcome for Vec<u8> {
    fn note(&self, record: &mut Record) {
        record.bytes = Some(self.len() as u64);
    }
}

/// Bytes written.
impl Outcome for u32 {
    fn note(&self, record: &mut Record) {
        record.bytes = Some(*self as u64);
    }
}

/// The version a flush, fsync or release committed.
impl Outcome for Option<u64> {
    fn note(&self, record: &mut Record) {
        record.version = *self;
    }
}

/// A new file handle.
struct NewHandle(u64);

impl Outcome for NewHandle {
    fn note(&self, record: &mut Record) {
        record.fh = Some(self.0);
    }
}

/// A reply that can carry an error: every `fuser` reply type.
trait ErrorReply {
    fn fail(self, errno: fuser::Errno);
}

macro_rules! error_reply {
    ($($t:ty),*) => {$(
        impl ErrorReply for $t {
            fn fail(self, errno: fuser::Errno) {
                self.error(errno)
            }
        }
    )*};
}
error_reply!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyIoctl,
    ReplyLseek,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite,
    ReplyXattr
);

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Regular => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.crtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 4096,
        flags: 0,
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(t) => SetTime::At(pre_epoch_fixed(t)),
        TimeOrNow::Now => SetTime::Now,
    })
}

/// fuser 0.18 turns a time before 1970, (-s seconds, n nanoseconds), into `epoch - s - n`
/// where the kernel means `epoch - s + n`; undo that.
fn pre_epoch_fixed(t: SystemTime) -> SystemTime {
    match SystemTime::UNIX_EPOCH.duration_since(t) {
        Ok(before) if before.subsec_nanos() != 0 => {
            SystemTime::UNIX_EPOCH - Duration::from_secs(before.as_secs())
                + Duration::from_nanos(before.subsec_nanos() as u64)
        }
        _ => t,
    }
}

/// Answers an extended attribute request: the size when probed with 0, ERANGE when the
/// caller's buffer is too small, else the bytes.
fn reply_sized(reply: ReplyXattr, size: u32, bytes: Vec<u8>) {
    if size == 0 {
        reply.size(bytes.len() as u32);
    } else if bytes.len() > size as usize {
        reply.error(fuser::Errno::ERANGE);
    } else {
        reply.data(&bytes);
    }
}

impl MemFuse {
    /// An adapter over `fs`; with a tracer, every request is recorded.
    pub fn new(fs: Arc<Fs>, options: KernelOptions, tracer: Option<Arc<Tracer>>) -> MemFuse {
        MemFuse {
            fs,
            options,
            tracer,
        }
    }

    /// Runs one request: `work` calls the core (it may fill the reply through `&mut`),
    /// `done` sends the success reply. Errors become errnos; a panic becomes EIO for this
    /// request only, and the mount keeps serving. With tracing on, the request is recorded
    /// here and nowhere else.
    fn serve<R: ErrorReply, T: Outcome>(
        &self,
        req: &Request,
        op: &'static str,
        args: Args,
        mut reply: R,
        work: impl FnOnce(&mut R) -> fs::Result<T>,
        done: impl FnOnce(R, T),
    ) {
        let start = self.tracer.as_ref().map(|t| t.now_ns());
        let outcome = catch_unwind(AssertUnwindSafe(|| work(&mut reply)));
        // Recorded before the reply goes out, so whatever the reply lets the kernel do next
        // is recorded after it: the trace is in causal order.
        if let (Some(tracer), Some(start)) = (&self.tracer, start) {
            let mut r = self.record(Some(req), op, &args);
            r.t_ns = start;
            r.result = match &outcome {
                Ok(Ok(value)) => {
                    value.note(&mut r);
                    "ok".to_string()
                }
                Ok(Err(e)) => e.name().to_string(),
                Err(_) => "EIO".to_string(),
            };
            r.dur_ns = tracer.now_ns().saturating_sub(start);
            tracer.record(r);
        }
        match outcome {
            Ok(Ok(value)) => done(reply, value),
            Ok(Err(e)) => {
                debug!(op, error = e.name(), "request failed");
                reply.fail(fuser::Errno::from_i32(e.0));
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                error!(op, "bug: handler panicked: {msg}; answering EIO");
                reply.fail(fuser::Errno::EIO);
            }
        }
    }

    /// A trace record of a request's arguments.
    fn record(&self, req: Option<&Request>, op: &str, args: &Args) -> Record {
        Record {
            unique: req.map_or(0, |r| r.unique().0),
            op: op.to_string(),
            ino: args.ino,
            parent: args.parent,
            name: args.name.map(name_text),
            newparent: args.newparent,
            newname: args.newname.map(name_text),
            fh: args.fh,
            pid: req.map(|r| r.pid()),
            uid: req.map(|r| r.uid()),
            gid: req.map(|r| r.gid()),
            offset: args.offset,
            size: args.size,
            flags: args.flags.map(Flags::describe),
            ..Record::default()
        }
    }

    /// Records a request that has no reply (forget) or no core call (init, destroy).
    fn trace_plain(&self, req: Option<&Request>, op: &str, args: Args, result: &str) {
        if let Some(tracer) = &self.tracer {
            let mut r = self.record(req, op, &args);
            r.t_ns = tracer.now_ns();
            r.result = result.to_string();
            tracer.record(r);
        }
    }

    fn entry(&self, reply: ReplyEntry, attr: Attr) {
        reply.entry(&self.ttl(attr.ino), &file_attr(&attr), Generation(0));
    }

    /// How long the kernel may cache an inode's attributes: the mount's TTL, but nothing for
    /// the control files under `.memfs`, which change without the kernel seeing it.
    fn ttl(&self, ino: u64) -> Duration {
        if fs::is_virtual(ino) {
            Duration::ZERO
        } else {
            self.options.ttl
        }
    }

    /// "No such name", as an entry with node id 0: the kernel caches the miss for the TTL
    /// (every create goes through it, so the cache cannot go stale), sparing the repeated
    /// probes of compilers and git.
    fn negative_entry(&self, reply: ReplyEntry) {
        let mut attr = file_attr(&Attr {
            ino: 0,
            kind: FileKind::Regular,
            perm: 0,
            nlink: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 0,
            blocks: 0,
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
        });
        attr.ino = INodeNo(0);
        reply.entry(&self.options.ttl, &attr, Generation(0));
    }
}

impl Filesystem for MemFuse {
    fn init(&mut self, req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        self.trace_plain(Some(req), "init", Args::default(), "ok");
        let mut wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_MAX_PAGES;
        if self.options.writeback_cache {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        if self.options.readdirplus {
            wanted |= InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO;
        }
        for flag in wanted.iter() {
            if config.add_capabilities(flag).is_err() {
                debug!("kernel does not support {flag:?}");
            }
        }
        if let Err(max) = config.set_max_write(self.options.max_write) {
            let _ = config.set_max_write(max);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.serve(
            req,
            "lookup",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                ..Args::default()
            },
            reply,
            |_| {
                panic_if_asked(name);
                match self.fs.lookup(parent.0, name.as_bytes()) {
                    Ok(attr) => Ok(Some(attr)),
                    Err(fs::Errno::ENOENT) => Ok(None),
                    Err(e) => Err(e),
                }
            },
            |r, found| match found {
                Some(attr) => self.entry(r, attr),
                None => self.negative_entry(r),
            },
        );
    }

    fn destroy(&mut self) {
        self.trace_plain(None, "destroy", Args::default(), "ok");
    }

    fn forget(&self, req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
        let args = Args {
            ino: Some(ino.0),
            size: Some(nlookup),
            ..Args::default()
        };
        self.trace_plain(Some(req), "forget", args, "ok");
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(
            req,
            "getattr",
            Args {
                ino: Some(ino.0),
                fh: fh.map(|f| f.0),
                ..Args::default()
            },
            reply,
            |_| self.fs.getattr(ino.0),
            |r, a| r.attr(&self.ttl(a.ino), &file_attr(&a)),
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: set_time(atime),
            mtime: set_time(mtime),
            ctime: ctime.map(pre_epoch_fixed),
        };
        self.serve(
            req,
            "setattr",
            Args {
                ino: Some(ino.0),
                fh: fh.map(|f| f.0),
                size,
                flags: mode.map(Flags::Mode),
                ..Args::default()
            },
            reply,
            |_| self.fs.setattr(ino.0, &set),
            |r, a| r.attr(&self.options.ttl, &file_attr(&a)),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.serve(
            req,
            "readlink",
            Args::ino(ino),
            reply,
            |_| self.fs.readlink(ino.0),
            |r, t| r.data(&t),
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.serve(
            req,
            "mknod",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                flags: Some(Flags::Mode(mode)),
                ..Args::default()
            },
            reply,
            |_| {
                self.fs
                    .mknod(parent.0, name.as_bytes(), mode, rdev, caller(req))
            },
            |r, a| self.entry(r, a),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.serve(
            req,
            "mkdir",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                flags: Some(Flags::Mode(mode)),
                ..Args::default()
            },
            reply,
            |_| self.fs.mkdir(parent.0, name.as_bytes(), mode, caller(req)),
            |r, a| self.entry(r, a),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            req,
            "unlink",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                ..Args::default()
            },
            reply,
            |_| self.fs.unlink(parent.0, name.as_bytes()),
            |r, _| r.ok(),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            req,
            "rmdir",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                ..Args::default()
            },
            reply,
            |_| self.fs.rmdir(parent.0, name.as_bytes()),
            |r, _| r.ok(),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.serve(
            req,
            "symlink",
            Args {
                parent: Some(parent.0),
                name: Some(link_name),
                ..Args::default()
            },
            reply,
            |_| {
                let target = target.as_os_str().as_bytes();
                self.fs
                    .symlink(parent.0, link_name.as_bytes(), target, caller(req))
            },
            |r, a| self.entry(r, a),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "rename",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                newparent: Some(newparent.0),
                newname: Some(newname),
                flags: Some(Flags::Rename(flags.bits())),
                ..Args::default()
            },
            reply,
            |_| {
                let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                    RenameMode::Exchange
                } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    RenameMode::NoReplace
                } else if flags.is_empty() {
                    RenameMode::Replace
                } else {
                    return Err(fs::Errno::EINVAL);
                };
                self.fs.rename(
                    parent.0,
                    name.as_bytes(),
                    newparent.0,
                    newname.as_bytes(),
                    mode,
                )
            },
            |r, _| r.ok(),
        );
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.serve(
            req,
            "link",
            Args {
                ino: Some(ino.0),
                newparent: Some(newparent.0),
                newname: Some(newname),
                ..Args::default()
            },
            reply,
            |_| self.fs.link(ino.0, newparent.0, newname.as_bytes()),
            |r, a| self.entry(r, a),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.serve(
            req,
            "open",
            Args {
                ino: Some(ino.0),
                flags: Some(Flags::Open(flags.0)),
                ..Args::default()
            },
            reply,
            |_| self.fs.open(ino.0, flags.0).map(NewHandle),
            |r, NewHandle(fh)| {
                // Generated files (stats.json) have no size until read: bypass the cache.
                let flags = if self.fs.is_generated(ino.0) {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::empty()
                };
                r.opened(FileHandle(fh), flags)
            },
        );
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.serve(
            req,
            "read",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset as i64),
                size: Some(size as u64),
                ..Args::default()
            },
            reply,
            |_| self.fs.read(fh.0, offset, size),
            |r, bytes| r.data(&bytes),
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.serve(
            req,
            "write",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset as i64),
                size: Some(data.len() as u64),
                ..Args::default()
            },
            reply,
            |_| self.fs.write(fh.0, offset, data),
            |r, n| r.written(n),
        );
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "flush",
            Args::handle(ino, fh),
            reply,
            |_| self.fs.flush(fh.0),
            |r, _| r.ok(),
        );
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "release",
            Args::handle(ino, fh),
            reply,
            |_| self.fs.release(fh.0),
            |r, _| r.ok(),
        );
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "fsync",
            Args::handle(ino, fh),
            reply,
            |_| self.fs.fsync(fh.0, datasync),
            |r, _| r.ok(),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.serve(
            req,
            "opendir",
            Args {
                ino: Some(ino.0),
                flags: Some(Flags::Open(flags.0)),
                ..Args::default()
            },
            reply,
            |_| self.fs.opendir(ino.0, flags.0).map(NewHandle),
            |r, NewHandle(fh)| r.opened(FileHandle(fh), FopenFlags::FOPEN_CACHE_DIR),
        );
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.serve(
            req,
            "readdir",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset as i64),
                ..Args::default()
            },
            reply,
            |r| {
                self.fs.readdir(ino.0, offset, |e| {
                    r.add(
                        INodeNo(e.ino),
                        e.offset,
                        file_type(e.kind),
                        OsStr::from_bytes(&e.name),
                    )
                })
            },
            |r, _| r.ok(),
        );
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.serve(
            req,
            "readdirplus",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset as i64),
                ..Args::default()
            },
            reply,
            |r| {
                self.fs.readdirplus(ino.0, offset, |e, a| {
                    r.add(
                        INodeNo(e.ino),
                        e.offset,
                        OsStr::from_bytes(&e.name),
                        &self.ttl(e.ino),
                        &file_attr(a),
                        Generation(0),
                    )
                })
            },
            |r, _| r.ok(),
        );
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "releasedir",
            Args::handle(ino, fh),
            reply,
            |_| self.fs.releasedir(fh.0),
            |r, _| r.ok(),
        );
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "fsyncdir",
            Args::handle(ino, fh),
            reply,
            |_| self.fs.getattr(ino.0),
            |r, _| r.ok(),
        );
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.serve(
            req,
            "statfs",
            Args::ino(ino),
            reply,
            |_| Ok(self.fs.statfs()),
            |r, s| {
                r.statfs(
                    s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
                )
            },
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "setxattr",
            Args {
                ino: Some(ino.0),
                name: Some(name),
                size: Some(value.len() as u64),
                flags: Some(Flags::Xattr(flags)),
                ..Args::default()
            },
            reply,
            |_| self.fs.setxattr(ino.0, name.as_bytes(), value, flags),
            |r, _| r.ok(),
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.serve(
            req,
            "getxattr",
            Args {
                ino: Some(ino.0),
                name: Some(name),
                size: Some(size as u64),
                ..Args::default()
            },
            reply,
            |_| self.fs.getxattr(ino.0, name.as_bytes()),
            |r, v| reply_sized(r, size, v),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.serve(
            req,
            "listxattr",
            Args {
                ino: Some(ino.0),
                size: Some(size as u64),
                ..Args::default()
            },
            reply,
            |_| self.fs.listxattr(ino.0),
            |r, v| reply_sized(r, size, v),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            req,
            "removexattr",
            Args {
                ino: Some(ino.0),
                name: Some(name),
                ..Args::default()
            },
            reply,
            |_| self.fs.removexattr(ino.0, name.as_bytes()),
            |r, _| r.ok(),
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.serve(
            req,
            "access",
            Args {
                ino: Some(ino.0),
                flags: Some(Flags::Access(mask.bits())),
                ..Args::default()
            },
            reply,
            |_| self.fs.access(ino.0, mask.bits(), caller(req)),
            |r, _| r.ok(),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.serve(
            req,
            "create",
            Args {
                parent: Some(parent.0),
                name: Some(name),
                flags: Some(Flags::Open(flags)),
                ..Args::default()
            },
            reply,
            |_| {
                self.fs
                    .create(parent.0, name.as_bytes(), mode, flags, caller(req))
            },
            |r, (a, fh)| {
                r.created(
                    &self.options.ttl,
                    &file_attr(&a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                )
            },
        );
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.serve(
            req,
            "fallocate",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset as i64),
                size: Some(length),
                flags: Some(Flags::Fallocate(mode)),
                ..Args::default()
            },
            reply,
            |_| self.fs.fallocate(fh.0, offset, length, mode),
            |r, _| r.ok(),
        );
    }

    /// memfs files are not terminals or devices: every ioctl (mostly isatty's TCGETS) is
    /// ENOTTY, as on tmpfs.
    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: fuser::IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        self.serve(
            req,
            "ioctl",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                flags: Some(Flags::Ioctl(cmd)),
                ..Args::default()
            },
            reply,
            |_| Err::<(), _>(fs::Errno::ENOTTY),
            |r, _| r.ioctl(0, &[]),
        );
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.serve(
            req,
            "lseek",
            Args {
                ino: Some(ino.0),
                fh: Some(fh.0),
                offset: Some(offset),
                flags: Some(Flags::Whence(whence)),
                ..Args::default()
            },
            reply,
            |_| self.fs.lseek(fh.0, offset, whence),
            |r, o| r.offset(o),
        );
    }

    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.serve(
            req,
            "copy_file_range",
            Args {
                ino: Some(ino_in.0),
                fh: Some(fh_in.0),
                offset: Some(offset_in as i64),
                size: Some(len),
                flags: Some(Flags::CopyTo(ino_out.0, fh_out.0, offset_out)),
                ..Args::default()
            },
            reply,
            |_| {
                let len = len.min(u32::MAX as u64);
                self.fs
                    .copy_file_range(fh_in.0, offset_in, fh_out.0, offset_out, len)
                    .map(|n| n as u32)
            },
            |r, n| r.written(n),
        );
    }
}
