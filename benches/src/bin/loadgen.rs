//! `loadgen`: drives Ferrite, memcached or Redis with the same closed-loop load and prints one CSV
//! line (the columns of `../shared/bench/loadgen.rs`, so the peer scripts can run either):
//!
//! label,proto,op,pipeline,conns,threads,requests,wall_s,ops_per_s,avg_us,p50_us,p99_us,p999_us,
//! max_us,hits,misses,errors,client_cpu_pct,server_cpu_pct,machine_busy_pct
//!
//! CPU columns are % of one core over the run; `server_cpu_pct` needs `--server-pid`.
//! Exit status 1 when any request failed or (verify) any value came back wrong.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferrite_benches::load::cpu;
use ferrite_benches::load::run::{run, LoadConfig, Mode};
use ferrite_benches::load::transport::{server_address, TransportKind};
use ferrite_benches::load::wire::Protocol;
use ferrite_benches::load::workload::{KeyDistribution, ValueKind};

#[derive(Parser, Debug)]
#[command(about = "Closed-loop load generator for RESP, memcached text and meta (loopback only)")]
struct Arguments {
    /// redis, memcache (text get/set) or memcache-meta (mg/ms).
    #[arg(long, default_value = "redis")]
    proto: Protocol,
    /// Server host: loopback addresses only over TCP; over RDMA, the address of the server's
    /// RoCE port (in the soft-RoCE VMs the test harness makes).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// tcp, or rdma (RoCEv2 through RDMA CM; the server's --rdma-port).
    #[arg(long, default_value = "tcp")]
    transport: TransportKind,
    #[arg(long)]
    port: u16,
    /// set, get, mixed:READ_RATIO (e.g. mixed:0.9), cache (GETs, a miss followed by a SET of
    /// its key), load (sequential SETs), read (sequential GETs, each key once) or verify.
    #[arg(long, alias = "op", default_value = "get", value_parser = parse_mode)]
    mode: Mode,
    #[arg(long, default_value_t = 50)]
    conns: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests per batch each connection sends before waiting for all replies.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// First key number of load and verify.
    #[arg(long, default_value_t = 0)]
    key_start: u64,
    /// Keys are key:%0Nd.
    #[arg(long, default_value_t = 12)]
    key_digits: usize,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// fill ('x' bytes) or json (compressible records).
    #[arg(long, default_value = "fill")]
    value_kind: ValueKind,
    /// uniform or zipf:SKEW.
    #[arg(long, default_value = "uniform")]
    key_dist: KeyDistribution,
    #[arg(long, default_value_t = 30.0)]
    max_seconds: f64,
    /// Server process(es) whose CPU time is measured, comma-separated.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "")]
    label: String,
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    match text {
        "set" => Ok(Mode::Set),
        "get" => Ok(Mode::Get),
        "load" => Ok(Mode::Load),
        "read" => Ok(Mode::Read),
        "cache" => Ok(Mode::Cache),
        "verify" => Ok(Mode::Verify),
        _ => match text.strip_prefix("mixed:").map(str::parse::<f64>) {
            Some(Ok(read_ratio)) if (0.0..=1.0).contains(&read_ratio) => {
                Ok(Mode::Mixed { read_ratio })
            }
            _ => Err(format!(
                "mode '{text}': use set, get, mixed:RATIO (0..1), load or verify"
            )),
        },
    }
}

fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Set => "set".into(),
        Mode::Get => "get".into(),
        Mode::Cache => "cache".into(),
        Mode::Mixed { read_ratio } => format!("mixed{read_ratio}"),
        Mode::Load => "load".into(),
        Mode::Read => "read".into(),
        Mode::Verify => "verify".into(),
    }
}

fn server_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|&pid| cpu::process_seconds(pid))
        .sum()
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let address = match server_address(&arguments.host, arguments.port, arguments.transport) {
        Ok(address) => address,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    let config = LoadConfig {
        protocol: arguments.proto,
        address,
        transport: arguments.transport,
        mode: arguments.mode,
        connections: arguments.conns.max(1),
        threads: arguments.threads.max(1),
        pipeline: arguments.pipeline.max(1),
        requests: arguments.requests,
        keyspace: arguments.keyspace.max(1),
        key_start: arguments.key_start,
        key_digits: arguments.key_digits,
        value_size: arguments.value_size,
        value_kind: arguments.value_kind,
        keys: arguments.key_dist,
        max_duration: Duration::from_secs_f64(arguments.max_seconds),
        seed: arguments.seed,
    };
    let (own_before, server_before, machine_before) = (
        cpu::own_seconds(),
        server_seconds(&arguments.server_pid),
        cpu::machine_busy_seconds(),
    );
    let report = match run(&config) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("loadgen: {address}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let wall = report.wall.as_secs_f64();
    let percent = |seconds: f64| 100.0 * seconds / wall;
    let server = if arguments.server_pid.is_empty() {
        String::new()
    } else {
        // One decimal: at a few tens of percent, a whole percent would be a 2-5 % error in
        // the ops per server-CPU-second derived from it.
        format!(
            "{:.1}",
            percent(server_seconds(&arguments.server_pid) - server_before)
        )
    };
    let latency = &report.latency_ns;
    let micros = |nanos: u64| nanos as f64 / 1000.0;
    let replies = report.replies();
    println!(
        "{},{},{},{},{},{},{},{:.3},{:.0},{:.1},{:.1},{:.1},{:.1},{:.1},{},{},{},{:.0},{},{:.0}",
        arguments.label,
        config.protocol.name(),
        mode_name(config.mode),
        config.pipeline,
        config.connections,
        config.threads,
        replies,
        wall,
        replies as f64 / wall,
        latency.mean() / 1000.0,
        micros(latency.value_at_quantile(0.50)),
        micros(latency.value_at_quantile(0.99)),
        micros(latency.value_at_quantile(0.999)),
        micros(latency.max()),
        report.hits,
        report.misses,
        report.errors + report.io_errors,
        percent(cpu::own_seconds() - own_before),
        server,
        percent(cpu::machine_busy_seconds() - machine_before),
    );
    let expected = match config.mode {
        Mode::Verify => 2 * config.requests,
        _ => config.requests,
    };
    let finished_early = replies < expected && report.wall < config.max_duration;
    let verify_failed =
        config.mode == Mode::Verify && (report.wrong_values > 0 || report.misses > 0);
    if report.errors + report.io_errors > 0 || finished_early || verify_failed {
        eprintln!(
            "loadgen: errors={} io_errors={} wrong_values={} misses={} replies={replies}/{expected}",
            report.errors, report.io_errors, report.wrong_values, report.misses
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
