//! One ring request in, one reply out: decodes a request from an entry's buffers into a
//! request of [`crate::request`], runs it through the same [`Server::call`] as the fuser
//! transport (errno mapping, panic handling, trace), and encodes the answer into the entry's
//! payload buffer.
//!
//! On a ring the kernel splits a request in three: the `fuse_in_header`, the op's fixed-size
//! argument struct (`op_in`, at most 128 bytes) and the rest (names, write data) in the
//! payload buffer. A reply is the error in the out header and the reply body alone in the
//! payload. The payload buffer carries both directions, so each op finishes reading its
//! arguments (the call's result owns its data) before it writes its reply.

use std::time::Duration;

use crate::fs::{self, Attr, DirEntry, Errno, SetAttr, SetTime};
use crate::request::{self as rq, Context, DirPlusSink, DirSink, Request, Server, Xattr};

use super::wire::{self, op, InHeader, Out, Reader};

/// Who may use the mount besides root's own requests: fuser's `SessionACL`, as memfs uses
/// it (only the mounting user, or everyone with `--allow-other`).
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub owner_uid: u32,
    pub allow_other: bool,
}

/// Decodes and serves ring requests.
pub struct Dispatcher {
    server: Server,
    access: Access,
}

/// A reply: 0 or a negative errno, and the length of the body written into the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub error: i32,
    pub len: usize,
}

impl Answer {
    pub fn errno(e: Errno) -> Answer {
        Answer {
            error: -e.0,
            len: 0,
        }
    }
}

/// Replies to requests too short for their op: what fuser answers to a request it cannot
/// parse.
const MALFORMED: Errno = Errno::EIO;

impl Dispatcher {
    pub fn new(server: Server, access: Access) -> Dispatcher {
        Dispatcher { server, access }
    }

    /// Whether a request from `uid` for `opcode` may run: fuser's check for a mount without
    /// allow_other, which lets through the ops the kernel may send on another's behalf.
    fn permitted(&self, uid: u32, opcode: u32) -> bool {
        self.access.allow_other
            || uid == self.access.owner_uid
            || matches!(
                opcode,
                op::DESTROY
                    | op::READ
                    | op::READDIR
                    | op::READDIRPLUS
                    | op::WRITE
                    | op::FSYNC
                    | op::FSYNCDIR
                    | op::RELEASE
                    | op::RELEASEDIR
            )
    }

    /// Whether the request is a READ or a WRITE of at least `least` bytes.
    pub fn is_bulk_of(h: &InHeader, arg: &[u8], least: u32) -> bool {
        if h.opcode != op::READ && h.opcode != op::WRITE {
            return false;
        }
        // fuse_read_in and fuse_write_in: fh, offset, then size.
        let mut a = Reader::new(arg);
        let size = a.skip(16).and_then(|()| a.u32());
        size.is_some_and(|n| n >= least)
    }

    /// Serves one request: `arg` is the op's argument struct, `payload` the entry's payload
    /// buffer whose first `payload_len` bytes hold the rest of the request.
    pub fn serve(
        &self,
        h: &InHeader,
        arg: &[u8],
        payload: &mut [u8],
        payload_len: usize,
    ) -> Answer {
        if !self.permitted(h.uid, h.opcode) {
            return Answer::errno(Errno::EACCES);
        }
        let payload_len = payload_len.min(payload.len());
        let ctx = Context {
            unique: h.unique,
            uid: h.uid,
            gid: h.gid,
            pid: h.pid,
        };
        match self.run(h, &ctx, arg, payload, payload_len) {
            Some(answer) => answer,
            None => Answer::errno(MALFORMED),
        }
    }

    fn call<R: Request>(&self, ctx: &Context, request: R) -> fs::Result<R::Reply> {
        self.server.call(ctx, request)
    }

