//! The verification corpus shared by the fpga-sim tests: every kind of input the issue names,
//! generated deterministically so a failure names a reproducible case.
#![allow(dead_code)] // each test binary uses its own part of the corpus

pub mod liblz4;

/// The largest input the corpus holds: the RTL's block limit.
pub const CORPUS_BYTES_MAX: usize = fpga_sim::BLOCK_BYTES_MAX;

/// A deterministic xorshift64 stream: the corpus must be the same on every run.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

fn text(len: usize) -> Vec<u8> {
    let words = [
        "the", "cache", "server", "stores", "items", "in", "segments", "and", "evicts", "whole",
        "ones", "when", "memory", "runs", "short", "of", "a", "limit",
    ];
    let mut random = Xorshift::new(7);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(words[random.next_u64() as usize % words.len()].as_bytes());
        out.push(if random.next_u64().is_multiple_of(11) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(len);
    out
}

fn json(len: usize) -> Vec<u8> {
    let mut random = Xorshift::new(11);
    let mut out = Vec::with_capacity(len + 128);
    out.push(b'[');
    let mut id = 0u64;
    while out.len() < len {
        id += 1;
        let record = format!(
            "{{\"id\":{id},\"user\":\"user{}\",\"score\":{},\"active\":{},\"tags\":[\"a\",\"b{}\"]}},",
            random.next_u64() % 1000,
            random.next_u64() % 100_000,
            random.next_u64().is_multiple_of(2),
            random.next_u64() % 16
        );
        out.extend_from_slice(record.as_bytes());
    }
    out.truncate(len);
    out
}

/// Binary records: little-endian counters and small fields, the way serialized structs look.
fn binary(len: usize) -> Vec<u8> {
    let mut random = Xorshift::new(13);
    let mut out = Vec::with_capacity(len + 16);
    let mut counter = 0u32;
    while out.len() < len {
        counter += 1 + (random.next_u64() % 3) as u32;
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(&((random.next_u64() % 4) as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x7F, (random.next_u64() % 256) as u8]);
    }
    out.truncate(len);
    out
}

/// Named inputs: every category at several sizes up to the block limit, plus the edge sizes.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let source = include_bytes!("../../src/lib.rs");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("one_byte".into(), vec![0x5A]),
        ("check_string".into(), b"123456789".to_vec()),
        (
            "source_code".into(),
            source[..source.len().min(CORPUS_BYTES_MAX)].to_vec(),
        ),
    ];
    for len in [7usize, 13, 100, 4096, 65_536] {
        let len = len.min(CORPUS_BYTES_MAX);
        cases.push((format!("text_{len}"), text(len)));
        cases.push((format!("json_{len}"), json(len)));
        cases.push((format!("binary_{len}"), binary(len)));
        cases.push((format!("zeros_{len}"), vec![0u8; len]));
        cases.push((
            format!("random_{len}"),
            Xorshift::new(len as u64).bytes(len),
        ));
    }
    cases
}
