//! Numbers for the control plane's nodes. They are handed out from the top of the 64-bit
//! range downward, out of a table that maps each number to what it shows, so real files
//! keep every number below the lowest one handed out (the floor).
//!
//! A node keeps its number while the kernel holds it: every lookup (and readdirplus entry)
//! the kernel is given counts as a reference, and the entry goes when `forget` takes the
//! last one. Numbers that readdir shows without a reference (plain listings, "..") stay in
//! the table so a lookup that follows finds the same number, but at most `UNHELD_KEPT` of
//! them: past that the oldest are dropped (their next lookup gets a new number, which is
//! harmless since the kernel never held the old one). Numbers are never used twice, so a
//! stale number from the kernel can only miss (ENOENT), never show something else; at one
//! new number per lookup, the 2^63 numbers above the real ones outlast any mount.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::fs::{Errno, Result};

/// What a control node shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// `.memfs` itself.
    Control,
    /// `.memfs/stats.json`.
    Stats,
    /// `.memfs/fsck`.
    Fsck,
    /// `.memfs/versions/...`: the mirror of a real directory (the root for `versions`).
    Mirror(u64),
    /// `.memfs/versions/.../FILE`: the directory of a real file's versions.
    History(u64),
    /// `.memfs/versions/.../FILE/N`: version N of a real file.
    Version(u64, u64),
    /// `.memfs/snapshots`.
    Snapshots,
    /// A node of a snapshot: the snapshot's id and the node's place in it (0: its root,
    /// `.memfs/snapshots/NAME`).
    Snap(u64, u32),
}

/// The nodes every mount has, with fixed numbers that are never dropped.
const FIXED: [(Node, u64); 5] = [
    (Node::Control, u64::MAX),
    (Node::Stats, u64::MAX - 1),
    (Node::Fsck, u64::MAX - 2),
    (Node::Mirror(crate::fs::ROOT_INO), u64::MAX - 3),
    (Node::Snapshots, u64::MAX - 4),
];

/// The lowest number the table may hand out: half the range stays for real files whatever
/// happens.
const LOWEST: u64 = 1 << 63;

/// How many numbers without a kernel reference are kept for a later lookup.
const UNHELD_KEPT: usize = 4096;

pub(super) struct NodeTable {
    /// The lowest number handed out so far: every number at or above it is a control node.
    floor: AtomicU64,
    inner: Mutex<Numbers>,
}

struct Numbers {
    by_node: HashMap<Node, Slot>,
    by_ino: HashMap<u64, Node>,
    /// The next number to hand out.
    next: u64,
    /// Numbers handed out without a reference, oldest first (some may since be held or
    /// gone).
    unheld: VecDeque<u64>,
}

struct Slot {
    ino: u64,
    /// Kernel references (lookups not yet forgotten).
    lookups: u64,
}

fn is_fixed(ino: u64) -> bool {
    ino > u64::MAX - FIXED.len() as u64
}

impl NodeTable {
    pub(super) fn new() -> NodeTable {
        let mut numbers = Numbers {
            by_node: HashMap::new(),
            by_ino: HashMap::new(),
            next: u64::MAX - FIXED.len() as u64,
            unheld: VecDeque::new(),
        };
        for (node, ino) in FIXED {
            numbers.by_node.insert(node, Slot { ino, lookups: 0 });
            numbers.by_ino.insert(ino, node);
        }
        NodeTable {
            floor: AtomicU64::new(numbers.next + 1),
            inner: Mutex::new(numbers),
        }
    }

    /// Every number at or above this is a control node.
    pub(super) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// What number `ino` shows, if it is in the table.
    pub(super) fn node(&self, ino: u64) -> Option<Node> {
        self.inner.lock().by_ino.get(&ino).copied()
    }

