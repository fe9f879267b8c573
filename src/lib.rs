//! memfs: an in-memory FUSE file system with descendant counts (and, to come, versions,
//! deduplicated chunks and call tracing).
//!
//! - [`fs`]: the core file system, free of FUSE types.
//! - [`request`]: the request layer over the core, free of any transport's types: errno
//!   mapping, panic handling, cache policy and tracing.
//! - [`transport`]: what carries kernel requests to the request layer (`fuser` today).
//! - [`mount`]: mounting, serving and unmounting (signals, checks on the mount point).

pub mod fs;
pub mod mount;
pub mod request;
pub mod store;
#[doc(hidden)]
pub mod testdata;
pub mod trace;
pub mod transport;
