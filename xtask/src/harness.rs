//! What the tasks share: the common flags, the dataset, the build, and the searches that
//! validate and bench time and score.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use omendex::{Fanout, Index, Metric, Neighbor, Params, Quantization, Query, VectorId, VectorIndex};
use omendex_search::recall_at_k;
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::synthetic::Synthetic;
use xtask::sysinfo;

use crate::Failure;

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// TEXMEX folder (base.fvecs|bvecs, query.fvecs|bvecs, optional groundtruth.ivecs), or an
    /// ann-benchmarks HDF5 file (.hdf5 or .h5: converted once into target/hdf5/ with h5py).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Synthetic dataset when no --data is given: random-D or clustered-D.
    #[arg(long)]
    pub(crate) dataset: Option<String>,
    /// Neighbours per node on upper layers (layer 0 keeps 2*m).
    #[arg(long, visible_alias = "M", default_value_t = 16)]
    pub(crate) m: usize,
    /// Beam width while building.
    #[arg(long, visible_alias = "efc", default_value_t = 200)]
    pub(crate) ef_construction: usize,
    /// Worker threads for construction (parallel bulk insertion) and exact search. Queries are
    /// always timed on one thread, one query per call.
    #[arg(long, default_value_t = default_threads(), value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: u16,
    /// Distance: l2, ip or cosine.
    #[arg(long, default_value = "l2")]
    pub(crate) metric: Metric,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) k: u32,
    /// Queries to generate for a synthetic dataset.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) nq: u32,
    /// Seed of the layer draws.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// How searches read the vectors while walking: none (f32 rows) or int8 (8-bit codes,
    /// re-ranked on the f32 rows).
    #[arg(long, default_value = "none")]
    pub(crate) quantization: Quantization,
    /// Print one JSON object per result on stdout (human text goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn default_threads() -> u16 {
    sysinfo::cores().min(u16::MAX as usize) as u16
}

pub(crate) fn setup(common: &Common) -> Result<(), Failure> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(usize::from(common.threads))
        .build_global()
        .map_err(|e| Failure::Bad(format!("cannot start {} threads: {e}", common.threads)))
}

/// The dataset of `--data`, else `--dataset` (default `default_name`) generated with `n` vectors.
pub(crate) fn load(common: &Common, default_name: &str, n: usize) -> Result<Dataset, Failure> {
    match (&common.data, &common.dataset) {
        (Some(_), Some(_)) => Err(Failure::Bad("give --data or --dataset, not both".into())),
        (Some(file), None) if xtask::hdf5::is_hdf5(file) => {
            let dir = hdf5_folder(file, common.metric)?;
            Ok(Dataset::from_dir(&dir, common.k as usize)?)
        }
        (Some(dir), None) => Ok(Dataset::from_dir(dir, common.k as usize)?),
        (None, name) => {
            let s = Synthetic::parse(name.as_deref().unwrap_or(default_name)).map_err(Failure::Bad)?;
            Ok(Dataset::synthetic(s, n, common.nq as usize))
        }
    }
}

/// The TEXMEX folder an ann-benchmarks HDF5 `file` converts to (under target/hdf5/), refusing
/// a file whose distance is not `metric`: its neighbours would be the wrong truth.
pub(crate) fn hdf5_folder(file: &std::path::Path, metric: Metric) -> Result<PathBuf, Failure> {
    let stem = file.file_stem().map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    let dir = target_dir().join("hdf5").join(stem);
    let theirs = xtask::hdf5::convert(file, &dir).map_err(Failure::Bad)?;
    if theirs != metric {
        return Err(Failure::Bad(format!(
            "{} holds {theirs} neighbours: run with --metric {}",
            file.display(),
            theirs.name()
        )));
    }
    Ok(dir)
}

pub(crate) fn params(common: &Common, ef_search: usize) -> Params {
    Params::new(common.metric)
        .m(common.m)
        .ef_construction(common.ef_construction)
        .ef_search(ef_search)
        .seed(common.seed)
        .quantization(common.quantization)
}

/// An index built by [`build`]: the seconds it took and the cores' worth of CPU time other
/// processes took meanwhile ([`contention_since`]).
pub(crate) struct Built {
    pub(crate) index: Index,
    pub(crate) secs: f64,
    pub(crate) others: Option<f64>,
}

