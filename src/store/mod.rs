//! Content storage: chunkers, the content store (its trait and the in-memory engine),
//! chunk ids and counted references, and recipes.

pub mod chunk;
pub mod chunker;
pub mod engine;
mod gear;
pub mod memory;
mod pinned;
pub mod recipe;
pub mod redis;

pub use chunk::{ChunkId, ChunkRef};
pub use chunker::{Chunker, ChunkerKind};
pub use engine::{
    ChunkInfo, ContentStore, Cut, HeldTwice, Put, StoreError, StoreReport, StoreStats,
};
pub use memory::MemoryStore;
pub use recipe::{Piece, PieceData, Recipe, RecipeRef};
