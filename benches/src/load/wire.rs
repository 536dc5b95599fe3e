//! Requests the load generator writes and the replies it frames, for RESP, memcached text and
//! memcached meta. Pure functions of bytes, so they are tested without a server.

/// Which protocol a run speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Redis,
    /// memcached text: `get` / `set`.
    Memcache,
    /// memcached meta: `mg` / `ms`.
    MemcacheMeta,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "redis" => Ok(Protocol::Redis),
            "memcache" => Ok(Protocol::Memcache),
            "memcache-meta" => Ok(Protocol::MemcacheMeta),
            _ => Err(format!(
                "protocol '{text}': use redis, memcache or memcache-meta"
            )),
        }
    }
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Redis => "redis",
            Protocol::Memcache => "memcache",
            Protocol::MemcacheMeta => "memcache-meta",
        }
    }

    /// What an RDMA client says when it connects, so the server knows which protocol follows.
    pub fn greeting(self) -> &'static [u8] {
        use datapath::shard::conn::Protocol as Served;
        datapath::io::rdma::greeting(match self {
            Protocol::Redis => Served::Resp,
            Protocol::Memcache | Protocol::MemcacheMeta => Served::Memcache,
        })
    }

    pub fn write_get(self, out: &mut Vec<u8>, key: &[u8]) {
        match self {
            Protocol::Redis => {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                bulk(out, key);
            }
            Protocol::Memcache => line(out, &[b"get ", key]),
            Protocol::MemcacheMeta => line(out, &[b"mg ", key, b" v"]),
        }
    }

    pub fn write_set(self, out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        let length = value.len().to_string();
        match self {
            Protocol::Redis => {
                out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                bulk(out, key);
                bulk(out, value);
            }
            Protocol::Memcache => {
                line(out, &[b"set ", key, b" 0 0 ", length.as_bytes()]);
                line(out, &[value]);
            }
            Protocol::MemcacheMeta => {
                line(out, &[b"ms ", key, b" ", length.as_bytes()]);
                line(out, &[value]);
            }
        }
    }

    /// Frames the first complete reply in `input`.
    pub fn frame_reply(self, input: &[u8]) -> Framed {
        match self {
            Protocol::Redis => frame_resp(input, 0),
            Protocol::Memcache => frame_text(input),
            Protocol::MemcacheMeta => frame_meta(input),
        }
    }
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// One framed reply: how long it is and what it said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed {
    /// More bytes are needed.
    Incomplete,
    /// A complete reply of `len` bytes; `value` is the byte range of a returned value.
    Reply {
        len: usize,
        outcome: Outcome,
        value: Option<(usize, usize)>,
    },
    /// The bytes cannot be a reply of this protocol: the connection is out of step.
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write acknowledged.
    Stored,
    Hit,
    Miss,
    /// The server answered with an error.
    Error,
}

/// Nesting limit for RESP aggregates: replies to GET and SET are flat, anything deeper is garbage.
const RESP_DEPTH_MAX: usize = 8;

fn find_line(input: &[u8], from: usize) -> Option<usize> {
    input
        .get(from..)?
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .map(|at| from + at)
}