/// Builds an index of the first `n` base vectors; returns it with the build's seconds.
pub(crate) fn build(
    data: &Dataset,
    n: usize,
    common: &Common,
    ef_search: usize,
    label: &str,
) -> Result<Built, Failure> {
    let mut index = Index::new(data.base.dim, params(common, ef_search))?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(n as u64).with_message(label.to_string());
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    // One batch, as a user would add a data set; only a visible progress bar splits it.
    let chunk = if bar.is_hidden() { n.max(1) * data.base.dim } else { n.div_ceil(20).max(1) * data.base.dim };
    let started = Instant::now();
    let before = sysinfo::CpuSample::now();
    for part in data.base.prefix(n).chunks(chunk) {
        index.add_batch(part)?;
        bar.inc((part.len() / data.base.dim) as u64);
    }
    let secs = started.elapsed().as_secs_f64();
    let others = contention_since(before);
    bar.finish_and_clear();
    Ok(Built { index, secs, others })
}

/// An index of either shape and the fan-out its queries use: what validate and bench search.
#[derive(Clone, Copy)]
pub(crate) struct Searcher<'a> {
    pub(crate) index: &'a dyn VectorIndex,
    pub(crate) fanout: Fanout,
}

impl<'a> Searcher<'a> {
    /// `index`, its queries on the caller's thread.
    pub(crate) fn of(index: &'a dyn VectorIndex) -> Self {
        Searcher { index, fanout: Fanout::Sequential }
    }

    fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, omendex::Error> {
        self.index.query(&Query::new(query, k).ef(ef).fanout(self.fanout))
    }
}

/// Searches every query, one per call, on this thread; returns ids and queries per second.
pub(crate) fn search_all(
    searcher: Searcher<'_>,
    data: &Dataset,
    k: usize,
    ef: usize,
) -> Result<(Vec<Vec<VectorId>>, f64), Failure> {
    let (hits, qps) = search_all_hits(searcher, data, k, ef, 0.0)?;
    Ok((hits.iter().map(|h| h.iter().map(|n| n.id).collect()).collect(), qps))
}

