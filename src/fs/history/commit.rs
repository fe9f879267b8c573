//! Commit: a file's uncommitted changes become its newest version, within the budget,
//! dropping the versions `--keep-versions` does not keep (and, to fit, older ones).

use std::time::SystemTime;

use crate::fs::budget::{version_cost, Fail};
use crate::fs::error::{Errno, Result};
use crate::fs::namespace::inode::{FileState, Inode};
use crate::fs::Fs;

use super::retention::bytes_freed;
use super::version::CommitCause;

impl Fs {
    /// Commits a file's uncommitted changes as a new version, if there are any. Returns the
    /// new version's number. ENOSPC if the result does not fit even after dropping old
    /// versions: then nothing changes, the changes stay dirty and readable.
    pub(crate) fn commit(&self, inode: &Inode, cause: CommitCause) -> Result<Option<u64>> {
        // Half-changed content is never made a version.
        if inode.is_poisoned() {
            return Err(Errno::EIO);
        }
        self.with_room(|second_try| self.try_commit(inode, cause, second_try))
    }

    /// One try at a commit. Its new chunks are stored first, then the result is checked
    /// against the cap: what it adds (new chunks, the version's metadata) less what it lets
    /// go (the dirty bytes, and the old versions it drops). On a `second_try` it may drop
    /// all of this file's older versions, oldest first, as far as that is needed to fit: once
    /// the new version is in, none of them is the file's content any more.
    fn try_commit(
        &self,
        inode: &Inode,
        cause: CommitCause,
        second_try: bool,
    ) -> std::result::Result<Option<u64>, Fail> {
        let mut data = inode.data.write();
        let Ok(state) = data.file_state_mut() else {
            return Ok(None);
        };
        let dirty = state.content.dirty_bytes();
        let Some(prepared) = state
            .content
            .prepare_commit(&self.config.chunker, self.store.as_ref())
        else {
            return Ok(None);
        };
        let Some(recipe) = prepared.recipe.clone() else {
            // The same bytes as before: no version, the dirty data just goes.
            state.content.install(prepared);
            self.budget.release_dirty(dirty);
            return Ok(None);
        };
        let added = version_cost(&recipe);
        drop(recipe);
        let old = state.history.len();
        let keep = self.config.keep_versions.max(1);
        // The oldest `must` versions go in any case (beyond --keep-versions); up to `may`
        // if that is what it takes to fit.
        let must = (old + 1).saturating_sub(keep);
        let may = if second_try { old } else { must };
        let cap = self.budget.capacity();
        let projected = self
            .budget
            .used()
            .saturating_sub(dirty)
            .saturating_add(added);
        let mut drop_n = must;
        if projected > cap {
            loop {
                let after = projected.saturating_sub(self.dropping_frees(state, drop_n));
                if after <= cap {
                    break;
                }
                if drop_n >= may {
                    // Dropping `prepared` frees the chunks only it held.
                    return Err(Fail::Short(after - cap));
                }
                drop_n += 1;
            }
        }
        let Some(committed) = state.content.install(prepared) else {
            return Ok(None);
        };
        self.budget.release_dirty(dirty);
        let number = state.history.push(
            committed.recipe,
            cause,
            committed.new_bytes,
            SystemTime::now(),
        );
        self.budget.add_meta(added);
        if old > 0 {
            // The previous newest is an old version now.
            self.budget.add_prunable(1);
        }
        for _ in 0..drop_n {
            if let Some(v) = state.history.pop_oldest() {
                self.budget.release_meta(version_cost(&v.recipe));
                self.budget.release_prunable(1);
            }
        }
        Ok(Some(number))
    }

    /// What dropping the oldest `n` versions of a file would free once a commit has replaced
    /// its content: their metadata and the chunks no one else holds.
    fn dropping_frees(&self, state: &FileState, n: usize) -> u64 {
        if n == 0 {
            return 0;
        }
        let versions: Vec<_> = state.history.versions().take(n).collect();
        let meta: u64 = versions.iter().map(|v| version_cost(&v.recipe)).sum();
        let dropped: Vec<_> = versions.iter().map(|v| &v.recipe).collect();
        // The content's base is not kept: the commit replaces it (when the newest version
        // goes too, its recipe, which is the base's, goes with both holders).
        let kept: Vec<_> = state
            .history
            .versions()
            .skip(n)
            .map(|v| &v.recipe)
            .collect();
        meta.saturating_add(bytes_freed(self.store.as_ref(), &dropped, &kept))
    }
}
