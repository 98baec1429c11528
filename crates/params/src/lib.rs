//! The parameters of an omendex HNSW index, checked once: [`Params`] (how vectors are
//! compared, how the graph is built, the default search beam, how walks read vectors) and
//! [`ParamsError`], the one place their ranges are stated ([`Params::validate`]).
//!
//! They sit below the construction crate (which reads the construction fields), the file
//! format (which stores them all) and the index (which holds them), so none of those depends on
//! another for them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use omendex_distance::Metric;

/// A parameter outside its accepted range ([`Params::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// `m` outside the accepted range.
    #[error("m = {m} is out of range ({min}..={max})")]
    BadM {
        /// The value given.
        m: usize,
        /// Smallest accepted.
        min: usize,
        /// Largest accepted.
        max: usize,
    },
    /// `ef_construction` of zero.
    #[error("ef_construction = {ef_construction} must be at least 1")]
    BadEfConstruction {
        /// The value given.
        ef_construction: usize,
    },
    /// `ef_search` of zero.
    #[error("ef_search must be at least 1")]
    BadEfSearch,
}

/// Every parameter of an HNSW index, named as in the paper: how vectors are compared, how the
/// graph is built, and the default search beam. The one parameter type of every omendex crate
/// (the builder reads the construction fields, searches `ef_search`, files store them all).
///
/// ```
/// use omendex_params::Params;
/// use omendex_distance::Metric;
///
/// let params = Params::new(Metric::Cosine).m(32).ef_construction(400).ef_search(100).seed(7);
/// assert!(params.validate().is_ok());
/// assert_eq!(params.m0(), 64, "layer 0 keeps 2 * m");
/// assert!(Params::default().m(1).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How vectors are compared. Default [`Metric::L2`].
    pub metric: Metric,
    /// Neighbours kept per node on layers above 0 (`M`); layer 0 keeps `2 * m` (`M0`).
    /// Default 16.
    pub m: usize,
    /// Beam width while inserting (`efConstruction`). Default 200.
    pub ef_construction: usize,
    /// Default beam width of a search (raised to `k` when smaller). Default 64.
    pub ef_search: usize,
    /// Seed of the layer draws: the same seed, vectors and order give the same graph.
    /// Default 42.
    pub seed: u64,
    /// How searches read the stored vectors while they walk the graph. Default
    /// [`Quantization::None`].
    pub quantization: Quantization,
}

/// How searches read stored vectors while walking the graph.
///
/// ```
/// use omendex_params::Quantization;
///
/// assert_eq!("int8".parse::<Quantization>(), Ok(Quantization::Int8));
/// assert_eq!(Quantization::default().to_string(), "none");
/// assert!("int4".parse::<Quantization>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quantization {
    /// Every distance on the `f32` rows.
    #[default]
    None,
    /// The walk scores 8-bit codes of the rows (one byte per dimension, per-dimension offset
    /// and step: [`omendex_distance::Sq8`]) and the best candidates are re-scored on the `f32`
    /// rows, so results carry exact distances. Where codes are too coarse for the data (they
    /// merge neighbours: `omendex_search::CodeFit`), the index walks the `f32` rows instead and
    /// says so.
    Int8,
}

impl Quantization {
    /// Every setting, for sweeps and tests.
    pub const ALL: [Quantization; 2] = [Quantization::None, Quantization::Int8];

    /// The name on command lines and in reports (`none`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A quantization name that is not `none` or `int8`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quantization {0:?} (expected none or int8)")]
pub struct UnknownQuantization(pub String);

impl std::str::FromStr for Quantization {
    type Err = UnknownQuantization;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "f32" | "off" => Ok(Quantization::None),
            "int8" | "i8" | "sq8" => Ok(Quantization::Int8),
            _ => Err(UnknownQuantization(s.to_owned())),
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params::new(Metric::L2)
    }
}

impl Params {
    /// The smallest accepted `m`.
    pub const MIN_M: usize = 2;
    /// The largest accepted `m`.
    pub const MAX_M: usize = omendex_graph::MAX_M;

    /// The common defaults (`m = 16`, `ef_construction = 200`, `ef_search = 64`, seed 42) for
    /// `metric`.
    pub fn new(metric: Metric) -> Self {
        Params { metric, m: 16, ef_construction: 200, ef_search: 64, seed: 42, quantization: Quantization::None }
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
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

    /// Sets `ef_search`.
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the quantization.
    pub fn quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
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

    /// Checks every parameter: `2 <= m <= MAX_M`, `ef_construction >= 1`, `ef_search >= 1`.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if !(Self::MIN_M..=Self::MAX_M).contains(&self.m) {
            return Err(ParamsError::BadM { m: self.m, min: Self::MIN_M, max: Self::MAX_M });
        }
        if self.ef_construction == 0 {
            return Err(ParamsError::BadEfConstruction { ef_construction: self.ef_construction });
        }
        if self.ef_search == 0 {
            return Err(ParamsError::BadEfSearch);
        }
        Ok(())
    }
}

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