    /// The number of `node`, handed out now if it has none, without a kernel reference.
    pub(super) fn number(&self, node: Node) -> Result<u64> {
        let mut numbers = self.inner.lock();
        if let Some(slot) = numbers.by_node.get(&node) {
            return Ok(slot.ino);
        }
        let ino = self.hand_out(&mut numbers, node, 0)?;
        numbers.unheld.push_back(ino);
        while numbers.unheld.len() > UNHELD_KEPT {
            let Some(old) = numbers.unheld.pop_front() else {
                break;
            };
            numbers.drop_if_unheld(old);
        }
        Ok(ino)
    }

    /// The number of `node` with one more kernel reference (a lookup the kernel is given).
    pub(super) fn hold(&self, node: Node) -> Result<u64> {
        let mut numbers = self.inner.lock();
        if let Some(slot) = numbers.by_node.get_mut(&node) {
            slot.lookups += 1;
            return Ok(slot.ino);
        }
        self.hand_out(&mut numbers, node, 1)
    }

    /// Takes `n` kernel references off `ino`; the last one lets its number go.
    pub(super) fn forget(&self, ino: u64, n: u64) {
        let mut numbers = self.inner.lock();
        let Some(node) = numbers.by_ino.get(&ino).copied() else {
            return;
        };
        let Some(slot) = numbers.by_node.get_mut(&node) else {
            return;
        };
        slot.lookups = slot.lookups.saturating_sub(n);
        if slot.lookups == 0 {
            numbers.drop_if_unheld(ino);
        }
    }

    fn hand_out(&self, numbers: &mut Numbers, node: Node, lookups: u64) -> Result<u64> {
        let ino = numbers.next;
        if ino < LOWEST {
            return Err(Errno::ENOSPC);
        }
        numbers.next -= 1;
        numbers.by_node.insert(node, Slot { ino, lookups });
        numbers.by_ino.insert(ino, node);
        // Before the number leaves this table, so every request that carries it routes here.
        self.floor.fetch_min(ino, Ordering::AcqRel);
        Ok(ino)
    }

    /// Entries in the table now (fixed nodes included).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().by_ino.len()
    }
}

impl Numbers {
    /// Drops `ino` unless the kernel holds it or it is fixed.
    fn drop_if_unheld(&mut self, ino: u64) {
        if is_fixed(ino) {
            return;
        }
        let Some(node) = self.by_ino.get(&ino).copied() else {
            return;
        };
        if self.by_node.get(&node).is_some_and(|s| s.lookups == 0) {
            self.by_node.remove(&node);
            self.by_ino.remove(&ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_while_held_and_go_with_the_last_forget() {
        let table = NodeTable::new();
        let fixed = table.len();
        let a = table.hold(Node::History(7)).unwrap();
        assert!(a < u64::MAX - 3 && a >= table.floor());
        assert_eq!(table.hold(Node::History(7)).unwrap(), a);
        assert_eq!(table.number(Node::History(7)).unwrap(), a);
        assert_eq!(table.node(a), Some(Node::History(7)));
        table.forget(a, 1);
        assert_eq!(table.node(a), Some(Node::History(7)));
        table.forget(a, 1);
        assert_eq!(table.node(a), None);
        assert_eq!(table.len(), fixed);
        // A new number, never the old one.
        let b = table.hold(Node::History(7)).unwrap();
        assert!(b < a);
        // Fixed nodes stay whatever the kernel forgets.
        table.forget(u64::MAX, 5);
        assert_eq!(table.node(u64::MAX), Some(Node::Control));
    }

    #[test]
    fn numbers_without_a_reference_are_bounded() {
        let table = NodeTable::new();
        let first = table.number(Node::Version(1, 0)).unwrap();
        let held = table.hold(Node::Version(1, 1)).unwrap();
        for n in 2..(UNHELD_KEPT as u64 + 100) {
            table.number(Node::Version(1, n)).unwrap();
        }
        assert!(table.len() <= FIXED.len() + UNHELD_KEPT + 1);
        assert_eq!(table.node(first), None, "the oldest unheld number went");
        assert_eq!(table.node(held), Some(Node::Version(1, 1)), "held stays");
    }
}
