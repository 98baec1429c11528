//! A k-NN request, checked once where it is made.

use std::borrow::Cow;

use omendex_distance::{Metric, check_vector};

use crate::SearchError;

/// A checked k-NN request: a query that passes the vector rule of the index's metric
/// ([`check_vector`]), prepared as that metric stores vectors ([`Metric::prepare`]: normalised
/// under cosine), `k >= 1` and a beam `ef >= k`. Searches take it as it is, checking nothing
/// again.
#[derive(Debug, Clone)]
pub struct Request<'q> {
    query: Cow<'q, [f32]>,
    k: usize,
    ef: usize,
}

impl<'q> Request<'q> {
    /// Checks `query` against `metric` and `dim`, then `k` and `ef`.
    pub fn new(metric: Metric, dim: usize, query: &'q [f32], k: usize, ef: usize) -> Result<Self, SearchError> {
        check_vector(metric, query, dim)?;
        if k == 0 {
            return Err(SearchError::ZeroK);
        }
        if ef < k {
            return Err(SearchError::EfBelowK { ef, k });
        }
        Ok(Request { query: metric.prepare(query), k, ef })
    }

    /// The query as the graph compares it.
    pub fn query(&self) -> &[f32] {
        &self.query
    }

    /// How many results are asked for.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The beam width.
    pub fn ef(&self) -> usize {
        self.ef
    }

    /// The same query with another `k` and beam, raised to stay valid (`k` to 1, `ef` to `k`):
    /// for a part of an index asked for fewer results or a wider beam than the whole.
    pub fn narrowed(&self, k: usize, ef: usize) -> Request<'_> {
        let k = k.max(1);
        Request { query: Cow::Borrowed(&self.query), k, ef: ef.max(k) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omendex_distance::VectorError;

    #[test]
    fn a_request_is_checked_and_prepared_once() {
        let r = Request::new(Metric::Cosine, 2, &[3.0, 4.0], 2, 5).unwrap();
        assert_eq!((r.query(), r.k(), r.ef()), (&[0.6f32, 0.8][..], 2, 5));
        assert_eq!(Request::new(Metric::L2, 2, &[1.0, 2.0], 0, 5).unwrap_err(), SearchError::ZeroK);
        assert_eq!(Request::new(Metric::L2, 2, &[1.0, 2.0], 3, 2).unwrap_err(), SearchError::EfBelowK { ef: 2, k: 3 });
        assert_eq!(
            Request::new(Metric::L2, 3, &[1.0, 2.0], 1, 2).unwrap_err(),
            SearchError::Query(VectorError::DimensionMismatch { expected: 3, got: 2 })
        );
        let n = r.narrowed(0, 0);
        assert_eq!((n.k(), n.ef()), (1, 1));
    }
}
