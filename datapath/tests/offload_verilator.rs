//! End to end on the RTL: a file tier whose CRC-64s (and LZ4 blocks) the Verilated RTL made is
//! reopened by the software engine, and the other way round; both must agree on every item.
//! (The rtl engineer's file; the server's own `--offload verilator` test is in file_tier.rs.)
#![cfg(feature = "verilator")]

mod common;

use common::{encode_command, Server};
use fpga_sim::VerilatedOffload;
use persistent::{SetOptions, SetStatus, Store, StoreConfig, COMPRESS_MIN_BYTES_DEFAULT};
use platform::offload::{Offload, SoftwareOffload};

const KEYS: usize = 300;
const NOW: u64 = 1_700_000_000_000;

/// Key n's value: sizes from 0 to a few KiB, bytes that vary with n.
fn value_of(n: usize) -> Vec<u8> {
    (0..(n * 13) % 4000)
        .map(|index| (index * 31 + n) as u8)
        .collect()
}

fn write_keys(server: &Server, prefix: &str) {
    let mut client = server.client();
    let mut batch = Vec::new();
    for n in 0..KEYS {
        batch.extend(encode_command(&[
            b"SET",
            format!("{prefix}:{n}").as_bytes(),
            &value_of(n),
        ]));
    }
    client.send(&batch);
    for _ in 0..KEYS {
        assert_eq!(client.read_reply(), b"+OK\r\n");
    }
}

fn check_keys(server: &Server, prefix: &str) {
    let mut client = server.client();
    for n in 0..KEYS {
        client.send_command(&[b"GET", format!("{prefix}:{n}").as_bytes()]);
        let value = value_of(n);
        let mut expected = format!("${}\r\n", value.len()).into_bytes();
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
        assert!(client.read_reply() == expected, "{prefix}:{n} differs");
    }
}

/// Sums `items_restored=` and `items_corrupt=` over the shards' "store opened" log lines.
fn recovered(log: &str) -> (u64, u64) {
    let field = |line: &str, name: &str| -> u64 {
        let start = line
            .find(name)
            .map(|at| at + name.len())
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        line[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    log.lines()
        .filter(|line| line.contains("store opened"))
        .map(|line| {
            (
                field(line, "items_restored="),
                field(line, "items_corrupt="),
            )
        })
        .fold((0, 0), |(restored, corrupt), (r, c)| {
            (restored + r, corrupt + c)
        })
}

fn info_offload(server: &Server) -> String {
    let info = server.client().call(&["INFO", "ferrite"]);
    let info = String::from_utf8_lossy(&info).into_owned();
    info.lines()
        .find(|line| line.starts_with("offload:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn file_tier_written_by_the_rtl_reopens_with_software_and_back() {
    let directory =
        std::env::temp_dir().join(format!("ferrite-offload-verilator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let data_file = directory.join("items");
    let data_file = data_file.to_str().unwrap();
    let flags = |offload: &'static str| {
        [
            "--threads",
            "2",
            "--offload",
            offload,
            "--data-file",
            data_file,
        ]
    };

    let server = Server::start(&flags("verilator"));
    assert_eq!(info_offload(&server), "offload:verilator");
    write_keys(&server, "rtl");
    check_keys(&server, "rtl");
    let log = server.stop();
    assert!(log.contains("stopped cleanly"), "{log}");

    // Every CRC-64 the RTL wrote is checked again by crc64fast on recovery.
    let server = Server::start(&flags("software"));
    assert_eq!(info_offload(&server), "offload:software");
    check_keys(&server, "rtl");
    write_keys(&server, "cpu");
    let log = server.stop();
    assert_eq!(recovered(&log), (KEYS as u64, 0), "{log}");

    // And the RTL accepts what the software engine wrote.
    let server = Server::start(&flags("verilator"));
    check_keys(&server, "rtl");
    check_keys(&server, "cpu");
    let log = server.stop();
    assert_eq!(recovered(&log), (2 * KEYS as u64, 0), "{log}");
    std::fs::remove_dir_all(&directory).unwrap();
}

/// Compressible values of `n` KiB-ish: the store keeps them LZ4-compressed.
fn compressible(n: usize) -> Vec<u8> {
    format!("{{\"item\":{n},\"tags\":[\"cache\",\"segment\",\"offload\"],\"pad\":\"")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(COMPRESS_MIN_BYTES_DEFAULT + n * 97)
        .collect()
}

fn open(path: &std::path::Path, offload: Box<dyn Offload>) -> Store {
    let config = StoreConfig {
        compress_min_bytes: Some(COMPRESS_MIN_BYTES_DEFAULT),
        ..StoreConfig::file(path, 16 << 20)
    };
    Store::open(&config, offload, NOW).expect("the store opens")
}

/// The store's compression through the RTL: its blocks reopen with the software engine, and
/// software blocks decode on the RTL.
#[test]
fn lz4_blocks_cross_between_engines_through_the_store() {
    let directory =
        std::env::temp_dir().join(format!("ferrite-offload-lz4-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("items");
    let values: Vec<Vec<u8>> = (0..40).map(compressible).collect();
    let raw_bytes = values.iter().map(Vec::len).sum::<usize>() as u64;

    let mut store = open(
        &path,
        Box::new(VerilatedOffload::new().expect("the Verilated model builds")),
    );
    for (n, value) in values.iter().enumerate() {
        let result = store
            .set(
                format!("rtl:{n}").as_bytes(),
                value,
                &SetOptions::default(),
                NOW,
            )
            .unwrap();
        assert!(
            matches!(result.status, SetStatus::Stored { .. }),
            "{:?}",
            result.status
        );
    }
    assert!(
        store.stats().bytes_used < raw_bytes / 4,
        "the RTL did not compress: {} of {raw_bytes} bytes",
        store.stats().bytes_used
    );
    store.close().unwrap();

    let mut store = open(&path, Box::new(SoftwareOffload));
    assert_eq!(store.recovery_report().items_corrupt, 0);
    for (n, value) in values.iter().enumerate() {
        assert!(
            store
                .get(format!("rtl:{n}").as_bytes(), NOW)
                .map(|item| item.value.into_owned())
                .as_ref()
                == Some(value),
            "rtl:{n}"
        );
        store
            .set(
                format!("cpu:{n}").as_bytes(),
                value,
                &SetOptions::default(),
                NOW,
            )
            .unwrap();
    }
    store.close().unwrap();

    let mut store = open(
        &path,
        Box::new(VerilatedOffload::new().expect("the Verilated model builds")),
    );
    assert_eq!(store.recovery_report().items_corrupt, 0);
    for (n, value) in values.iter().enumerate() {
        for prefix in ["rtl", "cpu"] {
            let key = format!("{prefix}:{n}");
            assert!(
                store
                    .get(key.as_bytes(), NOW)
                    .map(|item| item.value.into_owned())
                    .as_ref()
                    == Some(value),
                "{key}"
            );
        }
    }
    store.close().unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
}
