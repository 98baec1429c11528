//! Facts about the machine and the process, for reports.

use std::process::Command;

/// A `/proc/self/status` field in MiB (`VmRSS`, `VmHWM`), where the system has one.
pub fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The CPU's model name.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1-minute load average.
pub fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The checked-out git revision, with `-dirty` when the tree has changes.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".to_string(),
    }
}

/// x86 SIMD features compiled in (`target_feature`), which `wide` builds on.
pub fn compiled_simd_features() -> Vec<&'static str> {
    let mut res = Vec::new();
    if cfg!(target_feature = "sse2") {
        res.push("sse2");
    }
    if cfg!(target_feature = "avx") {
        res.push("avx");
    }
    if cfg!(target_feature = "avx2") {
        res.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        res.push("fma");
    }
    if cfg!(target_feature = "avx512f") {
        res.push("avx512f");
    }
    if cfg!(target_feature = "neon") {
        res.push("neon");
    }
    res
}
