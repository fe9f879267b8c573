//! Recipes: an immutable file content as an ordered list of pieces, each a stored chunk or a
//! run of zeros (which costs nothing).
//!
//! A recipe is a plain value: each chunk piece holds its own counted reference
//! ([`ChunkRef`]), so cloning a recipe takes a reference per piece and dropping it releases
//! them. Holders share one recipe through [`RecipeRef`]; however many share it, it holds one
//! reference per piece.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::chunk::{ChunkId, ChunkRef};
use super::engine::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceData {
    /// `len` zero bytes. When longer than one zero chunk, a run of chunks of the chunker's
    /// `zero_cut()` length (the last one possibly shorter at the end of the file).
    Zeros,
    Chunk(ChunkRef),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Offset of the piece in the content.
    pub start: u64,
    pub len: u64,
    pub data: PieceData,
}

impl Piece {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// An immutable content. Shared (`Arc`) between the live file, its versions and readers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipe {
    pieces: Vec<Piece>,
    size: u64,
}

pub type RecipeRef = Arc<Recipe>;

/// The bytes of the chunks among `pieces` that are not resident, asked of their store at once.
fn load_remote<'a>(
    pieces: impl Iterator<Item = (&'a Piece, &'a ChunkRef)>,
) -> Result<HashMap<ChunkId, Bytes>, StoreError> {
    let mut ids = Vec::new();
    let mut store = None;
    for (_, chunk) in pieces {
        if chunk.bytes().is_none() {
            ids.push(*chunk.id());
            if store.is_none() {
                store = chunk.store();
            }
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let store = store.ok_or(StoreError::Unavailable("the store is gone".into()))?;
    let bytes = store.load(&ids)?;
    Ok(ids.into_iter().zip(bytes).collect())
}

impl Recipe {
    /// A recipe from contiguous pieces starting at 0.
    pub fn new(pieces: Vec<Piece>) -> Recipe {
        let size = pieces.last().map_or(0, Piece::end);
        debug_assert!(pieces.windows(2).all(|w| w[0].end() == w[1].start));
        Recipe { pieces, size }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Index of the piece holding byte `offset`, if `offset < size`.
    pub fn index_at(&self, offset: u64) -> Option<usize> {
        if offset >= self.size {
            return None;
        }
        Some(self.pieces.partition_point(|p| p.end() <= offset))
    }

    /// Copies the bytes of `offset..offset + out.len()` (within the size) into `out`; zeros
    /// need no copy, `out` must come zeroed. Chunks whose bytes are not in this process are
    /// loaded from their store in one request; an error if it cannot serve them (never
    /// other bytes).
    pub fn read_into(&self, offset: u64, out: &mut [u8]) -> Result<(), StoreError> {
        let end = (offset + out.len() as u64).min(self.size);
        let Some(first) = self.index_at(offset) else {
            return Ok(());
        };
        let within = self.pieces[first..]
            .iter()
            .take_while(|p| p.start < end)
            .filter_map(|p| match &p.data {
                PieceData::Chunk(c) => Some((p, c)),
                PieceData::Zeros => None,
            });
        let loaded = load_remote(within.clone())?;
        for (p, chunk) in within {
            let from = offset.max(p.start);
            let to = end.min(p.end());
            let bytes = match chunk.bytes() {
                Some(b) => b,
                None => loaded.get(chunk.id()).map(|b| &b[..]).unwrap_or_default(),
            };
            let src = bytes
                .get((from - p.start) as usize..(to - p.start) as usize)
                .ok_or(StoreError::Corrupt(*chunk.id()))?;
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
        }
        Ok(())
    }

    /// Number of chunks, counting each zero chunk of a zero run.
    pub fn chunk_count(&self, zero_cut: u64) -> u64 {
        self.pieces
            .iter()
            .map(|p| match p.data {
                PieceData::Zeros => p.len.div_ceil(zero_cut.max(1)),
                PieceData::Chunk(_) => 1,
            })
            .sum()
    }

    /// Bytes held in chunks (not zeros).
    pub fn data_bytes(&self) -> u64 {
        self.pieces
            .iter()
            .filter(|p| matches!(p.data, PieceData::Chunk(_)))
            .map(|p| p.len)
            .sum()
    }

    /// Every chunk boundary (offsets where a chunk starts), zero runs expanded, and the size.
    pub fn boundaries(&self, zero_cut: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p.data {
                PieceData::Chunk(_) => out.push(p.start),
                PieceData::Zeros => {
                    let mut at = p.start;
                    while at < p.end() {
                        out.push(at);
                        at += zero_cut.max(1);
                    }
                }
            }
        }
        out.push(self.size);
        out
    }
}
