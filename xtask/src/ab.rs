//! `cargo xtask ab [REV]`: the working tree against an older revision, in alternating pairs.
//!
//! REV is built in a temporary git worktree with its own target folder (its runner binary is
//! kept under `target/ab/bin/`, so a second comparison against the same commit skips the
//! build); the new side is this very runner, built from the working tree by `cargo xtask`.
//! Each pair runs `bench --json` of both, in a fresh process each, once per thread count, the
//! order flipping from pair to pair; the figures are compared as `xtask::paired` describes.
//! Speed is judged only by paired ratios, never by absolute numbers. Around every run, `ab`
//! measures how much of the machine other processes took (`xtask::sysinfo::CpuSample`, the
//! run's own CPU time taken out): a speed loss measured while they took more than
//! `paired::BUSY_CORES` cores is no verdict, and `ab` exits 2 ("cannot judge") rather than 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use serde_json::{Value, json};
use xtask::paired::{self, Verdict};
use xtask::sysinfo;

use crate::Failure;
use crate::harness::{repo_root, target_dir};

#[derive(Args)]
pub(crate) struct AbArgs {
    /// The revision to compare with (default: the merge base with main; on main itself, HEAD
    /// when the working tree has changes, else HEAD~1).
    rev: Option<String>,
    /// TEXMEX folder to bench on (default: the bench's synthetic random-128, 20,000 vectors).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Synthetic dataset when no --data is given: random-D or clustered-D.
    #[arg(long, conflicts_with = "data")]
    dataset: Option<String>,
    /// Base vectors of the synthetic dataset.
    #[arg(long, conflicts_with = "data")]
    n: Option<usize>,
    /// Pairs of runs (each pair: old and new, once per thread count). With 5 pairs a speed
    /// loss needs all five ratios below the bar.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=1000))]
    pairs: u32,
    /// Build thread counts, comma-separated; quality is judged on the one-thread build, which a
    /// seed makes deterministic.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<u16>,
    /// The beam at which recall is compared.
    #[arg(long, default_value_t = 64)]
    fixed_ef: u64,
    /// Print one JSON object on stdout (progress and the table go to stderr).
    #[arg(long)]
    json: bool,
    /// Further `bench` arguments for both sides, after `--` (for example `-- --metric ip`).
    #[arg(last = true)]
    bench_args: Vec<String>,
}

