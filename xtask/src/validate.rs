//! `cargo xtask validate`: the staged validation, on one index or on segments, against the
//! absolute bars and, with `--baseline`, against recorded figures.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use omendex::{Index, Query, SegmentPlan, SegmentedIndex};
use omendex_graph::VectorId;
use omendex_search::recall_at_k;
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::sysinfo;

use crate::Failure;
use crate::harness::{Common, Searcher, build, load, params, save_and_reload, search_all, setup, target_dir};

#[derive(Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    common: Common,
    /// Beam width of the searches.
    #[arg(long, default_value_t = 64)]
    ef_search: usize,
    /// Index sizes, comma-separated, each a prefix of the base vectors.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,20000")]
    stages: Vec<usize>,
    /// The recall@k every stage must reach.
    #[arg(long, default_value_t = 0.95)]
    min_recall: f64,
    /// Build each stage as this many independent segments and check every segment's recall
    /// alone and the merged recall (each must reach --min-recall); then merge the segments into
    /// one graph and compare it with a fresh build of the stage.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    segments: Option<u16>,
    /// Beam width of the insertions of a segment merge (default: ef_construction * 2 / 5).
    #[arg(long)]
    merge_ef: Option<usize>,
    /// Keep each stage's index in this folder (`stage-N.omen`, or `stage-N-segments/`), load it
    /// back and check that it answers every query as before.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Write this run's deterministic figures (recall per stage at --ef-search and at ef = k,
    /// per-layer stats) to FILE, when every stage passed. Needs --threads 1.
    #[arg(long, conflicts_with = "segments")]
    record: Option<PathBuf>,
    /// Compare with a baseline FILE from --record (same flags): fail on a recall lower by more
    /// than 0.002, list every other figure that moved. Needs --threads 1.
    #[arg(long, conflicts_with = "segments")]
    baseline: Option<PathBuf>,
}

