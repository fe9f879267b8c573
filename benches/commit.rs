//! Benchmarks for chunking, the content store and commits.
//!
//! Run with `cargo bench --bench commit` (about a minute once built; every group uses 10
//! samples).
//!
//! - `chunker`: FastCDC cutting of 64 MiB of pseudo-random bytes at avg 8 KiB (2/8/32 KiB),
//!   16 KiB (the default 4/16/64 KiB) and 64 KiB (16/64/256 KiB), and fixed 16 KiB blocks.
//!   Only the cutting is timed (no hashing).
//! - `store_insert`: cutting 64 MiB with the default chunker, hashing (blake3) and inserting
//!   every chunk into a fresh store (`fresh_64m`), and inserting the same data again into a
//!   store that already holds all of it (`dup_64m`).
//! - `commit`: a 256 MiB file written and committed once, outside the timing. Each iteration
//!   starts from a clone of it (`FileContent` clones share the committed `Arc<Recipe>`; the
//!   clone is made in the `iter_batched` setup and the result is dropped after the timer
//!   stops):
//!   - `append_4k_to_256m`: write 4 KiB at the end of the file and commit;
//!   - `edit_12b_in_256m`: overwrite 12 bytes in the middle and commit;
//!   - `full_256m`: the initial commit of the whole 256 MiB (uncommitted) into a fresh store.
//!
//! Results of one `cargo bench --bench commit` run (criterion's estimate with its 95% range; a
//! 2-core machine with other builds running, load about 3.5, so the ranges are wide):
//!
//! | benchmark                    | time                            | throughput  |
//! |------------------------------|---------------------------------|-------------|
//! | chunker/fastcdc/8k           | 43.2 ms  [36.3, 50.4]           | 1.45 GiB/s  |
//! | chunker/fastcdc/16k_default  | 30.8 ms  [29.1, 33.6]           | 2.03 GiB/s  |
//! | chunker/fastcdc/64k          | 47.8 ms  [38.3, 53.8]           | 1.31 GiB/s  |
//! | chunker/fixed/16k            | 11.8 µs  [10.7, 12.9]           | (no scan)   |
//! | store_insert/fresh_64m       | 137.5 ms [126.0, 149.5]         | 466 MiB/s   |
//! | store_insert/dup_64m         | 77.9 ms  [63.4, 91.7]           | 822 MiB/s   |
//! | commit/append_4k_to_256m     | 200.7 µs [188.2, 224.1]         |             |
//! | commit/edit_12b_in_256m      | 272.1 µs [252.3, 293.3]         |             |
//! | commit/full_256m             | 702.6 ms [654.9, 754.5]         | 364 MiB/s   |
//!
//! Those chunker rows are the `fastcdc` crate's scan. memfs's own (`store/gear.rs`, four hash
//! chains, the same cut points), on another host with the crate measured just before it:
//! 8k 1.93 → 2.61 GiB/s, 16k_default 1.85 → 2.93 GiB/s, 64k 1.74 → 3.19 GiB/s.
//!
//! The base recipe has 13,465 pieces; the append re-chunks 10,460 B and the edit 14,882 B.
//!
//! append_4k_to_256m / full_256m = 200.7 µs / 702.6 ms = 0.029% (about 1/3,500; at most
//! 0.034% taking the ends of the ranges against each other), far under the required 1%.
//! edit_12b_in_256m / full_256m = 0.039%.
//!
//! With each commit's chunks hashed on all cores while the next batch is cut, and each byte
//! copied out of the overlay once (same machine, load about 4 from other builds): before
//! (main) full_256m 662.6 ms [641.3, 688.6], append 218.8 µs, edit 288.4 µs; after
//! full_256m 353.9 ms [333.3, 379.0] (723 MiB/s), append 127.3 µs, edit 152.5 µs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use memfs::fs::FileContent;
use memfs::store::{Chunker, ChunkerKind, ContentStore, MemoryStore};
use memfs::testdata::noise;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn fastcdc(avg: usize) -> Chunker {
    Chunker::new(ChunkerKind::FastCdc, avg / 4, avg, avg * 4).expect("valid chunk sizes")
}

fn chunker(c: &mut Criterion) {
    let data = noise(64 * MIB, 0x5eed_0001);
    let mut group = c.benchmark_group("chunker");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(data.len() as u64));
    let configs = [
        ("fastcdc", "8k", fastcdc(8 * KIB)),
        ("fastcdc", "16k_default", Chunker::default()),
        ("fastcdc", "64k", fastcdc(64 * KIB)),
        (
            "fixed",
            "16k",
            Chunker::new(ChunkerKind::Fixed, 0, 16 * KIB, 0).expect("valid chunk size"),
        ),
    ];
    for (kind, size, chunker) in &configs {
        group.bench_function(BenchmarkId::new(*kind, *size), |b| {
            b.iter(|| {
                let mut count = 0usize;
                let mut total = 0usize;
                for (_, n) in chunker.chunks(black_box(&data)) {
                    count += 1;
                    total += n;
                }
                black_box((count, total))
            })
        });
    }
    group.finish();
}

