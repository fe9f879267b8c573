//! Commits handed to workers: each file's queue of commit points waiting to be installed,
//! the signal readers of its versions wait on, and the pool of worker threads.
//!
//! A commit point of a big change (or of any change while an earlier one is still pending)
//! freezes the file's live layer of changes (`FileContent::freeze`), reserves the next
//! version number and queues a [`Job`] on the file; the close or fsync returns at once. The
//! file itself (its `Arc<Inode>`) is queued on the pool at most once at a time, so one
//! worker at a time takes its jobs, oldest first: versions are installed in commit order.
//! While files come close together, an idle worker naps instead of sleeping, so that
//! queuing a commit in a busy spell wakes no thread (see [`NAP_WHILE_GAPS_UNDER`]).
//! A worker chunks and hashes with no lock held (the frozen layers cannot change) and
//! installs the result under a short write lock, after checking that its job is still the
//! file's oldest (an unlink that freed the file drops every job). See `commit.rs`.
//!
//! These use std's locks, not `crate::sync`'s: the workers are only started by a mount
//! (`Fs::start_commit_workers`); without them, and so in the shuttle model check, every
//! commit is made inline.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::fs::data::PendingLayer;
use crate::fs::namespace::inode::Inode;
use crate::fs::Fs;

use super::version::CommitCause;

/// One commit point waiting for a worker.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    /// The version number reserved at the commit point.
    pub number: u64,
    pub cause: CommitCause,
    /// The commit point's time, which the version records.
    pub time: SystemTime,
    /// The newest layer the commit covers: it commits every pending layer up to this one.
    pub through: PendingLayer,
    /// A checkpoint of a writer's bytes, not a version: `number` is the newest version
    /// number reserved before it, which it settles again (see `Fs::checkpoint`).
    pub checkpoint: bool,
}

/// A file's commits in flight.
#[derive(Debug, Default)]
pub struct PendingCommits {
    jobs: VecDeque<Job>,
    /// Whether the file is in the pool's queue or a worker is taking its jobs.
    queued: bool,
    settled: Arc<Settled>,
}

impl PendingCommits {
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub(crate) fn oldest(&self) -> Option<&Job> {
        self.jobs.front()
    }

    pub(crate) fn newest(&self) -> Option<&Job> {
        self.jobs.back()
    }

    /// Queues a job; returns whether the file must be handed to the pool (no worker has it).
    pub(crate) fn push(&mut self, job: Job) -> bool {
        self.jobs.push_back(job);
        !std::mem::replace(&mut self.queued, true)
    }

    /// Takes out the oldest job once a worker is done with it (installed or failed).
    pub(crate) fn pop(&mut self) -> Option<Job> {
        self.jobs.pop_front()
    }

    /// A worker found no job left and lets the file go.
    pub(crate) fn release_worker(&mut self) {
        self.queued = false;
    }

    /// Drops every job (the file is freed or poisoned) and wakes whoever waits for them.
    pub(crate) fn abandon(&mut self) {
        self.jobs.clear();
        self.settled.settle(u64::MAX);
    }

    /// What a reader must wait for to see every commit made so far: the signal and the
    /// newest reserved number. `None` when nothing is pending.
    pub(crate) fn wait_target(&self) -> Option<(Arc<Settled>, u64)> {
        let newest = self.jobs.back()?;
        Some((self.settled.clone(), newest.number))
    }

    pub(crate) fn settled(&self) -> &Arc<Settled> {
        &self.settled
    }
}

/// The newest version number of a file whose commit is over (installed, or given up for
/// lack of space), and how many jobs are over, with a condvar to wait for either.
#[derive(Debug, Default)]
pub struct Settled {
    state: Mutex<SettledState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SettledState {
    through: u64,
    jobs_over: u64,
}

impl Settled {
    /// A job is over; it had reserved `number` (a checkpoint: the number before it).
    pub(crate) fn settle(&self, number: u64) {
        let mut state = lock(&self.state);
        state.through = state.through.max(number);
        state.jobs_over += 1;
        self.changed.notify_all();
    }

