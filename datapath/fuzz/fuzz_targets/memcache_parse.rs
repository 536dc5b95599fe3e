//! Feeds arbitrary bytes to the memcached parser and checks its invariants: no panic; what a
//! request or an error takes lies within the input (a refused data block is swallowed only past
//! it); every prefix of the input is incomplete or gives the same outcome; a complete request
//! parses the same with nothing after it; encoding replies for it does not panic.
#![no_main]

use datapath::protocol::memcache::{parse, reply, Command, Limits, Parsed};
use libfuzzer_sys::fuzz_target;

/// Small limits reach the limit checks with short inputs.
const SMALL_LIMITS: Limits = Limits {
    value_bytes_max: 64,
    line_bytes_max: 96,
    retrieval_line_bytes_max: 256,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        Limits::default()
    } else {
        SMALL_LIMITS
    };
    let outcome = parse(input, &limits);
    match outcome {
        Ok(Parsed::Complete { consumed, .. }) => assert!(consumed > 0 && consumed <= input.len()),
        Ok(Parsed::Incomplete) => {}
        Err(error) => {
            assert!(error.consumed <= input.len());
            assert!(error.swallow == 0 || !error.kind.closes_connection());
            // An error that closes the connection is always answered.
            assert!(!error.noreply || !error.kind.closes_connection());
        }
    }

    // Prefixes: a few cut points (every one would make each run quadratic).
    let cuts = [
        input.len() / 2,
        input.len().saturating_sub(1),
        usize::from(selector) % (input.len() + 1),
    ];
    for cut in cuts {
        let prefix_outcome = parse(&input[..cut], &limits);
        assert!(
            prefix_outcome == Ok(Parsed::Incomplete) || prefix_outcome == outcome,
            "prefix of {cut} bytes gave {prefix_outcome:?}, the whole {outcome:?}"
        );
    }

    if let Ok(Parsed::Complete { command, consumed }) = &outcome {
        assert_eq!(parse(&input[..*consumed], &limits), outcome);
        let mut out = Vec::new();
        match command {
            Command::Get { keys, .. } | Command::GetAndTouch { keys, .. } => {
                assert_eq!(keys.iter().count(), keys.count());
                for key in keys.iter() {
                    reply::value(&mut out, key, 0, b"v", Some(1));
                }
            }
            Command::Meta {
                kind,
                key,
                flags,
                data,
            } => {
                // The selector's bits pick the item state the reply reports (h, l, W, X, Z).
                let item = reply::ItemInfo {
                    hit_before: selector & 2 != 0,
                    won: selector & 4 != 0,
                    stale: selector & 8 != 0,
                    win_sent: selector & 16 != 0,
                    last_access_seconds: u64::from(selector) * 60,
                    ttl_seconds: i64::from(selector) - 1,
                    ..reply::ItemInfo::default()
                };
                reply::meta(
                    &mut out,
                    *kind,
                    key,
                    flags,
                    reply::MetaStatus::Value,
                    Some(&item),
                    data,
                );
                reply::meta(
                    &mut out,
                    *kind,
                    key,
                    flags,
                    reply::MetaStatus::Miss,
                    None,
                    b"",
                );
            }
            _ => {}
        }
    }
});
