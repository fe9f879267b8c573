//! What the handlers answer, as plain values a transport encodes into its own replies.

use std::time::{Duration, SystemTime};

use crate::fs::{Attr, DirEntry, Errno, FileKind, Result};

/// `fuse_open_out` flags, as the kernel's `fuse.h` numbers them.
pub const FOPEN_DIRECT_IO: u32 = 1 << 0;
pub const FOPEN_KEEP_CACHE: u32 = 1 << 1;
pub const FOPEN_CACHE_DIR: u32 = 1 << 3;

/// The generation of every inode: memfs never reuses an inode number within a mount.
pub const GENERATION: u64 = 0;

/// A name resolved to an inode (lookup, mknod, mkdir, symlink, link), or a negative entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub attr: Attr,
    /// How long the kernel may cache the name and the attributes.
    pub ttl: Duration,
    pub generation: u64,
}

impl Entry {
    /// "No such name", as an entry with node id 0, which the kernel caches for `ttl`.
    pub fn negative(ttl: Duration) -> Entry {
        Entry {
            attr: Attr {
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
            },
            ttl,
            generation: GENERATION,
        }
    }

    pub fn is_negative(&self) -> bool {
        self.attr.ino == 0
    }
}

/// An inode's attributes and how long the kernel may cache them (getattr, setattr).
#[derive(Clone, Debug, PartialEq)]
pub struct Attributes {
    pub attr: Attr,
    pub ttl: Duration,
}

/// A new file or directory handle and its `FOPEN_*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    pub flags: u32,
}

/// A file made and opened in one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub entry: Entry,
    pub opened: Opened,
}

/// What a flush, fsync or release did: the version it committed, if it committed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    pub version: Option<u64>,
}

/// An extended attribute's value (getxattr) or the list of names (listxattr), with the size
/// of the caller's buffer. [`XattrValue::into_reply`] decides the answer; the trace records
/// the value the core returned, whatever the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XattrValue {
    bytes: Vec<u8>,
    buffer: u32,
}

/// The answer to getxattr or listxattr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Xattr {
    /// The caller probed with an empty buffer: the size it needs.
    Size(u32),
    Data(Vec<u8>),
}

impl XattrValue {
    pub(super) fn new(bytes: Vec<u8>, buffer: u32) -> XattrValue {
        XattrValue { bytes, buffer }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The size when probed with 0, ERANGE when the caller's buffer is too small, else the
    /// bytes.
    pub fn into_reply(self) -> Result<Xattr> {
        if self.buffer == 0 {
            Ok(Xattr::Size(self.bytes.len() as u32))
        } else if self.bytes.len() > self.buffer as usize {
            Err(Errno::ERANGE)
        } else {
            Ok(Xattr::Data(self.bytes))
        }
    }
}

/// Where readdir puts entries: the transport's reply buffer.
pub trait DirSink {
    /// Adds one entry; true when the buffer is full and the entry did not fit.
    fn add(&mut self, entry: &DirEntry) -> bool;
}

/// Where readdirplus puts entries with their attributes.
pub trait DirPlusSink {
    /// Adds one entry, cacheable for `ttl`, with generation [`GENERATION`]; true when the
    /// buffer is full and the entry did not fit.
    fn add(&mut self, entry: &DirEntry, attr: &Attr, ttl: Duration) -> bool;
}