pub(crate) fn validate(a: ValidateArgs) -> Result<(), Failure> {
    let c = &a.common;
    setup(c)?;
    let k = c.k as usize;
    if a.ef_search < k {
        return Err(Failure::Bad(format!("--ef-search {} is smaller than --k {k}", a.ef_search)));
    }
    if a.stages.is_empty() || a.stages.contains(&0) {
        return Err(Failure::Bad("--stages needs sizes of at least 1".into()));
    }
    if (a.record.is_some() || a.baseline.is_some()) && c.threads != 1 {
        return Err(Failure::Bad("--record and --baseline need the deterministic build: add --threads 1".into()));
    }
    let baseline = match &a.baseline {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Failure::Bad(format!("{}: {e}", p.display())))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::Bad(format!("{}: not a baseline: {e}", p.display())))?;
            Some(v)
        }
    };
    let max_n = *a.stages.iter().max().expect("non-empty");
    let data = load(c, "clustered-128", max_n)?;
    if max_n > data.base.len() {
        return Err(Failure::Bad(format!("stage {max_n} is larger than the dataset ({} vectors)", data.base.len())));
    }
    if a.stages.iter().any(|&n| n < k) {
        return Err(Failure::Bad(format!("every stage must hold at least k = {k} vectors")));
    }

    let path = omendex::simd_path();
    let head = format!(
        "omendex validate @ {}\nmachine: {} ({} cores), distance path: {path}, compiled SIMD: {}\ndataset: {}\nparams: metric {}, m {}, ef_construction {}, ef_search {}, seed {}, k {k}; build: parallel bulk insertion on {} threads",
        sysinfo::git_revision(),
        sysinfo::cpu_model(),
        sysinfo::cores(),
        sysinfo::compiled_simd_features().join(","),
        data.description,
        c.metric,
        c.m,
        c.ef_construction,
        a.ef_search,
        c.seed,
        c.threads,
    );
    eprintln!("{head}");
    eprintln!(
        "\n{:>7} {:>8} {:>11} {:>9} {:>9} {:>10}  {:<10} {:>6} {:>13} {:>11} {:>14}",
        "n",
        "build s",
        "build vec/s",
        "recall@10",
        "QPS (1t)",
        "truth",
        "invariants",
        "layers",
        "L0 unreached",
        "L0 recipr.",
        "L0 out min/avg/max"
    );

    let mut stages_json = Vec::new();
    let mut failures = Vec::new();
    if let Some(s) = a.segments {
        for &n in &a.stages {
            let (stage, mut f) = validate_segmented_stage(&a, &data, n, usize::from(s))?;
            if c.json {
                println!("{stage}");
            }
            stages_json.push(stage);
            failures.append(&mut f);
            if !failures.is_empty() {
                break;
            }
        }
    }
    for &n in a.stages.iter().filter(|_| a.segments.is_none()) {
        let built = build(&data, n, c, a.ef_search, &format!("stage {n}"))?;
        let (index, build_s) = (built.index, built.secs);
        let invariants = index.check_invariants();
        let stats = index.stats();
        let (truth, from_file) = data.exact_top_k(n, k, c.metric);
        let (found, qps) = search_all(Searcher::of(&index), &data, k, a.ef_search)?;
        let recall = recall_at_k(&found, &truth, k);
        let fallbacks = index.exact_fallbacks();
        // The narrowest beam shows a change in the graph's quality long before ef_search does.
        let (found_narrow, _) = search_all(Searcher::of(&index), &data, k, k)?;
        let recall_narrow = recall_at_k(&found_narrow, &truth, k);
        let l0 = stats.bottom().expect("non-empty index");
        let inv_text = match &invariants {
            Ok(()) => "ok".to_string(),
            Err(v) => format!("BROKEN: {v}"),
        };
        eprintln!(
            "{:>7} {:>8.3} {:>11.0} {:>9.4} {:>9.0} {:>10}  {:<10} {:>6} {:>13} {:>10.1}% {:>14}",
            n,
            build_s,
            n as f64 / build_s,
            recall,
            qps,
            if from_file { "file" } else { "brute force" },
            if invariants.is_ok() { "ok" } else { "BROKEN" },
            stats.layers.len(),
            l0.unreachable,
            100.0 * l0.reciprocal_share,
            l0.out_degree.to_string(),
        );
        for line in stats.to_string().lines() {
            eprintln!("          {line}");
        }
        eprintln!("          recall@{k} at ef {k}: {recall_narrow:.4}");
        let stage = json!({
            "stage": n, "n": n, "dim": data.base.dim, "dataset": data.name, "metric": c.metric.name(),
            "m": c.m, "ef_construction": c.ef_construction, "ef_search": a.ef_search, "k": k,
            "build_s": build_s, "build_vps": n as f64 / build_s, "recall": recall, "qps": qps,
            "recall_narrow": recall_narrow, "narrow_ef": k,
            "truth": if from_file { "file" } else { "brute force" }, "distance_path": path.name(),
            "exact_fallbacks": fallbacks, "nodes_without_links": stats.without_links(),
            "invariants": inv_text, "layers": stats.layers.iter().map(|l| json!({
                "layer": l.layer.0, "nodes": l.n_nodes, "links": l.n_links, "unreachable": l.unreachable,
                "reciprocal_share": l.reciprocal_share,
                "out_degree": [l.out_degree.min, l.out_degree.mean, l.out_degree.max],
                "in_degree": [l.in_degree.min, l.in_degree.mean, l.in_degree.max],
            })).collect::<Vec<_>>(),
        });
        if c.json {
            println!("{stage}");
        }
        stages_json.push(stage);
        if let Err(v) = invariants {
            failures.push(format!("stage {n}: invariant broken: {v}"));
        }
        if stats.without_links() > 0 {
            failures.push(format!("stage {n}: {} nodes without links (a construction bug)", stats.without_links()));
        }
        if fallbacks > 0 {
            failures.push(format!(
                "stage {n}: {fallbacks} searches reached fewer than k nodes and fell back to exact scan"
            ));
        }
        if recall < a.min_recall {
            failures.push(format!("stage {n}: recall@{k} {recall:.4} < {}", a.min_recall));
        }
        if let Some(dir) = &a.save {
            let path = dir.join(format!("stage-{n}.omen"));
            failures.extend(save_and_reload(&index, &path, |p| Index::load(p), &data, (k, a.ef_search), &found)?);
        }
        if !failures.is_empty() {
            break;
        }
    }

    let report = json!({
        "git_revision": sysinfo::git_revision(), "cpu": sysinfo::cpu_model(), "cores": sysinfo::cores(),
        "compiled_simd": sysinfo::compiled_simd_features(), "distance_path": path.name(),
        "dataset": data.name, "description": data.description,
        "params": {"metric": c.metric.name(), "m": c.m, "ef_construction": c.ef_construction,
                   "ef_search": a.ef_search, "seed": c.seed, "k": k, "threads": c.threads},
        "min_recall": a.min_recall, "stages": stages_json, "passed": failures.is_empty(),
    });
    let dir = target_dir().join("validate");
    std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("report.json"), format!("{report:#}\n")))?;
    eprintln!("\nreport: {}", dir.join("report.json").display());
    if let Some(base) = &baseline {
        failures.extend(check_baseline(base, &report, a.baseline.as_deref().unwrap_or(std::path::Path::new("")))?);
    }
    if let Some(p) = a.record.as_ref().filter(|_| failures.is_empty()) {
        std::fs::write(p, format!("{:#}\n", xtask::baseline::record(&report)))
            .map_err(|e| Failure::Bad(format!("{}: {e}", p.display())))?;
        eprintln!("baseline recorded: {}", p.display());
    }
    if failures.is_empty() {
        eprintln!("validate: all {} stages passed", a.stages.len());
        Ok(())
    } else {
        Err(Failure::Missed(failures.join("; ")))
    }
}

