//! The RESP server end to end: the real binary, both event loops, two shards so that keys are
//! spread over shards and cross-shard paths are taken.

mod common;

use common::{encode_command, redis_cli, tool, Server, BACKENDS};

fn start(backend: &str) -> Server {
    Server::start(&["--threads", "2", "--io", backend])
}

#[test]
fn core_commands_through_redis_cli() {
    for backend in BACKENDS {
        let server = start(backend);
        let cli = |args: &[&str]| redis_cli(server.port, args);
        assert_eq!(cli(&["PING"]), "PONG\n");
        assert_eq!(cli(&["PING", "hello"]), "hello\n");
        assert_eq!(cli(&["ECHO", "x y"]), "x y\n");
        assert_eq!(cli(&["SET", "greeting", "hello"]), "OK\n");
        assert_eq!(cli(&["GET", "greeting"]), "hello\n");
        assert_eq!(cli(&["GET", "nothing"]), "\n");
        assert_eq!(cli(&["SET", "greeting", "other", "NX"]), "\n");
        assert_eq!(cli(&["SET", "greeting", "again", "XX", "GET"]), "hello\n");
        assert_eq!(cli(&["SET", "fresh", "v", "XX"]), "\n");
        assert_eq!(cli(&["SETNX", "greeting", "x"]), "0\n");
        assert_eq!(cli(&["SETNX", "new", "x"]), "1\n");
        assert_eq!(cli(&["APPEND", "new", "yz"]), "3\n");
        assert_eq!(cli(&["STRLEN", "new"]), "3\n");
        assert_eq!(cli(&["GETRANGE", "new", "1", "-1"]), "yz\n");
        assert_eq!(cli(&["SETRANGE", "new", "5", "!"]), "6\n");
        assert_eq!(cli(&["GET", "new"]), "xyz\u{0}\u{0}!\n");
        assert_eq!(cli(&["INCR", "counter"]), "1\n");
        assert_eq!(cli(&["INCRBY", "counter", "41"]), "42\n");
        assert_eq!(cli(&["DECR", "counter"]), "41\n");
        assert_eq!(cli(&["DECRBY", "counter", "40"]), "1\n");
        assert_eq!(cli(&["INCRBYFLOAT", "counter", "0.5"]), "1.5\n");
        assert_eq!(cli(&["GETSET", "counter", "7"]), "1.5\n");
        assert_eq!(cli(&["GETDEL", "counter"]), "7\n");
        assert_eq!(cli(&["EXISTS", "counter", "greeting", "new"]), "2\n");
        assert_eq!(cli(&["TYPE", "greeting"]), "string\n");
        assert_eq!(cli(&["TYPE", "counter"]), "none\n");
        assert_eq!(cli(&["DEL", "greeting", "new", "counter"]), "2\n");
        assert_eq!(cli(&["DBSIZE"]), "0\n");
        assert_eq!(cli(&["SELECT", "0"]), "OK\n");
        assert_eq!(cli(&["TIME"]).lines().count(), 2);
        let log = server.stop();
        assert!(log.contains("stopped cleanly"), "{log}");
    }
}

#[test]
fn expiry_commands() {
    for backend in BACKENDS {
        let server = start(backend);
        let cli = |args: &[&str]| redis_cli(server.port, args);
        assert_eq!(cli(&["SET", "k", "v", "EX", "100"]), "OK\n");
        assert_eq!(cli(&["TTL", "k"]), "100\n");
        let pttl: i64 = cli(&["PTTL", "k"]).trim().parse().unwrap();
        assert!((99_000..=100_000).contains(&pttl), "{pttl}");
        assert_eq!(cli(&["EXPIRE", "k", "50", "GT"]), "0\n");
        assert_eq!(cli(&["EXPIRE", "k", "50", "LT"]), "1\n");
        assert_eq!(cli(&["TTL", "k"]), "50\n");
        assert_eq!(cli(&["EXPIRE", "k", "60", "NX"]), "0\n");
        assert_eq!(cli(&["PERSIST", "k"]), "1\n");
        assert_eq!(cli(&["TTL", "k"]), "-1\n");
        assert_eq!(cli(&["TTL", "missing"]), "-2\n");
        assert_eq!(cli(&["EXPIREAT", "k", "4102444800"]), "1\n");
        assert_eq!(cli(&["EXPIRETIME", "k"]), "4102444800\n");
        assert_eq!(cli(&["PEXPIRETIME", "k"]), "4102444800000\n");
        assert_eq!(cli(&["EXPIRE", "k", "-1"]), "1\n");
        assert_eq!(cli(&["EXISTS", "k"]), "0\n");
        assert_eq!(cli(&["SETEX", "s", "100", "v"]), "OK\n");
        assert_eq!(cli(&["TTL", "s"]), "100\n");
        assert_eq!(cli(&["PSETEX", "p", "100000", "v"]), "OK\n");
        assert_eq!(cli(&["TTL", "p"]), "100\n");
        assert_eq!(cli(&["GETEX", "p", "PERSIST"]), "v\n");
        assert_eq!(cli(&["TTL", "p"]), "-1\n");
        assert_eq!(cli(&["SET", "s", "w", "KEEPTTL"]), "OK\n");
        assert_eq!(cli(&["TTL", "s"]), "100\n");
        server.stop();
    }
}

