//! Hot keys: a count-min sketch over a random sample of key accesses, and the few keys with the
//! highest estimates.
//!
//! Each shard keeps its own [`HotKeys`] for the keys it owns (a key is counted by its owner, so
//! the shards' lists never overlap and merging them is a sort). One access in
//! [`SAMPLE_ONE_IN`] on average is sampled (a random gap, so periodic access patterns do not
//! alias with the sampling); a sampled key adds one to its [`SKETCH_DEPTH`] counters with the
//! conservative update (only the counters equal to the key's minimum grow), and the key enters
//! the top list when its estimate beats the list's smallest.
//!
//! Error bounds (Cormode and Muthukrishnan, 2005): with `N` samples since the last decay, a
//! key's estimate is never below its true sample count and exceeds it by more than
//! `e / SKETCH_WIDTH * N` (0.13 % of `N`) with probability at most `e^-SKETCH_DEPTH` (1.8 %).
//! Reported counts are estimates of accesses: samples times [`SAMPLE_ONE_IN`], so they also
//! carry the sampling's binomial error (about `sqrt(count * SAMPLE_ONE_IN)`). Every
//! [`DECAY_SAMPLES`] samples all counts halve, so the list follows the recent workload.
//!
//! Memory per shard: the sketch is `SKETCH_DEPTH * SKETCH_WIDTH * 4` bytes (32 KiB), the list
//! at most [`TOP_KEYS`] keys of at most [`KEY_BYTES_TRACKED_MAX`] bytes each (8 KiB).

/// Rows of the sketch: each row is one independent hash of the key.
pub const SKETCH_DEPTH: usize = 4;
/// Counters per row (a power of two, so a hash is reduced by a mask).
pub const SKETCH_WIDTH: usize = 2048;
/// Keys kept in a shard's top list.
pub const TOP_KEYS: usize = 32;
/// On average one access in this many is sampled.
pub const SAMPLE_ONE_IN: u64 = 8;
/// Bytes of a key kept in the top list; longer keys are kept by this prefix (and counted as
/// one key with any other key that shares it).
pub const KEY_BYTES_TRACKED_MAX: usize = 256;
/// Samples after which every count halves.
pub const DECAY_SAMPLES: u64 = 1 << 20;

const _: () = assert!(SKETCH_WIDTH.is_power_of_two());
const _: () = assert!(SAMPLE_ONE_IN >= 1);

/// One key of the top list and its estimated access count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotKey {
    pub key: Vec<u8>,
    /// Estimated accesses since the last decay (samples × the sampling rate).
    pub accesses: u64,
}

/// One shard's sketch and top list.
pub struct HotKeys {
    counters: Box<[u32]>,
    /// The key's first hash (compared before the key's bytes), the key, its estimate.
    top: Vec<(u64, Box<[u8]>, u32)>,
    sample_one_in: u64,
    /// Accesses still to skip before the next sample.
    skip: u64,
    samples: u64,
    random_state: u64,
}

impl std::fmt::Debug for HotKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HotKeys")
            .field("top", &self.top.len())
            .field("samples", &self.samples)
            .finish()
    }
}

impl HotKeys {
    /// A sketch sampling one access in `sample_one_in` on average (1: every access); `seed`
    /// starts the sampling's random stream.
    pub fn new(sample_one_in: u64, seed: u64) -> HotKeys {
        assert!(sample_one_in >= 1, "sampling rate must be at least 1");
        HotKeys {
            counters: vec![0; SKETCH_DEPTH * SKETCH_WIDTH].into_boxed_slice(),
            top: Vec::with_capacity(TOP_KEYS),
            sample_one_in,
            skip: 0,
            samples: 0,
            // xorshift must not start at zero.
            random_state: seed | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        x
    }

    /// Counts one access to `key` (sampled).
    pub fn access(&mut self, key: &[u8]) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        // A gap uniform in 0..2n-1 has mean n-1: one access in n is sampled on average.
        self.skip = self.next_random() % (2 * self.sample_one_in - 1);
        self.sample(key);
    }

    fn sample(&mut self, key: &[u8]) {
        let key = &key[..key.len().min(KEY_BYTES_TRACKED_MAX)];
        let (first, step) = hashes(key);
        let estimate = self.increment(first, step);
        self.samples += 1;
        if let Some(entry) = self
            .top
            .iter_mut()
            .find(|(hash, held, _)| *hash == first && **held == *key)
        {
            entry.2 = estimate;
        } else if self.top.len() < TOP_KEYS {
            self.top.push((first, key.into(), estimate));
        } else if let Some(smallest) = self.top.iter_mut().min_by_key(|(_, _, count)| *count) {
            if estimate > smallest.2 {
                *smallest = (first, key.into(), estimate);
            }
        }
        if self.samples >= DECAY_SAMPLES {
            self.decay();
        }
    }

    /// Adds one to the smallest counters of the key hashed to `first` and `step` (conservative
    /// update); returns the key's new estimate.
    fn increment(&mut self, first: u64, step: u64) -> u32 {
        let slot = |row: usize| {
            row * SKETCH_WIDTH
                + (first.wrapping_add((row as u64).wrapping_mul(step)) as usize
                    & (SKETCH_WIDTH - 1))
        };
        let estimate = (0..SKETCH_DEPTH)
            .map(|row| self.counters[slot(row)])
            .min()
            .unwrap_or(0)
            .saturating_add(1);
        for row in 0..SKETCH_DEPTH {
            let counter = &mut self.counters[slot(row)];
            *counter = (*counter).max(estimate);
        }
        estimate
    }

