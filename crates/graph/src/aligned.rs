//! [`AlignedBuffer`]: the one home of a buffer of 64-byte blocks that lives on the heap or in a
//! mapped file region, used for a graph's vectors and for the 8-bit codes beside them.

use bytemuck::Pod;

use crate::FileMap;

/// Blocks of `T` (a plain 64-byte-aligned block: `wide::f32x16`, a line of 64 code bytes) on
/// the heap, or read from a mapped file region, which the first change copies to the heap.
pub struct AlignedBuffer<T>(Store<T>);

enum Store<T> {
    Heap(Vec<T>),
    // Invariant: its length a multiple of `size_of::<T>()` and its start aligned for `T`
    // (checked by `AlignedBuffer::mapped`).
    Mapped(FileMap),
}

impl<T: Pod> AlignedBuffer<T> {
    /// An empty buffer on the heap.
    pub fn new() -> Self {
        AlignedBuffer(Store::Heap(Vec::new()))
    }

    /// `blocks`, on the heap.
    pub fn from_vec(blocks: Vec<T>) -> Self {
        AlignedBuffer(Store::Heap(blocks))
    }

    /// `n` zeroed blocks on the heap; `None` when they cannot be allocated.
    pub fn zeroed(n: usize) -> Option<Self> {
        try_zeroed(n).map(AlignedBuffer::from_vec)
    }

    /// A mapped region as blocks; `None` when its length is not a whole number of blocks or its
    /// start is not aligned for them (an index file's sections start on 64-byte boundaries).
    pub fn mapped(map: FileMap) -> Option<Self> {
        bytemuck::try_cast_slice::<u8, T>(map.as_bytes()).ok()?;
        Some(AlignedBuffer(Store::Mapped(map)))
    }

    /// The blocks.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Store::Heap(v) => v,
            // The invariant makes the cast succeed.
            Store::Mapped(map) => bytemuck::cast_slice(map.as_bytes()),
        }
    }

    /// The blocks as bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self.as_slice())
    }

    /// The blocks as a growable vector: a mapped region is copied to the heap first.
    pub fn heap(&mut self) -> &mut Vec<T> {
        if let Store::Mapped(map) = &self.0 {
            self.0 = Store::Heap(bytemuck::cast_slice(map.as_bytes()).to_vec());
        }
        match &mut self.0 {
            Store::Heap(v) => v,
            Store::Mapped(_) => unreachable!("copied to the heap above"),
        }
    }

    /// Whether the blocks are read from a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Store::Mapped(_))
    }

    /// Bytes of heap held (capacity; none while mapped).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Store::Heap(v) => v.capacity() * size_of::<T>(),
            Store::Mapped(_) => 0,
        }
    }
}

impl<T: Pod> Default for AlignedBuffer<T> {
    fn default() -> Self {
        AlignedBuffer::new()
    }
}

impl<T: Pod> Clone for AlignedBuffer<T> {
    /// A copy on the heap (of a mapped region too).
    fn clone(&self) -> Self {
        AlignedBuffer::from_vec(self.as_slice().to_vec())
    }
}

impl<T: Pod> std::fmt::Debug for AlignedBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.as_bytes().len();
        f.debug_struct("AlignedBuffer").field("bytes", &bytes).field("mapped", &self.is_mapped()).finish()
    }
}

/// `n` zeroed blocks, or `None` when they cannot be allocated (a size read from a file must not
/// abort the process).
pub(crate) fn try_zeroed<T: Pod>(n: usize) -> Option<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, T::zeroed());
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_mapped_buffer_is_read_in_place_and_copied_on_the_first_change() {
        use std::io::Write;
        let mut file = tempfile_in_target();
        let bytes: Vec<u8> = (0..128u32).map(|i| i as u8).collect();
        file.write_all(&bytes).unwrap();
        let map = FileMap::read_only(&file, 0, 128).unwrap();
        let mut buf = AlignedBuffer::<wide::f32x16>::mapped(map).unwrap();
        assert!(buf.is_mapped() && buf.heap_bytes() == 0);
        assert_eq!(buf.as_bytes(), &bytes[..]);
        buf.heap().push(wide::f32x16::ZERO);
        assert!(!buf.is_mapped());
        assert_eq!(&buf.as_bytes()[..128], &bytes[..]);
        assert_eq!(buf.as_slice().len(), 3);
        let short = FileMap::read_only(&file, 0, 96).unwrap();
        assert!(AlignedBuffer::<wide::f32x16>::mapped(short).is_none(), "not a whole number of blocks");
    }

    /// A fresh, unlinked file (the crate has no temp-file dependency).
    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("omendex-aligned-{}", std::process::id()));
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