    /// `None` when the request is too short for its op.
    fn run(
        &self,
        h: &InHeader,
        ctx: &Context,
        arg: &[u8],
        payload: &mut [u8],
        n: usize,
    ) -> Option<Answer> {
        let ino = h.nodeid;
        let mut a = Reader::new(arg);
        let answer = match h.opcode {
            op::LOOKUP => {
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    self.call(ctx, rq::Lookup { parent: ino, name })
                };
                reply(payload, result, |out, e| out.entry(&e))
            }
            op::GETATTR => {
                let flags = a.u32()?;
                a.skip(4)?;
                let fh = a.u64()?;
                let fh = (flags & wire::FUSE_GETATTR_FH != 0).then_some(fh);
                let result = self.call(ctx, rq::Getattr { ino, fh });
                reply(payload, result, |out, r| out.attr_out(&r.attr, r.ttl))
            }
            op::SETATTR => {
                let request = setattr(ino, &mut a)?;
                let result = self.call(ctx, request);
                reply(payload, result, |out, r| out.attr_out(&r.attr, r.ttl))
            }
            op::READLINK => {
                let result = self.call(ctx, rq::Readlink { ino });
                reply(payload, result, |out, t| out.bytes(&t))
            }
            op::SYMLINK => {
                let result = {
                    let mut p = Reader::new(&payload[..n]);
                    let name = p.name()?;
                    let target = p.name()?;
                    self.call(
                        ctx,
                        rq::Symlink {
                            parent: ino,
                            name,
                            target,
                        },
                    )
                };
                reply(payload, result, |out, e| out.entry(&e))
            }
            op::MKNOD => {
                let (mode, rdev) = (a.u32()?, a.u32()?);
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    self.call(
                        ctx,
                        rq::Mknod {
                            parent: ino,
                            name,
                            mode,
                            rdev,
                        },
                    )
                };
                reply(payload, result, |out, e| out.entry(&e))
            }
            op::MKDIR => {
                let mode = a.u32()?;
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    self.call(
                        ctx,
                        rq::Mkdir {
                            parent: ino,
                            name,
                            mode,
                        },
                    )
                };
                reply(payload, result, |out, e| out.entry(&e))
            }
            op::UNLINK | op::RMDIR => {
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    if h.opcode == op::UNLINK {
                        self.call(ctx, rq::Unlink { parent: ino, name })
                    } else {
                        self.call(ctx, rq::Rmdir { parent: ino, name })
                    }
                };
                reply(payload, result, |_, ()| {})
            }
            op::RENAME | op::RENAME2 => {
                let newparent = a.u64()?;
                let flags = if h.opcode == op::RENAME2 { a.u32()? } else { 0 };
                let result = {
                    let mut p = Reader::new(&payload[..n]);
                    let name = p.name()?;
                    let newname = p.name()?;
                    let request = rq::Rename {
                        parent: ino,
                        name,
                        newparent,
                        newname,
                        flags,
                    };
                    self.call(ctx, request)
                };
                reply(payload, result, |_, ()| {})
            }
            op::LINK => {
                let target = a.u64()?;
                let result = {
                    let newname = Reader::new(&payload[..n]).name()?;
                    let request = rq::Link {
                        ino: target,
                        newparent: ino,
                        newname,
                    };
                    self.call(ctx, request)
                };
                reply(payload, result, |out, e| out.entry(&e))
            }
            op::OPEN => {
                let (flags, open_flags) = (a.u32()?, a.u32()?);
                let request = rq::Open {
                    ino,
                    flags: flags as i32,
                    kill_suidgid: open_flags & wire::FUSE_OPEN_KILL_SUIDGID != 0,
                };
                reply(payload, self.call(ctx, request), |out, o| out.open(&o))
            }
            op::OPENDIR => {
                let flags = a.u32()? as i32;
                let result = self.call(ctx, rq::Opendir { ino, flags });
                reply(payload, result, |out, o| out.open(&o))
            }
            op::READ => {
                let (fh, offset, size) = (a.u64()?, a.u64()?, a.u32()?);
                let result = self.call(
                    ctx,
                    rq::Read {
                        ino,
                        fh,
                        offset,
                        size,
                    },
                );
                reply(payload, result, |out, bytes| {
                    for slice in bytes.slices() {
                        out.bytes(slice)
                    }
                })
            }
            op::WRITE => {
                let (fh, offset, size, write_flags) = (a.u64()?, a.u64()?, a.u32()?, a.u32()?);
                let result = {
                    let data = payload[..n].get(..size as usize)?;
                    let request = rq::Write {
                        ino,
                        fh,
                        offset,
                        data,
                        kill_suidgid: write_flags & wire::FUSE_WRITE_KILL_SUIDGID != 0,
                    };
                    self.call(ctx, request)
                };
                reply(payload, result, |out, written| {
                    out.u32(written);
                    out.u32(0);
                })
            }
            op::STATFS => {
                let result = self.call(ctx, rq::Statfs { ino });
                reply(payload, result, |out, s| out.statfs(&s))
            }
            op::RELEASE | op::RELEASEDIR | op::FLUSH => {
                let fh = a.u64()?;
                let result = match h.opcode {
                    op::RELEASE => self.call(ctx, rq::Release { ino, fh }).map(drop),
                    op::FLUSH => self.call(ctx, rq::Flush { ino, fh }).map(drop),
                    _ => self.call(ctx, rq::Releasedir { ino, fh }),
                };
                reply(payload, result, |_, ()| {})
            }
            op::FSYNC | op::FSYNCDIR => {
                let (fh, flags) = (a.u64()?, a.u32()?);
                let result = if h.opcode == op::FSYNC {
                    let datasync = flags & wire::FUSE_FSYNC_FDATASYNC != 0;
                    self.call(ctx, rq::Fsync { ino, fh, datasync }).map(drop)
                } else {
                    self.call(ctx, rq::Fsyncdir { ino, fh })
                };
                reply(payload, result, |_, ()| {})
            }
            op::SETXATTR => {
                let (size, flags) = (a.u32()?, a.u32()?);
                let result = {
                    let mut p = Reader::new(&payload[..n]);
                    let name = p.name()?;
                    let value = p.bytes(size as usize)?;
                    let request = rq::Setxattr {
                        ino,
                        name,
                        value,
                        flags: flags as i32,
                    };
                    self.call(ctx, request)
                };
                reply(payload, result, |_, ()| {})
            }
            op::GETXATTR => {
                let size = a.u32()?;
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    self.call(ctx, rq::Getxattr { ino, name, size })
                };
                reply(payload, result.and_then(|v| v.into_reply()), xattr)
            }
            op::LISTXATTR => {
                let size = a.u32()?;
                let result = self.call(ctx, rq::Listxattr { ino, size });
                reply(payload, result.and_then(|v| v.into_reply()), xattr)
            }
            op::REMOVEXATTR => {
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    self.call(ctx, rq::Removexattr { ino, name })
                };
                reply(payload, result, |_, ()| {})
            }
            op::ACCESS => {
                let mask = a.u32()? as i32;
                reply(
                    payload,
                    self.call(ctx, rq::Access { ino, mask }),
                    |_, ()| {},
                )
            }
            op::CREATE => {
                let (flags, mode) = (a.u32()?, a.u32()?);
                let result = {
                    let name = Reader::new(&payload[..n]).name()?;
                    let request = rq::Create {
                        parent: ino,
                        name,
                        mode,
                        flags: flags as i32,
                    };
                    self.call(ctx, request)
                };
                reply(payload, result, created)
            }
            op::TMPFILE => {
                // CREATE's arguments; the name after them is the kernel's placeholder.
                let (flags, mode) = (a.u32()?, a.u32()?);
                let request = rq::TmpFile {
                    parent: ino,
                    mode,
                    flags: flags as i32,
                };
                reply(payload, self.call(ctx, request), created)
            }
            op::READDIR | op::READDIRPLUS => {
                let (fh, offset, size) = (a.u64()?, a.u64()?, a.u32()?);
                let limit = (size as usize).min(payload.len());
                let mut out = Out::new(&mut payload[..limit]);
                let result = if h.opcode == op::READDIR {
                    let sink = &mut Listing(&mut out);
                    self.call(
                        ctx,
                        rq::Readdir {
                            ino,
                            fh,
                            offset,
                            sink,
                        },
                    )
                } else {
                    let sink = &mut Listing(&mut out);
                    self.call(
                        ctx,
                        rq::Readdirplus {
                            ino,
                            fh,
                            offset,
                            sink,
                        },
                    )
                };
                match result {
                    Ok(_) => Answer {
                        error: 0,
                        len: out.len(),
                    },
                    Err(e) => Answer::errno(e),
                }
            }
            op::FALLOCATE => {
                let (fh, offset, length, mode) = (a.u64()?, a.u64()?, a.u64()?, a.u32()?);
                let request = rq::Fallocate {
                    ino,
                    fh,
                    offset,
                    length,
                    mode: mode as i32,
                };
                reply(payload, self.call(ctx, request), |_, ()| {})
            }
            op::IOCTL => {
                let fh = a.u64()?;
                a.skip(4)?;
                let cmd = a.u32()?;
                let result = self.call(ctx, rq::Ioctl { ino, fh, cmd });
                // fuse_ioctl_out: result 0, no flags, no retry iovecs.
                reply(payload, result, |out, ()| {
                    out.u64(0);
                    out.u64(0);
                })
            }
            op::LSEEK => {
                let (fh, offset, whence) = (a.u64()?, a.u64()?, a.u32()?);
                let request = rq::Lseek {
                    ino,
                    fh,
                    offset: offset as i64,
                    whence: whence as i32,
                };
                reply(payload, self.call(ctx, request), |out, o| out.u64(o as u64))
            }
            op::COPY_FILE_RANGE => {
                let (fh_in, offset_in, ino_out) = (a.u64()?, a.u64()?, a.u64()?);
                let (fh_out, offset_out, len) = (a.u64()?, a.u64()?, a.u64()?);
                let request = rq::CopyFileRange {
                    ino_in: ino,
                    fh_in,
                    offset_in,
                    ino_out,
                    fh_out,
                    offset_out,
                    len,
                };
                reply(payload, self.call(ctx, request), |out, n| {
                    out.u32(n);
                    out.u32(0);
                })
            }
            // Without a block device the kernel sends no DESTROY; were it to, nothing is left
            // to do: fuser's session records the end.
            op::DESTROY => Answer { error: 0, len: 0 },
            _ => Answer::errno(Errno::ENOSYS),
        };
        Some(answer)
    }
}

