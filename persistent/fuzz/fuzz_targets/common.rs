//! What both fuzz targets do to a closed store file and ask of the store reopened on it.
use persistent::Store;
use std::path::{Path, PathBuf};

/// The store's superblock, left intact: the targets damage segments, not the geometry.
pub const SUPERBLOCK_BYTES: usize = 4096;

/// A scratch file for `target` in this process, in memory when /dev/shm exists.
pub fn path(target: &str) -> PathBuf {
    let directory = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    directory.join(format!("ferrite-fuzz-{target}-{}", std::process::id()))
}

/// Flips, overwrites and zeroes bytes after the superblock of the file at `path`, which is
/// `file_bytes` long: each four bytes of `damage` are a position (two bytes), a mode and a value.
pub fn damage_file(path: &Path, file_bytes: usize, damage: &[u8]) {
    let mut bytes = std::fs::read(path).expect("read back");
    for chunk in damage.chunks(4) {
        let &[high, low, mode, value] = chunk else {
            break;
        };
        let position = SUPERBLOCK_BYTES
            + (u16::from_le_bytes([low, high]) as usize) % (file_bytes - SUPERBLOCK_BYTES);
        match mode % 3 {
            0 => bytes[position] ^= value,
            1 => bytes[position] = value,
            _ => bytes[position..(position + value as usize).min(file_bytes)].fill(0),
        }
    }
    std::fs::write(path, &bytes).expect("write damaged");
}

/// Every key a full scan yields, after checking that the scan and iteration each yield
/// exactly as many items as the index counts.
pub fn scan_all(store: &mut Store, now_ms: u64) -> Vec<Vec<u8>> {
    let count = store.len();
    let mut scanned = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = store.scan(cursor, 8, now_ms, |key| scanned.push(key.to_vec()));
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(scanned.len(), count);
    assert_eq!(
        store.items(now_ms).count(),
        count,
        "iteration yields exactly the indexed items"
    );
    scanned
}
