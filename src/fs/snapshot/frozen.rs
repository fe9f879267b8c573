//! One snapshot: a frozen copy of the namespace as it was, node by node, in breadth-first
//! order (so every child comes after its directory). Files hold their recipe (`Arc`), which
//! holds a counted reference per chunk: no content is copied, and the chunks stay in the
//! store, whatever the live tree and its versions do, until the snapshot is deleted.

use std::sync::Arc;
use std::time::SystemTime;

use rayon::prelude::*;

use crate::fs::attr::{Attr, FileKind};
use crate::fs::error::{Errno, Result};
use crate::fs::namespace::merkle::{recipe_hash, special_hash, symlink_hash, DirHasher, Hash};
use crate::fs::ReadBytes;
use crate::store::RecipeRef;

/// Where a node is in its snapshot; the root is 0.
pub type NodeId = u32;

/// A directory entry of a snapshot: its name and node.
pub type Entry = (Arc<[u8]>, NodeId);

/// What a frozen node holds.
#[derive(Debug)]
pub(super) enum Body {
    File(RecipeRef),
    /// Entries sorted by name.
    Dir(Vec<Entry>),
    Symlink(Box<[u8]>),
    Special,
}

/// A node of a snapshot: its attributes as they were (`ino` is the live inode's number
/// then), its place, its counts and its Merkle hash.
#[derive(Debug)]
pub struct Node {
    attr: Attr,
    parent: NodeId,
    descendants: u64,
    hash: Hash,
    pub(super) body: Body,
}

impl Node {
    pub(super) fn new(attr: Attr, parent: NodeId, body: Body) -> Node {
        Node {
            attr,
            parent,
            descendants: 0,
            hash: [0; 32],
            body,
        }
    }

    pub fn attr(&self) -> &Attr {
        &self.attr
    }

    pub fn kind(&self) -> FileKind {
        self.attr.kind
    }

    /// The directory that holds this node (the root holds itself).
    pub fn parent(&self) -> NodeId {
        self.parent
    }

    /// Directories: entries below, recursively.
    pub fn descendants(&self) -> u64 {
        self.descendants
    }

    pub fn hash(&self) -> &Hash {
        &self.hash
    }
}

/// A snapshot of the whole tree.
#[derive(Debug)]
pub struct Snapshot {
    id: u64,
    name: Box<[u8]>,
    created: SystemTime,
    nodes: Vec<Node>,
    /// What it is charged against the memory cap (its chunks count in the store).
    cost: u64,
}

impl Snapshot {
    /// A snapshot of `nodes` (breadth-first, root first); computes counts and hashes.
    pub(super) fn new(id: u64, name: &[u8], mut nodes: Vec<Node>, cost: u64) -> Snapshot {
        // Files, symlinks and specials need nothing of the others: hashed in parallel.
        nodes.par_iter_mut().for_each(|node| {
            node.hash = match &node.body {
                Body::File(recipe) => recipe_hash(recipe),
                Body::Symlink(target) => symlink_hash(target),
                Body::Special => special_hash(node.attr.kind, node.attr.rdev),
                Body::Dir(_) => return,
            };
        });
        // Children come after their parents, so one backward pass sees every child first.
        for i in (0..nodes.len()).rev() {
            let Body::Dir(entries) = &nodes[i].body else {
                continue;
            };
            let mut h = DirHasher::default();
            let mut count = 0u64;
            for (name, child) in entries {
                let c = &nodes[*child as usize];
                h.add(name, c.attr.kind, c.attr.perm, &c.hash);
                count += 1 + c.descendants;
            }
            nodes[i].hash = h.finish();
            nodes[i].descendants = count;
        }
        Snapshot {
            id,
            name: name.into(),
            created: SystemTime::now(),
            nodes,
            cost,
        }
    }

    /// A number no other snapshot of this file system had.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn name(&self) -> &[u8] {
        &self.name
    }

    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// Bytes charged against the memory cap for its metadata.
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Nodes it holds (the root included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(id as usize).ok_or(Errno::ENOENT)
    }

    /// The entries of directory `dir`, sorted by name.
    pub fn entries(&self, dir: NodeId) -> Result<&[Entry]> {
        match &self.node(dir)?.body {
            Body::Dir(entries) => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The node named `name` in directory `dir`.
    pub fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<NodeId> {
        let entries = self.entries(dir)?;
        entries
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .map(|i| entries[i].1)
            .map_err(|_| Errno::ENOENT)
    }

    /// The recipe of file `id`.
    pub fn recipe(&self, id: NodeId) -> Result<&RecipeRef> {
        match &self.node(id)?.body {
            Body::File(recipe) => Ok(recipe),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Up to `size` bytes of file `id` from `offset`.
    pub fn read(&self, id: NodeId, offset: u64, size: u32) -> Result<ReadBytes> {
        ReadBytes::of_recipe(self.recipe(id)?, offset, size.into())
    }

    /// The target of symlink `id`.
    pub fn readlink(&self, id: NodeId) -> Result<&[u8]> {
        match &self.node(id)?.body {
            Body::Symlink(target) => Ok(target),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Every recipe it holds (for the store check).
    pub fn recipes(&self) -> impl Iterator<Item = &RecipeRef> {
        self.nodes.iter().filter_map(|n| match &n.body {
            Body::File(r) => Some(r),
            _ => None,
        })
    }
}
