//! Data-driven tests: one `check(input, expect)` for the parser, `check_meta_reply` for the meta
//! encoder. The expected error texts are memcached 1.6's own replies.

use super::reply::{self, ItemInfo, MetaStatus, Status};
use super::*;

/// Small limits so that the limit cases stay readable.
const TEST_LIMITS: Limits = Limits {
    value_bytes_max: 8,
    line_bytes_max: 48,
    retrieval_line_bytes_max: 64,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn keys(keys: &Keys<'_>) -> String {
    assert_eq!(keys.iter().count(), keys.count());
    keys.iter().map(text).collect::<Vec<_>>().join(",")
}

fn noreply(noreply: bool) -> &'static str {
    if noreply {
        " noreply"
    } else {
        ""
    }
}

fn describe_command(command: &Command<'_>) -> String {
    match command {
        Command::Get { keys: found, cas } => format!("get cas={cas} [{}]", keys(found)),
        Command::GetAndTouch {
            exptime,
            keys: found,
            cas,
        } => format!("gat {exptime} cas={cas} [{}]", keys(found)),
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            data,
            noreply: quiet,
        } => {
            format!(
                "{mode:?} {} flags={flags} exp={exptime} data={:?}{}",
                text(key),
                text(data),
                noreply(*quiet)
            )
        }
        Command::Arithmetic {
            key,
            delta,
            decrement,
            noreply: quiet,
        } => {
            format!(
                "{} {} {delta}{}",
                if *decrement { "decr" } else { "incr" },
                text(key),
                noreply(*quiet)
            )
        }
        Command::Delete {
            key,
            noreply: quiet,
        } => format!("delete {}{}", text(key), noreply(*quiet)),
        Command::Touch {
            key,
            exptime,
            noreply: quiet,
        } => format!("touch {} {exptime}{}", text(key), noreply(*quiet)),
        Command::FlushAll {
            delay,
            noreply: quiet,
        } => format!("flush_all {delay}{}", noreply(*quiet)),
        Command::Version => "version".into(),
        Command::Verbosity { noreply: quiet } => format!("verbosity{}", noreply(*quiet)),
        Command::Quit => "quit".into(),
        Command::Stats { args } => format!("stats [{}]", keys(args)),
        Command::MetaNoop => "mn".into(),
        Command::Meta {
            kind,
            key,
            flags,
            data,
        } => {
            let mut out = format!("{kind:?} key={:?}", text(key.bytes()));
            if key.is_base64() {
                out += " base64";
            }
            let letters: String = flags.in_order().map(|(flag, _)| char::from(flag)).collect();
            out += &format!(" flags={letters}");
            let fields = [
                (
                    "F",
                    flags
                        .client_flags
                        .map(u64::from)
                        .map(|value| value.to_string()),
                ),
                ("T", flags.ttl.map(|value| value.to_string())),
                ("N", flags.vivify_ttl.map(|value| value.to_string())),
                ("R", flags.recache_ttl.map(|value| value.to_string())),
                ("C", flags.compare_cas.map(|value| value.to_string())),
                ("E", flags.new_cas.map(|value| value.to_string())),
                ("D", flags.delta.map(|value| value.to_string())),
                ("J", flags.initial.map(|value| value.to_string())),
                ("M", flags.mode.map(|mode| format!("{mode:?}"))),
                ("O", flags.opaque.map(text)),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    out += &format!(" {name}={value}");
                }
            }
            if *kind == MetaKind::Set {
                out += &format!(" data={:?}", text(data));
            }
            out
        }
    }
}

fn describe(input: &[u8]) -> String {
    match parse(input, &TEST_LIMITS) {
        Ok(Parsed::Complete { command, consumed }) => {
            format!("{consumed}: {}", describe_command(&command))
        }
        Ok(Parsed::Incomplete) => "incomplete".into(),
        Err(Error {
            kind,
            consumed,
            swallow,
            noreply,
        }) => {
            let close = if kind.closes_connection() {
                " close"
            } else {
                ""
            };
            let noreply = if noreply { " noreply" } else { "" };
            format!(
                "{} (consumed {consumed}, swallow {swallow}{close}{noreply})",
                kind.message()
            )
        }
    }
}

/// Parses `input`, compares with `expect`, and checks that every prefix of `input` parses as
/// incomplete or to the same outcome (split reads never change the result).
fn check(input: &[u8], expect: &str) {
    let outcome = describe(input);
    assert_eq!(outcome, expect, "input {:?}", text(input));
    for end in 0..input.len() {
        let prefix_outcome = describe(&input[..end]);
        assert!(
            prefix_outcome == "incomplete" || prefix_outcome == outcome,
            "prefix {:?} gave {prefix_outcome}, whole gave {outcome}",
            text(&input[..end])
        );
    }
}

