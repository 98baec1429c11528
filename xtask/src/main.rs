//! `cargo xtask`: validate | bench | ab | tidy. Run without arguments for the list.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use omen::{Index, Metric, Params, SegmentPlan, SegmentedIndex, VectorId};
use omen_graph::NodeId;
use omen_search::recall_at_k;
use serde_json::json;
use xtask::dataset::Dataset;
use xtask::synthetic::Synthetic;
use xtask::{sysinfo, tidy};

mod ab;
mod updates;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "omen's runner", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Staged validation (1K -> 5K -> 10K -> 20K by default): build, check invariants, measure
    /// recall@k against exact search. Exits non-zero on the first missed bar.
    Validate(ValidateArgs),
    /// Build once, sweep ef, print the figures the peer benchmark prints.
    Bench(BenchArgs),
    /// Time each phase of insertion (navigation, layer search, selection, connection updates,
    /// allocation) and count distance calls and heap allocations: builds an instrumented copy of
    /// the runner into target/profile and runs it (one thread unless --threads is given).
    Profile(ProfileArgs),
    /// The instrumented run behind `profile`.
    #[cfg(feature = "profile")]
    #[command(hide = true)]
    ProfileRun(ProfileArgs),
    /// Compare the working tree with an older revision (built in a temporary worktree) in
    /// alternating pairs of bench runs: the median ratio of each figure with a bootstrap
    /// interval. Exits non-zero on a quality loss or a speed loss beyond the noise.
    Ab(ab::AbArgs),
    /// Check that internal dependencies follow ARCHITECTURE.md.
    Tidy,
    /// Open a saved index file (read into memory, or mapped with --mmap) and report the open
    /// time, resident memory after opening and after a run of random queries, and their speed.
    Open {
        /// The index file.
        path: PathBuf,
        /// Map the file instead of reading it (Index::open_mmap).
        #[arg(long)]
        mmap: bool,
        /// Random queries to run after opening.
        #[arg(long, default_value_t = 1000)]
        queries: usize,
    },
    /// Filtered search at several selectivities (graph walk, exact scan, automatic choice) and
    /// recall after deleting shares of the vectors, before and after compaction.
    Updates(updates::UpdatesArgs),
    /// Open a saved index (a file from `Index::save`, or a folder from `SegmentedIndex::save`),
    /// verify every checksum and structural invariant, and print its summary.
    Inspect {
        /// The index file or segmented index folder.
        path: PathBuf,
    },
}

#[derive(Args)]
struct ProfileArgs {
    #[command(flatten)]
    common: Common,
    /// Base vectors to generate for a synthetic dataset.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Beam of the profiled queries after the build (use the bench's ef for recall 0.95).
    #[arg(long, default_value_t = 64)]
    ef_search: usize,
}

#[cfg(feature = "profile")]
#[global_allocator]
static ALLOCATOR: xtask::alloc_count::Counting = xtask::alloc_count::Counting;

#[derive(Args, Clone)]
struct Common {
    /// TEXMEX folder: base.fvecs|bvecs, query.fvecs|bvecs, optional groundtruth.ivecs.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Synthetic dataset when no --data is given: random-D or clustered-D.
    #[arg(long)]
    dataset: Option<String>,
    /// Neighbours per node on upper layers (layer 0 keeps 2*m).
    #[arg(long, visible_alias = "M", default_value_t = 16)]
    m: usize,
    /// Beam width while building.
    #[arg(long, visible_alias = "efc", default_value_t = 200)]
    ef_construction: usize,
    /// Worker threads for construction (parallel bulk insertion) and exact search. Queries are
    /// always timed on one thread, one query per call.
    #[arg(long, default_value_t = default_threads(), value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
    /// Distance: l2, ip or cosine.
    #[arg(long, default_value = "l2")]
    metric: Metric,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    k: u32,
    /// Queries to generate for a synthetic dataset.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nq: u32,
    /// Seed of the layer draws.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object per result on stdout (human text goes to stderr).
    #[arg(long)]
    json: bool,
}

