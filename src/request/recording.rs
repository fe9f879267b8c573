//! Tracing as a layer: what a request's arguments and its reply put in its trace record.
//! [`super::Server::call`] is the one place that records; the handlers know nothing of it.

use std::time::SystemTime;

use crate::fs::{ReadBytes, SetAttr, SetTime, StatFs};
use crate::trace::flags::fattr;
use crate::trace::{Flags, Name, Op, Outcome, Queued, Record};

use super::{Attributes, Committed, Context, Created, Entry, Listed, Opened, XattrValue};

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
    /// setattr: what it sets.
    pub set: Option<&'a SetAttr>,
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

    /// A setattr's: the attributes it sets, named in `flags` as the kernel's `FATTR_*` bits,
    /// with their values.
    pub fn setattr(ino: u64, fh: Option<u64>, set: &SetAttr, kill_suidgid: bool) -> Args<'_> {
        let mut valid = 0;
        for (is_set, bit) in [
            (set.mode.is_some(), fattr::MODE),
            (set.uid.is_some(), fattr::UID),
            (set.gid.is_some(), fattr::GID),
            (set.size.is_some(), fattr::SIZE),
            (set.atime.is_some(), fattr::ATIME),
            (set.mtime.is_some(), fattr::MTIME),
            (fh.is_some(), fattr::FH),
            (set.atime == Some(SetTime::Now), fattr::ATIME_NOW),
            (set.mtime == Some(SetTime::Now), fattr::MTIME_NOW),
            (set.ctime.is_some(), fattr::CTIME),
            (kill_suidgid, fattr::KILL_SUIDGID),
        ] {
            if is_set {
                valid |= bit;
            }
        }
        Args {
            ino: Some(ino),
            fh,
            size: set.size,
            flags: Some(Flags::Setattr(valid)),
            set: Some(set),
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
    let set = args.set;
    let time = |t: Option<SetTime>| match t {
        Some(SetTime::At(t)) => Some(epoch_ns(t)),
        _ => None,
    };
    Record {
        unique: ctx.map_or(0, |c| c.unique),
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
        mode: set.and_then(|s| s.mode),
        set_uid: set.and_then(|s| s.uid),
        set_gid: set.and_then(|s| s.gid),
        atime_ns: time(set.and_then(|s| s.atime)),
        mtime_ns: time(set.and_then(|s| s.mtime)),
        ctime_ns: set.and_then(|s| s.ctime).map(epoch_ns),
        ..Record::new(op)
    }
}

/// Nanoseconds since the epoch, negative before it; saturates past the year 2262.
fn epoch_ns(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// What a reply adds to its request's trace record.
pub trait Noted {
    fn note(&self, _record: &mut Queued) {}
}

impl Noted for () {}
impl Noted for StatFs {}

/// The offset lseek answers.
impl Noted for i64 {
    fn note(&self, record: &mut Queued) {
        record.new_offset = Some(*self);
    }
}

/// A negative entry names no inode: the kernel is told "no such name", so the record says
/// ENOENT (the request itself succeeded, and the kernel caches the miss).
impl Noted for Entry {
    fn note(&self, record: &mut Queued) {
        if self.is_negative() {
            record.result = Outcome::Err(crate::fs::Errno::ENOENT);
            record.negative = true;
        } else {
            record.ino = Some(self.attr.ino);
            record.generation = Some(self.generation);
            record.attr_size = Some(self.attr.size);
        }
    }
}

impl Noted for Attributes {
    fn note(&self, record: &mut Queued) {
        record.ino = Some(self.attr.ino);
        record.attr_size = Some(self.attr.size);
    }
}

impl Noted for Created {
    fn note(&self, record: &mut Queued) {
        self.entry.note(record);
        self.opened.note(record);
    }
}

impl Noted for Opened {
    fn note(&self, record: &mut Queued) {
        record.fh = Some(self.fh);
        record.fopen = Some(Flags::Fopen(self.flags));
    }
}
/// Bytes transferred.
impl Noted for Vec<u8> {
    fn note(&self, record: &mut Queued) {
        record.bytes = Some(self.len() as u64);
    }
}

/// Bytes read.
impl Noted for ReadBytes {
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

/// The entries a readdir or readdirplus sent.
impl Noted for Listed {
    fn note(&self, record: &mut Queued) {
        record.entries = Some(self.entries);
    }
}

/// The version a flush, fsync or release committed.
impl Noted for Committed {
    fn note(&self, record: &mut Queued) {
        record.version = self.version;
    }
}
