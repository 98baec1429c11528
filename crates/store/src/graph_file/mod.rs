//! Graph files: one graph, the parameters it was built with, and optionally its caller ids.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use omendex_distance::{Metric, check_vector};
use omendex_graph::{FileMap, GraphParts, HnswGraph, Layer, MAX_DIM, MAX_M, MappedParts, NodeId, VectorId, VectorRows};
use omendex_params::{Params, Quantization};
use omendex_search::{CodeFit, CodeRows, Codes, TrainedCodes};

use crate::StoreError;
use crate::container::{FileKind, Reader, Section};
use crate::files::write_file_when;

mod labels;
mod quant;

pub(crate) use self::labels::{NEXT_ID, read_next_id};
use self::labels::{StoredLabels, read_labels};
use self::quant::{CODES, QUANT, quant_section, read_quant};

/// What a graph file may hold besides the graph: the caller's id of each node, which
/// nodes are deleted (a bitset, bit `i % 64` of word `i / 64` for node `i`), the next id, and
/// the 8-bit codes the index walks on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'a> {
    /// One id per node; no two live (not deleted) nodes share one.
    pub ids: Option<&'a [VectorId]>,
    /// `len.div_ceil(64)` words; bits past the last node are zero.
    pub deleted: Option<&'a [u64]>,
    /// The id the index hands out next, when it keeps one: at least one above every id in
    /// `ids` (or `len` without ids), and above every id it ever held, so ids dropped by a
    /// compaction are not handed out again after a reload.
    pub next_id: Option<VectorId>,
    /// The trained codes (format version 3), for parameters with quantization: a loader gets
    /// them back rather than training and encoding again, and a mapped open reads the code
    /// rows from the file. Their rows, when held, are one per node.
    pub codes: Option<&'a TrainedCodes>,
}

impl<'a> Labels<'a> {
    /// Ids only.
    pub fn ids(ids: &'a [VectorId]) -> Self {
        Labels { ids: Some(ids), ..Labels::default() }
    }
}

/// A graph read back from a file.
#[derive(Debug)]
pub struct StoredGraph {
    /// The parameters saved with it (`m` is the graph's).
    pub params: Params,
    /// The graph, checked ([`HnswGraph::check_invariants`] holds).
    pub graph: HnswGraph,
    /// The caller's id of each node, when saved with ids (no two live nodes share one).
    pub ids: Option<Vec<VectorId>>,
    /// The deleted-node bitset, when saved with one (see [`Labels`]).
    pub deleted: Option<Vec<u64>>,
    /// The next id, when saved with one (see [`Labels`]; version 1 files have none).
    pub next_id: Option<VectorId>,
    /// The trained codes, when saved with them (see [`Labels`]; files before version 3 have
    /// none). Their rows, when held, are one per node, mapped from the file by a mapped open.
    pub codes: Option<TrainedCodes>,
    /// The file's header checksum, which names this exact file.
    pub checksum: u64,
}

pub(crate) const META_LEN: usize = 80;

fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 0,
        Metric::InnerProduct => 1,
        Metric::Cosine => 2,
    }
}

fn metric_from_code(code: u32) -> Result<Metric, StoreError> {
    match code {
        0 => Ok(Metric::L2),
        1 => Ok(Metric::InnerProduct),
        2 => Ok(Metric::Cosine),
        c => Err(StoreError::Malformed(format!("unknown metric code {c}"))),
    }
}

fn quantization_code(q: Quantization) -> u32 {
    match q {
        Quantization::None => 0,
        Quantization::Int8 => 1,
    }
}

fn quantization_from_code(code: u32) -> Result<Quantization, StoreError> {
    match code {
        0 => Ok(Quantization::None),
        1 => Ok(Quantization::Int8),
        c => Err(StoreError::Malformed(format!("unknown quantization code {c}"))),
    }
}

