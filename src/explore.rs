//! `memfs chunks`: the chunking explorer (to be written).

use std::path::Path;

use anyhow::Result;
use memfs::store::Chunker;

pub fn run(
    file: &Path,
    edited: Option<&Path>,
    chunker: &Chunker,
    svg: Option<&Path>,
) -> Result<()> {
    let _ = (file, edited, chunker, svg);
    anyhow::bail!("memfs chunks is not written yet")
}
