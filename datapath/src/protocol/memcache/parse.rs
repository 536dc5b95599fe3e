//! The memcached request parser: one command line (plus a data block for storage commands) at
//! the start of the input.

use super::error::{Error, ErrorKind};
use super::meta::{parse_flags, parse_key, MetaFlags, MetaKey, MetaKind};
use super::{
    check_key, parse_signed, parse_unsigned, Limits, DATA_BYTES_CLAIM_MAX, KEY_BYTES_MAX,
    META_TOKENS_MAX,
};

/// First byte of every binary-protocol request (the request magic).
const BINARY_REQUEST_MAGIC: u8 = 0x80;

/// The storage commands of the text protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add the data after the existing value (flags and exptime ignored).
    Append,
    /// `prepend`: add the data before the existing value (flags and exptime ignored).
    Prepend,
    /// `cas`: store only if the item's CAS value is still `unique`.
    Cas {
        /// The CAS value the client read with `gets`.
        unique: u64,
    },
}

/// The keys of a retrieval command, borrowed from the line: iterate them in order. All were
/// checked by the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keys<'a> {
    rest: &'a [u8],
    count: usize,
}

impl<'a> Keys<'a> {
    /// How many keys.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The keys in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        tokens(self.rest)
    }
}

/// One memcached request, borrowing its key(s) and data from the input buffer.
// A meta request carries its parsed flags inline; boxing them would allocate per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `get` / `gets` (`cas`: reply with CAS values).
    Get {
        /// The keys, at least one.
        keys: Keys<'a>,
        /// `gets`.
        cas: bool,
    },
    /// `gat` / `gats`: get and set a new expiration time.
    GetAndTouch {
        /// The new expiration time (memcached rules: 0 never, up to 30 days relative, else
        /// absolute unix time, negative expired).
        exptime: i64,
        /// The keys (memcached takes none and answers `END`).
        keys: Keys<'a>,
        /// `gats`.
        cas: bool,
    },
    /// `set` / `add` / `replace` / `append` / `prepend` / `cas`.
    Store {
        /// Which one.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Opaque client flags.
        flags: u32,
        /// Expiration time, as for [`Command::GetAndTouch`].
        exptime: i64,
        /// The data block, without its `\r\n`.
        data: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `incr` / `decr`.
    Arithmetic {
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// `decr`.
        decrement: bool,
        /// Send no reply.
        noreply: bool,
    },
    /// `delete`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `touch`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiration time.
        exptime: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `flush_all [delay]`.
    FlushAll {
        /// Seconds until the flush (0: now).
        delay: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level>`: accepted and ignored, answered `OK`.
    Verbosity {
        /// Send no reply.
        noreply: bool,
    },
    /// `quit`: close the connection.
    Quit,
    /// `stats [args]`.
    Stats {
        /// The arguments (`settings`, `items`, `slabs`, ...), possibly none.
        args: Keys<'a>,
    },
    /// `mg` / `ms` / `md` / `ma` / `me`.
    Meta {
        /// Which one.
        kind: MetaKind,
        /// The key.
        key: MetaKey<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
        /// The data block of `ms` (empty for the others).
        data: &'a [u8],
    },
    /// `mn`: answered `MN`, marks the end of a pipeline of quiet meta commands.
    MetaNoop,
}

/// What [`parse`] found at the start of the input.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole request taking the first `consumed` bytes.
    Complete {
        /// The request.
        command: Command<'a>,
        /// Bytes it took, data block included.
        consumed: usize,
    },
    /// The input is a prefix of a request: read more and parse again from the same start.
    Incomplete,
}

/// Parses the request at the start of `input`.
///
/// Returns [`Parsed::Incomplete`] on every strict prefix of a valid request, and an [`Error`]
/// as soon as the bytes seen cannot start one; a line over its limit is refused before its end
/// arrives, a data block over [`Limits::value_bytes_max`] as soon as its header does.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, Error> {
    let Some(&first) = input.first() else {
        return Ok(Parsed::Incomplete);
    };
    if first == BINARY_REQUEST_MAGIC {
        return Err(refusal(ErrorKind::BinaryProtocol, 0, false));
    }
    let line_limit = line_limit(input, limits);
    let window = &input[..input.len().min(line_limit.saturating_add(1))];
    let Some(newline) = window.iter().position(|&byte| byte == b'\n') else {
        return if input.len() > line_limit {
            Err(refusal(ErrorKind::LineTooLong, 0, false))
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = &input[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line_consumed = newline + 1;
    let refuse = |kind| refusal(kind, line_consumed, false);
    let mut words = tokens(line);
    let name = words.next().ok_or(refuse(ErrorKind::UnknownCommand))?;
    let rest = &line[offset_after(line, name)..];
    let command = match name {
        b"get" | b"gets" => {
            let keys = parse_keys(rest).map_err(refuse)?;
            if keys.count == 0 {
                return Err(refuse(ErrorKind::UnknownCommand));
            }
            Command::Get {
                keys,
                cas: name == b"gets",
            }
        }
        b"gat" | b"gats" => {
            let exptime_token = words.next().ok_or(refuse(ErrorKind::UnknownCommand))?;
            let exptime = parse_signed(exptime_token).ok_or(refuse(ErrorKind::InvalidExptime))?;
            let keys = parse_keys(&line[offset_after(line, exptime_token)..]).map_err(refuse)?;
            Command::GetAndTouch {
                exptime,
                keys,
                cas: name == b"gats",
            }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            return parse_store(input, name, rest, line_consumed, limits);
        }
        b"incr" | b"decr" => {
            let arguments = arguments::<3>(rest, 2).map_err(refuse)?;
            let noreply = ends_in_noreply(&arguments);
            let refuse = |kind| refusal(kind, line_consumed, noreply);
            let [key, delta, _] = arguments;
            check_key(key).map_err(refuse)?;
            let delta = parse_unsigned(delta).ok_or(refuse(ErrorKind::InvalidDelta))?;
            Command::Arithmetic {
                key,
                delta,
                decrement: name == b"decr",
                noreply,
            }
        }
        b"delete" => {
            let [key, hold, last] = arguments::<3>(rest, 1).map_err(refuse)?;
            // memcached looks for `noreply` after the key only.
            let noreply = ends_in_noreply(&[hold, last]);
            let refuse = |kind| refusal(kind, line_consumed, noreply);
            // memcached still takes a hold time of 0 from old clients, and nothing else.
            let valid = matches!(
                (hold, last),
                (b"" | b"0" | b"noreply", b"") | (b"0", b"noreply")
            );
            if !valid {
                return Err(refuse(ErrorKind::DeleteUsage));
            }
            check_key(key).map_err(refuse)?;
            Command::Delete { key, noreply }
        }
        b"touch" => {
            let arguments = arguments::<3>(rest, 2).map_err(refuse)?;
            let noreply = ends_in_noreply(&arguments);
            let refuse = |kind| refusal(kind, line_consumed, noreply);
            let [key, exptime, _] = arguments;
            check_key(key).map_err(refuse)?;
            let exptime = parse_signed(exptime).ok_or(refuse(ErrorKind::InvalidExptime))?;
            Command::Touch {
                key,
                exptime,
                noreply,
            }
        }
        b"flush_all" => {
            let arguments = arguments::<2>(rest, 0).map_err(refuse)?;
            let noreply = ends_in_noreply(&arguments);
            // memcached reads a delay from the first token unless it is the only one and says
            // `noreply`.
            let delay = match arguments {
                [b"", _] | [b"noreply", b""] => 0,
                [delay, _] => parse_signed(delay).ok_or(refusal(
                    ErrorKind::InvalidExptime,
                    line_consumed,
                    noreply,
                ))?,
            };
            Command::FlushAll { delay, noreply }
        }
        b"version" => Command::Version,
        b"quit" => Command::Quit,
        b"verbosity" => {
            let arguments = arguments::<2>(rest, 1).map_err(refuse)?;
            let noreply = ends_in_noreply(&arguments);
            // The level must be a number, though there is no verbose log for it to tune.
            parse_unsigned(arguments[0]).ok_or(refusal(
                ErrorKind::BadCommandLine,
                line_consumed,
                noreply,
            ))?;
            Command::Verbosity { noreply }
        }
        b"stats" => Command::Stats {
            args: Keys {
                rest,
                count: tokens(rest).count(),
            },
        },
        b"mn" => Command::MetaNoop,
        b"mg" | b"md" | b"ma" | b"me" => {
            let kind = match name {
                b"mg" => MetaKind::Get,
                b"md" => MetaKind::Delete,
                b"ma" => MetaKind::Arithmetic,
                _ => MetaKind::Debug,
            };
            // memcached answers `me` without a key as a bad line, the others with ERROR.
            let missing_key = if kind == MetaKind::Debug {
                ErrorKind::BadCommandLine
            } else {
                ErrorKind::UnknownCommand
            };
            let key = words.next().ok_or(refuse(missing_key))?;
            // memcached checks the key's length, then the token count, then the flags.
            if key.len() > KEY_BYTES_MAX {
                return Err(refuse(ErrorKind::BadCommandLine));
            }
            if kind != MetaKind::Debug && more_tokens_than(line, META_TOKENS_MAX) {
                return Err(refuse(if kind == MetaKind::Get {
                    ErrorKind::TooManyGetFlags
                } else {
                    ErrorKind::TooManyFlags
                }));
            }
            let flags = parse_flags(kind, &line[offset_after(line, key)..]).map_err(refuse)?;
            let key = parse_key(key, &flags).map_err(|error| refuse(kind.flag_error(error)))?;
            Command::Meta {
                kind,
                key,
                flags,
                data: &[],
            }
        }
        b"ms" => return parse_meta_set(input, rest, line_consumed, limits),
        _ => return Err(refuse(ErrorKind::UnknownCommand)),
    };
    Ok(Parsed::Complete {
        command,
        consumed: line_consumed,
    })
}

/// The line limit for the request at the start of `input`: retrieval commands carry many keys.
fn line_limit(input: &[u8], limits: &Limits) -> usize {
    if input.len() <= limits.line_bytes_max {
        return limits.line_bytes_max;
    }
    match tokens(&input[..limits.line_bytes_max]).next() {
        Some(b"get" | b"gets" | b"gat" | b"gats") => {
            limits.retrieval_line_bytes_max.max(limits.line_bytes_max)
        }
        _ => limits.line_bytes_max,
    }
}

/// The space-separated tokens of a line (memcached splits on spaces only).
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&byte| byte == b' ')
        .filter(|token| !token.is_empty())
}

/// Whether `text` has more than `max` tokens. A text too short to hold them (the common meta
/// line) is not scanned: counting every line came to 1 % of a pipelined `mg`.
fn more_tokens_than(text: &[u8], max: usize) -> bool {
    text.len() > 2 * max && tokens(text).count() > max
}

/// Where the rest of `line` starts after `token`, a subslice of it.
fn offset_after(line: &[u8], token: &[u8]) -> usize {
    token.as_ptr() as usize - line.as_ptr() as usize + token.len()
}

/// A refused request that took `consumed` bytes of input.
fn refusal(kind: ErrorKind, consumed: usize, noreply: bool) -> Error {
    Error {
        kind,
        consumed,
        swallow: 0,
        noreply,
    }
}

/// Whether the last of a text command's arguments is `noreply`: memcached's `set_noreply_maybe`,
/// which then silences every reply of the command, errors included.
fn ends_in_noreply(arguments: &[&[u8]]) -> bool {
    arguments
        .iter()
        .rev()
        .find(|argument| !argument.is_empty())
        .is_some_and(|argument| *argument == b"noreply")
}

/// The next `N` tokens of `rest`, missing ones empty; `ERROR` when fewer than `required` or more
/// than `N`, as memcached answers a wrong token count.
fn arguments<const N: usize>(rest: &[u8], required: usize) -> Result<[&[u8]; N], ErrorKind> {
    let mut found: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for token in tokens(rest) {
        *found.get_mut(count).ok_or(ErrorKind::UnknownCommand)? = token;
        count += 1;
    }
    if count < required {
        return Err(ErrorKind::UnknownCommand);
    }
    Ok(found)
}

fn parse_keys(rest: &[u8]) -> Result<Keys<'_>, ErrorKind> {
    let mut count = 0;
    for key in tokens(rest) {
        check_key(key)?;
        count += 1;
    }
    Ok(Keys { rest, count })
}

/// The length of a data block from its header token (memcached reads it signed): `None` when it
/// is not a number memcached takes (then the block cannot be skipped either).
fn data_length(token: &[u8]) -> Option<usize> {
    parse_signed(token)
        .and_then(|length| usize::try_from(length).ok())
        .filter(|&length| length <= DATA_BYTES_CLAIM_MAX)
}

/// The data block after a storage line of `line_consumed` bytes, once the line itself is valid;
/// its errors go unanswered when the line asked for `noreply`.
fn data_block<'a>(
    input: &'a [u8],
    line_consumed: usize,
    length: usize,
    noreply: bool,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, Error> {
    if length > limits.value_bytes_max {
        return Err(Error {
            swallow: length + 2,
            ..refusal(ErrorKind::ObjectTooLarge, line_consumed, noreply)
        });
    }
    let consumed = line_consumed + length + 2;
    if input.len() < consumed {
        return Ok(None);
    }
    if &input[consumed - 2..consumed] != b"\r\n" {
        return Err(refusal(ErrorKind::BadDataChunk, consumed, noreply));
    }
    Ok(Some((&input[line_consumed..consumed - 2], consumed)))
}

fn parse_store<'a>(
    input: &'a [u8],
    name: &[u8],
    rest: &'a [u8],
    line_consumed: usize,
    limits: &Limits,
) -> Result<Parsed<'a>, Error> {
    let is_cas = name == b"cas";
    let arguments = arguments::<6>(rest, if is_cas { 5 } else { 4 })
        .map_err(|kind| refusal(kind, line_consumed, false))?;
    let [key, flags, exptime, length, fifth, sixth] = arguments;
    if !is_cas && !sixth.is_empty() {
        return Err(refusal(ErrorKind::UnknownCommand, line_consumed, false));
    }
    let noreply = ends_in_noreply(&arguments);
    let refuse = |kind| refusal(kind, line_consumed, noreply);
    let length = data_length(length).ok_or(refuse(ErrorKind::BadCommandLine))?;
    // From here the data block's size is known: skip it on error to stay in sync.
    let refuse_block = |kind| Error {
        swallow: length + 2,
        ..refuse(kind)
    };
    check_key(key).map_err(refuse_block)?;
    let flags = parse_unsigned(flags)
        .and_then(|flags| u32::try_from(flags).ok())
        .ok_or(refuse_block(ErrorKind::BadCommandLine))?;
    let exptime = parse_signed(exptime).ok_or(refuse_block(ErrorKind::BadCommandLine))?;
    let mode = match name {
        b"cas" => {
            let unique = parse_unsigned(fifth).ok_or(refuse_block(ErrorKind::BadCommandLine))?;
            StoreMode::Cas { unique }
        }
        b"set" => StoreMode::Set,
        b"add" => StoreMode::Add,
        b"replace" => StoreMode::Replace,
        b"append" => StoreMode::Append,
        _ => StoreMode::Prepend,
    };
    let Some((data, consumed)) = data_block(input, line_consumed, length, noreply, limits)? else {
        return Ok(Parsed::Incomplete);
    };
    let command = Command::Store {
        mode,
        key,
        flags,
        exptime,
        data,
        noreply,
    };
    Ok(Parsed::Complete { command, consumed })
}

fn parse_meta_set<'a>(
    input: &'a [u8],
    rest: &'a [u8],
    line_consumed: usize,
    limits: &Limits,
) -> Result<Parsed<'a>, Error> {
    // memcached answers every error of a meta command, quiet (`q`) or not.
    let refuse = |kind| refusal(kind, line_consumed, false);
    let mut words = tokens(rest);
    let key = words.next().ok_or(refuse(ErrorKind::UnknownCommand))?;
    let length_token = words.next().ok_or(refuse(ErrorKind::BadCommandLine))?;
    // Refused before the length is read, as memcached does: the block is not skipped.
    if more_tokens_than(rest, META_TOKENS_MAX - 1) {
        return Err(refuse(ErrorKind::TooManyFlags));
    }
    let length = data_length(length_token).ok_or(refuse(ErrorKind::BadCommandLine))?;
    let refuse_block = |kind| Error {
        swallow: length + 2,
        ..refuse(kind)
    };
    let flags = parse_flags(MetaKind::Set, &rest[offset_after(rest, length_token)..])
        .map_err(refuse_block)?;
    let key = parse_key(key, &flags).map_err(refuse_block)?;
    let Some((data, consumed)) = data_block(input, line_consumed, length, false, limits)? else {
        return Ok(Parsed::Incomplete);
    };
    Ok(Parsed::Complete {
        command: Command::Meta {
            kind: MetaKind::Set,
            key,
            flags,
            data,
        },
        consumed,
    })
}
