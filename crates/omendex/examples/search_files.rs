//! Builds an index from a `.fvecs` file on one thread, answers the queries of another, and
//! writes the answers to a file: every query's `k` ids (little-endian `i64`, `-1` past the
//! last answer) and then every query's `k` distances (little-endian `f32`, `+inf` past it).
//!
//! ```text
//! cargo run --release -p omendex --example search_files -- \
//!     BASE.fvecs QUERIES.fvecs OUT METRIC M EF_CONSTRUCTION SEED K EF [SEGMENTS]
//! ```
//!
//! Without `SEGMENTS` (or with 0) the index is an [`omendex::Index`]; with it, an
//! [`omendex::SegmentedIndex`] of that many segments (ids `0..n` in file order either way). The
//! Python package's tests run it to check that both APIs give the same answers.

use std::error::Error;
use std::path::Path;

use omendex::{Index, Metric, Neighbor, Params, Query, SegmentPlan, SegmentedIndex};

/// The rows of a `.fvecs` file (each: a little-endian `i32` dimension, then that many `f32`)
/// and their dimension.
fn read_fvecs(path: &Path) -> Result<(Vec<f32>, usize), Box<dyn Error>> {
    let bytes = std::fs::read(path)?;
    let mut rows = Vec::new();
    let mut dim = None;
    let mut at = 0;
    while at < bytes.len() {
        let head: [u8; 4] = bytes.get(at..at + 4).ok_or("a truncated row")?.try_into()?;
        let d = usize::try_from(i32::from_le_bytes(head))?;
        if *dim.get_or_insert(d) != d || d == 0 {
            return Err(format!("{}: rows of different or zero dimension", path.display()).into());
        }
        let body = bytes.get(at + 4..at + 4 + 4 * d).ok_or("a truncated row")?;
        rows.extend(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        at += 4 + 4 * d;
    }
    Ok((rows, dim.ok_or("an empty file")?))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(9..=10).contains(&args.len()) {
        return Err("usage: search_files BASE QUERIES OUT METRIC M EF_CONSTRUCTION SEED K EF [SEGMENTS]".into());
    }
    let (base, dim) = read_fvecs(Path::new(&args[0]))?;
    let (queries, qdim) = read_fvecs(Path::new(&args[1]))?;
    if qdim != dim {
        return Err(format!("queries of dimension {qdim}, base of {dim}").into());
    }
    let metric: Metric = args[3].parse()?;
    let params = Params::new(metric).m(args[4].parse()?).ef_construction(args[5].parse()?).seed(args[6].parse()?);
    let (k, ef): (usize, usize) = (args[7].parse()?, args[8].parse()?);
    let segments: usize = args.get(9).map_or(Ok(0), |s| s.parse())?;

    // One thread: the graph is then fixed by the seed and the insertion order.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let answers: Vec<Vec<Neighbor>> = pool.install(|| -> Result<_, omendex::Error> {
        if segments == 0 {
            let mut index = Index::new(dim, params)?;
            index.add_batch(&base)?;
            queries.chunks_exact(dim).map(|q| index.query(&Query::new(q, k).ef(ef))).collect()
        } else {
            let index = SegmentedIndex::build(dim, params, &base, SegmentPlan::Count(segments))?;
            queries.chunks_exact(dim).map(|q| index.query(&Query::new(q, k).ef(ef))).collect()
        }
    })?;

    let mut out = Vec::with_capacity(answers.len() * k * 12);
    for hits in &answers {
        for j in 0..k {
            let id = hits.get(j).map_or(-1, |h| i64::try_from(h.id.0).unwrap_or(-1));
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    for hits in &answers {
        for j in 0..k {
            out.extend_from_slice(&hits.get(j).map_or(f32::INFINITY, |h| h.dist).to_le_bytes());
        }
    }
    std::fs::write(&args[2], out)?;
    Ok(())
}