/// Both graph files (at byte 40 of `meta`) and manifests (at byte 16) store the [`Params`]
/// as 32 bytes: metric `u32`, quantization `u32` (0 none, 1 int8; version 1 and 2 files wrote
/// 0 there, a reserved field), `ef_construction`, `ef_search` and seed as `u64`s (`m` is the
/// graph's own, stored with its shape).
pub(crate) fn put_params(params: &Params, out: &mut Vec<u8>) {
    out.extend_from_slice(&metric_code(params.metric).to_le_bytes());
    out.extend_from_slice(&quantization_code(params.quantization).to_le_bytes());
    for v in [params.ef_construction as u64, params.ef_search as u64, params.seed] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads the parameter block at byte `at` of `f`, checking every field; `m` is the graph's.
pub(crate) fn read_params(f: &Fields<'_>, at: usize, m: usize) -> Result<Params, StoreError> {
    let metric = metric_from_code(f.u32(at))?;
    let quantization = quantization_from_code(f.u32(at + 4))?;
    Ok(Params {
        quantization,
        metric,
        m,
        ef_construction: f.size(at + 8, "ef_construction", 1..=usize::MAX)?,
        ef_search: f.size(at + 16, "ef_search", 1..=usize::MAX)?,
        seed: f.u64(at + 24),
    })
}

/// Opens `path` for reading ([`open_regular`]: a FIFO or a device is refused before a byte is
/// read); returns it with its length.
pub(crate) fn open_file(path: &Path) -> Result<(File, u64), StoreError> {
    crate::files::open_regular(path)
}

pub(crate) struct Fields<'b>(pub(crate) &'b [u8]);

impl Fields<'_> {
    pub(crate) fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }
    pub(crate) fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }
    /// A count or size field that must fit a `usize` and lie in `range`.
    pub(crate) fn size(
        &self,
        at: usize,
        name: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, StoreError> {
        usize::try_from(self.u64(at))
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| StoreError::Malformed(format!("{name} = {} is out of range {range:?}", self.u64(at))))
    }
}

fn mul(parts: &[usize], what: &str) -> Result<usize, StoreError> {
    parts
        .iter()
        .try_fold(1usize, |acc, &p| acc.checked_mul(p))
        .ok_or_else(|| StoreError::Malformed(format!("{what} size overflows")))
}

/// Saves `graph` with `params` (whose `m` is the graph's) and `labels` to `path`, atomically: a crash during the save
/// leaves the previous file at `path` intact. Returns the new file's header checksum. Call it
/// while no writer changes the graph.
///
/// # Panics
/// If `labels` hold ids of another length than `graph.len()`, a bitset of another length
/// than `graph.len().div_ceil(64)`, or codes while `params` ask for no quantization, of
/// another dimension than the graph's or with another number of rows than `graph.len()`.
pub fn save_graph(path: &Path, params: &Params, graph: &HnswGraph, labels: Labels<'_>) -> Result<u64, StoreError> {
    save_graph_when(path, params, graph, labels, || Ok(()))
}

/// [`save_graph`] whose rename waits for `ready` (see [`write_file_when`]).
pub(crate) fn save_graph_when<G>(
    path: &Path,
    params: &Params,
    graph: &HnswGraph,
    labels: Labels<'_>,
    ready: impl FnOnce() -> Result<G, StoreError>,
) -> Result<u64, StoreError> {
    let n = graph.len();
    let Labels { ids, deleted, next_id, codes } = labels;
    if let Some(ids) = ids {
        assert_eq!(ids.len(), n, "one id per node");
    }
    if let Some(d) = deleted {
        assert_eq!(d.len(), n.div_ceil(64), "one bit per node");
    }
    let upper_words = graph.upper_words();
    let upper_rows = upper_words.len() / (1 + graph.m());
    let mut meta = Vec::with_capacity(META_LEN);
    for v in [graph.dim(), graph.stride(), graph.m(), n] {
        meta.extend_from_slice(&(v as u64).to_le_bytes());
    }
    meta.extend_from_slice(&graph.entry_point().map_or(u64::MAX, |e| u64::from(e.0)).to_le_bytes());
    put_params(params, &mut meta);
    meta.extend_from_slice(&(upper_rows as u64).to_le_bytes());
    debug_assert_eq!(meta.len(), META_LEN);

    let mut sections = vec![
        Section::bytes("meta", meta),
        Section::bytes("tops", graph.tops().iter().map(|t| t.0).collect()),
        Section::new("layer0", 4 * graph.layer0_words().len() as u64, |s| s.put_u32s(graph.layer0_words())),
        Section::new("upper", 4 * upper_words.len() as u64, move |s| s.put_u32s(upper_words)),
        Section::new("vectors", 4 * graph.vector_data().len() as u64, |s| {
            s.put_u32s(graph.vector_data().iter().map(|v| v.to_bits()))
        }),
    ];
    if let Some(trained) = codes {
        assert_ne!(params.quantization, Quantization::None, "codes saved without quantization");
        sections.push(Section::bytes(QUANT, quant_section(trained)));
        if let Some(c) = &trained.codes {
            assert_eq!((c.dim(), c.len()), (graph.dim(), n), "one code row per node, of the graph's dimension");
            sections.push(Section::new(CODES, c.data().len() as u64, |s| s.put(c.data())));
        }
    }
    if let Some(ids) = ids {
        sections.push(Section::new("ids", 8 * n as u64, move |s| {
            for chunk in ids.chunks(4096) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|id| id.0.to_le_bytes()).collect();
                s.put(&bytes)?;
            }
            Ok(())
        }));
    }
    if let Some(d) = deleted {
        sections.push(Section::bytes("deleted", d.iter().flat_map(|w| w.to_le_bytes()).collect()));
    }
    if let Some(next) = next_id {
        sections.push(Section::bytes(NEXT_ID, next.0.to_le_bytes().to_vec()));
    }
    write_file_when(path, FileKind::Graph, sections, ready)
}