/// Compares a finished validate `report` with `base` (read from `path`); the losses.
pub(crate) fn check_baseline(
    base: &serde_json::Value,
    report: &serde_json::Value,
    path: &std::path::Path,
) -> Result<Vec<String>, Failure> {
    let c = xtask::baseline::compare(base, report).map_err(|e| Failure::Bad(format!("{}: {e}", path.display())))?;
    let rev = &base["recorded_at"]["git_revision"];
    for n in &c.notes {
        eprintln!("baseline: note: {n}");
    }
    for ch in &c.changes {
        eprintln!("baseline: moved: {ch}");
    }
    for l in &c.losses {
        eprintln!("baseline: LOSS: {l}");
    }
    if c.losses.is_empty() && c.changes.is_empty() {
        eprintln!("baseline: every figure equals {} (recorded at {rev})", path.display());
    } else if c.losses.is_empty() {
        eprintln!(
            "baseline: no loss beyond {} against {} (recorded at {rev}); {} figures moved: if the change is meant, re-record with --record and say why in the commit",
            xtask::baseline::TOLERANCE,
            path.display(),
            c.changes.len()
        );
    }
    Ok(c.losses.into_iter().map(|l| format!("against the baseline: {l}")).collect())
}

/// One stage of `validate --segments S`: builds S segments of the first `n` vectors, then
/// measures every segment alone (recall against that segment's own exact neighbours) and the
/// merged search (recall against the global exact neighbours).
pub(crate) fn validate_segmented_stage(
    a: &ValidateArgs,
    data: &Dataset,
    n: usize,
    segments: usize,
) -> Result<(serde_json::Value, Vec<String>), Failure> {
    let c = &a.common;
    let k = c.k as usize;
    let dim = data.base.dim;
    let started = Instant::now();
    let plan = SegmentPlan::Count(segments);
    let index = SegmentedIndex::build(dim, params(c, a.ef_search), data.base.prefix(n), plan)?;
    let build_s = started.elapsed().as_secs_f64();
    let mut failures = Vec::new();
    let invariants = index.check_invariants();
    if let Err((s, v)) = &invariants {
        failures.push(format!("stage {n}: segment {s}: invariant broken: {v}"));
    }
    let without_links: usize = index.stats().iter().map(|s| s.without_links()).sum();
    if without_links > 0 {
        failures.push(format!("stage {n}: {without_links} nodes without links"));
    }

    let dist = omendex_distance::Distance::new(c.metric);
    let queries = omendex_search::Rows::dense(&data.queries.data, dim);
    let mut per_segment = Vec::new();
    for (s, segment) in index.segments().iter().enumerate() {
        let start = segment.ids().next().expect("a segment of a stage is not empty").0 as usize;
        let len = segment.len();
        let k_s = k.min(len);
        let rows = omendex_search::Rows::dense(&data.base.data[start * dim..(start + len) * dim], dim);
        let truth: Vec<Vec<VectorId>> = omendex_search::brute_force_batch(rows, &dist, queries, k_s)
            .into_iter()
            .map(|r| r.into_iter().map(|h| VectorId((start + h.id.idx()) as u64)).collect())
            .collect();
        let mut found = Vec::with_capacity(data.queries.len());
        for q in 0..data.queries.len() {
            let hits = segment.query(&Query::new(data.queries.row(q), k_s).ef(a.ef_search))?;
            found.push(hits.iter().map(|h| h.id).collect());
        }
        let recall = recall_at_k(&found, &truth, k_s);
        if recall < a.min_recall {
            failures.push(format!("stage {n}: segment {s} alone: recall@{k_s} {recall:.4} < {}", a.min_recall));
        }
        per_segment.push(json!({"segment": s, "n": len, "recall": recall}));
    }
    let (truth, _) = data.exact_top_k(n, k, c.metric);
    let (found, qps) = search_all(Searcher::of(&index), data, k, a.ef_search)?;
    let recall = recall_at_k(&found, &truth, k);
    if recall < a.min_recall {
        failures.push(format!("stage {n}: merged recall@{k} {recall:.4} < {}", a.min_recall));
    }
    if let Some(dir) = &a.save {
        let path = dir.join(format!("stage-{n}-segments"));
        failures.extend(save_and_reload(&index, &path, |p| SegmentedIndex::load(p), data, (k, a.ef_search), &found)?);
    }
    if index.exact_fallbacks() > 0 {
        failures.push(format!("stage {n}: {} searches fell back to exact scan", index.exact_fallbacks()));
    }
    // Merge into one graph, and build the stage afresh for comparison (both timed alone).
    let merge_ef = a.merge_ef.unwrap_or(c.ef_construction * 2 / 5).max(1);
    let started = Instant::now();
    let merged = index.merged(merge_ef)?;
    let merge_s = started.elapsed().as_secs_f64();
    let built = build(data, n, c, a.ef_search, "fresh")?;
    let (fresh, fresh_s) = (built.index, built.secs);
    if let Err((_, v)) = merged.check_invariants() {
        failures.push(format!("stage {n}: merged graph: invariant broken: {v}"));
    }
    let merged_links: usize = merged.stats().iter().map(|s| s.without_links()).sum();
    if merged_links > 0 {
        failures.push(format!("stage {n}: merged graph: {merged_links} nodes without links"));
    }
    let (found_m, qps_m) = search_all(Searcher::of(&merged), data, k, a.ef_search)?;
    let recall_merged = recall_at_k(&found_m, &truth, k);
    let (found_f, _) = search_all(Searcher::of(&fresh), data, k, a.ef_search)?;
    let recall_fresh = recall_at_k(&found_f, &truth, k);
    if recall_merged < recall_fresh - 0.01 || recall_merged < a.min_recall {
        failures.push(format!(
            "stage {n}: merged graph recall@{k} {recall_merged:.4} (fresh build {recall_fresh:.4}, floor {})",
            a.min_recall
        ));
    }
    eprintln!(
        "        merge of {segments} segments (ef {merge_ef}): {merge_s:.3} s = {:.0}% of a fresh build ({fresh_s:.3} s); recall@{k} merged {recall_merged:.4}, fresh {recall_fresh:.4}; merged QPS {qps_m:.0}",
        100.0 * merge_s / fresh_s
    );
    let seg_recalls: Vec<f64> = per_segment.iter().filter_map(|s| s["recall"].as_f64()).collect();
    let min_seg = seg_recalls.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!(
        "{n:>7} {segments:>3} segments {build_s:>8.3} s {:>9.0} vec/s  merged recall@{k} {recall:.4}  {qps:>8.0} QPS (1t)  segments alone: min recall {min_seg:.4} [{}]  invariants {}",
        n as f64 / build_s,
        seg_recalls.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(" "),
        if invariants.is_ok() { "ok" } else { "BROKEN" },
    );
    let stage = json!({
        "stage": n, "n": n, "segments": segments, "dim": dim, "dataset": data.name, "metric": c.metric.name(),
        "m": c.m, "ef_construction": c.ef_construction, "ef_search": a.ef_search, "k": k,
        "build_s": build_s, "build_vps": n as f64 / build_s, "recall": recall, "qps": qps,
        "per_segment": per_segment, "invariants": invariants.is_ok(), "nodes_without_links": without_links,
        "exact_fallbacks": index.exact_fallbacks(),
        "merge": {"ef_construction": merge_ef, "merge_s": merge_s, "fresh_build_s": fresh_s,
                  "time_share": merge_s / fresh_s, "recall_merged": recall_merged, "recall_fresh": recall_fresh,
                  "qps_merged": qps_m},
    });
    Ok((stage, failures))
}
