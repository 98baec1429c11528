//! `cargo xtask`: the project's runner. Run without arguments for the list of tasks; each task
//! lives in its own module, what they share in `harness`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::tidy;

mod ab;
mod bench;
mod harness;
mod inspect;
mod profile;
mod report;
mod updates;
mod validate;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "omendex's runner", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Staged validation (1K -> 5K -> 10K -> 20K by default): build, check invariants, measure
    /// recall@k against exact search. Exits non-zero on the first missed bar.
    Validate(validate::ValidateArgs),
    /// Build once, sweep ef, print the figures the peer benchmark prints.
    Bench(bench::BenchArgs),
    /// Time each phase of insertion (navigation, layer search, selection, connection updates,
    /// allocation) and count distance calls and heap allocations: builds an instrumented copy of
    /// the runner into target/profile and runs it (one thread unless --threads is given).
    Profile(profile::ProfileArgs),
    /// The instrumented run behind `profile`.
    #[cfg(feature = "profile")]
    #[command(hide = true)]
    ProfileRun(profile::ProfileArgs),
    /// Compare the working tree with an older revision (built in a temporary worktree) in
    /// alternating pairs of bench runs: the median ratio of each figure with a bootstrap
    /// interval. Exits 1 on a quality loss or a speed loss beyond the noise, 2 when a speed loss
    /// was measured while other processes were busy on the machine (no verdict).
    Ab(ab::AbArgs),
    /// omendex beside the peer libraries (hnswlib, FAISS, USearch, omendb where installed) on
    /// named datasets, alternating, one fresh process per run: raw lines and SVG plots under
    /// docs/results/DATE/, rendered into docs/benchmarks.md.
    Report(report::ReportArgs),
    /// Check that internal dependencies follow ARCHITECTURE.md.
    Tidy,
    /// Open a saved index file (read into memory, or mapped with --mmap) and report the open
    /// time, resident memory after opening and after a run of queries, and their speed.
    Open {
        /// The index file.
        path: PathBuf,
        /// Map the file instead of reading it (Index::open_mmap).
        #[arg(long)]
        mmap: bool,
        /// Random queries to run after opening (the first N of --data's queries with --data).
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        /// Take the queries from this TEXMEX folder's query.fvecs, and report recall@10 when
        /// its groundtruth.ivecs names the index's ids (an index of its base vectors in order).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Beam width of the queries (default: the index's ef_search).
        #[arg(long)]
        ef: Option<usize>,
        /// Drop the file's pages from the page cache first (Linux), so that resident memory
        /// counts the pages the open and the queries read, not those cached before.
        #[arg(long)]
        cold: bool,
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

#[cfg(feature = "profile")]
#[global_allocator]
static ALLOCATOR: xtask::alloc_count::Counting = xtask::alloc_count::Counting;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.task {
        Task::Validate(a) => validate::validate(a),
        Task::Bench(a) => bench::bench(a),
        Task::Profile(_) => profile::profile(),
        #[cfg(feature = "profile")]
        Task::ProfileRun(a) => profile::profile_run(a),
        Task::Ab(a) => ab::ab(a),
        Task::Report(a) => report::report(a),
        Task::Tidy => run_tidy(),
        Task::Inspect { path } => inspect::inspect(&path),
        Task::Updates(a) => updates::updates(a),
        Task::Open { path, mmap, queries, data, ef, cold } => {
            inspect::open(&path, inspect::OpenOptions { mmap, queries, data: data.as_deref(), ef, cold })
        }
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

fn run_tidy() -> Result<(), Failure> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let md = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let edges = tidy::workspace_edges(&root)?;
    let files = tidy::source_files(&root)?;
    let mut problems = tidy::check(&md, &edges);
    problems.extend(tidy::undocumented(&files));
    for (path, lines) in tidy::long_files(&files, tidy::MAX_LINES) {
        problems.push(format!("{path} has {lines} lines, over {}: split it by concern", tidy::MAX_LINES));
    }
    if problems.is_empty() {
        eprintln!(
            "tidy: {} internal dependency edges, all as ARCHITECTURE.md lists; {} modules, each opening with its doc and at most {} lines",
            edges.len(),
            files.len(),
            tidy::MAX_LINES
        );
        Ok(())
    } else {
        Err(Failure::Missed(problems.join("\n")))
    }
}
