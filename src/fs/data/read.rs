//! What a read answers: the bytes of a range, either pointing into the chunks that hold
//! them (a committed range of the in-memory store) or copied into a buffer of their own
//! (dirty data, a remote store, control files). Serving a 1 MiB read from the chunks saves
//! zeroing and filling a 1 MiB buffer: the bytes are copied once, into the kernel.

use crate::fs::error::{store_failed, Result};
use crate::store::recipe::{Recipe, RecipeRef, RecipeSlice};

#[derive(Clone, Debug)]
pub enum ReadBytes {
    Copied(Vec<u8>),
    Shared(RecipeSlice),
}

impl ReadBytes {
    /// `offset..offset + size` of `recipe` (cut at its size): shared when its chunks are
    /// resident, else copied. EIO when the store cannot serve a chunk.
    pub fn of_recipe(recipe: &RecipeRef, offset: u64, size: u64) -> Result<ReadBytes> {
        let end = offset.saturating_add(size).min(recipe.size());
        if let Some(shared) = Recipe::share(recipe, offset, end) {
            return Ok(ReadBytes::Shared(shared));
        }
        let mut out = vec![0u8; end.saturating_sub(offset) as usize];
        recipe.read_into(offset, &mut out).map_err(store_failed)?;
        Ok(ReadBytes::Copied(out))
    }

    pub fn len(&self) -> usize {
        match self {
            ReadBytes::Copied(v) => v.len(),
            ReadBytes::Shared(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in order, as slices to write with one `writev`.
    pub fn slices(&self) -> Vec<&[u8]> {
        match self {
            ReadBytes::Copied(v) => vec![v.as_slice()],
            ReadBytes::Shared(s) => s.slices(),
        }
    }

    /// The bytes in one buffer of their own.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            ReadBytes::Copied(v) => v,
            ReadBytes::Shared(s) => s.slices().concat(),
        }
    }
}

impl From<Vec<u8>> for ReadBytes {
    fn from(bytes: Vec<u8>) -> ReadBytes {
        ReadBytes::Copied(bytes)
    }
}
