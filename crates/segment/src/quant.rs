//! The 8-bit codes an index walks on when its parameters ask for them.

use omen_build::{Params, Quantization};
use omen_distance::Distance;
use omen_graph::{HnswGraph, NodeId};
use omen_search::{CodeFit, Codes};

/// Whether an index's searches walk on 8-bit codes ([`crate::Index::quantization`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuantizationStatus {
    /// The parameters ask for none ([`Quantization::None`]): searches walk the `f32` rows.
    Off,
    /// [`Quantization::Int8`] asked for, but no vector yet to train the codes on.
    Untrained,
    /// Searches walk on codes and re-rank on the `f32` rows; the codes' measured fit.
    Codes(CodeFit),
    /// The codes were measured too coarse for this data ([`CodeFit::is_fine`] false: they
    /// merge neighbours): searches walk the `f32` rows, as without quantization. Measured again
    /// each time the index doubles.
    TooCoarse(CodeFit),
}

impl QuantizationStatus {
    /// Whether searches walk on codes.
    pub fn walks_on_codes(&self) -> bool {
        matches!(self, QuantizationStatus::Codes(_))
    }
}

/// The codes of an index's graph and how they were chosen.
#[derive(Debug, Clone)]
pub(crate) struct Quantized {
    // Some exactly when the status is Codes; one row per node of the graph after `sync`.
    codes: Option<Codes>,
    status: QuantizationStatus,
    // Nodes the quantizer was trained (and fitted) on; 0 before.
    trained_on: usize,
}

impl Quantized {
    pub(crate) fn new(params: &Params) -> Self {
        let status = match params.quantization {
            Quantization::None => QuantizationStatus::Off,
            Quantization::Int8 => QuantizationStatus::Untrained,
        };
        Quantized { codes: None, status, trained_on: 0 }
    }

    pub(crate) fn status(&self) -> QuantizationStatus {
        self.status
    }

    /// The codes to walk on, when the index walks on codes.
    pub(crate) fn codes(&self) -> Option<&Codes> {
        self.codes.as_ref()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.codes.as_ref().map_or(0, Codes::heap_bytes)
    }

    /// Brings the codes level with `graph` after it changed: trains the quantizer on the graph
    /// (and measures its fit) the first time and whenever the graph has doubled since, while
    /// the training sample can still grow; otherwise encodes the new nodes with the quantizer
    /// it has. `graph` holds the old nodes unchanged, or was replaced after [`Quantized::reset`].
    pub(crate) fn sync(&mut self, params: &Params, graph: &HnswGraph, dist: &Distance) {
        if params.quantization == Quantization::None || graph.is_empty() {
            return;
        }
        let n = graph.len();
        let retrain = self.trained_on == 0 || (n >= 2 * self.trained_on && self.trained_on < Codes::TRAIN_ROWS);
        if retrain {
            let codes = Codes::for_graph(graph);
            let fit = codes.fit(graph, dist);
            self.trained_on = n;
            if fit.is_fine() {
                self.codes = Some(codes);
                self.status = QuantizationStatus::Codes(fit);
            } else {
                self.codes = None;
                self.status = QuantizationStatus::TooCoarse(fit);
            }
        } else if let Some(codes) = &mut self.codes {
            codes.reserve(n - codes.len());
            for i in codes.len()..n {
                codes.push(graph.vector(NodeId(i as u32)));
            }
        }
    }

    /// Forgets the codes, for a graph that replaces the old one.
    pub(crate) fn reset(&mut self, params: &Params) {
        *self = Quantized::new(params);
    }
}
