//! Paired comparisons of two builds: the median of the per-pair ratios with a bootstrap
//! interval, and the verdict `cargo xtask ab` prints.
//!
//! Runs alternate old and new in one session, so each pair shares the machine's state of the
//! moment; the ratio within a pair cancels the drift between pairs (±30% from day to day here),
//! and the median of the ratios is robust to one disturbed pair. The interval is the percentile
//! bootstrap of that median (resampling pairs), seeded so the same runs always give the same
//! interval.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A speed ratio whose whole interval lies below this is a loss; above its inverse, a gain.
pub const SPEED_LOSS_BELOW: f64 = 0.97;

/// A recall at a fixed beam lower than the old one by more than this is a loss.
pub const RECALL_LOSS_ABOVE: f64 = 0.002;

/// Bootstrap resamples behind each interval.
pub const RESAMPLES: usize = 10_000;

/// The median of `xs` (the mean of the middle two for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The central `level` percentile-bootstrap interval of the median of `xs`: `resamples` draws
/// of `xs.len()` values with replacement, seeded by `seed`.
pub fn bootstrap_median_interval(xs: &[f64], level: f64, resamples: usize, seed: u64) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut draw = vec![0.0; xs.len()];
    let mut medians: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            for d in draw.iter_mut() {
                *d = xs[rng.random_range(0..xs.len())];
            }
            median(&draw)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    let at = |q: f64| medians[((q * medians.len() as f64) as usize).min(medians.len() - 1)];
    (at(tail), at(1.0 - tail))
}

/// How a figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No change beyond the noise (or beyond the quality tolerance).
    Same,
    /// Better, beyond the noise.
    Gain,
    /// Worse, beyond the noise: `ab` exits non-zero.
    Loss,
    /// Worse, beyond the noise, while other processes were busy on the machine: no verdict
    /// (`ab` exits 2, not 1).
    Unjudged,
}

impl Verdict {
    /// `same`, `gain` or `LOSS`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Gain => "gain",
            Verdict::Loss => "LOSS",
            Verdict::Unjudged => "cannot judge (busy)",
        }
    }
}

/// A speed figure (higher is better) measured in pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedComparison {
    /// The median of the old runs.
    pub old_median: f64,
    /// The median of the new runs.
    pub new_median: f64,
    /// The median of the per-pair ratios new / old.
    pub ratio: f64,
    /// The 95% bootstrap interval of that median.
    pub interval: (f64, f64),
    /// Loss when the whole interval lies below [`SPEED_LOSS_BELOW`], gain when it lies above
    /// its inverse.
    pub verdict: Verdict,
}

/// Compares paired speed samples (`old[i]` and `new[i]` ran next to each other).
///
/// # Panics
/// If the two slices differ in length (a caller bug: samples come in pairs).
pub fn compare_speed(old: &[f64], new: &[f64], seed: u64) -> SpeedComparison {
    assert_eq!(old.len(), new.len(), "speed samples come in pairs");
    let ratios: Vec<f64> = old.iter().zip(new).map(|(o, n)| n / o).collect();
    let interval = bootstrap_median_interval(&ratios, 0.95, RESAMPLES, seed);
    let verdict = if interval.1 < SPEED_LOSS_BELOW {
        Verdict::Loss
    } else if interval.0 > 1.0 / SPEED_LOSS_BELOW {
        Verdict::Gain
    } else {
        Verdict::Same
    };
    SpeedComparison { old_median: median(old), new_median: median(new), ratio: median(&ratios), interval, verdict }
}

/// Other processes' use of the machine (cores' worth of CPU time, averaged over a run) above
/// which a speed figure measured then is not judged.
pub const BUSY_CORES: f64 = 0.25;

/// A speed verdict, given the most cores other processes took during any of its runs: a loss
/// measured beside them cannot be told from the load, so it is no verdict; a gain or no change
/// stands (load only slows).
pub fn judge_under_load(verdict: Verdict, other_cores: Option<f64>) -> Verdict {
    match verdict {
        Verdict::Loss if other_cores.is_some_and(|c| c > BUSY_CORES) => Verdict::Unjudged,
        v => v,
    }
}

/// The beam a build needs for the target recall: a larger one is a loss, `None` (never
/// reached in the sweep) is larger than any.
pub fn compare_ef_at_target(old: Option<f64>, new: Option<f64>) -> Verdict {
    let key = |x: Option<f64>| x.unwrap_or(f64::INFINITY);
    match key(new).total_cmp(&key(old)) {
        std::cmp::Ordering::Greater => Verdict::Loss,
        std::cmp::Ordering::Less => Verdict::Gain,
        std::cmp::Ordering::Equal => Verdict::Same,
    }
}

