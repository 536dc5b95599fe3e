//! Feeds arbitrary bytes to the RESP parser and checks its invariants: no panic; a complete
//! request lies within the input and parses the same with nothing after it; every prefix of the
//! input is incomplete or gives the same outcome; a request re-encoded as a multibulk of bulk
//! strings parses back to the same arguments.
#![no_main]

use datapath::protocol::resp::{parse, Limits, Parsed, Reply, Request, Version};
use libfuzzer_sys::fuzz_target;

/// Small limits reach the limit checks with short inputs.
const SMALL_LIMITS: Limits = Limits {
    bulk_bytes_max: 64,
    multibulk_elements_max: 8,
    inline_bytes_max: 128,
};

fn arguments(input: &[u8], request: &Request) -> Vec<Vec<u8>> {
    request.args(input).map(<[u8]>::to_vec).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        Limits::default()
    } else {
        SMALL_LIMITS
    };
    let mut request = Request::new();
    let outcome = parse(input, &limits, &mut request);
    let args = arguments(input, &request);

    // Prefixes: a few cut points (every one would make each run quadratic).
    let cuts = [
        input.len() / 2,
        input.len().saturating_sub(1),
        usize::from(selector) % (input.len() + 1),
    ];
    for cut in cuts {
        let mut prefix_request = Request::new();
        let prefix_outcome = parse(&input[..cut], &limits, &mut prefix_request);
        match (outcome, prefix_outcome) {
            (_, Ok(Parsed::Incomplete)) => {}
            (
                Ok(Parsed::Complete { consumed }),
                Ok(Parsed::Complete {
                    consumed: prefix_consumed,
                }),
            ) => {
                assert_eq!(
                    consumed, prefix_consumed,
                    "a prefix completed a different request"
                );
                assert_eq!(arguments(&input[..cut], &prefix_request), args);
            }
            (whole, prefix) => assert_eq!(whole, prefix, "a prefix changed the outcome at {cut}"),
        }
    }

    if let Ok(Parsed::Complete { consumed }) = outcome {
        assert!(consumed > 0 && consumed <= input.len());
        let mut alone = Request::new();
        assert_eq!(parse(&input[..consumed], &limits, &mut alone), outcome);
        assert_eq!(arguments(&input[..consumed], &alone), args);

        if !args.is_empty() {
            let mut encoded = Vec::new();
            let mut reply = Reply::new(&mut encoded, Version::Resp2);
            reply.array(args.len());
            for arg in &args {
                reply.bulk(arg);
            }
            let mut decoded = Request::new();
            assert_eq!(
                parse(&encoded, &Limits::default(), &mut decoded),
                Ok(Parsed::Complete {
                    consumed: encoded.len()
                })
            );
            assert_eq!(arguments(&encoded, &decoded), args);
        }
    }
});
