//! Meta commands (`mg ms md ma me mn`): their flags, and keys that may come base64-encoded.

use super::error::ErrorKind;
use super::{check_key, parse_signed, parse_unsigned, KEY_BYTES_MAX, OPAQUE_BYTES_MAX};

/// Which meta command a request is; each takes its own set of flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKind {
    /// `mg`: get, touch, vivify on miss.
    Get,
    /// `ms`: set in one of the [`MetaMode`] storage modes.
    Set,
    /// `md`: delete or invalidate.
    Delete,
    /// `ma`: increment or decrement.
    Arithmetic,
    /// `me`: a human-readable dump of an item's metadata.
    Debug,
}

impl MetaKind {
    /// The flag letters this command takes (`P` and `L` are proxy hints, taken and ignored by all).
    fn allowed_flags(self) -> &'static [u8] {
        match self {
            MetaKind::Get => b"bcfhklOqstuvNRTEPL",
            MetaKind::Set => b"bcCEFIkMNOqTPL",
            MetaKind::Delete => b"bCEIkOqTxPL",
            MetaKind::Arithmetic => b"bCENJDTMqtcvkOPL",
            // `me` is read apart: a leading bare `b`, nothing else (see `parse_flags`).
            MetaKind::Debug => b"b",
        }
    }
}

/// The `M` flag's mode: storage modes for `ms`, direction for `ma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaMode {
    /// `MS` (default of `ms`): store.
    Set,
    /// `ME`: store only if absent (`add`).
    Add,
    /// `MA`: append to the existing value.
    Append,
    /// `MP`: prepend to the existing value.
    Prepend,
    /// `MR`: store only if present (`replace`).
    Replace,
    /// `MI` or `M+` (default of `ma`).
    Increment,
    /// `MD` or `M-`.
    Decrement,
}

/// Longest key a base64 key token decodes to: a padded token of at most [`KEY_BYTES_MAX`]
/// characters has whole groups of four characters, three bytes each.
pub const DECODED_KEY_BYTES_MAX: usize = KEY_BYTES_MAX / 4 * 3;

/// A meta command's key: the token as sent (echoed by the `k` flag) and, with the `b` flag, the
/// binary key it decodes to (on the heap: base64 keys are rare, and a key buffer inline would
/// double the size of every parsed command the batch moves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaKey<'a> {
    /// The key token as the client sent it.
    pub token: &'a [u8],
    decoded: Option<Box<[u8]>>,
}

impl<'a> MetaKey<'a> {
    /// The key to look up: the token itself, or the bytes it decodes to when `b` was given.
    pub fn bytes(&self) -> &[u8] {
        match &self.decoded {
            Some(bytes) => bytes,
            None => self.token,
        }
    }

    /// Whether the key came base64-encoded (`b`); its replies then carry `b` after `k<token>`.
    pub fn is_base64(&self) -> bool {
        self.decoded.is_some()
    }
}

/// The flags of one meta request. Flags without a token are asked with [`MetaFlags::has`]; the
/// tokens of the others are parsed into the fields below. [`MetaFlags::in_order`] gives them
/// back in request order, the order in which replies return them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    present: u64,
    tokens: &'a [u8],
    /// `O`: an opaque token copied back in the reply.
    pub opaque: Option<&'a [u8]>,
    /// `F`: client flags to store.
    pub client_flags: Option<u32>,
    /// `T`: a new TTL (expiration time, memcached rules).
    pub ttl: Option<i64>,
    /// `N`: vivify on miss (`mg`, `ma`, append `ms`) with this TTL.
    pub vivify_ttl: Option<i64>,
    /// `R`: win the recache right when the remaining TTL is below this.
    pub recache_ttl: Option<i64>,
    /// `C`: compare this CAS value before changing the item.
    pub compare_cas: Option<u64>,
    /// `E`: use this as the item's new CAS value.
    pub new_cas: Option<u64>,
    /// `D`: the `ma` delta (default 1).
    pub delta: Option<u64>,
    /// `J`: the `ma` initial value when vivifying (default 0).
    pub initial: Option<u64>,
    /// `M`: the mode.
    pub mode: Option<MetaMode>,
}