/// Loads a graph file, verifying every checksum and the graph's structure.
pub fn load_graph(path: &Path) -> Result<StoredGraph, StoreError> {
    let (file, len) = open_file(path)?;
    read_graph(BufReader::with_capacity(1 << 20, file), len).map_err(|e| with_path(e, path))
}

/// [`load_graph`] from bytes in memory.
pub fn graph_from_bytes(bytes: &[u8]) -> Result<StoredGraph, StoreError> {
    read_graph(bytes, bytes.len() as u64)
}

pub(crate) fn with_path(e: StoreError, path: &Path) -> StoreError {
    match e {
        StoreError::Io { path: p, kind, message } if p.as_os_str().is_empty() => {
            StoreError::Io { path: path.to_path_buf(), kind, message }
        }
        other => other,
    }
}

/// What precedes the large sections of a graph file: parameters, sizes, top layers.
struct Head {
    params: Params,
    checksum: u64,
    dim: usize,
    stride: usize,
    m: usize,
    n: usize,
    entry: Option<NodeId>,
    upper_rows: usize,
    tops: Vec<Layer>,
}

impl Head {
    fn layer0_words(&self) -> Result<usize, StoreError> {
        mul(&[self.n, 1 + 2 * self.m], "layer0")
    }
    fn upper_words(&self) -> Result<usize, StoreError> {
        mul(&[self.upper_rows, 1 + self.m], "upper")
    }
    fn vector_floats(&self) -> Result<usize, StoreError> {
        mul(&[self.n, self.stride], "vectors")
    }
}

/// Reads the header, `meta` and `tops` of a graph file.
fn read_head<R: Read>(r: &mut Reader<R>) -> Result<Head, StoreError> {
    let checksum = r.info().header_checksum;
    if r.info().kind != FileKind::Graph {
        return Err(StoreError::WrongKind { expected: "graph", found: r.info().kind.name() });
    }
    let meta = r.read_vec("meta", META_LEN)?;
    let f = Fields(&meta);
    let dim = f.size(0, "dim", 1..=MAX_DIM)?;
    let stride = f.size(8, "stride", 1..=MAX_DIM + 16)?;
    if stride != dim.div_ceil(16) * 16 {
        return Err(StoreError::Malformed(format!("stride {stride} does not fit dimension {dim}")));
    }
    let m = f.size(16, "m", 2..=MAX_M)?;
    let n = f.size(24, "len", 0..=u32::MAX as usize - 2)?;
    let entry = match f.u64(32) {
        u64::MAX => None,
        e => Some(NodeId(u32::try_from(e).map_err(|_| StoreError::Malformed(format!("entry point {e}")))?)),
    };
    let params = read_params(&f, 40, m)?;
    let upper_rows = f.size(72, "upper rows", 0..=usize::MAX)?;
    let tops: Vec<Layer> = r.read_vec("tops", n)?.into_iter().map(Layer).collect();
    if tops.iter().map(|t| t.idx()).sum::<usize>() != upper_rows {
        return Err(StoreError::Malformed("upper row count does not match the top layers".into()));
    }
    Ok(Head { params, checksum, dim, stride, m, n, entry, upper_rows, tops })
}

