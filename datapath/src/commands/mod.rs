//! RESP commands: each request is checked against the [`table`], lowered to [`Op`]s routed to
//! their owner shards, or answered by the connection's own shard (PING, HELLO, CLIENT, ...).
//! Errors use Redis' exact words, because clients parse them.

pub mod args;
pub mod table;

use std::borrow::Cow;

use crate::exec::{Arithmetic, Condition, Creation, ExpireCondition, Expiry, Op};
use crate::observe::ResetScope;
use crate::protocol::resp::{self, Reply, Version};
use crate::shard::conn::Conn;
use crate::shard::finish::{
    Finish, InfoRequest, TimeUnit, SCAN_LOCAL_CURSOR_MAX, SCAN_SHARD_SHIFT,
};
use crate::shard::{now_ms, Core};
use crate::tunables::Change;
use args::{is, parse_f64, parse_i64};

/// SCAN's COUNT when none is given (Redis' default).
const SCAN_COUNT_DEFAULT: usize = 10;
/// Largest SCAN COUNT honoured in one call, so one call cannot build an unbounded reply.
const SCAN_COUNT_MAX: usize = 100_000;
/// Bytes of each argument quoted back in an unknown-command error (Redis quotes 128).
const QUOTED_ARGUMENT_BYTES_MAX: usize = 128;
/// Largest offset SETRANGE accepts: the resulting value must still be an item the store takes
/// (the store refuses larger values itself; this keeps the zero padding from being built).
const SETRANGE_OFFSET_MAX: i64 = 512 << 20;

/// Arguments of a request kept in a stack array rather than a vector.
const ARGUMENTS_ON_STACK: usize = 8;

/// The server's version as INFO and HELLO report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// SLOWLOG GET's count when none is given (Redis' default).
const SLOWLOG_GET_DEFAULT: usize = 10;
/// FERRITE.HOTKEYS' count when none is given.
const HOTKEYS_COUNT_DEFAULT: usize = 10;

/// Runs one parsed request (`request` over `input`) for connection `conn`; returns the command
/// it was, None when unknown or refused before authentication (counted as `unknown`).
pub fn dispatch(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    request: &resp::Request,
    input: &[u8],
) -> Option<&'static table::Spec> {
    // Most commands have a handful of arguments: keep those on the stack.
    let mut small: [&[u8]; ARGUMENTS_ON_STACK] = [&[]; ARGUMENTS_ON_STACK];
    let large: Vec<&[u8]>;
    let argv: &[&[u8]] = if request.len() <= ARGUMENTS_ON_STACK {
        for (slot, argument) in small.iter_mut().zip(request.args(input)) {
            *slot = argument;
        }
        &small[..request.len()]
    } else {
        large = request.args(input).collect();
        &large
    };
    core.commands += 1;
    conn.commands += 1;
    let Some(spec) = table::lookup(argv[0]) else {
        unknown_command(conn, argv);
        return None;
    };
    conn.last_command = spec.name;
    if !conn.authenticated && !spec.flags.contains(&"no_auth") {
        conn.reply().error(crate::access::RESP_NOAUTH.as_bytes());
        return None;
    }
    if !spec.arity_ok(argv.len()) {
        conn.reply().error_fmt(format_args!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
        return Some(spec);
    }
    let mut run = Run {
        core,
        conn_index,
        conn,
    };
    run.command(spec.name, argv);
    Some(spec)
}

fn unknown_command(conn: &mut Conn, argv: &[&[u8]]) {
    let quote = |bytes: &[u8]| {
        String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_ARGUMENT_BYTES_MAX)]).into_owned()
    };
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        quote(argv[0])
    );
    for argument in &argv[1..] {
        text.push('\'');
        text.push_str(&quote(argument));
        text.push_str("' ");
    }
    conn.reply().error(text.as_bytes());
}

/// One command being run: the shard, and the connection it came on.
struct Run<'c> {
    core: &'c mut Core,
    conn_index: u32,
    conn: &'c mut Conn,
}

