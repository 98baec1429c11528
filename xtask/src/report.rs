//! `cargo xtask report`: omendex beside the peer libraries on named datasets, one fresh process
//! per run, libraries alternating; the raw lines kept in `docs/results/<date>/runs.jsonl`
//! and rendered as ann-benchmarks draws them (recall@10 against QPS on a log axis, with each
//! library's Pareto frontier), plus build throughput and index memory as bar charts, into SVG
//! files and `docs/benchmarks.md`.
//!
//! Peers run through `../shared/peers/run_peer.sh` (hnswlib, FAISS, USearch, omendb, ...), each
//! skipped with a note when its Python package is not installed. omendex runs as `bench --json`
//! of this very runner.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde_json::{Value, json};
use xtask::frontier::pareto_frontier;
use xtask::paired::median;
use xtask::sysinfo;

use crate::Failure;
use crate::harness::{hdf5_folder, repo_root, target_dir};

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// TEXMEX dataset folders (repeat the flag). Default: random-128-20000 and
    /// clustered-128-20000 (written by the peers' gen.py into target/peer-data when missing)
    /// and ../shared/data/minilm-rustdoc when present.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Libraries: omendex (omendex-int8: walking on 8-bit codes) and any peer bench.py runs
    /// (faiss-sq8 and usearch-i8 their 8-bit variants); a peer whose package is missing is skipped.
    #[arg(long, value_delimiter = ',', default_value = "omendex,hnswlib,faiss,usearch,omendb")]
    libs: Vec<String>,
    /// Build thread counts (queries always run on one thread).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<u16>,
    /// Runs of each library, dataset and thread count; the libraries' order rotates each round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
    /// The folder of the peer scripts.
    #[arg(long, default_value = "../shared/peers")]
    peers: PathBuf,
    /// Where the raw lines and the plots go (a folder per date inside it).
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// The page rendered from them.
    #[arg(long, default_value = "docs/benchmarks.md")]
    markdown: PathBuf,
    /// Render the raw lines of an earlier run (its runs.jsonl) instead of running anything.
    #[arg(long)]
    from: Option<PathBuf>,
}

/// The Python module that tells whether a peer is installed.
fn peer_module(lib: &str) -> Option<&'static str> {
    Some(match lib {
        "hnswlib" => "hnswlib",
        "faiss" | "faiss-sq8" => "faiss",
        "usearch" | "usearch-i8" => "usearch.index",
        "omendb" | "omendb-sq8" => "omendb",
        "omen-py" => "omendex",
        _ => return None,
    })
}

/// omendex's own rows: `omendex` on f32 rows, `omendex-int8` walking on 8-bit codes.
fn omen_quantization(lib: &str) -> Option<&'static str> {
    match lib {
        "omendex" => Some("none"),
        "omendex-int8" => Some("int8"),
        _ => None,
    }
}

fn installed(lib: &str) -> bool {
    let Some(module) = peer_module(lib) else { return false };
    Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
}

/// `p` against the repository root when relative.
fn at_root(p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { repo_root().join(p) }
}

/// The default datasets, generating the synthetic ones with the peers' gen.py when missing.
fn default_datasets(peers: &Path, notes: &mut Vec<String>) -> Result<Vec<PathBuf>, Failure> {
    let mut res = Vec::new();
    let gen_out = target_dir().join("peer-data");
    for family in ["random-128", "clustered-128"] {
        let dir = gen_out.join(format!("{family}-20000"));
        if !dir.join("groundtruth.ivecs").is_file() {
            eprintln!("report: writing {} with gen.py", dir.display());
            let status = Command::new("python3")
                .arg(peers.join("gen.py"))
                .arg("--out")
                .arg(&gen_out)
                .args(["--families", family, "--sizes", "20000"])
                .status()
                .map_err(|e| Failure::Bad(format!("cannot run python3: {e}")))?;
            if !status.success() {
                return Err(Failure::Bad(format!("gen.py failed ({status}); it needs numpy")));
            }
        }
        res.push(dir);
    }
    let minilm = repo_root().join("../shared/data/minilm-rustdoc");
    if minilm.join("base.fvecs").is_file() {
        res.push(minilm);
    } else {
        notes.push(format!("{} is absent: minilm-rustdoc not measured", minilm.display()));
    }
    Ok(res)
}

