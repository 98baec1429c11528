//! Any manifest (checksums rewritten to pass) beside the segment files of a real save: loading
//! or opening the folder gives a typed error or an index that passes its invariants and answers
//! searches, never a panic. The seed corpus holds that save's own manifest.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omendex::{Metric, Params, SegmentPlan, SegmentedIndex};

mod common;

/// A folder holding a segmented index of 3 segments, saved once per process; built on one
/// thread, so its files (and the seed manifest's checksums of them) are the same every time.
fn folder() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::scratch("load_segments");
        let data: Vec<f32> = (0..600).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let params = Params::new(Metric::L2).m(4).ef_construction(16);
        let index = one.install(|| SegmentedIndex::build(4, params, &data, SegmentPlan::Count(3))).unwrap();
        index.save(&dir).unwrap();
        // The true manifest, for the seed corpus (fuzz/corpus/load_segments/saved).
        std::fs::copy(dir.join(omendex_store::MANIFEST), dir.join("saved-manifest")).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = folder();
    let mut bytes = data.to_vec();
    common::reseal(&mut bytes);
    std::fs::write(dir.join(omendex_store::MANIFEST), &bytes).unwrap();
    for loaded in [SegmentedIndex::load(dir), SegmentedIndex::open_mmap(dir)] {
        let Ok(index) = loaded else { continue };
        assert!(index.check_invariants().is_ok());
        let q = vec![0.5f32; index.dim()];
        match index.search(&q, 5) {
            Ok(hits) => assert!(hits.len() <= 5 && hits.iter().all(|h| index.contains(h.id))),
            Err(e) => assert!(index.is_empty(), "{e}"),
        }
    }
});
