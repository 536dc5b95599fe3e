//! Access control and client limits, on the real binary: the password on both protocols, CONFIG
//! SET reaching every shard, and clients cut off when idle or stalled (both event loops).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, Client, Server, BACKENDS};

/// Long enough for a one-second timeout and the once-a-second sweep to act on a loaded machine.
const CUT_OFF_DEADLINE: Duration = Duration::from_secs(15);

fn reply_text(client: &mut Client, argv: &[&str]) -> String {
    String::from_utf8_lossy(&client.call(argv)).into_owned()
}

#[test]
fn resp_commands_wait_for_the_password() {
    let server = Server::start(&["--threads", "2", "--requirepass", "s3cret"]);
    let mut client = server.client();
    assert_eq!(
        reply_text(&mut client, &["SET", "k", "v"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert!(reply_text(&mut client, &["HELLO", "3"]).starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        reply_text(&mut client, &["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        reply_text(&mut client, &["AUTH", "admin", "s3cret"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(reply_text(&mut client, &["AUTH", "s3cret"]), "+OK\r\n");
    // The refused SET had no effect.
    assert_eq!(reply_text(&mut client, &["GET", "k"]), "$-1\r\n");
    assert_eq!(reply_text(&mut client, &["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(
        reply_text(&mut client, &["AUTH", "default", "s3cret"]),
        "+OK\r\n"
    );

    let mut hello = server.client();
    let reply = reply_text(&mut hello, &["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert!(reply.starts_with("%7\r\n"), "{reply}");
    assert_eq!(reply_text(&mut hello, &["GET", "k"]), "$1\r\nv\r\n");
    let mut wrong = server.client();
    assert!(
        reply_text(&mut wrong, &["HELLO", "3", "AUTH", "default", "x"]).starts_with("-WRONGPASS")
    );
    assert_eq!(
        reply_text(&mut wrong, &["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    // QUIT needs no password.
    assert_eq!(reply_text(&mut wrong, &["QUIT"]), "+OK\r\n");
    server.stop();
}

#[test]
fn auth_without_a_password_configured_says_so() {
    let server = Server::start(&["--threads", "1"]);
    let mut client = server.client();
    assert!(reply_text(&mut client, &["AUTH", "x"])
        .starts_with("-ERR AUTH <password> called without any password configured"));
    assert!(
        reply_text(&mut client, &["HELLO", "2", "AUTH", "default", "any"]).starts_with("*14\r\n")
    );
    server.stop();
}

/// A memcached connection: raw bytes, one line or block at a time.
struct Memcache {
    stream: TcpStream,
}

impl Memcache {
    fn connect(port: u16) -> Memcache {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(common::REPLY_TIMEOUT))
            .expect("timeout");
        Memcache { stream }
    }

    /// Sends `request` and reads until the reply ends with `end`.
    fn ask(&mut self, request: &str, end: &str) -> String {
        self.stream.write_all(request.as_bytes()).expect("send");
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        while !reply.ends_with(end.as_bytes()) {
            let count = self.stream.read(&mut chunk).expect("read");
            assert!(
                count > 0,
                "closed; have {:?}",
                String::from_utf8_lossy(&reply)
            );
            reply.extend_from_slice(&chunk[..count]);
        }
        String::from_utf8_lossy(&reply).into_owned()
    }
}

#[test]
fn memcached_clients_authenticate_with_a_set_as_in_memcached_authfile_mode() {
    let memcache_port = free_port();
    let port_text = memcache_port.to_string();
    let server = Server::start(&[
        "--threads",
        "2",
        "--memcache-port",
        &port_text,
        "--requirepass",
        "s3cret",
    ]);
    let mut client = Memcache::connect(memcache_port);
    assert_eq!(
        client.ask("get k\r\n", "\r\n"),
        "CLIENT_ERROR unauthenticated\r\n"
    );
    assert_eq!(
        client.ask("set auth 0 0 11\r\nalice wrong\r\n", "\r\n"),
        "CLIENT_ERROR authentication failure\r\n"
    );
    assert_eq!(
        client.ask("set auth 0 0 12\r\nalice s3cret\r\n", "\r\n"),
        "STORED\r\n"
    );
    // The authentication set stored nothing.
    assert_eq!(client.ask("get auth\r\n", "END\r\n"), "END\r\n");
    assert_eq!(client.ask("set k 5 0 1\r\nv\r\n", "\r\n"), "STORED\r\n");
    assert_eq!(
        client.ask("get k\r\n", "END\r\n"),
        "VALUE k 5 1\r\nv\r\nEND\r\n"
    );
    server.stop();
}

/// Opens connections until the kernel's SO_REUSEPORT spread has surely put some on each shard.
fn many_clients(server: &Server) -> Vec<Client> {
    (0..8).map(|_| server.client()).collect()
}

#[test]
fn config_set_reaches_every_shard_and_refuses_what_is_fixed() {
    let server = Server::start(&["--threads", "2"]);
    let mut admin = server.client();
    assert_eq!(
        reply_text(&mut admin, &["CONFIG", "SET", "requirepass", "pw", "port", "1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"
    );
    // All or nothing: the password of the refused request was not set.
    for mut client in many_clients(&server) {
        assert_eq!(reply_text(&mut client, &["PING"]), "+PONG\r\n");
    }
    assert_eq!(
        reply_text(
            &mut admin,
            &["CONFIG", "SET", "requirepass", "pw", "timeout", "300"]
        ),
        "+OK\r\n"
    );
    assert_eq!(
        reply_text(&mut admin, &["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
    );
    assert_eq!(
        reply_text(&mut admin, &["CONFIG", "GET", "timeout"]),
        "*2\r\n$7\r\ntimeout\r\n$3\r\n300\r\n"
    );
    // The connection that set it stays authenticated; new ones on every shard must log in.
    assert_eq!(reply_text(&mut admin, &["PING"]), "+PONG\r\n");
    for mut client in many_clients(&server) {
        assert_eq!(
            reply_text(&mut client, &["PING"]),
            "-NOAUTH Authentication required.\r\n"
        );
        assert_eq!(reply_text(&mut client, &["AUTH", "pw"]), "+OK\r\n");
    }
    assert!(reply_text(&mut admin, &["CONFIG", "SET", "timeout", "soon"]).contains("integer"));
    server.stop();
}

#[test]
fn config_set_maxclients_limits_new_connections() {
    let server = Server::start(&["--threads", "1"]);
    let mut admin = server.client();
    assert_eq!(
        reply_text(&mut admin, &["CONFIG", "SET", "maxclients", "2"]),
        "+OK\r\n"
    );
    let mut second = server.client();
    assert_eq!(reply_text(&mut second, &["PING"]), "+PONG\r\n");
    let mut third = server.client();
    assert_eq!(
        third.read_reply(),
        b"-ERR max number of clients reached\r\n"
    );
    server.stop();
}

/// Waits until the server has closed `client`'s connection; false if it is still open at the
/// deadline.
fn cut_off_within(client: &mut Client, deadline: Duration) -> bool {
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if client.closed_by_server() {
            return true;
        }
    }
    false
}

#[test]
fn idle_clients_are_closed_and_busy_ones_kept() {
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "1", "--io", backend, "--timeout", "1"]);
        let mut idle = server.client();
        let mut busy = server.client();
        let started = Instant::now();
        // Three idle timeouts of regular traffic keep the busy client open.
        while started.elapsed() < Duration::from_secs(3) {
            assert_eq!(reply_text(&mut busy, &["PING"]), "+PONG\r\n", "{backend}");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(cut_off_within(&mut idle, CUT_OFF_DEADLINE), "{backend}");
        assert_eq!(reply_text(&mut busy, &["PING"]), "+PONG\r\n", "{backend}");
        server.stop();
    }
}

#[test]
fn a_slowloris_client_is_cut_off_while_others_are_served() {
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "1", "--io", backend, "--stall-timeout", "1"]);
        let mut slow = server.client();
        let mut normal = server.client();
        // A request that never completes: a 100-byte value, one byte now and then.
        slow.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n");
        let started = Instant::now();
        let mut cut_off = false;
        while started.elapsed() < CUT_OFF_DEADLINE {
            if slow.stream.write_all(b"x").is_err() {
                cut_off = true;
                break;
            }
            assert_eq!(reply_text(&mut normal, &["PING"]), "+PONG\r\n", "{backend}");
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            cut_off || cut_off_within(&mut slow, Duration::ZERO),
            "{backend}"
        );
        assert_eq!(
            reply_text(&mut normal, &["GET", "k"]),
            "$-1\r\n",
            "{backend}"
        );
        server.stop();
    }
}

/// The server's resident memory, from /proc.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|number| number.parse().ok())
        .expect("a number");
    kib * 1024
}

#[test]
fn a_client_that_never_reads_is_cut_off_with_memory_bounded() {
    const VALUE_BYTES: usize = 512 * 1024;
    const GETS: usize = 400; // 200 MiB of replies if the server kept them all
    const RESIDENT_MAX: u64 = 160 << 20;
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "1", "--io", backend, "--stall-timeout", "1"]);
        let mut admin = server.client();
        let value = "v".repeat(VALUE_BYTES);
        assert_eq!(reply_text(&mut admin, &["SET", "big", &value]), "+OK\r\n");
        let mut reader_less = server.client();
        let get = common::encode_command(&[b"GET", b"big"]);
        reader_less.send(&get.repeat(GETS));
        let started = Instant::now();
        loop {
            assert!(
                resident_bytes(server.pid()) < RESIDENT_MAX,
                "{backend}: the server's memory grew past {RESIDENT_MAX} bytes"
            );
            let clients = reply_text(&mut admin, &["CLIENT", "LIST"]);
            if clients.matches("id=").count() == 1 {
                break;
            }
            assert!(
                started.elapsed() < CUT_OFF_DEADLINE,
                "{backend}: the client that never reads is still connected:\n{clients}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server.stop();
    }
}

#[test]
fn one_request_owed_more_than_the_limit_disconnects_its_client() {
    const VALUE_BYTES: usize = 512 * 1024;
    const COPIES: usize = 600; // 300 MiB of reply, over OWED_BYTES_MAX (256 MiB)
    for backend in BACKENDS {
        let server = Server::start(&["--threads", "2", "--io", backend]);
        let mut admin = server.client();
        let value = "v".repeat(VALUE_BYTES);
        assert_eq!(reply_text(&mut admin, &["SET", "big", &value]), "+OK\r\n");
        let mut greedy = server.client();
        let mut argv: Vec<&[u8]> = vec![b"MGET"];
        argv.extend(std::iter::repeat_n(&b"big"[..], COPIES));
        greedy.send_command(&argv);
        assert!(greedy.closed_by_server(), "{backend}");
        // A smaller one is answered in full.
        let mut modest = server.client();
        modest.send_command(&argv[..11]);
        let reply = modest.read_reply();
        assert_eq!(reply.len(), 5 + 10 * (VALUE_BYTES + 11), "{backend}");
        assert_eq!(reply_text(&mut admin, &["PING"]), "+PONG\r\n", "{backend}");
        server.stop();
    }
}

#[test]
fn memcached_connections_over_max_clients_are_refused_with_memcached_words() {
    let memcache_port = free_port();
    let port_text = memcache_port.to_string();
    let server = Server::start(&[
        "--threads",
        "1",
        "--memcache-port",
        &port_text,
        "--max-clients",
        "1",
    ]);
    // The harness's own connection (made to see the server listen) may not be closed yet.
    let started = Instant::now();
    let _admitted = loop {
        let mut client = Memcache::connect(memcache_port);
        if client.ask("version\r\n", "\r\n").starts_with("VERSION ") {
            break client;
        }
        assert!(started.elapsed() < CUT_OFF_DEADLINE, "never admitted");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut refused = Memcache::connect(memcache_port);
    let mut reply = String::new();
    refused
        .stream
        .read_to_string(&mut reply)
        .expect("read until closed");
    assert_eq!(reply, "SERVER_ERROR Too many open connections\r\n");
    server.stop();
}
