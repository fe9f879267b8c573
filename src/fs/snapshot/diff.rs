//! The difference between two snapshot directories, found by their Merkle hashes: a pair of
//! subtrees with equal hashes and counts is skipped without being opened, so the cost is
//! O(changes × depth × entries per directory on the way), not O(tree).

use std::cmp::Ordering;

use serde::Serialize;

use crate::fs::attr::FileKind;
use crate::fs::error::Result;

use super::frozen::{NodeId, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ChangeKind {
    /// Only in the first tree (printed `D`). Ordered first, so a type change reads D then A.
    #[serde(rename = "D")]
    Deleted,
    /// Only in the second tree (`A`).
    #[serde(rename = "A")]
    Added,
    /// In both, with other content or permission bits (`M`).
    #[serde(rename = "M")]
    Modified,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Deleted => 'D',
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'M',
        }
    }
}

/// One difference: a path relative to the two directories compared. An added or deleted
/// directory is one change (what it holds is not listed); a node whose kind changed is a
/// deletion and an addition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// The changes, sorted by path, and how many nodes had to be looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub visited: u64,
}

impl Diff {
    /// Sorts by path (bytes), a deletion before an addition of the same path.
    pub fn sort(&mut self) {
        self.changes
            .sort_by(|x, y| x.path.cmp(&y.path).then(x.kind.cmp(&y.kind)));
    }
}

fn join(dir: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if dir.is_empty() {
        name.into_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The changes from directory `a_dir` of `a` to directory `b_dir` of `b`.
pub fn diff(a: &Snapshot, a_dir: NodeId, b: &Snapshot, b_dir: NodeId) -> Result<Diff> {
    let mut out = Diff {
        changes: Vec::new(),
        visited: 2,
    };
    // Directory pairs still to compare, with their path.
    let mut todo = vec![(a_dir, b_dir, String::new())];
    while let Some((x, y, path)) = todo.pop() {
        let (nx, ny) = (a.node(x)?, b.node(y)?);
        if nx.hash() == ny.hash() && nx.descendants() == ny.descendants() {
            continue;
        }
        let (ex, ey) = (a.entries(x)?, b.entries(y)?);
        let (mut i, mut j) = (0, 0);
        while i < ex.len() || j < ey.len() {
            let order = match (ex.get(i), ey.get(j)) {
                (Some(p), Some(q)) => p.0.cmp(&q.0),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    out.visited += 1;
                    let kind = ChangeKind::Deleted;
                    out.changes.push(Change {
                        kind,
                        path: join(&path, &ex[i].0),
                    });
                    i += 1;
                }
                Ordering::Greater => {
                    out.visited += 1;
                    out.changes.push(Change {
                        kind: ChangeKind::Added,
                        path: join(&path, &ey[j].0),
                    });
                    j += 1;
                }
                Ordering::Equal => {
                    out.visited += 2;
                    let (cx, cy) = (a.node(ex[i].1)?, b.node(ey[j].1)?);
                    let sub = join(&path, &ex[i].0);
                    if cx.kind() != cy.kind() {
                        out.changes.push(Change {
                            kind: ChangeKind::Deleted,
                            path: sub.clone(),
                        });
                        out.changes.push(Change {
                            kind: ChangeKind::Added,
                            path: sub,
                        });
                    } else if cx.kind() == FileKind::Directory {
                        if cx.attr().perm != cy.attr().perm {
                            out.changes.push(Change {
                                kind: ChangeKind::Modified,
                                path: sub.clone(),
                            });
                        }
                        todo.push((ex[i].1, ey[j].1, sub));
                    } else if cx.hash() != cy.hash() || cx.attr().perm != cy.attr().perm {
                        out.changes.push(Change {
                            kind: ChangeKind::Modified,
                            path: sub,
                        });
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