/// One run of `lib` on `data` with `threads` build threads: its JSON line.
fn run_one(lib: &str, data: &Path, threads: u16, peers: &Path) -> Result<Value, Failure> {
    let out = if let Some(quantization) = omen_quantization(lib) {
        Command::new(std::env::current_exe()?)
            .current_dir(repo_root())
            .args(["bench", "--json", "--quantization", quantization, "--threads", &threads.to_string(), "--data"])
            .arg(data)
            .output()
    } else {
        Command::new("bash").arg(peers.join("run_peer.sh")).arg(data).arg(lib).arg(threads.to_string()).output()
    }
    .map_err(|e| Failure::Bad(format!("cannot run {lib}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(4).collect();
        return Err(Failure::Bad(format!("{lib} on {} failed: {}", data.display(), tail.join(" | "))));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| Failure::Bad(format!("{lib} printed no JSON line")))
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "undated".into())
}

pub(crate) fn report(a: ReportArgs) -> Result<(), Failure> {
    let mut notes = Vec::new();
    let (runs_path, folder) = match &a.from {
        Some(p) => {
            let p = at_root(p);
            let folder = p.parent().map(Path::to_path_buf).unwrap_or_default();
            (p, folder)
        }
        None => {
            let folder = at_root(&a.out).join(today());
            std::fs::create_dir_all(&folder)?;
            let path = folder.join("runs.jsonl");
            run_all(&a, &path, &mut notes)?;
            (path, folder)
        }
    };
    let text =
        std::fs::read_to_string(&runs_path).map_err(|e| Failure::Bad(format!("{}: {e}", runs_path.display())))?;
    let runs: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if runs.is_empty() {
        return Err(Failure::Bad(format!("{}: no runs", runs_path.display())));
    }
    let mut md = render(&runs, &folder, &at_root(&a.markdown), &notes)?;
    // The hand-kept measurements below the marker survive a new report.
    let old = std::fs::read_to_string(at_root(&a.markdown)).unwrap_or_default();
    if let Some(at) = old.find(KEPT_BELOW) {
        md.push('\n');
        md.push_str(&old[at..]);
    }
    std::fs::write(at_root(&a.markdown), md)?;
    eprintln!("report: {} runs rendered into {} and {}", runs.len(), folder.display(), a.markdown.display());
    Ok(())
}

/// Runs every library, dataset and thread count `reps` times, appending each line to `path`.
fn run_all(a: &ReportArgs, path: &Path, notes: &mut Vec<String>) -> Result<(), Failure> {
    let peers = at_root(&a.peers);
    let datasets = if a.data.is_empty() {
        default_datasets(&peers, notes)?
    } else {
        let mut res = Vec::new();
        for d in &a.data {
            let d = at_root(d);
            // The peers compute L2 only: an HDF5 file must hold Euclidean neighbours.
            res.push(if xtask::hdf5::is_hdf5(&d) { hdf5_folder(&d, omendex::Metric::L2)? } else { d });
        }
        res
    };
    let mut libs = Vec::new();
    for lib in &a.libs {
        if omen_quantization(lib).is_some() || installed(lib) {
            libs.push(lib.clone());
        } else {
            notes.push(format!("{lib}: not installed (see ../shared/peers/README.md), not measured"));
            eprintln!("report: {lib} is not installed, skipped");
        }
    }
    if a.threads.is_empty() || a.threads.contains(&0) {
        return Err(Failure::Bad("--threads needs counts of at least 1".into()));
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let total = a.reps as usize * datasets.len() * a.threads.len() * libs.len();
    let mut done = 0;
    for rep in 0..a.reps as usize {
        for data in &datasets {
            for &threads in &a.threads {
                // Alternate: each round starts with the next library.
                for j in 0..libs.len() {
                    let lib = &libs[(j + rep) % libs.len()];
                    let mut line = run_one(lib, data, threads, &peers)?;
                    done += 1;
                    let name = data.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    if let Some(o) = line.as_object_mut() {
                        o.insert("report_lib".into(), json!(lib));
                        o.insert("report_dataset".into(), json!(name));
                        o.insert("report_rep".into(), json!(rep));
                        o.insert("report_git_revision".into(), json!(sysinfo::git_revision()));
                        o.insert("report_cpu".into(), json!(sysinfo::cpu_model()));
                    }
                    eprintln!(
                        "report: {done}/{total} {name} {lib} {threads}t: build {} vec/s, ef at 0.95 {}, QPS there {}",
                        line["build_vps"], line["ef_at_target"], line["qps_at_target"]
                    );
                    writeln!(file, "{line}")?;
                }
            }
        }
    }
    Ok(())
}

/// A library's runs on one dataset: `by_threads[t]` its runs built on `t` threads.
#[derive(Default)]
struct LibRuns<'a> {
    version: String,
    by_threads: BTreeMap<u64, Vec<&'a Value>>,
}

fn med(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| median(&v))
}

