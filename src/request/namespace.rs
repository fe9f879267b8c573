//! Requests that change or resolve names: lookup, mknod, mkdir, symlink, link, create,
//! unlink, rmdir, rename.

use crate::fs::{Errno, RenameMode, Result};
use crate::trace::{Flags, Op};

use super::{Args, Context, Created, Entry, Request, Server};

pub struct Lookup<'a> {
    pub parent: u64,
    pub name: &'a [u8],
}

impl Request for Lookup<'_> {
    const OP: Op = Op::Lookup;
    type Reply = Entry;

    fn args(&self) -> Args<'_> {
        Args::name(self.parent, self.name)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Entry> {
        match server.core.lookup(self.parent, self.name) {
            Ok(attr) => Ok(server.entry(attr)),
            Err(Errno::ENOENT) => Ok(server.negative_entry()),
            Err(e) => Err(e),
        }
    }
}

pub struct Mknod<'a> {
    pub parent: u64,
    pub name: &'a [u8],
    pub mode: u32,
    pub rdev: u32,
}

impl Request for Mknod<'_> {
    const OP: Op = Op::Mknod;
    type Reply = Entry;

    fn args(&self) -> Args<'_> {
        Args {
            flags: Some(Flags::Mode(self.mode)),
            ..Args::name(self.parent, self.name)
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Entry> {
        let core = &server.core;
        let attr = core.mknod(self.parent, self.name, self.mode, self.rdev, ctx.caller())?;
        Ok(server.entry(attr))
    }
}

pub struct Mkdir<'a> {
    pub parent: u64,
    pub name: &'a [u8],
    pub mode: u32,
}

impl Request for Mkdir<'_> {
    const OP: Op = Op::Mkdir;
    type Reply = Entry;

    fn args(&self) -> Args<'_> {
        Args {
            flags: Some(Flags::Mode(self.mode)),
            ..Args::name(self.parent, self.name)
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Entry> {
        let attr = server
            .core
            .mkdir(self.parent, self.name, self.mode, ctx.caller())?;
        Ok(server.entry(attr))
    }
}

pub struct Symlink<'a> {
    pub parent: u64,
    pub name: &'a [u8],
    pub target: &'a [u8],
}

impl Request for Symlink<'_> {
    const OP: Op = Op::Symlink;
    type Reply = Entry;

    fn args(&self) -> Args<'_> {
        Args::name(self.parent, self.name)
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Entry> {
        let attr = server
            .core
            .symlink(self.parent, self.name, self.target, ctx.caller())?;
        Ok(server.entry(attr))
    }
}

pub struct Link<'a> {
    pub ino: u64,
    pub newparent: u64,
    pub newname: &'a [u8],
}

impl Request for Link<'_> {
    const OP: Op = Op::Link;
    type Reply = Entry;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            newparent: Some(self.newparent),
            newname: Some(self.newname),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Entry> {
        let attr = server.core.link(self.ino, self.newparent, self.newname)?;
        Ok(server.entry(attr))
    }
}

/// Makes and opens a regular file.
pub struct Create<'a> {
    pub parent: u64,
    pub name: &'a [u8],
    pub mode: u32,
    /// `open(2)` flags.
    pub flags: i32,
}

impl Request for Create<'_> {
    const OP: Op = Op::Create;
    type Reply = Created;

    fn args(&self) -> Args<'_> {
        Args {
            flags: Some(Flags::Open(self.flags)),
            ..Args::name(self.parent, self.name)
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Created> {
        let (attr, fh) =
            server
                .core
                .create(self.parent, self.name, self.mode, self.flags, ctx.caller())?;
        Ok(server.created(attr, fh))
    }
}

/// Makes and opens a regular file with no name (`open(O_TMPFILE)`).
pub struct TmpFile {
    pub parent: u64,
    pub mode: u32,
    /// `open(2)` flags.
    pub flags: i32,
}

impl Request for TmpFile {
    const OP: Op = Op::Tmpfile;
    type Reply = Created;

    fn args(&self) -> Args<'_> {
        Args {
            parent: Some(self.parent),
            flags: Some(Flags::Open(self.flags)),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Created> {
        let (attr, fh) = server
            .core
            .tmpfile(self.parent, self.mode, self.flags, ctx.caller())?;
        Ok(server.created(attr, fh))
    }
}

pub struct Unlink<'a> {
    pub parent: u64,
    pub name: &'a [u8],
}

impl Request for Unlink<'_> {
    const OP: Op = Op::Unlink;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args::name(self.parent, self.name)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server.core.unlink(self.parent, self.name)
    }
}

pub struct Rmdir<'a> {
    pub parent: u64,
    pub name: &'a [u8],
}

impl Request for Rmdir<'_> {
    const OP: Op = Op::Rmdir;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args::name(self.parent, self.name)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server.core.rmdir(self.parent, self.name)
    }
}

pub struct Rename<'a> {
    pub parent: u64,
    pub name: &'a [u8],
    pub newparent: u64,
    pub newname: &'a [u8],
    /// `renameat2(2)` flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`, `RENAME_WHITEOUT`).
    pub flags: u32,
}

impl Request for Rename<'_> {
    const OP: Op = Op::Rename;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            newparent: Some(self.newparent),
            newname: Some(self.newname),
            flags: Some(Flags::Rename(self.flags)),
            ..Args::name(self.parent, self.name)
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<()> {
        let known = libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE | libc::RENAME_WHITEOUT;
        if self.flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let mode = if self.flags & libc::RENAME_EXCHANGE != 0 {
            RenameMode::Exchange
        } else if self.flags & libc::RENAME_NOREPLACE != 0 {
            RenameMode::NoReplace
        } else {
            RenameMode::Replace
        };
        let whiteout = (self.flags & libc::RENAME_WHITEOUT != 0).then(|| ctx.caller());
        server.core.rename(
            self.parent,
            self.name,
            self.newparent,
            self.newname,
            mode,
            whiteout,
        )
    }
}
