//! History: the versions a file keeps (`version`), reading them back (`versions`), making
//! them (`commit`), and dropping old ones to make room (`retention`).

mod commit;
mod pending;
mod retention;
mod version;
mod versions;

pub use commit::CHECKPOINT_MIN;
pub(crate) use pending::CommitQueue;
pub use pending::PendingCommits;
#[cfg(test)]
pub(crate) use retention::bytes_freed;
pub use version::{CommitCause, History, Version};
pub(crate) use versions::OpenVersions;
pub use versions::{VersionInfo, VersionReader, VersionStat};
