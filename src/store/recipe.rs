//! Recipes: an immutable file content as an ordered list of pieces, each a stored chunk or a
//! run of zeros (which costs nothing).
//!
//! A recipe is a plain value: each chunk piece holds its own counted reference
//! ([`ChunkRef`]), so cloning a recipe takes a reference per piece and dropping it releases
//! them. Holders share one recipe through [`RecipeRef`]; however many share it, it holds one
//! reference per piece.

use std::sync::Arc;

use super::chunk::ChunkRef;

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
    /// need no copy, `out` must come zeroed.
    pub fn read_into(&self, offset: u64, out: &mut [u8]) {
        let end = (offset + out.len() as u64).min(self.size);
        let Some(mut i) = self.index_at(offset) else {
            return;
        };
        while i < self.pieces.len() && self.pieces[i].start < end {
            let p = &self.pieces[i];
            if let PieceData::Chunk(chunk) = &p.data {
                let from = offset.max(p.start);
                let to = end.min(p.end());
                let src = &chunk.bytes()[(from - p.start) as usize..(to - p.start) as usize];
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
            i += 1;
        }
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
