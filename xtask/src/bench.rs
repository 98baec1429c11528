//! `cargo xtask bench`: build once, sweep ef, one JSON line with the peer benchmark's fields;
//! on one index or on segments (merged, sampled or parallel search, or merged into one graph).

use std::time::Instant;

use clap::Args;
use omendex::{Fanout, Query, SegmentPlan, SegmentedIndex};
use omendex_graph::VectorId;
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::sysinfo;

use crate::Failure;
use crate::harness::{Common, Searcher, build, first_at_target, load, params, setup, sweep_ef};

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Base vectors to generate for a synthetic dataset.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// ef values to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,16,24,32,48,64,96,128,192,256,384,512")]
    efs: Vec<usize>,
    /// Recall that defines ef_at_target.
    #[arg(long, default_value_t = 0.95)]
    target_recall: f64,
    /// Build this many independent segments and search them merged.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    segments: Option<u16>,
    /// With --segments: search with per-segment sampling (each segment asked for its likely
    /// share of the top k, searched again when it may hold more).
    #[arg(long, requires = "segments", conflicts_with = "parallel_query")]
    sampled: bool,
    /// With --segments: search each query's segments in parallel (all --threads), still one
    /// query at a time: latency, not throughput.
    #[arg(long, requires = "segments")]
    parallel_query: bool,
    /// With --segments: merge the segments into one graph (insertions with this beam width)
    /// and sweep the merged graph instead; then build the whole afresh and sweep it too, so
    /// the merge's time share and its ef at the target come from one run.
    #[arg(long)]
    merge_ef: Option<usize>,
}

pub(crate) fn bench(a: BenchArgs) -> Result<(), Failure> {
    let c = &a.common;
    setup(c)?;
    let k = c.k as usize;
    if a.efs.is_empty() || a.efs.contains(&0) {
        return Err(Failure::Bad("--efs needs values of at least 1".into()));
    }
    let started_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let load1 = sysinfo::load1();
    let data = load(c, "random-128", a.n)?;
    if data.base.len() < k {
        return Err(Failure::Bad(format!("the dataset has {} vectors, fewer than k = {k}", data.base.len())));
    }
    let n = data.base.len();
    let (truth, from_file) = data.exact_top_k(n, k, c.metric);

    if let Some(s) = a.segments {
        return bench_segmented(&a, &data, &truth, from_file, usize::from(s), started_at, load1);
    }
    let rss_before = sysinfo::proc_status_mb("VmRSS:");
    let built = build(&data, n, c, a.efs[0], "build")?;
    let (index, build_s) = (built.index, built.secs);
    let rss_after = sysinfo::proc_status_mb("VmRSS:");
    if let Err(v) = index.check_invariants() {
        return Err(Failure::Missed(format!("invariant broken after the build: {v}")));
    }

    // Warm-up, as the peer protocol does: 100 queries at the first ef.
    for q in 0..data.queries.len().min(100) {
        index.query(&Query::new(data.queries.row(q), k).ef(a.efs[0].max(k)))?;
    }
    let sweep = sweep_ef(Searcher::of(&index), &data, &truth, c.metric, k, &a.efs, "")?;
    let at = |ef: usize| sweep.iter().find(|s| s["ef"] == ef).map(|s| s["recall"].clone());
    let hit = first_at_target(&sweep, a.target_recall);
    let round1 = |x: Option<f64>| x.map(|v| (v * 10.0).round() / 10.0);
    let out = json!({
        "lib": "omendex", "version": env!("CARGO_PKG_VERSION"), "git_revision": sysinfo::git_revision(), "lang": "rust",
        "dataset": data.name, "n": n, "dim": data.base.dim, "nq": data.queries.len(), "threads": c.threads,
        "M": c.m, "efc": c.ef_construction, "k": k, "metric": format!("{} (omendex)", c.metric),
        "build_s": (build_s * 1e4).round() / 1e4, "build_vps": (n as f64 / build_s * 10.0).round() / 10.0,
        "build": "Index::add_batch (parallel bulk insertion)", "build_other_cores": built.others,
        "index_rss_mb": round1(rss_before.zip(rss_after).map(|(b, a)| a - b)),
        "lib_bytes_mb": round1(Some(index.heap_bytes() as f64 / 1048576.0)), "lib_bytes_what": "vectors + links heap capacity",
        "peak_rss_mb": round1(sysinfo::proc_status_mb("VmHWM:")),
        "rss_before_build_mb": round1(rss_before), "rss_after_build_mb": round1(rss_after),
        "recall_at_ef64": at(64), "recall_at_ef128": at(128), "target_recall": a.target_recall,
        "ef_at_target": hit.map(|h| h["ef"].clone()), "qps_at_target": hit.map(|h| h["qps"].clone()),
        "recall_at_target": hit.map(|h| h["recall"].clone()), "qps_other_cores": hit.map(|h| h["other_cores"].clone()),
        "min_window_s": crate::harness::MIN_WINDOW_S,
        "truth": if from_file { "groundtruth.ivecs" } else { "brute force" },
        "distance_path": omendex::simd_path().name(), "sweep": sweep,
        "search": "single thread, one query per call (qps)",
        "started_unix": started_at, "load1_at_start": load1,
    });
    if c.json {
        println!("{out}");
    } else {
        println!("{out:#}");
    }
    Ok(())
}

