//! `cargo xtask inspect` (verify and summarise a saved index) and `cargo xtask open` (open
//! time and resident memory, read into memory or mapped).

use std::time::Instant;

use omen::{Index, QuantizationStatus, SegmentedIndex};
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::synthetic::Synthetic;
use xtask::sysinfo;

use crate::Failure;

/// `cargo xtask open PATH [--mmap]`.
pub(crate) fn open(path: &std::path::Path, mmap: bool, queries: usize) -> Result<(), Failure> {
    let rss = || sysinfo::proc_status_mb("VmRSS:").unwrap_or(f64::NAN);
    let before = rss();
    let started = Instant::now();
    let index = if mmap { Index::open_mmap(path)? } else { Index::load(path)? };
    let open_s = started.elapsed().as_secs_f64();
    let after_open = rss();
    let data = Synthetic::parse(&format!("random-{}", index.dim())).map_err(Failure::Bad)?;
    let q = Dataset::synthetic(data, 0, queries.max(1));
    let started = Instant::now();
    for i in 0..q.queries.len() {
        index.search(q.queries.row(i), 10)?;
    }
    let qps = q.queries.len() as f64 / started.elapsed().as_secs_f64();
    let out = json!({
        "file": path.display().to_string(), "file_mb": std::fs::metadata(path)?.len() as f64 / 1048576.0,
        "mode": if mmap { "open_mmap" } else { "load" }, "n": index.len(), "dim": index.dim(),
        "open_s": open_s, "rss_before_mb": before, "rss_after_open_mb": after_open,
        "rss_after_queries_mb": rss(), "queries": q.queries.len(), "qps_1t": qps,
    });
    println!("{out}");
    Ok(())
}

/// `cargo xtask inspect PATH`.
/// Whether the index walks on 8-bit codes, and their measured fit.
fn print_codes(index: &Index) {
    match index.quantization() {
        QuantizationStatus::Off => {}
        QuantizationStatus::Untrained => println!("  codes: none yet (no vector to train on)"),
        QuantizationStatus::Codes(fit) => println!(
            "  codes: 8-bit, made on load; fit {:.3} (share of {} sample vectors' exact 10 nearest among their 20 nearest by codes): walked on",
            fit.recall, fit.queries
        ),
        QuantizationStatus::TooCoarse(fit) => println!(
            "  codes: 8-bit, made on load; fit {:.3} over {} sample vectors, below 0.9: too coarse, the f32 rows are walked",
            fit.recall, fit.queries
        ),
    }
}

pub(crate) fn inspect(path: &std::path::Path) -> Result<(), Failure> {
    let print_stats = |stats: &omen::GraphStats| {
        for line in stats.to_string().lines() {
            println!("  {line}");
        }
    };
    if path.is_dir() {
        let index = SegmentedIndex::load(path)?;
        println!("{}: segmented index, format version {}", path.display(), omen::FORMAT_VERSION);
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
    let info = omen_store::inspect(path)?;
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
