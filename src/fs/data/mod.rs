//! File data: contents with their uncommitted overlays (`content`), the handle table
//! (`handles`), and the I/O on open files (`file`).

mod content;
mod file;
mod handles;
mod layer;
mod read;

pub use content::{prepare_layers, FileContent, PendingLayer, Prepared, MAX_FILE_SIZE};
pub use handles::Handle;
pub(crate) use handles::Handles;
pub use read::ReadBytes;