/// A recall at a fixed beam: lower by more than `tolerance` is a loss, higher by more is a gain.
pub fn compare_recall(old: f64, new: f64, tolerance: f64) -> Verdict {
    if new < old - tolerance {
        Verdict::Loss
    } else if new > old + tolerance {
        Verdict::Gain
    } else {
        Verdict::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn interval_holds_the_median_and_lies_within_the_samples() {
        let xs = [0.91, 1.02, 0.98, 1.07, 0.99, 1.01, 0.95];
        let (lo, hi) = bootstrap_median_interval(&xs, 0.95, 2000, 7);
        let m = median(&xs);
        assert!(lo <= m && m <= hi, "{lo} <= {m} <= {hi}");
        assert!(lo >= 0.91 && hi <= 1.07);
        assert!(lo < hi, "seven different samples give an interval of some width");
        // Seeded: the same samples give the same interval.
        assert_eq!((lo, hi), bootstrap_median_interval(&xs, 0.95, 2000, 7));
    }

    #[test]
    fn five_pairs_give_the_range_as_interval() {
        // With 5 pairs the 2.5% and 97.5% points of the bootstrapped median are the extreme
        // samples (a resample's median is the minimum with probability 0.058): a loss needs
        // all five ratios below the bar.
        let xs = [0.90, 0.95, 0.96, 0.99, 1.05];
        assert_eq!(bootstrap_median_interval(&xs, 0.95, RESAMPLES, 1), (0.90, 1.05));
    }

    #[test]
    fn a_clear_slowdown_is_a_loss() {
        let old = [1000.0, 1100.0, 950.0, 1050.0, 1020.0];
        let new: Vec<f64> = old.iter().map(|o| o * 0.5).collect();
        let c = compare_speed(&old, &new, 1);
        assert_eq!(c.verdict, Verdict::Loss);
        assert!((c.ratio - 0.5).abs() < 1e-12);
    }

    #[test]
    fn noise_around_one_is_the_same() {
        // Pairs that disagree in direction, ±10%: the interval straddles 1.
        let old = [1000.0, 1000.0, 1000.0, 1000.0, 1000.0];
        let new = [900.0, 1100.0, 960.0, 1040.0, 1000.0];
        assert_eq!(compare_speed(&old, &new, 1).verdict, Verdict::Same);
    }

    #[test]
    fn one_fast_pair_keeps_a_consistent_slowdown_from_being_a_loss_only_when_it_should() {
        // Four of five pairs 10% slower and one 10% faster: with five pairs the interval
        // reaches the fast one, so this is not called a loss (the rule asks for the whole
        // interval below 0.97)...
        let old = [100.0; 5];
        let new = [90.0, 90.0, 90.0, 90.0, 110.0];
        assert_eq!(compare_speed(&old, &new, 1).verdict, Verdict::Same);
        // ...while nine pairs with the same one outlier are.
        let old = [100.0; 9];
        let new = [90.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0, 110.0];
        assert_eq!(compare_speed(&old, &new, 1).verdict, Verdict::Loss);
    }

    #[test]
    fn a_clear_speedup_is_a_gain() {
        let old = [100.0; 5];
        let new = [120.0, 118.0, 125.0, 119.0, 121.0];
        assert_eq!(compare_speed(&old, &new, 1).verdict, Verdict::Gain);
    }

    #[test]
    fn ef_at_target_larger_or_missing_is_a_loss() {
        assert_eq!(compare_ef_at_target(Some(384.0), Some(512.0)), Verdict::Loss);
        assert_eq!(compare_ef_at_target(Some(384.0), None), Verdict::Loss);
        assert_eq!(compare_ef_at_target(Some(384.0), Some(384.0)), Verdict::Same);
        assert_eq!(compare_ef_at_target(None, None), Verdict::Same);
        assert_eq!(compare_ef_at_target(None, Some(512.0)), Verdict::Gain);
        assert_eq!(compare_ef_at_target(Some(384.0), Some(256.0)), Verdict::Gain);
    }

    #[test]
    fn recall_within_tolerance_is_the_same() {
        assert_eq!(compare_recall(0.5846, 0.5830, RECALL_LOSS_ABOVE), Verdict::Same);
        assert_eq!(compare_recall(0.5846, 0.5768, RECALL_LOSS_ABOVE), Verdict::Loss);
        assert_eq!(compare_recall(0.5768, 0.5846, RECALL_LOSS_ABOVE), Verdict::Gain);
    }

    #[test]
    fn a_loss_beside_other_processes_is_no_verdict_and_nothing_else_changes() {
        assert_eq!(judge_under_load(Verdict::Loss, Some(0.9)), Verdict::Unjudged);
        assert_eq!(judge_under_load(Verdict::Loss, Some(0.1)), Verdict::Loss);
        assert_eq!(judge_under_load(Verdict::Loss, None), Verdict::Loss, "unmeasured is not busy");
        assert_eq!(judge_under_load(Verdict::Gain, Some(0.9)), Verdict::Gain);
        assert_eq!(judge_under_load(Verdict::Same, Some(0.9)), Verdict::Same);
    }
}
