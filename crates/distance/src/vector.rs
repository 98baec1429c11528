//! What a vector must be to enter an index or query one, and how each metric stores it.

use std::borrow::Cow;

use crate::{MAX_NORM, Metric, norm, normalize};

/// Why a vector cannot be indexed or searched under a metric ([`check_vector`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The vector's length differs from the index's dimension.
    #[error("has {got} components, the index holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A NaN or infinite component.
    #[error("component {col} is {value}: NaN and infinite values cannot be indexed or searched")]
    NonFinite {
        /// Position of the first bad component.
        col: usize,
        /// Its value, as text.
        value: String,
    },
    /// A norm so large that [`Metric::L2`] or [`Metric::InnerProduct`] distances overflow `f32`.
    #[error(
        "has L2 norm {norm}, above 9.2e18 (omendex_distance::MAX_NORM): its {metric} distances would overflow f32 (scale the data down, or use cosine)"
    )]
    NormTooLarge {
        /// The norm, as text.
        norm: String,
        /// The metric.
        metric: Metric,
    },
}

/// The one rule for every vector that enters an index or queries one under `metric`: `dim`
/// components, all finite, and under l2 and ip a norm of at most [`MAX_NORM`] (cosine
/// normalises first and takes any finite vector).
pub fn check_vector(metric: Metric, v: &[f32], dim: usize) -> Result<(), VectorError> {
    if v.len() != dim {
        return Err(VectorError::DimensionMismatch { expected: dim, got: v.len() });
    }
    if let Some(col) = v.iter().position(|x| !x.is_finite()) {
        return Err(VectorError::NonFinite { col, value: v[col].to_string() });
    }
    if metric != Metric::Cosine {
        let norm = norm(v);
        if norm > f64::from(MAX_NORM) {
            return Err(VectorError::NormTooLarge { norm: format!("{norm:e}"), metric });
        }
    }
    Ok(())
}

impl Metric {
    /// The metric a graph of this metric's stored vectors is built and searched with: cosine
    /// stores vectors normalised ([`Metric::prepare`]), on which `1 - cos` is `1 - a·b`, the
    /// cheaper inner product; the others compare vectors as they are.
    pub fn compared_as(self) -> Metric {
        match self {
            Metric::Cosine => Metric::InnerProduct,
            other => other,
        }
    }

    /// `v` as an index of this metric stores and compares it: normalised (a copy) under
    /// cosine, borrowed otherwise. `v` must pass [`check_vector`].
    pub fn prepare(self, v: &[f32]) -> Cow<'_, [f32]> {
        self.prepare_rows(v, v.len().max(1))
    }

    /// [`Metric::prepare`] into `buf` (reused across calls), or `v` itself where the metric
    /// stores vectors as they are.
    pub fn prepare_in<'v>(self, v: &'v [f32], buf: &'v mut Vec<f32>) -> &'v [f32] {
        if self == Metric::Cosine {
            buf.clear();
            buf.extend_from_slice(v);
            normalize(buf);
            buf
        } else {
            v
        }
    }

    /// [`Metric::prepare`] for flat row-major `rows` of `dim` values each (every row
    /// normalised on its own under cosine).
    pub fn prepare_rows(self, rows: &[f32], dim: usize) -> Cow<'_, [f32]> {
        if self == Metric::Cosine {
            let mut all = rows.to_vec();
            all.chunks_mut(dim.max(1)).for_each(normalize);
            Cow::Owned(all)
        } else {
            Cow::Borrowed(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_the_first_fault() {
        assert_eq!(check_vector(Metric::L2, &[1.0, 2.0], 2), Ok(()));
        assert_eq!(check_vector(Metric::L2, &[1.0], 2), Err(VectorError::DimensionMismatch { expected: 2, got: 1 }));
        assert_eq!(
            check_vector(Metric::Cosine, &[1.0, f32::NAN], 2),
            Err(VectorError::NonFinite { col: 1, value: "NaN".into() })
        );
        let huge = [1e19f32, 0.0];
        assert!(matches!(check_vector(Metric::L2, &huge, 2), Err(VectorError::NormTooLarge { .. })));
        assert!(matches!(check_vector(Metric::InnerProduct, &huge, 2), Err(VectorError::NormTooLarge { .. })));
        assert_eq!(check_vector(Metric::Cosine, &huge, 2), Ok(()), "cosine normalises first");
        assert_eq!(check_vector(Metric::L2, &[MAX_NORM, 0.0], 2), Ok(()), "the bound itself is allowed");
    }

    #[test]
    fn cosine_stores_unit_rows_and_compares_them_by_inner_product() {
        let rows = [3.0f32, 4.0, 0.0, 2.0];
        let stored = Metric::Cosine.prepare_rows(&rows, 2);
        assert_eq!(&stored[..], &[0.6, 0.8, 0.0, 1.0]);
        assert!(matches!(Metric::L2.prepare_rows(&rows, 2), Cow::Borrowed(_)));
        assert_eq!(Metric::Cosine.compared_as(), Metric::InnerProduct);
        assert_eq!(Metric::L2.compared_as(), Metric::L2);
        let (a, b) = (Metric::Cosine.prepare(&[1.0, 2.0]), Metric::Cosine.prepare(&[2.0, -1.0]));
        let ip = crate::distance(Metric::Cosine.compared_as(), &a, &b);
        assert!((ip - crate::cosine(&[1.0, 2.0], &[2.0, -1.0])).abs() < 1e-6);
    }
}
