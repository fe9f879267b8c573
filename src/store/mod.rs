//! Content storage: chunkers, and (to come) the deduplicated blob store and recipes.

pub mod chunker;

pub use chunker::{Chunker, ChunkerKind};