#[test]
fn short_px_expires() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut client = server.client();
        for n in 0..50 {
            let key = format!("short:{n}");
            assert_eq!(client.call(&["SET", &key, "v", "PX", "30"]), b"+OK\r\n");
        }
        assert_eq!(
            client.call(&["SET", "long", "v", "PX", "60000"]),
            b"+OK\r\n"
        );
        // Poll (not a fixed sleep) until every short key has gone; the bound is generous.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let alive: Vec<String> = (0..50).map(|n| format!("short:{n}")).collect();
            let mut argv = vec!["EXISTS"];
            argv.extend(alive.iter().map(String::as_str));
            if client.call(&argv) == b":0\r\n" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "keys set with PX 30 still exist after 5 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(client.call(&["GET", "short:0"]), b"$-1\r\n");
        assert_eq!(client.call(&["GET", "long"]), b"$1\r\nv\r\n");
        server.stop();
    }
}

#[test]
fn exact_error_strings() {
    let server = start("epoll");
    let mut client = server.client();
    let cases: &[(&[&str], &str)] = &[
        (
            &["NOSUCH", "a", "b"],
            "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &["NOSUCH"],
            "-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
        ),
        (
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["SET", "k"],
            "-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (
            &["INCRBY", "k", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "k", "v", "BOGUS"], "-ERR syntax error\r\n"),
        (
            &["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (
            &["MSET", "a", "1", "b"],
            "-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (
            &["EXPIRE", "k", "10", "GT", "LT"],
            "-ERR GT and LT options at the same time are not compatible\r\n",
        ),
        (&["SELECT", "1"], "-ERR DB index is out of range\r\n"),
        (&["HELLO", "4"], "-NOPROTO unsupported protocol version\r\n"),
    ];
    for (argv, expected) in cases {
        let reply = client.call(argv);
        assert_eq!(String::from_utf8_lossy(&reply), *expected, "{argv:?}");
    }
    assert_eq!(client.call(&["SET", "text", "abc"]), b"+OK\r\n");
    assert_eq!(
        client.call(&["INCR", "text"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        client.call(&["INCRBYFLOAT", "text", "1"]),
        b"-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        client.call(&["SET", "big", "9223372036854775807"]),
        b"+OK\r\n"
    );
    assert_eq!(
        client.call(&["INCR", "big"]),
        b"-ERR increment or decrement would overflow\r\n"
    );
    server.stop();
}

#[test]
fn protocol_errors_answer_then_close() {
    for backend in BACKENDS {
        let server = start(backend);
        let cases: &[(&[u8], &str)] = &[
            (
                b"*1\r\n$-5\r\n",
                "-ERR Protocol error: invalid bulk length\r\n",
            ),
            (
                b"*abc\r\n",
                "-ERR Protocol error: invalid multibulk length\r\n",
            ),
            (
                b"*1\r\n+x\r\n",
                "-ERR Protocol error: expected '$', got '+'\r\n",
            ),
            (
                b"*1\r\n$3\r\nabcXY",
                "-ERR Protocol error: bulk data not terminated by CRLF\r\n",
            ),
            (
                b"*1\r\n$999999999999\r\n",
                "-ERR Protocol error: invalid bulk length\r\n",
            ),
        ];
        for (bytes, expected) in cases {
            let mut client = server.client();
            client.send(b"PING\r\n");
            assert_eq!(client.read_reply(), b"+PONG\r\n");
            client.send(bytes);
            assert_eq!(String::from_utf8_lossy(&client.read_reply()), *expected);
            assert!(
                client.closed_by_server(),
                "connection stays open after {expected}"
            );
        }
        // The server is still fine for others.
        assert_eq!(server.client().call(&["PING"]), b"+PONG\r\n");
        server.stop();
    }
}

#[test]
fn quit_after_a_fan_out_gets_every_reply_then_closes() {
    for backend in BACKENDS {
        let server = start(backend);
        let keys: Vec<String> = (0..16).map(|key| format!("quit-key-{key}")).collect();
        let mut mset = vec!["MSET"];
        for key in &keys {
            mset.extend([key.as_str(), "v"]);
        }
        assert_eq!(server.client().call(&mset), b"+OK\r\n");
        let mut request = format!("*{}\r\n$4\r\nMGET\r\n", keys.len() + 1);
        for key in &keys {
            request += &format!("${}\r\n{key}\r\n", key.len());
        }
        request += "*1\r\n$4\r\nQUIT\r\n";
        // 16 keys over 2 shards: some are another shard's, so MGET's reply comes later than QUIT.
        let mut client = server.client();
        client.send(request.as_bytes());
        let mget = format!("*{}\r\n{}", keys.len(), "$1\r\nv\r\n".repeat(keys.len()));
        assert_eq!(String::from_utf8_lossy(&client.read_reply()), mget);
        assert_eq!(client.read_reply(), b"+OK\r\n");
        assert!(
            client.closed_by_server(),
            "connection stays open after QUIT"
        );
        server.stop();
    }
}

#[test]
fn inline_commands_and_split_reads() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut client = server.client();
        client.send(b"SET inline \"two words\"\r\nGET inline\r\n");
        assert_eq!(client.read_reply(), b"+OK\r\n");
        assert_eq!(client.read_reply(), b"$9\r\ntwo words\r\n");
        // A request arriving one byte at a time.
        for byte in encode_command(&[b"GET", b"inline"]) {
            client.send(&[byte]);
        }
        assert_eq!(client.read_reply(), b"$9\r\ntwo words\r\n");
        server.stop();
    }
}

#[test]
fn binary_keys_and_values_round_trip() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut client = server.client();
        let key: Vec<u8> = (0..=255u8).rev().collect();
        let value: Vec<u8> = (0..100_000u32).map(|n| (n * 7 % 256) as u8).collect();
        client.send_command(&[b"SET", &key, &value]);
        assert_eq!(client.read_reply(), b"+OK\r\n");
        client.send_command(&[b"GET", &key]);
        let reply = client.read_reply();
        let mut expected = format!("${}\r\n", value.len()).into_bytes();
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
        assert!(reply == expected, "binary value changed on the way");
        client.send_command(&[b"SET", b"", b""]);
        assert_eq!(client.read_reply(), b"+OK\r\n");
        client.send_command(&[b"GET", b""]);
        assert_eq!(client.read_reply(), b"$0\r\n\r\n");
        server.stop();
    }
}

