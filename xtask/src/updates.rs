//! `cargo xtask updates`: recall after deletes (before and after compaction) and filtered
//! search at several selectivities, graph walk against exact scan.

use std::collections::HashSet;
use std::time::Instant;

use clap::Args;
use omen::{FilterPlan, Index, VectorId};
use omen_distance::Distance;
use omen_search::{Rows, brute_force_batch};
use serde_json::json;

use crate::{Common, Failure, build, load, setup};

#[derive(Args)]
pub(crate) struct UpdatesArgs {
    #[command(flatten)]
    common: Common,
    /// Base vectors to generate for a synthetic dataset (default random-128).
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Beam width of the searches.
    #[arg(long, default_value_t = 64)]
    ef_search: usize,
    /// Shares of the vectors to delete, one run each.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5")]
    delete: Vec<f64>,
    /// Shares of the vectors a filter accepts, one row each.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.1,0.05,0.02,0.01,0.005,0.001")]
    selectivity: Vec<f64>,
}

/// A fixed pseudo-random number in [0, 1) per id (splitmix64): which ids a filter accepts or a
/// run deletes, independent of insertion order.
fn unit(id: VectorId, salt: u64) -> f64 {
    let mut z = id.0.wrapping_add(salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
}

/// Exact top-k ids of every query among the base vectors `keep` accepts.
fn truth(
    base: &xtask::texmex::Vectors,
    queries: &Rows<'_>,
    dist: &Distance,
    k: usize,
    keep: impl Fn(VectorId) -> bool,
) -> Vec<Vec<VectorId>> {
    let dim = base.dim;
    let ids: Vec<VectorId> = (0..base.len() as u64).map(VectorId).filter(|&id| keep(id)).collect();
    let mut rows = Vec::with_capacity(ids.len() * dim);
    for id in &ids {
        rows.extend_from_slice(base.row(id.0 as usize));
    }
    if ids.is_empty() {
        return vec![Vec::new(); queries.len()];
    }
    brute_force_batch(Rows::dense(&rows, dim), dist, *queries, k)
        .into_iter()
        .map(|r| r.into_iter().map(|n| ids[n.id.idx()]).collect())
        .collect()
}

/// Runs every query (one thread, one per call); returns recall against `truth` and queries/s.
fn measure(
    queries: &Rows<'_>,
    truth: &[Vec<VectorId>],
    mut search: impl FnMut(&[f32]) -> Result<Vec<omen::Neighbor>, omen::Error>,
) -> Result<(f64, f64), Failure> {
    let started = Instant::now();
    let mut found = Vec::with_capacity(queries.len());
    for q in 0..queries.len() {
        found.push(search(queries.row(q))?);
    }
    let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
    let (mut hit, mut total) = (0usize, 0usize);
    for (f, t) in found.iter().zip(truth) {
        let t: HashSet<VectorId> = t.iter().copied().collect();
        hit += f.iter().filter(|h| t.contains(&h.id)).count();
        total += t.len();
    }
    Ok((if total == 0 { 1.0 } else { hit as f64 / total as f64 }, qps))
}

pub(crate) fn updates(a: UpdatesArgs) -> Result<(), Failure> {
    let c = &a.common;
    setup(c)?;
    let k = c.k as usize;
    let ef = a.ef_search.max(k);
    let data = load(c, "random-128", a.n)?;
    let n = data.base.len();
    let dist = Distance::new(c.metric);
    let queries = Rows::dense(&data.queries.data, data.base.dim);
    eprintln!(
        "omen updates: {} ({n} vectors, {} queries), m {}, ef_construction {}, ef {ef}, k {k}, build on {} threads, queries on 1",
        data.name,
        queries.len(),
        c.m,
        c.ef_construction,
        c.threads
    );
    let (index, _) = build(&data, n, c, ef, "build")?;
    let path = crate::target_dir().join("updates").join("base.omen");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    index.save(&path)?;

    eprintln!("\nfiltered search (recall@{k} against exact search among the accepted vectors; QPS on one thread)");
    eprintln!(
        "{:>11} {:>9} {:>12} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "selectivity", "accepted", "graph recall", "graph QPS", "scan recall", "scan QPS", "auto recall", "auto QPS"
    );
    for &s in &a.selectivity {
        let keep = |id: VectorId| unit(id, 1) < s;
        let accepted = (0..n as u64).map(VectorId).filter(|&id| keep(id)).count();
        let t = truth(&data.base, &queries, &dist, k, keep);
        let mut row = Vec::new();
        for plan in [FilterPlan::Graph, FilterPlan::Scan, FilterPlan::Auto] {
            row.push(measure(&queries, &t, |q| index.search_filtered_by(q, k, ef, keep, plan))?);
        }
        eprintln!(
            "{:>10.1}% {accepted:>9} {:>12.4} {:>10.0} {:>12.4} {:>10.0} {:>12.4} {:>10.0}",
            100.0 * s,
            row[0].0,
            row[0].1,
            row[1].0,
            row[1].1,
            row[2].0,
            row[2].1
        );
        if c.json {
            println!(
                "{}",
                json!({"table": "filtered", "dataset": data.name, "n": n, "ef": ef, "k": k, "selectivity": s, "accepted": accepted,
                "graph": {"recall": row[0].0, "qps": row[0].1}, "scan": {"recall": row[1].0, "qps": row[1].1}, "auto": {"recall": row[2].0, "qps": row[2].1}})
            );
        }
    }

    eprintln!("\ndeletes (recall@{k} against exact search among the live vectors; QPS on one thread)");
    eprintln!(
        "{:>8} {:>7} {:>14} {:>11} {:>10} {:>14} {:>11} {:>10} {:>14} {:>11}",
        "deleted",
        "live",
        "recall before",
        "QPS before",
        "compact s",
        "recall after",
        "QPS after",
        "rebuild s",
        "recall after",
        "QPS after"
    );
    for &frac in &a.delete {
        let deleted_at = |index: &mut Index| -> Result<(), Failure> {
            for id in (0..n as u64).map(VectorId).filter(|&id| unit(id, 2) < frac) {
                index.delete(id)?;
            }
            Ok(())
        };
        let t = truth(&data.base, &queries, &dist, k, |id| unit(id, 2) >= frac);
        let mut index = Index::load(&path)?;
        deleted_at(&mut index)?;
        let live = index.len();
        let before = measure(&queries, &t, |q| index.search_with_ef(q, k, ef))?;
        let mut after = Vec::new();
        for rebuild in [false, true] {
            let mut index = Index::load(&path)?;
            deleted_at(&mut index)?;
            let started = Instant::now();
            if rebuild {
                index.rebuild()?
            } else {
                index.compact()?
            };
            let secs = started.elapsed().as_secs_f64();
            if let Err(v) = index.check_invariants() {
                return Err(Failure::Missed(format!("invariant broken after compaction: {v}")));
            }
            let (recall, qps) = measure(&queries, &t, |q| index.search_with_ef(q, k, ef))?;
            after.push((secs, recall, qps));
        }
        let (cp, rb) = (after[0], after[1]);
        eprintln!(
            "{:>7.0}% {live:>7} {:>14.4} {:>11.0} {:>10.3} {:>14.4} {:>11.0} {:>10.3} {:>14.4} {:>11.0}",
            100.0 * frac,
            before.0,
            before.1,
            cp.0,
            cp.1,
            cp.2,
            rb.0,
            rb.1,
            rb.2
        );
        if c.json {
            println!(
                "{}",
                json!({"table": "deletes", "dataset": data.name, "n": n, "ef": ef, "k": k, "deleted": frac, "live": live,
                "before": {"recall": before.0, "qps": before.1},
                "compact": {"s": cp.0, "recall": cp.1, "qps": cp.2}, "rebuild": {"s": rb.0, "recall": rb.1, "qps": rb.2}})
            );
        }
    }
    Ok(())
}
