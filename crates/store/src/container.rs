//! The container: header, section table, aligned checksummed sections.
//!
//! ```text
//! 0   magic "OMENHNSW" | version u32 | kind u32 | section count u32 | reserved u32 (0)
//! 24  header checksum u64: xxh3-64 of bytes 0..24 and the section table
//! 32  section table: per section, tag [u8; 8] | offset u64 | length u64 | xxh3-64 u64
//! ..  sections in table order, each at the next multiple of 64, zero bytes between
//! ```
//! All integers are little-endian. The file ends where its last section ends. See
//! `docs/format.md` for the sections of each kind.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::StoreError;

/// The first eight bytes of every omendex file.
pub const MAGIC: [u8; 8] = *b"OMENHNSW";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build reads (version 1 files have no `nextid` section).
pub const OLDEST_READ_VERSION: u32 = 1;

const HEADER_LEN: u64 = 32;
const ENTRY_LEN: u64 = 32;
const ALIGN: u64 = 64;
const MAX_SECTIONS: u32 = 16;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// One graph, its settings and optionally the caller ids of its nodes.
    Graph,
    /// A segmented index's manifest: its settings and its segment files.
    Manifest,
}

impl FileKind {
    fn code(self) -> u32 {
        match self {
            FileKind::Graph => 1,
            FileKind::Manifest => 2,
        }
    }

    fn from_code(code: u32) -> Option<FileKind> {
        match code {
            1 => Some(FileKind::Graph),
            2 => Some(FileKind::Manifest),
            _ => None,
        }
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Graph => "graph",
            FileKind::Manifest => "manifest",
        }
    }
}

/// One entry of a file's section table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    /// The section's tag.
    pub tag: String,
    /// Where its bytes start.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// xxh3-64 of its bytes.
    pub checksum: u64,
}

/// A file's header and section table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The format version.
    pub version: u32,
    /// What the file holds.
    pub kind: FileKind,
    /// The sections, in file order.
    pub sections: Vec<SectionInfo>,
    /// The header checksum: it names this exact file (a manifest records its segments' ones).
    pub header_checksum: u64,
    /// The file's length in bytes.
    pub file_len: u64,
}

/// `x` rounded up to a multiple of [`ALIGN`]; `None` past `u64::MAX`.
fn align(x: u64) -> Option<u64> {
    x.checked_next_multiple_of(ALIGN)
}

/// `len` zeroed values, or an error naming `what` when the memory cannot be had: sizes read
/// from a file never abort the process.
pub(crate) fn zeroed<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>, StoreError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| StoreError::Malformed(format!("{what}: {len} values cannot be allocated")))?;
    v.resize(len, T::default());
    Ok(v)
}

fn tag_bytes(tag: &str) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..tag.len()].copy_from_slice(tag.as_bytes());
    t
}

fn tag_name(t: &[u8; 8]) -> String {
    let end = t.iter().position(|&b| b == 0).unwrap_or(8);
    String::from_utf8_lossy(&t[..end]).into_owned()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where a section's bytes go while it is written: counted and hashed on the way.
pub(crate) struct Sink<'w> {
    out: &'w mut dyn Write,
    hasher: Xxh3,
    written: u64,
}

impl Sink<'_> {
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Writes `words` as little-endian `u32`s.
    pub(crate) fn put_u32s(&mut self, words: impl Iterator<Item = u32>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 << 14);
        for w in words {
            buf.extend_from_slice(&w.to_le_bytes());
            if buf.len() == buf.capacity() {
                self.put(&buf)?;
                buf.clear();
            }
        }
        self.put(&buf)
    }
}

type Fill<'a> = Box<dyn FnOnce(&mut Sink<'_>) -> io::Result<()> + 'a>;

/// A section to write: its tag, its exact length, and what writes its bytes.
pub(crate) struct Section<'a> {
    tag: [u8; 8],
    len: u64,
    fill: Fill<'a>,
}

