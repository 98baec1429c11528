//! The quality of a graph built on 8-bit codes, apart from the codes' search: builds the same
//! index twice (f32 rows, then `Quantization::Int8`) and sweeps the plain f32 search
//! (`omendex_search::knn_search` on each graph's f32 rows) over ef, printing recall@10 against the
//! folder's ground truth. Equal curves mean the walk on codes (with exact selection) builds as
//! good a graph as the walk on rows.
//!
//! ```sh
//! cargo run --release -p omendex-segment --example graph_quality -- ../shared/data/minilm-rustdoc cosine
//! ```

use omendex_distance::{Distance, Metric};
use omendex_index::Index;
use omendex_params::{Params, Quantization};
use omendex_search::{AllNodes, Request, Route, SearchScratch, View, knn_search};

/// A TEXMEX file's rows (each: a u32 dimension, then that many 4-byte values) as raw words.
fn read_vecs(path: &str) -> Result<(usize, Vec<u32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let words: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let dim = *words.first().ok_or(format!("{path}: empty"))? as usize;
    if dim == 0 || !words.len().is_multiple_of(dim + 1) {
        return Err(format!("{path}: not a TEXMEX file"));
    }
    Ok((dim, words.chunks(dim + 1).flat_map(|r| r[1..].to_vec()).collect()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(metric)) = (args.next(), args.next()) else {
        return Err("usage: graph_quality TEXMEX_DIR l2|ip|cosine".into());
    };
    let metric: Metric = metric.parse()?;
    let (dim, base) = read_vecs(&format!("{dir}/base.fvecs"))?;
    let base: Vec<f32> = base.into_iter().map(f32::from_bits).collect();
    let (_, queries) = read_vecs(&format!("{dir}/query.fvecs"))?;
    let queries: Vec<f32> = queries.into_iter().map(f32::from_bits).collect();
    let (depth, truth) = read_vecs(&format!("{dir}/groundtruth.ivecs"))?;
    let dist = Distance::new(metric.compared_as());
    for quantization in Quantization::ALL {
        let mut index = Index::new(dim, Params::new(metric).quantization(quantization))?;
        let started = std::time::Instant::now();
        index.add_batch(&base)?;
        let vps = (base.len() / dim) as f64 / started.elapsed().as_secs_f64();
        print!("built on {quantization} ({vps:.0} vec/s, {:?}); f32 search, recall@10 by ef:", index.quantization());
        for ef in [10, 16, 24, 32, 48, 64, 128, 256, 384] {
            let mut scratch = SearchScratch::new();
            let mut hits = 0;
            for (i, q) in queries.chunks(dim).enumerate() {
                let request = Request::new(metric, dim, q, 10, ef)?;
                let found =
                    knn_search(View::new(index.graph(), &dist, None), &request, &AllNodes, Route::Walk, &mut scratch);
                let want = &truth[i * depth..i * depth + 10];
                hits += found.iter().filter(|n| want.contains(&n.id.0)).count();
            }
            print!(" {ef}: {:.4}", hits as f64 / (10 * queries.len() / dim) as f64);
        }
        println!();
    }
    Ok(())
}
