//! The trained codes' sections (`quant`, `codes`): round trips loaded and mapped, and every
//! way they can be damaged, each a typed error.

use omendex_distance::{Distance, Metric};
use omendex_params::{Params, Quantization};
use omendex_search::{CodeFit, Codes, TrainedCodes};
use omendex_store::{
    FORMAT_VERSION, Labels, StoreError, graph_from_bytes, inspect, load_graph, open_graph_mapped, save_graph,
};

use super::{SETTINGS, as_version, graph, reseal};

const INT8: Params = Params { quantization: Quantization::Int8, ..SETTINGS };

fn trained(g: &omendex_graph::HnswGraph, held: bool) -> TrainedCodes {
    let codes = Codes::for_graph(g);
    let fit = codes.fit(g, &Distance::new(Metric::L2));
    TrainedCodes { trained_on: g.len(), fit, codes: held.then_some(codes) }
}

fn assert_same_codes(a: &TrainedCodes, b: &TrainedCodes) {
    assert_eq!((a.trained_on, a.fit), (b.trained_on, b.fit));
    match (&a.codes, &b.codes) {
        (Some(a), Some(b)) => {
            assert_eq!(a.quantizer(), b.quantizer());
            assert_eq!((a.len(), a.stride()), (b.len(), b.stride()));
            assert_eq!(a.data(), b.data());
            assert_eq!(a.norms(), b.norms(), "each row's term is computed again, equal");
        }
        (None, None) => {}
        _ => panic!("codes held on one side only"),
    }
}

/// The bytes of `g` saved with `codes` under `params`, and the file they were written to.
fn saved(dir: &std::path::Path, g: &omendex_graph::HnswGraph, params: &Params, codes: &TrainedCodes) -> Vec<u8> {
    let path = dir.join("c.omen");
    let ids: Vec<omendex_graph::VectorId> = (0..g.len() as u64).map(omendex_graph::VectorId).collect();
    let labels = Labels { ids: Some(&ids), codes: Some(codes), ..Labels::default() };
    save_graph(&path, params, g, labels).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn codes_round_trip_loaded_and_mapped() {
    // 70 dimensions: rows of 128 bytes, 58 of them padding.
    let g = graph(300, 70, 4, 11);
    let t = trained(&g, true);
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), &g, &INT8, &t);
    let path = dir.path().join("c.omen");

    let info = inspect(&path).unwrap();
    assert_eq!(info.version, FORMAT_VERSION);
    let tags: Vec<&str> = info.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["meta", "tops", "layer0", "upper", "vectors", "quant", "codes", "ids"]);
    let codes = info.sections.iter().find(|s| s.tag == "codes").unwrap();
    assert_eq!(codes.len, 300 * 128);

    let loaded = load_graph(&path).unwrap();
    assert_same_codes(&t, loaded.codes.as_ref().unwrap());
    assert!(!loaded.codes.unwrap().codes.unwrap().is_mapped());

    let mapped = open_graph_mapped(&path).unwrap();
    let codes = mapped.codes.as_ref().unwrap();
    assert_same_codes(&t, codes);
    assert_eq!(codes.codes.as_ref().unwrap().is_mapped(), cfg!(target_endian = "little"));
    assert_eq!(codes.codes.as_ref().unwrap().heap_bytes() < 300 * 128, cfg!(target_endian = "little"));
}

#[test]
fn a_fit_without_codes_round_trips_and_older_files_have_none() {
    let g = graph(60, 4, 4, 12);
    let t = TrainedCodes { trained_on: 60, fit: CodeFit { queries: 60, recall: 0.5 }, codes: None };
    let dir = tempfile::tempdir().unwrap();
    let bytes = saved(dir.path(), &g, &INT8, &t);
    let info = inspect(&dir.path().join("c.omen")).unwrap();
    let tags: Vec<&str> = info.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["meta", "tops", "layer0", "upper", "vectors", "quant", "ids"]);
    assert_same_codes(&t, graph_from_bytes(&bytes).unwrap().codes.as_ref().unwrap());
    assert_same_codes(&t, open_graph_mapped(&dir.path().join("c.omen")).unwrap().codes.as_ref().unwrap());

    // A version 2 file is a version 3 file without the codes.
    let path = dir.path().join("v2.omen");
    save_graph(&path, &INT8, &g, Labels::default()).unwrap();
    let v2 = as_version(std::fs::read(&path).unwrap(), 2);
    let back = graph_from_bytes(&v2).unwrap();
    assert_eq!((back.params.quantization, back.codes.is_none()), (Quantization::Int8, true));
}