#[test]
fn retrieval() {
    check(b"get k\r\n", "7: get cas=false [k]");
    check(b"get k\n", "6: get cas=false [k]");
    check(b"gets a  b c \r\nget x", "14: get cas=true [a,b,c]");
    check(b"gat 10 a b\r\n", "12: gat 10 cas=false [a,b]");
    check(b"gats -1 a\r\n", "11: gat -1 cas=true [a]");
    check(b"gat 10\r\n", "8: gat 10 cas=false []");
    check(b"get\r\n", "ERROR (consumed 5, swallow 0)");
    check(b"gat\r\n", "ERROR (consumed 5, swallow 0)");
    check(
        b"gat x k\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 9, swallow 0)",
    );
    check(b"GET k\r\n", "ERROR (consumed 7, swallow 0)");
    check(b"get k", "incomplete");
}

#[test]
fn keys_are_checked() {
    let longest = "k".repeat(KEY_BYTES_MAX);
    let limits = Limits::default();
    let line = format!("get {longest}\r\n");
    assert!(matches!(
        parse(line.as_bytes(), &limits),
        Ok(Parsed::Complete { .. })
    ));
    let line = format!("get {longest}k\r\n");
    assert_eq!(
        parse(line.as_bytes(), &limits),
        Err(Error {
            kind: ErrorKind::BadCommandLine,
            consumed: line.len(),
            swallow: 0,
            noreply: false,
        })
    );
    check(
        b"get a\x01b\r\n",
        "CLIENT_ERROR bad command line format (consumed 9, swallow 0)",
    );
    check(
        b"get a\tb\r\n",
        "CLIENT_ERROR bad command line format (consumed 9, swallow 0)",
    );
    check(
        b"get ok a\x7fb\r\n",
        "CLIENT_ERROR bad command line format (consumed 12, swallow 0)",
    );
    check(
        "get caf\u{e9}\r\n".as_bytes(),
        "11: get cas=false [caf\u{e9}]",
    );
}

#[test]
fn storage() {
    check(
        b"set k 5 10 2\r\nhi\r\n",
        r#"18: Set k flags=5 exp=10 data="hi""#,
    );
    check(
        b"add k 0 -1 0\r\n\r\n",
        r#"16: Add k flags=0 exp=-1 data="""#,
    );
    check(
        b"replace k 0 0 4\r\n\r\n\r\n\r\n",
        r#"23: Replace k flags=0 exp=0 data="\r\n\r\n""#,
    );
    check(
        b"append k 0 0 1 noreply\r\nx\r\n",
        r#"27: Append k flags=0 exp=0 data="x" noreply"#,
    );
    check(
        b"prepend k 0 0 1 other\r\nx\r\n",
        r#"26: Prepend k flags=0 exp=0 data="x""#,
    );
    check(
        b"cas k 4294967295 0 1 77\r\nx\r\n",
        r#"28: Cas { unique: 77 } k flags=4294967295 exp=0 data="x""#,
    );
    check(
        b"cas k 0 0 1 77 noreply\r\nx\r\n",
        r#"27: Cas { unique: 77 } k flags=0 exp=0 data="x" noreply"#,
    );
    check(
        b"set k 0 0 8\r\n12345678\r\n",
        r#"23: Set k flags=0 exp=0 data="12345678""#,
    );
    check(b"set k 0 0 2\r\nhi", "incomplete");
}

#[test]
fn storage_errors() {
    check(b"set k 0 0\r\n", "ERROR (consumed 11, swallow 0)");
    check(
        b"set k 0 0 1 noreply x\r\n",
        "ERROR (consumed 23, swallow 0)",
    );
    check(b"cas k 0 0 1\r\n", "ERROR (consumed 13, swallow 0)");
    check(
        b"set k 0 0 x\r\n",
        "CLIENT_ERROR bad command line format (consumed 13, swallow 0)",
    );
    check(
        b"set k 0 0 -1\r\n",
        "CLIENT_ERROR bad command line format (consumed 14, swallow 0)",
    );
    check(
        b"set k 0 0 2147483646\r\n",
        "CLIENT_ERROR bad command line format (consumed 22, swallow 0)",
    );
    // Once the length is known, a refused block is swallowed so that the stream stays in sync.
    check(
        b"set k x 0 1\r\n",
        "CLIENT_ERROR bad command line format (consumed 13, swallow 3)",
    );
    check(
        b"set k 4294967296 0 1\r\n",
        "CLIENT_ERROR bad command line format (consumed 22, swallow 3)",
    );
    check(
        b"set k 0 1.5 1\r\n",
        "CLIENT_ERROR bad command line format (consumed 15, swallow 3)",
    );
    check(
        b"cas k 0 0 1 -5\r\n",
        "CLIENT_ERROR bad command line format (consumed 16, swallow 3)",
    );
    check(
        b"set a\x01 0 0 1\r\n",
        "CLIENT_ERROR bad command line format (consumed 14, swallow 3)",
    );
    check(
        b"set k 0 0 9\r\n",
        "SERVER_ERROR object too large for cache (consumed 13, swallow 11)",
    );
    check(
        b"set k 0 0 3\r\nabcd\r\n",
        "CLIENT_ERROR bad data chunk (consumed 18, swallow 0)",
    );
    check(
        b"set k 0 0 1\r\nx\nget k\r\n",
        "CLIENT_ERROR bad data chunk (consumed 16, swallow 0)",
    );
}

