//! The RESP request parser and reply encoder: a pipelined batch of GET / SET requests parsed
//! from one buffer, and typical replies encoded into a reused output buffer.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datapath::protocol::resp::{parse, Limits, Parsed, Reply, Request, Version};
use std::hint::black_box;

/// Requests per pipelined batch, as a client at P=16 sends them.
const PIPELINE_DEPTH: usize = 16;

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut reply = Reply::new(&mut out, Version::Resp2);
    reply.array(args.len());
    for arg in args {
        reply.bulk(arg);
    }
    out
}

/// Parses every request in `input`, returning how many arguments were seen.
fn parse_all(input: &[u8], limits: &Limits, request: &mut Request) -> usize {
    let mut position = 0;
    let mut args = 0;
    while let Ok(Parsed::Complete { consumed }) = parse(&input[position..], limits, request) {
        args += request.len();
        position += consumed;
    }
    args
}

fn parser(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("resp_parse");
    let limits = Limits::default();
    let value = vec![b'v'; 100];
    let batches = [
        ("get", multibulk(&[b"GET", b"key:000000012345"])),
        (
            "set_100b",
            multibulk(&[b"SET", b"key:000000012345", &value]),
        ),
        ("inline_get", b"GET key:000000012345\r\n".to_vec()),
    ];
    for (name, one) in batches {
        let input = one.repeat(PIPELINE_DEPTH);
        group.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
        let mut request = Request::new();
        group.bench_with_input(
            BenchmarkId::new(name, PIPELINE_DEPTH),
            &input,
            |bench, input| bench.iter(|| parse_all(black_box(input), &limits, &mut request)),
        );
    }
    group.finish();
}

fn encoder(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("resp_reply");
    let value = vec![b'v'; 100];
    let mut out = Vec::with_capacity(64 * 1024);
    group.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
    for version in [Version::Resp2, Version::Resp3] {
        group.bench_function(
            BenchmarkId::new("bulk_100b", format!("{version:?}")),
            |bench| {
                bench.iter(|| {
                    out.clear();
                    let mut reply = Reply::new(&mut out, version);
                    for _ in 0..PIPELINE_DEPTH {
                        reply.bulk(black_box(&value));
                    }
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("ok_integer_null", format!("{version:?}")),
            |bench| {
                bench.iter(|| {
                    out.clear();
                    let mut reply = Reply::new(&mut out, version);
                    for index in 0..PIPELINE_DEPTH as i64 {
                        match index % 3 {
                            0 => reply.simple(b"OK"),
                            1 => reply.integer(black_box(index * 1_000_003)),
                            _ => reply.null(),
                        }
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, parser, encoder);
criterion_main!(benches);
