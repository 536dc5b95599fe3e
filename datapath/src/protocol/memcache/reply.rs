//! Reply encoders for the text and meta protocols, appending to the connection's output buffer.

use super::error::ErrorKind;
use super::meta::{MetaFlags, MetaKey, MetaKind};
use crate::protocol::number::{write_i64, write_u64};

/// The one-line replies of the text protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// `OK`
    Ok,
    /// `END`: the end of a retrieval or stats reply.
    End,
    /// `RESET`: `stats reset` done.
    Reset,
}

impl Status {
    fn line(self) -> &'static [u8] {
        match self {
            Status::Stored => b"STORED\r\n",
            Status::NotStored => b"NOT_STORED\r\n",
            Status::Exists => b"EXISTS\r\n",
            Status::NotFound => b"NOT_FOUND\r\n",
            Status::Deleted => b"DELETED\r\n",
            Status::Touched => b"TOUCHED\r\n",
            Status::Ok => b"OK\r\n",
            Status::End => b"END\r\n",
            Status::Reset => b"RESET\r\n",
        }
    }
}

/// `STORED`, `NOT_FOUND`, `END`, ...
pub fn status(out: &mut Vec<u8>, status: Status) {
    out.extend_from_slice(status.line());
}

/// The reply to a refused request: `ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`.
pub fn error(out: &mut Vec<u8>, kind: ErrorKind) {
    out.extend_from_slice(kind.message().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `SERVER_ERROR <message>`, for a failure of the server rather than of the request (e.g.
/// `out of memory storing object`).
pub fn server_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One item of a `get` / `gets` / `gat` / `gats` reply: `VALUE <key> <flags> <bytes> [<cas>]`
/// and the data block. The caller ends the reply with [`Status::End`].
pub fn value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    write_u64(out, u64::from(flags));
    out.push(b' ');
    write_u64(out, data.len() as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        write_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The new value after `incr` / `decr`.
pub fn number(out: &mut Vec<u8>, value: u64) {
    write_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>`.
pub fn version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>`; the caller ends the list with [`Status::End`].
pub fn stat(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <number>`.
pub fn stat_number(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    write_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// The outcome of a meta command, which picks its two-letter code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaStatus {
    /// `VA <size>` and a data block (`mg` with `v`, `ma` with `v`).
    Value,
    /// `HD`: success without a value.
    Done,
    /// `EN`: `mg` missed.
    Miss,
    /// `NF`: not found.
    NotFound,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: the CAS value did not match.
    Exists,
}

/// What a meta reply may report about the item it touched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemInfo {
    /// The CAS value (`c`).
    pub cas: u64,
    /// The client flags (`f`).
    pub client_flags: u32,
    /// The value's size in bytes (`s`).
    pub size: usize,
    /// Seconds of TTL left, -1 for none (`t`).
    pub ttl_seconds: i64,
    /// Seconds since the last access, before this one (`l`).
    pub last_access_seconds: u64,
    /// Whether the item had been read before this request (`h`).
    pub hit_before: bool,
    /// This client won the right to recache the item (`W`).
    pub won: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// Another client already won the right to recache it (`Z`).
    pub win_sent: bool,
}

/// A meta reply: the code, the flags the request asked back in request order, then the data block
/// for [`MetaStatus::Value`]. Without `item` (a miss or a refusal) only `O` and `k` come back.
///
/// Writes nothing when the `q` flag hides this code: `EN` for `mg`, `HD` for `ms`, `md`, `ma`,
/// and `VA` for `ma` (memcached skips every successful `ma` reply under `q`, value or not).
pub fn meta(
    out: &mut Vec<u8>,
    kind: MetaKind,
    key: &MetaKey<'_>,
    flags: &MetaFlags<'_>,
    status: MetaStatus,
    item: Option<&ItemInfo>,
    data: &[u8],
) {
    let quiet_hides = match status {
        MetaStatus::Miss => true,
        MetaStatus::Done => kind != MetaKind::Get,
        MetaStatus::Value => kind == MetaKind::Arithmetic,
        _ => false,
    };
    if quiet_hides && flags.has(b'q') {
        return;
    }
    out.extend_from_slice(match status {
        MetaStatus::Value => b"VA ",
        MetaStatus::Done => b"HD",
        MetaStatus::Miss => b"EN",
        MetaStatus::NotFound => b"NF",
        MetaStatus::NotStored => b"NS",
        MetaStatus::Exists => b"EX",
    });
    if status == MetaStatus::Value {
        write_u64(out, data.len() as u64);
    }
    for (flag, token) in flags.in_order() {
        match (flag, item) {
            (b'O', _) => flag_token(out, b'O', token),
            (b'k', _) => {
                flag_token(out, b'k', key.token);
                if key.is_base64() {
                    out.extend_from_slice(b" b");
                }
            }
            // A command ignores the flags it has no use for.
            _ if !returns_value(kind, flag) => {}
            (b'c', Some(item)) => flag_number(out, b'c', item.cas),
            // ms answers c0 when it stored nothing.
            (b'c', None) if kind == MetaKind::Set => flag_number(out, b'c', 0),
            (b'f', Some(item)) => flag_number(out, b'f', u64::from(item.client_flags)),
            (b'h', Some(item)) => flag_number(out, b'h', u64::from(item.hit_before)),
            (b'l', Some(item)) => flag_number(out, b'l', item.last_access_seconds),
            (b's', Some(item)) => flag_number(out, b's', item.size as u64),
            (b't', Some(item)) => {
                out.extend_from_slice(b" t");
                write_i64(out, item.ttl_seconds);
            }
            _ => {}
        }
    }
    if let Some(item) = item {
        // memcached's order: Z (someone else holds the token), X (stale), W (this one won).
        for (set, flag) in [
            (item.win_sent, b" Z"),
            (item.stale, b" X"),
            (item.won, b" W"),
        ] {
            if set {
                out.extend_from_slice(flag);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    if status == MetaStatus::Value {
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether a `kind` reply returns `flag` with a value (`O` and `k` come back from every command).
fn returns_value(kind: MetaKind, flag: u8) -> bool {
    match kind {
        MetaKind::Get => b"cfhlst".contains(&flag),
        MetaKind::Set => flag == b'c',
        MetaKind::Arithmetic => b"ct".contains(&flag),
        MetaKind::Delete | MetaKind::Debug => false,
    }
}

/// The `me` reply: `ME <key> exp=<ttl> la=<seconds> cas=<cas> fetch=<yes|no> cls=1 size=<bytes>`.
pub fn meta_debug(out: &mut Vec<u8>, key: &MetaKey<'_>, item: &ItemInfo) {
    out.extend_from_slice(b"ME ");
    out.extend_from_slice(key.token);
    out.extend_from_slice(b" exp=");
    write_i64(out, item.ttl_seconds);
    out.extend_from_slice(b" la=");
    write_u64(out, item.last_access_seconds);
    out.extend_from_slice(b" cas=");
    write_u64(out, item.cas);
    out.extend_from_slice(if item.hit_before {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    // Segments have no slab classes: everything is reported as class 1.
    out.extend_from_slice(b" cls=1 size=");
    write_u64(out, item.size as u64);
    out.extend_from_slice(b"\r\n");
}

/// `MN`: the answer to `mn`.
pub fn meta_noop(out: &mut Vec<u8>) {
    out.extend_from_slice(b"MN\r\n");
}

fn flag_token(out: &mut Vec<u8>, flag: u8, token: &[u8]) {
    out.push(b' ');
    out.push(flag);
    out.extend_from_slice(token);
}

fn flag_number(out: &mut Vec<u8>, flag: u8, value: u64) {
    out.push(b' ');
    out.push(flag);
    write_u64(out, value);
}