/// Reads a graph file from a source of `len` bytes.
pub fn read_graph(src: impl Read, len: u64) -> Result<StoredGraph, StoreError> {
    let mut r = Reader::open(src, len)?;
    let h = read_head(&mut r)?;
    let layer0 = read_words(&mut r, "layer0", h.layer0_words()?)?;
    let upper = read_words(&mut r, "upper", h.upper_words()?)?;
    let floats = h.vector_floats()?;
    r.check_next("vectors", mul(&[floats, 4], "vectors")? as u64)?;
    let mut vectors =
        VectorRows::zeroed(floats).ok_or_else(|| StoreError::Malformed("vectors cannot be allocated".into()))?;
    r.read_into("vectors", vectors.as_bytes_mut())?;
    vectors.from_le_in_place();
    let codes = match read_quant(&mut r, &h)? {
        Some(head) => {
            let rows = match head.rows {
                Some((_, len)) => {
                    r.check_next(CODES, len)?;
                    let len = usize::try_from(len).map_err(|_| StoreError::Malformed("codes size overflows".into()))?;
                    let mut rows = CodeRows::zeroed(len)
                        .ok_or_else(|| StoreError::Malformed("codes cannot be allocated".into()))?;
                    r.read_into(CODES, rows.as_bytes_mut())?;
                    Some(rows)
                }
                None => None,
            };
            Some(head.with_rows(rows, h.n)?)
        }
        None => None,
    };
    let StoredLabels { ids, deleted, next_id } = read_labels(&mut r, h.n)?;
    let Head { params, checksum, dim, m, entry, tops, .. } = h;
    let graph = HnswGraph::from_parts(GraphParts { dim, m, tops, vectors, layer0, upper, entry })?;
    // The graph checked dimension and finiteness, which is all of the rule under cosine.
    if params.metric != Metric::Cosine {
        check_vectors(&graph, params.metric)?;
    }
    Ok(StoredGraph { params, graph, ids, deleted, next_id, codes, checksum })
}

/// The rule every vector meets on its way in ([`check_vector`]: finite values, and under l2
/// and ip a bounded norm), for every stored vector.
fn check_vectors(graph: &HnswGraph, metric: Metric) -> Result<(), StoreError> {
    for node in 0..graph.len() {
        let v = graph.vector(NodeId(node as u32));
        check_vector(metric, v, graph.dim()).map_err(|e| StoreError::Malformed(format!("vector {node} {e}")))?;
    }
    Ok(())
}

/// Opens a graph file in place: the vectors and links stay in the file, mapped into memory,
/// and the OS reads their pages when a search first touches them. Reads and verifies the
/// header, `meta`, `tops`, `ids` and `deleted`, the links (checksums and every structural
/// rule: one pass over them) and the code rows, mapped too (checksum and padding: one pass);
/// the vectors are neither read nor checksummed (a corrupt vector
/// can give wrong distances, never a panic; [`load_graph`] or `cargo xtask inspect` verify
/// them). Link changes stay in this process (copy-on-write), never reach the file.
///
/// The file must not be changed by anyone while it is open: a change shows through the
/// mapping, and truncating it makes reads of the lost pages fault. On big-endian machines
/// (the file is little-endian) this reads the file as [`load_graph`] does.
pub fn open_graph_mapped(path: &Path) -> Result<StoredGraph, StoreError> {
    if cfg!(target_endian = "big") {
        return load_graph(path);
    }
    open_mapped(path, Vectors::Unread).map_err(|e| with_path(e, path))
}

/// [`open_graph_mapped`] that also verifies the vectors as [`load_graph`] does (their checksum,
/// and the vector rule for each), through the mapping: what a file must pass before a manifest
/// names it, without holding it in memory.
pub(crate) fn verify_graph_mapped(path: &Path) -> Result<StoredGraph, StoreError> {
    if cfg!(target_endian = "big") {
        return load_graph(path);
    }
    open_mapped(path, Vectors::Verified).map_err(|e| with_path(e, path))
}

