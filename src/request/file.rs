//! Requests on open files: open, read, write, flush, fsync, release, fallocate, lseek,
//! copy_file_range, ioctl.

use crate::fs::{Errno, ReadBytes, Result, SetidChange};
use crate::router::CopyEnd;
use crate::trace::{Flags, Op};

use super::{Args, Committed, Context, Opened, Request, Server};

pub struct Open {
    pub ino: u64,
    /// `open(2)` flags.
    pub flags: i32,
    /// The kernel asks memfs to clear setuid/setgid: an `O_TRUNC` open by a caller without
    /// `CAP_FSETID` (`FUSE_HANDLE_KILLPRIV_V2`).
    pub kill_suidgid: bool,
}

impl Request for Open {
    const OP: Op = Op::Open;
    type Reply = Opened;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            flags: Some(Flags::Open(self.flags)),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Opened> {
        if self.kill_suidgid {
            server.clear_setid(self.ino, SetidChange::Modify, ctx)?;
        }
        let fh = server.core.open(self.ino, self.flags)?;
        Ok(Opened {
            fh,
            flags: server.open_flags(self.ino),
        })
    }
}

pub struct Read {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
    pub size: u32,
}

impl Request for Read {
    const OP: Op = Op::Read;
    type Reply = ReadBytes;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset as i64),
            size: Some(self.size as u64),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<ReadBytes> {
        server.core.read(self.ino, self.fh, self.offset, self.size)
    }
}

pub struct Write<'a> {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
    pub data: &'a [u8],
    /// The kernel asks memfs to clear setuid/setgid: a write by a caller without
    /// `CAP_FSETID` (`FUSE_WRITE_KILL_SUIDGID`).
    pub kill_suidgid: bool,
}

impl Request for Write<'_> {
    const OP: Op = Op::Write;
    /// Bytes written.
    type Reply = u32;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset as i64),
            size: Some(self.data.len() as u64),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<u32> {
        if self.kill_suidgid {
            server.clear_setid(self.ino, SetidChange::Modify, ctx)?;
        }
        server.core.write(self.ino, self.fh, self.offset, self.data)
    }
}

pub struct Flush {
    pub ino: u64,
    pub fh: u64,
}

impl Request for Flush {
    const OP: Op = Op::Flush;
    type Reply = Committed;

    fn args(&self) -> Args<'_> {
        Args::handle(self.ino, self.fh)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Committed> {
        let version = server.core.flush(self.ino, self.fh)?;
        Ok(Committed { version })
    }
}

pub struct Release {
    pub ino: u64,
    pub fh: u64,
}

impl Request for Release {
    const OP: Op = Op::Release;
    type Reply = Committed;

    fn args(&self) -> Args<'_> {
        Args::handle(self.ino, self.fh)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Committed> {
        let version = server.core.release(self.ino, self.fh)?;
        Ok(Committed { version })
    }
}

pub struct Fsync {
    pub ino: u64,
    pub fh: u64,
    pub datasync: bool,
}

impl Request for Fsync {
    const OP: Op = Op::Fsync;
    type Reply = Committed;

    fn args(&self) -> Args<'_> {
        Args::handle(self.ino, self.fh)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Committed> {
        let version = server.core.fsync(self.ino, self.fh, self.datasync)?;
        Ok(Committed { version })
    }
}

pub struct Fallocate {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
    pub length: u64,
    /// `FALLOC_FL_*` flags.
    pub mode: i32,
}

impl Request for Fallocate {
    const OP: Op = Op::Fallocate;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset as i64),
            size: Some(self.length),
            flags: Some(Flags::Fallocate(self.mode)),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server
            .core
            .fallocate(self.ino, self.fh, self.offset, self.length, self.mode)
    }
}

/// memfs files are not terminals or devices: every ioctl (mostly isatty's TCGETS) is
/// ENOTTY, as on tmpfs.
pub struct Ioctl {
    pub ino: u64,
    pub fh: u64,
    pub cmd: u32,
}

impl Request for Ioctl {
    const OP: Op = Op::Ioctl;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            flags: Some(Flags::Ioctl(self.cmd)),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, _server: &Server, _ctx: &Context) -> Result<()> {
        Err(Errno::ENOTTY)
    }
}

pub struct Lseek {
    pub ino: u64,
    pub fh: u64,
    pub offset: i64,
    /// `SEEK_SET`, `SEEK_DATA`, ...
    pub whence: i32,
}

impl Request for Lseek {
    const OP: Op = Op::Lseek;
    /// The new offset.
    type Reply = i64;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset),
            flags: Some(Flags::Whence(self.whence)),
            ..Args::handle(self.ino, self.fh)
        }
    }

    /// The kernel sends SEEK_DATA/SEEK_HOLE without writing back the pages a writer left in
    /// its cache, so the file's end and data may lie beyond what the core has. While that may
    /// be so, the kernel is asked to write them back first; then the core's answer is exact.
    /// If it cannot be asked, the core answers coarsely (all data from the offset on).
    fn handle(self, server: &Server, _ctx: &Context) -> Result<i64> {
        let written_back = matches!(self.whence, libc::SEEK_DATA | libc::SEEK_HOLE)
            && server.core.may_cache_writes(self.ino, self.fh)
            && server
                .kernel
                .as_ref()
                .is_some_and(|kernel| kernel.write_back(self.ino));
        server
            .core
            .lseek(self.ino, self.fh, self.offset, self.whence, written_back)
    }
}

pub struct CopyFileRange {
    pub ino_in: u64,
    pub fh_in: u64,
    pub offset_in: u64,
    pub ino_out: u64,
    pub fh_out: u64,
    pub offset_out: u64,
    pub len: u64,
}

impl Request for CopyFileRange {
    const OP: Op = Op::CopyFileRange;
    /// Bytes copied.
    type Reply = u32;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset_in as i64),
            size: Some(self.len),
            flags: Some(Flags::CopyTo(self.ino_out, self.fh_out, self.offset_out)),
            ..Args::handle(self.ino_in, self.fh_in)
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<u32> {
        // The reply counts bytes in 32 bits: copy no more than it can say.
        let len = self.len.min(u32::MAX as u64);
        let from = CopyEnd {
            ino: self.ino_in,
            fh: self.fh_in,
            offset: self.offset_in,
        };
        let to = CopyEnd {
            ino: self.ino_out,
            fh: self.fh_out,
            offset: self.offset_out,
        };
        let copied = server.core.copy_file_range(from, to, len)?;
        Ok(copied as u32)
    }
}
