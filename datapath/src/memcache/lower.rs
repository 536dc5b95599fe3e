//! Each memcached command lowered to store operations, run locally or through the owner shards.

use std::borrow::Cow;

use super::finish::{self, Finish, LineKind, MetaRequest};
use super::stats;
use crate::exec::{Arithmetic, Condition, ExpireCondition, Expiry, Op, Outcome};
use crate::protocol::memcache::{
    reply, Command, Keys, MetaFlags, MetaKey, MetaKind, MetaMode, StoreMode,
};
use crate::shard::conn::Conn;
use crate::shard::finish::Finish as ShardFinish;
use crate::shard::Core;

/// Largest relative expiration time, in seconds (30 days); a larger one is a unix time.
const RELATIVE_EXPTIME_SECONDS_MAX: i64 = 60 * 60 * 24 * 30;

/// Most store operations one meta command lowers to (`ma` with `T`, `N`, `t` and `c`).
const META_OPS_MAX: usize = 5;

/// The expiry memcached means by `exptime` at `now_ms`: 0 never, up to 30 days relative seconds,
/// above that an absolute unix time, negative already expired.
pub(super) fn expiry(exptime: i64, now_ms: u64) -> Expiry {
    let already_expired = Expiry::AtMs(now_ms.saturating_sub(1));
    match exptime {
        0 => Expiry::Never,
        ..0 => already_expired,
        1..=RELATIVE_EXPTIME_SECONDS_MAX => {
            Expiry::AtMs(now_ms.saturating_add(exptime.unsigned_abs().saturating_mul(1000)))
        }
        _ => Expiry::AtMs(exptime.unsigned_abs().saturating_mul(1000)),
    }
}

/// Runs one parsed command for `conn`; `now` is the read batch's clock.
pub(super) fn run(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    command: Command<'_>,
    now: u64,
) {
    match command {
        Command::Get { keys, cas } => retrieve(core, conn_index, conn, keys, None, cas, now),
        Command::GetAndTouch { exptime, keys, cas } => {
            stats::count(core.id, |counters| &counters.cmd_touch, keys.count() as u64);
            retrieve(
                core,
                conn_index,
                conn,
                keys,
                Some(expiry(exptime, now)),
                cas,
                now,
            );
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            data,
            noreply,
        } => {
            stats::count(core.id, |counters| &counters.cmd_set, 1);
            let key = Cow::Borrowed(key);
            let value = Cow::Borrowed(data);
            let (op, cas_command) = match mode {
                StoreMode::Append | StoreMode::Prepend => {
                    let prepend = mode == StoreMode::Prepend;
                    let op = Op::Concat {
                        key,
                        value,
                        prepend,
                        create: false,
                    };
                    (op, false)
                }
                StoreMode::Set | StoreMode::Add | StoreMode::Replace | StoreMode::Cas { .. } => {
                    let condition = match mode {
                        StoreMode::Add => Condition::IfAbsent,
                        StoreMode::Replace => Condition::IfPresent,
                        StoreMode::Cas { unique } => Condition::IfCas(unique),
                        _ => Condition::Always,
                    };
                    let expiry = expiry(exptime, now);
                    let op = Op::Set {
                        key,
                        value,
                        flags,
                        expiry,
                        condition,
                        return_old: false,
                    };
                    (op, matches!(mode, StoreMode::Cas { .. }))
                }
            };
            line(
                core,
                conn_index,
                conn,
                op,
                LineKind::Store { cas_command },
                noreply,
                now,
            );
        }
        Command::Arithmetic {
            key,
            delta,
            decrement,
            noreply,
        } => {
            // The store's delta is a signed 64-bit number: larger deltas cannot be carried.
            let Ok(magnitude) = i64::try_from(delta) else {
                reply::error(
                    conn.reply_buffer(),
                    crate::protocol::memcache::ErrorKind::InvalidDelta,
                );
                return;
            };
            let delta = if decrement { -magnitude } else { magnitude };
            let op = Op::Increment {
                key: Cow::Borrowed(key),
                delta,
                arithmetic: Arithmetic::Unsigned,
                create: false,
            };
            line(
                core,
                conn_index,
                conn,
                op,
                LineKind::Arithmetic,
                noreply,
                now,
            );
        }
        Command::Delete { key, noreply } => {
            let op = Op::Delete {
                key: Cow::Borrowed(key),
            };
            line(core, conn_index, conn, op, LineKind::Delete, noreply, now);
        }
        Command::Touch {
            key,
            exptime,
            noreply,
        } => {
            stats::count(core.id, |counters| &counters.cmd_touch, 1);
            let op = Op::Expire {
                key: Cow::Borrowed(key),
                expiry: expiry(exptime, now),
                condition: ExpireCondition::Always,
            };
            line(core, conn_index, conn, op, LineKind::Touch, noreply, now);
        }
        Command::FlushAll { delay, noreply } => {
            stats::count(core.id, |counters| &counters.cmd_flush, 1);
            if delay > 0 {
                reply::server_error(
                    conn.reply_buffer(),
                    "flush_all with a delay is not supported",
                );
                return;
            }
            let shards = core.shared.shard_count;
            let finish = ShardFinish::Memcache(Finish::Flush { noreply });
            core.run_multi(
                conn_index,
                conn,
                finish,
                (0..shards).map(|shard| (shard, Op::Flush)),
            );
        }
        Command::Version => reply::version(conn.reply_buffer(), super::VERSION),
        Command::Verbosity { noreply } => {
            if !noreply {
                reply::status(conn.reply_buffer(), reply::Status::Ok);
            }
        }
        Command::Quit => super::close_after_reply(conn),
        Command::Stats { args } => stats::run(core, conn_index, conn, args),
        Command::MetaNoop => reply::meta_noop(conn.reply_buffer()),
        Command::Meta {
            kind,
            key,
            flags,
            data,
        } => meta(core, conn_index, conn, kind, &key, &flags, data, now),
    }
}

