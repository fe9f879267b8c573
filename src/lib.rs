//! memfs: an in-memory FUSE file system with descendant counts (and, to come, versions,
//! deduplicated chunks and call tracing).
//!
//! - [`fs`]: the core file system, free of FUSE types.
//! - [`control`]: the read-only `.memfs` control directory, served outside the core.
//! - [`router`]: sends each request to the core or to the control plane.
//! - [`request`]: the request layer over the core, free of any transport's types: errno
//!   mapping, panic handling, cache policy and tracing.
//! - [`transport`]: what carries kernel requests to the request layer (`fuser` today).
//! - [`mount`]: mounting, serving and unmounting (signals, checks on the mount point).

pub mod control;
pub mod fs;
pub mod memory;
pub mod mount;
pub mod request;
pub mod router;
pub mod store;
pub(crate) mod sync;
#[doc(hidden)]
pub mod testdata;
pub(crate) mod throttle;
pub mod trace;
pub mod transport;
pub mod units;
