//! `ferrite-cli`: sends one command to a server over TCP or RDMA and prints the reply the way
//! redis-cli does (`(integer) 1`, `(nil)`, numbered arrays). For RESP (default) the words after
//! the options are the command; `--proto memcache` sends them as one text line (plus `--data`
//! as the data block of storage commands) and prints the reply lines as they come.
//!
//!   ferrite-cli --transport rdma --host 10.0.0.1 --port 7000 SET greeting hello
//!   ferrite-cli --port 6379 --fill 1000000 SET big       (a 1,000,000-byte value)

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ferrite_benches::load::transport::{server_address, Transport, TransportKind};
use ferrite_benches::load::wire::{Framed, Protocol};
use platform::verbs::LinkConfig;

/// How long to wait for a reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `--raw` listens for whatever the server says.
const RAW_LISTEN: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(about = "Send one command to ferrite over TCP or RDMA and print the reply")]
struct Arguments {
    #[arg(long, default_value = "tcp")]
    transport: TransportKind,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// redis or memcache.
    #[arg(long, default_value = "redis")]
    proto: Protocol,
    /// Append an argument of this many 'x' bytes (RESP) or use it as the data block (memcache).
    #[arg(long)]
    fill: Option<usize>,
    /// Print only the reply's length in bytes, not the reply (for large values).
    #[arg(long)]
    length_only: bool,
    /// Send the words as they are (joined by spaces, with \r and \n escapes), not as a
    /// command, and print whatever comes back until the server closes or 5 s pass.
    #[arg(long)]
    raw: bool,
    /// Over RDMA: this end's message buffer size (a message larger than the server's buffers
    /// is a protocol violation the server must survive).
    #[arg(long, default_value_t = LinkConfig::default().buffer_bytes)]
    message_bytes: u32,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(&arguments) {
        Ok(reply) => {
            print!("{reply}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ferrite-cli: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &Arguments) -> Result<String, String> {
    let address = server_address(&arguments.host, arguments.port, arguments.transport)?;
    let link = LinkConfig {
        buffer_bytes: arguments.message_bytes,
        ..LinkConfig::default()
    };
    let greeting = arguments.proto.greeting();
    let mut transport = Transport::connect(arguments.transport, address, greeting, link)
        .map_err(|error| format!("{address}: {error}"))?;
    if arguments.raw {
        return raw_exchange(&mut transport, &unescape(&arguments.words.join(" ")));
    }
    let request = encode(arguments);
    let mut written = 0;
    let mut input = Vec::new();
    let started = Instant::now();
    loop {
        if started.elapsed() > REPLY_TIMEOUT {
            return Err(format!(
                "no complete reply within {REPLY_TIMEOUT:?} ({} bytes)",
                input.len()
            ));
        }
        match transport.write(&request[written..]) {
            Ok(count) => written += count,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error.to_string()),
        }
        if !transport
            .read_into(&mut input)
            .map_err(|error| error.to_string())?
        {
            return Err("the server closed the connection".into());
        }
        if written < request.len() {
            continue;
        }
        let complete = match arguments.proto {
            Protocol::Redis => match arguments.proto.frame_reply(&input) {
                Framed::Reply { len, .. } => Some(len),
                Framed::Garbage => return Err("reply is not RESP".into()),
                Framed::Incomplete => None,
            },
            _ => memcache_reply_end(&input),
        };
        if let Some(len) = complete {
            let reply = &input[..len];
            if arguments.length_only {
                return Ok(format!("{len}\n"));
            }
            return Ok(match arguments.proto {
                Protocol::Redis => render(reply, 0).map(|(text, _)| text).unwrap_or_default(),
                _ => String::from_utf8_lossy(reply).replace("\r\n", "\n"),
            });
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// `\r` and `\n` written as two characters become the bytes.
fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

/// Sends `request` as is and returns all the server says until it closes or RAW_LISTEN passes.
fn raw_exchange(transport: &mut Transport, request: &[u8]) -> Result<String, String> {
    let started = Instant::now();
    let mut written = 0;
    let mut input = Vec::new();
    let mut closed = false;
    while started.elapsed() < RAW_LISTEN && !closed {
        if written < request.len() {
            match transport.write(&request[written..]) {
                Ok(count) => written += count,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        closed = !transport.read_into(&mut input).unwrap_or(false);
        std::thread::sleep(Duration::from_millis(1));
    }
    let ending = if closed {
        "(closed by the server)\n"
    } else {
        "(still open)\n"
    };
    Ok(format!(
        "{}\n{ending}",
        String::from_utf8_lossy(&input).trim_end()
    ))
}

fn encode(arguments: &Arguments) -> Vec<u8> {
    let mut out = Vec::new();
    let filler = arguments.fill.map(|len| vec![b'x'; len]);
    if arguments.proto == Protocol::Redis {
        let mut words: Vec<&[u8]> = arguments.words.iter().map(|word| word.as_bytes()).collect();
        words.extend(filler.as_deref());
        out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
        for word in words {
            out.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            out.extend_from_slice(word);
            out.extend_from_slice(b"\r\n");
        }
    } else {
        out.extend_from_slice(arguments.words.join(" ").as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(data) = filler {
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// memcached replies end with a line that is not a VALUE header or data: END, STORED, an error…
fn memcache_reply_end(input: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let end = at
            + input
                .get(at..)?
                .windows(2)
                .position(|pair| pair == b"\r\n")?;
        let line = &input[at..end];
        let fields: Vec<&[u8]> = line.split(|&byte| byte == b' ').collect();
        let data = match (fields.first().copied(), fields.len()) {
            (Some(b"VALUE"), 4..=5) => fields[3],
            (Some(b"VA"), _) if fields.len() >= 2 => fields[1],
            _ if line.starts_with(b"STAT ") => b"-",
            _ => return Some(end + 2),
        };
        let skip = std::str::from_utf8(data)
            .ok()
            .and_then(|text| text.parse::<usize>().ok());
        at = match skip {
            Some(length) => end + 2 + length + 2,
            None => end + 2,
        };
        if line.starts_with(b"VA ") {
            return (input.len() >= at).then_some(at);
        }
    }
}

/// Renders one RESP reply as redis-cli shows it; returns the text and the bytes it took.
fn render(input: &[u8], depth: usize) -> Option<(String, usize)> {
    let end = input.windows(2).position(|pair| pair == b"\r\n")?;
    let body = String::from_utf8_lossy(&input[1..end]).into_owned();
    let after = end + 2;
    let indent = "   ".repeat(depth);
    Some(match input[0] {
        b'+' => (format!("{body}\n"), after),
        b'-' => (format!("(error) {body}\n"), after),
        b':' => (format!("(integer) {body}\n"), after),
        b'_' => ("(nil)\n".into(), after),
        b'$' if body == "-1" => ("(nil)\n".into(), after),
        b'$' => {
            let length: usize = body.parse().ok()?;
            let value = String::from_utf8_lossy(input.get(after..after + length)?);
            (format!("\"{value}\"\n"), after + length + 2)
        }
        b'*' if body == "-1" => ("(nil)\n".into(), after),
        b'*' | b'~' | b'%' => {
            let count: usize = body.parse().ok()?;
            let count = if input[0] == b'%' { count * 2 } else { count };
            if count == 0 {
                return Some(("(empty array)\n".into(), after));
            }
            let mut text = String::new();
            let mut at = after;
            for position in 1..=count {
                let (element, used) = render(&input[at..], depth + 1)?;
                let prefix = if position == 1 {
                    String::new()
                } else {
                    indent.clone()
                };
                text.push_str(&format!("{prefix}{position}) {element}"));
                at += used;
            }
            (text, at)
        }
        _ => (
            format!("{}\n", String::from_utf8_lossy(&input[..end])),
            after,
        ),
    })
}
