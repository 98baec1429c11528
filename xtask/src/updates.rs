//! `cargo xtask updates`: recall after deletes (before and after compaction) and filtered
//! search at several selectivities, graph walk against exact scan; on one index or, with
//! `--segments S`, on a segmented index (where a merge, or a compaction of each segment, drops
//! the deleted vectors).

use std::collections::HashSet;
use std::time::Instant;

use clap::Args;
use omendex::{Error, FilterPlan, Index, Neighbor, Query, SegmentPlan, SegmentedIndex, VectorId, VectorIndex};
use omendex_distance::Distance;
use omendex_search::{Rows, brute_force_batch};
use serde_json::json;

use crate::Failure;
use crate::harness::{Common, build, load, params, setup};

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
    /// Measure a segmented index of this many segments (built in parallel) instead of one
    /// index; deleted vectors are then dropped by merging the segments (beam
    /// ef_construction × 2/5) and, separately, by compacting each segment.
    #[arg(long)]
    segments: Option<u16>,
}

/// The index under test: one graph, or segments (a handful live at a time: size is no matter).
/// Searches, deletes and saves go through [`VectorIndex`]; what differs by shape is how a file
/// is loaded, how invariants are reported and how deleted vectors are dropped.
#[allow(clippy::large_enum_variant)]
enum Updatable {
    One(Index),
    Segments(SegmentedIndex),
}

impl Updatable {
    /// What both shapes answer alike.
    fn index(&self) -> &dyn VectorIndex {
        match self {
            Updatable::One(i) => i,
            Updatable::Segments(i) => i,
        }
    }

    fn index_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            Updatable::One(i) => i,
            Updatable::Segments(i) => i,
        }
    }

    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        self.index().query(&Query::new(q, k).ef(ef))
    }

    fn load(&self, path: &std::path::Path) -> Result<Updatable, Error> {
        Ok(match self {
            Updatable::One(_) => Updatable::One(Index::load(path)?),
            Updatable::Segments(_) => Updatable::Segments(SegmentedIndex::load(path)?),
        })
    }

    fn check_invariants(&self) -> Result<(), String> {
        match self {
            Updatable::One(i) => i.check_invariants().map_err(|v| v.to_string()),
            Updatable::Segments(i) => i.check_invariants().map_err(|(s, v)| format!("segment {s}: {v}")),
        }
    }

    /// The ways this kind of index drops its deleted vectors, as table columns.
    fn droppers(&self) -> &'static [&'static str] {
        match self {
            Updatable::One(_) => &["compact", "rebuild"],
            Updatable::Segments(_) => &["merge", "compact"],
        }
    }

    /// Drops the deleted vectors the `which`-th way of [`Updatable::droppers`]; `merge_ef` is
    /// the beam of a merge.
    fn drop_deleted(self, which: usize, merge_ef: usize) -> Result<Updatable, Error> {
        Ok(match self {
            Updatable::One(mut i) => {
                if which == 0 {
                    i.compact()?
                } else {
                    i.rebuild()?
                };
                Updatable::One(i)
            }
            Updatable::Segments(i) if which == 0 => Updatable::Segments(i.merged(merge_ef)?),
            Updatable::Segments(mut i) => {
                i.compact()?;
                Updatable::Segments(i)
            }
        })
    }
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
    mut search: impl FnMut(&[f32]) -> Result<Vec<omendex::Neighbor>, omendex::Error>,
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
        "omendex updates: {} ({n} vectors, {} queries), m {}, ef_construction {}, ef {ef}, k {k}, build on {} threads, queries on 1",
        data.name,
        queries.len(),
        c.m,
        c.ef_construction,
        c.threads
    );
    let (index, path) = match a.segments {
        None => (Updatable::One(build(&data, n, c, ef, "build")?.index), "base.omen"),
        Some(s) => {
            let plan = SegmentPlan::Count(usize::from(s));
            let built = SegmentedIndex::build(data.base.dim, params(c, ef), data.base.prefix(n), plan)?;
            eprintln!("{s} segments");
            (Updatable::Segments(built), "segments")
        }
    };
    let path = crate::harness::target_dir().join("updates").join(path);
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    index.index().save(&path)?;
    let merge_ef = (c.ef_construction * 2 / 5).max(1);

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
            let query = |q: &[f32]| index.index().query(&Query::new(q, k).ef(ef).filter(&keep).plan(plan));
            row.push(measure(&queries, &t, query)?);
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
                json!({"table": "filtered", "dataset": data.name, "n": n, "ef": ef, "k": k, "segments": a.segments, "selectivity": s, "accepted": accepted,
                "graph": {"recall": row[0].0, "qps": row[0].1}, "scan": {"recall": row[1].0, "qps": row[1].1}, "auto": {"recall": row[2].0, "qps": row[2].1}})
            );
        }
    }

    let droppers = index.droppers();
    eprintln!("\ndeletes (recall@{k} against exact search among the live vectors; QPS on one thread)");
    let mut head = format!("{:>8} {:>7} {:>14} {:>11}", "deleted", "live", "recall before", "QPS before");
    for d in droppers {
        head += &format!(" {:>10} {:>14} {:>11}", format!("{d} s"), "recall after", "QPS after");
    }
    eprintln!("{head}");
    for &frac in &a.delete {
        let deleted_at = |index: &mut Updatable| -> Result<(), Failure> {
            for id in (0..n as u64).map(VectorId).filter(|&id| unit(id, 2) < frac) {
                index.index_mut().delete(id)?;
            }
            Ok(())
        };
        let t = truth(&data.base, &queries, &dist, k, |id| unit(id, 2) >= frac);
        let mut deleted = index.load(&path)?;
        deleted_at(&mut deleted)?;
        let live = deleted.index().len();
        let before = measure(&queries, &t, |q| deleted.search(q, k, ef))?;
        let mut line = format!("{:>7.0}% {live:>7} {:>14.4} {:>11.0}", 100.0 * frac, before.0, before.1);
        let mut record = json!({"table": "deletes", "dataset": data.name, "n": n, "ef": ef, "k": k, "deleted": frac,
            "live": live, "segments": a.segments, "before": {"recall": before.0, "qps": before.1}});
        for (which, name) in droppers.iter().enumerate() {
            let mut fresh = index.load(&path)?;
            deleted_at(&mut fresh)?;
            let started = Instant::now();
            let dropped = fresh.drop_deleted(which, merge_ef)?;
            let secs = started.elapsed().as_secs_f64();
            if let Err(v) = dropped.check_invariants() {
                return Err(Failure::Missed(format!("invariant broken after {name}: {v}")));
            }
            if dropped.index().len() != live {
                return Err(Failure::Missed(format!("{name} left {} vectors of {live}", dropped.index().len())));
            }
            let (recall, qps) = measure(&queries, &t, |q| dropped.search(q, k, ef))?;
            line += &format!(" {secs:>10.3} {recall:>14.4} {qps:>11.0}");
            record[*name] = json!({"s": secs, "recall": recall, "qps": qps});
        }
        eprintln!("{line}");
        if c.json {
            println!("{record}");
        }
    }
    Ok(())
}