/// A command with one operation and a one-line reply.
fn line(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    op: Op<'_>,
    kind: LineKind,
    noreply: bool,
    now: u64,
) {
    let target = op.key().map_or(core.id, |key| core.owner(key));
    let finish = Finish::Line {
        kind,
        noreply,
        shard: core.id,
    };
    if target == core.id {
        let outcome = core.execute(&op, now);
        finish::encode(&finish, std::slice::from_ref(&outcome), conn.reply_buffer());
    } else {
        core.run_single(conn_index, conn, ShardFinish::Memcache(finish), op, target);
    }
}

/// The read of one key of a retrieval command (with a new expiry for `gat` / `gats`).
fn read(key: &[u8], touch: Option<Expiry>) -> Op<'_> {
    let key = Cow::Borrowed(key);
    match touch {
        Some(expiry) => Op::GetAndExpire { key, expiry },
        None => Op::Get { key },
    }
}

/// `get`, `gets`, `gat`, `gats`: one read per key, answered with VALUE lines and END.
fn retrieve(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    keys: Keys<'_>,
    touch: Option<Expiry>,
    cas: bool,
    now: u64,
) {
    stats::count(core.id, |counters| &counters.cmd_get, keys.count() as u64);
    if keys.iter().all(|key| core.owner(key) == core.id) {
        // Every key is ours: read and encode straight into the reply, borrowing the values.
        let out = conn.reply_buffer();
        for key in keys.iter() {
            finish::value_line(out, key, &core.execute(&read(key, touch), now), cas);
        }
        reply::status(out, reply::Status::End);
        return;
    }
    let mut joined = Vec::with_capacity(keys.iter().map(|key| key.len() + 1).sum());
    for key in keys.iter() {
        if !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(key);
    }
    let finish = ShardFinish::Memcache(Finish::Values {
        keys: joined.into_boxed_slice(),
        cas,
    });
    if keys.count() == 1 {
        let Some(key) = keys.iter().next() else {
            return;
        };
        let target = core.owner(key);
        core.run_single(conn_index, conn, finish, read(key, touch), target);
        return;
    }
    let parts: Vec<(usize, Op<'_>)> = keys
        .iter()
        .map(|key| (core.owner(key), read(key, touch)))
        .collect();
    core.run_multi(conn_index, conn, finish, parts.into_iter());
}

/// A meta feature the store cannot serve: refused with a SERVER_ERROR naming it.
fn unsupported(kind: MetaKind, flags: &MetaFlags<'_>) -> Option<&'static str> {
    match kind {
        MetaKind::Set if flags.has(b'I') && flags.compare_cas.is_some() => {
            Some("ms I (invalidate with CAS) is not supported")
        }
        MetaKind::Set
            if flags.compare_cas.is_some()
                && matches!(flags.mode, Some(MetaMode::Append | MetaMode::Prepend)) =>
        {
            Some("ms C with append or prepend mode is not supported")
        }
        MetaKind::Delete if flags.has(b'I') => Some("md I (invalidate) is not supported"),
        MetaKind::Delete if flags.has(b'x') => Some("md x (remove value) is not supported"),
        MetaKind::Arithmetic if flags.compare_cas.is_some() => {
            Some("ma C (compare CAS) is not supported")
        }
        _ if flags.new_cas.is_some() => Some("E (explicit CAS value) is not supported"),
        _ => None,
    }
}

/// The few ops of one meta command, kept on the stack.
struct MetaOps<'a> {
    slots: [Option<Op<'a>>; META_OPS_MAX],
    len: usize,
}

impl<'a> MetaOps<'a> {
    fn push(&mut self, op: Op<'a>) {
        assert!(
            self.len < META_OPS_MAX,
            "a meta command lowers to at most {META_OPS_MAX} ops"
        );
        self.slots[self.len] = Some(op);
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &Op<'a>> {
        self.slots[..self.len].iter().flatten()
    }
}

/// The ops a meta command lowers to, in the order [`finish::meta_roles`] reads their outcomes.
/// The op that returns the item's value is last, so the local path can encode it borrowed.
fn meta_ops<'a>(
    kind: MetaKind,
    key: &'a [u8],
    flags: &MetaFlags<'_>,
    data: &'a [u8],
    now: u64,
) -> Result<MetaOps<'a>, crate::protocol::memcache::ErrorKind> {
    let roles = finish::meta_roles(kind, flags);
    let key = || Cow::Borrowed(key);
    let mut ops = MetaOps {
        slots: [const { None }; META_OPS_MAX],
        len: 0,
    };
    match kind {
        MetaKind::Get => {
            if let Some(ttl) = flags.vivify_ttl {
                ops.push(Op::Set {
                    key: key(),
                    value: Cow::Borrowed(&[]),
                    flags: 0,
                    expiry: expiry(ttl, now),
                    condition: Condition::IfAbsent,
                    return_old: false,
                });
            }
            if roles.ttl.is_some() {
                ops.push(Op::Ttl { key: key() });
            }
            ops.push(match flags.ttl {
                Some(ttl) => Op::GetAndExpire {
                    key: key(),
                    expiry: expiry(ttl, now),
                },
                None => Op::Get { key: key() },
            });
        }
        MetaKind::Set => {
            let mode = flags.mode.unwrap_or(MetaMode::Set);
            match mode {
                MetaMode::Append | MetaMode::Prepend => ops.push(Op::Concat {
                    key: key(),
                    value: Cow::Borrowed(data),
                    prepend: mode == MetaMode::Prepend,
                    create: flags.vivify_ttl.is_some(),
                }),
                _ => {
                    let condition = match (flags.compare_cas, mode) {
                        (Some(cas), _) => Condition::IfCas(cas),
                        (None, MetaMode::Add) => Condition::IfAbsent,
                        (None, MetaMode::Replace) => Condition::IfPresent,
                        (None, _) => Condition::Always,
                    };
                    ops.push(Op::Set {
                        key: key(),
                        value: Cow::Borrowed(data),
                        flags: flags.client_flags.unwrap_or(0),
                        expiry: flags.ttl.map_or(Expiry::Never, |ttl| expiry(ttl, now)),
                        condition,
                        return_old: false,
                    });
                }
            }
            if roles.cas.is_some() {
                ops.push(Op::Get { key: key() });
            }
        }
        MetaKind::Delete => match flags.compare_cas {
            // Delete only if the CAS matches: a CAS-conditional set whose expiry has passed,
            // which the store checks and carries out as a delete in one step on the owner.
            Some(cas) => ops.push(Op::Set {
                key: key(),
                value: Cow::Borrowed(&[]),
                flags: 0,
                expiry: expiry(-1, now),
                condition: Condition::IfCas(cas),
                return_old: false,
            }),
            None => ops.push(Op::Delete { key: key() }),
        },
        MetaKind::Arithmetic => {
            let delta = i64::try_from(flags.delta.unwrap_or(1))
                .map_err(|_| crate::protocol::memcache::ErrorKind::InvalidDelta)?;
            let delta = if flags.mode == Some(MetaMode::Decrement) {
                -delta
            } else {
                delta
            };
            ops.push(Op::Increment {
                key: key(),
                delta,
                arithmetic: Arithmetic::Unsigned,
                create: false,
            });
            if let Some(ttl) = flags.ttl {
                ops.push(Op::Expire {
                    key: key(),
                    expiry: expiry(ttl, now),
                    condition: ExpireCondition::Always,
                });
            }
            if let Some(ttl) = flags.vivify_ttl {
                let initial = flags.initial.unwrap_or(0).to_string().into_bytes();
                ops.push(Op::Set {
                    key: key(),
                    value: Cow::Owned(initial),
                    flags: 0,
                    expiry: expiry(ttl, now),
                    condition: Condition::IfAbsent,
                    return_old: false,
                });
            }
            if roles.ttl.is_some() {
                ops.push(Op::Ttl { key: key() });
            }
            if roles.cas.is_some() {
                ops.push(Op::Get { key: key() });
            }
        }
        MetaKind::Debug => {
            ops.push(Op::Ttl { key: key() });
            ops.push(Op::Get { key: key() });
        }
    }
    Ok(ops)
}

