//! Transports: what carries kernel requests to the [`crate::request`] layer and its answers
//! back. Each decodes requests in its own format and calls the same handlers.
//!
//! - [`fuser`]: `/dev/fuse` through the `fuser` crate.
//! - [`uring`]: FUSE over io_uring, after an INIT negotiated by the fuser transport.

pub mod fuser;
pub mod uring;