/// Runs git in the repository; its trimmed stdout, or why it failed.
fn git(args: &[&str]) -> Result<String, Failure> {
    let out = Command::new("git")
        .current_dir(repo_root())
        .args(args)
        .output()
        .map_err(|e| Failure::Bad(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(Failure::Bad(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// The revision to compare with, as (what the user would call it, full commit id).
fn resolve(rev: Option<&str>) -> Result<(String, String), Failure> {
    let commit = |r: &str| git(&["rev-parse", "--verify", "--quiet", &format!("{r}^{{commit}}")]);
    if let Some(r) = rev {
        return Ok((r.to_string(), commit(r).map_err(|_| Failure::Bad(format!("{r:?} is not a commit")))?));
    }
    let head = commit("HEAD")?;
    if let Ok(base) = git(&["merge-base", "HEAD", "main"])
        && base != head
    {
        return Ok(("the merge base with main".into(), base));
    }
    if !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
        return Ok(("HEAD".into(), head));
    }
    Ok(("HEAD~1".into(), commit("HEAD~1")?))
}

/// The runner of `commit`, built in a temporary worktree unless an earlier comparison left it.
fn old_runner(commit: &str) -> Result<PathBuf, Failure> {
    let dir = target_dir().join("ab");
    let short = &commit[..12.min(commit.len())];
    let bin = dir.join("bin").join(format!("xtask-{short}"));
    if bin.is_file() {
        eprintln!("ab: reusing {}", bin.display());
        return Ok(bin);
    }
    let tree = dir.join(format!("worktree-{short}"));
    if tree.exists() {
        let _ = git(&["worktree", "remove", "--force", &tree.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&tree);
        git(&["worktree", "prune"])?;
    }
    std::fs::create_dir_all(dir.join("bin"))?;
    git(&["worktree", "add", "--detach", &tree.to_string_lossy(), commit])?;
    eprintln!("ab: building {short} in {}", tree.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&tree)
        .args(["build", "--release", "--quiet", "--package", "xtask", "--target-dir"])
        .arg(dir.join("target"))
        .status();
    let built = dir.join("target").join("release").join("xtask");
    let copied = match status {
        Ok(s) if s.success() => std::fs::copy(&built, &bin).map(|_| ()).map_err(Failure::from),
        Ok(s) => Err(Failure::Bad(format!("building {short} failed ({s})"))),
        Err(e) => Err(Failure::Bad(format!("cannot run cargo: {e}"))),
    };
    let _ = git(&["worktree", "remove", "--force", &tree.to_string_lossy()]);
    copied.map(|()| bin)
}

/// One `bench --json` run of `runner` in a fresh process; its JSON line.
fn bench(runner: &Path, threads: u16, args: &[String]) -> Result<Value, Failure> {
    let out = Command::new(runner)
        .current_dir(repo_root())
        .args(["bench", "--json", "--threads", &threads.to_string()])
        .args(args)
        .output()
        .map_err(|e| Failure::Bad(format!("cannot run {}: {e}", runner.display())))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(Failure::Bad(format!(
            "{} bench failed ({}): {}",
            runner.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'));
    line.and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| Failure::Bad(format!("{} bench printed no JSON line", runner.display())))
}

/// One side's runs: `runs[t][p]` is thread count `t`'s run in pair `p`, and `others[t][p]` the
/// cores' worth of CPU time other processes took during it (where the system tells).
struct Side {
    runs: Vec<Vec<Value>>,
    others: Vec<Vec<Option<f64>>>,
}

impl Side {
    /// Field `key` of thread count `t`'s runs, as numbers (`None` for null or absent).
    fn field(&self, t: usize, key: &str) -> Vec<Option<f64>> {
        self.runs[t].iter().map(|r| r[key].as_f64()).collect()
    }

    /// Recall at beam `ef` in thread count `t`'s runs.
    fn recall_at(&self, t: usize, ef: u64) -> Vec<Option<f64>> {
        self.runs[t]
            .iter()
            .map(|r| {
                r["sweep"].as_array().and_then(|s| s.iter().find(|e| e["ef"].as_u64() == Some(ef)))?["recall"].as_f64()
            })
            .collect()
    }
}

/// A figure's line in the report.
fn figure(name: &str, kind: &str, old: Value, new: Value, ratio: Value, interval: Value, verdict: Verdict) -> Value {
    json!({"figure": name, "kind": kind, "old": old, "new": new, "ratio": ratio, "interval": interval,
           "verdict": verdict.name()})
}

/// A speed figure from paired runs; `others`: the most cores other processes took during any
/// of them (a loss then is no verdict, [`paired::judge_under_load`]).
fn speed(name: &str, old: &[Option<f64>], new: &[Option<f64>], seed: u64, others: Option<f64>) -> Option<Value> {
    let (old, new): (Vec<f64>, Vec<f64>) = old.iter().zip(new).filter_map(|(o, n)| Some(((*o)?, (*n)?))).unzip();
    if old.is_empty() {
        return None;
    }
    let c = paired::compare_speed(&old, &new, seed);
    let verdict = paired::judge_under_load(c.verdict, others);
    let mut f =
        figure(name, "speed", json!(c.old_median), json!(c.new_median), json!(c.ratio), json!(c.interval), verdict);
    f["most_other_cores"] = json!(others);
    Some(f)
}

/// The most cores other processes took during thread count `t`'s runs of either side.
fn busiest(old: &Side, new: &Side, t: usize) -> Option<f64> {
    old.others[t].iter().chain(&new.others[t]).flatten().copied().reduce(f64::max)
}

/// The median of the values present (all runs of a deterministic figure agree).
fn median_present(xs: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = xs.iter().flatten().copied().collect();
    (present.len() * 2 > xs.len()).then(|| paired::median(&present))
}

fn agree(xs: &[Option<f64>]) -> bool {
    xs.windows(2).all(|w| w[0] == w[1])
}

pub(crate) fn ab(a: AbArgs) -> Result<(), Failure> {
    if a.threads.is_empty() || a.threads.contains(&0) {
        return Err(Failure::Bad("--threads needs counts of at least 1".into()));
    }
    let (rev_name, commit) = resolve(a.rev.as_deref())?;
    let old_bin = old_runner(&commit)?;
    let new_bin = std::env::current_exe()?;
    let mut args = Vec::new();
    if let Some(d) = &a.data {
        args.extend(["--data".to_string(), d.display().to_string()]);
    }
    if let Some(d) = &a.dataset {
        args.extend(["--dataset".to_string(), d.clone()]);
    }
    if let Some(n) = a.n {
        args.extend(["--n".to_string(), n.to_string()]);
    }
    args.extend(a.bench_args.iter().cloned());

    let pairs = a.pairs as usize;
    let new_rev = sysinfo::git_revision();
    eprintln!(
        "ab: new = working tree ({new_rev}) against old = {rev_name} ({}), {pairs} pairs, build threads {:?}, bench {}",
        &commit[..12.min(commit.len())],
        a.threads,
        if args.is_empty() { "(defaults)".to_string() } else { args.join(" ") }
    );
    let empty = || Side { runs: vec![Vec::new(); a.threads.len()], others: vec![Vec::new(); a.threads.len()] };
    let (mut old, mut new) = (empty(), empty());
    for p in 0..pairs {
        for (t, &threads) in a.threads.iter().enumerate() {
            // The order flips every pair, so a trend within the session favours neither side.
            let new_first = p % 2 == 1;
            for side in [new_first, !new_first] {
                let (bin, s) = if side { (&new_bin, &mut new) } else { (&old_bin, &mut old) };
                let before = sysinfo::CpuSample::now();
                s.runs[t].push(bench(bin, threads, &args)?);
                let others = sysinfo::CpuSample::now().zip(before).and_then(|(now, b)| now.since(&b));
                s.others[t].push(others.map(|c| c.other_cores));
            }
            let vps = |s: &Side| s.runs[t][p]["build_vps"].as_f64().unwrap_or(f64::NAN);
            let qps = |s: &Side| s.runs[t][p]["qps_at_target"].as_f64().unwrap_or(f64::NAN);
            let others = |s: &Side| s.others[t][p].map_or("?".to_string(), |c| format!("{c:.2}"));
            eprintln!(
                "ab: pair {}/{pairs}, {threads} thread(s): build {:.0} -> {:.0} vec/s ({:.3}), QPS at target {:.0} -> {:.0} ({:.3}); other processes took {} / {} cores",
                p + 1,
                vps(&old),
                vps(&new),
                vps(&new) / vps(&old),
                qps(&old),
                qps(&new),
                qps(&new) / qps(&old),
                others(&old),
                others(&new),
            );
        }
    }

    let mut figures = Vec::new();
    let mut notes = Vec::new();
    for (t, &threads) in a.threads.iter().enumerate() {
        let name = format!("build vec/s, {threads} thread{}", if threads == 1 { "" } else { "s" });
        let busy = busiest(&old, &new, t);
        figures.extend(speed(&name, &old.field(t, "build_vps"), &new.field(t, "build_vps"), 1 + t as u64, busy));
    }
    // Quality on the deterministic one-thread build where it ran, else on the first count.
    let q = a.threads.iter().position(|&t| t == 1).unwrap_or(0);
    if a.threads[q] != 1 {
        notes.push(format!("no one-thread build: quality judged on {} threads, not deterministic", a.threads[q]));
    }
    let target = old.runs[q][0]["target_recall"].as_f64().unwrap_or(0.95);
    figures.extend(speed(
        &format!("QPS at recall {target} (1 query thread)"),
        &old.field(q, "qps_at_target"),
        &new.field(q, "qps_at_target"),
        100,
        busiest(&old, &new, q),
    ));
    let (old_ef, new_ef) = (old.field(q, "ef_at_target"), new.field(q, "ef_at_target"));
    for (side, xs) in [("old", &old_ef), ("new", &new_ef)] {
        if !agree(xs) {
            notes.push(format!("{side}: ef at target differs between runs: {xs:?}"));
        }
    }
    let (oe, ne) = (median_present(&old_ef), median_present(&new_ef));
    figures.push(figure(
        &format!("ef at recall {target}"),
        "quality",
        json!(oe),
        json!(ne),
        json!(oe.zip(ne).map(|(o, n)| n / o)),
        Value::Null,
        paired::compare_ef_at_target(oe, ne),
    ));
    let (old_r, new_r) = (old.recall_at(q, a.fixed_ef), new.recall_at(q, a.fixed_ef));
    match (median_present(&old_r), median_present(&new_r)) {
        (Some(o), Some(n)) => figures.push(figure(
            &format!("recall at ef {}", a.fixed_ef),
            "quality",
            json!(o),
            json!(n),
            json!(n - o),
            Value::Null,
            paired::compare_recall(o, n, paired::RECALL_LOSS_ABOVE),
        )),
        _ => notes.push(format!("ef {} is not in both sweeps: recall there not compared", a.fixed_ef)),
    }
    for (key, name) in [("lib_bytes_mb", "index heap MB"), ("index_rss_mb", "index RSS growth MB")] {
        let (o, n) = (median_present(&old.field(q, key)), median_present(&new.field(q, key)));
        if let (Some(o), Some(n)) = (o, n) {
            figures.push(figure(name, "memory", json!(o), json!(n), json!(n / o), Value::Null, Verdict::Same));
        }
    }

    eprintln!(
        "\n{:<36} {:>12} {:>12} {:>9}  {:<17} verdict",
        "figure", "old median", "new median", "new/old", "95% interval"
    );
    for f in &figures {
        let num = |v: &Value| {
            v.as_f64().map_or("-".to_string(), |x| if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.4}") })
        };
        let interval = f["interval"].as_array().map_or(String::new(), |i| format!("[{}, {}]", num(&i[0]), num(&i[1])));
        let ratio = if f["kind"] == "quality" && f["figure"].as_str().is_some_and(|s| s.starts_with("recall")) {
            format!("{:+.4}", f["ratio"].as_f64().unwrap_or(f64::NAN))
        } else {
            num(&f["ratio"])
        };
        eprintln!(
            "{:<36} {:>12} {:>12} {:>9}  {:<17} {}",
            f["figure"].as_str().unwrap_or(""),
            num(&f["old"]),
            num(&f["new"]),
            ratio,
            interval,
            f["verdict"].as_str().unwrap_or("")
        );
    }
    let named = |verdict: Verdict| -> Vec<String> {
        figures
            .iter()
            .filter(|f| f["verdict"] == verdict.name())
            .filter_map(|f| f["figure"].as_str().map(String::from))
            .collect()
    };
    let (losses, unjudged) = (named(Verdict::Loss), named(Verdict::Unjudged));
    if !unjudged.is_empty() {
        notes.push(format!(
            "other processes took more than {} cores during some runs: a speed loss then cannot be told from the load",
            paired::BUSY_CORES
        ));
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    let raw = |s: &Side| s.runs.iter().flatten().cloned().collect::<Vec<_>>();
    let report = json!({
        "old": {"rev": rev_name, "commit": commit}, "new": {"rev": new_rev}, "pairs": pairs,
        "threads": a.threads, "bench_args": args, "cpu": sysinfo::cpu_model(), "cores": sysinfo::cores(),
        "speed_loss_below": paired::SPEED_LOSS_BELOW, "recall_loss_above": paired::RECALL_LOSS_ABOVE,
        "figures": figures, "notes": notes, "losses": losses, "unjudged": unjudged,
        "passed": losses.is_empty() && unjudged.is_empty(), "busy_cores_bar": paired::BUSY_CORES,
        "runs": {"old": raw(&old), "new": raw(&new)},
    });
    let path = target_dir().join("ab").join("report.json");
    std::fs::write(&path, format!("{report:#}\n"))?;
    eprintln!("report: {}", path.display());
    if a.json {
        let mut short = report.clone();
        short.as_object_mut().map(|o| o.remove("runs"));
        println!("{short}");
    }
    if !losses.is_empty() {
        Err(Failure::Missed(format!("loss against {rev_name}: {}", losses.join(", "))))
    } else if !unjudged.is_empty() {
        Err(Failure::Bad(format!(
            "cannot judge {} against {rev_name}: slower while other processes were busy; run again on a quiet machine",
            unjudged.join(", ")
        )))
    } else {
        eprintln!("ab: no loss beyond the noise");
        Ok(())
    }
}
