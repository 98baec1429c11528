//! Merging segments into one graph without rebuilding from scratch.

use omendex_build::{BuildError, HnswBuilder, Insertion, Linking, Seeds, Stop};
use omendex_graph::{HnswGraph, Layer, NodeId, VectorId};

use omendex_index::{Error, Index, SegmentId};

use crate::SegmentedIndex;

/// Seeds for merging: a node from segment `s` is seeded, on each layer, with those of its
/// neighbours in segment `s`'s graph that come before it in the merged graph (renamed to their
/// merged ids). Later ones are skipped: they are still detached when the node is linked, and
/// linking to them measurably lowered recall (docs/benchmarks.md, "Segments").
struct MergeSeeds<'a> {
    segments: &'a [Index],
    // Node ids below `first_inserted` are the copied base segment's, which need no seeds.
    first_inserted: u32,
    // For each merged id from `first_inserted` on: its segment and its id there.
    origin: Vec<(u16, NodeId)>,
    // For each segment, its node ids renamed into the merged graph (empty for the base;
    // DROPPED for a deleted node).
    renamed: Vec<Vec<u32>>,
}

/// The merged id of a deleted node: above every real id, so the seed filter below skips it.
const DROPPED: u32 = u32::MAX;

impl Seeds for MergeSeeds<'_> {
    fn seeds(&self, node: NodeId, layer: Layer, out: &mut Vec<NodeId>) {
        let Some(&(seg, old)) = node.0.checked_sub(self.first_inserted).and_then(|i| self.origin.get(i as usize))
        else {
            return;
        };
        let names = &self.renamed[usize::from(seg)];
        let old_list = self.segments[usize::from(seg)].graph().neighbors(old, layer);
        // Only neighbours merged before `node`; a DROPPED one is never below it.
        out.extend(old_list.iter().map(|n| NodeId(names[n.idx()])).filter(|n| n.0 < node.0));
    }
}

impl SegmentedIndex {
    /// Merges every segment into one graph without rebuilding from scratch (as Lucene does):
    /// the largest segment's graph is copied as it is, then the other segments' nodes are
    /// inserted on all threads of the current rayon pool, each descending from the entry point
    /// as usual and also starting its search on each layer from those of its neighbours in its
    /// old segment that are already in the merged graph. `ef_construction` is the beam of
    /// these insertions.
    ///
    /// The merged graph is about as good as a fresh build with that beam, for less work (the
    /// largest segment is kept as it is, and each search starts near its node); measured
    /// against fresh builds in docs/benchmarks.md, "Segments".
    ///
    /// Deleted vectors are dropped: the base graph is compacted first (its nodes that linked to
    /// a deleted one take new neighbours, as [`Index::compact`] chooses them), and the
    /// other segments' deleted nodes are neither inserted nor used as seeds.
    ///
    /// Returns an index of one segment holding every vector not deleted, under the same ids, and
    /// the same next id.
    ///
    /// Stops, with [`BuildError::Stopped`], once the index's stop flag
    /// ([`SegmentedIndex::set_stop`]) is raised.
    pub fn merged(&self, ef_construction: usize) -> Result<SegmentedIndex, Error> {
        self.merged_or_stop(ef_construction, self.stop.as_ref())
    }

    /// [`SegmentedIndex::merged`] that another thread can stop through `stop`, while this
    /// index stays shared (it takes `&self`, so searches go on beside it): once `stop` is raised,
    /// the merge fails with [`BuildError::Stopped`] (in [`Error::Segment`]) within about one
    /// insertion's time. The index's own flag ([`SegmentedIndex::set_stop`]) is not watched.
    ///
    /// ```
    /// use omendex_build::{BuildError, Stop};
    /// use omendex_params::Params;
    /// use omendex_distance::Metric;
    /// use omendex_graph::VectorId;
    /// use omendex_index::{Error, SegmentPlan};
    /// use omendex_segment::SegmentedIndex;
    ///
    /// let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.37).sin()).collect();
    /// let ids: Vec<VectorId> = (0..1000).map(VectorId).collect();
    /// let index = SegmentedIndex::build_with_ids(2, Params::new(Metric::L2), &data, &ids, SegmentPlan::Count(2)).unwrap();
    /// let stop = Stop::new();
    /// stop.stop(); // as a Ctrl-C handler would, from another thread
    /// let res = index.merged_stoppable(40, &stop);
    /// assert!(matches!(res, Err(Error::Segment { source, .. }) if matches!(*source, Error::Build(BuildError::Stopped))));
    /// assert_eq!(index.merged(40).unwrap().len(), 1000);
    /// ```
    pub fn merged_stoppable(&self, ef_construction: usize, stop: &Stop) -> Result<SegmentedIndex, Error> {
        self.merged_or_stop(ef_construction, Some(stop))
    }

