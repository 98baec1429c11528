//! Construction errors.

use omen_graph::GraphError;

/// Why a graph could not be built or a vector not inserted. Nothing is changed on error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
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
    /// A vector's length differs from the graph's dimension.
    #[error("vector {row} has {got} components, expected {expected}")]
    DimensionMismatch {
        /// Index of the vector in its batch (0 for a single insert).
        row: usize,
        /// The graph's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("vector {row}, component {col} is {value} (NaN or infinite values cannot be indexed)")]
    NonFinite {
        /// Index of the vector in its batch (0 for a single insert).
        row: usize,
        /// Position of the bad component.
        col: usize,
        /// Its value, as text.
        value: String,
    },
    /// The graph was made for another `m` than the builder's parameters.
    #[error("the graph was made with m = {graph_m}, the builder has m = {params_m}")]
    GraphMismatch {
        /// The graph's m.
        graph_m: usize,
        /// The builder's m.
        params_m: usize,
    },
    /// The graph store refused the operation.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Checks that `vector` (row `row` of a batch) has `dim` finite components.
pub fn check_vector(vector: &[f32], dim: usize, row: usize) -> Result<(), BuildError> {
    if vector.len() != dim {
        return Err(BuildError::DimensionMismatch { row, expected: dim, got: vector.len() });
    }
    match vector.iter().position(|x| !x.is_finite()) {
        Some(col) => Err(BuildError::NonFinite { row, col, value: vector[col].to_string() }),
        None => Ok(()),
    }
}