/// `bench --segments S`: the same sweep over a segmented index (merged search).
pub(crate) fn bench_segmented(
    a: &BenchArgs,
    data: &Dataset,
    truth: &[Vec<VectorId>],
    from_file: bool,
    segments: usize,
    started_at: u64,
    load1: Option<f64>,
) -> Result<(), Failure> {
    let c = &a.common;
    let k = c.k as usize;
    let n = data.base.len();
    let rss_before = sysinfo::proc_status_mb("VmRSS:");
    let started = Instant::now();
    let plan = SegmentPlan::Count(segments);
    let index = SegmentedIndex::build(data.base.dim, params(c, a.efs[0]), &data.base.data, plan)?;
    let build_s = started.elapsed().as_secs_f64();
    let rss_after = sysinfo::proc_status_mb("VmRSS:");
    if let Err((s, v)) = index.check_invariants() {
        return Err(Failure::Missed(format!("segment {s}: invariant broken after the build: {v}")));
    }
    let (index, merge_s) = match a.merge_ef {
        None => (index, None),
        Some(ef) => {
            let started = Instant::now();
            let merged = index.merged(ef)?;
            let secs = started.elapsed().as_secs_f64();
            if let Err((_, v)) = merged.check_invariants() {
                return Err(Failure::Missed(format!("merged graph: invariant broken: {v}")));
            }
            eprintln!("merged {segments} segments in {secs:.3} s (beam {ef})");
            (merged, Some(secs))
        }
    };
    // The fresh build the merge is measured against: same data, parameters and threads.
    let fresh = match merge_s {
        None => None,
        Some(_) => {
            let built = build(data, n, c, a.efs[0], "fresh")?;
            let (fresh, fresh_s) = (built.index, built.secs);
            let sweep = sweep_ef(Searcher::of(&fresh), data, truth, c.metric, k, &a.efs, "fresh build, ")?;
            let hit = first_at_target(&sweep, a.target_recall).cloned();
            Some((fresh_s, hit))
        }
    };
    // How the segments are searched: the searcher, its progress label and its report line.
    let (fanout, label, how) = if a.parallel_query {
        (
            Fanout::Parallel,
            " in parallel",
            "one query at a time, its segments searched in parallel on --threads threads, merged",
        )
    } else if a.sampled {
        (
            Fanout::Sampled,
            " sampled",
            "single thread, one query per call, every segment searched for its sampled share and merged",
        )
    } else {
        (Fanout::Sequential, "", "single thread, one query per call, every segment searched and merged")
    };
    let searcher = Searcher { index: &index, fanout };
    let sweep = sweep_ef(searcher, data, truth, c.metric, k, &a.efs, &format!("{segments} segments{label}, "))?;
    let hit = first_at_target(&sweep, a.target_recall);
    let out = json!({
        "lib": "omendex", "version": env!("CARGO_PKG_VERSION"), "git_revision": sysinfo::git_revision(), "lang": "rust",
        "dataset": data.name, "n": n, "dim": data.base.dim, "nq": data.queries.len(), "threads": c.threads,
        "segments": segments, "M": c.m, "efc": c.ef_construction, "k": k, "metric": format!("{} (omendex)", c.metric),
        "build_s": (build_s * 1e4).round() / 1e4, "build_vps": (n as f64 / build_s * 10.0).round() / 10.0,
        "build": "SegmentedIndex::build (segments in parallel)",
        "merge_ef": a.merge_ef, "merge_s": merge_s, "sampled": a.sampled, "parallel_query": a.parallel_query, "researches": index.researches(),
        "fresh_build_s": fresh.as_ref().map(|f| (f.0 * 1e4).round() / 1e4),
        "merge_time_share": merge_s.zip(fresh.as_ref()).map(|(m, f)| (m / f.0 * 1e3).round() / 1e3),
        "fresh_ef_at_target": fresh.as_ref().and_then(|f| f.1.as_ref().map(|h| h["ef"].clone())),
        "fresh_recall_at_target": fresh.as_ref().and_then(|f| f.1.as_ref().map(|h| h["recall"].clone())),
        "index_rss_mb": rss_before.zip(rss_after).map(|(b, a)| ((a - b) * 10.0).round() / 10.0),
        "target_recall": a.target_recall, "ef_at_target": hit.map(|h| h["ef"].clone()),
        "qps_at_target": hit.map(|h| h["qps"].clone()), "recall_at_target": hit.map(|h| h["recall"].clone()),
        "truth": if from_file { "groundtruth.ivecs" } else { "brute force" },
        "distance_path": omendex::simd_path().name(), "sweep": sweep,
        "search": how,
        "started_unix": started_at, "load1_at_start": load1,
    });
    println!("{out}");
    Ok(())
}
