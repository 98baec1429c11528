//! Readers for TEXMEX vector files (`.fvecs`, `.bvecs`, `.ivecs`), with errors that name the
//! file, the offset and what was expected.
//!
//! Every row is a little-endian `i32` dimension `d` followed by `d` values: `f32` (fvecs),
//! `u8` (bvecs) or `i32` (ivecs). All rows of a file must have the same `d`.

use std::path::{Path, PathBuf};

/// Why a dataset file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file has no rows.
    #[error("{path}: empty file, expected at least one row")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A row's dimension word is zero, negative or absurdly large.
    #[error("{path}: offset {offset}: row {row} declares dimension {dim}, expected 1..={max}")]
    BadDimension {
        /// The file.
        path: PathBuf,
        /// Byte offset of the dimension word.
        offset: u64,
        /// The row.
        row: usize,
        /// The value read.
        dim: i64,
        /// The largest accepted.
        max: usize,
    },
    /// A row's dimension differs from the first row's.
    #[error("{path}: offset {offset}: row {row} has dimension {found}, expected {expected} like row 0")]
    RowDimension {
        /// The file.
        path: PathBuf,
        /// Byte offset of the dimension word.
        offset: u64,
        /// The row.
        row: usize,
        /// The first row's dimension.
        expected: usize,
        /// This row's dimension.
        found: usize,
    },
    /// The file ends inside a row.
    #[error("{path}: offset {offset}: truncated row {row}: needs {expected} bytes, only {found} left")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset of the row's start.
        offset: u64,
        /// The row.
        row: usize,
        /// Bytes the row needs.
        expected: usize,
        /// Bytes left in the file.
        found: usize,
    },
    /// A NaN or infinite value in a vector file.
    #[error("{path}: offset {offset}: row {row}, component {col} is {value}")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Byte offset of the value.
        offset: u64,
        /// The row.
        row: usize,
        /// The component.
        col: usize,
        /// The value, as text.
        value: String,
    },
    /// Base and query vectors differ in dimension.
    #[error("{query}: queries have dimension {found}, the base vectors ({base}) have {expected}")]
    QueryDimension {
        /// The base file.
        base: PathBuf,
        /// The query file.
        query: PathBuf,
        /// The base dimension.
        expected: usize,
        /// The query dimension.
        found: usize,
    },
    /// A ground-truth id that is not a row of the base file.
    #[error(
        "{path}: offset {offset}: row {row}, entry {col} is id {id}, but the base has {n_base} vectors (ids 0..{n_base})"
    )]
    GroundTruthId {
        /// The ground-truth file.
        path: PathBuf,
        /// Byte offset of the id.
        offset: u64,
        /// The query row.
        row: usize,
        /// The position in the row.
        col: usize,
        /// The id read.
        id: i64,
        /// The number of base vectors.
        n_base: usize,
    },
    /// Ground truth with a different number of rows than there are queries.
    #[error("{path}: {found} ground-truth rows for {expected} queries")]
    GroundTruthRows {
        /// The ground-truth file.
        path: PathBuf,
        /// The number of queries.
        expected: usize,
        /// The number of rows.
        found: usize,
    },
    /// Ground truth shallower than the k asked for.
    #[error("{path}: ground truth holds {depth} neighbours per query, fewer than k = {k}")]
    GroundTruthDepth {
        /// The ground-truth file.
        path: PathBuf,
        /// Neighbours per row.
        depth: usize,
        /// The k asked for.
        k: usize,
    },
    /// A folder without the files a dataset needs.
    #[error("{dir}: no {what} (expected {expected})")]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// What is missing.
        what: &'static str,
        /// The names looked for.
        expected: &'static str,
    },
}

/// The largest dimension a row may declare (guards against reading garbage as a huge row).
pub const MAX_DIM: usize = 1 << 20;

/// Vectors read from a file: `len()` rows of `dim` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Values per vector.
    pub dim: usize,
    /// `len() * dim` values.
    pub data: Vec<f32>,
}