/// Encodes `result` into the payload: its body through `write`, or its errno. A body that
/// does not fit the buffer (it cannot: the kernel sizes the buffer for the largest reply)
/// becomes EIO rather than a truncated reply.
fn reply<T>(payload: &mut [u8], result: fs::Result<T>, write: impl FnOnce(&mut Out, T)) -> Answer {
    match result {
        Ok(value) => {
            let mut out = Out::new(payload);
            write(&mut out, value);
            if out.overflowed() {
                return Answer::errno(Errno::EIO);
            }
            Answer {
                error: 0,
                len: out.len(),
            }
        }
        Err(e) => Answer::errno(e),
    }
}

/// A create's or tmpfile's answer: `fuse_entry_out` then `fuse_open_out`.
fn created(out: &mut Out, c: rq::Created) {
    out.entry(&c.entry);
    out.open(&c.opened);
}

fn xattr(out: &mut Out, x: Xattr) {
    match x {
        Xattr::Size(n) => {
            out.u32(n);
            out.u32(0);
        }
        Xattr::Data(bytes) => out.bytes(&bytes),
    }
}

/// `fuse_setattr_in` as a request.
fn setattr(ino: u64, a: &mut Reader) -> Option<rq::Setattr> {
    let valid = a.u32()?;
    a.skip(4)?;
    let fh = a.u64()?;
    let size = a.u64()?;
    a.skip(8)?; // lock_owner
    let (atime, mtime, ctime) = (a.u64()?, a.u64()?, a.u64()?);
    let (atime_ns, mtime_ns, ctime_ns) = (a.u32()?, a.u32()?, a.u32()?);
    let mode = a.u32()?;
    a.skip(4)?;
    let (uid, gid) = (a.u32()?, a.u32()?);
    let has = |bit| valid & bit != 0;
    let set_time = |bit, now_bit, secs, ns| {
        if has(now_bit) {
            Some(SetTime::Now)
        } else {
            has(bit).then(|| SetTime::At(wire::time(secs, ns)))
        }
    };
    Some(rq::Setattr {
        ino,
        fh: has(wire::FATTR_FH).then_some(fh),
        set: SetAttr {
            mode: has(wire::FATTR_MODE).then_some(mode),
            uid: has(wire::FATTR_UID).then_some(uid),
            gid: has(wire::FATTR_GID).then_some(gid),
            size: has(wire::FATTR_SIZE).then_some(size),
            atime: set_time(wire::FATTR_ATIME, wire::FATTR_ATIME_NOW, atime, atime_ns),
            mtime: set_time(wire::FATTR_MTIME, wire::FATTR_MTIME_NOW, mtime, mtime_ns),
            ctime: has(wire::FATTR_CTIME).then(|| wire::time(ctime, ctime_ns)),
        },
        kill_suidgid: has(wire::FATTR_KILL_SUIDGID),
    })
}

