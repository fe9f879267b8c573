//! Whole-tree snapshots (`Snapshots`, one frozen tree each in `frozen`) and the diff of two
//! snapshots by their Merkle hashes (`diff`).
//!
//! Taking one freezes the namespace (the exclusive tree lock: no namespace change runs
//! meanwhile) and copies every inode's attributes, a directory's entries and a file's
//! recipe `Arc`: a small constant per inode, no content copied. A file with uncommitted
//! writes is chunked as a commit would be (its current bytes, pending and live layers
//! included) without becoming a version; the snapshot holds that recipe. Writes to open
//! files go on meanwhile: each file is frozen whole, under its own lock.
//!
//! A snapshot's metadata is charged against the memory cap (`Budget::charge_snapshot`);
//! its chunks are in the store and count there. Dropping old versions for room never frees
//! a chunk a snapshot holds: the snapshot's recipes hold their own references.

mod diff;
mod frozen;

pub use diff::{diff, Change, ChangeKind, Diff};
pub use frozen::{Node, NodeId, Snapshot};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fs::error::{Errno, Result};
use crate::fs::namespace::check_name;
use crate::fs::namespace::inode::{attr_of, Body as LiveBody, Inode};
use crate::fs::namespace::merkle::MerkleMark;
use crate::fs::{Fs, ROOT_INO};
use crate::store::RecipeRef;
// Plain locks, not `crate::sync`'s: the registry is held briefly with no other lock, and
// the model check of the namespace does not take snapshots.
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use frozen::Body;

/// What one frozen node costs besides its name: the node (attributes, links, hash, body),
/// its slot in its directory's entry vector, and the header of its name's allocation,
/// which the snapshot keeps alive once the live entry goes.
pub const SNAPSHOT_NODE_BYTES: u64 =
    (std::mem::size_of::<Node>() + std::mem::size_of::<frozen::Entry>() + 16) as u64;
/// What a snapshot costs besides its nodes.
pub const SNAPSHOT_BYTES: u64 = 256;

/// A live inode a snapshot copied, with where its hash stood when it was read.
type LiveNode = (Arc<Inode>, MerkleMark);

/// A frozen copy of the tree: each node with its name's length, and the live inodes copied.
type Frozen = (Vec<(Node, usize)>, Vec<LiveNode>);

/// The snapshots of one file system, by name.
#[derive(Debug, Default)]
pub struct Snapshots {
    by_name: Mutex<BTreeMap<Box<[u8]>, Arc<Snapshot>>>,
    next_id: AtomicU64,
}

impl Snapshots {
    pub fn get(&self, name: &[u8]) -> Option<Arc<Snapshot>> {
        self.by_name.lock().get(name).cloned()
    }

    pub fn by_id(&self, id: u64) -> Option<Arc<Snapshot>> {
        self.by_name.lock().values().find(|s| s.id() == id).cloned()
    }

    /// Every snapshot, by name.
    pub fn all(&self) -> Vec<Arc<Snapshot>> {
        self.by_name.lock().values().cloned().collect()
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.by_name.lock().contains_key(name)
    }
}

impl Fs {
    /// Takes a snapshot of the whole tree named `name`: EEXIST if one has that name, the
    /// usual name errors, ENOSPC if its metadata would pass the cap.
    pub fn create_snapshot(&self, name: &[u8]) -> Result<Arc<Snapshot>> {
        check_name(name)?;
        if self.snapshots.contains(name) {
            return Err(Errno::EEXIST);
        }
        self.repair_if_needed();
        let start = std::time::Instant::now();
        let (nodes, live) = {
            let _still = self.namespace.still();
            self.freeze_tree()?
        };
        let frozen = start.elapsed();
        let cost = nodes.iter().fold(SNAPSHOT_BYTES, |sum, (node, name_len)| {
            let extra = match &node.body {
                Body::Symlink(t) => t.len() as u64,
                _ => 0,
            };
            sum.saturating_add(SNAPSHOT_NODE_BYTES + *name_len as u64 + extra)
        });
        // Exactly as long as it needs to be: the cost above counts one node per node.
        let mut nodes: Vec<Node> = nodes.into_iter().map(|(n, _)| n).collect();
        nodes.shrink_to_fit();
        let id = self.snapshots.next_id.fetch_add(1, Ordering::Relaxed);
        let snapshot = Arc::new(Snapshot::new(id, name, nodes, cost));
        // The live tree's hashes are the snapshot's wherever nothing changed since: a
        // diff against the live tree then hashes only what changes after.
        for (i, (inode, mark)) in live.iter().enumerate() {
            if let Ok(node) = snapshot.node(i as NodeId) {
                self.namespace.merkle_seed(inode, *mark, node.hash());
            }
        }
        drop(live);
        tracing::debug!(
            nodes = snapshot.len(),
            cost,
            "snapshot {}: tree still for {:?}, hashed and seeded by {:?}",
            String::from_utf8_lossy(name),
            frozen,
            start.elapsed()
        );
        self.with_room(|_| self.budget.charge_snapshot(cost))?;
        let mut all = self.snapshots.by_name.lock();
        if all.contains_key(name) {
            drop(all);
            self.budget.release_snapshot(cost);
            return Err(Errno::EEXIST);
        }
        all.insert(name.into(), snapshot.clone());
        Ok(snapshot)
    }