fn fmt(x: Option<f64>, decimals: usize) -> String {
    match x {
        None => "–".into(),
        Some(v) if decimals == 0 => {
            let s = format!("{:.0}", v);
            // Thousands separators, as the README's tables print them.
            let (neg, digits) = s.strip_prefix('-').map_or((false, s.as_str()), |d| (true, d));
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            if neg { format!("-{out}") } else { out }
        }
        Some(v) => format!("{v:.decimals$}"),
    }
}

/// The median (recall, QPS) per swept ef over `runs`.
fn curve(runs: &[&Value]) -> Vec<(f64, f64)> {
    let mut by_ef: BTreeMap<u64, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in runs {
        for s in r["sweep"].as_array().into_iter().flatten() {
            if let (Some(ef), Some(rec), Some(qps)) = (s["ef"].as_u64(), s["recall"].as_f64(), s["qps"].as_f64()) {
                let e = by_ef.entry(ef).or_default();
                e.0.push(rec);
                e.1.push(qps);
            }
        }
    }
    by_ef.values().map(|(r, q)| (median(r), median(q))).collect()
}

/// Renders the plots into `folder` and returns the page.
/// The line in the report's page below which everything is written by hand and kept.
const KEPT_BELOW: &str = "<!-- cargo xtask report keeps everything below this line -->";

fn render(runs: &[Value], folder: &Path, page: &Path, notes: &[String]) -> Result<String, Failure> {
    let mut by_dataset: BTreeMap<String, BTreeMap<String, LibRuns<'_>>> = BTreeMap::new();
    for r in runs {
        let ds = r["report_dataset"].as_str().or(r["dataset"].as_str()).unwrap_or("?").to_string();
        let lib = r["report_lib"].as_str().or(r["lib"].as_str()).unwrap_or("?").to_string();
        let entry = by_dataset.entry(ds).or_default().entry(lib).or_default();
        entry.version = r["version"].as_str().unwrap_or("").to_string();
        entry.by_threads.entry(r["threads"].as_u64().unwrap_or(0)).or_default().push(r);
    }
    let rel = |p: &Path| -> String {
        let base = page.parent().unwrap_or(Path::new("."));
        p.strip_prefix(base).map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
    };
    let first = &runs[0];
    let revisions: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["report_git_revision"].as_str().or(r["git_revision"].as_str())).collect();
    let mut md = String::new();
    md.push_str("# omendex beside the peers\n\n");
    md.push_str(&format!(
        "Generated by `cargo xtask report` (raw lines: `{}`; re-render with `cargo xtask report --from {}`).\n\
         Machine: {}, {} cores, shared and noisy (absolute figures drift ±30% between days; compare\n\
         libraries within one table, never across dates). omendex at git revision {}. M=16,\n\
         ef_construction=200, k=10, L2; one fresh process per run, libraries alternating; figures\n\
         are medians over runs (min–max where shown). Queries: one thread, one query per call\n\
         (Python peers pay a few µs of call overhead per query; their native batch loop is the\n\
         `batch-1t` column). Recall by ids against the exact top 10; omendex's recall by distance\n\
         (a hit within the 10th true distance + 1e-3, as ann-benchmarks counts) is in the raw\n\
         lines as `recall_dist`.\n\n",
        rel(&folder.join("runs.jsonl")),
        rel(&folder.join("runs.jsonl")),
        first["report_cpu"].as_str().unwrap_or("unknown CPU"),
        sysinfo::cores(),
        revisions.into_iter().collect::<Vec<_>>().join(", "),
    ));
    for n in notes {
        md.push_str(&format!("- {n}\n"));
    }
    if !notes.is_empty() {
        md.push('\n');
    }
    for (ds, libs) in &by_dataset {
        let stem: String = ds.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        md.push_str(&format!("## {ds}\n\n"));
        md.push_str(
            "| library | version | build threads | runs | build vec/s | index MB (RSS Δ) | ef for recall@10 ≥ 0.95 | recall there | QPS there | batch-1t there | recall@10 ef=64 |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (lib, lr) in libs {
            for (t, rs) in &lr.by_threads {
                let f = |k: &str| med(rs.iter().filter_map(|r| r[k].as_f64()));
                let vps: Vec<f64> = rs.iter().filter_map(|r| r["build_vps"].as_f64()).collect();
                let range = match (vps.iter().copied().reduce(f64::min), vps.iter().copied().reduce(f64::max)) {
                    (Some(lo), Some(hi)) if rs.len() > 1 => format!(" ({}–{})", fmt(Some(lo), 0), fmt(Some(hi), 0)),
                    _ => String::new(),
                };
                md.push_str(&format!(
                    "| {lib} | {} | {t} | {} | {}{range} | {} | {} | {} | {} | {} | {} |\n",
                    lr.version,
                    rs.len(),
                    fmt(f("build_vps"), 0),
                    fmt(f("index_rss_mb"), 1),
                    fmt(f("ef_at_target"), 0),
                    fmt(f("recall_at_target"), 4),
                    fmt(f("qps_at_target"), 0),
                    fmt(f("qps_batch1t_at_target"), 0),
                    fmt(f("recall_at_ef64"), 4),
                ));
            }
        }
        md.push('\n');
        let curve_path = folder.join(format!("{stem}-recall-qps.svg"));
        plot_curves(ds, libs, &curve_path)?;
        let build_path = folder.join(format!("{stem}-build.svg"));
        plot_bars(ds, libs, &build_path, "build_vps", "build: vectors per second")?;
        let mem_path = folder.join(format!("{stem}-memory.svg"));
        plot_bars(ds, libs, &mem_path, "index_rss_mb", "index memory: MB (RSS growth during the build)")?;
        md.push_str(&format!("![recall against QPS, {ds}]({})\n\n", rel(&curve_path)));
        md.push_str(&format!(
            "![build throughput, {ds}]({}) ![index memory, {ds}]({})\n\n",
            rel(&build_path),
            rel(&mem_path)
        ));
    }
    Ok(md)
}

