//! The 8-bit codes an index walks on when its parameters ask for them.

use omendex_distance::Distance;
use omendex_graph::{HnswGraph, NodeId};
use omendex_params::{Params, Quantization};
use omendex_search::{CodeFit, Codes, TrainedCodes};

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
    on: bool,
    // None until the first sync of a non-empty graph (and always when off); its codes, when
    // held, have one row per node of the graph after `sync`.
    state: Option<TrainedCodes>,
}

impl Quantized {
    pub(crate) fn new(params: &Params) -> Self {
        Quantized { on: params.quantization != Quantization::None, state: None }
    }

    /// The codes saved with `graph` (when it was saved with some), brought level with it.
    pub(crate) fn restore(params: &Params, saved: Option<TrainedCodes>, graph: &HnswGraph, dist: &Distance) -> Self {
        let mut q = Quantized::new(params);
        // Codes of another length or dimension than the graph (a file never holds such; a
        // caller's `SegmentParts` might) are made again.
        let fits = |t: &TrainedCodes| t.codes.as_ref().is_none_or(|c| (c.len(), c.dim()) == (graph.len(), graph.dim()));
        q.state = saved.filter(|t| q.on && t.trained_on > 0 && fits(t));
        q.sync(graph, dist);
        q
    }

    pub(crate) fn status(&self) -> QuantizationStatus {
        match &self.state {
            _ if !self.on => QuantizationStatus::Off,
            None => QuantizationStatus::Untrained,
            Some(TrainedCodes { fit, codes: Some(_), .. }) => QuantizationStatus::Codes(*fit),
            Some(TrainedCodes { fit, codes: None, .. }) => QuantizationStatus::TooCoarse(*fit),
        }
    }

    /// The codes to walk on, when the index walks on codes.
    pub(crate) fn codes(&self) -> Option<&Codes> {
        self.state.as_ref().and_then(|t| t.codes.as_ref())
    }

    /// The codes and how they were chosen, once trained.
    pub(crate) fn trained(&self) -> Option<&TrainedCodes> {
        self.state.as_ref()
    }

    /// Takes the trained codes out.
    pub(crate) fn into_trained(self) -> Option<TrainedCodes> {
        self.state
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.codes().map_or(0, Codes::heap_bytes)
    }

    /// Brings the codes level with `graph` after it changed: trains the quantizer on the graph
    /// (and measures its fit) the first time and whenever the graph has doubled since, while
    /// the training sample can still grow; otherwise encodes the new nodes with the quantizer
    /// it has. `graph` holds the old nodes unchanged, or was replaced after [`Quantized::reset`].
    pub(crate) fn sync(&mut self, graph: &HnswGraph, dist: &Distance) {
        if !self.on || graph.is_empty() {
            return;
        }
        let n = graph.len();
        let trained_on = self.state.as_ref().map_or(0, |t| t.trained_on);
        // `n / 2 >= trained_on` is `n >= 2 * trained_on` without the overflow a file's count
        // could cause.
        if trained_on == 0 || (n / 2 >= trained_on && trained_on < Codes::TRAIN_ROWS) {
            let codes = Codes::for_graph(graph);
            let fit = codes.fit(graph, dist);
            self.state = Some(TrainedCodes { trained_on: n, fit, codes: fit.is_fine().then_some(codes) });
        } else if let Some(codes) = self.state.as_mut().and_then(|t| t.codes.as_mut()) {
            codes.reserve(n - codes.len());
            for i in codes.len()..n {
                codes.push(graph.vector(NodeId(i as u32)));
            }
        }
    }

    /// Forgets the codes, for a graph that replaces the old one.
    pub(crate) fn reset(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omendex_distance::Metric;
    use omendex_graph::Layer;

    #[test]
    fn a_saved_training_size_of_any_value_syncs_without_overflow() {
        let params = Params::new(Metric::L2).quantization(Quantization::Int8);
        let mut graph = HnswGraph::new(2, 4).unwrap();
        for i in 0..4 {
            graph.push_node(&[i as f32, 1.0], Layer(0)).unwrap();
        }
        let dist = Distance::new(Metric::L2);
        for trained_on in [1, 3, usize::MAX / 2, usize::MAX / 2 + 1, usize::MAX] {
            let saved = TrainedCodes { trained_on, fit: CodeFit { queries: 4, recall: 1.0 }, codes: None };
            let q = Quantized::restore(&params, Some(saved), &graph, &dist);
            // Trained again only from a count the graph has doubled since.
            let again = trained_on <= 2;
            assert_eq!(q.trained().map(|t| t.trained_on), Some(if again { 4 } else { trained_on }), "{trained_on}");
        }
    }
}
