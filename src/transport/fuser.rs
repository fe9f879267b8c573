//! The `fuser` transport: each `Filesystem` callback decodes its arguments into a request of
//! [`crate::request`], calls [`Server::call`], and encodes the answer in fuser's reply. No
//! logic lives here beyond that and the init negotiation in fuser's terms.

use std::ffi::OsStr;
use std::io::IoSlice;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use ::fuser::{
    AccessFlags, CopyFileRangeFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, Notifier, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use tracing::debug;

use crate::fs::{self, Attr, DirEntry, FileKind, SetAttr, SetTime};
use crate::request::{
    self as rq, Attributes, Context, DirPlusSink, DirSink, Entry, KernelCache, KernelOptions,
    Opened, Server, Xattr,
};
use crate::trace::{Negotiated, Tracer};

/// The most slices one `writev` takes (`UIO_MAXIOV`), the reply's header among them. A 1 MiB
/// read of chunks of 8 KiB or more needs at most 129.
const MAX_REPLY_SLICES: usize = 1024;

/// The `fuser::Filesystem` over the request layer.
pub struct MemFuse {
    server: Server,
    notifier: NotifierSlot,
    /// Ask the kernel for FUSE over io_uring at INIT (the ring transport serves then).
    io_uring: bool,
}

impl MemFuse {
    /// An adapter over `core`; with a tracer, every request is recorded.
    pub fn new(core: Arc<rq::Core>, options: KernelOptions, tracer: Option<Arc<Tracer>>) -> Self {
        let notifier = NotifierSlot::default();
        MemFuse {
            server: Server::new(core, options, tracer)
                .with_kernel_cache(Arc::new(notifier.clone())),
            notifier,
            io_uring: false,
        }
    }

    /// This adapter, negotiating `FUSE_OVER_IO_URING` at INIT and failing the mount when the
    /// kernel does not offer it.
    pub fn with_io_uring(self) -> Self {
        MemFuse {
            io_uring: true,
            ..self
        }
    }

    /// Where the session's notifier goes once the session exists (it takes this adapter).
    pub fn notifier_slot(&self) -> NotifierSlot {
        self.notifier.clone()
    }
}

/// The session's [`Notifier`], filled in after the session is made and before it serves.
#[derive(Clone, Default)]
pub struct NotifierSlot {
    notifier: Arc<OnceLock<Notifier>>,
    /// Serving threads free to serve the WRITEs a write-back sends: the thread asking waits
    /// inside the kernel until they are answered, so one thread is always kept back.
    spare_threads: Arc<AtomicUsize>,
}

impl NotifierSlot {
    /// The session's notifier, and how many threads serve it.
    pub fn fill(&self, notifier: Notifier, threads: usize) {
        if self.notifier.set(notifier).is_ok() {
            self.spare_threads
                .store(threads.saturating_sub(1), Ordering::Release);
        }
    }
}

impl KernelCache for NotifierSlot {
    fn forget_attributes(&self, ino: u64) {
        // A negative offset invalidates the attributes and leaves the pages.
        if let Some(Err(e)) = self
            .notifier
            .get()
            .map(|n| n.inval_inode(INodeNo(ino), -1, 0))
        {
            // ENOENT: the kernel holds no such inode, so nothing is stale.
            debug!(ino, "invalidating attributes: {e}");
        }
    }

    /// FUSE_NOTIFY_INVAL_INODE from offset 0: a directory's cached listing lives in its
    /// pages, and the kernel starts it again when a page is gone.
    fn forget_listing(&self, dir: u64) {
        if let Some(Err(e)) = self
            .notifier
            .get()
            .map(|n| n.inval_inode(INodeNo(dir), 0, 0))
        {
            debug!(dir, "dropping a cached listing: {e}");
        }
    }

    /// FUSE_NOTIFY_INVAL_INODE over the whole file: the kernel launders each dirty page (a
    /// WRITE it waits for) before dropping it.
    fn write_back(&self, ino: u64) -> bool {
        let Some(notifier) = self.notifier.get() else {
            return false;
        };
        let took = self
            .spare_threads
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if took.is_err() {
            return false;
        }
        let done = notifier.inval_inode(INodeNo(ino), 0, 0);
        self.spare_threads.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = &done {
            debug!(ino, "writing back cached pages: {e}");
        }
        done.is_ok()
    }
}

fn context(req: &Request) -> Context {
    Context {
        unique: req.unique().0,
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

/// A reply that can carry an error: every `fuser` reply type.
trait ErrorReply {
    fn fail(self, errno: fs::Errno);
}

macro_rules! error_reply {
    ($($t:ty),*) => {$(
        impl ErrorReply for $t {
            fn fail(self, errno: fs::Errno) {
                self.error(::fuser::Errno::from_i32(errno.0))
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

/// Sends `result`: its value through `send`, or its errno.
fn answer<R: ErrorReply, T>(reply: R, result: fs::Result<T>, send: impl FnOnce(R, T)) {
    match result {
        Ok(value) => send(reply, value),
        Err(errno) => reply.fail(errno),
    }
}

/// A create's or tmpfile's answer: the new file's entry and its handle.
fn send_created(reply: ReplyCreate, c: rq::Created) {
    reply.created(
        &c.entry.ttl,
        &file_attr(&c.entry.attr),
        Generation(c.entry.generation),
        FileHandle(c.opened.fh),
        fopen_flags(c.opened.flags),
    )
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

fn send_entry(reply: ReplyEntry, e: Entry) {
    reply.entry(&e.ttl, &file_attr(&e.attr), Generation(e.generation));
}

fn send_attr(reply: ReplyAttr, a: Attributes) {
    reply.attr(&a.ttl, &file_attr(&a.attr));
}

/// Our `FOPEN_*` bits are the kernel's; passthrough is never asked for (fuser would panic).
fn fopen_flags(flags: u32) -> FopenFlags {
    FopenFlags::from_bits_truncate(flags) - FopenFlags::FOPEN_PASSTHROUGH
}

fn send_opened(reply: ReplyOpen, o: Opened) {
    reply.opened(FileHandle(o.fh), fopen_flags(o.flags));
}

fn send_xattr(reply: ReplyXattr, value: rq::XattrValue) {
    answer(reply, value.into_reply(), |r, x| match x {
        Xattr::Size(n) => r.size(n),
        Xattr::Data(bytes) => r.data(&bytes),
    });
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

impl DirSink for ReplyDirectory {
    fn add(&mut self, e: &DirEntry) -> bool {
        ReplyDirectory::add(
            self,
            INodeNo(e.ino),
            e.offset,
            file_type(e.kind),
            OsStr::from_bytes(&e.name),
        )
    }
}

impl DirPlusSink for ReplyDirectoryPlus {
    fn add(&mut self, e: &DirEntry, attr: &Attr, ttl: Duration) -> bool {
        ReplyDirectoryPlus::add(
            self,
            INodeNo(e.ino),
            e.offset,
            OsStr::from_bytes(&e.name),
            &ttl,
            &file_attr(attr),
            Generation(rq::GENERATION),
        )
    }
}

impl Filesystem for MemFuse {
    fn init(&mut self, req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let options = self.server.options();
        let mut wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_MAX_PAGES;
        if options.writeback_cache {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        if options.readdirplus {
            wanted |= InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO;
        }
        if options.handle_killpriv {
            // The kernel then flags the writes, truncates, opens and chowns that must clear
            // setuid/setgid, instead of asking for security.capability before each.
            wanted |= InitFlags::FUSE_HANDLE_KILLPRIV_V2;
        }
        for flag in wanted.iter() {
            if config.add_capabilities(flag).is_err() {
                debug!("kernel does not support {flag:?}");
            }
        }
        let max_write = match config.set_max_write(options.max_write) {
            Ok(_) => options.max_write,
            Err(max) => {
                let _ = config.set_max_write(max);
                max
            }
        };
        if self.io_uring
            && config
                .add_capabilities(InitFlags::FUSE_OVER_IO_URING)
                .is_err()
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the kernel does not offer FUSE over io_uring at INIT \
                 (is /sys/module/fuse/parameters/enable_uring 1?)",
            ));
        }
        if self.io_uring {
            wanted |= InitFlags::FUSE_OVER_IO_URING;
        }
        // What fuser asks for on its own (async reads, big writes) plus ours, where offered.
        let granted = (wanted | InitFlags::FUSE_ASYNC_READ) & config.capabilities();
        let abi = config.kernel_abi();
        self.server.negotiated(Negotiated {
            abi: format!("{}.{}", abi.0, abi.1),
            capabilities: granted.iter_names().map(|(n, _)| n.to_string()).collect(),
            max_write,
        });
        self.server.init(&context(req));
        Ok(())
    }

    fn destroy(&mut self) {
        self.server.destroy();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let request = rq::Lookup {
            parent: parent.0,
            name: name.as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), send_entry);
    }

    fn forget(&self, req: &Request, ino: INodeNo, nlookup: u64) {
        self.server.forget(&context(req), ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let request = rq::Getattr {
            ino: ino.0,
            fh: fh.map(|f| f.0),
        };
        answer(reply, self.server.call(&context(req), request), send_attr);
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
        _flags: Option<::fuser::BsdFileFlags>,
        kill_suidgid: bool,
        reply: ReplyAttr,
    ) {
        let request = rq::Setattr {
            ino: ino.0,
            fh: fh.map(|f| f.0),
            set: SetAttr {
                mode,
                uid,
                gid,
                size,
                atime: set_time(atime),
                mtime: set_time(mtime),
                ctime: ctime.map(pre_epoch_fixed),
            },
            kill_suidgid,
        };
        answer(reply, self.server.call(&context(req), request), send_attr);
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let request = rq::Readlink { ino: ino.0 };
        answer(reply, self.server.call(&context(req), request), |r, t| {
            r.data(&t)
        });
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
        let request = rq::Mknod {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            rdev,
        };
        answer(reply, self.server.call(&context(req), request), send_entry);
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
        let request = rq::Mkdir {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
        };
        answer(reply, self.server.call(&context(req), request), send_entry);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let request = rq::Unlink {
            parent: parent.0,
            name: name.as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let request = rq::Rmdir {
            parent: parent.0,
            name: name.as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let request = rq::Symlink {
            parent: parent.0,
            name: link_name.as_bytes(),
            target: target.as_os_str().as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), send_entry);
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
        let request = rq::Rename {
            parent: parent.0,
            name: name.as_bytes(),
            newparent: newparent.0,
            newname: newname.as_bytes(),
            flags: flags.bits(),
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let request = rq::Link {
            ino: ino.0,
            newparent: newparent.0,
            newname: newname.as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), send_entry);
    }

    fn open(
        &self,
        req: &Request,
        ino: INodeNo,
        flags: OpenFlags,
        kill_suidgid: bool,
        reply: ReplyOpen,
    ) {
        let request = rq::Open {
            ino: ino.0,
            flags: flags.0,
            kill_suidgid,
        };
        answer(reply, self.server.call(&context(req), request), send_opened);
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
        let request = rq::Read {
            ino: ino.0,
            fh: fh.0,
            offset,
            size,
        };
        answer(
            reply,
            self.server.call(&context(req), request),
            |r, bytes| {
                // One `writev` of the header and the bytes where they lie (see `ReadBytes`).
                let slices: Vec<IoSlice> = bytes.slices().into_iter().map(IoSlice::new).collect();
                if slices.len() < MAX_REPLY_SLICES {
                    r.data_slices(&slices)
                } else {
                    r.data(&bytes.into_vec())
                }
            },
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let request = rq::Write {
            ino: ino.0,
            fh: fh.0,
            offset,
            data,
            kill_suidgid: write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID),
        };
        answer(reply, self.server.call(&context(req), request), |r, n| {
            r.written(n)
        });
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let request = rq::Flush {
            ino: ino.0,
            fh: fh.0,
        };
        answer(reply, self.server.call(&context(req), request), |r, _| {
            r.ok()
        });
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
        let request = rq::Release {
            ino: ino.0,
            fh: fh.0,
        };
        answer(reply, self.server.call(&context(req), request), |r, _| {
            r.ok()
        });
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let request = rq::Fsync {
            ino: ino.0,
            fh: fh.0,
            datasync,
        };
        answer(reply, self.server.call(&context(req), request), |r, _| {
            r.ok()
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let request = rq::Opendir {
            ino: ino.0,
            flags: flags.0,
        };
        answer(reply, self.server.call(&context(req), request), send_opened);
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let request = rq::Readdir {
            ino: ino.0,
            fh: fh.0,
            offset,
            sink: &mut reply,
        };
        let result = self.server.call(&context(req), request);
        answer(reply, result, |r, _| r.ok());
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let request = rq::Readdirplus {
            ino: ino.0,
            fh: fh.0,
            offset,
            sink: &mut reply,
        };
        let result = self.server.call(&context(req), request);
        answer(reply, result, |r, _| r.ok());
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let request = rq::Releasedir {
            ino: ino.0,
            fh: fh.0,
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let request = rq::Fsyncdir {
            ino: ino.0,
            fh: fh.0,
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let request = rq::Statfs { ino: ino.0 };
        answer(reply, self.server.call(&context(req), request), |r, s| {
            r.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            )
        });
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
        let request = rq::Setxattr {
            ino: ino.0,
            name: name.as_bytes(),
            value,
            flags,
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let request = rq::Getxattr {
            ino: ino.0,
            name: name.as_bytes(),
            size,
        };
        answer(reply, self.server.call(&context(req), request), send_xattr);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let request = rq::Listxattr { ino: ino.0, size };
        answer(reply, self.server.call(&context(req), request), send_xattr);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let request = rq::Removexattr {
            ino: ino.0,
            name: name.as_bytes(),
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let request = rq::Access {
            ino: ino.0,
            mask: mask.bits(),
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
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
        let request = rq::Create {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            flags,
        };
        answer(
            reply,
            self.server.call(&context(req), request),
            send_created,
        );
    }

    fn tmpfile(
        &self,
        req: &Request,
        parent: INodeNo,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let request = rq::TmpFile {
            parent: parent.0,
            mode,
            flags,
        };
        answer(
            reply,
            self.server.call(&context(req), request),
            send_created,
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
        let request = rq::Fallocate {
            ino: ino.0,
            fh: fh.0,
            offset,
            length,
            mode,
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ok()
        });
    }

    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: ::fuser::IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let request = rq::Ioctl {
            ino: ino.0,
            fh: fh.0,
            cmd,
        };
        answer(reply, self.server.call(&context(req), request), |r, ()| {
            r.ioctl(0, &[])
        });
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
        let request = rq::Lseek {
            ino: ino.0,
            fh: fh.0,
            offset,
            whence,
        };
        answer(reply, self.server.call(&context(req), request), |r, o| {
            r.offset(o)
        });
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
        let request = rq::CopyFileRange {
            ino_in: ino_in.0,
            fh_in: fh_in.0,
            offset_in,
            ino_out: ino_out.0,
            fh_out: fh_out.0,
            offset_out,
            len,
        };
        answer(reply, self.server.call(&context(req), request), |r, n| {
            r.written(n)
        });
    }
}
