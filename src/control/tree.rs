//! What each control node shows: its attributes, its entries and its parent, read from the
//! core without taking kernel references on real inodes.
//!
//! ```text
//! .memfs/                       Control
//!   stats.json                  Stats
//!   fsck                        Fsck
//!   versions/                   Mirror(root)
//!     DIR/ ...                  Mirror(dir), one per real directory
//!     FILE/                     History(file), one per real regular file
//!       N                       Version(file, N), one per kept version
//!   snapshots/                  Snapshots
//!     NAME/...                  Snap(snapshot, node), the tree as it was (`snapshots`)
//! ```

use std::time::SystemTime;

use crate::fs::{Attr, Errno, FileKind, Fs, Result, ROOT_INO};

use super::nodes::Node;
use super::snapshots;

/// Where ".." of a control directory leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Parent {
    /// A real directory (the mount root, for `.memfs`).
    Real(u64),
    Control(Node),
}

/// A file's versions, with "not a regular file" read as "no such node".
pub(super) fn no_file_is_enoent(e: Errno) -> Errno {
    if e == Errno::ENODATA {
        Errno::ENOENT
    } else {
        e
    }
}

fn attr(fs: &Fs, kind: FileKind, size: u64, time: SystemTime) -> Attr {
    let (perm, nlink) = match kind {
        FileKind::Directory => (0o555, 2),
        _ => (0o444, 1),
    };
    Attr {
        // Set by the caller, which knows the node's number.
        ino: 0,
        kind,
        perm,
        nlink,
        uid: fs.config().uid,
        gid: fs.config().gid,
        rdev: 0,
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
    }
}

/// The attributes of `node`, numbered `ino`. ENOENT when what it shows is gone.
pub(super) fn attr_of(fs: &Fs, node: Node, ino: u64) -> Result<Attr> {
    let now = SystemTime::now();
    let mut a = match node {
        Node::Control => attr(fs, FileKind::Directory, 0, now),
        Node::Stats | Node::Fsck => attr(fs, FileKind::Regular, 0, now),
        Node::Mirror(dir) => {
            let real = fs.getattr(dir)?;
            if real.kind != FileKind::Directory {
                return Err(Errno::ENOENT);
            }
            attr(fs, FileKind::Directory, 0, real.mtime)
        }
        Node::History(file) => {
            let real = fs.getattr(file)?;
            if real.kind != FileKind::Regular {
                return Err(Errno::ENOENT);
            }
            attr(fs, FileKind::Directory, 0, real.mtime)
        }
        Node::Version(file, n) => {
            let v = fs.version_stat(file, n).map_err(no_file_is_enoent)?;
            attr(fs, FileKind::Regular, v.size, v.time)
        }
        Node::Snapshots => snapshots::dir_attr(fs, attr(fs, FileKind::Directory, 0, now)),
        Node::Snap(snap, id) => snapshots::attr_of(fs, snap, id)?,
    };
    a.ino = ino;
    Ok(a)
}

/// The node named `name` in directory `node` (not yet checked to exist: see [`attr_of`]).
pub(super) fn child(fs: &Fs, node: Node, name: &[u8]) -> Result<Node> {
    match node {
        // One entry of the mirrored directory, not a listing of all of them.
        Node::Mirror(dir) => {
            let (ino, kind) = fs.peek_entry(dir, name)?;
            match kind {
                FileKind::Directory => Ok(Node::Mirror(ino)),
                FileKind::Regular => Ok(Node::History(ino)),
                _ => Err(Errno::ENOENT),
            }
        }
        Node::History(file) => {
            let n: u64 = std::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|n: &u64| n.to_string().as_bytes() == name)
                .ok_or(Errno::ENOENT)?;
            Ok(Node::Version(file, n))
        }
        Node::Snapshots | Node::Snap(..) => snapshots::child(fs, node, name),
        _ => entries(fs, node)?
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, child, _)| child)
            .ok_or(Errno::ENOENT),
    }
}

/// The entries of directory `node`: name, node, kind. ENOTDIR for a file.
pub(super) fn entries(fs: &Fs, node: Node) -> Result<Vec<(Vec<u8>, Node, FileKind)>> {
    match node {
        Node::Control => Ok(vec![
            (b"stats.json".to_vec(), Node::Stats, FileKind::Regular),
            (b"fsck".to_vec(), Node::Fsck, FileKind::Regular),
            (
                b"versions".to_vec(),
                Node::Mirror(ROOT_INO),
                FileKind::Directory,
            ),
            (b"snapshots".to_vec(), Node::Snapshots, FileKind::Directory),
        ]),
        Node::Snapshots | Node::Snap(..) => snapshots::entries(fs, node),
        Node::Mirror(dir) => {
            let mut out = Vec::new();
            // From cookie 2: past "." and "..".
            fs.readdir(dir, 2, |e| {
                match e.kind {
                    FileKind::Directory => {
                        out.push((e.name.clone(), Node::Mirror(e.ino), e.kind));
                    }
                    FileKind::Regular => {
                        out.push((e.name.clone(), Node::History(e.ino), FileKind::Directory));
                    }
                    _ => {}
                }
                false
            })?;
            Ok(out)
        }
        Node::History(file) => Ok(fs
            .version_stats(file)
            .map_err(no_file_is_enoent)?
            .into_iter()
            .map(|v| {
                (
                    v.number.to_string().into_bytes(),
                    Node::Version(file, v.number),
                    FileKind::Regular,
                )
            })
            .collect()),
        Node::Stats | Node::Fsck | Node::Version(..) => Err(Errno::ENOTDIR),
    }
}

/// Up to `max` entries of directory `node` after the first `skip`.
pub(super) fn entries_window(
    fs: &Fs,
    node: Node,
    skip: usize,
    max: usize,
) -> Result<Vec<(Vec<u8>, Node, FileKind)>> {
    match node {
        Node::Snap(..) => snapshots::entries_window(fs, node, skip, max),
        _ => Ok(entries(fs, node)?
            .into_iter()
            .skip(skip)
            .take(max)
            .collect()),
    }
}

/// Where ".." of directory `node` leads. A file's versions lead back to `versions` itself,
/// as they always have.
pub(super) fn parent(fs: &Fs, node: Node) -> Parent {
    match node {
        Node::Mirror(ROOT_INO) => Parent::Control(Node::Control),
        Node::Mirror(dir) => fs
            .parent_of(dir)
            .map_or(Parent::Control(Node::Control), |p| {
                Parent::Control(Node::Mirror(p))
            }),
        Node::History(_) => Parent::Control(Node::Mirror(ROOT_INO)),
        Node::Snapshots => Parent::Control(Node::Control),
        Node::Snap(snap, id) => snapshots::parent(fs, snap, id),
        _ => Parent::Real(ROOT_INO),
    }
}