fn number(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn frame_resp(input: &[u8], depth: usize) -> Framed {
    let Some(end) = find_line(input, 0) else {
        return Framed::Incomplete;
    };
    let (kind, body, after) = (input[0], &input[1..end], end + 2);
    let simple = |outcome| Framed::Reply {
        len: after,
        outcome,
        value: None,
    };
    match kind {
        b'+' => simple(Outcome::Stored),
        b'-' => simple(Outcome::Error),
        b':' | b'#' | b',' => simple(Outcome::Hit),
        b'_' => simple(Outcome::Miss),
        b'$' => match number(body) {
            Some(-1) => simple(Outcome::Miss),
            Some(length) if length >= 0 => {
                let length = length as usize;
                if input.len() < after + length + 2 {
                    Framed::Incomplete
                } else if &input[after + length..after + length + 2] != b"\r\n" {
                    Framed::Garbage
                } else {
                    Framed::Reply {
                        len: after + length + 2,
                        outcome: Outcome::Hit,
                        value: Some((after, length)),
                    }
                }
            }
            _ => Framed::Garbage,
        },
        b'*' | b'%' | b'~' if depth < RESP_DEPTH_MAX => {
            let Some(count) = number(body) else {
                return Framed::Garbage;
            };
            if count < 0 {
                return simple(Outcome::Miss);
            }
            let elements = if kind == b'%' { count * 2 } else { count };
            let mut at = after;
            for _ in 0..elements {
                match frame_resp(&input[at..], depth + 1) {
                    Framed::Reply { len, .. } => at += len,
                    other => return other,
                }
            }
            Framed::Reply {
                len: at,
                outcome: Outcome::Hit,
                value: None,
            }
        }
        _ => Framed::Garbage,
    }
}

/// Error lines both memcached protocols share.
fn memcache_error(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

fn frame_text(input: &[u8]) -> Framed {
    let Some(end) = find_line(input, 0) else {
        return Framed::Incomplete;
    };
    let first = &input[..end];
    let simple = |outcome| Framed::Reply {
        len: end + 2,
        outcome,
        value: None,
    };
    if first == b"STORED" {
        return simple(Outcome::Stored);
    }
    if first == b"END" {
        return simple(Outcome::Miss);
    }
    if first == b"NOT_STORED"
        || first == b"EXISTS"
        || first == b"NOT_FOUND"
        || memcache_error(first)
    {
        return simple(Outcome::Error);
    }
    // VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\nEND\r\n
    let fields: Vec<&[u8]> = first.split(|&byte| byte == b' ').collect();
    let Some(length) = (fields.len() >= 4 && fields[0] == b"VALUE")
        .then(|| number(fields[3]))
        .flatten()
    else {
        return Framed::Garbage;
    };
    let (data, length) = (end + 2, length as usize);
    let total = data + length + 2 + b"END\r\n".len();
    if input.len() < total {
        return Framed::Incomplete;
    }
    if &input[data + length..total] != b"\r\nEND\r\n" {
        return Framed::Garbage;
    }
    Framed::Reply {
        len: total,
        outcome: Outcome::Hit,
        value: Some((data, length)),
    }
}

fn frame_meta(input: &[u8]) -> Framed {
    let Some(end) = find_line(input, 0) else {
        return Framed::Incomplete;
    };
    let first = &input[..end];
    let simple = |outcome| Framed::Reply {
        len: end + 2,
        outcome,
        value: None,
    };
    match first.get(..2) {
        Some(b"HD") => simple(Outcome::Stored),
        Some(b"EN") => simple(Outcome::Miss),
        Some(b"NS") | Some(b"EX") | Some(b"NF") => simple(Outcome::Error),
        Some(b"VA") => {
            let length = first[2..]
                .split(|&byte| byte == b' ')
                .find(|field| !field.is_empty())
                .and_then(number);
            let Some(length) = length.filter(|&length| length >= 0) else {
                return Framed::Garbage;
            };
            let (data, length) = (end + 2, length as usize);
            if input.len() < data + length + 2 {
                return Framed::Incomplete;
            }
            if &input[data + length..data + length + 2] != b"\r\n" {
                return Framed::Garbage;
            }
            Framed::Reply {
                len: data + length + 2,
                outcome: Outcome::Hit,
                value: Some((data, length)),
            }
        }
        _ if memcache_error(first) => simple(Outcome::Error),
        _ => Framed::Garbage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn check(protocol: Protocol, input: &[u8], expect: Framed) {
        assert_eq!(
            protocol.frame_reply(input),
            expect,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // Every strict prefix of a complete reply is incomplete, never garbage or a shorter reply.
        if let Framed::Reply { len, .. } = expect {
            for cut in 0..len {
                assert_eq!(
                    protocol.frame_reply(&input[..cut]),
                    Framed::Incomplete,
                    "prefix {cut}"
                );
            }
        }
    }

    fn reply(len: usize, outcome: Outcome, value: Option<(usize, usize)>) -> Framed {
        Framed::Reply {
            len,
            outcome,
            value,
        }
    }

    #[test]
    fn resp_replies() {
        check(Protocol::Redis, b"+OK\r\n", reply(5, Stored, None));
        check(Protocol::Redis, b"$-1\r\n", reply(5, Miss, None));
        check(Protocol::Redis, b"_\r\n", reply(3, Miss, None));
        check(
            Protocol::Redis,
            b"$3\r\nabc\r\n+OK\r\n",
            reply(9, Hit, Some((4, 3))),
        );
        check(Protocol::Redis, b"$0\r\n\r\n", reply(6, Hit, Some((4, 0))));
        check(Protocol::Redis, b"-ERR no\r\n", reply(9, Error, None));
        check(
            Protocol::Redis,
            b"*2\r\n$1\r\na\r\n$-1\r\n",
            reply(16, Hit, None),
        );
        check(Protocol::Redis, b"$3\r\nabcd\r\n", Framed::Garbage);
        check(Protocol::Redis, b"?\r\n", Framed::Garbage);
    }

    #[test]
    fn memcache_text_replies() {
        check(Protocol::Memcache, b"STORED\r\n", reply(8, Stored, None));
        check(Protocol::Memcache, b"END\r\n", reply(5, Miss, None));
        check(
            Protocol::Memcache,
            b"VALUE k 0 3\r\nabc\r\nEND\r\n",
            reply(23, Hit, Some((13, 3))),
        );
        check(
            Protocol::Memcache,
            b"SERVER_ERROR out of memory storing object\r\n",
            reply(43, Error, None),
        );
        check(
            Protocol::Memcache,
            b"VALUE k 0 3\r\nabcd\r\nEND\r\n",
            Framed::Garbage,
        );
        check(Protocol::Memcache, b"HELLO\r\n", Framed::Garbage);
    }

    #[test]
    fn memcache_meta_replies() {
        check(Protocol::MemcacheMeta, b"HD\r\n", reply(4, Stored, None));
        check(Protocol::MemcacheMeta, b"EN\r\n", reply(4, Miss, None));
        check(
            Protocol::MemcacheMeta,
            b"VA 3 f0\r\nabc\r\n",
            reply(14, Hit, Some((9, 3))),
        );
        check(Protocol::MemcacheMeta, b"NS\r\n", reply(4, Error, None));
        check(Protocol::MemcacheMeta, b"VA x\r\n", Framed::Garbage);
    }

    #[test]
    fn requests_are_well_formed() {
        let mut out = Vec::new();
        Protocol::Redis.write_set(&mut out, b"k", b"vv");
        Protocol::Redis.write_get(&mut out, b"k");
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
        out.clear();
        Protocol::Memcache.write_set(&mut out, b"k", b"vv");
        Protocol::Memcache.write_get(&mut out, b"k");
        assert_eq!(out, b"set k 0 0 2\r\nvv\r\nget k\r\n");
        out.clear();
        Protocol::MemcacheMeta.write_set(&mut out, b"k", b"vv");
        Protocol::MemcacheMeta.write_get(&mut out, b"k");
        assert_eq!(out, b"ms k 2\r\nvv\r\nmg k v\r\n");
    }
}
