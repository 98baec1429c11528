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

/// What the machine's processors did up to a moment: busy and stolen time of all processors,
/// their total time, and the CPU time of this process and of its children it waited for
/// (`/proc/stat`, `/proc/self/stat`), in clock ticks. Two samples tell how much of the machine
/// other processes used between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    busy: u64,
    steal: u64,
    total: u64,
    own: u64,
    processors: usize,
}

/// Other processes' use of the machine between two [`CpuSample`]s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contention {
    /// Cores' worth of CPU time other processes (and the hypervisor's steal) took, on average.
    pub other_cores: f64,
    /// The share of all processors' time the hypervisor stole.
    pub steal_share: f64,
}

impl CpuSample {
    /// Now, where the system reports it (Linux).
    pub fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        CpuSample::parse(&stat, &own)
    }

    /// From the texts of `/proc/stat` and `/proc/self/stat`.
    pub fn parse(stat: &str, own_stat: &str) -> Option<CpuSample> {
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        let cpu: Vec<u64> = stat
            .lines()
            .find(|l| l.starts_with("cpu "))?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let (idle, iowait, steal) = (field(3), field(4), field(7));
        // Guest time is already counted in user and nice.
        let total: u64 = cpu.iter().take(8).sum();
        let busy = total - idle - iowait;
        // The process's name may hold spaces: fields count from the closing parenthesis.
        // After it: state(3) ... utime(14) stime(15), numbered from 1 as in proc(5).
        let rest = &own_stat[own_stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17.
        let own = (11..15).map(|i| f.get(i)?.parse::<u64>().ok()).sum::<Option<u64>>()?;
        let processors = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        Some(CpuSample { busy, steal, total, own, processors: processors.max(1) })
    }

    /// What other processes took between `before` and this sample; `None` when no time passed.
    pub fn since(&self, before: &CpuSample) -> Option<Contention> {
        let cores = self.processors;
        let total = self.total.checked_sub(before.total).filter(|&t| t > 0)? as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64;
        let own = self.own.saturating_sub(before.own) as f64;
        let steal = self.steal.saturating_sub(before.steal) as f64;
        Some(Contention { other_cores: ((busy - own).max(0.0) / total) * cores as f64, steal_share: steal / total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "4242 (bench (x) y) R 1 2 3 4 5 6 7 8 9 10 300 50 0 0 20 0 3 0 99 1 2";

    #[test]
    fn a_sample_reads_the_machine_and_the_process() {
        let stat = "cpu  1000 10 200 5000 40 5 5 30 0 0\ncpu0 500 5 100 2500 20 2 2 15 0 0\n";
        let s = CpuSample::parse(stat, OWN).unwrap();
        assert_eq!((s.busy, s.steal, s.total, s.own, s.processors), (1250, 30, 6290, 350, 1));
        let waited = "7 (ab) S 1 2 3 4 5 6 7 8 9 10 3 1 200 40 20 0 1 0 5 1 2";
        assert_eq!(CpuSample::parse(stat, waited).unwrap().own, 244, "children waited for count as its own");
    }

    #[test]
    fn other_processes_show_as_cores_taken_beside_the_process_own_time() {
        let at = |busy, total, own, steal| CpuSample { busy, steal, total, own, processors: 2 };
        // 2 cores, 200 ticks of machine time: the process used 100, others 60, idle 40.
        let c = at(1160, 1200, 600, 10).since(&at(1000, 1000, 500, 0)).unwrap();
        assert!((c.other_cores - 0.6).abs() < 1e-9, "{c:?}");
        assert!((c.steal_share - 0.05).abs() < 1e-9);
        // Only the process: nobody else.
        let quiet = at(1100, 1200, 600, 0).since(&at(1000, 1000, 500, 0)).unwrap();
        assert_eq!(quiet.other_cores, 0.0);
        assert!(at(1, 1, 1, 0).since(&at(1, 1, 1, 0)).is_none(), "no time passed");
    }
}