impl<'a> MetaFlags<'a> {
    /// Whether `flag` (its letter, e.g. `b'v'`) was given.
    pub fn has(&self, flag: u8) -> bool {
        flag_bit(flag).is_some_and(|bit| self.present & bit != 0)
    }

    /// The flag tokens as sent, for a copy that outlives the input buffer.
    pub fn text(&self) -> &'a [u8] {
        self.tokens
    }

    /// Every flag in request order: its letter and its token (empty for flags without one).
    pub fn in_order(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        self.tokens
            .split(|&byte| byte == b' ')
            .filter(|token| !token.is_empty())
            .map(|token| (token[0], &token[1..]))
    }
}

/// One bit per flag letter `A..=z`.
fn flag_bit(flag: u8) -> Option<u64> {
    flag.is_ascii_alphabetic().then(|| 1u64 << (flag - b'A'))
}

/// Parses the flag tokens in `tokens` (the rest of the line after the key, and after the data
/// length for `ms`) for a `kind` command. The parser calls it; a reply produced later (on
/// another shard's answer) calls it again on a copy of [`MetaFlags::text`].
pub fn parse_flags(kind: MetaKind, tokens: &[u8]) -> Result<MetaFlags<'_>, ErrorKind> {
    if kind == MetaKind::Debug {
        // memcached's `me` looks only at whether its first flag is a bare `b`; the rest is ignored.
        let first = tokens
            .split(|&byte| byte == b' ')
            .find(|token| !token.is_empty());
        let tokens = first.filter(|token| *token == b"b").unwrap_or_default();
        return Ok(MetaFlags {
            present: flag_bit(b'b').filter(|_| !tokens.is_empty()).unwrap_or(0),
            tokens,
            ..MetaFlags::default()
        });
    }
    let mut flags = MetaFlags {
        tokens,
        ..MetaFlags::default()
    };
    for (flag, token) in flags.in_order() {
        let bit = match flag_bit(flag) {
            Some(bit) if kind.allowed_flags().contains(&flag) => bit,
            _ => return Err(ErrorKind::InvalidFlag),
        };
        if flags.present & bit != 0 {
            return Err(ErrorKind::DuplicateFlag);
        }
        flags.present |= bit;
        match flag {
            b'O' if 1 + token.len() > OPAQUE_BYTES_MAX => return Err(ErrorKind::OpaqueTooLong),
            b'O' => flags.opaque = Some(token),
            // memcached answers a bad client-flags token with the general format error.
            b'F' => {
                flags.client_flags = Some(
                    parse_unsigned(token)
                        .and_then(|value| u32::try_from(value).ok())
                        .ok_or(ErrorKind::BadCommandLine)?,
                )
            }
            b'T' => flags.ttl = Some(time_token(token)?),
            b'N' => flags.vivify_ttl = Some(time_token(token)?),
            b'R' => flags.recache_ttl = Some(time_token(token)?),
            b'C' => flags.compare_cas = Some(number_token(token)?),
            b'E' => flags.new_cas = Some(number_token(token)?),
            b'D' => flags.delta = Some(number_token(token)?),
            b'J' => flags.initial = Some(number_token(token)?),
            b'M' => flags.mode = Some(mode_token(kind, token)?),
            _ => {}
        }
    }
    Ok(flags)
}

fn time_token(token: &[u8]) -> Result<i64, ErrorKind> {
    parse_signed(token).ok_or(ErrorKind::BadToken)
}

fn number_token(token: &[u8]) -> Result<u64, ErrorKind> {
    parse_unsigned(token).ok_or(ErrorKind::BadToken)
}

