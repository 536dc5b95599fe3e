//! The index's key hash: a seeded folded-multiply hash (64-bit words multiplied into 128 bits,
//! halves xored), fast on short keys. The seed is random per open, so a client cannot aim keys
//! at one bucket chain.

const MULTIPLIER_WORD: u64 = 0x9E37_79B9_7F4A_7C15;
const MULTIPLIER_FINAL: u64 = 0xD6E8_FEB8_6659_FD93;

fn fold(left: u64, right: u64) -> u64 {
    let product = (left as u128) * (right as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

pub(crate) fn hash_key(seed: u64, key: &[u8]) -> u64 {
    let mut state = seed ^ (key.len() as u64).wrapping_mul(MULTIPLIER_FINAL);
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        state = fold(state ^ word, MULTIPLIER_WORD);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut padded = [0u8; 8];
        padded[..tail.len()].copy_from_slice(tail);
        state = fold(state ^ u64::from_le_bytes(padded), MULTIPLIER_WORD);
    }
    fold(state ^ seed.rotate_left(32), MULTIPLIER_FINAL)
}

/// A random seed for a new store (std's per-process random keys).
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5EED_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_keys_spread_over_buckets_and_tags() {
        let seed = 42;
        let keys = 1 << 16;
        let buckets: HashSet<u64> = (0..keys)
            .map(|i| hash_key(seed, format!("key:{i}").as_bytes()) & 0xFFFF)
            .collect();
        // A uniform hash fills about 1 - 1/e of the buckets.
        assert!(
            buckets.len() > keys * 6 / 10,
            "{} buckets used",
            buckets.len()
        );
        let tags: HashSet<u64> = (0..keys)
            .map(|i| hash_key(seed, format!("key:{i}").as_bytes()) >> 52)
            .collect();
        assert_eq!(tags.len(), 4096);
        assert_ne!(hash_key(1, b"a"), hash_key(2, b"a"));
        assert_ne!(hash_key(1, b"a"), hash_key(1, b"a\0"));
    }
}
