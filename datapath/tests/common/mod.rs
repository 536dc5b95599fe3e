//! Test harness: the real `ferrite` binary on a free loopback port, stopped by PID, plus a raw
//! RESP client and a redis-cli wrapper. Shared by every integration test file of `datapath`.
#![allow(dead_code)] // each test file uses its own part of the harness

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a test client waits for a reply before failing.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Both event loops; every behavioural test runs on each.
pub const BACKENDS: [&str; 2] = ["epoll", "uring"];

/// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running `ferrite`.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts ferrite on 127.0.0.1 and a free RESP port (memcached off) with `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("ferrite-test-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let port_text = port.to_string();
        let mut arguments = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port_text,
            "--memcache-port",
            "0",
            "--memory",
            "64MiB",
        ];
        arguments.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start target ferrite binary");
        let mut server = Server {
            child: Some(child),
            port,
            log,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!(
                    "ferrite exited with {status} before listening; log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ferrite did not listen within {START_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to the server's PID and waits for it to exit.
    pub fn stop_with(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        // SAFETY: kill(2) with the PID of our own child and a valid signal number.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for ferrite") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ferrite did not stop within {STOP_TIMEOUT:?} of signal {signal}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and the exit must be clean (status 0).
    pub fn stop(mut self) -> String {
        let status = self.stop_with(libc::SIGTERM);
        let log = self.log_text();
        assert!(
            status.success(),
            "ferrite exited with {status} after SIGTERM; log:\n{log}"
        );
        log
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A RESP client over a plain socket, for exact bytes.
pub struct Client {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to ferrite");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to ferrite");
    }

    /// Sends one command as a multibulk request.
    pub fn send_command(&mut self, argv: &[&[u8]]) {
        self.send(&encode_command(argv));
    }

    /// Reads exactly one reply (raw bytes).
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(length) = reply_length(&self.buffer) {
                return self.buffer.drain(..length).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let count = self.stream.read(&mut chunk).unwrap_or_else(|error| {
                panic!(
                    "reading a reply: {error}; have {:?}",
                    String::from_utf8_lossy(&self.buffer)
                )
            });
            assert!(
                count > 0,
                "connection closed; have {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..count]);
        }
    }

    /// Sends a command and returns its reply.
    pub fn call(&mut self, argv: &[&str]) -> Vec<u8> {
        let argv: Vec<&[u8]> = argv.iter().map(|argument| argument.as_bytes()).collect();
        self.send_command(&argv);
        self.read_reply()
    }

    /// Whether the server has closed the connection (after reading whatever it sent).
    pub fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(count) => self.buffer.extend_from_slice(&chunk[..count]),
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

pub fn encode_command(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for argument in argv {
        out.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        out.extend_from_slice(argument);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Length of the first complete RESP2/RESP3 reply in `bytes`, if there is one.
pub fn reply_length(bytes: &[u8]) -> Option<usize> {
    let line_end = bytes.windows(2).position(|pair| pair == b"\r\n")?;
    let header = std::str::from_utf8(&bytes[1..line_end]).ok()?;
    let after_line = line_end + 2;
    match bytes.first()? {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => Some(after_line),
        b'$' | b'=' | b'!' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(after_line);
            }
            let end = after_line + length as usize + 2;
            (bytes.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count: i64 = header.parse().ok()?;
            let elements = if count < 0 {
                0
            } else if matches!(bytes[0], b'%' | b'|') {
                2 * count
            } else {
                count
            };
            let mut offset = after_line;
            for _ in 0..elements {
                offset += reply_length(&bytes[offset..])?;
            }
            Some(offset)
        }
        other => panic!(
            "not a RESP reply type byte: {:?} in {:?}",
            *other as char,
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Runs a tool from a Debian package, failing (not skipping) with what to install when absent.
pub fn tool(program: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|directory| directory.join(program).is_file())
        })
        .unwrap_or(false);
    assert!(
        found,
        "{program} not found: install the Debian package {package} (bash scripts/setup.sh --test)"
    );
    Command::new(program)
}

/// `redis-cli -p PORT args...`, stdout as text; fails on a non-zero exit.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = tool("redis-cli", "redis-tools")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
