//! A file's history: immutable versions committed at close or fsync.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::store::RecipeRef;

/// What committed a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitCause {
    /// A handle that wrote was closed (flush or release).
    Close,
    /// `fsync`/`fdatasync`.
    Fsync,
    /// `truncate(2)` on a path with no writer open.
    Truncate,
}

impl CommitCause {
    pub fn name(self) -> &'static str {
        match self {
            CommitCause::Close => "close",
            CommitCause::Fsync => "fsync",
            CommitCause::Truncate => "truncate",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Version {
    pub number: u64,
    pub time: SystemTime,
    pub size: u64,
    pub recipe: RecipeRef,
    pub cause: CommitCause,
    /// Bytes of chunks this commit added to the store.
    pub new_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    versions: VecDeque<Version>,
    last_number: u64,
}

impl Version {
    pub fn new(
        number: u64,
        recipe: RecipeRef,
        cause: CommitCause,
        new_bytes: u64,
        time: SystemTime,
    ) -> Version {
        Version {
            number,
            time,
            size: recipe.size(),
            recipe,
            cause,
            new_bytes,
        }
    }
}

impl History {
    /// The number of the next version, taken at its commit point (a commit handed to a
    /// worker is installed later, with this number; one that is given up leaves it unused).
    pub fn reserve(&mut self) -> u64 {
        self.last_number += 1;
        self.last_number
    }

    /// The newest number reserved so far (0 before the first).
    pub fn last_reserved(&self) -> u64 {
        self.last_number
    }

    /// Records a new version (numbered by [`History::reserve`]); it is the newest, the
    /// file's committed content. The caller drops old versions beyond what it keeps with
    /// [`History::pop_oldest`].
    pub fn push(&mut self, version: Version) {
        debug_assert!(self
            .versions
            .back()
            .is_none_or(|v| v.number < version.number));
        self.versions.push_back(version);
    }

    /// Takes out the oldest version, never the newest (the committed content).
    pub fn pop_oldest(&mut self) -> Option<Version> {
        if self.versions.len() < 2 {
            return None;
        }
        self.versions.pop_front()
    }

    /// Takes out version `number` unless it is the newest.
    pub fn remove_old(&mut self, number: u64) -> Option<Version> {
        let i = self.versions.iter().position(|v| v.number == number)?;
        if i + 1 == self.versions.len() {
            return None;
        }
        self.versions.remove(i)
    }

    /// The newest version (the committed content), if any.
    pub fn newest(&self) -> Option<&Version> {
        self.versions.back()
    }

    pub fn versions(&self) -> impl DoubleEndedIterator<Item = &Version> {
        self.versions.iter()
    }

    pub fn get(&self, number: u64) -> Option<&Version> {
        self.versions.iter().find(|v| v.number == number)
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}