impl Vectors {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The first `n` vectors.
    pub fn prefix(&self, n: usize) -> &[f32] {
        &self.data[..n * self.dim]
    }
}

/// Each row's payload (after its dimension word) with the payload's byte offset in the file.
type RawRows<'a> = Vec<(u64, &'a [u8])>;

/// Row-structured raw content of a TEXMEX file: `(dim, rows of raw little-endian words/bytes)`.
fn parse_rows<'a>(path: &Path, bytes: &'a [u8], elem: usize) -> Result<(usize, RawRows<'a>), DataError> {
    let path_buf = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(DataError::Empty { path: path_buf() });
    }
    let mut rows = Vec::new();
    let mut dim = None;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let row = rows.len();
        let left = bytes.len() - pos;
        if left < 4 {
            return Err(DataError::Truncated { path: path_buf(), offset: pos as u64, row, expected: 4, found: left });
        }
        let d = i32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        if d <= 0 || d as usize > MAX_DIM {
            return Err(DataError::BadDimension {
                path: path_buf(),
                offset: pos as u64,
                row,
                dim: i64::from(d),
                max: MAX_DIM,
            });
        }
        let d = d as usize;
        match dim {
            None => dim = Some(d),
            Some(first) if first != d => {
                return Err(DataError::RowDimension {
                    path: path_buf(),
                    offset: pos as u64,
                    row,
                    expected: first,
                    found: d,
                });
            }
            Some(_) => {}
        }
        let need = 4 + d * elem;
        if left < need {
            return Err(DataError::Truncated {
                path: path_buf(),
                offset: pos as u64,
                row,
                expected: need,
                found: left,
            });
        }
        rows.push((pos as u64 + 4, &bytes[pos + 4..pos + need]));
        pos += need;
    }
    Ok((dim.expect("at least one row"), rows))
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

/// Parses `.fvecs` content; NaN or infinite values are refused.
pub fn parse_fvecs(path: &Path, bytes: &[u8]) -> Result<Vectors, DataError> {
    let (dim, rows) = parse_rows(path, bytes, 4)?;
    let mut data = Vec::with_capacity(rows.len() * dim);
    for (row, (offset, raw)) in rows.into_iter().enumerate() {
        for (col, w) in raw.chunks_exact(4).enumerate() {
            let x = f32::from_le_bytes(w.try_into().expect("4 bytes"));
            if !x.is_finite() {
                return Err(DataError::NonFinite {
                    path: path.to_path_buf(),
                    offset: offset + 4 * col as u64,
                    row,
                    col,
                    value: x.to_string(),
                });
            }
            data.push(x);
        }
    }
    Ok(Vectors { dim, data })
}

/// Parses `.bvecs` content (bytes widened to `f32`).
pub fn parse_bvecs(path: &Path, bytes: &[u8]) -> Result<Vectors, DataError> {
    let (dim, rows) = parse_rows(path, bytes, 1)?;
    let data = rows.into_iter().flat_map(|(_, raw)| raw.iter().map(|&b| f32::from(b))).collect();
    Ok(Vectors { dim, data })
}

/// Exact neighbour ids per query, nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Ids per query row.
    pub depth: usize,
    /// One row of `depth` ids per query.
    pub ids: Vec<Vec<u32>>,
}

/// Parses `.ivecs` ground truth, checking every id against the base size `n_base`.
pub fn parse_ivecs(path: &Path, bytes: &[u8], n_base: usize) -> Result<GroundTruth, DataError> {
    let (depth, rows) = parse_rows(path, bytes, 4)?;
    let mut ids = Vec::with_capacity(rows.len());
    for (row, (offset, raw)) in rows.into_iter().enumerate() {
        let mut r = Vec::with_capacity(depth);
        for (col, w) in raw.chunks_exact(4).enumerate() {
            let id = i32::from_le_bytes(w.try_into().expect("4 bytes"));
            if id < 0 || id as usize >= n_base {
                return Err(DataError::GroundTruthId {
                    path: path.to_path_buf(),
                    offset: offset + 4 * col as u64,
                    row,
                    col,
                    id: i64::from(id),
                    n_base,
                });
            }
            r.push(id.unsigned_abs());
        }
        ids.push(r);
    }
    Ok(GroundTruth { depth, ids })
}

