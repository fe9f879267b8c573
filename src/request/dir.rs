//! Requests on open directories: opendir, readdir, readdirplus, releasedir, fsyncdir.

use crate::fs::{Errno, Result};
use crate::trace::{Flags, Op};

use super::{Args, Context, DirPlusSink, DirSink, Opened, Request, Server, FOPEN_CACHE_DIR};

pub struct Opendir {
    pub ino: u64,
    /// `open(2)` flags.
    pub flags: i32,
}

impl Request for Opendir {
    const OP: Op = Op::Opendir;
    type Reply = Opened;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            flags: Some(Flags::Open(self.flags)),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Opened> {
        // memfs keeps nothing per open directory (a listing goes by cookie), so with the
        // kernel's caches kept it needs no opendir at all. ENOSYS tells the kernel to open
        // every directory itself from now on, with its listing cached and kept
        // (`FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE`), and to send neither opendir nor
        // releasedir: two round trips fewer per directory a walk or `rm -r` opens.
        // `.memfs` listings, which change behind the kernel, are dropped once served
        // (`Server::listed`).
        if server.options.keep_cache {
            return Err(Errno::ENOSYS);
        }
        // `--no-keep-cache`: the kernel caches a listing while the directory is open and
        // drops it at the next open.
        let fh = server.core.opendir(self.ino, self.flags)?;
        Ok(Opened {
            fh,
            flags: FOPEN_CACHE_DIR,
        })
    }
}

/// Lists a directory from the cookie `offset` into the transport's buffer.
pub struct Readdir<'s, S> {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
    pub sink: &'s mut S,
}

/// What a readdir or readdirplus put in the transport's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub entries: u32,
}

impl<S: DirSink> Request for Readdir<'_, S> {
    const OP: Op = Op::Readdir;
    type Reply = Listed;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset as i64),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Listed> {
        let sink = self.sink;
        let mut entries = 0;
        server.core.readdir(self.ino, self.offset, |e| {
            let full = sink.add(e);
            entries += u32::from(!full);
            full
        })?;
        server.listed(self.ino, entries);
        Ok(Listed { entries })
    }
}

/// Lists a directory with each entry's attributes.
pub struct Readdirplus<'s, S> {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
    pub sink: &'s mut S,
}

impl<S: DirPlusSink> Request for Readdirplus<'_, S> {
    const OP: Op = Op::Readdirplus;
    type Reply = Listed;

    fn args(&self) -> Args<'_> {
        Args {
            offset: Some(self.offset as i64),
            ..Args::handle(self.ino, self.fh)
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Listed> {
        let sink = self.sink;
        let mut entries = 0;
        server.core.readdirplus(self.ino, self.offset, |e, attr| {
            let full = sink.add(e, attr, server.attr_ttl(e.ino));
            entries += u32::from(!full);
            full
        })?;
        server.listed(self.ino, entries);
        Ok(Listed { entries })
    }
}

pub struct Releasedir {
    pub ino: u64,
    pub fh: u64,
}

impl Request for Releasedir {
    const OP: Op = Op::Releasedir;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args::handle(self.ino, self.fh)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server.core.releasedir(self.ino, self.fh)
    }
}

/// Nothing to write out in memory; answers whether the directory still exists.
pub struct Fsyncdir {
    pub ino: u64,
    pub fh: u64,
}

impl Request for Fsyncdir {
    const OP: Op = Op::Fsyncdir;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args::handle(self.ino, self.fh)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server.core.getattr(self.ino).map(|_| ())
    }
}
