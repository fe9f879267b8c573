//! Property tests of file contents over the deduplicated store, against a plain Vec<u8>:
//! reads see every write, every version's bytes hash back to its recipe, reference counts
//! equal a recount over the live recipes, and a recipe does not depend on edit history.
//! Commits are made inline (every layer folded at once) or as a commit worker makes them
//! (the live layer frozen and chunked apart, its buffers shared with the chunks cut from
//! them), and the store holds nothing once every recipe is gone.

use std::collections::HashMap;
use std::sync::Arc;

use memfs::fs::{prepare_layers, FileContent};
use memfs::store::{
    ChunkId, Chunker, ChunkerKind, ContentStore, MemoryStore, PieceData, Recipe, RecipeRef,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Write {
        offset: u64,
        len: usize,
        seed: u8,
    },
    Truncate(u64),
    PunchHole {
        offset: u64,
        len: u64,
    },
    Commit,
    /// A commit as a worker makes it: the live layer frozen, then chunked from the frozen
    /// layers alone and installed.
    WorkerCommit,
}

/// Small chunk sizes so that files of a few hundred KiB have many chunks.
fn chunker(kind: ChunkerKind) -> Chunker {
    Chunker::new(kind, 256, 1024, 4096).unwrap()
}

fn op(max: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..max, 1usize..20_000, any::<u8>()).prop_map(|(offset, len, seed)| Op::Write { offset, len, seed }),
        1 => (0..max).prop_map(Op::Truncate),
        1 => (0..max, 1..max / 4).prop_map(|(offset, len)| Op::PunchHole { offset, len }),
        2 => Just(Op::Commit),
        2 => Just(Op::WorkerCommit),
    ]
}

/// Bytes with some repetition (so chunks dedup) and some zeros.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| match seed % 4 {
            0 => 0,
            1 => (i % 251) as u8,
            _ => {
                ((i as u64)
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed as u64)
                    >> 13) as u8
            }
        })
        .collect()
}

fn apply(model: &mut Vec<u8>, content: &mut FileContent, op: &Op) {
    match *op {
        Op::Write { offset, len, seed } => {
            let data = bytes(len, seed);
            content.write(offset, &data).unwrap();
            let end = offset as usize + len;
            if model.len() < end {
                model.resize(end, 0);
            }
            model[offset as usize..end].copy_from_slice(&data);
        }
        Op::Truncate(size) => {
            content.truncate(size).unwrap();
            model.resize(size as usize, 0);
        }
        Op::PunchHole { offset, len } => {
            content.punch_hole(offset, len);
            let end = ((offset + len) as usize).min(model.len());
            if (offset as usize) < end {
                model[offset as usize..end].fill(0);
            }
        }
        Op::Commit | Op::WorkerCommit => {}
    }
}

/// The bytes a recipe stands for, checking that every chunk hashes to its name.
fn recipe_bytes(recipe: &Recipe) -> Vec<u8> {
    let mut out = Vec::with_capacity(recipe.size() as usize);
    for p in recipe.pieces() {
        assert_eq!(p.start, out.len() as u64, "pieces are contiguous");
        match &p.data {
            PieceData::Zeros => out.resize(out.len() + p.len as usize, 0),
            PieceData::Chunk(blob) => {
                assert_eq!(
                    blake3::hash(blob.bytes().expect("in memory")).as_bytes(),
                    blob.id().as_bytes()
                );
                assert_eq!(blob.len() as u64, p.len);
                out.extend_from_slice(blob.bytes().expect("in memory"));
            }
        }
    }
    out
}

/// Every blob's reference count equals its number of uses in the distinct live recipes.
fn check_refcounts(store: &dyn ContentStore, recipes: &[RecipeRef]) {
    let mut seen = std::collections::HashSet::new();
    let mut uses: HashMap<ChunkId, u64> = HashMap::new();
    for r in recipes {
        if !seen.insert(Arc::as_ptr(r)) {
            continue;
        }
        for p in r.pieces() {
            if let PieceData::Chunk(b) = &p.data {
                *uses.entry(*b.id()).or_default() += 1;
            }
        }
    }
    let mut blobs = Vec::new();
    store.for_each_chunk(&mut |c| blobs.push(*c));
    assert_eq!(blobs.len(), uses.len(), "blobs in the store vs blobs used");
    for b in blobs {
        assert_eq!(b.refs, uses[&b.id], "refcount of a blob");
        assert_eq!(store.refs(&b.id), b.refs, "refcount of a blob");
    }
}

fn run(ops: &[Op], kind: ChunkerKind) {
    let store = MemoryStore::new();
    let chunker = chunker(kind);
    let mut content = FileContent::default();
    let mut model = Vec::new();
    let mut versions: Vec<(RecipeRef, Vec<u8>)> = Vec::new();
    for op in ops.iter().chain([Op::Commit].iter()) {
        apply(&mut model, &mut content, op);
        assert_eq!(content.size(), model.len() as u64);
        assert_eq!(
            content.read(0, usize::MAX).unwrap(),
            model,
            "read after {op:?}"
        );
        if let Op::WorkerCommit = op {
            let through = content.freeze();
            let pending = content.pending_through(&through).unwrap().to_vec();
            let prepared = prepare_layers(content.base(), &pending, &chunker, &*store).unwrap();
            // The buffers its chunks keep are its layers' (counted twice until installed).
            let dirty: u64 = pending.iter().map(|l| l.dirty_bytes()).sum();
            assert!(store.stats().held_twice_bytes <= dirty);
            drop(pending);
            let changed = prepared.as_ref().is_some_and(|p| p.recipe.is_some());
            content
                .install_layers(&through, prepared.and_then(|p| p.recipe))
                .unwrap();
            assert_eq!(store.stats().held_twice_bytes, 0, "installed, counted once");
            if changed {
                versions.push((content.base().clone(), model.clone()));
            }
        }
        if let Op::Commit | Op::WorkerCommit = op {
            if let Some(done) = content.commit(&chunker, &*store) {
                versions.push((done.recipe, model.clone()));
            }
            assert!(!content.is_dirty());
            assert_eq!(
                content.read(0, usize::MAX).unwrap(),
                model,
                "read after commit"
            );
        }
    }
    for (recipe, expected) in &versions {
        assert_eq!(&recipe_bytes(recipe), expected, "version bytes");
    }
    let mut live: Vec<RecipeRef> = versions.iter().map(|(r, _)| r.clone()).collect();
    live.push(content.base().clone());
    check_refcounts(&*store, &live);

    // The same final bytes written in one go give the same chunks.
    let mut fresh = FileContent::default();
    fresh.write(0, &model).unwrap();
    fresh.commit(&chunker, &*store);
    let z = chunker.zero_cut() as u64;
    assert_eq!(
        fresh.base().boundaries(z),
        content.base().boundaries(z),
        "boundaries depend on history"
    );
    assert_eq!(**fresh.base(), **content.base());

    drop((versions, live, content, fresh));
    assert_eq!(
        store.stats().chunks,
        0,
        "store empty once every recipe is gone"
    );
    assert_eq!(store.stats().stored_bytes, 0);
    assert_eq!(
        store.stats().resident_bytes,
        0,
        "no write buffer kept once its chunks are gone"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn fastcdc_contents_match_a_plain_model(ops in prop::collection::vec(op(300_000), 1..40)) {
        run(&ops, ChunkerKind::FastCdc);
    }

    #[test]
    fn fixed_contents_match_a_plain_model(ops in prop::collection::vec(op(300_000), 1..40)) {
        run(&ops, ChunkerKind::Fixed);
    }
}