/// Reads a vector file, `.fvecs` or `.bvecs` by extension.
pub fn read_vectors(path: &Path) -> Result<Vectors, DataError> {
    let bytes = read(path)?;
    if path.extension().is_some_and(|e| e == "bvecs") { parse_bvecs(path, &bytes) } else { parse_fvecs(path, &bytes) }
}

/// Reads an `.ivecs` ground-truth file.
pub fn read_ground_truth(path: &Path, n_base: usize) -> Result<GroundTruth, DataError> {
    parse_ivecs(path, &read(path)?, n_base)
}

/// A TEXMEX dataset folder: base and query vectors, and ground truth when present.
#[derive(Debug, Clone)]
pub struct TexmexDir {
    /// Base vectors.
    pub base: Vectors,
    /// Query vectors.
    pub queries: Vectors,
    /// Exact neighbours of each query among all base vectors, if the folder has them.
    pub truth: Option<GroundTruth>,
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["fvecs", "bvecs"].iter().map(|ext| dir.join(format!("{stem}.{ext}"))).find(|p| p.exists())
}

/// Loads `DIR/base.{fvecs,bvecs}`, `DIR/query.{fvecs,bvecs}` and, if present,
/// `DIR/groundtruth.ivecs`, checking that they agree (dimensions, row counts, id range, and a
/// ground-truth depth of at least `k`).
pub fn load_dir(dir: &Path, k: usize) -> Result<TexmexDir, DataError> {
    let base_path = find(dir, "base").ok_or_else(|| DataError::MissingFile {
        dir: dir.to_path_buf(),
        what: "base vectors",
        expected: "base.fvecs or base.bvecs",
    })?;
    let query_path = find(dir, "query").ok_or_else(|| DataError::MissingFile {
        dir: dir.to_path_buf(),
        what: "query vectors",
        expected: "query.fvecs or query.bvecs",
    })?;
    let base = read_vectors(&base_path)?;
    let queries = read_vectors(&query_path)?;
    if queries.dim != base.dim {
        return Err(DataError::QueryDimension {
            base: base_path,
            query: query_path,
            expected: base.dim,
            found: queries.dim,
        });
    }
    let gt_path = dir.join("groundtruth.ivecs");
    let truth = if gt_path.exists() {
        let gt = read_ground_truth(&gt_path, base.len())?;
        if gt.ids.len() != queries.len() {
            return Err(DataError::GroundTruthRows { path: gt_path, expected: queries.len(), found: gt.ids.len() });
        }
        if gt.depth < k {
            return Err(DataError::GroundTruthDepth { path: gt_path, depth: gt.depth, k });
        }
        Some(gt)
    } else {
        None
    };
    Ok(TexmexDir { base, queries, truth })
}