/// A directory listing written straight into the reply buffer.
struct Listing<'o, 'b>(&'o mut Out<'b>);

impl DirSink for Listing<'_, '_> {
    fn add(&mut self, e: &DirEntry) -> bool {
        !self.0.dirent(e, 0)
    }
}

impl DirPlusSink for Listing<'_, '_> {
    fn add(&mut self, e: &DirEntry, attr: &Attr, ttl: Duration) -> bool {
        let fits = self.0.room() >= wire::ENTRY_OUT_LEN + ((24 + e.name.len() + 7) & !7);
        if !fits {
            return true;
        }
        self.0.entry_of(attr, ttl, rq::GENERATION);
        !self.0.dirent(e, 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fs::{Fs, FsConfig, ROOT_INO};
    use crate::request::KernelOptions;
    use crate::router::Router;

    fn dispatcher(allow_other: bool) -> Dispatcher {
        let core = Router::new(Arc::new(Fs::new(FsConfig::default())));
        let server = Server::new(Arc::new(core), KernelOptions::default(), None);
        let access = Access {
            owner_uid: 0,
            allow_other,
        };
        Dispatcher::new(server, access)
    }

    fn header(opcode: u32, nodeid: u64, uid: u32, arg_len: usize, payload_len: usize) -> InHeader {
        InHeader {
            len: (wire::IN_HEADER_LEN + arg_len + payload_len) as u32,
            opcode,
            unique: 2,
            nodeid,
            uid,
            gid: 0,
            pid: 1,
        }
    }

    #[test]
    fn mkdir_lookup_getattr_and_readdir_answer_in_the_kernels_layouts() {
        let d = dispatcher(false);
        let mut payload = vec![0u8; 1 << 16];
        let mkdir_in = [0o755u32.to_ne_bytes(), 0u32.to_ne_bytes()].concat();
        payload[..4].copy_from_slice(b"dir\0");
        let h = header(op::MKDIR, ROOT_INO, 0, 8, 4);
        let made = d.serve(&h, &mkdir_in, &mut payload, 4);
        assert_eq!(
            made,
            Answer {
                error: 0,
                len: wire::ENTRY_OUT_LEN
            }
        );
        let ino = u64::from_ne_bytes(payload[..8].try_into().unwrap());
        assert_ne!(ino, 0);

        payload[..4].copy_from_slice(b"dir\0");
        let found = d.serve(&header(op::LOOKUP, ROOT_INO, 0, 0, 4), &[], &mut payload, 4);
        assert_eq!(found.len, wire::ENTRY_OUT_LEN);
        assert_eq!(u64::from_ne_bytes(payload[..8].try_into().unwrap()), ino);

        payload[..5].copy_from_slice(b"none\0");
        let missing = d.serve(&header(op::LOOKUP, ROOT_INO, 0, 0, 5), &[], &mut payload, 5);
        // A negative entry: node id 0, cacheable.
        assert_eq!(missing.error, 0);
        assert_eq!(u64::from_ne_bytes(payload[..8].try_into().unwrap()), 0);

        let attr = d.serve(
            &header(op::GETATTR, ino, 0, 16, 0),
            &[0; 16],
            &mut payload,
            0,
        );
        assert_eq!(attr.len, 104, "fuse_attr_out");
        let mode = u32::from_ne_bytes(payload[16 + 60..16 + 64].try_into().unwrap());
        assert_eq!(mode, libc::S_IFDIR | 0o755);

        let opened = d.serve(
            &header(op::OPENDIR, ROOT_INO, 0, 8, 0),
            &[0; 8],
            &mut payload,
            0,
        );
        // The kernel opens directories itself (see `request::dir::Opendir`).
        assert_eq!(opened.error, -libc::ENOSYS);
        let read_in = [
            0u64.to_ne_bytes(),
            0u64.to_ne_bytes(),
            4096u64.to_ne_bytes(),
        ]
        .concat();
        let listed = d.serve(
            &header(op::READDIR, ROOT_INO, 0, 24, 0),
            &read_in,
            &mut payload,
            0,
        );
        assert_eq!(listed.error, 0);
        let names: Vec<&[u8]> = {
            let mut names = Vec::new();
            let mut at = 0;
            while at < listed.len {
                let namelen = u32::from_ne_bytes(payload[at + 16..at + 20].try_into().unwrap());
                names.push(&payload[at + 24..at + 24 + namelen as usize]);
                at += (24 + namelen as usize + 7) & !7;
            }
            names
        };
        assert!(names.contains(&&b"dir"[..]), "{names:?}");
    }

    #[test]
    fn bulk_requests_are_reads_and_writes_of_at_least_the_size() {
        // fuse_read_in / fuse_write_in: fh, offset, size, then more.
        let arg = |size: u32| {
            [0u64.to_ne_bytes(), 0u64.to_ne_bytes()]
                .concat()
                .into_iter()
                .chain(size.to_ne_bytes())
                .chain([0u8; 20])
                .collect::<Vec<u8>>()
        };
        let is = |opcode, size| {
            Dispatcher::is_bulk_of(&header(opcode, ROOT_INO, 0, 40, 0), &arg(size), 256 << 10)
        };
        assert!(is(op::READ, 256 << 10) && is(op::WRITE, 1 << 20));
        assert!(!is(op::READ, 4096) && !is(op::WRITE, (256 << 10) - 1));
        assert!(!is(op::GETATTR, 1 << 20));
        // A struct cut short is not bulk.
        let h = header(op::READ, ROOT_INO, 0, 8, 0);
        assert!(!Dispatcher::is_bulk_of(&h, &[0u8; 8], 1));
    }

    #[test]
    fn short_unknown_and_foreign_requests_get_errnos() {
        let d = dispatcher(false);
        let mut payload = vec![0u8; 4096];
        // A GETATTR without its struct.
        let short = d.serve(
            &header(op::GETATTR, ROOT_INO, 0, 0, 0),
            &[],
            &mut payload,
            0,
        );
        assert_eq!(short.error, -MALFORMED.0);
        let unknown = d.serve(&header(4000, ROOT_INO, 0, 0, 0), &[], &mut payload, 0);
        assert_eq!(unknown.error, -libc::ENOSYS);
        // Another user on a mount without allow_other, as fuser refuses them.
        let foreign = d.serve(
            &header(op::GETATTR, ROOT_INO, 1000, 16, 0),
            &[0; 16],
            &mut payload,
            0,
        );
        assert_eq!(foreign.error, -libc::EACCES);
        let open = dispatcher(true);
        let allowed = open.serve(
            &header(op::GETATTR, ROOT_INO, 1000, 16, 0),
            &[0; 16],
            &mut payload,
            0,
        );
        assert_eq!(allowed.error, 0);
    }
}
