//! What the load generator asks for: which keys (uniform or Zipfian), which values (filler or
//! compressible JSON-like records), in a mix of reads and writes.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// How keys are drawn from the keyspace `[0, keyspace)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDistribution {
    /// Every key equally likely (redis-benchmark's `-r`).
    Uniform,
    /// Key rank k drawn with probability ∝ 1 / k^skew (skew 0.99 is the usual cache trace).
    Zipf { skew: f64 },
}

impl std::str::FromStr for KeyDistribution {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "uniform" => Ok(KeyDistribution::Uniform),
            Some(("zipf", skew)) => {
                let skew: f64 = skew
                    .parse()
                    .map_err(|_| format!("bad zipf skew '{skew}'"))?;
                if !(skew > 0.0 && skew.is_finite()) {
                    return Err(format!("zipf skew must be > 0, got {skew}"));
                }
                Ok(KeyDistribution::Zipf { skew })
            }
            _ => Err(format!(
                "key distribution '{text}': use uniform or zipf:SKEW"
            )),
        }
    }
}

/// What values look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `value_size` bytes of 'x' (what redis-benchmark and the peer scripts send).
    Fill,
    /// JSON-like records of `value_size` bytes that compress the way cached API responses do
    /// (repeated field names, varying numbers).
    Json,
}

impl std::str::FromStr for ValueKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "fill" => Ok(ValueKind::Fill),
            "json" => Ok(ValueKind::Json),
            _ => Err(format!("value kind '{text}': use fill or json")),
        }
    }
}

/// Draws key numbers. One per connection, seeded, so runs repeat.
pub struct KeyPicker {
    rng: SmallRng,
    keyspace: u64,
    zipf: Option<Zipf<f64>>,
}

impl KeyPicker {
    pub fn new(distribution: KeyDistribution, keyspace: u64, seed: u64) -> KeyPicker {
        assert!(keyspace > 0, "keyspace must not be empty");
        let zipf = match distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf { skew } => {
                Some(Zipf::new(keyspace as f64, skew).expect("checked when parsed"))
            }
        };
        KeyPicker {
            rng: SmallRng::seed_from_u64(seed),
            keyspace,
            zipf,
        }
    }

    /// A key number in `[0, keyspace)`. Zipf rank 1 (the hottest) maps to key 0.
    pub fn pick(&mut self) -> u64 {
        match &self.zipf {
            None => self.rng.random_range(0..self.keyspace),
            Some(zipf) => (zipf.sample(&mut self.rng) as u64).clamp(1, self.keyspace) - 1,
        }
    }

    /// True with probability `ratio` (for mixed read/write loads).
    pub fn chance(&mut self, ratio: f64) -> bool {
        self.rng.random::<f64>() < ratio
    }
}

/// `key:%0Nd`, the peers' key shape, written into `out`.
pub fn write_key(out: &mut Vec<u8>, number: u64, digits: usize) {
    use std::io::Write;
    write!(out, "key:{number:0digits$}").expect("writing to a Vec cannot fail");
}

/// The value stored under key `number`: derived from the number so `verify` can check it.
pub fn value_for(kind: ValueKind, number: u64, size: usize) -> Vec<u8> {
    let mut value = match kind {
        ValueKind::Fill => {
            let mut value = vec![b'x'; size];
            // A key-derived prefix, so a value returned under the wrong key is caught.
            let stamp = format!("{number:x}:");
            let stamp_len = stamp.len().min(size);
            value[..stamp_len].copy_from_slice(&stamp.as_bytes()[..stamp_len]);
            value
        }
        ValueKind::Json => json_record(number, size),
    };
    value.truncate(size);
    value
}

fn json_record(number: u64, size: usize) -> Vec<u8> {
    const CITIES: [&str; 6] = ["Lisbon", "Osaka", "Nairobi", "Quito", "Tallinn", "Perth"];
    let mut record = Vec::with_capacity(size + 128);
    let mut item = 0u64;
    record.extend_from_slice(b"{\"items\":[");
    while record.len() < size {
        let seed = number
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(item);
        let city = CITIES[(seed % CITIES.len() as u64) as usize];
        let entry = format!(
            "{{\"id\":{number},\"seq\":{item},\"city\":\"{city}\",\"score\":{},\"active\":{}}},",
            seed % 1000,
            seed.is_multiple_of(2)
        );
        record.extend_from_slice(entry.as_bytes());
        item += 1;
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse_and_reject_nonsense() {
        assert_eq!(
            "uniform".parse::<KeyDistribution>(),
            Ok(KeyDistribution::Uniform)
        );
        assert_eq!(
            "zipf:0.99".parse::<KeyDistribution>(),
            Ok(KeyDistribution::Zipf { skew: 0.99 })
        );
        assert!("zipf:-1".parse::<KeyDistribution>().is_err());
        assert!("zipf".parse::<KeyDistribution>().is_err());
        assert!("pareto:1".parse::<KeyDistribution>().is_err());
    }

    #[test]
    fn zipf_keys_stay_in_range_and_favour_the_head() {
        let mut picker = KeyPicker::new(KeyDistribution::Zipf { skew: 0.99 }, 1000, 7);
        let mut head = 0;
        for _ in 0..10_000 {
            let key = picker.pick();
            assert!(key < 1000);
            head += u32::from(key < 10);
        }
        // Under Zipf(0.99) over 1000 keys the top 1 % take about 39 % of draws; uniform gives 1 %.
        assert!(head > 3000, "head share {head} of 10000");
    }

    #[test]
    fn uniform_keys_cover_the_keyspace() {
        let mut picker = KeyPicker::new(KeyDistribution::Uniform, 16, 1);
        let mut seen = [false; 16];
        for _ in 0..1000 {
            seen[picker.pick() as usize] = true;
        }
        assert!(seen.iter().all(|&hit| hit));
    }

    #[test]
    fn values_have_the_asked_size_and_depend_on_the_key() {
        for kind in [ValueKind::Fill, ValueKind::Json] {
            for size in [0, 1, 100, 1024] {
                assert_eq!(value_for(kind, 42, size).len(), size);
            }
            assert_ne!(value_for(kind, 1, 100), value_for(kind, 2, 100));
        }
        let mut key = Vec::new();
        write_key(&mut key, 42, 12);
        assert_eq!(key, b"key:000000000042");
    }

    #[test]
    fn json_values_compress() {
        let value = value_for(ValueKind::Json, 9, 1024);
        let compressed = lz4_flex::block::compress(&value);
        assert!(
            compressed.len() * 2 < value.len(),
            "{} -> {}",
            value.len(),
            compressed.len()
        );
    }
}
