//! `cargo xtask profile`: the time of each insertion phase, distance calls and allocations,
//! from a copy of this runner built with the `profile` feature.

use std::path::PathBuf;
#[cfg(feature = "profile")]
use std::time::Instant;

use clap::Args;
#[cfg(feature = "profile")]
use omendex::{Index, Query};
#[cfg(feature = "profile")]
use serde_json::json;
#[cfg(feature = "profile")]
use xtask::sysinfo;

use crate::Failure;
use crate::harness::{Common, target_dir};
#[cfg(feature = "profile")]
use crate::harness::{load, params, setup};

#[derive(Args)]
pub(crate) struct ProfileArgs {
    #[command(flatten)]
    common: Common,
    /// Base vectors to generate for a synthetic dataset.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Beam of the profiled queries after the build (use the bench's ef for recall 0.95).
    #[arg(long, default_value_t = 64)]
    ef_search: usize,
}

/// Re-runs this runner built with the `profile` feature (into its own target directory, so the
/// normal build keeps no instrumentation), forwarding the arguments.
pub(crate) fn profile() -> Result<(), Failure> {
    let mut args: Vec<String> = std::env::args().skip_while(|a| a != "profile").skip(1).collect();
    if !args.iter().any(|a| a == "--threads" || a.starts_with("--threads=")) {
        args.extend(["--threads".into(), "1".into()]);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(&root)
        .args(["run", "--release", "--quiet", "--package", "xtask", "--features", "profile", "--target-dir"])
        .arg(target_dir().join("profile"))
        .args(["--", "profile-run"])
        .args(&args)
        .status()?;
    if status.success() { Ok(()) } else { Err(Failure::Missed(format!("the profiling run failed ({status})"))) }
}

#[cfg(feature = "profile")]
pub(crate) fn profile_run(a: ProfileArgs) -> Result<(), Failure> {
    use omendex_build::profile;

    let c = &a.common;
    setup(c)?;
    let data = load(c, "random-128", a.n)?;
    let n = data.base.len();
    let mut index = Index::new(data.base.dim, params(c, 64))?;
    let _ = (profile::take(), profile::take_batched());
    let (allocs0, bytes0) = xtask::alloc_count::counts();
    let started = Instant::now();
    index.add_batch(&data.base.data)?;
    let total_s = started.elapsed().as_secs_f64();
    let (allocs1, bytes1) = xtask::alloc_count::counts();
    let phases = profile::take();
    if let Err(v) = index.check_invariants() {
        return Err(Failure::Missed(format!("invariant broken after the build: {v}")));
    }

    let (batched_calls, batched_ns) = profile::take_batched();
    let ns_per_distance = if batched_calls == 0 { 0.0 } else { batched_ns as f64 / batched_calls as f64 };
    let total_ns = total_s * 1e9;
    let timed_ns: f64 = phases.iter().map(|(_, t)| t.nanos as f64).sum();
    let distance_calls: u64 = phases.iter().map(|(_, t)| t.distance_calls).sum();
    eprintln!(
        "omendex profile @ {}: {} ({} vectors, d = {}), metric {}, m {}, ef_construction {}, {} thread(s), distance path {}",
        sysinfo::git_revision(),
        data.name,
        n,
        data.base.dim,
        c.metric,
        c.m,
        c.ef_construction,
        c.threads,
        omendex::simd_path()
    );
    eprintln!("build: {total_s:.3} s, {:.0} vectors/s (instrumented)\n", n as f64 / total_s);
    println!(
        "| phase | total ms | share | calls | ns/call | distance calls | distance calls / insert |\n|---|---|---|---|---|---|---|"
    );
    let mut rows = Vec::new();
    for (p, t) in &phases {
        println!(
            "| {} | {:.1} | {:.1}% | {} | {:.0} | {} | {:.1} |",
            p.name(),
            t.nanos as f64 / 1e6,
            100.0 * t.nanos as f64 / total_ns,
            t.calls,
            if t.calls == 0 { 0.0 } else { t.nanos as f64 / t.calls as f64 },
            t.distance_calls,
            t.distance_calls as f64 / n as f64
        );
        rows.push(json!({"phase": p.name(), "ns": t.nanos, "share": t.nanos as f64 / total_ns, "calls": t.calls,
                         "distance_calls": t.distance_calls}));
    }
    let other = (total_ns - timed_ns).max(0.0);
    println!(
        "| other (batch checks, scheduling, timer overhead) | {:.1} | {:.1}% | | | | |",
        other / 1e6,
        100.0 * other / total_ns
    );
    // Measured: the search loop's one-to-many kernel (timed per batch of rows). Estimated: the
    // single evaluations elsewhere (descent, selection, pruning), at the same cost per call.
    let single_calls = distance_calls.saturating_sub(batched_calls);
    let dist_ns = batched_ns as f64 + single_calls as f64 * ns_per_distance;
    println!(
        "| distance computation, inside the phases above: {batched_calls} calls in the search loop measured at {ns_per_distance:.1} ns each, {single_calls} elsewhere estimated at that cost | {:.1} | {:.1}% | {distance_calls} | {ns_per_distance:.1} | {distance_calls} | {:.1} |",
        dist_ns / 1e6,
        100.0 * dist_ns / total_ns,
        distance_calls as f64 / n as f64
    );
    println!(
        "\nheap allocations during the build: {} ({:.2} per insert), {:.1} MB requested",
        allocs1 - allocs0,
        (allocs1 - allocs0) as f64 / n as f64,
        (bytes1 - bytes0) as f64 / 1048576.0
    );
    // Queries, one at a time on this thread: what each one reads. Vector bytes per query over
    // the time per query is the bandwidth the search draws from wherever the rows live.
    let k = (c.k as usize).min(n);
    let ef = a.ef_search.max(k);
    let calls0 = omendex_distance::calls_on_this_thread();
    let started = Instant::now();
    for q in 0..data.queries.len() {
        index.query(&Query::new(data.queries.row(q), k).ef(ef))?;
    }
    let query_s = started.elapsed().as_secs_f64();
    let nq = data.queries.len().max(1) as f64;
    let per_query_calls = (omendex_distance::calls_on_this_thread() - calls0) as f64 / nq;
    let row_bytes = (data.base.dim * 4) as f64;
    let us_per_query = query_s * 1e6 / nq;
    println!(
        "\nqueries: {} at ef {}, one at a time: {us_per_query:.1} us each, {per_query_calls:.0} distance calls each = {:.0} KB of vector rows = {:.1} GB/s of row reads",
        data.queries.len(),
        ef,
        per_query_calls * row_bytes / 1024.0,
        per_query_calls * row_bytes / (us_per_query * 1e3)
    );
    // For scale: the exact scan reads every row in order, the fastest way rows come in.
    let scans = data.queries.len().min(20);
    let started = Instant::now();
    for q in 0..scans {
        index.query(&Query::new(data.queries.row(q), k).ef(ef).filter(&|_| true).plan(omendex::FilterPlan::Scan))?;
    }
    let scan_s = started.elapsed().as_secs_f64() / scans.max(1) as f64;
    let scan_gbs = n as f64 * row_bytes / (scan_s * 1e9);
    println!(
        "exact scan, for scale: {:.2} ms per query = {scan_gbs:.1} GB/s of row reads (every row, in order)",
        scan_s * 1e3
    );
    if c.json {
        println!(
            "{}",
            json!({"dataset": data.name, "n": n, "dim": data.base.dim, "threads": c.threads, "build_s": total_s,
                   "scan_gb_per_s": scan_gbs, "query_ef": ef, "us_per_query": us_per_query, "distance_calls_per_query": per_query_calls,
                   "phases": rows, "other_ns": other, "distance_calls": distance_calls,
                   "ns_per_distance": ns_per_distance, "distance_share_est": dist_ns / total_ns,
                   "allocations": allocs1 - allocs0, "allocated_bytes": bytes1 - bytes0,
                   "git_revision": sysinfo::git_revision()})
        );
    }
    Ok(())
}
