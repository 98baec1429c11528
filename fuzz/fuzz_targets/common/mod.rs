#![allow(dead_code)]
//! What the fuzz targets share: rewriting an omendex file's checksums so that mutated bytes pass
//! them, and a scratch folder per process.

use std::path::PathBuf;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// Rewrites every section checksum and the header checksum of the omendex file in `bytes` (as far
/// as its table can be read), so the checks behind the checksums are reached.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < 32 {
        return;
    }
    let count = u32::from_le_bytes(bytes[16..20].try_into().unwrap()).min(16) as usize;
    let table_end = 32 + 32 * count;
    if bytes.len() < table_end {
        return;
    }
    for i in 0..count {
        let e = 32 + 32 * i;
        let offset = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap());
        let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap());
        if let Some(end) = offset.checked_add(len).filter(|&end| end <= bytes.len() as u64) {
            let sum = xxh3_64(&bytes[offset as usize..end as usize]);
            bytes[e + 24..e + 32].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let mut h = Xxh3::new();
    h.update(&bytes[..24]);
    h.update(&bytes[32..table_end]);
    let sum = h.digest();
    bytes[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// A folder of this process's own under the system's temporary folder (libFuzzer may run
/// several processes at once).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omendex-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
