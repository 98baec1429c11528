//! A dataset for validation and benchmarks: synthetic or read from a TEXMEX folder.

use std::path::Path;

use omendex::Metric;
use omendex_distance::Distance;
use omendex_graph::VectorId;
use omendex_search::{Rows, brute_force_batch};

use crate::synthetic::Synthetic;
use crate::texmex::{DataError, GroundTruth, Vectors, load_dir};

/// Base vectors, queries, and the exact neighbours of the queries when known.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short name for reports.
    pub name: String,
    /// Where the vectors come from, in one sentence.
    pub description: String,
    /// Vectors to index.
    pub base: Vectors,
    /// Query vectors.
    pub queries: Vectors,
    /// Exact squared-L2 neighbours of each query among all base vectors, from a file.
    pub truth: Option<GroundTruth>,
}

impl Dataset {
    /// Reads a TEXMEX folder (see [`load_dir`]); `k` is the depth the ground truth must have.
    pub fn from_dir(dir: &Path, k: usize) -> Result<Self, DataError> {
        let t = load_dir(dir, k)?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        let description = format!(
            "{}: {} base and {} query vectors of dimension {}, {}",
            dir.display(),
            t.base.len(),
            t.queries.len(),
            t.base.dim,
            if t.truth.is_some() { "ground truth from groundtruth.ivecs" } else { "no ground truth file" }
        );
        Ok(Dataset { name, description, base: t.base, queries: t.queries, truth: t.truth })
    }

    /// Generates `n` base vectors and `nq` queries of a synthetic family.
    pub fn synthetic(s: Synthetic, n: usize, nq: usize) -> Self {
        let (base, queries) = s.generate(n, nq);
        Dataset {
            name: format!("{}-{n}", s.name()),
            description: format!(
                "{} (generated in memory): {}; {nq} queries from the same distribution",
                s.name(),
                s.describe()
            ),
            base,
            queries,
            truth: None,
        }
    }

    /// The exact top-`k` ids of every query among the first `n` base vectors under `metric`, as
    /// an index that added the base vectors in order names them (row `i` is id `i`):
    /// the file's ground truth when it covers exactly that (all vectors, L2), brute force
    /// otherwise (parallel, on the current rayon pool). Second value: whether the file was used.
    pub fn exact_top_k(&self, n: usize, k: usize, metric: Metric) -> (Vec<Vec<VectorId>>, bool) {
        if let Some(gt) = self.truth.as_ref().filter(|gt| n == self.base.len() && metric == Metric::L2 && gt.depth >= k)
        {
            let ids = gt.ids.iter().map(|r| r[..k].iter().map(|&i| VectorId(u64::from(i))).collect()).collect();
            return (ids, true);
        }
        let dist = Distance::new(metric);
        let rows = Rows::dense(self.base.prefix(n), self.base.dim);
        let queries = Rows::dense(&self.queries.data, self.queries.dim);
        let ids = brute_force_batch(rows, &dist, queries, k)
            .into_iter()
            .map(|r| r.into_iter().map(|x| VectorId(u64::from(x.id.0))).collect())
            .collect();
        (ids, false)
    }
}
