//! The recall-versus-speed frontier that ann-benchmarks draws: of a library's (recall, QPS)
//! points, those that no other point beats on both.

/// The Pareto frontier of `points` (recall, QPS): every point that no other point has both a
/// higher or equal recall and a higher QPS than (ties: the faster stays), sorted by recall.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|(r, q)| r.is_finite() && q.is_finite()).collect();
    // Highest recall first; among equal recalls, fastest first.
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let mut res = Vec::new();
    let mut best_qps = f64::NEG_INFINITY;
    for p in sorted {
        if p.1 > best_qps {
            res.push(p);
            best_qps = p.1;
        }
    }
    res.reverse();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominated_points_leave_the_frontier() {
        // (0.90, 900) is beaten by (0.95, 1000): higher recall and faster.
        let pts = [(0.80, 2000.0), (0.90, 900.0), (0.95, 1000.0), (0.99, 300.0), (0.99, 250.0)];
        assert_eq!(pareto_frontier(&pts), vec![(0.80, 2000.0), (0.95, 1000.0), (0.99, 300.0)]);
    }

    #[test]
    fn empty_and_non_finite_points_give_what_is_left() {
        assert!(pareto_frontier(&[]).is_empty());
        assert_eq!(pareto_frontier(&[(f64::NAN, 1.0), (0.5, 10.0)]), vec![(0.5, 10.0)]);
    }
}