fn mode_token(kind: MetaKind, token: &[u8]) -> Result<MetaMode, ErrorKind> {
    match (kind, token.first()) {
        (MetaKind::Set, Some(b'S' | b's')) => Ok(MetaMode::Set),
        (MetaKind::Set, Some(b'E' | b'e')) => Ok(MetaMode::Add),
        (MetaKind::Set, Some(b'A' | b'a')) => Ok(MetaMode::Append),
        (MetaKind::Set, Some(b'P' | b'p')) => Ok(MetaMode::Prepend),
        (MetaKind::Set, Some(b'R' | b'r')) => Ok(MetaMode::Replace),
        (MetaKind::Set, _) => Err(ErrorKind::InvalidStoreMode),
        (_, Some(b'I' | b'i' | b'+')) => Ok(MetaMode::Increment),
        (_, Some(b'D' | b'd' | b'-')) => Ok(MetaMode::Decrement),
        _ => Err(ErrorKind::InvalidArithmeticMode),
    }
}

/// Checks a meta key token, decoding it when the `b` flag is given.
pub fn parse_key<'a>(token: &'a [u8], flags: &MetaFlags<'_>) -> Result<MetaKey<'a>, ErrorKind> {
    if token.len() > KEY_BYTES_MAX {
        return Err(ErrorKind::BadCommandLine);
    }
    if !flags.has(b'b') {
        check_key(token)?;
        return Ok(MetaKey {
            token,
            decoded: None,
        });
    }
    let mut bytes = [0u8; DECODED_KEY_BYTES_MAX];
    let len = decode_base64(token, &mut bytes).ok_or(ErrorKind::KeyDecode)?;
    Ok(MetaKey {
        token,
        decoded: Some(bytes[..len].into()),
    })
}

/// Decodes canonical padded base64 (RFC 4648 §4) into `output`, as memcached's decoder takes it;
/// `None` when `text` is not that, decodes to nothing, or does not fit.
fn decode_base64(text: &[u8], output: &mut [u8]) -> Option<usize> {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut len = 0;
    for chunk in text.chunks(4) {
        let mut group: u32 = 0;
        for &character in chunk {
            group = group << 6 | u32::from(sextet(character)?);
        }
        // A chunk of n characters carries n - 1 bytes in its top bits; the rest must be zero.
        let bits_unused = 6 * chunk.len() % 8;
        if group & ((1 << bits_unused) - 1) != 0 {
            return None;
        }
        group <<= 6 * (4 - chunk.len());
        for index in 0..chunk.len() - 1 {
            *output.get_mut(len)? = (group >> (16 - 8 * index)) as u8;
            len += 1;
        }
    }
    Some(len)
}

fn sextet(character: u8) -> Option<u8> {
    match character {
        b'A'..=b'Z' => Some(character - b'A'),
        b'a'..=b'z' => Some(character - b'a' + 26),
        b'0'..=b'9' => Some(character - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_padded_and_unpadded() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"bWs=", Some(b"mk")),
            (b"bWs", None),
            (b"bWt=", None),
            (b"Zm9vYmFy", Some(b"foobar")),
            (b"Zm9vYg==", Some(b"foob")),
            (b"AP8=", Some(&[0x00, 0xff])),
            (b"+/+/", Some(&[0xfb, 0xff, 0xbf])),
            (b"", None),
            (b"=", None),
            (b"a", None),
            (b"mk", None),
            (b"====", None),
            (b"bW s", None),
            (b"bWs==x", None),
        ];
        for &(text, expect) in cases {
            let mut output = [0u8; 16];
            let decoded = decode_base64(text, &mut output).map(|len| &output[..len]);
            assert_eq!(decoded, expect, "{:?}", String::from_utf8_lossy(text));
        }
        let mut small = [0u8; 2];
        assert_eq!(decode_base64(b"Zm9v", &mut small), None, "output too small");
    }

    #[test]
    fn longest_base64_key_fits() {
        let flags = parse_flags(MetaKind::Get, b"b").unwrap();
        let token = [b'A'; KEY_BYTES_MAX / 4 * 4];
        let key = parse_key(&token, &flags).unwrap();
        assert_eq!(key.bytes(), [0u8; DECODED_KEY_BYTES_MAX]);
        let token = [b'A'; KEY_BYTES_MAX / 4 * 4 + 4];
        assert_eq!(parse_key(&token, &flags), Err(ErrorKind::BadCommandLine));
    }
}