/// What a mapped open does with the vectors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vectors {
    /// Neither read nor checksummed (a search reads the rows it needs).
    Unread,
    /// Checksummed and each checked against the vector rule.
    Verified,
}

fn open_mapped(path: &Path, vectors_check: Vectors) -> Result<StoredGraph, StoreError> {
    let (file, len) = open_file(path)?;
    let mut r = Reader::open(BufReader::with_capacity(1 << 16, &file), len)?;
    let h = read_head(&mut r)?;
    let layer0 = r.skip("layer0", 4 * h.layer0_words()? as u64)?;
    let upper = r.skip("upper", 4 * h.upper_words()? as u64)?;
    let vectors = r.skip("vectors", 4 * h.vector_floats()? as u64)?;
    let quant = match read_quant(&mut r, &h)? {
        Some(head) => {
            let rows = match head.rows {
                Some((_, len)) => Some(r.skip(CODES, len)?),
                None => None,
            };
            Some((head, rows))
        }
        None => None,
    };
    let StoredLabels { ids, deleted, next_id } = read_labels(&mut r, h.n)?;

    // A section mapped by `map` (none when empty), its checksum verified: one pass over it.
    type Map = fn(&std::fs::File, u64, u64) -> std::io::Result<FileMap>;
    let checked = |s: &crate::SectionInfo, map: Map| -> Result<Option<FileMap>, StoreError> {
        if s.len == 0 {
            return Ok(None);
        }
        let map = map(&file, s.offset, s.len).map_err(|e| StoreError::io(path, &e))?;
        if xxhash_rust::xxh3::xxh3_64(map.as_bytes()) != s.checksum {
            return Err(StoreError::ChecksumMismatch { section: s.tag.clone() });
        }
        Ok(Some(map))
    };
    let (layer0, upper) = (checked(&layer0, FileMap::copy_on_write)?, checked(&upper, FileMap::copy_on_write)?);
    let vectors = match (vectors.len, vectors_check) {
        (0, _) => None,
        (_, Vectors::Verified) => checked(&vectors, FileMap::read_only)?,
        (len, Vectors::Unread) => {
            Some(FileMap::read_only(&file, vectors.offset, len).map_err(|e| StoreError::io(path, &e))?)
        }
    };
    let codes = match quant {
        Some((head, rows)) => {
            let rows = match rows.map(|s| checked(&s, FileMap::read_only)).transpose()? {
                Some(Some(map)) => Some(
                    CodeRows::mapped(map)
                        .ok_or_else(|| StoreError::Malformed("codes not on a 64-byte boundary".into()))?,
                ),
                Some(None) => CodeRows::zeroed(0),
                None => None,
            };
            Some(head.with_rows(rows, h.n)?)
        }
        None => None,
    };
    if let (Some(map), Some(TrainedCodes { codes: Some(_), .. })) = (&vectors, &codes) {
        // A search on codes reads a vector only to re-rank a candidate: rows one at a time,
        // in no order. Without this hint each page fault reads the pages around it too
        // (measured on 50,000 rows of 384 dimensions, file not cached: after 100 queries 90 MB
        // resident against 48 MB with it). A walk on the vectors keeps the OS's read-ahead,
        // which fills a cold cache faster. A hint: a failure changes nothing but that.
        let _ = map.advise_random();
    }
    let Head { params, checksum, dim, m, entry, tops, .. } = h;
    let graph = HnswGraph::from_mapped(MappedParts { dim, m, tops, vectors, layer0, upper, entry })?;
    if vectors_check == Vectors::Verified {
        check_vectors(&graph, params.metric)?;
    }
    Ok(StoredGraph { params, graph, ids, deleted, next_id, codes, checksum })
}

fn read_words<R: Read>(r: &mut Reader<R>, tag: &str, words: usize) -> Result<Vec<u32>, StoreError> {
    r.check_next(tag, mul(&[words, 4], tag)? as u64)?;
    let mut v: Vec<u32> = crate::container::zeroed(words, tag)?;
    r.read_into(tag, bytemuck::cast_slice_mut(&mut v))?;
    if cfg!(target_endian = "big") {
        v.iter_mut().for_each(|w| *w = u32::from_le(*w));
    }
    Ok(v)
}
