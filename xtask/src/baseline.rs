//! `cargo xtask validate --record FILE` / `--baseline FILE`: the staged validation's
//! deterministic figures, kept in a file and compared with a later run, so a quality loss fails
//! even while every absolute bar is still met.
//!
//! A one-thread build with a fixed seed is deterministic for one distance path: the same code
//! gives the same graph, bit for bit, so every figure repeats exactly. A change that alters the
//! graph moves the recalls a little either way (seeds 42-46 spread recall@10 at ef = 10 over
//! 0.010 on random-128-5000 and 0.007 on clustered-128-20000; at ef 512 on random-128-20000 over
//! 0.001); a loss beyond [`TOLERANCE`] fails, anything else that moved is listed so the author
//! can re-record on purpose. A baseline from another distance path (AVX2 against AVX-512:
//! distances round differently, ties break differently, as another seed would) is compared with
//! [`OTHER_PATH_NARROW_TOLERANCE`] on the narrow beam, past that spread.
//!
//! On easy data a worse graph can keep its recall (ef_construction halved leaves recall on
//! clustered-128 within 0.001, while layer 0 loses 7% of its links), so CI also keeps a
//! baseline of random-128, where the same change costs 0.009 at ef 10 and 0.005 at ef 512.

use serde_json::{Value, json};

/// A recall lower than the baseline's by more than this is a loss.
pub const TOLERANCE: f64 = 0.002;

/// The tolerance on the narrow-beam recall when the baseline came from another distance path.
pub const OTHER_PATH_NARROW_TOLERANCE: f64 = 0.015;

/// The parameters that must match for figures to be comparable.
pub const PARAMS: [&str; 9] =
    ["dataset", "metric", "m", "ef_construction", "ef_search", "seed", "k", "threads", "stages"];

/// The per-layer figures kept for each stage.
const LAYER_FIELDS: [&str; 5] = ["nodes", "links", "unreachable", "reciprocal_share", "out_degree"];

