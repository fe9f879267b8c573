//! The FUSE wire format, as far as the ring transport needs it: the request header, a reader
//! over the little structs that follow it, and the writers of the replies memfs sends. The
//! layouts are the kernel's `include/uapi/linux/fuse.h` (ABI 7.x, native byte order).

use std::time::{Duration, SystemTime};

use crate::fs::{Attr, DirEntry, FileKind, StatFs};
use crate::request::{Entry, Opened};

/// Opcodes memfs serves on the rings (the rest are answered ENOSYS, as fuser does).
pub mod op {
    pub const LOOKUP: u32 = 1;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const ACCESS: u32 = 34;
    pub const CREATE: u32 = 35;
    pub const DESTROY: u32 = 38;
    pub const IOCTL: u32 = 39;
    pub const FALLOCATE: u32 = 43;
    pub const READDIRPLUS: u32 = 44;
    pub const RENAME2: u32 = 45;
    pub const LSEEK: u32 = 46;
    pub const COPY_FILE_RANGE: u32 = 47;
    pub const TMPFILE: u32 = 51;
}

/// `fuse_in_header`.
pub const IN_HEADER_LEN: usize = 40;
/// `fuse_entry_out`: node id, generation, two validities, then `fuse_attr`.
pub const ENTRY_OUT_LEN: usize = 40 + ATTR_LEN;
const ATTR_LEN: usize = 88;

pub const FATTR_MODE: u32 = 1 << 0;
pub const FATTR_UID: u32 = 1 << 1;
pub const FATTR_GID: u32 = 1 << 2;
pub const FATTR_SIZE: u32 = 1 << 3;
pub const FATTR_ATIME: u32 = 1 << 4;
pub const FATTR_MTIME: u32 = 1 << 5;
pub const FATTR_FH: u32 = 1 << 6;
pub const FATTR_ATIME_NOW: u32 = 1 << 7;
pub const FATTR_MTIME_NOW: u32 = 1 << 8;
pub const FATTR_CTIME: u32 = 1 << 10;
pub const FATTR_KILL_SUIDGID: u32 = 1 << 11;
pub const FUSE_GETATTR_FH: u32 = 1 << 0;
pub const FUSE_OPEN_KILL_SUIDGID: u32 = 1 << 0;
pub const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;
pub const FUSE_FSYNC_FDATASYNC: u32 = 1 << 0;

/// `fuse_in_header`: who asks what about which node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InHeader {
    /// Header and arguments together, in bytes.
    pub len: u32,
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl InHeader {
    pub fn parse(bytes: &[u8]) -> Option<InHeader> {
        let mut r = Reader::new(bytes);
        Some(InHeader {
            len: r.u32()?,
            opcode: r.u32()?,
            unique: r.u64()?,
            nodeid: r.u64()?,
            uid: r.u32()?,
            gid: r.u32()?,
            pid: r.u32()?,
        })
    }
}

/// Reads a request's fields in order; `None` once the bytes run out (a short request).
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.bytes(4)?.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.bytes(8)?.try_into().ok()?))
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// A NUL-terminated name, without its NUL.
    pub fn name(&mut self) -> Option<&'a [u8]> {
        let end = self.bytes.iter().position(|&b| b == 0)?;
        let name = &self.bytes[..end];
        self.bytes = &self.bytes[end + 1..];
        Some(name)
    }
}

/// A time from the wire: seconds (signed) and nanoseconds forward from them.
pub fn time(secs: u64, nsecs: u32) -> SystemTime {
    let secs = secs as i64;
    let base = if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    base + Duration::from_nanos(u64::from(nsecs.min(999_999_999)))
}

/// A time for the wire: whole seconds rounded down and the nanoseconds past them.
fn wire_time(t: SystemTime) -> (u64, u32) {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_secs(), d.subsec_nanos()),
        Err(e) => {
            let before = e.duration();
            if before.subsec_nanos() == 0 {
                ((before.as_secs() as i64).wrapping_neg() as u64, 0)
            } else {
                (
                    (before.as_secs() as i64 + 1).wrapping_neg() as u64,
                    1_000_000_000 - before.subsec_nanos(),
                )
            }
        }
    }
}

