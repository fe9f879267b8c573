//! `.memfs/snapshots`: one directory per whole-tree snapshot, showing the tree as it was,
//! read-only. `mkdir .memfs/snapshots/NAME` takes one (as ZFS's `.zfs/snapshot` does),
//! `rmdir` deletes it; nothing else below changes (EROFS). Each node has the attributes it
//! had, its own descendant count (`user.memfs.descendants`) and its Merkle hash
//! (`user.memfs.hash`).

use crate::fs::snapshot::NodeId;
use crate::fs::{hash_hex, Attr, Errno, FileKind, Fs, Result, DESCENDANTS_XATTR, HASH_XATTR};

use super::nodes::Node;
use super::tree::Parent;

/// The attributes of snapshot node `id` of snapshot `snap`. ENOENT once it is deleted.
pub(super) fn attr_of(fs: &Fs, snap: u64, id: NodeId) -> Result<Attr> {
    Ok(fs.snapshot_by_id(snap)?.node(id)?.attr().clone())
}

/// The attributes of `.memfs/snapshots`: writable by the owner (a mkdir there takes a
/// snapshot), changed when the newest snapshot was taken.
pub(super) fn dir_attr(fs: &Fs, base: Attr) -> Attr {
    let newest = fs
        .snapshot_list()
        .iter()
        .map(|s| s.created())
        .max()
        .unwrap_or(base.mtime);
    Attr {
        perm: 0o755,
        mtime: newest,
        ctime: newest,
        ..base
    }
}

/// The entries of `.memfs/snapshots` or of a snapshot directory.
pub(super) fn entries(fs: &Fs, node: Node) -> Result<Vec<(Vec<u8>, Node, FileKind)>> {
    match node {
        Node::Snapshots => Ok(fs
            .snapshot_list()
            .iter()
            .map(|s| {
                (
                    s.name().to_vec(),
                    Node::Snap(s.id(), 0),
                    FileKind::Directory,
                )
            })
            .collect()),
        Node::Snap(..) => entries_window(fs, node, 0, usize::MAX),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Up to `max` entries of a snapshot directory after the first `skip`, without listing the
/// rest.
pub(super) fn entries_window(
    fs: &Fs,
    node: Node,
    skip: usize,
    max: usize,
) -> Result<Vec<(Vec<u8>, Node, FileKind)>> {
    let Node::Snap(snap, id) = node else {
        return entries(fs, node);
    };
    let s = fs.snapshot_by_id(snap)?;
    let all = s.entries(id)?;
    all.get(skip.min(all.len())..)
        .unwrap_or_default()
        .iter()
        .take(max)
        .map(|(name, child)| {
            Ok((
                name.to_vec(),
                Node::Snap(snap, *child),
                s.node(*child)?.kind(),
            ))
        })
        .collect()
}

/// The node named `name` in `.memfs/snapshots` or in a snapshot directory.
pub(super) fn child(fs: &Fs, node: Node, name: &[u8]) -> Result<Node> {
    match node {
        Node::Snapshots => Ok(Node::Snap(fs.snapshot(name)?.id(), 0)),
        Node::Snap(snap, id) => Ok(Node::Snap(snap, fs.snapshot_by_id(snap)?.lookup(id, name)?)),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Where ".." of a snapshot directory leads.
pub(super) fn parent(fs: &Fs, snap: u64, id: NodeId) -> Parent {
    if id == 0 {
        return Parent::Control(Node::Snapshots);
    }
    match fs
        .snapshot_by_id(snap)
        .and_then(|s| Ok(s.node(id)?.parent()))
    {
        Ok(up) => Parent::Control(Node::Snap(snap, up)),
        Err(_) => Parent::Control(Node::Snapshots),
    }
}

/// The virtual attributes of a snapshot node: its hash, and a directory's count.
pub(super) fn getxattr(fs: &Fs, snap: u64, id: NodeId, name: &[u8]) -> Result<Vec<u8>> {
    let s = fs.snapshot_by_id(snap)?;
    let node = s.node(id)?;
    if name == HASH_XATTR {
        return Ok(hash_hex(node.hash()).into_bytes());
    }
    if name == DESCENDANTS_XATTR && node.kind() == FileKind::Directory {
        return Ok(node.descendants().to_string().into_bytes());
    }
    Err(Errno::ENODATA)
}