/// Thousands of pipelined commands over keys on every shard: replies in request order.
#[test]
fn pipelines_keep_request_order_across_shards() {
    const COMMANDS: usize = 6000;
    for backend in BACKENDS {
        let server = start(backend);
        let mut client = server.client();
        let mut batch = Vec::new();
        for n in 0..COMMANDS {
            // SET pipe:K n, then GET of the key just set, then an INCR elsewhere.
            let key = format!("pipe:{}", (n - n % 3) % 500);
            let command = match n % 3 {
                0 => encode_command(&[b"SET", key.as_bytes(), n.to_string().as_bytes()]),
                1 => encode_command(&[b"GET", key.as_bytes()]),
                _ => encode_command(&[b"INCR", format!("count:{}", n % 7).as_bytes()]),
            };
            batch.extend_from_slice(&command);
        }
        client.send(&batch);
        let mut counts = [0i64; 7];
        for n in 0..COMMANDS {
            let reply = client.read_reply();
            let expected = match n % 3 {
                0 => b"+OK\r\n".to_vec(),
                1 => {
                    let value = (n - 1).to_string();
                    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
                }
                _ => {
                    counts[n % 7] += 1;
                    format!(":{}\r\n", counts[n % 7]).into_bytes()
                }
            };
            assert_eq!(
                String::from_utf8_lossy(&reply),
                String::from_utf8_lossy(&expected),
                "reply {n}"
            );
        }
        server.stop();
    }
}

