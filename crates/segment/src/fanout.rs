//! A query over every segment of a [`SegmentedIndex`], merged into one top-k.

use std::sync::atomic::Ordering;

use omendex_search::{Request, SearchScratch};
use rayon::prelude::*;

use omendex_index::{Error, Fanout, Index, Neighbor, Query};

use crate::SegmentedIndex;

impl SegmentedIndex {
    /// The `k` nearest over all segments, with beam `max(ef_search, k)` in each: each
    /// segment's top `k`, merged by distance then id, each id once.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, Error> {
        self.query(&Query::new(query, k))
    }

    /// Answers `query` over all segments: each segment's top `k` (among the vectors its filter
    /// accepts, each segment planning its own walk or scan), merged by distance then id, each
    /// id once; fewer than `k` when fewer vectors are in the index or pass the filter. The
    /// query is checked once, here.
    ///
    /// [`Fanout::Sampled`]: if segments are random parts of the data, the number of the global
    /// top `k` that lie in a segment holding share `p` of the vectors is Binomial(k, p); the
    /// segment is asked for the smallest `k_s` it exceeds with probability at most 1/1000
    /// ([`sampling_limit`]), with beam `max(k_s, ef * k_s / k)`. When a segment returned `k_s`
    /// hits and its furthest is no further than the merged `k`-th, nodes it did not return
    /// could still belong to the top `k`: it is searched again with `k` and `ef`
    /// ([`SegmentedIndex::researches`] counts these). Segments that are not random parts (split
    /// by time or by topic) are then searched again more often, at a cost, not a loss of
    /// answers. Qdrant samples segments by the same quantile but never asks one for fewer than
    /// its ef, which gains only when k exceeds ef; here ef is at least k, so the beam is
    /// narrowed instead, which costs recall on data where a segment's narrow beam misses its
    /// own nearest (random-128 at k = 100).
    pub fn query(&self, query: &Query<'_>) -> Result<Vec<Neighbor>, Error> {
        let request = query.request(self.params(), self.dim(), self.len())?;
        let k = request.k();
        let answer = |seg: &Index, r: &Request<'_>, s: &mut SearchScratch| seg.answer(r, query.filter, query.plan, s);
        Ok(match query.fanout {
            Fanout::Parallel if self.segments().len() > 1 && rayon::current_num_threads() > 1 => {
                let all: Vec<Neighbor> = self
                    .segments()
                    .par_iter()
                    .flat_map_iter(|seg| self.pool.with(|scratch| answer(seg, &request, scratch)))
                    .collect();
                merge_top_k(all, k)
            }
            Fanout::Sampled => self.pool.with(|scratch| self.sampled(&request, scratch, answer)),
            _ => self.each(k, |_, seg, scratch| answer(seg, &request, scratch)),
        })
    }

    /// [`SegmentedIndex::query`] with a beam for each segment: segment `i` is searched with
    /// `efs[i]` (each at least `k`), for instance a wider one for a segment known to be
    /// harder. The query's own beam and fan-out are not used.
    pub fn query_with_efs(&self, query: &Query<'_>, efs: &[usize]) -> Result<Vec<Neighbor>, Error> {
        if efs.len() != self.segments().len() {
            return Err(Error::EfCount { given: efs.len(), segments: self.segments().len() });
        }
        let min_ef = efs.iter().copied().min().unwrap_or(query.k);
        let request = query.ef(min_ef).request(self.params(), self.dim(), self.len())?;
        let k = request.k();
        Ok(self.each(k, |i, seg, scratch| seg.answer(&request.narrowed(k, efs[i]), query.filter, query.plan, scratch)))
    }

    /// `search(i, segment i, scratch)` for every segment, one after another on this thread with
    /// one pooled scratch, merged into the top `k`.
    fn each(
        &self,
        k: usize,
        mut search: impl FnMut(usize, &Index, &mut SearchScratch) -> Vec<Neighbor>,
    ) -> Vec<Neighbor> {
        let mut all = Vec::with_capacity(self.segments().iter().map(|s| k.min(s.len())).sum());
        self.pool.with(|scratch| {
            for (i, seg) in self.segments().iter().enumerate() {
                all.extend(search(i, seg, scratch));
            }
        });
        merge_top_k(all, k)
    }

    /// The sampled fan-out (see [`SegmentedIndex::query`]).
    fn sampled(
        &self,
        request: &Request<'_>,
        scratch: &mut SearchScratch,
        answer: impl Fn(&Index, &Request<'_>, &mut SearchScratch) -> Vec<Neighbor>,
    ) -> Vec<Neighbor> {
        // A k above the number of vectors asks for all of them: cap it, so that neither the
        // sampling quantile (a walk of about k * share steps) nor a buffer grows with it.
        let len = self.len();
        let (k, ef) = (request.k().min(len), request.ef());
        let mut all = Vec::with_capacity(k.saturating_mul(2));
        // Per segment: the limit it was asked for, the hits it returned, the furthest's distance.
        let mut asked = Vec::with_capacity(self.segments().len());
        for seg in self.segments() {
            let limit = sampling_limit(k, seg.len() as f64 / len as f64).min(seg.len());
            let beam = ef.saturating_mul(limit).div_ceil(k).max(limit);
            let hits = if limit == 0 { Vec::new() } else { answer(seg, &request.narrowed(limit, beam), scratch) };
            asked.push((limit, hits.len(), hits.last().map(|h| h.dist)));
            all.extend(hits);
        }
        let mut merged = merge_top_k(all, k);
        let kth = if merged.len() == k { merged.last().map(|h| h.dist) } else { None };
        let mut again = 0;
        for (seg, &(limit, got, furthest)) in self.segments().iter().zip(&asked) {
            let short = limit < k.min(seg.len());
            // Fewer than k merged hits: any segment asked for less may fill the gap.
            let may_hold_more = match (kth, furthest) {
                (None, _) => true,
                (Some(kth), Some(f)) => got == limit && f <= kth,
                (Some(_), None) => false,
            };
            if short && may_hold_more {
                merged.extend(answer(seg, request, scratch));
                again += 1;
            }
        }
        if again > 0 {
            self.researches.fetch_add(again, Ordering::Relaxed);
            merged = merge_top_k(merged, k);
        }
        merged
    }

    /// Segment searches that [`Fanout::Sampled`] ran a second time in full.
    pub fn researches(&self) -> u64 {
        self.researches.load(Ordering::Relaxed)
    }
}

