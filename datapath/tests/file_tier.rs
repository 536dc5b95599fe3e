//! The file tier through the real binary: SIGTERM then a warm restart keeps every key, and a
//! restart with another shard count re-homes them.

mod common;

use common::{encode_command, Server};

const KEYS: usize = 3000;

fn write_keys(server: &Server) {
    let mut client = server.client();
    let mut batch = Vec::new();
    for n in 0..KEYS {
        let key = format!("warm:{n}");
        let value = format!("value-{n}");
        if n % 10 == 0 {
            batch.extend(encode_command(&[
                b"SET",
                key.as_bytes(),
                value.as_bytes(),
                b"EX",
                b"3600",
            ]));
        } else {
            batch.extend(encode_command(&[b"SET", key.as_bytes(), value.as_bytes()]));
        }
    }
    client.send(&batch);
    for _ in 0..KEYS {
        assert_eq!(client.read_reply(), b"+OK\r\n");
    }
}

fn check_keys(server: &Server) {
    let mut client = server.client();
    let mut batch = Vec::new();
    for n in 0..KEYS {
        batch.extend(encode_command(&[b"GET", format!("warm:{n}").as_bytes()]));
    }
    client.send(&batch);
    for n in 0..KEYS {
        let value = format!("value-{n}");
        let expected = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(
            String::from_utf8_lossy(&client.read_reply()),
            expected,
            "warm:{n}"
        );
    }
    let ttl = client.call(&["TTL", "warm:0"]);
    let ttl: i64 = String::from_utf8_lossy(&ttl[1..ttl.len() - 2])
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&ttl), "TTL not kept: {ttl}");
    assert_eq!(client.call(&["TTL", "warm:1"]), b":-1\r\n");
    assert_eq!(
        client.call(&["DBSIZE"]),
        format!(":{KEYS}\r\n").into_bytes()
    );
}

#[test]
fn sigterm_then_warm_restart_then_other_shard_counts_keep_every_key() {
    let directory = std::env::temp_dir().join(format!("ferrite-file-tier-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let data_file = directory.join("items");
    let data_file = data_file.to_str().unwrap();

    let server = Server::start(&["--threads", "2", "--data-file", data_file, "--io", "uring"]);
    write_keys(&server);
    let log = server.stop();
    assert!(log.contains("stopped cleanly"), "{log}");

    let server = Server::start(&["--threads", "2", "--data-file", data_file, "--io", "epoll"]);
    check_keys(&server);
    let log = server.stop();
    assert!(
        log.contains("clean_shutdown=true"),
        "the files were not closed cleanly: {log}"
    );

    let mut server = Server::start(&["--threads", "1", "--data-file", data_file]);
    check_keys(&server);
    // SIGINT stops as cleanly as SIGTERM.
    let status = server.stop_with(libc::SIGINT);
    let log = server.log_text();
    assert!(status.success(), "exit {status} after SIGINT: {log}");
    assert!(log.contains("re-homed"), "{log}");

    let server = Server::start(&["--threads", "2", "--data-file", data_file]);
    check_keys(&server);
    server.stop();
    std::fs::remove_dir_all(&directory).unwrap();
}

/// The Verilated RTL as the store's offload: items written through it survive a restart that
/// checks every item's CRC-64 with it again.
#[test]
fn verilated_offload_serves_and_recovers() {
    let directory = std::env::temp_dir().join(format!("ferrite-verilator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let data_file = directory.join("items");
    let flags = [
        "--threads",
        "1",
        "--offload",
        "verilator",
        "--data-file",
        data_file.to_str().unwrap(),
    ];
    let server = Server::start(&flags);
    let mut client = server.client();
    for n in 0..200 {
        assert_eq!(
            client.call(&["SET", &format!("rtl:{n}"), &"v".repeat(n)]),
            b"+OK\r\n"
        );
    }
    let info = String::from_utf8_lossy(&client.call(&["INFO", "ferrite"])).into_owned();
    assert!(info.contains("offload:verilator"), "{info}");
    server.stop();
    let server = Server::start(&flags);
    let mut client = server.client();
    for n in 0..200 {
        let expected = format!("${n}\r\n{}\r\n", "v".repeat(n));
        assert_eq!(
            String::from_utf8_lossy(&client.call(&["GET", &format!("rtl:{n}")])),
            expected
        );
    }
    let log = server.stop();
    assert!(
        log.contains("items_restored=200") && log.contains("items_corrupt=0"),
        "{log}"
    );
    std::fs::remove_dir_all(&directory).unwrap();
}
