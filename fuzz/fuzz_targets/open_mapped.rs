//! Any bytes (checksums rewritten to pass) written to a file and opened in place: a typed error
//! or an index that passes its invariants and answers searches, never a panic. Its vectors are
//! not checked at open (docs of `open_mmap`): NaNs must give answers or errors, and a compaction,
//! which copies them, must refuse a vector that breaks the rule.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    common::reseal(&mut bytes);
    let path = common::scratch("open_mapped").join("input.omen");
    // Written afresh (a new file, then renamed): a mapping of the previous input is never
    // changed under it.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let Ok(mut index) = omendex::Index::open_mmap(&path) else { return };
    assert!(index.check_invariants().is_ok());
    let q = vec![0.5f32; index.dim()];
    match index.search(&q, 5) {
        Ok(hits) => assert!(hits.len() <= 5 && hits.iter().all(|h| index.contains(h.id))),
        Err(e) => assert!(index.is_empty(), "{e}"),
    }
    if index.compact().is_ok() {
        assert!(index.check_invariants().is_ok());
    }
});
