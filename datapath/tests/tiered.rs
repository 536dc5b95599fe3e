//! The tiered store through the real binary: a small DRAM tier over a file tier holds several
//! times what DRAM alone would, INFO says so, and SIGTERM then a restart keeps every key.

mod common;

use common::{encode_command, free_port, Server};
use std::io::{Read, Write};

/// About 1 KiB each: 40,000 keys are 40 MiB of values, with 16 MiB of DRAM.
const KEYS: usize = 40_000;
const BATCH: usize = 1000;

fn value_of(n: usize) -> String {
    format!(
        "{{\"id\":{n},\"user\":\"user-{n}\",\"tags\":[\"cache\",\"tier\",\"json\"],\"text\":\"{}\"}}",
        "the quick brown fox jumps over the lazy dog ".repeat(22)
    )
}

fn write_keys(server: &Server) {
    let mut client = server.client();
    for first in (0..KEYS).step_by(BATCH) {
        let mut batch = Vec::new();
        for n in first..first + BATCH {
            batch.extend(encode_command(&[
                b"SET",
                format!("key:{n}").as_bytes(),
                value_of(n).as_bytes(),
            ]));
        }
        client.send(&batch);
        for _ in 0..BATCH {
            assert_eq!(client.read_reply(), b"+OK\r\n");
        }
    }
}

fn check_keys(server: &Server) {
    let mut client = server.client();
    for first in (0..KEYS).step_by(BATCH) {
        let mut batch = Vec::new();
        for n in first..first + BATCH {
            batch.extend(encode_command(&[b"GET", format!("key:{n}").as_bytes()]));
        }
        client.send(&batch);
        for n in first..first + BATCH {
            let value = value_of(n);
            let expected = format!("${}\r\n{value}\r\n", value.len());
            assert!(
                client.read_reply() == expected.as_bytes(),
                "key:{n} lost or wrong"
            );
        }
    }
    assert_eq!(
        client.call(&["DBSIZE"]),
        format!(":{KEYS}\r\n").into_bytes()
    );
}

/// A memcached `stats` reply, up to its END.
fn memcache_stats(port: &str, command: &str) -> String {
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    stream.write_all(command.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the server closed the connection");
        reply.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8(reply).unwrap()
}

/// The value of `name` in an INFO reply.
fn info_number(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO: {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_tiered_server_holds_more_than_its_dram_and_a_restart_keeps_every_key() {
    let directory = std::env::temp_dir().join(format!("ferrite-tiered-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let data_file = directory.join("items");
    let memcache_port = free_port().to_string();
    let flags = [
        "--memcache-port",
        &memcache_port,
        "--threads",
        "2",
        "--memory",
        "16MiB",
        "--data-file",
        data_file.to_str().unwrap(),
        "--data-size",
        "64MiB",
        "--cold-admission",
        "all",
    ];
    let server = Server::start(&flags);
    write_keys(&server);
    let mut client = server.client();
    let info = String::from_utf8_lossy(&client.call(&["INFO"])).into_owned();
    assert!(info.contains("tiering:tiered"), "{info}");
    // Whole segments of 1 MiB per shard, after each arena's first page.
    assert_eq!(info_number(&info, "maxmemory"), (2 * 7) << 20);
    assert_eq!(info_number(&info, "tier_cold_maxmemory"), (2 * 31) << 20);
    let cold_keys = info_number(&info, "tier_cold_keys");
    assert!(
        cold_keys > KEYS as u64 / 2,
        "most keys live in the file tier: {info}"
    );
    assert!(info_number(&info, "tier_compressed_keys") > 0, "{info}");
    assert!(
        info_number(&info, "tier_compressed_stored_bytes")
            < info_number(&info, "tier_compressed_raw_bytes"),
        "{info}"
    );
    assert_eq!(info_number(&info, "tier_cold_evicted_keys"), 0, "{info}");
    // memcached's stats say the same.
    let stats = memcache_stats(&memcache_port, "stats\r\n");
    assert!(
        stats.contains(&format!("STAT curr_items {KEYS}\r\n")),
        "{stats}"
    );
    assert!(
        stats.contains(&format!("STAT tier_cold_keys {cold_keys}\r\n")),
        "{stats}"
    );
    let settings = memcache_stats(&memcache_port, "stats settings\r\n");
    assert!(
        settings.contains(&format!("STAT tier_cold_maxbytes {}\r\n", (2 * 31) << 20)),
        "{settings}"
    );
    check_keys(&server);
    let log = server.stop();
    assert!(log.contains("stopped cleanly"), "{log}");

    let server = Server::start(&flags);
    let log = server.log_text();
    assert!(log.contains("clean_shutdown=true"), "{log}");
    check_keys(&server);
    let mut client = server.client();
    let info = String::from_utf8_lossy(&client.call(&["INFO", "memory"])).into_owned();
    assert!(info_number(&info, "tier_cold_hits") > 0, "{info}");
    server.stop();
    std::fs::remove_dir_all(&directory).unwrap();
}