#[test]
fn every_single_byte_flip_in_a_file_with_codes_is_an_error() {
    let g = graph(30, 4, 4, 13);
    let dir = tempfile::tempdir().unwrap();
    let bytes = saved(dir.path(), &g, &INT8, &trained(&g, true));
    let mut damaged = bytes.clone();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            damaged[i] ^= bit;
            assert!(graph_from_bytes(&damaged).is_err(), "flipping bit {bit:#x} of byte {i} went unnoticed");
            damaged[i] = bytes[i];
        }
    }
}

#[test]
fn damaged_codes_with_valid_checksums_are_refused_loaded_and_mapped() {
    let g = graph(40, 70, 4, 14);
    let dir = tempfile::tempdir().unwrap();
    let good = saved(dir.path(), &g, &INT8, &trained(&g, true));
    let path = dir.path().join("c.omen");
    let section =
        |tag: &str| inspect(&path).unwrap().sections.into_iter().find(|s| s.tag == tag).unwrap().offset as usize;
    let (meta, quant, codes) = (section("meta"), section("quant"), section("codes"));
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("no quantization", Box::new(move |b| put(b, meta + 44, &0u32.to_le_bytes()))),
        ("unknown code scheme 2", Box::new(move |b| put(b, quant, &2u32.to_le_bytes()))),
        ("codes-held word 2", Box::new(move |b| put(b, quant + 4, &2u32.to_le_bytes()))),
        ("its codes-held word false", Box::new(move |b| put(b, quant + 4, &0u32.to_le_bytes()))),
        ("nodes trained on = 0", Box::new(move |b| put(b, quant + 8, &0u64.to_le_bytes()))),
        ("fit queries = 65", Box::new(move |b| put(b, quant + 16, &65u64.to_le_bytes()))),
        ("fit recall NaN", Box::new(move |b| put(b, quant + 24, &f64::NAN.to_bits().to_le_bytes()))),
        ("fit recall 1.5", Box::new(move |b| put(b, quant + 24, &1.5f64.to_bits().to_le_bytes()))),
        // The first step (after 70 offsets) negative, then an offset infinite.
        ("quantizer: dimension 0", Box::new(move |b| put(b, quant + 32 + 280, &(-1.0f32).to_le_bytes()))),
        ("quantizer: dimension 3", Box::new(move |b| put(b, quant + 32 + 12, &f32::INFINITY.to_le_bytes()))),
        // Row 5's first padding byte (70 codes, then 58 zeros).
        ("code row 5 has non-zero padding", Box::new(move |b| b[codes + 5 * 128 + 70] = 1)),
    ];
    for (why, damage) in cases {
        let mut bytes = good.clone();
        damage(&mut bytes);
        reseal(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        for (how, res) in [("loaded", load_graph(&path)), ("mapped", open_graph_mapped(&path))] {
            match res {
                Err(StoreError::Malformed(m)) => assert!(m.contains(why), "{how}, {why}: {m}"),
                other => panic!("{how}, {why}: {other:?}"),
            }
        }
    }
    // Any code byte is a valid code: a changed one loads (and gives another distance).
    let mut bytes = good.clone();
    bytes[codes + 3] ^= 0xff;
    reseal(&mut bytes);
    assert!(graph_from_bytes(&bytes).is_ok());
}

#[test]
#[should_panic(expected = "codes saved without quantization")]
fn saving_codes_without_quantization_is_a_caller_bug() {
    let g = graph(20, 4, 4, 15);
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), &g, &SETTINGS, &trained(&g, true));
}