#[test]
fn mget_mset_del_exists_fan_out_over_every_shard() {
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "2", "--io", backend]);
        let mut client = server.client();
        let keys: Vec<String> = (0..200).map(|n| format!("spread:{n}")).collect();
        let mut mset: Vec<&str> = vec!["MSET"];
        let values: Vec<String> = (0..200).map(|n| format!("value-{n}")).collect();
        for (key, value) in keys.iter().zip(&values) {
            mset.push(key);
            mset.push(value);
        }
        assert_eq!(client.call(&mset), b"+OK\r\n");
        let mut mget: Vec<&str> = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        mget.push("spread:absent");
        let mut expected = format!("*{}\r\n", keys.len() + 1).into_bytes();
        for value in &values {
            expected.extend_from_slice(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
        }
        expected.extend_from_slice(b"$-1\r\n");
        assert_eq!(client.call(&mget), expected);
        let mut exists: Vec<&str> = vec!["EXISTS"];
        exists.extend(keys.iter().map(String::as_str));
        assert_eq!(client.call(&exists), b":200\r\n");
        assert_eq!(client.call(&["DBSIZE"]), b":200\r\n");
        assert_eq!(
            client.call(&["MSETNX", "spread:0", "x", "spread:new", "y"]),
            b":0\r\n"
        );
        let mut del: Vec<&str> = vec!["DEL"];
        del.extend(keys.iter().take(150).map(String::as_str));
        assert_eq!(client.call(&del), b":150\r\n");
        assert_eq!(client.call(&["DBSIZE"]), b":50\r\n");
        assert_eq!(client.call(&["FLUSHALL"]), b"+OK\r\n");
        assert_eq!(client.call(&["DBSIZE"]), b":0\r\n");
        server.stop();
    }
}

