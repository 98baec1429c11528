//! The trained codes in a graph file (format version 3): the `quant` section (the quantizer,
//! its measured fit) and the `codes` rows it may be followed by.

use super::*;

/// The tags of the optional sections holding the trained codes (format version 3).
pub(super) const QUANT: &str = "quant";
pub(super) const CODES: &str = "codes";
/// `quant`'s scheme word: 8-bit scalar codes ([`omendex_distance::Sq8`]).
pub(super) const SCHEME_SQ8: u32 = 1;
/// Bytes of `quant` before the quantizer's offsets and steps.
pub(super) const QUANT_HEAD: usize = 32;

/// The `quant` section: scheme `u32`, codes held `u32` (0 or 1), nodes trained on `u64`, the
/// fit's queries `u64` and recall `f64`, then (codes held) the `dim` offsets and `dim` steps.
pub(super) fn quant_section(t: &TrainedCodes) -> Vec<u8> {
    let mut out = Vec::with_capacity(QUANT_HEAD + t.codes.as_ref().map_or(0, |c| 8 * c.dim()));
    out.extend_from_slice(&SCHEME_SQ8.to_le_bytes());
    out.extend_from_slice(&u32::from(t.codes.is_some()).to_le_bytes());
    for v in [t.trained_on as u64, t.fit.queries as u64, t.fit.recall.to_bits()] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(c) = &t.codes {
        let q = c.quantizer();
        for v in q.offsets().iter().chain(q.steps()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// The codes' head read from `quant`, before their rows.
pub(super) struct QuantHead {
    pub(super) trained_on: usize,
    pub(super) fit: CodeFit,
    // With codes: the quantizer, and the rows' length in bytes.
    pub(super) rows: Option<(omendex_distance::Sq8, u64)>,
}

/// Reads the optional `quant` section of a file of `n` nodes with `params`: `None` when the
/// next section is another one.
pub(super) fn read_quant<R: Read>(r: &mut Reader<R>, h: &Head) -> Result<Option<QuantHead>, StoreError> {
    let Some(s) = r.peek().filter(|s| s.tag == QUANT) else { return Ok(None) };
    if h.params.quantization == Quantization::None {
        return Err(StoreError::Malformed("codes saved with parameters that ask for no quantization".into()));
    }
    let (len, dim) = (s.len, h.dim);
    let with_rows = QUANT_HEAD as u64 + 8 * dim as u64;
    if len != QUANT_HEAD as u64 && len != with_rows {
        return Err(StoreError::Malformed(format!(
            "section `{QUANT}` is {len} bytes, expected {QUANT_HEAD} or {with_rows}"
        )));
    }
    let bytes = r.read_vec(QUANT, len as usize)?;
    let f = Fields(&bytes);
    if f.u32(0) != SCHEME_SQ8 {
        return Err(StoreError::Malformed(format!("unknown code scheme {}", f.u32(0))));
    }
    let held = match f.u32(4) {
        0 => false,
        1 => true,
        v => return Err(StoreError::Malformed(format!("codes-held word {v}"))),
    };
    if held != (len == with_rows) {
        return Err(StoreError::Malformed(format!("section `{QUANT}` is {len} bytes, its codes-held word {held}")));
    }
    let trained_on = f.size(8, "nodes trained on", 1..=usize::MAX)?;
    let queries = f.size(16, "fit queries", 0..=Codes::FIT_QUERIES)?;
    let recall = f64::from_bits(f.u64(24));
    if !(0.0..=1.0).contains(&recall) {
        return Err(StoreError::Malformed(format!("fit recall {recall} outside 0..=1")));
    }
    let rows = if held {
        let floats = |at: usize| -> Vec<f32> {
            bytes[at..at + 4 * dim]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let sq8 = omendex_distance::Sq8::from_parts(floats(QUANT_HEAD), floats(QUANT_HEAD + 4 * dim))
            .map_err(|e| StoreError::Malformed(format!("quantizer: {e}")))?;
        Some((sq8, mul(&[h.n, Codes::stride_for(dim)], CODES)? as u64))
    } else {
        None
    };
    Ok(Some(QuantHead { trained_on, fit: CodeFit { queries, recall }, rows }))
}

impl QuantHead {
    pub(super) fn with_rows(self, rows: Option<CodeRows>, n: usize) -> Result<TrainedCodes, StoreError> {
        let codes = match (self.rows, rows) {
            (Some((sq8, _)), Some(rows)) => {
                Some(Codes::from_parts(sq8, rows, n).map_err(|e| StoreError::Malformed(format!("codes: {e}")))?)
            }
            _ => None,
        };
        Ok(TrainedCodes { trained_on: self.trained_on, fit: self.fit, codes })
    }
}