/// memcached (`set_noreply_maybe`) answers nothing, errors included, for a text command whose
/// last token is `noreply`, once its token count is right.
#[test]
fn noreply_silences_errors_after_the_token_count() {
    let bad_line = "CLIENT_ERROR bad command line format";
    check(
        b"incr k abc noreply\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 20, swallow 0 noreply)",
    );
    // The delta token itself may be the `noreply`.
    check(
        b"incr k noreply\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 16, swallow 0 noreply)",
    );
    check(b"incr k 1 noreply x\r\n", "ERROR (consumed 20, swallow 0)");
    check(
        b"decr a\x01 1 noreply\r\n",
        &format!("{bad_line} (consumed 19, swallow 0 noreply)"),
    );
    check(
        b"touch k x noreply\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 19, swallow 0 noreply)",
    );
    check(
        b"touch k noreply\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 17, swallow 0 noreply)",
    );
    let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    check(
        b"delete k 5 noreply\r\n",
        &format!("{usage} (consumed 20, swallow 0 noreply)"),
    );
    check(
        b"delete k noreply x\r\n",
        &format!("{usage} (consumed 20, swallow 0)"),
    );
    check(
        b"delete a\x01 noreply\r\n",
        &format!("{bad_line} (consumed 19, swallow 0 noreply)"),
    );
    // A key of `noreply` is a key.
    check(b"delete noreply\r\n", "16: delete noreply");
    check(
        b"flush_all x noreply\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 21, swallow 0 noreply)",
    );
    check(
        b"flush_all noreply 5\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 21, swallow 0)",
    );
    check(
        b"flush_all noreply noreply\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 27, swallow 0 noreply)",
    );
    check(b"flush_all 5 x\r\n", "15: flush_all 5");
    check(
        b"verbosity x noreply\r\n",
        &format!("{bad_line} (consumed 21, swallow 0 noreply)"),
    );
    check(
        b"verbosity noreply\r\n",
        &format!("{bad_line} (consumed 19, swallow 0 noreply)"),
    );
    check(
        b"verbosity x\r\n",
        &format!("{bad_line} (consumed 13, swallow 0)"),
    );
    // Storage: the length, flags, exptime or CAS token may be the bad one; a known length still
    // has its block swallowed.
    check(
        b"set k 0 0 x noreply\r\n",
        &format!("{bad_line} (consumed 21, swallow 0 noreply)"),
    );
    check(
        b"set k 0 0 noreply\r\n",
        &format!("{bad_line} (consumed 19, swallow 0 noreply)"),
    );
    check(
        b"set k x 0 1 noreply\r\n",
        &format!("{bad_line} (consumed 21, swallow 3 noreply)"),
    );
    check(
        b"cas k 0 0 1 noreply\r\n",
        &format!("{bad_line} (consumed 21, swallow 3 noreply)"),
    );
    check(
        b"set k 0 0 9 noreply\r\n",
        "SERVER_ERROR object too large for cache (consumed 21, swallow 11 noreply)",
    );
    check(
        b"set k 0 0 3 noreply\r\nabcd\r\n",
        "CLIENT_ERROR bad data chunk (consumed 26, swallow 0 noreply)",
    );
    check(
        b"set k 0 0 1 noreplyx\r\nx\r\n",
        "25: Set k flags=0 exp=0 data=\"x\"",
    );
    check(
        b"set k 0 0 1 1 noreply\r\n",
        "ERROR (consumed 23, swallow 0)",
    );
    // Meta commands answer every error, `q` or not.
    check(
        b"ms k 3 q\r\nabcd\r\n",
        "CLIENT_ERROR bad data chunk (consumed 15, swallow 0)",
    );
    check(
        b"mg k q q\r\n",
        "CLIENT_ERROR duplicate flag (consumed 10, swallow 0)",
    );
}