/// Encodes vectors as `.fvecs` bytes (for tests and for writing generated sets).
pub fn to_fvecs(v: &Vectors) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * (4 + 4 * v.dim));
    for i in 0..v.len() {
        out.extend_from_slice(&(v.dim as i32).to_le_bytes());
        for x in v.row(i) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Encodes id rows as `.ivecs` bytes.
pub fn to_ivecs(rows: &[Vec<u32>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&(r.len() as i32).to_le_bytes());
        for &id in r {
            out.extend_from_slice(&(id as i32).to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.fvecs")
    }

    fn sample() -> Vectors {
        Vectors { dim: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }
    }

    #[test]
    fn fvecs_round_trip() {
        assert_eq!(parse_fvecs(p(), &to_fvecs(&sample())).unwrap(), sample());
    }

    #[test]
    fn bvecs_widen_bytes() {
        let bytes = [2, 0, 0, 0, 7, 255];
        assert_eq!(parse_bvecs(p(), &bytes).unwrap(), Vectors { dim: 2, data: vec![7.0, 255.0] });
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(matches!(parse_fvecs(p(), &[]), Err(DataError::Empty { .. })));
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_offset() {
        let full = to_fvecs(&sample());
        for cut in 1..full.len() {
            if cut == 16 {
                // A cut on a row boundary leaves a shorter, well-formed file: the format has no
                // row count, so this is one row, not an error.
                assert_eq!(parse_fvecs(p(), &full[..cut]).unwrap().len(), 1);
                continue;
            }
            match parse_fvecs(p(), &full[..cut]) {
                Err(DataError::Truncated { offset, row, expected, found, .. }) => {
                    let row_start = if cut < 16 { 0 } else { 16 };
                    assert_eq!((offset, row), (row_start, row_start as usize / 16), "cut {cut}");
                    assert_eq!(found, cut - row_start as usize);
                    assert!(expected == 16 || expected == 4);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn mis_sized_rows_and_bad_dimensions_are_errors() {
        let mut bytes = to_fvecs(&sample());
        bytes[16..20].copy_from_slice(&4i32.to_le_bytes());
        assert!(matches!(
            parse_fvecs(p(), &bytes),
            Err(DataError::RowDimension { offset: 16, row: 1, expected: 3, found: 4, .. })
        ));
        bytes[0..4].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(matches!(parse_fvecs(p(), &bytes), Err(DataError::BadDimension { dim: -1, row: 0, .. })));
        bytes[0..4].copy_from_slice(&0i32.to_le_bytes());
        assert!(matches!(parse_fvecs(p(), &bytes), Err(DataError::BadDimension { dim: 0, .. })));
    }

    #[test]
    fn nan_in_fvecs_is_an_error() {
        let mut v = sample();
        v.data[4] = f32::NAN;
        assert!(matches!(
            parse_fvecs(p(), &to_fvecs(&v)),
            Err(DataError::NonFinite { row: 1, col: 1, offset: 24, .. })
        ));
    }

    #[test]
    fn ground_truth_ids_beyond_the_base_are_errors() {
        let bytes = to_ivecs(&[vec![0, 1], vec![2, 5]]);
        assert!(parse_ivecs(p(), &bytes, 6).is_ok());
        let err = parse_ivecs(p(), &bytes, 5).unwrap_err();
        assert!(matches!(err, DataError::GroundTruthId { row: 1, col: 1, id: 5, n_base: 5, offset: 20, .. }));
        assert!(err.to_string().contains("id 5"), "{err}");
        let neg = to_ivecs(&[vec![u32::MAX]]);
        assert!(matches!(parse_ivecs(p(), &neg, 5), Err(DataError::GroundTruthId { id: -1, .. })));
    }

    #[test]
    fn dataset_folder_checks_agreement() {
        let dir = std::env::temp_dir().join(format!("omendex-texmex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = load_dir(&dir, 10).unwrap_err();
        assert!(matches!(missing, DataError::MissingFile { what: "base vectors", .. }));
        std::fs::write(dir.join("base.fvecs"), to_fvecs(&sample())).unwrap();
        std::fs::write(dir.join("query.fvecs"), to_fvecs(&Vectors { dim: 2, data: vec![0.0, 1.0] })).unwrap();
        assert!(matches!(load_dir(&dir, 1), Err(DataError::QueryDimension { expected: 3, found: 2, .. })));
        std::fs::write(dir.join("query.fvecs"), to_fvecs(&sample())).unwrap();
        std::fs::write(dir.join("groundtruth.ivecs"), to_ivecs(&[vec![1]])).unwrap();
        assert!(matches!(load_dir(&dir, 1), Err(DataError::GroundTruthRows { expected: 2, found: 1, .. })));
        std::fs::write(dir.join("groundtruth.ivecs"), to_ivecs(&[vec![1], vec![0]])).unwrap();
        assert!(matches!(load_dir(&dir, 2), Err(DataError::GroundTruthDepth { depth: 1, k: 2, .. })));
        let ok = load_dir(&dir, 1).unwrap();
        assert_eq!(ok.truth.unwrap().ids, vec![vec![1], vec![0]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