#[test]
fn scan_keys_and_randomkey_cover_every_shard() {
    let server = start("uring");
    let cli = |args: &[&str]| redis_cli(server.port, args);
    for n in 0..300 {
        assert_eq!(cli(&["SET", &format!("scan:{n}"), "v"]), "OK\n");
    }
    cli(&["SET", "other", "v"]);
    let mut client = server.client();
    let mut scanned: Vec<String> = Vec::new();
    let mut cursor = "0".to_owned();
    let mut calls = 0;
    loop {
        let reply = client.call(&["SCAN", &cursor, "MATCH", "scan:*", "COUNT", "7"]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        let lines: Vec<&str> = text.split("\r\n").collect();
        // *2, $len, cursor, *N, then $len/key pairs.
        cursor = lines[2].to_owned();
        scanned.extend(
            lines[4..]
                .iter()
                .skip(1)
                .step_by(2)
                .map(|key| key.to_string()),
        );
        calls += 1;
        assert!(calls < 1000, "SCAN does not terminate");
        if cursor == "0" {
            break;
        }
    }
    scanned.sort();
    let mut expected: Vec<String> = (0..300).map(|n| format!("scan:{n}")).collect();
    expected.sort();
    assert_eq!(scanned, expected);
    let mut keys: Vec<String> = cli(&["KEYS", "scan:1?"])
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    let mut expected: Vec<String> = (10..20).map(|n| format!("scan:{n}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    let random = cli(&["RANDOMKEY"]);
    assert!(
        random.starts_with("scan:") || random == "other\n",
        "{random}"
    );
    server.stop();
}

#[test]
fn hello_client_info_config_command() {
    let server = start("epoll");
    let mut client = server.client();
    let hello = client.call(&["HELLO", "3", "SETNAME", "tester"]);
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    assert!(String::from_utf8_lossy(&hello).contains("proto\r\n:3\r\n"));
    assert_eq!(client.call(&["GET", "missing"]), b"_\r\n");
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), b"$6\r\ntester\r\n");
    assert_eq!(
        client.call(&["CLIENT", "SETINFO", "LIB-NAME", "rawtest"]),
        b"+OK\r\n"
    );
    let list = String::from_utf8_lossy(&client.call(&["CLIENT", "LIST"])).into_owned();
    assert!(
        list.contains("name=tester")
            && list.contains("lib-name=rawtest")
            && list.contains("resp=3"),
        "{list}"
    );
    let id = client.call(&["CLIENT", "ID"]);
    assert!(id.starts_with(b":"), "{id:?}");
    assert_eq!(client.call(&["HELLO", "2"]).first(), Some(&b'*'));
    assert_eq!(client.call(&["GET", "missing"]), b"$-1\r\n");
    let config = client.call(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(
        config,
        format!("*2\r\n$9\r\nmaxmemory\r\n$8\r\n{}\r\n", 64 << 20).into_bytes()
    );
    let count = client.call(&["COMMAND", "COUNT"]);
    let count: usize = String::from_utf8_lossy(&count[1..count.len() - 2])
        .parse()
        .unwrap();
    assert!(count >= 45, "{count}");
    let info =
        String::from_utf8_lossy(&client.call(&["COMMAND", "INFO", "get", "nosuch"])).into_owned();
    assert!(
        info.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"),
        "{info}"
    );
    assert!(info.ends_with("*-1\r\n"), "{info}");
    let info = String::from_utf8_lossy(&client.call(&["INFO"])).into_owned();
    for needle in [
        "# Server",
        "redis_version:",
        "io_backend:epoll",
        "# Keyspace",
        "# Ferrite",
        "shards:2",
    ] {
        assert!(info.contains(needle), "INFO lacks {needle}: {info}");
    }
    assert_eq!(client.call(&["QUIT"]), b"+OK\r\n");
    assert!(client.closed_by_server());
    server.stop();
}

#[test]
fn redis_benchmark_completes_and_its_keys_read_back() {
    for backend in BACKENDS {
        let server = start(backend);
        let output = tool("redis-benchmark", "redis-tools")
            .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
            .args([
                "-t",
                "set,get,incr,mset",
                "-n",
                "20000",
                "-P",
                "16",
                "-r",
                "1000",
                "-d",
                "16",
                "-q",
                "--csv",
            ])
            .output()
            .expect("run redis-benchmark");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "redis-benchmark failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for test in ["SET", "GET", "INCR", "MSET"] {
            assert!(
                stdout.contains(&format!("\"{test}")),
                "no {test} line: {stdout}"
            );
        }
        assert!(!stdout.to_lowercase().contains("error"), "{stdout}");
        // Every key SET and MSET wrote holds the benchmark's 16-byte value.
        let mut client = server.client();
        let keys = redis_cli(server.port, &["--scan", "--pattern", "key:*"]);
        let keys: Vec<&str> = keys.lines().collect();
        assert!(
            keys.len() > 900,
            "only {} keys from 20000 SETs over 1000 keys",
            keys.len()
        );
        for key in keys {
            let reply = client.call(&["GET", key]);
            assert!(
                reply.starts_with(b"$16\r\n"),
                "{key}: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        server.stop();
    }
}

#[test]
fn start_up_log_says_what_the_machine_offers_and_what_was_chosen() {
    let server = Server::start(&["--cores", "0", "--io", "auto"]);
    let log = server.stop();
    for needle in [
        "NUMA node",
        "topology",
        "physical_cores=",
        "I/O backend:",
        "shards chosen",
        "cpus=[0]",
        "shard pinned",
        "arena=DRAM",
        "ready: RESP on 127.0.0.1:",
    ] {
        assert!(
            log.contains(needle),
            "start-up log lacks {needle:?}:\n{log}"
        );
    }
}

/// A client the server has admitted (it answered PING), retrying while earlier connections
/// (the harness's own start-up probe, refused ones) are still being closed by the server.
fn admitted_client(server: &Server) -> common::Client {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut client = server.client();
        client.send(b"PING\r\n");
        if client.read_reply() == b"+PONG\r\n" {
            return client;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no client slot came free"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn connections_over_max_clients_are_refused_with_redis_words() {
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "1", "--max-clients", "2", "--io", backend]);
        let first = admitted_client(&server);
        let _second = admitted_client(&server);
        let mut third = server.client();
        assert_eq!(
            third.read_reply(),
            b"-ERR max number of clients reached\r\n"
        );
        assert!(third.closed_by_server());
        drop(first);
        // The slot frees once the server has seen the close.
        admitted_client(&server);
        server.stop();
    }
}

#[test]
fn client_list_shows_the_connections_of_every_shard() {
    for backend in BACKENDS {
        let server = start(backend);
        // Enough connections that the kernel's SO_REUSEPORT spread puts some on each shard.
        let mut clients: Vec<common::Client> = (0..8).map(|_| server.client()).collect();
        for (n, client) in clients.iter_mut().enumerate() {
            assert_eq!(
                client.call(&["CLIENT", "SETNAME", &format!("listed-{n}")]),
                b"+OK\r\n"
            );
        }
        let list = String::from_utf8_lossy(&clients[0].call(&["CLIENT", "LIST"])).into_owned();
        for n in 0..8 {
            assert!(
                list.contains(&format!("name=listed-{n} ")),
                "listed-{n} missing from:\n{list}"
            );
        }
        let info = String::from_utf8_lossy(&clients[3].call(&["CLIENT", "INFO"])).into_owned();
        assert!(
            info.contains("name=listed-3 ") && !info.contains("listed-4"),
            "{info}"
        );
        server.stop();
    }
}