/// Where a reply is written: the entry's payload buffer. Writes past its end are dropped
/// and mark it overflowed, so a reply never runs outside the buffer.
pub struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflowed: bool,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut [u8]) -> Out<'a> {
        Out {
            buf,
            len: 0,
            overflowed: false,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    pub fn bytes(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            None => self.overflowed = true,
        }
    }

    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_ne_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_ne_bytes());
    }

    fn zeros(&mut self, n: usize) {
        const Z: [u8; 8] = [0; 8];
        self.bytes(&Z[..n]);
    }

    /// `fuse_attr`.
    pub fn attr(&mut self, a: &Attr) {
        let (atime, atime_ns) = wire_time(a.atime);
        let (mtime, mtime_ns) = wire_time(a.mtime);
        let (ctime, ctime_ns) = wire_time(a.ctime);
        self.u64(a.ino);
        self.u64(a.size);
        self.u64(a.blocks);
        self.u64(atime);
        self.u64(mtime);
        self.u64(ctime);
        self.u32(atime_ns);
        self.u32(mtime_ns);
        self.u32(ctime_ns);
        self.u32(a.kind.mode_bits() | u32::from(a.perm));
        self.u32(a.nlink);
        self.u32(a.uid);
        self.u32(a.gid);
        self.u32(a.rdev);
        self.u32(4096); // blksize
        self.u32(0); // flags
    }

    /// `fuse_entry_out`.
    pub fn entry(&mut self, e: &Entry) {
        self.entry_of(&e.attr, e.ttl, e.generation);
    }

    /// `fuse_entry_out` from its parts; `ttl` is both the name's and the attributes'.
    pub fn entry_of(&mut self, attr: &Attr, ttl: Duration, generation: u64) {
        self.u64(attr.ino);
        self.u64(generation);
        self.u64(ttl.as_secs());
        self.u64(ttl.as_secs());
        self.u32(ttl.subsec_nanos());
        self.u32(ttl.subsec_nanos());
        self.attr(attr);
    }

    /// `fuse_attr_out`.
    pub fn attr_out(&mut self, a: &Attr, ttl: Duration) {
        self.u64(ttl.as_secs());
        self.u32(ttl.subsec_nanos());
        self.u32(0);
        self.attr(a);
    }

    /// `fuse_open_out`.
    pub fn open(&mut self, o: &Opened) {
        self.u64(o.fh);
        self.u32(o.flags);
        self.u32(0);
    }

    /// `fuse_kstatfs` (inside `fuse_statfs_out`).
    pub fn statfs(&mut self, s: &StatFs) {
        for v in [s.blocks, s.bfree, s.bavail, s.files, s.ffree] {
            self.u64(v);
        }
        for v in [s.bsize, s.namelen, s.frsize, 0, 0, 0, 0, 0, 0, 0] {
            self.u32(v);
        }
    }

    /// A `fuse_dirent` (after a `fuse_entry_out` for readdirplus) if `extra` more bytes and
    /// the entry fit; false (and nothing written) when they do not.
    pub fn dirent(&mut self, e: &DirEntry, extra: usize) -> bool {
        let len = 24 + e.name.len();
        let padded = (len + 7) & !7;
        if extra + padded > self.room() {
            return false;
        }
        self.u64(e.ino);
        self.u64(e.offset);
        self.u32(e.name.len() as u32);
        self.u32(dirent_type(e.kind));
        self.bytes(&e.name);
        self.zeros(padded - len);
        true
    }
}

/// `DT_*` of a kind, as `fuse_dirent.type` carries it.
fn dirent_type(kind: FileKind) -> u32 {
    kind.mode_bits() >> 12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_before_and_after_the_epoch() {
        for (secs, nsecs) in [(0i64, 0u32), (5, 7), (-1, 500_000_000), (-3, 0)] {
            let t = time(secs as u64, nsecs);
            assert_eq!(wire_time(t), (secs as u64, nsecs), "{secs}.{nsecs}");
        }
    }

    #[test]
    fn a_reply_never_writes_past_its_buffer() {
        let mut buf = [0u8; 6];
        let mut out = Out::new(&mut buf);
        out.u32(1);
        assert!(!out.overflowed());
        out.u32(2);
        assert!(out.overflowed());
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn header_parses_in_kernel_order() {
        let mut b = Vec::new();
        for v in [40u32, 1] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [9u64, 1] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [1000u32, 100, 42, 0] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        let h = InHeader::parse(&b).expect("header");
        assert_eq!(
            (h.opcode, h.unique, h.nodeid, h.uid, h.pid),
            (1, 9, 1, 1000, 42)
        );
    }
}
