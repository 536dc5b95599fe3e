//! Data-driven tests: one `check(input, expect)` for the parser, one `check_reply` for the encoder.

use super::*;

/// Small limits so that the limit cases stay readable.
const TEST_LIMITS: Limits = Limits {
    bulk_bytes_max: 16,
    multibulk_elements_max: 4,
    inline_bytes_max: 32,
};

/// What `parse` made of `input`, as text: `complete <consumed> [args]`, `incomplete` or the
/// error's text.
fn describe(input: &[u8], request: &mut Request) -> String {
    match parse(input, &TEST_LIMITS, request) {
        Ok(Parsed::Complete { consumed }) => {
            let args: Vec<String> = request
                .args(input)
                .map(|arg| format!("{:?}", String::from_utf8_lossy(arg)))
                .collect();
            format!("complete {consumed} [{}]", args.join(" "))
        }
        Ok(Parsed::Incomplete) => "incomplete".to_string(),
        Err(error) => error.to_string(),
    }
}

/// Parses `input`, compares with `expect`, and checks that every prefix of `input` parses as
/// incomplete or to the same outcome (split reads never change the result).
fn check(input: &[u8], expect: &str) {
    let mut request = Request::new();
    let outcome = describe(input, &mut request);
    assert_eq!(
        outcome,
        expect,
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    for end in 0..input.len() {
        let prefix_outcome = describe(&input[..end], &mut request);
        assert!(
            prefix_outcome == "incomplete" || prefix_outcome == outcome,
            "prefix {:?} gave {prefix_outcome}, whole gave {outcome}",
            String::from_utf8_lossy(&input[..end])
        );
    }
}

#[test]
fn multibulk() {
    check(
        b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
        r#"complete 22 ["GET" "key"]"#,
    );
    check(b"*1\r\n$4\r\nPING\r\n*1\r\n", r#"complete 14 ["PING"]"#);
    check(
        b"*2\r\n$3\r\nSET\r\n$0\r\n\r\n",
        r#"complete 19 ["SET" ""]"#,
    );
    check(b"*1\r\n$4\r\na\r\nb\r\n", r#"complete 14 ["a\r\nb"]"#);
    check(
        b"*1\r\n$16\r\n0123456789abcdef\r\n",
        r#"complete 27 ["0123456789abcdef"]"#,
    );
    check(b"*0\r\n", "complete 4 []");
    check(b"*-1\r\n", "complete 5 []");
    check(b"*-5\r\n", "complete 5 []");
    check(
        b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n",
        r#"complete 32 ["a" "b" "c" "d"]"#,
    );
    check(b"*2\r\n$3\r\nGET\r\n", "incomplete");
}

#[test]
fn multibulk_errors() {
    check(b"*5\r\n", "Protocol error: invalid multibulk length");
    check(b"*x\r\n", "Protocol error: invalid multibulk length");
    check(b"*\r\n", "Protocol error: invalid multibulk length");
    check(b"*01\r\n", "Protocol error: invalid multibulk length");
    check(b"*1\rx", "Protocol error: invalid multibulk length");
    check(
        b"*99999999999999999999\r\n",
        "Protocol error: invalid multibulk length",
    );
    check(
        &[b"*".as_slice(), &[b'1'; 33]].concat(),
        "Protocol error: too big mbulk count string",
    );
    check(b"*1\r\nGET\r\n", "Protocol error: expected '$', got 'G'");
    check(b"*1\r\n\r\n", "Protocol error: expected '$', got ' '");
    check(b"*1\r\n$17\r\n", "Protocol error: invalid bulk length");
    check(b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length");
    check(b"*1\r\n$a\r\n", "Protocol error: invalid bulk length");
    check(b"*1\r\n$3\rx", "Protocol error: invalid bulk length");
    check(
        &[b"*1\r\n$".as_slice(), &[b'1'; 33]].concat(),
        "Protocol error: too big bulk count string",
    );
    check(
        b"*1\r\n$3\r\nGETx\r\n",
        "Protocol error: bulk data not terminated by CRLF",
    );
    check(
        b"*1\r\n$3\r\nGET\rx",
        "Protocol error: bulk data not terminated by CRLF",
    );
}

#[test]
fn inline() {
    check(b"PING\r\n", r#"complete 6 ["PING"]"#);
    check(b"PING\n", r#"complete 5 ["PING"]"#);
    check(b"  set  a   b \r\n", r#"complete 15 ["set" "a" "b"]"#);
    check(b"\r\n", "complete 2 []");
    check(b"\n", "complete 1 []");
    check(b"set k \"a b\"\r\n", r#"complete 13 ["set" "k" "a b"]"#);
    check(
        b"set k \"\\x41\\n\\t\\\\\\\"\"\n",
        r#"complete 21 ["set" "k" "A\n\t\\\""]"#,
    );
    check(b"set k \"\\xZZ\"\n", r#"complete 13 ["set" "k" "xZZ"]"#);
    check(
        b"set k 'it\\'s' ''\n",
        r#"complete 17 ["set" "k" "it's" ""]"#,
    );
    check(b"set k 'a\\nb'\n", r#"complete 13 ["set" "k" "a\\nb"]"#);
    check(b"a\"b c\"\n", r#"complete 7 ["ab c"]"#);
    // A vertical tab separates only between arguments, as in sdssplitargs.
    check(
        b"set\tk\x0bv \x0bw\n",
        r#"complete 11 ["set" "k\u{b}v" "w"]"#,
    );
    check(b"get k\0ignored\n", r#"complete 14 ["get" "k"]"#);
    check(b"GET key", "incomplete");
    check(
        &[&[b'a'; 32][..], b"\n"].concat(),
        &format!("complete 33 [{:?}]", "a".repeat(32)),
    );
}

#[test]
fn inline_errors() {
    check(
        b"set k \"abc\n",
        "Protocol error: unbalanced quotes in request",
    );
    check(
        b"set k 'abc\n",
        "Protocol error: unbalanced quotes in request",
    );
    check(
        b"set k \"a\"b\n",
        "Protocol error: unbalanced quotes in request",
    );
    check(
        b"set k 'a'b\n",
        "Protocol error: unbalanced quotes in request",
    );
    check(&[b'a'; 33], "Protocol error: too big inline request");
    check(
        &[&[b'a'; 33][..], b"\n"].concat(),
        "Protocol error: too big inline request",
    );
}

#[test]
fn request_is_reused_across_kinds() {
    let mut request = Request::new();
    let inline = b"echo \"x\"\n";
    assert_eq!(
        parse(inline, &TEST_LIMITS, &mut request),
        Ok(Parsed::Complete { consumed: 9 })
    );
    assert!(request.is_inline());
    let multibulk = b"*1\r\n$4\r\nPING\r\n";
    assert_eq!(
        parse(multibulk, &TEST_LIMITS, &mut request),
        Ok(Parsed::Complete { consumed: 14 })
    );
    assert!(!request.is_inline());
    assert_eq!(request.args(multibulk).collect::<Vec<_>>(), [b"PING"]);
}

#[test]
fn default_limits_are_redis_defaults() {
    let limits = Limits::default();
    assert_eq!(limits.bulk_bytes_max, 512 << 20);
    assert_eq!(limits.inline_bytes_max, 64 << 10);
    let mut request = Request::new();
    let input = b"*1\r\n$536870913\r\n";
    assert_eq!(
        parse(input, &limits, &mut request),
        Err(ProtocolError::InvalidBulkLength)
    );
    let input = b"*1048577\r\n";
    assert_eq!(
        parse(input, &limits, &mut request),
        Err(ProtocolError::InvalidMultibulkLength)
    );
}

/// Encodes with `write` in both versions and compares with the expected bytes.
fn check_reply(write: impl Fn(&mut Reply<'_>), resp2: &str, resp3: &str) {
    for (version, expect) in [(Version::Resp2, resp2), (Version::Resp3, resp3)] {
        let mut out = b"prior".to_vec();
        write(&mut Reply::new(&mut out, version));
        assert_eq!(String::from_utf8_lossy(&out[5..]), expect, "{version:?}");
        assert_eq!(&out[..5], b"prior", "appends, never overwrites");
    }
}

#[test]
fn replies() {
    check_reply(|reply| reply.simple(b"OK"), "+OK\r\n", "+OK\r\n");
    check_reply(|reply| reply.simple(b"a\r\nb"), "+a  b\r\n", "+a  b\r\n");
    check_reply(
        |reply| reply.error(b"ERR syntax error"),
        "-ERR syntax error\r\n",
        "-ERR syntax error\r\n",
    );
    check_reply(
        |reply| reply.error_parts(&[b"ERR unknown command '", b"x\ny", b"'"]),
        "-ERR unknown command 'x y'\r\n",
        "-ERR unknown command 'x y'\r\n",
    );
    check_reply(
        |reply| {
            reply.error_fmt(format_args!(
                "ERR {}",
                ProtocolError::ExpectedDollar { got: b'\n' }
            ))
        },
        "-ERR Protocol error: expected '$', got ' '\r\n",
        "-ERR Protocol error: expected '$', got ' '\r\n",
    );
    check_reply(|reply| reply.integer(-42), ":-42\r\n", ":-42\r\n");
    check_reply(
        |reply| reply.integer(i64::MIN),
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    );
    check_reply(
        |reply| reply.bulk(b"a\r\nb"),
        "$4\r\na\r\nb\r\n",
        "$4\r\na\r\nb\r\n",
    );
    check_reply(|reply| reply.bulk(b""), "$0\r\n\r\n", "$0\r\n\r\n");
    check_reply(|reply| reply.null(), "$-1\r\n", "_\r\n");
    check_reply(|reply| reply.null_array(), "*-1\r\n", "_\r\n");
    check_reply(|reply| reply.array(0), "*0\r\n", "*0\r\n");
    check_reply(
        |reply| {
            reply.map(2);
            reply.bulk(b"a");
            reply.integer(1);
            reply.bulk(b"b");
            reply.null();
        },
        "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n",
        "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n",
    );
    check_reply(|reply| reply.set(3), "*3\r\n", "~3\r\n");
    check_reply(|reply| reply.push(2), "*2\r\n", ">2\r\n");
    check_reply(|reply| reply.boolean(true), ":1\r\n", "#t\r\n");
    check_reply(|reply| reply.boolean(false), ":0\r\n", "#f\r\n");
    check_reply(
        |reply| reply.verbatim(b"txt", b"hi"),
        "$2\r\nhi\r\n",
        "=6\r\ntxt:hi\r\n",
    );
}

#[test]
fn doubles() {
    let cases: &[(f64, &str)] = &[
        (1.5, "1.5"),
        (3.0, "3"),
        (-0.1, "-0.1"),
        (0.0, "0"),
        (1e17, "1e17"),
        (12345678901234567.0, "12345678901234568"),
        (0.00001, "0.00001"),
        (1.5e-7, "1.5e-7"),
        (f64::MAX, "1.7976931348623157e308"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];
    for &(value, text) in cases {
        let bulk = format!("${}\r\n{text}\r\n", text.len());
        check_reply(|reply| reply.double(value), &bulk, &format!(",{text}\r\n"));
        if value.is_finite() {
            assert_eq!(text.parse::<f64>().unwrap(), value, "round trip");
        }
    }
}

#[test]
fn input_args_borrow_from_the_input_only_for_multibulk_requests() {
    let mut request = Request::new();
    let multibulk = b"*2\r\n$3\r\nGET\r\n$5\r\nalpha\r\n";
    assert!(matches!(
        parse(multibulk, &Limits::default(), &mut request),
        Ok(Parsed::Complete { .. })
    ));
    assert_eq!(request.input_arg(multibulk, 1), Some(&b"alpha"[..]));
    let inline = b"GET \"alpha\"\r\n";
    assert!(matches!(
        parse(inline, &Limits::default(), &mut request),
        Ok(Parsed::Complete { .. })
    ));
    assert_eq!(request.input_arg(inline, 1), None);
    assert_eq!(request.arg(inline, 1), b"alpha");
}
