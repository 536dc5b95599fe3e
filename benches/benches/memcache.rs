//! The memcached text and meta parsers and reply encoders: pipelined batches of get / set and
//! mg / ms requests parsed from one buffer, and their replies encoded into a reused buffer.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datapath::protocol::memcache::{parse, reply, Command, Limits, Parsed};
use std::hint::black_box;

/// Requests per pipelined batch, as a client at P=16 sends them.
const PIPELINE_DEPTH: usize = 16;

/// Parses every request in `input`, returning how many were complete.
fn parse_all(input: &[u8], limits: &Limits) -> usize {
    let mut position = 0;
    let mut requests = 0;
    while let Ok(Parsed::Complete { consumed, .. }) = parse(&input[position..], limits) {
        requests += 1;
        position += consumed;
    }
    requests
}

fn parser(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("memcache_parse");
    let limits = Limits::default();
    let value = "v".repeat(100);
    let batches = [
        ("text_get", "get key:000000012345\r\n".to_string()),
        (
            "text_set_100b",
            format!("set key:000000012345 0 0 100\r\n{value}\r\n"),
        ),
        ("meta_mg", "mg key:000000012345 v f t\r\n".to_string()),
        (
            "meta_ms_100b",
            format!("ms key:000000012345 100 T0 F0\r\n{value}\r\n"),
        ),
    ];
    for (name, one) in batches {
        let input = one.repeat(PIPELINE_DEPTH);
        group.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
        group.bench_with_input(
            BenchmarkId::new(name, PIPELINE_DEPTH),
            input.as_bytes(),
            |bench, input| bench.iter(|| parse_all(black_box(input), &limits)),
        );
    }
    let multiget = format!(
        "get {}\r\n",
        (0..100)
            .map(|index| format!("key:{index:012}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    group.throughput(Throughput::Elements(100));
    group.bench_function("text_multiget_100_keys", |bench| {
        bench.iter(|| match parse(black_box(multiget.as_bytes()), &limits) {
            Ok(Parsed::Complete {
                command: Command::Get { keys, .. },
                ..
            }) => keys.iter().count(),
            _ => unreachable!("the multiget parses"),
        })
    });
    group.finish();
}

fn encoder(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("memcache_reply");
    let value = vec![b'v'; 100];
    let mut out = Vec::with_capacity(64 * 1024);
    group.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
    group.bench_function("text_value_100b", |bench| {
        bench.iter(|| {
            out.clear();
            for _ in 0..PIPELINE_DEPTH {
                reply::value(
                    &mut out,
                    black_box(b"key:000000012345"),
                    0,
                    black_box(&value),
                    None,
                );
                reply::status(&mut out, reply::Status::End);
            }
        })
    });
    let request = b"mg key:000000012345 v f t\r\n";
    let Ok(Parsed::Complete {
        command: Command::Meta {
            kind, key, flags, ..
        },
        ..
    }) = parse(request, &Limits::default())
    else {
        unreachable!("the request parses")
    };
    let item = reply::ItemInfo {
        client_flags: 0,
        ttl_seconds: -1,
        size: value.len(),
        ..Default::default()
    };
    group.bench_function("meta_va_100b", |bench| {
        bench.iter(|| {
            out.clear();
            for _ in 0..PIPELINE_DEPTH {
                reply::meta(
                    &mut out,
                    kind,
                    &key,
                    &flags,
                    reply::MetaStatus::Value,
                    Some(&item),
                    black_box(&value),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parser, encoder);
criterion_main!(benches);
