//! Any bytes given to the fvecs, bvecs and ivecs readers: a typed error or well-formed rows,
//! never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use xtask::texmex::{parse_bvecs, parse_fvecs, parse_ivecs};

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz");
    if let Ok(v) = parse_fvecs(p, data) {
        assert!((0..v.len()).all(|i| v.row(i).iter().all(|x| x.is_finite())));
    }
    if let Ok(v) = parse_bvecs(p, data) {
        assert!((0..v.len()).all(|i| v.row(i).len() == v.dim));
    }
    let _ = parse_ivecs(p, data, 1_000);
});
