//! The facade end to end on hostile input: the first byte says how many operation bytes follow,
//! the rest is an index file (checksums rewritten to pass). If it loads, the operations run on
//! it (search, add, delete, compact, rebuild, save and load back), each a typed error or a
//! success that keeps every invariant; a reload answers as the saved index did.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omendex::{Index, Query, VectorId};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&n_ops, rest)) = data.split_first() else { return };
    let (ops, file) = rest.split_at(usize::from(n_ops).min(rest.len()));
    let mut bytes = file.to_vec();
    common::reseal(&mut bytes);
    let Ok(stored) = omendex_store::graph_from_bytes(&bytes) else { return };
    drop(stored);
    let dir = common::scratch("facade");
    let path = dir.join("index.omen");
    std::fs::write(&path, &bytes).unwrap();
    let Ok(mut index) = Index::load(&path) else { return };
    let dim = index.dim();
    for (i, &op) in ops.iter().enumerate() {
        let value = f32::from(op) / 16.0 - 8.0;
        let v = vec![value; dim];
        match op % 7 {
            0 => {
                let k = usize::from(op / 7) % 12;
                if let Ok(hits) = index.query(&Query::new(&v, k).ef(k.max(1) * 2)) {
                    assert!(hits.len() <= k && hits.iter().all(|h| index.contains(h.id)));
                }
            }
            1 => {
                if let Ok(id) = index.add(&v) {
                    assert!(index.contains(id));
                }
            }
            2 => {
                let id = VectorId(u64::from(op / 7) * 3 + i as u64 % 5);
                let had = index.contains(id);
                assert_eq!(index.delete(id).is_ok(), had);
                assert!(!index.contains(id));
            }
            3 => {
                let before = index.len();
                if index.compact().is_ok() {
                    assert_eq!(index.len(), before);
                    assert_eq!(index.deleted(), 0);
                }
            }
            4 => {
                let before = index.len();
                if index.rebuild().is_ok() {
                    assert_eq!(index.len(), before);
                }
            }
            5 => {
                let again = dir.join("again.omen");
                if index.save(&again).is_ok() {
                    let loaded = Index::load(&again).unwrap();
                    assert_eq!(loaded.len(), index.len());
                    assert_eq!(loaded.search(&v, 3).ok(), index.search(&v, 3).ok());
                }
            }
            _ => {
                let _ = index.add(&[f32::NAN; 1]);
                let _ = index.search(&v[..dim.saturating_sub(1)], 1);
            }
        }
        assert!(index.check_invariants().is_ok());
    }
});