fn store_insert(c: &mut Criterion) {
    let data = noise(64 * MIB, 0x5eed_0002);
    let chunker = Chunker::default();
    let mut group = c.benchmark_group("store_insert");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(data.len() as u64));

    // Every chunk is new. The references are kept (a chunk goes with its last one) and
    // dropped, with the store, after the timer stops.
    group.bench_function("fresh_64m", |b| {
        b.iter_batched(
            MemoryStore::new,
            |store| {
                let refs: Vec<_> = chunker
                    .chunks(&data)
                    .map(|(o, n)| store.put(&data[o..o + n]).chunk)
                    .collect();
                (store, refs)
            },
            BatchSize::PerIteration,
        )
    });

    // Every chunk is already stored: hashing and lookups only.
    let store = MemoryStore::new();
    let kept: Vec<_> = chunker
        .chunks(&data)
        .map(|(o, n)| store.put(&data[o..o + n]).chunk)
        .collect();
    group.bench_function("dup_64m", |b| {
        b.iter_with_large_drop(|| {
            chunker
                .chunks(&data)
                .map(|(o, n)| {
                    let put = store.put(&data[o..o + n]);
                    debug_assert!(!put.new);
                    put.chunk
                })
                .collect::<Vec<_>>()
        })
    });
    group.finish();
    drop(kept);
}

fn commit(c: &mut Criterion) {
    const SIZE: usize = 256 * MIB;
    let chunker = Chunker::default();
    let store = MemoryStore::new();

    // The uncommitted 256 MiB content, written as a sequence of 1 MiB writes.
    let dirty = {
        let data = noise(SIZE, 0x5eed_0003);
        let mut content = FileContent::default();
        for (i, part) in data.chunks(MIB).enumerate() {
            content.write((i * MIB) as u64, part).unwrap();
        }
        content
    };
    // The same content committed once.
    let base = {
        let mut content = dirty.clone();
        let done = content.commit(&chunker, &*store).expect("a first commit");
        assert_eq!(done.chunked_bytes, SIZE as u64);
        content
    };
    let tail = noise(4 * KIB, 0x5eed_0004);
    let edit_at = (SIZE / 2 + 12_345) as u64;
    let edit = b"hello, world";

    // Out of the timing: how much each commit re-chunks.
    {
        let pieces = base.base().pieces().len();
        let mut c = base.clone();
        c.write(SIZE as u64, &tail).unwrap();
        let a = c.commit(&chunker, &*store).unwrap();
        let mut c = base.clone();
        c.write(edit_at, edit).unwrap();
        let e = c.commit(&chunker, &*store).unwrap();
        eprintln!(
            "commit: base 256 MiB = {pieces} pieces; append 4 KiB re-chunks {} B ({} B new); \
             edit 12 B re-chunks {} B ({} B new)",
            a.chunked_bytes, a.new_bytes, e.chunked_bytes, e.new_bytes
        );
        assert!(a.chunked_bytes <= (chunker.max + 4 * KIB) as u64);
        assert!(e.chunked_bytes <= 3 * chunker.max as u64);
    }

    let mut group = c.benchmark_group("commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // One iteration per batch: each starts from the committed base with no chunk of an
    // earlier iteration alive, and the result (new recipe, its chunks) is dropped untimed.
    group.bench_function("append_4k_to_256m", |b| {
        b.iter_batched(
            || base.clone(),
            |mut content| {
                content.write(SIZE as u64, &tail).unwrap();
                let done = content.commit(&chunker, &*store);
                (content, done)
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("edit_12b_in_256m", |b| {
        b.iter_batched(
            || base.clone(),
            |mut content| {
                content.write(edit_at, edit).unwrap();
                let done = content.commit(&chunker, &*store);
                (content, done)
            },
            BatchSize::PerIteration,
        )
    });

    // The whole file into a fresh store. The 256 MiB clone of the dirty content is made in
    // the setup, and the committed content and its store are dropped after the timer stops.
    group
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("full_256m", |b| {
        b.iter_batched(
            || (dirty.clone(), MemoryStore::new()),
            |(mut content, store): (FileContent, Arc<MemoryStore>)| {
                let done = content.commit(&chunker, &*store);
                (content, done, store)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, chunker, store_insert, commit);
criterion_main!(benches);