#[allow(clippy::too_many_arguments)] // one meta request, taken apart by the parser
fn meta(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    kind: MetaKind,
    key: &MetaKey<'_>,
    flags: &MetaFlags<'_>,
    data: &[u8],
    now: u64,
) {
    match kind {
        MetaKind::Get => stats::count(core.id, |counters| &counters.cmd_get, 1),
        MetaKind::Set => stats::count(core.id, |counters| &counters.cmd_set, 1),
        _ => {}
    }
    if let Some(message) = unsupported(kind, flags) {
        reply::server_error(conn.reply_buffer(), message);
        return;
    }
    let ops = match meta_ops(kind, key.bytes(), flags, data, now) {
        Ok(ops) => ops,
        Err(kind) => {
            reply::error(conn.reply_buffer(), kind);
            return;
        }
    };
    let target = core.owner(key.bytes());
    let shard = core.id;
    if target == shard {
        let out = conn.reply_buffer();
        let mut outcomes: Vec<Outcome<'_>> = Vec::new();
        let mut last = None;
        for (index, op) in ops.iter().enumerate() {
            if index + 1 == ops.len {
                last = Some(op);
            } else {
                // Only the last op carries the item's value; the others' outcomes are small.
                outcomes.push(core.execute(op, now).into_owned());
            }
        }
        let Some(last) = last else { return };
        let outcome = core.execute(last, now);
        if outcomes.is_empty() {
            // The common case (mg k v, ms k n): no outcome list to build.
            finish::meta(
                out,
                kind,
                key,
                flags,
                std::slice::from_ref(&outcome),
                shard,
                now,
            );
        } else {
            outcomes.push(outcome);
            finish::meta(out, kind, key, flags, &outcomes, shard, now);
        }
        return;
    }
    let request = MetaRequest::new(kind, key, flags, shard);
    let finish = ShardFinish::Memcache(Finish::Meta(request));
    if ops.len == 1 {
        if let Some(op) = ops.iter().next() {
            core.run_single(conn_index, conn, finish, op.clone(), target);
        }
        return;
    }
    let parts: Vec<(usize, Op<'_>)> = ops.iter().map(|op| (target, op.clone())).collect();
    core.run_multi(conn_index, conn, finish, parts.into_iter());
}
