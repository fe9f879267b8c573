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
    pub fn new(fs: Arc<Fs>, options: KernelOptions) -> MemFuse {
        MemFuse { fs, options }
    }

    /// Runs one request: `work` calls the core (it may fill the reply through `&mut`),
    /// `done` sends the success reply. Errors become errnos; a panic becomes EIO for this
    /// request only, and the mount keeps serving.
    fn serve<R: ErrorReply, T>(
        &self,
        op: &'static str,
        mut reply: R,
        work: impl FnOnce(&mut R) -> fs::Result<T>,
        done: impl FnOnce(R, T),
    ) {
        match catch_unwind(AssertUnwindSafe(|| work(&mut reply))) {
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
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
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

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.serve(
            "lookup",
            reply,
            |_| match self.fs.lookup(parent.0, name.as_bytes()) {
                Ok(attr) => Ok(Some(attr)),
                Err(fs::Errno::ENOENT) => Ok(None),
                Err(e) => Err(e),
            },
            |r, found| match found {
                Some(attr) => self.entry(r, attr),
                None => self.negative_entry(r),
            },
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(
            "getattr",
            reply,
            |_| self.fs.getattr(ino.0),
            |r, a| r.attr(&self.ttl(a.ino), &file_attr(&a)),
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
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
            "setattr",
            reply,
            |_| self.fs.setattr(ino.0, &set),
            |r, a| r.attr(&self.options.ttl, &file_attr(&a)),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.serve(
            "readlink",
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
            "mknod",
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
            "mkdir",
            reply,
            |_| self.fs.mkdir(parent.0, name.as_bytes(), mode, caller(req)),
            |r, a| self.entry(r, a),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            "unlink",
            reply,
            |_| self.fs.unlink(parent.0, name.as_bytes()),
            |r, _| r.ok(),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            "rmdir",
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
            "symlink",
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
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.serve(
            "rename",
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
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.serve(
            "link",
            reply,
            |_| self.fs.link(ino.0, newparent.0, newname.as_bytes()),
            |r, a| self.entry(r, a),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.serve(
            "open",
            reply,
            |_| self.fs.open(ino.0, flags.0),
            |r, fh| {
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
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.serve(
            "read",
            reply,
            |_| self.fs.read(fh.0, offset, size),
            |r, bytes| r.data(&bytes),
        );
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.serve(
            "write",
            reply,
            |_| self.fs.write(fh.0, offset, data),
            |r, n| r.written(n),
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.serve("flush", reply, |_| self.fs.flush(fh.0), |r, _| r.ok());
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.serve("release", reply, |_| self.fs.release(fh.0), |r, _| r.ok());
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(
            "fsync",
            reply,
            |_| self.fs.fsync(fh.0, datasync),
            |r, _| r.ok(),
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.serve(
            "opendir",
            reply,
            |_| self.fs.opendir(ino.0, flags.0),
            |r, fh| r.opened(FileHandle(fh), FopenFlags::FOPEN_CACHE_DIR),
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.serve(
            "readdir",
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
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.serve(
            "readdirplus",
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
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.serve(
            "releasedir",
            reply,
            |_| self.fs.releasedir(fh.0),
            |r, _| r.ok(),
        );
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve("fsyncdir", reply, |_| self.fs.getattr(ino.0), |r, _| r.ok());
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.serve(
            "statfs",
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
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.serve(
            "setxattr",
            reply,
            |_| self.fs.setxattr(ino.0, name.as_bytes(), value, flags),
            |r, _| r.ok(),
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.serve(
            "getxattr",
            reply,
            |_| self.fs.getxattr(ino.0, name.as_bytes()),
            |r, v| reply_sized(r, size, v),
        );
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.serve(
            "listxattr",
            reply,
            |_| self.fs.listxattr(ino.0),
            |r, v| reply_sized(r, size, v),
        );
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.serve(
            "removexattr",
            reply,
            |_| self.fs.removexattr(ino.0, name.as_bytes()),
            |r, _| r.ok(),
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.serve(
            "access",
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
            "create",
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
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.serve(
            "fallocate",
            reply,
            |_| self.fs.fallocate(fh.0, offset, length, mode),
            |r, _| r.ok(),
        );
    }

    /// memfs files are not terminals or devices: every ioctl (mostly isatty's TCGETS) is
    /// ENOTTY, as on tmpfs.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        self.serve(
            "ioctl",
            reply,
            |_| Err::<(), _>(fs::Errno::ENOTTY),
            |r, _| r.ioctl(0, &[]),
        );
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.serve(
            "lseek",
            reply,
            |_| self.fs.lseek(fh.0, offset, whence),
            |r, o| r.offset(o),
        );
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.serve(
            "copy_file_range",
            reply,
            |_| {
                let len = len.min(u32::MAX as u64);
                self.fs
                    .copy_file_range(fh_in.0, offset_in, fh_out.0, offset_out, len)
            },
            |r, n| r.written(n as u32),
        );
    }
}