/// memcached reads numbers with `strtol` / `strtoull`: a leading `+` and leading zeros are fine.
#[test]
fn numbers_as_memcached_reads_them() {
    check(
        b"set k +3 007 +1\r\nx\r\n",
        "20: Set k flags=3 exp=7 data=\"x\"",
    );
    check(
        b"set k 0 -0 01\r\nx\r\n",
        "18: Set k flags=0 exp=0 data=\"x\"",
    );
    check(
        b"cas k 0 0 1 +5\r\nx\r\n",
        "19: Cas { unique: 5 } k flags=0 exp=0 data=\"x\"",
    );
    check(b"incr k +2\r\n", "11: incr k 2");
    check(b"decr k 007\r\n", "12: decr k 7");
    check(b"touch k +100\r\n", "14: touch k 100");
    check(b"touch k -0100\r\n", "15: touch k -100");
    check(b"gat 007 k\r\n", "11: gat 7 cas=false [k]");
    check(b"flush_all +0\r\n", "14: flush_all 0");
    check(b"verbosity 01\r\n", "14: verbosity");
    check(
        b"mg k T+5 N007 R-01 v\r\n",
        "22: Get key=\"k\" flags=TNRv T=5 N=7 R=-1",
    );
    check(
        b"ms k +1 F+3 C007\r\nx\r\n",
        "21: Set key=\"k\" flags=FC F=3 C=7 data=\"x\"",
    );
    check(
        b"ma k J+5 D007\r\n",
        "15: Arithmetic key=\"k\" flags=JD D=7 J=5",
    );
    // No digits, two signs, a sign on an unsigned number (memcached's `strtoull` also takes `-0`;
    // a sign there is a client bug either way), or something after the digits.
    check(
        b"incr k ++1\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 12, swallow 0)",
    );
    check(
        b"incr k +\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 10, swallow 0)",
    );
    check(
        b"incr k -0\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 11, swallow 0)",
    );
    check(
        b"touch k +-1\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 13, swallow 0)",
    );
    check(
        b"touch k -\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 11, swallow 0)",
    );
    check(
        b"set k -3 0 1\r\nx\r\n",
        "CLIENT_ERROR bad command line format (consumed 14, swallow 3)",
    );
    check(
        b"mg k T1+ v\r\n",
        "CLIENT_ERROR bad token in command line format (consumed 12, swallow 0)",
    );
}

#[test]
fn other_text_commands() {
    check(b"incr k 5\r\n", "10: incr k 5");
    check(
        b"decr k 18446744073709551615 noreply\r\n",
        "37: decr k 18446744073709551615 noreply",
    );
    check(
        b"incr k x\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 10, swallow 0)",
    );
    check(
        b"incr k -1\r\n",
        "CLIENT_ERROR invalid numeric delta argument (consumed 11, swallow 0)",
    );
    check(b"incr k\r\n", "ERROR (consumed 8, swallow 0)");
    check(b"incr k 1 noreply x\r\n", "ERROR (consumed 20, swallow 0)");
    check(b"delete k\r\n", "10: delete k");
    check(b"delete k noreply\r\n", "18: delete k noreply");
    check(b"delete k 0\r\n", "12: delete k");
    check(b"delete k 0 noreply\r\n", "20: delete k noreply");
    let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    check(
        b"delete k 5\r\n",
        &format!("{usage} (consumed 12, swallow 0)"),
    );
    check(
        b"delete k 0 x\r\n",
        &format!("{usage} (consumed 14, swallow 0)"),
    );
    check(b"delete\r\n", "ERROR (consumed 8, swallow 0)");
    check(b"touch k 10\r\n", "12: touch k 10");
    check(b"touch k 10 noreply\r\n", "20: touch k 10 noreply");
    check(b"touch k\r\n", "ERROR (consumed 9, swallow 0)");
    check(
        b"touch k x\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 11, swallow 0)",
    );
    check(b"flush_all\r\n", "11: flush_all 0");
    check(b"flush_all 30\r\n", "14: flush_all 30");
    check(b"flush_all noreply\r\n", "19: flush_all 0 noreply");
    check(b"flush_all 30 noreply\r\n", "22: flush_all 30 noreply");
    check(
        b"flush_all x\r\n",
        "CLIENT_ERROR invalid exptime argument (consumed 13, swallow 0)",
    );
    check(b"version\r\n", "9: version");
    check(b"verbosity 1\r\n", "13: verbosity");
    check(b"verbosity 1 noreply\r\n", "21: verbosity noreply");
    check(b"verbosity\r\n", "ERROR (consumed 11, swallow 0)");
    check(b"quit\r\n", "6: quit");
    check(b"stats\r\n", "7: stats []");
    check(b"stats settings\r\n", "16: stats [settings]");
    check(b"stats cachedump 1 10\r\n", "22: stats [cachedump,1,10]");
    check(b"bogus\r\n", "ERROR (consumed 7, swallow 0)");
    check(b"\r\n", "ERROR (consumed 2, swallow 0)");
    check(b"   \n", "ERROR (consumed 4, swallow 0)");
}

