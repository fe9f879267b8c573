//! Commit: a file's uncommitted changes become its newest version, within the budget,
//! dropping the versions `--keep-versions` does not keep (and, to fit, older ones).
//!
//! When workers run (a mount starts them), a commit is handed to a commit worker (see
//! `pending.rs`): the commit point freezes the live layer, reserves the version number (the
//! number the close or fsync reports) and returns. The worker chunks and hashes the frozen
//! layers with no lock held, then installs the version under a short write lock with the
//! same budget check as an inline commit. Until it is installed the frozen bytes stay
//! dirty: charged to the budget and readable. Even a small file's commit, tens of
//! microseconds inline, is handed off: the close returns at once and the commit runs on
//! the other core while the program goes on (see [`Fs::hands_off`]).
//!
//! A commit is made inline, under the file's write lock, without workers, and for a small
//! change (at most [`INLINE_MAX`] dirty bytes, no earlier commit of the file pending) when
//! memory is short or the store is remote (see [`Fs::hands_off`]).
//!
//! A handed-off commit that does not fit even after dropping old versions is given up: its
//! number stays unused, its layers stay pending (dirty and readable), and the file's next
//! commit point covers them too. A handed-off commit that turns out to change nothing (the
//! same bytes rewritten) makes no version either; its number is skipped too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::SystemTime;

use crate::fs::budget::{version_cost, Fail};
use crate::fs::data::{prepare_layers, Prepared};
use crate::fs::error::{Errno, Result};
use crate::fs::namespace::inode::{Body, FileState, Inode};
use crate::fs::{test_panic_point, Fs};
use crate::throttle::LogThrottle;

use super::pending::Job;
use super::retention::{bytes_freed, data_freed};
use super::version::{CommitCause, Version};

/// A commit of more dirty bytes than this is handed to a worker even when memory is short:
/// made inline, it would hold its close for milliseconds (see [`Fs::hands_off`]).
pub const INLINE_MAX: u64 = 1 << 20;

/// A writer holding this many dirty bytes has them chunked before its commit point (see
/// `Fs::checkpoint`).
pub const CHECKPOINT_MIN: u64 = 32 << 20;

/// A writer holding this many dirty bytes while its file's checkpoint is still being
/// chunked waits for it. Measured on a 1 GiB `dd conv=fsync` alone (3 runs): without
/// checkpoints the write took 1.3–1.4 s and memfs's peak RSS was 2.12 GB, with its commit
/// still to run; 32 MiB checkpoints with a backlog of 64 MiB took 2.3–2.4 s at 1.24–1.30
/// GB, with 128 MiB 2.0–2.4 s at 1.32–1.36 GB, 64 MiB ones with 256 MiB 1.8–2.0 s at
/// 1.59–1.61 GB, and with no wait 1.5–1.7 s at 1.64–1.90 GB.
const CHECKPOINT_BACKLOG: u64 = 4 * CHECKPOINT_MIN;