impl<'a> Section<'a> {
    pub(crate) fn new(tag: &str, len: u64, fill: impl FnOnce(&mut Sink<'_>) -> io::Result<()> + 'a) -> Self {
        debug_assert!(!tag.is_empty() && tag.len() <= 8 && tag.is_ascii());
        Section { tag: tag_bytes(tag), len, fill: Box::new(fill) }
    }

    pub(crate) fn bytes(tag: &str, bytes: Vec<u8>) -> Self {
        Section::new(tag, bytes.len() as u64, move |s| s.put(&bytes))
    }
}

pub(crate) fn write_to(tmp: &Path, kind: FileKind, sections: Vec<Section<'_>>) -> Result<u64, StoreError> {
    let io_err = |e: io::Error| StoreError::io(tmp, &e);
    assert!(!sections.is_empty() && sections.len() <= MAX_SECTIONS as usize, "a file has 1..=16 sections");
    let file = File::options().write(true).create_new(true).open(tmp).map_err(io_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);

    // Lay the sections out, then write a placeholder header and table.
    let table_end = HEADER_LEN + ENTRY_LEN * sections.len() as u64;
    let mut offsets = Vec::with_capacity(sections.len());
    let mut end = table_end;
    for s in &sections {
        let offset = align(end).expect("sections held in memory end far below u64::MAX");
        offsets.push(offset);
        end = offset + s.len;
    }
    out.write_all(&vec![0u8; table_end as usize]).map_err(io_err)?;

    let mut pos = table_end;
    let mut table = Vec::with_capacity(sections.len() * ENTRY_LEN as usize);
    for (s, &offset) in sections.into_iter().zip(&offsets) {
        out.write_all(&vec![0u8; (offset - pos) as usize]).map_err(io_err)?;
        let mut sink = Sink { out: &mut out, hasher: Xxh3::new(), written: 0 };
        (s.fill)(&mut sink).map_err(io_err)?;
        assert_eq!(sink.written, s.len, "section {} wrote a different length than declared", tag_name(&s.tag));
        let checksum = sink.hasher.digest();
        table.extend_from_slice(&s.tag);
        table.extend_from_slice(&offset.to_le_bytes());
        table.extend_from_slice(&s.len.to_le_bytes());
        table.extend_from_slice(&checksum.to_le_bytes());
        pos = offset + s.len;
    }

    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&kind.code().to_le_bytes());
    header.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let header_checksum = header_checksum(&header, &table);
    header.extend_from_slice(&header_checksum.to_le_bytes());

    let mut file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    file.write_all(&header).map_err(io_err)?;
    file.write_all(&table).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(header_checksum)
}

fn header_checksum(header24: &[u8], table: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&header24[..24]);
    h.update(table);
    h.digest()
}

