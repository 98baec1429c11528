//! What the tasks share: the common flags, the dataset, the build, and the searches that
//! validate and bench time and score.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use omen::{Index, Metric, Params, SegmentedIndex, VectorId};
use omen_graph::NodeId;
use omen_search::recall_at_k;
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::synthetic::Synthetic;
use xtask::sysinfo;

use crate::Failure;

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// TEXMEX folder: base.fvecs|bvecs, query.fvecs|bvecs, optional groundtruth.ivecs.
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
        (Some(dir), None) => Ok(Dataset::from_dir(dir, common.k as usize)?),
        (None, name) => {
            let s = Synthetic::parse(name.as_deref().unwrap_or(default_name)).map_err(Failure::Bad)?;
            Ok(Dataset::synthetic(s, n, common.nq as usize))
        }
    }
}

pub(crate) fn params(common: &Common, ef_search: usize) -> Params {
    Params::default().m(common.m).ef_construction(common.ef_construction).ef_search(ef_search).seed(common.seed)
}

/// Builds an index of the first `n` base vectors; returns it with the build's seconds.
pub(crate) fn build(
    data: &Dataset,
    n: usize,
    common: &Common,
    ef_search: usize,
    label: &str,
) -> Result<(Index, f64), Failure> {
    let mut index = Index::new(data.base.dim, common.metric, params(common, ef_search))?;
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
    for part in data.base.prefix(n).chunks(chunk) {
        index.add_batch(part)?;
        bar.inc((part.len() / data.base.dim) as u64);
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok((index, secs))
}

/// Searches every query, one per call, on this thread; returns ids and queries per second.
/// What validate and bench search: one graph or merged segments.
pub(crate) trait Searchable {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error>;
}

impl Searchable for Index {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        Index::search_with_ef(self, query, k, ef)
    }
}

impl Searchable for SegmentedIndex {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        SegmentedIndex::search_with_ef(self, query, k, ef)
    }
}

/// A segmented index searching each query's segments in parallel.
pub(crate) struct Parallel<'a>(pub(crate) &'a SegmentedIndex);

impl Searchable for Parallel<'_> {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        self.0.search_parallel_with_ef(query, k, ef)
    }
}

/// A segmented index searched with per-segment sampling.
pub(crate) struct Sampled<'a>(pub(crate) &'a SegmentedIndex);

impl Searchable for Sampled<'_> {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        self.0.search_sampled_with_ef(query, k, ef)
    }
}

pub(crate) fn search_all(
    index: &(impl Searchable + ?Sized),
    data: &Dataset,
    k: usize,
    ef: usize,
) -> Result<(Vec<Vec<NodeId>>, f64), Failure> {
    let started = Instant::now();
    let mut res = Vec::with_capacity(data.queries.len());
    for q in 0..data.queries.len() {
        let hits = index.search_with_ef(data.queries.row(q), k, ef)?;
        res.push(hits.iter().map(|h| to_node(h.id)).collect());
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((res, data.queries.len() as f64 / secs))
}

/// Recall@k and single-thread QPS at every ef of `efs` (raised to k), as the peer benchmark's
/// `sweep` entries; `label` prefixes the progress lines.
pub(crate) fn sweep_ef(
    index: &(impl Searchable + ?Sized),
    data: &Dataset,
    truth: &[Vec<NodeId>],
    k: usize,
    efs: &[usize],
    label: &str,
) -> Result<Vec<serde_json::Value>, Failure> {
    let mut sweep = Vec::with_capacity(efs.len());
    for &ef in efs {
        let ef = ef.max(k);
        let (found, qps) = search_all(index, data, k, ef)?;
        let recall = recall_at_k(&found, truth, k);
        eprintln!("{label}ef {ef:>4}: recall@{k} {recall:.4}, {qps:>9.0} QPS (1 thread, one query per call)");
        sweep.push(json!({"ef": ef, "recall": (recall * 1e4).round() / 1e4, "qps": (qps * 10.0).round() / 10.0}));
    }
    Ok(sweep)
}

/// The first sweep entry whose recall reaches `target`.
pub(crate) fn first_at_target(sweep: &[serde_json::Value], target: f64) -> Option<&serde_json::Value> {
    sweep.iter().find(|s| s["recall"].as_f64().is_some_and(|r| r >= target))
}

pub(crate) fn to_node(id: VectorId) -> NodeId {
    NodeId(id.0 as u32)
}

/// Saves `index` to `path`, loads it back, and returns a failure unless the loaded index
/// answers every query as `found` (the saved index's answers) says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn save_and_reload<I: Searchable>(
    index: &I,
    path: &std::path::Path,
    save: impl Fn(&I, &std::path::Path) -> Result<(), omen::Error>,
    load: impl Fn(&std::path::Path) -> Result<I, omen::Error>,
    data: &Dataset,
    k: usize,
    ef: usize,
    found: &[Vec<NodeId>],
) -> Result<Option<String>, Failure> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Bad(format!("{}: {e}", dir.display())))?;
    }
    let started = Instant::now();
    save(index, path).map_err(|e| Failure::Bad(format!("saving {}: {e}", path.display())))?;
    let save_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let loaded = load(path).map_err(|e| Failure::Bad(format!("loading {}: {e}", path.display())))?;
    let load_s = started.elapsed().as_secs_f64();
    let (again, _) = search_all(&loaded, data, k, ef)?;
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
