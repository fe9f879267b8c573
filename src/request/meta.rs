//! Requests about an inode's metadata: attributes, symlink targets, extended attributes,
//! permission checks, and the file system's numbers.

use crate::fs::{Result, SetAttr, SetidChange, StatFs};
use crate::trace::{Flags, Op};

use super::{Args, Attributes, Context, Request, Server, XattrValue};

pub struct Getattr {
    pub ino: u64,
    pub fh: Option<u64>,
}

impl Request for Getattr {
    const OP: Op = Op::Getattr;
    type Reply = Attributes;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            fh: self.fh,
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Attributes> {
        let attr = server.core.getattr(self.ino)?;
        Ok(Attributes {
            ttl: server.attr_ttl(attr.ino),
            attr,
        })
    }
}

pub struct Setattr {
    pub ino: u64,
    pub fh: Option<u64>,
    pub set: SetAttr,
    /// The kernel asks memfs to clear setuid/setgid along with this chown, or this truncate
    /// by a caller without `CAP_FSETID` (`FATTR_KILL_SUIDGID`).
    pub kill_suidgid: bool,
}

impl Request for Setattr {
    const OP: Op = Op::Setattr;
    type Reply = Attributes;

    fn args(&self) -> Args<'_> {
        Args::setattr(self.ino, self.fh, &self.set, self.kill_suidgid)
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<Attributes> {
        if self.kill_suidgid {
            // Before the change: a chown's rule looks at the group the file is leaving.
            let change = if self.set.uid.is_some() || self.set.gid.is_some() {
                SetidChange::Chown
            } else {
                SetidChange::Modify
            };
            server.clear_setid(self.ino, change, ctx)?;
        }
        let attr = server.core.setattr(self.ino, &self.set)?;
        Ok(Attributes {
            attr,
            ttl: server.options.ttl,
        })
    }
}

pub struct Readlink {
    pub ino: u64,
}

impl Request for Readlink {
    const OP: Op = Op::Readlink;
    /// The target.
    type Reply = Vec<u8>;

    fn args(&self) -> Args<'_> {
        Args::ino(self.ino)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<Vec<u8>> {
        server.core.readlink(self.ino)
    }
}

pub struct Statfs {
    pub ino: u64,
}

impl Request for Statfs {
    const OP: Op = Op::Statfs;
    type Reply = StatFs;

    fn args(&self) -> Args<'_> {
        Args::ino(self.ino)
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<StatFs> {
        Ok(server.core.statfs())
    }
}

pub struct Setxattr<'a> {
    pub ino: u64,
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// `XATTR_CREATE` / `XATTR_REPLACE`.
    pub flags: i32,
}

impl Request for Setxattr<'_> {
    const OP: Op = Op::Setxattr;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            name: Some(self.name),
            size: Some(self.value.len() as u64),
            flags: Some(Flags::Xattr(self.flags)),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server
            .core
            .setxattr(self.ino, self.name, self.value, self.flags)
    }
}

pub struct Getxattr<'a> {
    pub ino: u64,
    pub name: &'a [u8],
    /// The caller's buffer; 0 asks for the size.
    pub size: u32,
}

impl Request for Getxattr<'_> {
    const OP: Op = Op::Getxattr;
    type Reply = XattrValue;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            name: Some(self.name),
            size: Some(self.size as u64),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<XattrValue> {
        let value = server.core.getxattr(self.ino, self.name)?;
        Ok(XattrValue::new(value, self.size))
    }
}

pub struct Listxattr {
    pub ino: u64,
    /// The caller's buffer; 0 asks for the size.
    pub size: u32,
}

impl Request for Listxattr {
    const OP: Op = Op::Listxattr;
    type Reply = XattrValue;

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            size: Some(self.size as u64),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<XattrValue> {
        let names = server.core.listxattr(self.ino)?;
        Ok(XattrValue::new(names, self.size))
    }
}

pub struct Removexattr<'a> {
    pub ino: u64,
    pub name: &'a [u8],
}

impl Request for Removexattr<'_> {
    const OP: Op = Op::Removexattr;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            name: Some(self.name),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, _ctx: &Context) -> Result<()> {
        server.core.removexattr(self.ino, self.name)
    }
}

pub struct Access {
    pub ino: u64,
    /// `R_OK | W_OK | X_OK`, or `F_OK`.
    pub mask: i32,
}

impl Request for Access {
    const OP: Op = Op::Access;
    type Reply = ();

    fn args(&self) -> Args<'_> {
        Args {
            ino: Some(self.ino),
            flags: Some(Flags::Access(self.mask)),
            ..Args::default()
        }
    }

    fn handle(self, server: &Server, ctx: &Context) -> Result<()> {
        server.core.access(self.ino, self.mask, ctx.caller())
    }
}