fn default_threads() -> u16 {
    sysinfo::cores().min(u16::MAX as usize) as u16
}

#[derive(Args)]
struct ValidateArgs {
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

#[derive(Args)]
struct BenchArgs {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.task {
        Task::Validate(a) => validate(a),
        Task::Bench(a) => bench(a),
        Task::Profile(_) => profile(),
        #[cfg(feature = "profile")]
        Task::ProfileRun(a) => profile_run(a),
        Task::Ab(a) => ab::ab(a),
        Task::Tidy => run_tidy(),
        Task::Inspect { path } => inspect(&path),
        Task::Updates(a) => updates::updates(a),
        Task::Open { path, mmap, queries } => open(&path, mmap, queries),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Bad(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Missed(msg)) => {
            eprintln!("FAILED: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Why a task stopped: bad input (files, flags) or a missed bar (recall, invariants).
enum Failure {
    Bad(String),
    Missed(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Bad(e.to_string())
    }
}

fn setup(common: &Common) -> Result<(), Failure> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(usize::from(common.threads))
        .build_global()
        .map_err(|e| Failure::Bad(format!("cannot start {} threads: {e}", common.threads)))
}

/// The dataset of `--data`, else `--dataset` (default `default_name`) generated with `n` vectors.
fn load(common: &Common, default_name: &str, n: usize) -> Result<Dataset, Failure> {
    match (&common.data, &common.dataset) {
        (Some(_), Some(_)) => Err(Failure::Bad("give --data or --dataset, not both".into())),
        (Some(dir), None) => Ok(Dataset::from_dir(dir, common.k as usize)?),
        (None, name) => {
            let s = Synthetic::parse(name.as_deref().unwrap_or(default_name)).map_err(Failure::Bad)?;
            Ok(Dataset::synthetic(s, n, common.nq as usize))
        }
    }
}

fn params(common: &Common, ef_search: usize) -> Params {
    Params::default().m(common.m).ef_construction(common.ef_construction).ef_search(ef_search).seed(common.seed)
}

/// Builds an index of the first `n` base vectors; returns it with the build's seconds.
fn build(data: &Dataset, n: usize, common: &Common, ef_search: usize, label: &str) -> Result<(Index, f64), Failure> {
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
trait Searchable {
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
struct Parallel<'a>(&'a SegmentedIndex);

impl Searchable for Parallel<'_> {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        self.0.search_parallel_with_ef(query, k, ef)
    }
}

/// A segmented index searched with per-segment sampling.
struct Sampled<'a>(&'a SegmentedIndex);

impl Searchable for Sampled<'_> {
    fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<omen::Neighbor>, omen::Error> {
        self.0.search_sampled_with_ef(query, k, ef)
    }
}

fn search_all(
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
fn sweep_ef(
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
fn first_at_target(sweep: &[serde_json::Value], target: f64) -> Option<&serde_json::Value> {
    sweep.iter().find(|s| s["recall"].as_f64().is_some_and(|r| r >= target))
}

fn to_node(id: VectorId) -> NodeId {
    NodeId(id.0 as u32)
}

fn validate(a: ValidateArgs) -> Result<(), Failure> {
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

    let path = omen::simd_path();
    let head = format!(
        "omen validate @ {}\nmachine: {} ({} cores), distance path: {path}, compiled SIMD: {}\ndataset: {}\nparams: metric {}, m {}, ef_construction {}, ef_search {}, seed {}, k {k}; build: parallel bulk insertion on {} threads",
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
        let (index, build_s) = build(&data, n, c, a.ef_search, &format!("stage {n}"))?;
        let invariants = index.check_invariants();
        let stats = index.stats();
        let (truth, from_file) = data.exact_top_k(n, k, c.metric);
        let (found, qps) = search_all(&index, &data, k, a.ef_search)?;
        let recall = recall_at_k(&found, &truth, k);
        let fallbacks = index.exact_fallbacks();
        // The narrowest beam shows a change in the graph's quality long before ef_search does.
        let (found_narrow, _) = search_all(&index, &data, k, k)?;
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
            failures.extend(save_and_reload(
                &index,
                &path,
                |i: &Index, p: &std::path::Path| i.save(p),
                |p: &std::path::Path| Index::load(p),
                &data,
                k,
                a.ef_search,
                &found,
            )?);
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
fn check_baseline(
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

/// Saves `index` to `path`, loads it back, and returns a failure unless the loaded index
/// answers every query as `found` (the saved index's answers) says.
#[allow(clippy::too_many_arguments)]
fn save_and_reload<I: Searchable>(
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

/// `cargo xtask open PATH [--mmap]`.
fn open(path: &std::path::Path, mmap: bool, queries: usize) -> Result<(), Failure> {
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
fn inspect(path: &std::path::Path) -> Result<(), Failure> {
    let print_stats = |stats: &omen::GraphStats| {
        for line in stats.to_string().lines() {
            println!("  {line}");
        }
    };
    if path.is_dir() {
        let index = SegmentedIndex::load(path)?;
        println!("{}: segmented index, format version {}", path.display(), omen::FORMAT_VERSION);
        println!("  {} vectors of dimension {} in {} segments", index.len(), index.dim(), index.segment_count());
        for (s, stats) in index.stats().iter().enumerate() {
            println!("segment {s}: {} vectors", index.segment_ids(s).map_or(0, <[VectorId]>::len));
            print_stats(stats);
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
        "  {} vectors, dimension {}, metric {}, m {}, ef_construction {}, ef_search {}, seed {}",
        index.len(),
        index.dim(),
        index.metric(),
        p.m,
        p.ef_construction,
        p.ef_search,
        p.seed
    );
    print_stats(&index.stats());
    index.check_invariants().map_err(|v| Failure::Missed(format!("invariant broken: {v}")))?;
    println!("checksums ok, invariants ok");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

fn bench(a: BenchArgs) -> Result<(), Failure> {
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
    let (index, build_s) = build(&data, n, c, a.efs[0], "build")?;
    let rss_after = sysinfo::proc_status_mb("VmRSS:");
    if let Err(v) = index.check_invariants() {
        return Err(Failure::Missed(format!("invariant broken after the build: {v}")));
    }

    // Warm-up, as the peer protocol does: 100 queries at the first ef.
    for q in 0..data.queries.len().min(100) {
        index.search_with_ef(data.queries.row(q), k, a.efs[0].max(k))?;
    }
    let sweep = sweep_ef(&index, &data, &truth, k, &a.efs, "")?;
    let at = |ef: usize| sweep.iter().find(|s| s["ef"] == ef).map(|s| s["recall"].clone());
    let hit = first_at_target(&sweep, a.target_recall);
    let round1 = |x: Option<f64>| x.map(|v| (v * 10.0).round() / 10.0);
    let out = json!({
        "lib": "omen", "version": env!("CARGO_PKG_VERSION"), "git_revision": sysinfo::git_revision(), "lang": "rust",
        "dataset": data.name, "n": n, "dim": data.base.dim, "nq": data.queries.len(), "threads": c.threads,
        "M": c.m, "efc": c.ef_construction, "k": k, "metric": format!("{} (omen)", c.metric),
        "build_s": (build_s * 1e4).round() / 1e4, "build_vps": (n as f64 / build_s * 10.0).round() / 10.0,
        "build": "Index::add_batch (parallel bulk insertion)",
        "index_rss_mb": round1(rss_before.zip(rss_after).map(|(b, a)| a - b)),
        "lib_bytes_mb": round1(Some(index.heap_bytes() as f64 / 1048576.0)), "lib_bytes_what": "vectors + links heap capacity",
        "peak_rss_mb": round1(sysinfo::proc_status_mb("VmHWM:")),
        "rss_before_build_mb": round1(rss_before), "rss_after_build_mb": round1(rss_after),
        "recall_at_ef64": at(64), "recall_at_ef128": at(128), "target_recall": a.target_recall,
        "ef_at_target": hit.map(|h| h["ef"].clone()), "qps_at_target": hit.map(|h| h["qps"].clone()),
        "recall_at_target": hit.map(|h| h["recall"].clone()),
        "truth": if from_file { "groundtruth.ivecs" } else { "brute force" },
        "distance_path": omen::simd_path().name(), "sweep": sweep,
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

fn run_tidy() -> Result<(), Failure> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let md = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let edges = tidy::workspace_edges(&root)?;
    let problems = tidy::check(&md, &edges);
    if problems.is_empty() {
        eprintln!("tidy: {} internal dependency edges, all as ARCHITECTURE.md lists", edges.len());
        Ok(())
    } else {
        Err(Failure::Missed(problems.join("\n")))
    }
}

/// Re-runs this runner built with the `profile` feature (into its own target directory, so the
/// normal build keeps no instrumentation), forwarding the arguments.
fn profile() -> Result<(), Failure> {
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
fn profile_run(a: ProfileArgs) -> Result<(), Failure> {
    use omen_build::profile;

    let c = &a.common;
    setup(c)?;
    let data = load(c, "random-128", a.n)?;
    let n = data.base.len();
    let mut index = Index::new(data.base.dim, c.metric, params(c, 64))?;
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
        "omen profile @ {}: {} ({} vectors, d = {}), metric {}, m {}, ef_construction {}, {} thread(s), distance path {}",
        sysinfo::git_revision(),
        data.name,
        n,
        data.base.dim,
        c.metric,
        c.m,
        c.ef_construction,
        c.threads,
        omen::simd_path()
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
    let calls0 = omen_distance::calls_on_this_thread();
    let started = Instant::now();
    for q in 0..data.queries.len() {
        index.search_with_ef(data.queries.row(q), k, ef)?;
    }
    let query_s = started.elapsed().as_secs_f64();
    let nq = data.queries.len().max(1) as f64;
    let per_query_calls = (omen_distance::calls_on_this_thread() - calls0) as f64 / nq;
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
        index.search_filtered_by(data.queries.row(q), k, ef, |_| true, omen::FilterPlan::Scan)?;
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

/// One stage of `validate --segments S`: builds S segments of the first `n` vectors, then
/// measures every segment alone (recall against that segment's own exact neighbours) and the
/// merged search (recall against the global exact neighbours).
fn validate_segmented_stage(
    a: &ValidateArgs,
    data: &Dataset,
    n: usize,
    segments: usize,
) -> Result<(serde_json::Value, Vec<String>), Failure> {
    let c = &a.common;
    let k = c.k as usize;
    let dim = data.base.dim;
    let started = Instant::now();
    let index = SegmentedIndex::build(
        dim,
        c.metric,
        params(c, a.ef_search),
        data.base.prefix(n),
        SegmentPlan::Count(segments),
    )?;
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

    let dist = omen_distance::Distance::new(c.metric);
    let queries = omen_search::Rows::dense(&data.queries.data, dim);
    let mut per_segment = Vec::new();
    for s in 0..index.segment_count() {
        let ids = index.segment_ids(s).expect("segment exists");
        let start = ids[0].0 as usize;
        let len = ids.len();
        let k_s = k.min(len);
        let rows = omen_search::Rows::dense(&data.base.data[start * dim..(start + len) * dim], dim);
        let truth: Vec<Vec<NodeId>> = omen_search::brute_force_batch(rows, &dist, queries, k_s)
            .into_iter()
            .map(|r| r.into_iter().map(|h| NodeId((start + h.id.idx()) as u32)).collect())
            .collect();
        let mut found = Vec::with_capacity(data.queries.len());
        for q in 0..data.queries.len() {
            let hits = index.search_segment(s, data.queries.row(q), k_s, a.ef_search)?;
            found.push(hits.iter().map(|h| to_node(h.id)).collect());
        }
        let recall = recall_at_k(&found, &truth, k_s);
        if recall < a.min_recall {
            failures.push(format!("stage {n}: segment {s} alone: recall@{k_s} {recall:.4} < {}", a.min_recall));
        }
        per_segment.push(json!({"segment": s, "n": len, "recall": recall}));
    }
    let (truth, _) = data.exact_top_k(n, k, c.metric);
    let (found, qps) = search_all(&index, data, k, a.ef_search)?;
    let recall = recall_at_k(&found, &truth, k);
    if recall < a.min_recall {
        failures.push(format!("stage {n}: merged recall@{k} {recall:.4} < {}", a.min_recall));
    }
    if let Some(dir) = &a.save {
        let path = dir.join(format!("stage-{n}-segments"));
        let (save, load) =
            (|i: &SegmentedIndex, p: &std::path::Path| i.save(p), |p: &std::path::Path| SegmentedIndex::load(p));
        failures.extend(save_and_reload(&index, &path, save, load, data, k, a.ef_search, &found)?);
    }
    if index.exact_fallbacks() > 0 {
        failures.push(format!("stage {n}: {} searches fell back to exact scan", index.exact_fallbacks()));
    }
    // Merge into one graph, and build the stage afresh for comparison (both timed alone).
    let merge_ef = a.merge_ef.unwrap_or(c.ef_construction * 2 / 5).max(1);
    let started = Instant::now();
    let merged = index.merged(merge_ef)?;
    let merge_s = started.elapsed().as_secs_f64();
    let (fresh, fresh_s) = build(data, n, c, a.ef_search, "fresh")?;
    if let Err((_, v)) = merged.check_invariants() {
        failures.push(format!("stage {n}: merged graph: invariant broken: {v}"));
    }
    let merged_links: usize = merged.stats().iter().map(|s| s.without_links()).sum();
    if merged_links > 0 {
        failures.push(format!("stage {n}: merged graph: {merged_links} nodes without links"));
    }
    let (found_m, qps_m) = search_all(&merged, data, k, a.ef_search)?;
    let recall_merged = recall_at_k(&found_m, &truth, k);
    let (found_f, _) = search_all(&fresh, data, k, a.ef_search)?;
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

/// `bench --segments S`: the same sweep over a segmented index (merged search).
fn bench_segmented(
    a: &BenchArgs,
    data: &Dataset,
    truth: &[Vec<NodeId>],
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
    let index = SegmentedIndex::build(
        data.base.dim,
        c.metric,
        params(c, a.efs[0]),
        &data.base.data,
        SegmentPlan::Count(segments),
    )?;
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
            let (fresh, fresh_s) = build(data, n, c, a.efs[0], "fresh")?;
            let sweep = sweep_ef(&fresh, data, truth, k, &a.efs, "fresh build, ")?;
            let hit = first_at_target(&sweep, a.target_recall).cloned();
            Some((fresh_s, hit))
        }
    };
    // How the segments are searched: the searcher, its progress label and its report line.
    let (parallel, sampled) = (Parallel(&index), Sampled(&index));
    let (searcher, label, how): (&dyn Searchable, &str, &str) = if a.parallel_query {
        (
            &parallel,
            " in parallel",
            "one query at a time, its segments searched in parallel on --threads threads, merged",
        )
    } else if a.sampled {
        (
            &sampled,
            " sampled",
            "single thread, one query per call, every segment searched for its sampled share and merged",
        )
    } else {
        (&index, "", "single thread, one query per call, every segment searched and merged")
    };
    let sweep = sweep_ef(searcher, data, truth, k, &a.efs, &format!("{segments} segments{label}, "))?;
    let hit = first_at_target(&sweep, a.target_recall);
    let out = json!({
        "lib": "omen", "version": env!("CARGO_PKG_VERSION"), "git_revision": sysinfo::git_revision(), "lang": "rust",
        "dataset": data.name, "n": n, "dim": data.base.dim, "nq": data.queries.len(), "threads": c.threads,
        "segments": segments, "M": c.m, "efc": c.ef_construction, "k": k, "metric": format!("{} (omen)", c.metric),
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
        "distance_path": omen::simd_path().name(), "sweep": sweep,
        "search": how,
        "started_unix": started_at, "load1_at_start": load1,
    });
    println!("{out}");
    Ok(())
}
