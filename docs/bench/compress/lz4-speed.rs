use std::time::Instant;
fn main() {
    let rnd = std::fs::read("/tmp/untar-exp/shm/small.bin").unwrap();
    let pg = std::fs::read("/tmp/untar-exp/shm/pg.tar").unwrap();
    for (name, data) in [("random", &rnd[..]), ("pg", &pg[..100 << 20])] {
        let t = Instant::now();
        let mut out = 0usize;
        for c in data.chunks(16384) { out += lz4_flex::block::compress(c).len(); }
        let el = t.elapsed();
        let packed: Vec<Vec<u8>> = data.chunks(16384).map(lz4_flex::block::compress).collect();
        let t2 = Instant::now();
        let mut n = 0; for (p, c) in packed.iter().zip(data.chunks(16384)) { n += lz4_flex::block::decompress(p, c.len()).unwrap().len(); }
        let el2 = t2.elapsed();
        let t3 = Instant::now();
        let mut skip = 0; for c in data.chunks(16384) { if lz4_flex::block::compress(&c[..1024]).len() > 1000 { skip += 1; } }
        println!("{name}: {} MiB -> {} MiB, compress {:.0} MB/s, decompress {:.0} MB/s ({n}), 1KiB probe {:?} skip {skip}/{}", data.len()>>20, out>>20, data.len() as f64/el.as_secs_f64()/1e6, data.len() as f64/el2.as_secs_f64()/1e6, t3.elapsed(), data.len()/16384);
    }
}
