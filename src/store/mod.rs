//! Content storage: chunkers, the deduplicated blob store, and recipes.

pub mod blob;
pub mod chunker;
pub mod recipe;

pub use blob::{BlobStore, Hash, StoreStats};
pub use chunker::{Chunker, ChunkerKind};
pub use recipe::{Piece, PieceData, Recipe, RecipeRef};
