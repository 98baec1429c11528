//! Construction parameters, checked once.

use omen_distance::Metric;

use crate::BuildError;

/// Parameters of an HNSW graph, named as in the paper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    /// Neighbours kept per node on layers above 0 (`M`); layer 0 keeps `2 * m` (`M0`).
    pub m: usize,
    /// Beam width while inserting (`efConstruction`).
    pub ef_construction: usize,
    /// Seed of the layer draws: the same seed, vectors and order give the same graph.
    pub seed: u64,
    /// How vectors are compared.
    pub metric: Metric,
}

impl HnswParams {
    /// The smallest accepted `m`.
    pub const MIN_M: usize = 2;
    /// The largest accepted `m`.
    pub const MAX_M: usize = omen_graph::MAX_M;

    /// The common defaults (`m = 16`, `ef_construction = 200`, seed 42) for `metric`.
    pub fn new(metric: Metric) -> Self {
        HnswParams { m: 16, ef_construction: 200, seed: 42, metric }
    }

    /// Sets `m`.
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Sets `ef_construction`.
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Neighbour cap of layer 0.
    pub fn m0(&self) -> usize {
        2 * self.m
    }

    /// The layer-draw normaliser `mL = 1 / ln(m)`.
    pub fn ml(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }

    /// Checks every parameter: `2 <= m <= MAX_M`, `ef_construction >= 1`.
    pub fn validate(&self) -> Result<(), BuildError> {
        if !(Self::MIN_M..=Self::MAX_M).contains(&self.m) {
            return Err(BuildError::BadM { m: self.m, min: Self::MIN_M, max: Self::MAX_M });
        }
        if self.ef_construction == 0 {
            return Err(BuildError::BadEfConstruction { ef_construction: self.ef_construction });
        }
        Ok(())
    }
}
