//! Tracing as a layer: what a request's arguments and its reply put in its trace record.
//! [`super::Server::call`] is the one place that records; the handlers know nothing of it.

use crate::fs::StatFs;
use crate::trace::{Flags, Name, Op, Outcome, Queued, Record};

use super::{Attributes, Committed, Context, Created, Entry, Opened, XattrValue};

/// A request's arguments as its trace record shows them. Each request fills what it has.
#[derive(Default, Clone, Copy)]
pub struct Args<'a> {
    pub ino: Option<u64>,
    pub parent: Option<u64>,
    pub name: Option<&'a [u8]>,
    pub newparent: Option<u64>,
    pub newname: Option<&'a [u8]>,
    pub fh: Option<u64>,
    pub offset: Option<i64>,
    pub size: Option<u64>,
    pub flags: Option<Flags>,
}

impl Args<'_> {
    pub fn ino(ino: u64) -> Self {
        Args {
            ino: Some(ino),
            ..Args::default()
        }
    }

    pub fn handle(ino: u64, fh: u64) -> Self {
        Args {
            ino: Some(ino),
            fh: Some(fh),
            ..Args::default()
        }
    }

    pub fn name(parent: u64, name: &[u8]) -> Args<'_> {
        Args {
            parent: Some(parent),
            name: Some(name),
            ..Args::default()
        }
    }
}

/// A record of a request's arguments, made before it runs. The caller sets times and
/// result. Without a context (destroy), the caller fields stay empty.
pub fn record(ctx: Option<&Context>, op: Op, args: Args) -> Queued {
    Record {
        unique: ctx.map_or(0, |c| c.unique),
        t_ns: 0,
        dur_ns: 0,
        op,
        ino: args.ino,
        parent: args.parent,
        name: args.name.map(Name::new),
        newparent: args.newparent,
        newname: args.newname.map(Name::new),
        fh: args.fh,
        pid: ctx.map(|c| c.pid),
        uid: ctx.map(|c| c.uid),
        gid: ctx.map(|c| c.gid),
        offset: args.offset,
        size: args.size,
        flags: args.flags,
        result: Outcome::Ok,
        bytes: None,
        version: None,
    }
}

/// What a reply adds to its request's trace record.
pub trait Noted {
    fn note(&self, _record: &mut Queued) {}
}

impl Noted for () {}
impl Noted for i64 {}
impl Noted for StatFs {}

/// A negative entry names no inode.
impl Noted for Entry {
    fn note(&self, record: &mut Queued) {
        if !self.is_negative() {
            record.ino = Some(self.attr.ino);
        }
    }
}

impl Noted for Attributes {
    fn note(&self, record: &mut Queued) {
        record.ino = Some(self.attr.ino);
    }
}

impl Noted for Created {
    fn note(&self, record: &mut Queued) {
        record.ino = Some(self.entry.attr.ino);
        record.fh = Some(self.opened.fh);
    }
}

impl Noted for Opened {
    fn note(&self, record: &mut Queued) {
        record.fh = Some(self.fh);
    }
}

/// Bytes transferred.
impl Noted for Vec<u8> {
    fn note(&self, record: &mut Queued) {
        record.bytes = Some(self.len() as u64);
    }
}

/// The whole value, whatever part of it the caller's buffer takes.
impl Noted for XattrValue {
    fn note(&self, record: &mut Queued) {
        record.bytes = Some(self.len() as u64);
    }
}

/// Bytes written.
impl Noted for u32 {
    fn note(&self, record: &mut Queued) {
        record.bytes = Some(*self as u64);
    }
}

/// The version a flush, fsync or release committed.
impl Noted for Committed {
    fn note(&self, record: &mut Queued) {
        record.version = self.version;
    }
}