/// The baseline record of a validate report (`report` as `validate` writes it).
pub fn record(report: &Value) -> Value {
    let stages: Vec<Value> = report["stages"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|st| {
                    let layers: Vec<Value> = st["layers"]
                        .as_array()
                        .map(|ls| {
                            ls.iter()
                                .map(|l| {
                                    let mut o = serde_json::Map::new();
                                    o.insert("layer".into(), l["layer"].clone());
                                    for f in LAYER_FIELDS {
                                        o.insert(f.into(), l[f].clone());
                                    }
                                    Value::Object(o)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({"n": st["n"], "recall": st["recall"], "recall_narrow": st["recall_narrow"],
                           "narrow_ef": st["narrow_ef"], "layers": layers})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "what": "cargo xtask validate baseline: the deterministic figures of a one-thread build",
        "recorded_at": {"git_revision": report["git_revision"], "cpu": report["cpu"], "distance_path": report["distance_path"]},
        "params": params_of(report),
        "stages": stages,
    })
}

/// The comparable parameters of a validate report.
pub fn params_of(report: &Value) -> Value {
    let p = &report["params"];
    json!({
        "dataset": report["dataset"], "metric": p["metric"], "m": p["m"], "ef_construction": p["ef_construction"],
        "ef_search": p["ef_search"], "seed": p["seed"], "k": p["k"], "threads": p["threads"],
        "stages": report["stages"].as_array().map(|s| s.iter().map(|st| st["n"].clone()).collect::<Vec<_>>()),
    })
}

/// What a comparison found.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Losses beyond the tolerance: validate fails on any.
    pub losses: Vec<String>,
    /// Every other figure that differs from the baseline.
    pub changes: Vec<String>,
    /// Why figures are compared more loosely, if they are.
    pub notes: Vec<String>,
}

/// Compares a validate `report` with a `baseline` from [`record`]; `Err` when the two were
/// run with different parameters (nothing is comparable then).
pub fn compare(baseline: &Value, report: &Value) -> Result<Comparison, String> {
    let (want, got) = (&baseline["params"], params_of(report));
    let differ: Vec<String> = PARAMS
        .iter()
        .filter(|p| want[**p] != got[**p])
        .map(|p| format!("{p}: baseline {}, this run {}", want[*p], got[*p]))
        .collect();
    if !differ.is_empty() {
        return Err(format!("the baseline was recorded with other parameters ({})", differ.join("; ")));
    }
    let mut res = Comparison::default();
    let (base_path, path) = (&baseline["recorded_at"]["distance_path"], &report["distance_path"]);
    let narrow_tolerance = if base_path == path {
        TOLERANCE
    } else {
        res.notes.push(format!(
            "baseline from distance path {base_path}, this run {path}: ties break differently, narrow-beam recall compared within {OTHER_PATH_NARROW_TOLERANCE}"
        ));
        OTHER_PATH_NARROW_TOLERANCE
    };
    let empty = Vec::new();
    let stages = report["stages"].as_array().unwrap_or(&empty);
    for (b, s) in baseline["stages"].as_array().unwrap_or(&empty).iter().zip(stages) {
        let n = &b["n"];
        for (key, tolerance, what) in [
            ("recall", TOLERANCE, format!("recall at ef {}", want["ef_search"])),
            ("recall_narrow", narrow_tolerance, format!("recall at ef {}", b["narrow_ef"])),
        ] {
            let (old, new) = (b[key].as_f64(), s[key].as_f64());
            match (old, new) {
                (Some(o), Some(x)) if x < o - tolerance => {
                    res.losses.push(format!("stage {n}: {what} {x:.4} < baseline {o:.4} - {tolerance}"))
                }
                (Some(o), Some(x)) if x != o => res.changes.push(format!("stage {n}: {what} {o:.4} -> {x:.4}")),
                (Some(_), None) => res.losses.push(format!("stage {n}: {what} missing from this run")),
                _ => {}
            }
        }
        let layers = s["layers"].as_array().unwrap_or(&empty);
        let base_layers = b["layers"].as_array().unwrap_or(&empty);
        if layers.len() != base_layers.len() {
            res.changes.push(format!("stage {n}: {} layers, baseline {}", layers.len(), base_layers.len()));
        }
        for (bl, l) in base_layers.iter().zip(layers) {
            for f in LAYER_FIELDS {
                if !same(&bl[f], &l[f]) {
                    res.changes.push(format!("stage {n}: layer {} {f} {} -> {}", bl["layer"], bl[f], l[f]));
                }
            }
        }
    }
    Ok(res)
}

/// Equal, numbers within a relative 1e-9: shares and means are summed on several threads, in
/// an order that moves their last bits from run to run.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(recall: f64, narrow: f64, unreachable: u64, path: &str) -> Value {
        json!({
            "git_revision": "abc", "cpu": "test", "distance_path": path, "dataset": "clustered-128",
            "params": {"metric": "l2", "m": 16, "ef_construction": 200, "ef_search": 64, "seed": 42, "k": 10, "threads": 1},
            "stages": [{"n": 1000, "recall": recall, "recall_narrow": narrow, "narrow_ef": 10,
                        "layers": [{"layer": 0, "nodes": 1000, "links": 12000, "unreachable": unreachable,
                                    "reciprocal_share": 0.9, "out_degree": [1, 12.0, 32], "in_degree": [0, 12.0, 40]}]}],
        })
    }

    #[test]
    fn the_same_run_compares_clean() {
        let r = report(0.999, 0.89, 1, "avx512f");
        assert_eq!(compare(&record(&r), &r), Ok(Comparison::default()));
    }

    #[test]
    fn a_recall_loss_beyond_the_tolerance_is_caught() {
        let base = record(&report(0.999, 0.89, 1, "avx512f"));
        let c = compare(&base, &report(0.990, 0.89, 1, "avx512f")).unwrap();
        assert_eq!(c.losses.len(), 1, "{c:?}");
        let c = compare(&base, &report(0.999, 0.885, 1, "avx512f")).unwrap();
        assert_eq!(c.losses.len(), 1, "{c:?}");
    }

    #[test]
    fn a_small_move_or_a_gain_is_listed_not_failed() {
        let base = record(&report(0.999, 0.89, 1, "avx512f"));
        let c = compare(&base, &report(0.9985, 0.895, 3, "avx512f")).unwrap();
        assert!(c.losses.is_empty(), "{c:?}");
        assert_eq!(c.changes.len(), 3, "{c:?}");
    }

    #[test]
    fn another_distance_path_widens_only_the_narrow_beam() {
        let base = record(&report(0.999, 0.89, 1, "avx512f"));
        let c = compare(&base, &report(0.999, 0.885, 1, "avx2")).unwrap();
        assert!(c.losses.is_empty() && c.notes.len() == 1, "{c:?}");
        let c = compare(&base, &report(0.999, 0.87, 1, "avx2")).unwrap();
        assert_eq!(c.losses.len(), 1, "{c:?}");
        let c = compare(&base, &report(0.995, 0.89, 1, "avx2")).unwrap();
        assert_eq!(c.losses.len(), 1, "{c:?}");
    }

    #[test]
    fn last_bit_differences_of_a_share_are_the_same_figure() {
        let base = record(&report(0.999, 0.89, 1, "avx512f"));
        let mut r = report(0.999, 0.89, 1, "avx512f");
        r["stages"][0]["layers"][0]["reciprocal_share"] = json!(0.9000000000000001);
        r["stages"][0]["layers"][0]["out_degree"] = json!([1, 12.000000000000002, 32]);
        assert_eq!(compare(&base, &r), Ok(Comparison::default()));
        r["stages"][0]["layers"][0]["out_degree"] = json!([1, 12.01, 32]);
        assert_eq!(compare(&base, &r).unwrap().changes.len(), 1);
    }

    #[test]
    fn other_parameters_are_refused() {
        let base = record(&report(0.999, 0.89, 1, "avx512f"));
        let mut other = report(0.999, 0.89, 1, "avx512f");
        other["params"]["ef_construction"] = json!(100);
        let e = compare(&base, &other).unwrap_err();
        assert!(e.contains("ef_construction"), "{e}");
    }
}
