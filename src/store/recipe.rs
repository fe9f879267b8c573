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

/// Zeros for reads of zero runs to point into, a slice per block.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// A range of a recipe whose chunks are all resident, read without copying: a read answers
/// the kernel straight from the chunks (one `writev`) instead of first copying them into
/// a buffer of its own. Holds the recipe, so its chunks stay while the answer is written.
#[derive(Clone, Debug)]
pub struct RecipeSlice {
    recipe: RecipeRef,
    start: u64,
    end: u64,
}

impl RecipeSlice {
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The pieces that hold some of the range.
    fn pieces(&self) -> impl Iterator<Item = &Piece> {
        self.recipe.pieces_in(self.start, self.end)
    }

    /// The bytes in order: a slice of each chunk, and of `ZEROS` per block of a zero run.
    pub fn slices(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for p in self.pieces() {
            let from = (self.start.max(p.start) - p.start) as usize;
            let to = (self.end.min(p.end()) - p.start) as usize;
            match &p.data {
                // `share` checked that every chunk's bytes are here, whole.
                PieceData::Chunk(c) => {
                    out.push(c.bytes().and_then(|b| b.get(from..to)).unwrap_or_default())
                }
                PieceData::Zeros => {
                    let mut left = to - from;
                    while left > 0 {
                        let n = left.min(ZEROS.len());
                        out.push(&ZEROS[..n]);
                        left -= n;
                    }
                }
            }
        }
        out
    }
}

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

    /// The pieces that hold some of `offset..end`, in order.
    fn pieces_in(&self, offset: u64, end: u64) -> impl Iterator<Item = &Piece> + Clone {
        let first = self.index_at(offset).unwrap_or(self.pieces.len());
        self.pieces[first..]
            .iter()
            .take_while(move |p| p.start < end)
    }

    /// Copies the bytes of `offset..offset + out.len()` (within the size) into `out`; zeros
    /// need no copy, `out` must come zeroed. Chunks whose bytes are not in this process are
    /// loaded from their store in one request; an error if it cannot serve them (never
    /// other bytes).
    pub fn read_into(&self, offset: u64, out: &mut [u8]) -> Result<(), StoreError> {
        let end = (offset + out.len() as u64).min(self.size);
        let within = self.pieces_in(offset, end).filter_map(|p| match &p.data {
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

    /// `offset..end` (cut at the size) as the chunks' own bytes, when every chunk in it
    /// keeps its bytes in this process; `None` otherwise (a remote store: copy it with
    /// `read_into`).
    pub fn share(recipe: &RecipeRef, offset: u64, end: u64) -> Option<RecipeSlice> {
        let end = end.min(recipe.size);
        let slice = RecipeSlice {
            recipe: recipe.clone(),
            start: offset.min(end),
            end,
        };
        let resident = slice.pieces().all(|p| match &p.data {
            PieceData::Chunk(c) => c.bytes().is_some_and(|b| b.len() as u64 == p.len),
            PieceData::Zeros => true,
        });
        resident.then_some(slice)
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