    /// Deletes snapshot `name`, releasing its chunks (those nothing else holds) and its
    /// charge.
    pub fn delete_snapshot(&self, name: &[u8]) -> Result<()> {
        let snapshot = self
            .snapshots
            .by_name
            .lock()
            .remove(name)
            .ok_or(Errno::ENOENT)?;
        self.budget.release_snapshot(snapshot.cost());
        // Its recipes (and chunks) go when the last reader of it lets go.
        drop(snapshot);
        Ok(())
    }

    /// The snapshot named `name`.
    pub fn snapshot(&self, name: &[u8]) -> Result<Arc<Snapshot>> {
        self.snapshots.get(name).ok_or(Errno::ENOENT)
    }

    /// The snapshot numbered `id` (see [`Snapshot::id`]).
    pub fn snapshot_by_id(&self, id: u64) -> Result<Arc<Snapshot>> {
        self.snapshots.by_id(id).ok_or(Errno::ENOENT)
    }

    /// Every snapshot, by name.
    pub fn snapshot_list(&self) -> Vec<Arc<Snapshot>> {
        self.snapshots.all()
    }

    /// Every recipe the snapshots hold (for the store check).
    pub(crate) fn snapshot_recipes(&self) -> Vec<RecipeRef> {
        self.snapshots
            .all()
            .iter()
            .flat_map(|s| s.recipes().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// The metadata all snapshots are charged for (for the usage check).
    pub(crate) fn snapshot_cost(&self) -> u64 {
        self.snapshots.all().iter().map(|s| s.cost()).sum()
    }

    /// Copies the tree breadth-first from the root: each node with its name's length, and
    /// the live inode it copies with where its hash stood. Called with the tree still;
    /// takes one inode lock at a time.
    fn freeze_tree(&self) -> Result<Frozen> {
        let mut out: Vec<(Node, usize)> = Vec::with_capacity(self.namespace.len());
        // Inodes to copy, in the order their nodes get their numbers.
        let mut queue: Vec<(Arc<Inode>, NodeId, usize)> = Vec::new();
        if let Ok(root) = self.namespace.get_even_poisoned(ROOT_INO) {
            queue.push((root, 0, 0));
        }
        let mut live = Vec::with_capacity(self.namespace.len());
        let mut at = 0;
        while let Some((inode, parent, name_len)) = queue.get(at).cloned() {
            at += 1;
            live.push((inode.clone(), self.namespace.merkle_mark(&inode)));
            let data = inode.data.read();
            let attr = attr_of(inode.ino, inode.kind, &data);
            let body = match &data.body {
                LiveBody::File(f) => Body::File(self.frozen_content(&f.content)?),
                LiveBody::Symlink(t) => Body::Symlink(t.clone()),
                LiveBody::Special => Body::Special,
                LiveBody::Dir(d) => {
                    let mut listed: Vec<(Arc<[u8]>, u64)> =
                        d.entries().map(|e| (e.name.clone(), e.ino)).collect();
                    drop(data);
                    listed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let me = (at - 1) as NodeId;
                    let mut entries = Vec::with_capacity(listed.len());
                    for (name, ino) in listed {
                        let Ok(child) = self.namespace.get_even_poisoned(ino) else {
                            continue;
                        };
                        let id = queue.len() as NodeId;
                        queue.push((child, me, name.len()));
                        entries.push((name, id));
                    }
                    out.push((Node::new(attr, parent, Body::Dir(entries)), name_len));
                    continue;
                }
            };
            drop(data);
            out.push((Node::new(attr, parent, body), name_len));
        }
        Ok((out, live))
    }

    /// The recipe of a file's current bytes: its committed recipe, or, with uncommitted
    /// writes, those chunked and stored as a commit would (without a version).
    /// EIO when the store cannot serve the chunks around the changes.
    fn frozen_content(&self, content: &crate::fs::data::FileContent) -> Result<RecipeRef> {
        if !content.is_dirty() {
            return Ok(content.base().clone());
        }
        Ok(content
            .prepare_commit(&self.config.chunker, &*self.store)?
            .and_then(|p| p.recipe)
            .unwrap_or_else(|| content.base().clone()))
    }
}