    fn merged_or_stop(&self, ef_construction: usize, stop: Option<&Stop>) -> Result<SegmentedIndex, Error> {
        if ef_construction == 0 {
            return Err(BuildError::from(omendex_params::ParamsError::BadEfConstruction { ef_construction }).into());
        }
        let segments = self.segments();
        let Some(base_idx) = (0..segments.len()).max_by_key(|&i| (segments[i].len(), std::cmp::Reverse(i))) else {
            return Ok(self.with_segments(Vec::new()));
        };
        let base = &segments[base_idx];
        let in_base = |e: Error| e.in_segment(SegmentId(base_idx as u16));
        let wrap = |e: BuildError| in_base(e.into());
        // A builder of the base's parameters, watching the stop flag.
        let mut builder = HnswBuilder::new(*base.params()).map_err(wrap)?;
        builder.set_stop(stop.cloned());
        let compacted;
        let (base_graph, mut ids): (&HnswGraph, Vec<VectorId>) = if base.deleted() > 0 {
            compacted = builder.compact(base.graph(), &|n| base.is_deleted(n)).map_err(wrap)?;
            (&compacted.graph, compacted.kept.iter().map(|&n| base.id_of(n)).collect())
        } else {
            (base.graph(), base.ids().collect())
        };
        let mut graph = builder.new_graph(self.dim()).map_err(wrap)?;
        graph.reserve(self.len());

        // 1. The base graph, node for node and list for list.
        let base_nodes = (0..base_graph.len() as u32).map(NodeId);
        for node in base_nodes.clone() {
            let v = base_graph.vector(node);
            omendex_distance::check_vector(self.params().metric, v, self.dim())
                .map_err(|source| wrap(BuildError::Vector { row: node.idx(), source }))?;
            graph.push_detached(v, base_graph.node_top(node)).map_err(|e| wrap(e.into()))?;
        }
        for node in base_nodes {
            for layer in Layer::descend_from(base_graph.node_top(node)) {
                let list = base_graph.neighbors(node, layer).to_vec();
                graph.set_neighbors(node, layer, &list).map_err(|e| wrap(e.into()))?;
            }
        }
        if let Some(entry) = base_graph.entry_point() {
            graph.promote_entry(entry);
        }

        // 2. Every other live node, pushed detached, then linked with its old neighbours as seeds.
        let first_inserted = graph.len() as u32;
        let mut origin = Vec::with_capacity(self.len() - base.len());
        let mut renamed = vec![Vec::new(); segments.len()];
        for (s, seg) in segments.iter().enumerate().filter(|&(s, _)| s != base_idx) {
            let names = &mut renamed[s];
            for node in (0..seg.graph().len() as u32).map(NodeId) {
                if seg.is_deleted(node) {
                    names.push(DROPPED);
                    continue;
                }
                let v = seg.graph().vector(node);
                // The rule every vector entering a graph meets (a mapped segment's were never read).
                omendex_distance::check_vector(self.params().metric, v, self.dim())
                    .map_err(|source| BuildError::Vector { row: node.idx(), source })
                    .map_err(|e| Error::from(e).in_segment(SegmentId(s as u16)))?;
                let id = graph.push_detached(v, seg.graph().node_top(node)).map_err(|e| wrap(e.into()))?;
                names.push(id.0);
                origin.push((s as u16, node));
                ids.push(seg.id_of(node));
            }
        }
        let seeds = MergeSeeds { segments, first_inserted, origin, renamed };
        let how = Linking::new(Insertion::Parallel).seeded(&seeds, ef_construction);
        builder.link_batch(&graph, first_inserted..graph.len() as u32, how).map_err(wrap)?;
        let params = crate::segmented::segment_params(*self.params(), SegmentId(0));
        let merged = Index::from_graph(params, graph, (Some(ids), None, None), None).map_err(in_base)?;
        Ok(self.with_segments(vec![merged]))
    }
}