/// The number of hits to ask of a segment holding share `share` of the vectors for a top `k`:
/// the smallest `x` with P(X > x) <= 1/1000 for X ~ Binomial(k, share), the number of the
/// global top `k` such a segment holds when segments are random parts of the data. At least 1
/// (for a non-empty share), at most `k`.
pub fn sampling_limit(k: usize, share: f64) -> usize {
    const TAIL: f64 = 1e-3;
    if k == 0 || share <= 0.0 {
        return 0;
    }
    if share >= 1.0 {
        return k;
    }
    // Walk the pmf upwards in log space (stable for large k): pmf(x+1) = pmf(x) (k-x)/(x+1) p/q.
    let (p, q) = (share, 1.0 - share);
    let mut log_pmf = k as f64 * q.ln();
    let mut cdf = log_pmf.exp();
    let mut x = 0;
    while x < k && 1.0 - cdf > TAIL {
        log_pmf += ((k - x) as f64).ln() - ((x + 1) as f64).ln() + p.ln() - q.ln();
        cdf += log_pmf.exp();
        x += 1;
    }
    x.max(1)
}

/// The `k` nearest of `all` (the answers of several segments or servers to one query), by
/// distance then id, each id once (its nearest occurrence); fewer when `all` holds fewer ids.
/// What a segmented search does with its segments' answers, for answers gathered elsewhere
/// (servers each holding part of an index, [`SegmentedIndex::open_mmap_part`]).
///
/// ```
/// use omendex_graph::VectorId;
/// use omendex_index::Neighbor;
/// use omendex_segment::merge_top_k;
///
/// let hit = |id, dist| Neighbor { id: VectorId(id), dist };
/// let a = [hit(4, 0.5), hit(9, 0.7)]; // one server's top 2
/// let b = [hit(2, 0.5), hit(4, 0.5), hit(1, 0.9)]; // another's top 3
/// let top = merge_top_k([&a[..], &b[..]].concat(), 3);
/// assert_eq!(top, [hit(2, 0.5), hit(4, 0.5), hit(9, 0.7)]);
/// ```
pub fn merge_top_k(mut all: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    all.sort_unstable_by(|a, b| a.dist.total_cmp(&b.dist).then(a.id.cmp(&b.id)));
    // `k` may exceed what there is: size by the hits.
    let cap = k.min(all.len());
    let mut seen = std::collections::HashSet::with_capacity(cap);
    let mut res: Vec<Neighbor> = Vec::with_capacity(cap);
    for h in all {
        if res.len() == k {
            break;
        }
        if seen.insert(h.id) {
            res.push(h);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use omendex_graph::VectorId;

    #[test]
    fn sampling_limit_is_the_binomial_tail_quantile() {
        // Exact tails: Binomial(10, 0.25) P(X >= 8) = 4.2e-4, P(X >= 7) = 3.5e-3.
        assert_eq!(sampling_limit(10, 0.25), 7);
        assert_eq!(sampling_limit(10, 0.125), 5);
        assert_eq!(sampling_limit(10, 0.5), 9);
        assert_eq!(sampling_limit(100, 0.25), 39);
        assert_eq!(sampling_limit(1000, 0.1), 130);
        assert_eq!(sampling_limit(10, 0.01), 2);
        assert_eq!(sampling_limit(1, 0.3), 1, "never 0 for a non-empty share");
        assert_eq!(sampling_limit(10, 1.0), 10);
        assert_eq!(sampling_limit(0, 0.5), 0);
        assert_eq!(sampling_limit(10, 0.0), 0);
        // Large k stays finite and below k.
        let big = sampling_limit(1_000_000, 0.5);
        assert!(big > 500_000 && big < 502_000, "{big}");
    }

    #[test]
    fn merge_orders_by_distance_then_id_and_drops_repeated_ids() {
        let h = |id, dist| Neighbor { id: VectorId(id), dist };
        let merged = merge_top_k(vec![h(5, 1.0), h(3, 1.0), h(9, 0.5), h(3, 2.0), h(7, 3.0)], 3);
        assert_eq!(merged, vec![h(9, 0.5), h(3, 1.0), h(5, 1.0)]);
        let merged = merge_top_k(vec![h(1, 0.1), h(1, 0.1), h(2, 0.2)], 2);
        assert_eq!(merged, vec![h(1, 0.1), h(2, 0.2)]);
    }
}
