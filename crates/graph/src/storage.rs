//! Where a graph's link words live: on the heap, or in a memory-mapped index file (its vectors
//! live in an [`AlignedBuffer`](crate::AlignedBuffer)).
//!
//! A mapped graph ([`crate::HnswGraph::from_mapped`]) reads its vectors and links straight from
//! the file's pages, which the OS loads on first touch. Link words may still be rewritten (the
//! links are mapped copy-on-write: changes stay in this process, never reach the file). The
//! first call that grows the graph copies the arrays to the heap.

use crate::sync::AtomicU32;
#[cfg(not(loom))]
use crate::sync::Ordering;

/// Link words.
pub(crate) enum Words {
    Heap(Vec<AtomicU32>),
    // Not under loom: a mapping is viewed as std atomics.
    #[cfg(not(loom))]
    Mapped(mapped::MappedWords),
}

impl Words {
    /// A writable (copy-on-write) mapped region as words, or `None` when it is not whole,
    /// aligned 4-byte words. Under loom the words are copied into model atomics.
    pub(crate) fn mapped(map: memmap2::MmapMut) -> Option<Words> {
        #[cfg(not(loom))]
        return mapped::MappedWords::new(map).map(Words::Mapped);
        #[cfg(loom)]
        return bytemuck::try_cast_slice::<u8, u32>(&map[..])
            .ok()
            .map(|w| Words::Heap(w.iter().map(|&v| AtomicU32::new(v)).collect()));
    }

    pub(crate) fn is_mapped(&self) -> bool {
        match self {
            Words::Heap(_) => false,
            #[cfg(not(loom))]
            Words::Mapped(_) => true,
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[AtomicU32] {
        match self {
            Words::Heap(v) => v,
            #[cfg(not(loom))]
            Words::Mapped(m) => m.words(),
        }
    }

    /// The words as a growable vector: mapped words are copied to the heap first.
    pub(crate) fn heap(&mut self) -> &mut Vec<AtomicU32> {
        #[cfg(not(loom))]
        if let Words::Mapped(m) = self {
            *self = Words::Heap(m.words().iter().map(|w| AtomicU32::new(w.load(Ordering::Relaxed))).collect());
        }
        match self {
            Words::Heap(v) => v,
            #[cfg(not(loom))]
            Words::Mapped(_) => unreachable!("copied to the heap above"),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Words::Heap(v) => v.capacity() * size_of::<AtomicU32>(),
            #[cfg(not(loom))]
            Words::Mapped(_) => 0,
        }
    }
}

#[cfg(not(loom))]
pub(crate) mod mapped {
    //! The one place a mapped region is viewed as atomics.
    #![allow(unsafe_code)]

    use std::ptr::NonNull;
    use std::sync::atomic::AtomicU32;

    /// A writable (copy-on-write) mapping viewed as `AtomicU32`s, owned like a `Box<[AtomicU32]>`.
    pub(crate) struct MappedWords {
        // Keeps the mapping alive; never touched again except through `ptr`.
        _map: memmap2::MmapMut,
        ptr: NonNull<AtomicU32>,
        len: usize,
    }

    // SAFETY: `MappedWords` owns its mapping exclusively and only hands out `&[AtomicU32]`,
    // which is `Send + Sync`: it is as thread-safe as the `Box<[AtomicU32]>` it stands for.
    unsafe impl Send for MappedWords {}
    // SAFETY: as above; all access goes through atomic operations.
    unsafe impl Sync for MappedWords {}

    impl MappedWords {
        /// Views `map` as words, or `None` when its length is not a multiple of 4 or its start
        /// is not 4-byte aligned.
        pub(crate) fn new(mut map: memmap2::MmapMut) -> Option<MappedWords> {
            let len = bytemuck::try_cast_slice_mut::<u8, u32>(&mut map[..]).ok()?.len();
            // Derived from the mapping's unique `&mut`, so writes through it are allowed; the
            // mapping's own pointer does not move when `map` moves into the struct.
            let ptr = NonNull::new(map.as_mut_ptr().cast::<AtomicU32>()).unwrap_or(NonNull::dangling());
            Some(MappedWords { _map: map, ptr, len })
        }

        #[inline]
        pub(crate) fn words(&self) -> &[AtomicU32] {
            // SAFETY: `ptr` points to `len` initialised, 4-byte aligned words (checked in `new`)
            // of a writable mapping that lives as long as `self` and is accessed only through
            // this view; `AtomicU32` has the size, alignment (4) and bit validity of `u32`.
            // An empty map gives a dangling, aligned pointer, valid for a zero-length slice.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::Ordering;

        #[test]
        fn mapped_words_read_and_write_like_atomics() {
            let mut map = memmap2::MmapMut::map_anon(64).unwrap();
            map[4..8].copy_from_slice(&7u32.to_ne_bytes());
            let w = MappedWords::new(map).unwrap();
            assert_eq!(w.words().len(), 16);
            assert_eq!(w.words()[1].load(Ordering::Relaxed), 7);
            w.words()[2].store(9, Ordering::Relaxed);
            assert_eq!(w.words()[2].load(Ordering::Relaxed), 9);
            std::thread::scope(|s| {
                s.spawn(|| w.words()[3].fetch_add(1, Ordering::Relaxed));
            });
            assert_eq!(w.words()[3].load(Ordering::Relaxed), 1);
        }

        #[test]
        fn a_length_that_is_not_whole_words_is_refused() {
            assert!(MappedWords::new(memmap2::MmapMut::map_anon(6).unwrap()).is_none());
        }
    }
}