/// [`search_all`] with the distances of the hits. The query set is searched again (the hits
/// of the first pass kept) until `min_secs` have passed, so that a rate rests on a timed
/// window long enough for the machine's noise to average out.
pub(crate) fn search_all_hits(
    searcher: Searcher<'_>,
    data: &Dataset,
    k: usize,
    ef: usize,
    min_secs: f64,
) -> Result<(Vec<Vec<Neighbor>>, f64), Failure> {
    let started = Instant::now();
    let mut res = Vec::with_capacity(data.queries.len());
    for q in 0..data.queries.len() {
        res.push(searcher.search(data.queries.row(q), k, ef)?);
    }
    let mut searched = data.queries.len();
    while started.elapsed().as_secs_f64() < min_secs && !data.queries.is_empty() {
        for q in 0..data.queries.len() {
            std::hint::black_box(searcher.search(data.queries.row(q), k, ef)?);
        }
        searched += data.queries.len();
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((res, searched as f64 / secs))
}

/// A distance as ann-benchmarks states it: Euclidean (not squared) for l2; `1 - a·b` and
/// `1 - cos` as omendex computes them for ip and cosine.
fn ann_distance(metric: Metric, d: f32) -> f64 {
    if metric == Metric::L2 { f64::from(d.max(0.0)).sqrt() } else { f64::from(d) }
}

/// Recall@k by distance, as ann-benchmarks computes it: a hit counts when its distance is
/// within the k-th true distance + 1e-3 (`kth[q]`, in ann-benchmarks' units), so ties at the
/// k-th distance are not misses.
fn recall_by_distance(metric: Metric, found: &[Vec<Neighbor>], kth: &[f64], k: usize) -> f64 {
    let hits: usize = found
        .iter()
        .zip(kth)
        .map(|(hits, &t)| hits.iter().take(k).filter(|h| ann_distance(metric, h.dist) <= t + 1e-3).count())
        .sum();
    hits as f64 / (found.len() * k).max(1) as f64
}

/// Recall@k and single-thread QPS at every ef of `efs` (raised to k), as the peer benchmark's
/// `sweep` entries; `label` prefixes the progress lines. Each rate is timed over at least
/// [`MIN_WINDOW_S`] (the query set searched again as needed).
///
/// Each entry also holds `recall_dist`, recall@k by distance (see [`recall_by_distance`]),
/// `metric` being the index's, and `other_cores`: the cores' worth of CPU time other processes
/// took meanwhile ([`sysinfo::CpuSample`]), so that a reader can tell a slow machine from a
/// slow index.
pub(crate) fn sweep_ef(
    searcher: Searcher<'_>,
    data: &Dataset,
    truth: &[Vec<VectorId>],
    metric: Metric,
    k: usize,
    efs: &[usize],
    label: &str,
) -> Result<Vec<serde_json::Value>, Failure> {
    let dist = omendex_distance::Distance::new(metric);
    let kth: Vec<f64> = truth
        .iter()
        .enumerate()
        .map(|(q, t)| {
            let far = t[k.min(t.len()) - 1];
            ann_distance(
                metric,
                dist.eval(data.queries.row(q), data.base.row(usize::try_from(far.0).expect("a row of the data"))),
            )
        })
        .collect();
    let mut sweep = Vec::with_capacity(efs.len());
    for &ef in efs {
        let ef = ef.max(k);
        let before = sysinfo::CpuSample::now();
        let (hits, qps) = search_all_hits(searcher, data, k, ef, MIN_WINDOW_S)?;
        let others = contention_since(before);
        let found: Vec<Vec<VectorId>> = hits.iter().map(|h| h.iter().map(|n| n.id).collect()).collect();
        let recall = recall_at_k(&found, truth, k);
        let recall_dist = recall_by_distance(metric, &hits, &kth, k);
        eprintln!(
            "{label}ef {ef:>4}: recall@{k} {recall:.4} (by distance {recall_dist:.4}), {qps:>9.0} QPS (1 thread, one query per call)"
        );
        sweep.push(json!({"ef": ef, "recall": (recall * 1e4).round() / 1e4,
                          "recall_dist": (recall_dist * 1e4).round() / 1e4, "qps": (qps * 10.0).round() / 10.0,
                          "other_cores": others}));
    }
    Ok(sweep)
}

/// The shortest timed window of a rate in [`sweep_ef`], in seconds.
pub(crate) const MIN_WINDOW_S: f64 = 1.0;

/// The cores' worth of CPU time other processes took since `before` (rounded to 0.01), where
/// the system reports it.
pub(crate) fn contention_since(before: Option<sysinfo::CpuSample>) -> Option<f64> {
    let c = sysinfo::CpuSample::now()?.since(&before?)?;
    Some(((c.other_cores) * 100.0).round() / 100.0)
}

/// The first sweep entry whose recall reaches `target`.
pub(crate) fn first_at_target(sweep: &[serde_json::Value], target: f64) -> Option<&serde_json::Value> {
    sweep.iter().find(|s| s["recall"].as_f64().is_some_and(|r| r >= target))
}

/// Saves `index` to `path`, loads it back with `load`, and returns a failure unless the loaded
/// index answers every query as `found` (the saved index's answers at `k`, `ef`) says.
pub(crate) fn save_and_reload<I: VectorIndex>(
    index: &I,
    path: &std::path::Path,
    load: impl Fn(&std::path::Path) -> Result<I, omendex::Error>,
    data: &Dataset,
    (k, ef): (usize, usize),
    found: &[Vec<VectorId>],
) -> Result<Option<String>, Failure> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Bad(format!("{}: {e}", dir.display())))?;
    }
    let started = Instant::now();
    index.save(path).map_err(|e| Failure::Bad(format!("saving {}: {e}", path.display())))?;
    let save_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let loaded = load(path).map_err(|e| Failure::Bad(format!("loading {}: {e}", path.display())))?;
    let load_s = started.elapsed().as_secs_f64();
    let (again, _) = search_all(Searcher::of(&loaded), data, k, ef)?;
    let same = again == found;
    eprintln!(
        "          saved {} in {save_s:.3} s, loaded in {load_s:.3} s: {}",
        path.display(),
        if same { "answers identical" } else { "ANSWERS DIFFER" }
    );
    Ok((!same).then(|| format!("{}: the loaded index answers differently", path.display())))
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// The repository's root (the workspace this runner was built from).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