/// Recall@10 (x) against QPS (y, log), one colour per library: every median sweep point, and
/// the library's Pareto frontier as a line. Runs built on one thread where there are any.
fn plot_curves(ds: &str, libs: &BTreeMap<String, LibRuns<'_>>, path: &Path) -> Result<(), Failure> {
    let series: Vec<(&String, Vec<(f64, f64)>)> = libs
        .iter()
        .map(|(lib, lr)| {
            let runs = lr.by_threads.get(&1).or_else(|| lr.by_threads.values().next()).cloned().unwrap_or_default();
            (lib, curve(&runs))
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    let x_min = all.iter().map(|p| p.0).fold(1.0f64, f64::min).clamp(0.0, 0.9);
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).max(1.0) * 0.8;
    let y_max = all.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.25;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{ds}: recall@10 against queries per second"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min..1.0f64, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("recall@10")
        .y_desc("queries per second (one thread, log scale)")
        .y_labels(15)
        .y_label_formatter(&|y| fmt(Some(*y), 0))
        .draw()?;
    for (i, (lib, pts)) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let front = pareto_frontier(pts);
        chart
            .draw_series(LineSeries::new(front, colour.stroke_width(2)))?
            .label(lib.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One bar per library and build thread count: the median of `key`.
fn plot_bars(
    ds: &str,
    libs: &BTreeMap<String, LibRuns<'_>>,
    path: &Path,
    key: &str,
    what: &str,
) -> Result<(), Failure> {
    let mut bars: Vec<(String, f64, usize)> = Vec::new();
    for (i, (lib, lr)) in libs.iter().enumerate() {
        for (t, rs) in &lr.by_threads {
            if let Some(v) = med(rs.iter().filter_map(|r| r[key].as_f64())) {
                bars.push((format!("{lib} {t}t"), v, i));
            }
        }
    }
    let top = bars.iter().map(|b| b.1).fold(1.0f64, f64::max) * 1.15;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{ds}: {what}"), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((0..(bars.len() as i32 - 1).max(0)).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| fmt(Some(*y), if top < 100.0 { 1 } else { 0 }))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(j, (_, v, lib))| {
        let colour = Palette99::pick(*lib).to_rgba();
        let j = j as i32;
        let mut bar =
            Rectangle::new([(SegmentValue::Exact(j), 0.0), (SegmentValue::Exact(j + 1), *v)], colour.filled());
        bar.set_margin(0, 0, 6, 6);
        bar
    }))?;
    root.present()?;
    Ok(())
}