    /// Waits until the commit that reserved `number` is over.
    pub(crate) fn wait(&self, number: u64) {
        let mut state = lock(&self.state);
        while state.through < number {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How many jobs are over so far, for [`Settled::wait_past`].
    pub(crate) fn jobs_over(&self) -> u64 {
        lock(&self.state).jobs_over
    }

    /// Waits until more than `seen` jobs are over.
    pub(crate) fn wait_past(&self, seen: u64) {
        let mut state = lock(&self.state);
        while state.jobs_over <= seen {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A panic elsewhere never leaves these counters half-changed: take them anyway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a napping worker sleeps before it looks at the queue again.
const NAP: Duration = Duration::from_millis(1);

/// Workers nap only while files come faster than this apart on average (see
/// [`QueueState::push_gap`]), so that most naps find one. A close that queues its commit then
/// wakes no worker, where waking a sleeping one is a wake-up across CPUs that the close pays
/// for: in a traced untar of postgresql-15, whose 7,844 closes each queued a commit, a flush
/// took 17.8 µs on average with the wake-up and 2.0–2.3 µs without. Napping while closes come
/// slower would cost more CPU than it spares them: with one close every 20 ms, napping for
/// 50 ms after each file took memfs from 60–70 to 280–290 ms of CPU over 300 closes, and
/// this rule left it at 60 ms.
const NAP_WHILE_GAPS_UNDER: Duration = Duration::from_micros(500);

/// The longest gap between two files that counts in full in [`QueueState::push_gap`], so
/// that after a pause the average falls back under [`NAP_WHILE_GAPS_UNDER`] within about
/// a dozen files that come close together.
const GAP_COUNTED_MAX: Duration = Duration::from_millis(8);

#[derive(Default)]
struct QueueState {
    files: VecDeque<Arc<Inode>>,
    /// Files queued or being worked on.
    busy: usize,
    closed: bool,
    /// Work was done (and its written bytes freed) since memory was last given back.
    give_back_owed: bool,
    /// Workers napping: each looks at the queue within [`NAP`] without being woken.
    napping: usize,
    /// When the last file was queued.
    last_push: Option<Instant>,
    /// The mean gap between files queued (an exponential average over about eight, each
    /// gap counted up to [`GAP_COUNTED_MAX`]).
    push_gap: Duration,
}

impl QueueState {
    /// Whether an idle worker should nap rather than sleep until woken: files have been
    /// coming close together, and one came within the last two naps.
    fn worth_napping(&self) -> bool {
        self.push_gap < NAP_WHILE_GAPS_UNDER
            && self.last_push.is_some_and(|t| t.elapsed() < 2 * NAP)
    }
}

/// The files that have commits to install, shared by `Fs` and its worker threads.
#[derive(Default)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
    /// Workers sleeping until they are woken.
    work: Condvar,
    /// Workers napping, woken only by `close`.
    nap: Condvar,
    idle: Condvar,
    started: std::sync::atomic::AtomicBool,
}

impl CommitQueue {
    /// Whether workers run (else every commit is made inline).
    pub(crate) fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Queues a file for a worker. A sleeping worker is woken only when the napping ones
    /// are too few for the files waiting: a napping worker finds the file within [`NAP`],
    /// and the close or fsync that queued it returns without paying for a wake-up.
    pub(crate) fn push(&self, inode: Arc<Inode>) {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let gap = state
            .last_push
            .map_or(GAP_COUNTED_MAX, |t| (now - t).min(GAP_COUNTED_MAX));
        state.push_gap = (state.push_gap * 7 + gap) / 8;
        state.last_push = Some(now);
        state.files.push_back(inode);
        state.busy += 1;
        if state.files.len() > state.napping {
            self.work.notify_one();
        }
    }

    /// The next file to work on; `None` once the queue is closed.
    fn next(&self) -> Option<Arc<Inode>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(inode) = state.files.pop_front() {
                return Some(inode);
            }
            if state.closed {
                return None;
            }
            if state.worth_napping() {
                state.napping += 1;
                state = self
                    .nap
                    .wait_timeout(state, NAP)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                state.napping -= 1;
                continue;
            }
            if !state.give_back_owed {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let (next, waited) = self
                .work
                .wait_timeout(state, crate::memory::IDLE_BEFORE_GIVING_BACK)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if waited.timed_out() && state.busy == 0 && state.give_back_owed {
                state.give_back_owed = false;
                drop(state);
                crate::memory::give_back_free_memory();
                state = lock(&self.state);
            }
        }
    }

    fn done(&self) {
        let mut state = lock(&self.state);
        state.busy -= 1;
        if state.busy == 0 {
            state.give_back_owed = true;
            self.idle.notify_all();
        }
    }

    /// Waits until no file has a commit queued or in a worker's hands.
    pub(crate) fn wait_idle(&self) {
        let mut state = lock(&self.state);
        while state.busy > 0 {
            state = self
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Lets the workers finish what is queued and exit.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.work.notify_all();
        self.nap.notify_all();
    }
}

impl Fs {
    /// Starts `n` commit workers: from now on big commits are made off the request path.
    /// Without them every commit is inline. The workers hold the file system weakly and
    /// exit when it is dropped.
    pub fn start_commit_workers(self: &Arc<Fs>, n: usize) -> std::io::Result<()> {
        if self
            .commit_queue
            .started
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(());
        }
        for i in 0..n.max(1) {
            let fs: Weak<Fs> = Arc::downgrade(self);
            let queue = self.commit_queue.clone();
            std::thread::Builder::new()
                .name(format!("memfs-commit-{i}"))
                .spawn(move || {
                    while let Some(inode) = queue.next() {
                        if let Some(fs) = fs.upgrade() {
                            fs.run_commits(&inode);
                        }
                        queue.done();
                    }
                })?;
        }
        Ok(())
    }

    /// Waits until every commit handed to a worker so far is installed (or given up): for
    /// shutdown and the whole-file-system checks and statistics.
    pub fn drain_commits(&self) {
        self.commit_queue.wait_idle();
    }
}
