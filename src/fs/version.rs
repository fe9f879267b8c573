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

impl History {
    /// Records a new version and drops the oldest beyond `keep` (freeing chunks only they
    /// held). Returns its number.
    pub fn push(
        &mut self,
        recipe: RecipeRef,
        cause: CommitCause,
        new_bytes: u64,
        time: SystemTime,
        keep: usize,
    ) -> u64 {
        self.last_number += 1;
        self.versions.push_back(Version {
            number: self.last_number,
            time,
            size: recipe.size(),
            recipe,
            cause,
            new_bytes,
        });
        while self.versions.len() > keep.max(1) {
            self.versions.pop_front();
        }
        self.last_number
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
