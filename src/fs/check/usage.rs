//! The budget check: the metadata and droppable-version counters against a walk.

use crate::fs::Fs;

impl Fs {
    /// Recomputes the metadata estimate and the count of droppable versions by walking
    /// every inode, and compares them with the counters (for tests; takes the tree lock).
    pub fn verify_usage(&self) -> std::result::Result<(), String> {
        self.drain_commits();
        self.repair_if_needed();
        let _still = self.namespace.still();
        let inodes = self.namespace.collect(|_| true);
        // One inode locked at a time, as the walk goes.
        self.budget.verify(inodes.iter().map(|i| i.data.read()))?;
        let (charged, held) = (self.budget.snapshots(), self.snapshot_cost());
        if charged != held {
            return Err(format!("snapshot counter {charged}, snapshots hold {held}"));
        }
        Ok(())
    }
}