#[test]
fn limits_close_the_connection() {
    check(&[0x80, 0x00, 0x00, 0x05], "SERVER_ERROR binary protocol is not supported, use the text or meta protocol (consumed 0, swallow 0 close)");
    let line_too_long = "CLIENT_ERROR line too long (consumed 0, swallow 0 close)";
    // 48 bytes without a newline are still a prefix; 49 are not.
    check(&[b'x'; 48], "incomplete");
    check(&[b'x'; 49], line_too_long);
    check(&[&[b'x'; 49][..], b"\n"].concat(), line_too_long);
    check(
        &[&[b'x'; 48][..], b"\n"].concat(),
        "ERROR (consumed 49, swallow 0)",
    );
    // Retrieval lines may be longer, up to their own limit.
    let long_get = format!("get {}\r\n", ["key"; 15].join(" "));
    assert_eq!(long_get.len(), 65);
    check(
        long_get.as_bytes(),
        &format!("65: get cas=false [{}]", ["key"; 15].join(",")),
    );
    let too_long_get = format!("get {} k\r\n", ["key"; 15].join(" "));
    check(too_long_get.as_bytes(), line_too_long);
    check(format!("set {}", "k".repeat(50)).as_bytes(), line_too_long);
}

#[test]
fn meta_get() {
    check(b"mg k\r\n", r#"6: Get key="k" flags="#);
    check(
        b"mg k v f t s c k h l u O123 q\r\n",
        r#"31: Get key="k" flags=vftsckhluOq O=123"#,
    );
    check(
        b"mg k N30 R10 T-1 E9 P1 L2\r\n",
        r#"27: Get key="k" flags=NRTEPL T=-1 N=30 R=10 E=9"#,
    );
    check(b"mg  k  v\r\n", r#"10: Get key="k" flags=v"#);
    check(b"mg bWs= b k\r\n", r#"13: Get key="mk" base64 flags=bk"#);
    check(b"mg k O\r\n", r#"8: Get key="k" flags=O O="#);
    check(b"mg\r\n", "ERROR (consumed 4, swallow 0)");
    check(
        b"mg k v v\r\n",
        "CLIENT_ERROR duplicate flag (consumed 10, swallow 0)",
    );
    check(
        b"mg k O1 O2\r\n",
        "CLIENT_ERROR duplicate flag (consumed 12, swallow 0)",
    );
    check(
        b"mg k Y\r\n",
        "CLIENT_ERROR invalid flag (consumed 8, swallow 0)",
    );
    // memcached takes every flag it knows on every meta command and ignores those it has no
    // use for.
    check(b"mg k C5 MX D1\r\n", r#"15: Get key="k" flags=CMD C=5 D=1"#);
    check(
        b"mg k 1\r\n",
        "CLIENT_ERROR invalid flag (consumed 8, swallow 0)",
    );
    check(
        b"mg k Tx\r\n",
        "CLIENT_ERROR bad token in command line format (consumed 9, swallow 0)",
    );
    check(
        b"mg k N\r\n",
        "CLIENT_ERROR bad token in command line format (consumed 8, swallow 0)",
    );
    // memcached counts the `O` in: 31 bytes of opaque at most.
    let opaque = format!("mg k O{}\r\n", "1".repeat(32));
    check(
        opaque.as_bytes(),
        "CLIENT_ERROR opaque token too long (consumed 40, swallow 0)",
    );
    let opaque = format!("mg k O{}\r\n", "1".repeat(31));
    check(
        opaque.as_bytes(),
        &format!("39: Get key=\"k\" flags=O O={}", "1".repeat(31)),
    );
    check(
        b"mg mk b\r\n",
        "CLIENT_ERROR error decoding key (consumed 9, swallow 0)",
    );
    check(
        b"mg a\x01 v\r\n",
        "CLIENT_ERROR bad command line format (consumed 9, swallow 0)",
    );
    check(b"mz k\r\n", "ERROR (consumed 6, swallow 0)");
}

#[test]
fn meta_other_commands() {
    check(
        b"ms k 2 T60 F5 c k O1 q\r\nhi\r\n",
        r#"28: Set key="k" flags=TFckOq F=5 T=60 O=1 data="hi""#,
    );
    check(
        b"ms k 2 MA N30 C7 I\r\nhi\r\n",
        r#"24: Set key="k" flags=MNCI N=30 C=7 M=Append data="hi""#,
    );
    check(
        b"ms k 0 ME\r\n\r\n",
        r#"13: Set key="k" flags=M M=Add data="""#,
    );
    check(b"ms k 2\r\nhi", "incomplete");
    check(
        b"ms k\r\n",
        "CLIENT_ERROR bad command line format (consumed 6, swallow 0)",
    );
    check(
        b"ms k x\r\n",
        "CLIENT_ERROR bad command line format (consumed 8, swallow 0)",
    );
    check(b"ms\r\n", "ERROR (consumed 4, swallow 0)");
    check(
        b"ms k 2 MX\r\n",
        "CLIENT_ERROR invalid mode for ms M token (consumed 11, swallow 4)",
    );
    check(
        b"ms k 2 Fx\r\n",
        "CLIENT_ERROR bad command line format (consumed 11, swallow 4)",
    );
    check(
        b"ms k 2 Cabc\r\n",
        "CLIENT_ERROR bad token in command line format (consumed 13, swallow 4)",
    );
    check(
        b"ms k 2 Y\r\n",
        "CLIENT_ERROR invalid flag (consumed 10, swallow 4)",
    );
    check(
        b"ms mk 2 b\r\n",
        "CLIENT_ERROR error decoding key (consumed 11, swallow 4)",
    );
    check(
        b"ms k 9\r\n",
        "SERVER_ERROR object too large for cache (consumed 8, swallow 11)",
    );
    check(
        b"ms k 2\r\nhix\r\n",
        "CLIENT_ERROR bad data chunk (consumed 12, swallow 0)",
    );
    check(
        b"md k q I T30 x C9\r\n",
        r#"19: Delete key="k" flags=qITxC T=30 C=9"#,
    );
    // md and ma answer every flag they cannot read with one generic line, as memcached does.
    let generic = "CLIENT_ERROR invalid or duplicate flag";
    check(b"md k Y\r\n", &format!("{generic} (consumed 8, swallow 0)"));
    check(
        b"md k q q\r\n",
        &format!("{generic} (consumed 10, swallow 0)"),
    );
    check(
        b"md k Tx\r\n",
        &format!("{generic} (consumed 9, swallow 0)"),
    );
    check(
        b"md mk b\r\n",
        &format!("{generic} (consumed 9, swallow 0)"),
    );
    check(
        b"ma k MII\r\n",
        &format!("{generic} (consumed 10, swallow 0)"),
    );
    check(
        b"ma k MX v v\r\n",
        &format!("{generic} (consumed 13, swallow 0)"),
    );
    check(b"ma k\r\n", r#"6: Arithmetic key="k" flags="#);
    check(
        b"ma k MD D10 J5 N0 v t c\r\n",
        r#"25: Arithmetic key="k" flags=MDJNvtc N=0 D=10 J=5 M=Decrement"#,
    );
    check(
        b"ma k M+\r\n",
        r#"9: Arithmetic key="k" flags=M M=Increment"#,
    );
    check(
        b"ma k Mx\r\n",
        "CLIENT_ERROR invalid mode for ma M token (consumed 9, swallow 0)",
    );
    check(
        b"ma k Dx\r\n",
        &format!("{generic} (consumed 9, swallow 0)"),
    );
    check(
        b"ma k D-1\r\n",
        &format!("{generic} (consumed 10, swallow 0)"),
    );
    // Mode letters are upper case; a mode is one letter.
    check(
        b"ma k Mi\r\n",
        "CLIENT_ERROR invalid mode for ma M token (consumed 9, swallow 0)",
    );
    check(
        b"ms k 2 Ms\r\n",
        "CLIENT_ERROR invalid mode for ms M token (consumed 11, swallow 4)",
    );
    check(
        b"ms k 2 MSS\r\n",
        "CLIENT_ERROR incorrect length for M token (consumed 12, swallow 4)",
    );
    // An unknown or repeated flag is reported before a token that does not read, a mode or an
    // opaque token, and the key's length before any flag.
    check(
        b"ms k 2 MX Cx Y\r\n",
        "CLIENT_ERROR invalid flag (consumed 16, swallow 4)",
    );
    check(
        b"mg k Tx h h\r\n",
        "CLIENT_ERROR duplicate flag (consumed 13, swallow 0)",
    );
    let opaque = "1".repeat(32);
    check(
        format!("ms k 2 O{opaque} MX\r\n").as_bytes(),
        "CLIENT_ERROR invalid mode for ms M token (consumed 45, swallow 4)",
    );
    // At most 19 tokens on a meta line, as memcached takes; a refused ms block is not skipped.
    let outcome = |line: String| {
        parse(line.as_bytes(), &Limits::default())
            .map(|_| ())
            .map_err(|error| (error.kind, error.swallow))
    };
    let flags = "c f h k l O1 s t u v P L I C1 D1 J1 F1";
    assert_eq!(outcome(format!("mg k {flags}\r\n")), Ok(()));
    assert_eq!(
        outcome(format!("mg k {flags} R1\r\n")),
        Err((ErrorKind::TooManyGetFlags, 0))
    );
    assert_eq!(
        outcome(format!("md k {flags} R1\r\n")),
        Err((ErrorKind::TooManyFlags, 0))
    );
    assert_eq!(
        outcome("ms k 1 c f h k l O1 s t u v P L I C1 D1 J1\r\nx\r\n".into()),
        Ok(())
    );
    assert_eq!(
        outcome(format!("ms k 1 {flags}\r\nx\r\n")),
        Err((ErrorKind::TooManyFlags, 0))
    );
    let long_key = format!("mg {} Y\r\n", "k".repeat(251));
    assert_eq!(
        parse(long_key.as_bytes(), &Limits::default()).map_err(|error| error.kind),
        Err(ErrorKind::BadCommandLine)
    );
    check(b"me k\r\n", r#"6: Debug key="k" flags="#);
    check(b"me bWs= b\r\n", r#"11: Debug key="mk" base64 flags=b"#);
    // memcached's `me` takes a bare `b` as its first flag and ignores everything else.
    check(b"me k v O1 b\r\n", r#"13: Debug key="k" flags="#);
    check(b"me bWs= b v\r\n", r#"13: Debug key="mk" base64 flags=b"#);
    check(
        b"me\r\n",
        "CLIENT_ERROR bad command line format (consumed 4, swallow 0)",
    );
    check(b"mn\r\n", "4: mn");
    check(b"mn extra\r\n", "10: mn");
}

#[test]
fn pipelined_mix_parses_in_order() {
    let input = b"set a 0 0 1\r\n1\r\nmg a v q\r\nget a b\r\nms b 1 T0\r\n2\r\nmn\r\n";
    let mut position = 0;
    let mut seen = Vec::new();
    while let Ok(Parsed::Complete { command, consumed }) =
        parse(&input[position..], &Limits::default())
    {
        seen.push(describe_command(&command));
        position += consumed;
    }
    assert_eq!(position, input.len());
    assert_eq!(
        seen,
        [
            r#"Set a flags=0 exp=0 data="1""#,
            r#"Get key="a" flags=vq"#,
            "get cas=false [a,b]",
            r#"Set key="b" flags=T T=0 data="2""#,
            "mn",
        ]
    );
}

fn encode(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    text(&out)
}

#[test]
fn text_replies() {
    assert_eq!(
        encode(|out| reply::value(out, b"k", 5, b"a\r\nb", None)),
        "VALUE k 5 4\r\na\r\nb\r\n"
    );
    assert_eq!(
        encode(|out| reply::value(out, b"k", 0, b"", Some(77))),
        "VALUE k 0 0 77\r\n\r\n"
    );
    assert_eq!(encode(|out| reply::status(out, Status::End)), "END\r\n");
    assert_eq!(
        encode(|out| reply::status(out, Status::NotStored)),
        "NOT_STORED\r\n"
    );
    assert_eq!(
        encode(|out| reply::number(out, u64::MAX)),
        "18446744073709551615\r\n"
    );
    assert_eq!(
        encode(|out| reply::version(out, "1.6.18")),
        "VERSION 1.6.18\r\n"
    );
    assert_eq!(
        encode(|out| reply::stat_number(out, "curr_items", 3)),
        "STAT curr_items 3\r\n"
    );
    assert_eq!(
        encode(|out| reply::stat(out, "version", b"1.6.18")),
        "STAT version 1.6.18\r\n"
    );
    assert_eq!(
        encode(|out| reply::error(out, ErrorKind::BadDataChunk)),
        "CLIENT_ERROR bad data chunk\r\n"
    );
    assert_eq!(
        encode(|out| reply::server_error(out, "out of memory storing object")),
        "SERVER_ERROR out of memory storing object\r\n"
    );
}

/// Parses `request`, encodes a meta reply for it, and compares with `expect`.
fn check_meta_reply(
    request: &[u8],
    status: MetaStatus,
    item: Option<&ItemInfo>,
    data: &[u8],
    expect: &str,
) {
    let Ok(Parsed::Complete {
        command: Command::Meta {
            kind, key, flags, ..
        },
        ..
    }) = parse(request, &Limits::default())
    else {
        panic!("{} is not a meta request", text(request));
    };
    let out = encode(|out| reply::meta(out, kind, &key, &flags, status, item, data));
    assert_eq!(out, expect, "reply to {:?}", text(request));
}

#[test]
fn meta_replies() {
    let item = ItemInfo {
        cas: 16,
        client_flags: 7,
        size: 2,
        ttl_seconds: -1,
        last_access_seconds: 3,
        hit_before: true,
        ..ItemInfo::default()
    };
    check_meta_reply(
        b"mg mk v f t s c k h l O123 q\r\n",
        MetaStatus::Value,
        Some(&item),
        b"hi",
        "VA 2 f7 t-1 s2 c16 kmk h1 l3 O123\r\nhi\r\n",
    );
    check_meta_reply(b"mg mk\r\n", MetaStatus::Done, Some(&item), b"", "HD\r\n");
    check_meta_reply(b"mg mk q\r\n", MetaStatus::Done, Some(&item), b"", "HD\r\n");
    check_meta_reply(
        b"mg bWs= b k v\r\n",
        MetaStatus::Value,
        Some(&item),
        b"hi",
        "VA 2 kbWs= b\r\nhi\r\n",
    );
    check_meta_reply(
        b"mg missing v O5 k\r\n",
        MetaStatus::Miss,
        None,
        b"",
        "EN O5 kmissing\r\n",
    );
    check_meta_reply(b"mg missing v q\r\n", MetaStatus::Miss, None, b"", "");
    let won = ItemInfo {
        won: true,
        stale: true,
        cas: 25,
        ..item
    };
    check_meta_reply(
        b"mg mk c\r\n",
        MetaStatus::Done,
        Some(&won),
        b"",
        "HD c25 X W\r\n",
    );
    let lost = ItemInfo {
        win_sent: true,
        ..item
    };
    check_meta_reply(b"mg mk\r\n", MetaStatus::Done, Some(&lost), b"", "HD Z\r\n");
    check_meta_reply(
        b"ms k 2 c k O9\r\nhi\r\n",
        MetaStatus::Done,
        Some(&item),
        b"",
        "HD c16 kk O9\r\n",
    );
    check_meta_reply(
        b"ms k 2 q\r\nhi\r\n",
        MetaStatus::Done,
        Some(&item),
        b"",
        "",
    );
    check_meta_reply(
        b"ms k 2 q\r\nhi\r\n",
        MetaStatus::NotStored,
        None,
        b"",
        "NS\r\n",
    );
    check_meta_reply(
        b"ms x 1 C5 O7 k c\r\na\r\n",
        MetaStatus::NotFound,
        None,
        b"",
        "NF O7 kx c0\r\n",
    );
    check_meta_reply(
        b"ms y 1 C5 O7 k c\r\na\r\n",
        MetaStatus::Exists,
        None,
        b"",
        "EX O7 ky c0\r\n",
    );
    check_meta_reply(b"md k q\r\n", MetaStatus::Done, None, b"", "");
    check_meta_reply(
        b"md k q O1\r\n",
        MetaStatus::NotFound,
        None,
        b"",
        "NF O1\r\n",
    );
    let counter = ItemInfo {
        cas: 20,
        ttl_seconds: -1,
        ..ItemInfo::default()
    };
    check_meta_reply(
        b"ma n v t c\r\n",
        MetaStatus::Value,
        Some(&counter),
        b"6",
        "VA 1 t-1 c20\r\n6\r\n",
    );
    check_meta_reply(b"ma n q\r\n", MetaStatus::Done, Some(&counter), b"", "");
    check_meta_reply(b"ma n q\r\n", MetaStatus::NotFound, None, b"", "NF\r\n");
    assert_eq!(encode(reply::meta_noop), "MN\r\n");
}

#[test]
fn meta_debug_reply() {
    let Ok(Parsed::Complete {
        command: Command::Meta { key, .. },
        ..
    }) = parse(b"me k\r\n", &Limits::default())
    else {
        panic!()
    };
    let item = ItemInfo {
        cas: 17,
        size: 63,
        ttl_seconds: -1,
        last_access_seconds: 2,
        hit_before: true,
        ..ItemInfo::default()
    };
    assert_eq!(
        encode(|out| reply::meta_debug(out, &key, &item)),
        "ME k exp=-1 la=2 cas=17 fetch=yes cls=1 size=63\r\n"
    );
}