impl Run<'_> {
    fn reply(&mut self) -> Reply<'_> {
        self.conn.reply()
    }

    fn error(&mut self, text: &str) {
        self.reply().error(text.as_bytes());
    }

    fn single(&mut self, finish: Finish, op: Op<'_>) {
        let key = op.key().expect("single-key ops have a key");
        let target = self.core.owner(key);
        self.core
            .run_single(self.conn_index, self.conn, finish, op, target);
    }

    fn every_shard(&mut self, finish: Finish, op: Op<'static>) {
        let shards = self.core.shared.shard_count;
        self.core.run_multi(
            self.conn_index,
            self.conn,
            finish,
            (0..shards).map(|shard| (shard, op.clone())),
        );
    }

    fn per_key<'a>(
        &mut self,
        finish: Finish,
        keys: &[&'a [u8]],
        make: impl Fn(&'a [u8]) -> Op<'a>,
    ) {
        if let [key] = keys {
            self.single(finish, make(key));
            return;
        }
        let core = &mut *self.core;
        let shard_count = core.shared.shard_count;
        let parts = keys
            .iter()
            .map(|key| (crate::shard::owner_of(key, shard_count), make(key)));
        core.run_multi(self.conn_index, self.conn, finish, parts);
    }

    fn command(&mut self, name: &str, argv: &[&[u8]]) {
        match name {
            "get" => self.single(
                Finish::Bulk,
                Op::Get {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "set" => self.set(argv),
            "setnx" => self.single(
                Finish::StoredFlag,
                set_op(argv[1], argv[2], Expiry::Never, Condition::IfAbsent, false),
            ),
            "setex" | "psetex" => self.setex(name, argv),
            "getset" => self.single(
                Finish::Bulk,
                set_op(argv[1], argv[2], Expiry::Never, Condition::Always, true),
            ),
            "getdel" => self.single(
                Finish::Bulk,
                Op::GetAndDelete {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "getex" => self.getex(argv),
            "mget" => self.per_key(Finish::BulkArray, &argv[1..], |key| Op::Get {
                key: Cow::Borrowed(key),
            }),
            "mset" | "msetnx" => self.mset(name, argv),
            "del" | "unlink" => self.per_key(Finish::Sum, &argv[1..], |key| Op::Delete {
                key: Cow::Borrowed(key),
            }),
            "exists" => self.per_key(Finish::Sum, &argv[1..], |key| Op::Exists {
                key: Cow::Borrowed(key),
            }),
            "type" => self.single(
                Finish::Type,
                Op::Exists {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "expire" | "pexpire" | "expireat" | "pexpireat" => self.expire(name, argv),
            "ttl" => self.single(
                lifetime(TimeUnit::Seconds, false),
                Op::Ttl {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "pttl" => self.single(
                lifetime(TimeUnit::Milliseconds, false),
                Op::Ttl {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "expiretime" => self.single(
                lifetime(TimeUnit::Seconds, true),
                Op::ExpireTime {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "pexpiretime" => self.single(
                lifetime(TimeUnit::Milliseconds, true),
                Op::ExpireTime {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "persist" => self.single(
                Finish::Integer,
                Op::Persist {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "incr" => self.increment(argv[1], 1),
            "decr" => self.increment(argv[1], -1),
            "incrby" | "decrby" => match parse_i64(argv[2]) {
                Some(delta) if name == "incrby" => self.increment(argv[1], delta),
                Some(delta) => match delta.checked_neg() {
                    Some(delta) => self.increment(argv[1], delta),
                    None => self.error("ERR decrement would overflow"),
                },
                None => self.error("ERR value is not an integer or out of range"),
            },
            "incrbyfloat" => match parse_f64(argv[2]) {
                Some(delta) => self.single(
                    Finish::Float,
                    Op::IncrementFloat {
                        key: Cow::Borrowed(argv[1]),
                        delta,
                    },
                ),
                None => self.error("ERR value is not a valid float"),
            },
            "append" => self.single(
                Finish::Integer,
                Op::Concat {
                    key: Cow::Borrowed(argv[1]),
                    value: Cow::Borrowed(argv[2]),
                    prepend: false,
                    create: Some(Creation {
                        flags: 0,
                        expiry: Expiry::Never,
                    }),
                },
            ),
            "strlen" => self.single(
                Finish::Integer,
                Op::Length {
                    key: Cow::Borrowed(argv[1]),
                },
            ),
            "getrange" => match (parse_i64(argv[2]), parse_i64(argv[3])) {
                (Some(start), Some(end)) => self.single(
                    Finish::Range { start, end },
                    Op::Get {
                        key: Cow::Borrowed(argv[1]),
                    },
                ),
                _ => self.error("ERR value is not an integer or out of range"),
            },
            "setrange" => match parse_i64(argv[2]) {
                Some(offset) if offset < 0 => self.error("ERR offset is out of range"),
                Some(offset) if offset > SETRANGE_OFFSET_MAX => {
                    self.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
                }
                Some(offset) => self.single(
                    Finish::Integer,
                    Op::SetRange {
                        key: Cow::Borrowed(argv[1]),
                        offset: offset as usize,
                        value: Cow::Borrowed(argv[3]),
                    },
                ),
                None => self.error("ERR value is not an integer or out of range"),
            },
            "dbsize" => self.every_shard(Finish::Sum, Op::Count),
            "flushdb" | "flushall" => self.flush(argv),
            "keys" => {
                let pattern = (argv[1] != b"*").then(|| Cow::Owned(argv[1].to_vec()));
                self.every_shard(
                    Finish::KeyArray,
                    Op::Scan {
                        cursor: 0,
                        count: usize::MAX,
                        pattern,
                    },
                );
            }
            "scan" => self.scan(argv),
            "randomkey" => {
                let pick = self.core.next_random() as usize;
                self.every_shard(Finish::RandomKey { pick }, Op::RandomKey);
            }
            "info" => self.info(argv),
            "ping" => match argv {
                [_] => self.reply().simple(b"PONG"),
                [_, message] => self.reply().bulk(message),
                _ => self.error("ERR wrong number of arguments for 'ping' command"),
            },
            "echo" => self.reply().bulk(argv[1]),
            "quit" => {
                self.reply().simple(b"OK");
                self.conn.input_closed = true;
                self.conn.close_after_output = true;
            }
            "select" => match parse_i64(argv[1]) {
                Some(0) => self.reply().simple(b"OK"),
                Some(_) => self.error("ERR DB index is out of range"),
                None => self.error("ERR value is not an integer or out of range"),
            },
            "time" => {
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_micros())
                    .unwrap_or(0);
                let mut reply = self.reply();
                reply.array(2);
                reply.bulk((micros / 1_000_000).to_string().as_bytes());
                reply.bulk((micros % 1_000_000).to_string().as_bytes());
            }
            "hello" => self.hello(argv),
            "auth" => self.auth(argv),
            "client" => self.client(argv),
            "config" => self.config(argv),
            "command" => self.command_command(argv),
            "slowlog" => self.slowlog(argv),
            "ferrite.hotkeys" => {
                let count = match argv {
                    [_] => HOTKEYS_COUNT_DEFAULT,
                    [_, option, count] if is(option, "COUNT") => match parse_i64(count) {
                        Some(count) if count >= 0 => count as usize,
                        _ => return self.error("ERR value is out of range, must be positive"),
                    },
                    _ => return self.error("ERR syntax error"),
                };
                self.every_shard(Finish::HotKeys { count }, Op::Stats);
            }
            _ => unreachable!("every table entry has a handler: {name}"),
        }
    }

    fn set(&mut self, argv: &[&[u8]]) {
        let mut expiry = Expiry::Never;
        let mut condition = Condition::Always;
        let mut return_old = false;
        let mut expiry_given = false;
        let mut index = 3;
        while index < argv.len() {
            let option = argv[index];
            let next = argv.get(index + 1).copied();
            if is(option, "NX") && condition == Condition::Always {
                condition = Condition::IfAbsent;
            } else if is(option, "XX") && condition == Condition::Always {
                condition = Condition::IfPresent;
            } else if is(option, "GET") {
                return_old = true;
            } else if is(option, "KEEPTTL") && !expiry_given {
                expiry = Expiry::Keep;
                expiry_given = true;
            } else if let (Some(unit), Some(number), false) =
                (expiry_unit(option), next, expiry_given)
            {
                match absolute_expiry(number, unit, now_ms()) {
                    Some(at) => expiry = Expiry::AtMs(at),
                    None => return self.error("ERR invalid expire time in 'set' command"),
                }
                expiry_given = true;
                index += 1;
            } else {
                return self.error("ERR syntax error");
            }
            index += 1;
        }
        let finish = if return_old {
            Finish::Bulk
        } else {
            Finish::OkOrNull
        };
        self.single(
            finish,
            set_op(argv[1], argv[2], expiry, condition, return_old),
        );
    }

    fn setex(&mut self, name: &str, argv: &[&[u8]]) {
        let unit = if name == "setex" {
            ExpiryUnit::Seconds
        } else {
            ExpiryUnit::Milliseconds
        };
        match absolute_expiry(argv[2], unit, now_ms()) {
            Some(at) => self.single(
                Finish::Ok,
                set_op(argv[1], argv[3], Expiry::AtMs(at), Condition::Always, false),
            ),
            None => self.error(&format!("ERR invalid expire time in '{name}' command")),
        }
    }

    fn getex(&mut self, argv: &[&[u8]]) {
        let key = Cow::Borrowed(argv[1]);
        match argv {
            [_, _] => self.single(Finish::Bulk, Op::Get { key }),
            [_, _, option] if is(option, "PERSIST") => self.single(
                Finish::Bulk,
                Op::GetAndExpire {
                    key,
                    expiry: Expiry::Never,
                },
            ),
            [_, _, option, number] => match expiry_unit(option) {
                Some(unit) => match absolute_expiry(number, unit, now_ms()) {
                    Some(at) => self.single(
                        Finish::Bulk,
                        Op::GetAndExpire {
                            key,
                            expiry: Expiry::AtMs(at),
                        },
                    ),
                    None => self.error("ERR invalid expire time in 'getex' command"),
                },
                None => self.error("ERR syntax error"),
            },
            _ => self.error("ERR syntax error"),
        }
    }

    fn mset(&mut self, name: &str, argv: &[&[u8]]) {
        if argv.len().is_multiple_of(2) {
            return self.error(&format!(
                "ERR wrong number of arguments for '{name}' command"
            ));
        }
        let pairs = &argv[1..];
        let shard_count = self.core.shared.shard_count;
        if name == "msetnx" {
            // First phase: does any key exist? (see Core::continue_if_complete)
            let finish = Finish::MsetNx {
                pairs: pairs.iter().map(|argument| argument.to_vec()).collect(),
            };
            let keys: Vec<&[u8]> = pairs.iter().step_by(2).copied().collect();
            let parts = keys.iter().map(|key| {
                (
                    crate::shard::owner_of(key, shard_count),
                    Op::Exists {
                        key: Cow::Borrowed(*key),
                    },
                )
            });
            self.core
                .run_multi(self.conn_index, self.conn, finish, parts);
            return;
        }
        let parts = pairs.chunks_exact(2).map(|pair| {
            (
                crate::shard::owner_of(pair[0], shard_count),
                set_op(pair[0], pair[1], Expiry::Never, Condition::Always, false),
            )
        });
        self.core
            .run_multi(self.conn_index, self.conn, Finish::Ok, parts);
    }

    fn expire(&mut self, name: &str, argv: &[&[u8]]) {
        let scale = if name.starts_with('p') { 1 } else { 1000 };
        let absolute = name.ends_with("at");
        let Some(number) = parse_i64(argv[2]) else {
            return self.error("ERR value is not an integer or out of range");
        };
        let mut condition = ExpireCondition::Always;
        for option in &argv[3..] {
            let wanted = if is(option, "NX") {
                ExpireCondition::IfNone
            } else if is(option, "XX") {
                ExpireCondition::IfSome
            } else if is(option, "GT") {
                ExpireCondition::IfLater
            } else if is(option, "LT") {
                ExpireCondition::IfEarlier
            } else {
                return self.error(&format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                ));
            };
            if condition != ExpireCondition::Always && condition != wanted {
                let message = if matches!(
                    (condition, wanted),
                    (ExpireCondition::IfLater, ExpireCondition::IfEarlier)
                        | (ExpireCondition::IfEarlier, ExpireCondition::IfLater)
                ) {
                    "ERR GT and LT options at the same time are not compatible"
                } else {
                    "ERR NX and XX, GT or LT options at the same time are not compatible"
                };
                return self.error(message);
            }
            condition = wanted;
        }
        let at = number.checked_mul(scale).and_then(|ms| {
            if absolute {
                Some(ms)
            } else {
                ms.checked_add(now_ms() as i64)
            }
        });
        let Some(at) = at else {
            return self.error(&format!("ERR invalid expire time in '{name}' command"));
        };
        // A time in the past deletes the key; the store takes it as "expires now".
        let at = at.max(0) as u64;
        self.single(
            Finish::Integer,
            Op::Expire {
                key: Cow::Borrowed(argv[1]),
                expiry: Expiry::AtMs(at),
                condition,
            },
        );
    }

    fn increment(&mut self, key: &[u8], delta: i64) {
        let op = Op::Increment {
            key: Cow::Borrowed(key),
            arithmetic: Arithmetic::Signed(delta),
            create: true,
        };
        self.single(Finish::Integer, op);
    }

    fn flush(&mut self, argv: &[&[u8]]) {
        match argv {
            [_] => {}
            [_, mode] if is(mode, "SYNC") || is(mode, "ASYNC") => {}
            _ => return self.error("ERR syntax error"),
        }
        self.every_shard(Finish::Ok, Op::Flush);
    }

    fn scan(&mut self, argv: &[&[u8]]) {
        let Some(cursor) = std::str::from_utf8(argv[1])
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        else {
            return self.error("ERR invalid cursor");
        };
        let mut count = SCAN_COUNT_DEFAULT;
        let mut pattern = None;
        let mut index = 2;
        while index < argv.len() {
            let Some(value) = argv.get(index + 1) else {
                return self.error("ERR syntax error");
            };
            if is(argv[index], "COUNT") {
                match parse_i64(value) {
                    Some(number) if number >= 1 => count = (number as usize).min(SCAN_COUNT_MAX),
                    Some(_) => return self.error("ERR syntax error"),
                    None => return self.error("ERR value is not an integer or out of range"),
                }
            } else if is(argv[index], "MATCH") {
                pattern = (*value != b"*").then(|| Cow::Owned(value.to_vec()));
            } else if is(argv[index], "TYPE") {
                // Every key is a string: TYPE string keeps all, any other type none.
                if !is(value, "STRING") {
                    let mut reply = self.reply();
                    reply.array(2);
                    reply.bulk(b"0");
                    reply.array(0);
                    return;
                }
            } else {
                return self.error("ERR syntax error");
            }
            index += 2;
        }
        let shard_count = self.core.shared.shard_count;
        let shard = (cursor >> SCAN_SHARD_SHIFT) as usize;
        if shard >= shard_count {
            // A cursor from another run (or made up): start over, as Redis does with junk.
            let mut reply = self.reply();
            reply.array(2);
            reply.bulk(b"0");
            reply.array(0);
            return;
        }
        let local_cursor = cursor & SCAN_LOCAL_CURSOR_MAX;
        let op = Op::Scan {
            cursor: local_cursor,
            count,
            pattern,
        };
        self.core.run_single(
            self.conn_index,
            self.conn,
            Finish::Scan { shard, shard_count },
            op,
            shard,
        );
    }

    fn info(&mut self, argv: &[&[u8]]) {
        let wants = |section: &str| {
            argv.len() == 1
                || argv[1..].iter().any(|argument| {
                    is(argument, "ALL") || is(argument, "EVERYTHING") || is(argument, "DEFAULT")
                })
                || argv[1..]
                    .iter()
                    .any(|argument| argument.eq_ignore_ascii_case(section.as_bytes()))
        };
        let shared = &self.core.shared;
        let mut text_before = String::new();
        if wants("server") {
            let uptime_seconds = now_ms().saturating_sub(shared.started_ms) / 1000;
            text_before.push_str(&format!(
                "# Server\r\nredis_version:7.2.0\r\nferrite_version:{VERSION}\r\nredis_mode:standalone\r\nos:{} {}\r\nprocess_id:{}\r\nuptime_in_seconds:{uptime_seconds}\r\n{}\r\n",
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.server_info,
            ));
        }
        // Redis leaves these out of a plain INFO; ALL and EVERYTHING or their names ask for them.
        let named = |section: &str| {
            argv[1..].iter().any(|argument| {
                is(argument, "ALL")
                    || is(argument, "EVERYTHING")
                    || argument.eq_ignore_ascii_case(section.as_bytes())
            })
        };
        let request = InfoRequest {
            text_before,
            memory: wants("memory"),
            stats: wants("stats"),
            keyspace: wants("keyspace"),
            clients: wants("clients"),
            clients_max: self.core.shared.clients_max(),
            commandstats: named("commandstats"),
            latencystats: named("latencystats"),
            ferrite: wants("ferrite")
                .then(|| format!("shards:{}\r\n{}", shared.shard_count, shared.server_info)),
        };
        self.every_shard(Finish::Info(Box::new(request)), Op::Stats);
    }

    /// AUTH [user] password.
    fn auth(&mut self, argv: &[&[u8]]) {
        let (user, password) = match argv {
            [_, password] => (None, *password),
            [_, user, password] => (Some(*user), *password),
            _ => return self.error("ERR syntax error"),
        };
        match self.authenticate(user, password) {
            Ok(()) => self.reply().simple(b"OK"),
            Err(message) => self.error(message),
        }
    }

    /// Checks credentials against the shard's password; a wrong guess also logs the connection
    /// out, as Redis does.
    fn authenticate(&mut self, user: Option<&[u8]>, password: &[u8]) -> Result<(), &'static str> {
        let Some(secret) = &self.core.tunables.requirepass else {
            return Err(crate::access::RESP_AUTH_NOT_CONFIGURED);
        };
        let admitted = crate::access::resp_admits(secret, user, password);
        self.conn.authenticated = admitted;
        if admitted {
            Ok(())
        } else {
            Err(crate::access::RESP_WRONGPASS)
        }
    }

    fn hello(&mut self, argv: &[&[u8]]) {
        let mut version = self.conn.resp.version;
        let mut index = 1;
        if let Some(requested) = argv.get(1) {
            version = match parse_i64(requested) {
                Some(2) => Version::Resp2,
                Some(3) => Version::Resp3,
                Some(_) => return self.error("NOPROTO unsupported protocol version"),
                None => {
                    return self.error("ERR Protocol version is not an integer or out of range")
                }
            };
            index = 2;
        }
        let mut name = None;
        let mut credentials = None;
        while index < argv.len() {
            if is(argv[index], "AUTH") && index + 2 < argv.len() {
                credentials = Some((argv[index + 1], argv[index + 2]));
                index += 3;
            } else if is(argv[index], "SETNAME") && index + 1 < argv.len() {
                if !valid_client_name(argv[index + 1]) {
                    return self.error(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                name = Some(argv[index + 1].to_vec());
                index += 2;
            } else {
                return self.error(&format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(argv[index])
                ));
            }
        }
        match credentials {
            // With no password set, the default user takes any password, as in Redis.
            Some((user, password)) if self.core.tunables.requirepass.is_some() => {
                if let Err(message) = self.authenticate(Some(user), password) {
                    return self.error(message);
                }
            }
            _ if !self.conn.authenticated => {
                return self.error(crate::access::RESP_NOAUTH_HELLO);
            }
            _ => {}
        }
        self.conn.resp.version = version;
        if name.is_some() {
            self.conn.resp.name = name;
        }
        let client_id = self.conn.client_id;
        let mut reply = self.reply();
        reply.map(7);
        reply.bulk(b"server");
        reply.bulk(b"redis");
        reply.bulk(b"version");
        reply.bulk(b"7.2.0");
        reply.bulk(b"proto");
        reply.integer(if version == Version::Resp3 { 3 } else { 2 });
        reply.bulk(b"id");
        reply.integer(client_id as i64);
        reply.bulk(b"mode");
        reply.bulk(b"standalone");
        reply.bulk(b"role");
        reply.bulk(b"master");
        reply.bulk(b"modules");
        reply.array(0);
    }

    fn client(&mut self, argv: &[&[u8]]) {
        let sub = argv[1];
        if is(sub, "ID") && argv.len() == 2 {
            let id = self.conn.client_id as i64;
            self.reply().integer(id);
        } else if is(sub, "SETNAME") && argv.len() == 3 {
            if !valid_client_name(argv[2]) {
                return self.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            self.conn.resp.name = (!argv[2].is_empty()).then(|| argv[2].to_vec());
            self.reply().simple(b"OK");
        } else if is(sub, "GETNAME") && argv.len() == 2 {
            match self.conn.resp.name.clone() {
                Some(name) => self.reply().bulk(&name),
                None => self.reply().null(),
            }
        } else if is(sub, "SETINFO") && argv.len() == 4 {
            let value = Some(argv[3].to_vec());
            if is(argv[2], "LIB-NAME") {
                self.conn.resp.library_name = value;
            } else if is(argv[2], "LIB-VER") {
                self.conn.resp.library_version = value;
            } else {
                return self.error(&format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(argv[2])
                ));
            }
            self.reply().simple(b"OK");
        } else if is(sub, "INFO") && argv.len() == 2 {
            let line = crate::shard::conn::client_line(self.conn);
            self.reply().verbatim(b"txt", line.as_bytes());
        } else if is(sub, "LIST") && argv.len() == 2 {
            self.every_shard(Finish::ClientList, Op::ClientList);
        } else {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(sub)
            );
            self.error(&text);
        }
    }

    fn config(&mut self, argv: &[&[u8]]) {
        let sub = argv[1];
        if is(sub, "GET") && argv.len() >= 3 {
            let changeable = self
                .core
                .tunables
                .pairs()
                .map(|(name, value)| (name.to_owned(), value));
            let clients_max = (
                "maxclients".to_owned(),
                self.core.shared.clients_max().to_string(),
            );
            let matched: Vec<(String, String)> = self
                .core
                .shared
                .settings
                .iter()
                .cloned()
                .chain(changeable)
                .chain(self.core.observe.settings_pairs())
                .chain([clients_max])
                .filter(|(name, _)| {
                    argv[2..].iter().any(|pattern| {
                        crate::exec::glob_match(&pattern.to_ascii_lowercase(), name.as_bytes())
                    })
                })
                .collect();
            let mut reply = self.reply();
            reply.map(matched.len());
            for (name, value) in matched {
                reply.bulk(name.as_bytes());
                reply.bulk(value.as_bytes());
            }
        } else if is(sub, "RESETSTAT") && argv.len() == 2 {
            self.every_shard(Finish::Ok, Op::ResetStats(ResetScope::All));
        } else if is(sub, "SET") && argv.len() >= 4 && argv.len().is_multiple_of(2) {
            // All or nothing: every pair is checked before any shard changes.
            let mut changes = Vec::with_capacity(argv.len() / 2 - 1);
            for pair in argv[2..].chunks_exact(2) {
                match Change::parse(pair[0], pair[1]) {
                    Ok(change) => changes.push(change),
                    Err(reason) => {
                        let text = format!(
                            "ERR CONFIG SET failed (possibly related to argument '{}') - {reason}",
                            String::from_utf8_lossy(pair[0])
                        );
                        return self.error(&text);
                    }
                }
            }
            self.every_shard(Finish::Ok, Op::Configure(changes));
        } else {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(sub)
            );
            self.error(&text);
        }
    }

    fn slowlog(&mut self, argv: &[&[u8]]) {
        let sub = argv[1];
        if is(sub, "GET") && argv.len() <= 3 {
            let count = match argv.get(2).map(|count| parse_i64(count)) {
                None => SLOWLOG_GET_DEFAULT,
                // Redis: -1 asks for every entry.
                Some(Some(-1)) => usize::MAX,
                Some(Some(count)) if count >= 0 => count as usize,
                Some(_) => {
                    return self.error("ERR count should be greater than or equal to -1");
                }
            };
            self.every_shard(Finish::SlowlogGet { count }, Op::Stats);
        } else if is(sub, "LEN") && argv.len() == 2 {
            self.every_shard(Finish::SlowlogLen, Op::Stats);
        } else if is(sub, "RESET") && argv.len() == 2 {
            self.every_shard(Finish::Ok, Op::ResetStats(ResetScope::Slowlog));
        } else {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                String::from_utf8_lossy(sub)
            );
            self.error(&text);
        }
    }

    fn command_command(&mut self, argv: &[&[u8]]) {
        let selected = |argv: &[&[u8]]| -> Vec<Option<&'static table::Spec>> {
            if argv.len() <= 2 {
                table::COMMANDS.iter().map(Some).collect()
            } else {
                argv[2..].iter().map(|name| table::lookup(name)).collect()
            }
        };
        match argv.get(1) {
            None => {
                let specs = selected(&argv[..1]);
                let mut reply = self.reply();
                reply.array(specs.len());
                specs
                    .iter()
                    .flatten()
                    .for_each(|spec| write_command_info(&mut reply, spec));
            }
            Some(sub) if is(sub, "COUNT") && argv.len() == 2 => {
                let count = table::COMMANDS.len() as i64;
                self.reply().integer(count);
            }
            Some(sub) if is(sub, "INFO") => {
                let specs = selected(argv);
                let mut reply = self.reply();
                reply.array(specs.len());
                for spec in specs {
                    match spec {
                        Some(spec) => write_command_info(&mut reply, spec),
                        None => reply.null_array(),
                    }
                }
            }
            Some(sub) if is(sub, "DOCS") => {
                let specs: Vec<&table::Spec> = selected(argv).into_iter().flatten().collect();
                let mut reply = self.reply();
                reply.map(specs.len());
                for spec in specs {
                    reply.bulk(spec.name.as_bytes());
                    reply.map(3);
                    reply.bulk(b"summary");
                    reply.bulk(spec.summary.as_bytes());
                    reply.bulk(b"since");
                    reply.bulk(spec.since.as_bytes());
                    reply.bulk(b"group");
                    reply.bulk(spec.group.as_bytes());
                }
            }
            Some(sub) if is(sub, "LIST") && argv.len() == 2 => {
                let mut reply = self.reply();
                reply.array(table::COMMANDS.len());
                for spec in table::COMMANDS {
                    reply.bulk(spec.name.as_bytes());
                }
            }
            Some(sub) => {
                let text = format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
                    String::from_utf8_lossy(sub)
                );
                self.error(&text);
            }
        }
    }
}

fn write_command_info(reply: &mut Reply<'_>, spec: &table::Spec) {
    reply.array(10);
    reply.bulk(spec.name.as_bytes());
    reply.integer(i64::from(spec.arity));
    reply.set(spec.flags.len());
    for flag in spec.flags {
        reply.simple(flag.as_bytes());
    }
    reply.integer(i64::from(spec.first_key));
    reply.integer(i64::from(spec.last_key));
    reply.integer(i64::from(spec.step));
    reply.set(0);
    reply.set(0);
    reply.array(0);
    reply.array(0);
}

/// Redis allows client names of printable ASCII without spaces.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

#[derive(Clone, Copy)]
enum ExpiryUnit {
    Seconds,
    Milliseconds,
    AbsoluteSeconds,
    AbsoluteMilliseconds,
}

fn expiry_unit(option: &[u8]) -> Option<ExpiryUnit> {
    if is(option, "EX") {
        Some(ExpiryUnit::Seconds)
    } else if is(option, "PX") {
        Some(ExpiryUnit::Milliseconds)
    } else if is(option, "EXAT") {
        Some(ExpiryUnit::AbsoluteSeconds)
    } else if is(option, "PXAT") {
        Some(ExpiryUnit::AbsoluteMilliseconds)
    } else {
        None
    }
}

/// The unix ms at which an item given `number` in `unit` expires; None when Redis would say
/// "invalid expire time" (not a number, zero or negative, or overflowing).
fn absolute_expiry(number: &[u8], unit: ExpiryUnit, now: u64) -> Option<u64> {
    let number = parse_i64(number)?;
    if number <= 0 {
        return None;
    }
    let number = number as u64;
    match unit {
        ExpiryUnit::Seconds => number.checked_mul(1000)?.checked_add(now),
        ExpiryUnit::Milliseconds => number.checked_add(now),
        ExpiryUnit::AbsoluteSeconds => number.checked_mul(1000),
        ExpiryUnit::AbsoluteMilliseconds => Some(number),
    }
    .filter(|&at| at <= i64::MAX as u64)
}

fn set_op<'a>(
    key: &'a [u8],
    value: &'a [u8],
    expiry: Expiry,
    condition: Condition,
    return_old: bool,
) -> Op<'a> {
    Op::Set {
        key: Cow::Borrowed(key),
        value: Cow::Borrowed(value),
        flags: 0,
        expiry,
        condition,
        return_old,
    }
}

fn lifetime(unit: TimeUnit, absolute: bool) -> Finish {
    Finish::Lifetime { unit, absolute }
}
