//! Construction errors.

use omendex_distance::VectorError;
use omendex_graph::GraphError;
use omendex_params::ParamsError;

/// Why a graph could not be built or a vector not inserted. Nothing is changed on error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A parameter outside its range ([`omendex_params::Params::validate`]).
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A vector breaks the vector rule ([`omendex_distance::check_vector`]).
    #[error("vector {row} {source}")]
    Vector {
        /// Index of the vector in its batch (0 for a single insert).
        row: usize,
        /// What is wrong with it.
        #[source]
        source: VectorError,
    },
    /// The graph was made for another `m` than the builder's parameters.
    #[error("the graph was made with m = {graph_m}, the builder has m = {params_m}")]
    GraphMismatch {
        /// The graph's m.
        graph_m: usize,
        /// The builder's m.
        params_m: usize,
    },
    /// The build was stopped through its [`crate::Stop`] flag.
    #[error("the build was stopped")]
    Stopped,
    /// Codes to walk on that do not cover the graph (fewer rows than nodes, or another
    /// dimension).
    #[error("{rows} code rows (or another dimension) for a graph of {nodes} nodes")]
    CodesMismatch {
        /// Code rows given.
        rows: usize,
        /// Nodes in the graph.
        nodes: usize,
    },
    /// The graph store refused the operation.
    #[error(transparent)]
    Graph(#[from] GraphError),
}