    fn decay(&mut self) {
        self.counters.iter_mut().for_each(|counter| *counter /= 2);
        self.top.iter_mut().for_each(|(_, _, count)| *count /= 2);
        self.top.retain(|(_, _, count)| *count > 0);
        self.samples /= 2;
    }

    /// The top list, highest estimate first.
    pub fn top(&self) -> Vec<HotKey> {
        let mut keys: Vec<HotKey> = self
            .top
            .iter()
            .map(|(_, key, count)| HotKey {
                key: key.to_vec(),
                accesses: u64::from(*count) * self.sample_one_in,
            })
            .collect();
        sort_hottest_first(&mut keys);
        keys
    }

    /// Forgets every count (CONFIG RESETSTAT).
    pub fn reset(&mut self) {
        self.counters.iter_mut().for_each(|counter| *counter = 0);
        self.top.clear();
        self.samples = 0;
    }
}

/// Highest count first; equal counts by key, so the order is stable across calls.
pub fn sort_hottest_first(keys: &mut [HotKey]) {
    keys.sort_by(|a, b| b.accesses.cmp(&a.accesses).then_with(|| a.key.cmp(&b.key)));
}

/// Two independent 64-bit hashes of `key` (FNV-1a, then two different finalizers); row `i`
/// uses `first + i * step` (Kirsch and Mitzenmacher), `step` odd so rows never coincide.
fn hashes(key: &[u8]) -> (u64, u64) {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = key.iter().fold(FNV_OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    let mix = |mut x: u64, multiplier: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(multiplier);
        x ^= x >> 29;
        x
    };
    (
        mix(hash, 0xff51_afd7_ed55_8ccd),
        mix(hash, 0xc4ce_b9fe_1a85_ec53) | 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream for the workloads (not the sketch's own).
    struct Stream(u64);
    impl Stream {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn finds_a_planted_hot_key_among_100k_uniform_keys() {
        const KEYS: u64 = 100_000;
        const ROUNDS: u64 = 10;
        const HOT_ACCESSES: u64 = 20_000;
        let mut sketch = HotKeys::new(SAMPLE_ONE_IN, 42);
        let mut stream = Stream(7);
        let uniform_accesses = KEYS * ROUNDS;
        let total = uniform_accesses + HOT_ACCESSES;
        let mut hot_seen = 0;
        for _ in 0..total {
            // The hot key is interleaved at random, 2 % of the traffic.
            if stream.next() % total < HOT_ACCESSES && hot_seen < HOT_ACCESSES {
                hot_seen += 1;
                sketch.access(b"hot:planted");
            } else {
                let key = format!("key:{:06}", stream.next() % KEYS);
                sketch.access(key.as_bytes());
            }
        }
        let top = sketch.top();
        assert_eq!(top[0].key, b"hot:planted");
        // Sampling error: a binomial count of ~2,500 samples stays well within 10 %.
        let estimate = top[0].accesses as f64;
        let truth = hot_seen as f64;
        assert!(
            (estimate - truth).abs() < truth * 0.1,
            "estimate {estimate} for {truth} accesses"
        );
        // Every uniform key is accessed ~10 times; the sketch's overestimate is bounded by
        // e/W * N samples, so none comes near the planted key.
        let samples = total / SAMPLE_ONE_IN;
        let bound = (std::f64::consts::E / SKETCH_WIDTH as f64 * samples as f64) as u64;
        assert!(top[1].accesses <= (ROUNDS * 4 + bound) * SAMPLE_ONE_IN);
        assert!(top.len() <= TOP_KEYS);
    }

    #[test]
    fn counts_exactly_without_sampling_or_collisions() {
        let mut sketch = HotKeys::new(1, 1);
        for _ in 0..5 {
            sketch.access(b"a");
        }
        for _ in 0..3 {
            sketch.access(b"b");
        }
        sketch.access(b"c");
        let top = sketch.top();
        let counts: Vec<(&[u8], u64)> = top
            .iter()
            .map(|hot| (hot.key.as_slice(), hot.accesses))
            .collect();
        assert_eq!(counts, vec![(&b"a"[..], 5), (&b"b"[..], 3), (&b"c"[..], 1)]);
        sketch.reset();
        assert!(sketch.top().is_empty());
    }

    #[test]
    fn long_keys_are_tracked_by_their_prefix_and_counts_decay() {
        let mut sketch = HotKeys::new(1, 1);
        let long = vec![b'x'; KEY_BYTES_TRACKED_MAX * 2];
        for _ in 0..DECAY_SAMPLES {
            sketch.access(&long);
        }
        let top = sketch.top();
        assert_eq!(top[0].key.len(), KEY_BYTES_TRACKED_MAX);
        // The decay ran at the last sample: the count halved.
        assert_eq!(top[0].accesses, DECAY_SAMPLES / 2);
    }
}
