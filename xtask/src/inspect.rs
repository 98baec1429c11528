//! `cargo xtask inspect` (verify and summarise a saved index) and `cargo xtask open` (open
//! time and resident memory, read into memory or mapped).

use std::time::Instant;

use omendex::{Index, QuantizationStatus, Query, SegmentedIndex, VectorId};
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::synthetic::Synthetic;
use xtask::sysinfo;
use xtask::texmex;

use crate::Failure;

/// How `cargo xtask open` opens and queries an index.
pub(crate) struct OpenOptions<'a> {
    pub(crate) mmap: bool,
    pub(crate) queries: usize,
    pub(crate) data: Option<&'a std::path::Path>,
    pub(crate) ef: Option<usize>,
    pub(crate) cold: bool,
}

/// Drops `path`'s pages from the page cache (they are clean: written and synced).
fn drop_from_cache(path: &std::path::Path) -> Result<(), Failure> {
    #[cfg(target_os = "linux")]
    {
        let file = std::fs::File::open(path)?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .map_err(|e| Failure::Bad(format!("{}: dropping from the page cache: {e}", path.display())))?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err(Failure::Bad(format!("{}: --cold needs Linux", path.display())))
}

/// `cargo xtask open PATH [--mmap] [--data DIR] [--ef N] [--cold]`.
pub(crate) fn open(path: &std::path::Path, opts: OpenOptions<'_>) -> Result<(), Failure> {
    let OpenOptions { mmap, queries, data, ef, cold } = opts;
    let rss = |field: &str| sysinfo::proc_status_mb(field).unwrap_or(f64::NAN);
    // The queries (and truth) from a file first, so that the figures below count the index alone.
    let from_file = match data {
        Some(dir) => {
            let q = texmex::read_vectors(&dir.join("query.fvecs")).map_err(|e| Failure::Bad(e.to_string()))?;
            let gt = dir.join("groundtruth.ivecs");
            let truth = gt.exists().then(|| texmex::read_ground_truth(&gt, usize::MAX)).transpose();
            Some((q, truth.map_err(|e| Failure::Bad(e.to_string()))?))
        }
        None => None,
    };
    if cold {
        drop_from_cache(path)?;
    }
    let (before, file_before) = (rss("VmRSS:"), rss("RssFile:"));
    let started = Instant::now();
    let index = if mmap { Index::open_mmap(path)? } else { Index::load(path)? };
    let open_s = started.elapsed().as_secs_f64();
    let (after_open, file_after_open) = (rss("VmRSS:"), rss("RssFile:"));
    let (q, truth) = match from_file {
        Some(file) => file,
        // A few hundred KB of random queries, made after the open.
        None => {
            let data = Synthetic::parse(&format!("random-{}", index.dim())).map_err(Failure::Bad)?;
            (Dataset::synthetic(data, 0, queries.max(1)).queries, None)
        }
    };
    let n_q = queries.clamp(1, q.len());
    let ef = ef.unwrap_or(index.params().ef_search).max(10);
    let started = Instant::now();
    let mut found = Vec::with_capacity(n_q);
    for i in 0..n_q {
        let hits = index.query(&Query::new(q.row(i), 10).ef(ef))?;
        found.push(hits.iter().map(|h| h.id).collect::<Vec<_>>());
    }
    let qps = n_q as f64 / started.elapsed().as_secs_f64();
    let recall = truth.filter(|t| t.depth >= 10 && t.ids.len() >= n_q).map(|t| {
        let truth: Vec<Vec<VectorId>> =
            t.ids[..n_q].iter().map(|r| r[..10].iter().map(|&i| VectorId(u64::from(i))).collect()).collect();
        omendex_search::recall_at_k(&found, &truth, 10)
    });
    let out = json!({
        "file": path.display().to_string(), "file_mb": std::fs::metadata(path)?.len() as f64 / 1048576.0,
        "mode": if mmap { "open_mmap" } else { "load" }, "n": index.len(), "dim": index.dim(),
        "quantization": index.params().quantization.to_string(),
        "cold": cold, "open_s": open_s, "rss_before_mb": before, "rss_after_open_mb": after_open,
        "rss_after_queries_mb": rss("VmRSS:"),
        "rss_file_before_mb": file_before, "rss_file_after_open_mb": file_after_open,
        "rss_file_after_queries_mb": rss("RssFile:"),
        "queries": n_q, "ef": ef, "recall_at_10": recall, "qps_1t": qps,
    });
    println!("{out}");
    Ok(())
}

/// Whether the index walks on 8-bit codes, and their measured fit.
fn print_codes(index: &Index) {
    match index.quantization() {
        QuantizationStatus::Off => {}
        QuantizationStatus::Untrained => println!("  codes: none yet (no vector to train on)"),
        QuantizationStatus::Codes(fit) => println!(
            "  codes: 8-bit; fit {:.3} (share of {} sample vectors' exact 10 nearest among their 20 nearest by codes): walked on",
            fit.recall, fit.queries
        ),
        QuantizationStatus::TooCoarse(fit) => println!(
            "  codes: 8-bit; fit {:.3} over {} sample vectors, below 0.9: too coarse, the f32 rows are walked",
            fit.recall, fit.queries
        ),
    }
}

/// `cargo xtask inspect PATH`.
pub(crate) fn inspect(path: &std::path::Path) -> Result<(), Failure> {
    let print_stats = |stats: &omendex::GraphStats| {
        for line in stats.to_string().lines() {
            println!("  {line}");
        }
    };
    if path.is_dir() {
        let index = SegmentedIndex::load(path)?;
        println!("{}: segmented index, format version {}", path.display(), omendex::FORMAT_VERSION);
        println!(
            "  {} vectors of dimension {} in {} segments, quantization {}",
            index.len(),
            index.dim(),
            index.segments().len(),
            index.params().quantization
        );
        for (s, (segment, stats)) in index.segments().iter().zip(index.stats()).enumerate() {
            println!("segment {s}: {} vectors", segment.graph().len());
            print_codes(segment);
            print_stats(&stats);
        }
        index.check_invariants().map_err(|(s, v)| Failure::Missed(format!("segment {s}: invariant broken: {v}")))?;
        println!("checksums ok, invariants ok");
        return Ok(());
    }
    let info = omendex_store::inspect(path)?;
    println!("{}: {} file, format version {}, {} bytes", path.display(), info.kind.name(), info.version, info.file_len);
    for s in &info.sections {
        println!("  section {:<8} offset {:>12} length {:>12} xxh3 {:016x}", s.tag, s.offset, s.len, s.checksum);
    }
    let index = Index::load(path)?;
    let p = index.params();
    println!(
        "  {} vectors, dimension {}, metric {}, m {}, ef_construction {}, ef_search {}, seed {}, quantization {}",
        index.len(),
        index.dim(),
        index.metric(),
        p.m,
        p.ef_construction,
        p.ef_search,
        p.seed,
        p.quantization
    );
    print_codes(&index);
    print_stats(&index.stats());
    index.check_invariants().map_err(|v| Failure::Missed(format!("invariant broken: {v}")))?;
    println!("checksums ok, invariants ok");
    Ok(())
}