/// Reads a file's sections in order from any byte source of known length, verifying each
/// section's checksum and the zero padding between sections.
pub(crate) struct Reader<R> {
    src: R,
    pos: u64,
    info: FileInfo,
    next: usize,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header and section table of a `file_len`-byte source.
    pub(crate) fn open(mut src: R, file_len: u64) -> Result<Self, StoreError> {
        let mut header = [0u8; HEADER_LEN as usize];
        let got = read_up_to(&mut src, &mut header)?;
        if got < 8 || header[..8] != MAGIC {
            if got < 8 && MAGIC.starts_with(&header[..got]) && got > 0 {
                return Err(StoreError::Truncated { expected: HEADER_LEN, actual: file_len });
            }
            return Err(StoreError::NotAnIndexFile);
        }
        if got < 12 {
            return Err(StoreError::Truncated { expected: HEADER_LEN, actual: file_len });
        }
        let version = le_u32(&header, 8);
        if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(StoreError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        if (got as u64) < HEADER_LEN {
            return Err(StoreError::Truncated { expected: HEADER_LEN, actual: file_len });
        }
        let count = le_u32(&header, 16);
        if count == 0 || count > MAX_SECTIONS {
            return Err(StoreError::Malformed(format!("{count} sections (1..={MAX_SECTIONS} allowed)")));
        }
        let table_end = HEADER_LEN + ENTRY_LEN * u64::from(count);
        let mut table = vec![0u8; (ENTRY_LEN * u64::from(count)) as usize];
        if read_up_to(&mut src, &mut table)? < table.len() {
            return Err(StoreError::Truncated { expected: table_end, actual: file_len });
        }
        let header_checksum = le_u64(&header, 24);
        if header_checksum != self::header_checksum(&header, &table) {
            return Err(StoreError::ChecksumMismatch { section: "header".into() });
        }
        let kind = FileKind::from_code(le_u32(&header, 12))
            .ok_or_else(|| StoreError::Malformed(format!("unknown file kind {}", le_u32(&header, 12))))?;
        if le_u32(&header, 20) != 0 {
            return Err(StoreError::Malformed("reserved header field is not zero".into()));
        }

        let mut sections = Vec::with_capacity(count as usize);
        let mut end = table_end;
        for e in table.chunks_exact(ENTRY_LEN as usize) {
            let tag: [u8; 8] = e[..8].try_into().expect("8 bytes");
            let (offset, len, checksum) = (le_u64(e, 8), le_u64(e, 16), le_u64(e, 24));
            let name = tag_name(&tag);
            let expected = align(end)
                .ok_or_else(|| StoreError::Malformed(format!("section `{name}` starts past the largest file")))?;
            if offset != expected {
                return Err(StoreError::Malformed(format!("section `{name}` at {offset}, expected {expected}")));
            }
            end = offset
                .checked_add(len)
                .ok_or_else(|| StoreError::Malformed(format!("section `{name}` length {len} overflows")))?;
            sections.push(SectionInfo { tag: name, offset, len, checksum });
        }
        if file_len < end {
            return Err(StoreError::Truncated { expected: end, actual: file_len });
        }
        if file_len > end {
            return Err(StoreError::Malformed(format!("{} bytes after the last section", file_len - end)));
        }
        let info = FileInfo { version, kind, sections, header_checksum, file_len };
        Ok(Reader { src, pos: table_end, info, next: 0 })
    }

    pub(crate) fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next section's tag and length, if any is left.
    pub(crate) fn peek(&self) -> Option<&SectionInfo> {
        self.info.sections.get(self.next)
    }

    /// Reads the next section, which must be `tag` and exactly `buf.len()` bytes long, into
    /// `buf`, and checks its checksum.
    pub(crate) fn read_into(&mut self, tag: &str, buf: &mut [u8]) -> Result<(), StoreError> {
        let s = self.check_next(tag, buf.len() as u64)?.clone();
        let mut pad = vec![0u8; (s.offset - self.pos) as usize];
        self.read_exact(&mut pad)?;
        if pad.iter().any(|&b| b != 0) {
            return Err(StoreError::Malformed(format!("non-zero padding before section `{tag}`")));
        }
        self.read_exact(buf)?;
        if xxh3_64(buf) != s.checksum {
            return Err(StoreError::ChecksumMismatch { section: s.tag });
        }
        self.pos = s.offset + s.len;
        self.next += 1;
        Ok(())
    }

    /// Checks that the next section is `tag` and `len` bytes long, before a buffer is allocated
    /// for it (a length from a corrupt file must not decide an allocation unchecked).
    pub(crate) fn check_next(&self, tag: &str, len: u64) -> Result<&SectionInfo, StoreError> {
        let s = self.peek().ok_or_else(|| StoreError::Malformed(format!("section `{tag}` is missing")))?;
        if s.tag != tag {
            return Err(StoreError::Malformed(format!("expected section `{tag}`, found `{}`", s.tag)));
        }
        if s.len != len {
            return Err(StoreError::Malformed(format!("section `{tag}` is {} bytes, expected {len}", s.len)));
        }
        Ok(s)
    }

    /// Reads the next section, `tag`, which must be `len` bytes.
    pub(crate) fn read_vec(&mut self, tag: &str, len: usize) -> Result<Vec<u8>, StoreError> {
        self.check_next(tag, len as u64)?;
        let mut buf = zeroed(len, tag)?;
        self.read_into(tag, &mut buf)?;
        Ok(buf)
    }

    /// Passes over the next section, `tag`, which must be `len` bytes, without reading it (its
    /// checksum is the caller's to verify); returns its table entry.
    pub(crate) fn skip(&mut self, tag: &str, len: u64) -> Result<SectionInfo, StoreError>
    where
        R: Seek,
    {
        let s = self.check_next(tag, len)?.clone();
        let end = s.offset + s.len;
        self.src.seek(SeekFrom::Start(end)).map_err(|e| StoreError::Io {
            path: PathBuf::new(),
            kind: e.kind(),
            message: e.to_string(),
        })?;
        self.pos = end;
        self.next += 1;
        Ok(s)
    }

    /// Fails unless every section was read.
    pub(crate) fn finish(&self) -> Result<(), StoreError> {
        match self.peek() {
            Some(s) => Err(StoreError::Malformed(format!("unexpected section `{}`", s.tag))),
            None => Ok(()),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        let got = read_up_to(&mut self.src, buf)?;
        if got < buf.len() {
            let actual = self.pos + got as u64;
            return Err(StoreError::Truncated { expected: self.info.file_len, actual });
        }
        Ok(())
    }
}

/// Fills `buf` as far as the source allows; returns how many bytes were read.
fn read_up_to(src: &mut impl Read, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(StoreError::Io { path: PathBuf::new(), kind: e.kind(), message: e.to_string() });
            }
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_file;
    use std::fs;

    #[test]
    fn an_allocation_that_cannot_be_had_is_an_error() {
        assert!(matches!(zeroed::<u32>(usize::MAX / 2, "links"), Err(StoreError::Malformed(m)) if m.contains("links")));
        assert_eq!(zeroed::<u32>(3, "links"), Ok(vec![0, 0, 0]));
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }

    /// A save that fails half-way (here: a section's writer fails after some bytes, as a full
    /// disk would) leaves the previous file as it was and no temporary file behind.
    #[test]
    fn a_failed_save_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.omen");
        write_file(&path, FileKind::Graph, vec![Section::bytes("a", vec![1, 2, 3])]).unwrap();
        let before = fs::read(&path).unwrap();

        let failing = Section::new("a", 1 << 20, |s| {
            s.put(&[7; 1000])?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        });
        let err = write_file(&path, FileKind::Graph, vec![Section::bytes("b", vec![9; 100]), failing]).unwrap_err();
        assert!(matches!(err, StoreError::Io { kind: io::ErrorKind::StorageFull, .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(files_in(dir.path()), ["x.omen"]);

        let r = Reader::open(before.as_slice(), before.len() as u64).unwrap();
        assert_eq!(r.info().sections[0].len, 3);
    }
}