/// How long a commit worker waits for a lost store before it installs a version whose
/// chunks are only in memory (they are still retried).
const WORKER_STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Both warnings below come once per commit while their cause lasts (a full mount, a lost
/// store): one line every 10 s, saying how many were held back.
static UNSTORED: LogThrottle = LogThrottle::new(std::time::Duration::from_secs(10));
static GIVEN_UP: LogThrottle = LogThrottle::new(std::time::Duration::from_secs(10));

impl Fs {
    /// Commits a file's uncommitted changes as a new version, if there are any. Returns the
    /// new version's number (reserved, when the commit is handed to a worker). ENOSPC if an
    /// inline commit does not fit even after dropping old versions: then nothing changes,
    /// the changes stay dirty and readable.
    pub(crate) fn commit(&self, inode: &Arc<Inode>, cause: CommitCause) -> Result<Option<u64>> {
        // Half-changed content is never made a version.
        if inode.is_poisoned() {
            return Err(Errno::EIO);
        }
        self.with_room(|second_try| self.try_commit(inode, cause, second_try))
    }

    /// One try at a commit. Hands it to a worker if it should be (see the module doc).
    /// Otherwise its new chunks are stored first, then the result is checked against the
    /// cap: what it adds (new chunks, the version's metadata) less what it lets go (the
    /// dirty bytes, and the old versions it drops). On a `second_try` it may drop all of
    /// this file's older versions, oldest first, as far as that is needed to fit: once the
    /// new version is in, none of them is the file's content any more.
    fn try_commit(
        &self,
        inode: &Arc<Inode>,
        cause: CommitCause,
        second_try: bool,
    ) -> std::result::Result<Option<u64>, Fail> {
        let mut data = inode.data.write();
        let Ok(state) = data.file_state_mut() else {
            return Ok(None);
        };
        if self.commit_queue.started() {
            // Layers a commit that did not fit left behind (no job covers them).
            let left_over = match (state.content.pending().last(), state.commits.newest()) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(layer), Some(job)) => !Arc::ptr_eq(layer, &job.through),
            };
            let live = state.content.live_changed();
            // A checkpoint is no version: the commit point still makes one.
            let after_checkpoint = state.commits.newest().is_some_and(|j| j.checkpoint);
            if !state.commits.is_empty() || left_over {
                if !live && !left_over && !after_checkpoint {
                    // The pending commits already cover every change.
                    return Ok(None);
                }
                return Ok(Some(self.hand_off(inode, state, cause)));
            }
            if live && self.hands_off(state.content.live_dirty_bytes()) {
                return Ok(Some(self.hand_off(inode, state, cause)));
            }
        }
        let dirty = state.content.dirty_bytes();
        let prepared = state
            .content
            .prepare_commit(&self.config.chunker, self.store.as_ref())?;
        let Some(recipe) = state.content.version_recipe(prepared.as_ref()) else {
            if let Some(prepared) = prepared {
                // The same bytes as before: no version, the dirty data just goes.
                state.content.install(prepared);
                self.budget.release_dirty(dirty);
            }
            return Ok(None);
        };
        let prepared = prepared.unwrap_or_else(Prepared::unchanged);
        let drop_n = self.fit(state, &recipe, dirty, second_try)?;
        let number = state.history.reserve();
        self.retire_checkpoint(state, &recipe);
        let Some(committed) = state.content.install(prepared) else {
            return Ok(None);
        };
        self.budget.release_dirty(dirty);
        let version = Version::new(
            number,
            committed.recipe,
            cause,
            committed.new_bytes,
            SystemTime::now(),
        );
        self.add_version(state, version, drop_n);
        Ok(Some(number))
    }

    /// Whether the commit of `live_dirty` new bytes (no earlier commit of the file pending)
    /// goes to a worker. Small ones went inline until an untar of postgresql-15 (8,429 files,
    /// 4 interleaved runs) measured 3.7–3.9 s with them inline and 3.1–3.3 s with every commit
    /// handed off, and less CPU for memfs (2.9–3.1 s against 3.2–3.3 s): the close no longer
    /// waits, and the commit overlaps tar's next requests. Small ones stay inline:
    /// - when memory is short: a handed-off commit that does not fit is given up silently (see
    ///   the module doc), so when its chunks might not fit beside its dirty bytes the close or
    ///   fsync commits itself, and can report ENOSPC;
    /// - on a remote store, where a worker installs a version only once the server has its
    ///   chunks, while an inline commit installs it at once (served from memory meanwhile).
    fn hands_off(&self, live_dirty: u64) -> bool {
        live_dirty > INLINE_MAX
            || (!self.store.is_remote() && self.budget.room_for(live_dirty).is_ok())
    }

    /// Chunks what a writer has written so far when it holds more than [`CHECKPOINT_MIN`]
    /// dirty bytes and no commit of the file is in flight: the live layer is handed to a
    /// worker like a commit point's, but installed as a checkpoint, not a version. So a
    /// long write is chunked and hashed while it goes on, and its bytes are not held twice
    /// (written, and chunked) when its commit point comes. The version is still made at the
    /// commit point, of exactly the bytes there: the checkpoint's chunks are those a commit
    /// of the same bytes would cut (chunking is by content), so only the data since is new.
    ///
    /// A writer faster than the workers would still pile up bytes, so past
    /// [`CHECKPOINT_BACKLOG`] it waits for the file's jobs in flight before it goes on: a
    /// long write then holds at most about that much uncommitted.
    pub(crate) fn checkpoint(&self, inode: &Arc<Inode>) {
        if !self.commit_queue.started() {
            return;
        }
        loop {
            if inode.is_poisoned() {
                return;
            }
            let mut data = inode.data.write();
            let Ok(state) = data.file_state_mut() else {
                return;
            };
            let live = state.content.live_dirty_bytes();
            if live < CHECKPOINT_MIN {
                return;
            }
            if state.commits.is_empty() {
                break self.hand_off_checkpoint(inode, state);
            }
            if live < CHECKPOINT_BACKLOG {
                return;
            }
            // The jobs in flight end (installed, given up, or dropped with the file) on
            // their own: no lock or request of ours is needed for that.
            let settled = state.commits.settled().clone();
            let seen = settled.jobs_over();
            drop(data);
            settled.wait_past(seen);
        }
    }

    fn hand_off_checkpoint(&self, inode: &Arc<Inode>, state: &mut FileState) {
        let job = Job {
            number: state.history.last_reserved(),
            // Unused: a checkpoint records no version.
            cause: CommitCause::Close,
            time: SystemTime::now(),
            through: state.content.freeze(),
            checkpoint: true,
        };
        self.queue_job(inode, state, job);
    }

    /// Before a checkpoint that is the file's base gives way to `next`: the chunks only it
    /// holds (the last one each checkpoint cut at the end of what was written so far, which
    /// the next cut again) leave the store with it, so they are not counted as stored.
    fn retire_checkpoint(&self, state: &mut FileState, next: &crate::store::RecipeRef) {
        let base = state.content.base();
        if state.content.is_checkpointed() && !Arc::ptr_eq(base, next) {
            let gone = data_freed(self.store.as_ref(), &[base], &[]);
            state.content.forget_checkpoint_bytes(gone);
        }
    }

    /// Freezes the live layer as a job for a worker; returns the version number it reserves.
    fn hand_off(&self, inode: &Arc<Inode>, state: &mut FileState, cause: CommitCause) -> u64 {
        let through = state.content.freeze();
        let number = state.history.reserve();
        let job = Job {
            number,
            cause,
            time: SystemTime::now(),
            through,
            checkpoint: false,
        };
        self.queue_job(inode, state, job);
        number
    }

    /// Adds `job` to the file's jobs, and the file to the workers' queue unless it is
    /// there already (it is while it has jobs).
    fn queue_job(&self, inode: &Arc<Inode>, state: &mut FileState, job: Job) {
        if state.commits.push(job) {
            self.commit_queue.push(inode.clone());
        }
    }

    /// How many of the oldest versions must go for a commit of `recipe` that lets go of
    /// `dirty` bytes to fit (see `try_commit`), or how much room it lacks.
    fn fit(
        &self,
        state: &FileState,
        recipe: &crate::store::RecipeRef,
        dirty: u64,
        second_try: bool,
    ) -> std::result::Result<usize, Fail> {
        let added = version_cost(recipe);
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
                    // Dropping the prepared commit frees the chunks only it held.
                    return Err(Fail::Short(after - cap));
                }
                drop_n += 1;
            }
        }
        Ok(drop_n)
    }

    /// Records an installed commit as the newest version and drops the `drop_n` oldest.
    fn add_version(&self, state: &mut FileState, version: Version, drop_n: usize) {
        let added = version_cost(&version.recipe);
        let old = state.history.len();
        state.history.push(version);
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
    }

    /// A worker's turn at a file: installs its jobs, oldest first, until none is left. A
    /// panic poisons only this file: its jobs are dropped and their waiters woken.
    pub(super) fn run_commits(&self, inode: &Arc<Inode>) {
        loop {
            let step = catch_unwind(AssertUnwindSafe(|| self.run_one_commit(inode)));
            match step {
                Ok(true) => continue,
                Ok(false) => return,
                Err(_) => {
                    inode.data.poison();
                    tracing::error!(ino = inode.ino, "a commit worker panicked");
                    let mut data = inode.data.write();
                    if let Body::File(f) = &mut data.body {
                        f.commits.abandon();
                        f.commits.release_worker();
                    }
                    return;
                }
            }
        }
    }

    /// Installs the file's oldest job; `false` when there is none left (the worker lets the
    /// file go).
    fn run_one_commit(&self, inode: &Arc<Inode>) -> bool {
        let (base, layers, job) = {
            let mut data = inode.data.write();
            let poisoned = inode.is_poisoned();
            let Body::File(f) = &mut data.body else {
                return false;
            };
            if poisoned {
                f.commits.abandon();
            }
            let Some(job) = f.commits.oldest().cloned() else {
                f.commits.release_worker();
                return false;
            };
            let Some(layers) = f.content.pending_through(&job.through) else {
                // Cannot happen: a job's layers leave only with the job.
                f.commits.pop();
                f.commits.settled().settle(job.number);
                return true;
            };
            (f.content.base().clone(), layers.to_vec(), job)
        };
        if let Some(first) = layers.first() {
            test_panic_point("commit", first.first_data());
        }
        let prepared = prepare_layers(&base, &layers, &self.config.chunker, self.store.as_ref());
        drop((base, layers));
        let outcome = prepared.and_then(|prepared| {
            // A version counts complete only once its chunks are stored; a lost store
            // keeps them in memory (and retries), so the version goes in anyway.
            if let Some(recipe) = prepared.as_ref().and_then(|p| p.recipe.as_ref()) {
                if let Err(e) = self.store.wait_stored(recipe, WORKER_STORE_PATIENCE) {
                    if let Some(held_back) = UNSTORED.admit() {
                        tracing::warn!(
                            ino = inode.ino,
                            version = job.number,
                            held_back,
                            "installing a version whose chunks are not stored yet ({e}); \
                             they stay in memory until the store takes them"
                        );
                    }
                }
            }
            let mut prepared = Some(prepared);
            self.with_room(|second_try| self.install_job(inode, &job, &mut prepared, second_try))
        });
        let mut data = inode.data.write();
        if let Body::File(f) = &mut data.body {
            if f.commits.oldest().is_some_and(|j| j.number == job.number) {
                f.commits.pop();
            }
            f.commits.settled().settle(job.number);
        }
        drop(data);
        if let Err(e) = outcome {
            if let Some(held_back) = GIVEN_UP.admit() {
                tracing::warn!(
                    ino = inode.ino,
                    version = job.number,
                    held_back,
                    "a commit handed off at close was given up ({e:?}); its changes stay \
                     uncommitted until the next commit point"
                );
            }
        }
        true
    }

    /// Installs a worker's prepared commit of `job` if it fits (see `try_commit`).
    fn install_job(
        &self,
        inode: &Inode,
        job: &Job,
        prepared: &mut Option<Option<Prepared>>,
        second_try: bool,
    ) -> std::result::Result<(), Fail> {
        let mut data = inode.data.write();
        let Ok(state) = data.file_state_mut() else {
            return Ok(());
        };
        if state
            .commits
            .oldest()
            .is_none_or(|j| j.number != job.number)
        {
            // The file was freed (or poisoned) meanwhile.
            return Ok(());
        }
        // The buffers the chunks share with the layers count twice again from here, before
        // the layers' dirty bytes are released below: for a moment twice, never not at all.
        if let Some(p) = prepared.as_mut().and_then(Option::as_mut) {
            drop(std::mem::take(&mut p.held_twice));
        }
        let Some(layers) = state.content.pending_through(&job.through) else {
            return Ok(());
        };
        let dirty: u64 = layers.iter().map(|l| l.dirty_bytes()).sum();
        if job.checkpoint {
            // Its chunks are stored already; installing it only lets the dirty bytes go.
            let released = match prepared.take().flatten() {
                Some(p) => {
                    if let Some(next) = &p.recipe {
                        self.retire_checkpoint(state, next);
                    }
                    state.content.install_checkpoint(&job.through, p)
                }
                None => state.content.install_layers(&job.through, None),
            };
            self.budget.release_dirty(released.unwrap_or(0));
            return Ok(());
        }
        let recipe = state
            .content
            .version_recipe(prepared.as_ref().and_then(Option::as_ref));
        let Some(recipe) = recipe else {
            // Nothing changed: the layers go, no version.
            if let Some(released) = state.content.install_layers(&job.through, None) {
                self.budget.release_dirty(released);
            }
            return Ok(());
        };
        let drop_n = self.fit(state, &recipe, dirty, second_try)?;
        self.retire_checkpoint(state, &recipe);
        let Some(p) = state.content.as_version(prepared.take().flatten()) else {
            return Ok(());
        };
        if let Some(released) = state
            .content
            .install_layers(&job.through, Some(recipe.clone()))
        {
            self.budget.release_dirty(released);
        }
        let version = Version::new(job.number, recipe, job.cause, p.new_bytes, job.time);
        self.add_version(state, version, drop_n);
        Ok(())
    }

    /// Waits until the commits of `inode` made so far are installed, so that its versions
    /// are all there once the close that made them has returned. EIO if a commit worker's
    /// panic poisoned the file meanwhile.
    pub(crate) fn wait_for_commits(&self, inode: &Inode) -> Result<()> {
        let target = match &inode.data.read().body {
            Body::File(f) => f.commits.wait_target(),
            _ => None,
        };
        if let Some((settled, number)) = target {
            settled.wait(number);
            if inode.is_poisoned() {
                return Err(Errno::EIO);
            }
        }
        Ok(())
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
