//! Configuration: command-line flags (clap), an optional TOML file, and defaults that need neither.
//!
//! Precedence: a flag beats the file, the file beats the default. `ferrite` with no arguments
//! serves RESP on 127.0.0.1:6379 from DRAM with [`MEMORY_BYTES_DEFAULT`].

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::access::Secret;
use crate::tunables::{Tunables, IDLE_TIMEOUT_SECS_DEFAULT, STALL_TIMEOUT_SECS_DEFAULT};
use thiserror::Error;

/// The RESP port when none is given (Redis' own).
pub const RESP_PORT_DEFAULT: u16 = 6379;
/// The memcached port when none is given (memcached's own).
pub const MEMCACHE_PORT_DEFAULT: u16 = 11211;
/// Memory for items when none is given: 1 GiB, split evenly between shards.
pub const MEMORY_BYTES_DEFAULT: u64 = 1 << 30;
/// The smallest memory limit accepted: below this a shard's store has no room for a segment.
pub const MEMORY_BYTES_MIN: u64 = 8 << 20;
/// Open client connections per process, all shards together, when none is given.
pub const CLIENTS_MAX_DEFAULT: usize = 10_000;
/// How long an RDMA link is busy-polled after its last completion when none is given.
pub const RDMA_BUSY_POLL_DEFAULT: Duration = crate::io::rdma::BUSY_POLL_DEFAULT;
/// The longest busy-poll window accepted: beyond a few milliseconds a shard would spin for an
/// idle client as long as a sleep-and-wake costs many times over.
pub const RDMA_BUSY_POLL_MAX: Duration = Duration::from_millis(10);
/// The least raw/compressed ratio for which a cold value is kept compressed, when none is given.
pub const COMPRESS_RATIO_DEFAULT: f64 = 1.25;
/// `--compress-ratio` is refused above this (no LZ4 block of a cache value reaches it anyway).
pub const COMPRESS_RATIO_MAX: f64 = 100.0;

/// Which event loop drives the sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IoChoice {
    /// io_uring when the kernel offers what the loop needs, else epoll (the log says why).
    Auto,
    /// io_uring or refuse to start.
    Uring,
    /// epoll, the one-syscall-per-event loop.
    Epoll,
}

/// On or off (`--observability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Which engine computes CRC-64 and LZ4 for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OffloadChoice {
    /// crc64fast + lz4_flex on the CPU.
    Software,
    /// The Verilog RTL simulated by Verilator (needs the `verilator` cargo feature).
    Verilator,
}

/// Which live items a tiered store moves from DRAM to its cold tier when it reclaims a DRAM
/// segment (the others are dropped, as eviction would).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AdmissionChoice {
    /// Items read at least once while in DRAM, or demoted unread twice (a recent rejection is
    /// remembered): one-hit wonders never cost a cold write.
    Reused,
    /// Every live item.
    All,
}

/// Where items live, from `--memory`, `--data-file` and `--data-size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiering {
    /// `--memory` of DRAM; nothing survives a restart.
    Dram,
    /// `--data-file` of `--memory` bytes: every segment in the mapped file.
    File,
    /// `--memory` of DRAM (hot) over `--data-file` of `--data-size` bytes (cold).
    Tiered,
}

impl Tiering {
    pub fn name(self) -> &'static str {
        match self {
            Tiering::Dram => "dram",
            Tiering::File => "file",
            Tiering::Tiered => "tiered",
        }
    }
}

/// When writes to the file tier reach the disk. A process crash loses nothing in any mode (the
/// page cache outlives the process); they differ on power loss or a kernel crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncChoice {
    /// Leave write-back to the kernel: a power loss loses what it had not written yet.
    No,
    /// fdatasync every file once a second from a background thread, so shards never wait for
    /// the disk: a power loss loses about the last second.
    Everysec,
    /// msync before a write is acknowledged: a power loss loses nothing acknowledged (slow).
    Always,
}

impl SyncChoice {
    /// The name the flag takes (and CONFIG GET appendfsync shows).
    pub fn name(self) -> &'static str {
        match self {
            SyncChoice::No => "no",
            SyncChoice::Everysec => "everysec",
            SyncChoice::Always => "always",
        }
    }
}

/// The command line. Every field is optional so that a config file can supply it.
#[derive(Debug, Default, Parser)]
#[command(
    name = "ferrite",
    version,
    about = "A Redis- and memcached-compatible cache server, thread-per-core on io_uring",
    // A config file's settings are placed before the command line's, and the later one wins.
    args_override_self = true
)]
pub struct Flags {
    /// Address to listen on (default 127.0.0.1).
    #[arg(long, value_name = "ADDRESS")]
    pub bind: Option<IpAddr>,
    /// RESP (Redis protocol) port; 0 turns RESP off (default 6379).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// memcached protocol port; 0 turns it off (default 11211).
    #[arg(long, value_name = "PORT")]
    pub memcache_port: Option<u16>,
    /// RoCEv2 port (RDMA connection manager) on the RDMA device's IPv4 address; each client says
    /// whether it speaks RESP or memcached when it connects. 0 turns it off (default 0).
    #[arg(long, value_name = "PORT")]
    pub rdma_port: Option<u16>,
    /// RDMA device to serve on (e.g. rxe0, mlx5_0) (default: the first with an active port).
    #[arg(long, value_name = "NAME")]
    pub rdma_device: Option<String>,
    /// Microseconds an RDMA link that had completions is polled again before its shard arms the
    /// completion fd and may sleep; 0 turns busy polling off (default 0, at most 10000).
    #[arg(long, value_name = "MICROSECONDS")]
    pub rdma_busy_poll_us: Option<u64>,
    /// Number of shard threads, one per core, cores taken NUMA node by node (default: every
    /// core this process may use).
    #[arg(long, value_name = "N", conflicts_with = "cores")]
    pub threads: Option<usize>,
    /// Exact CPUs to run shards on, comma-separated (e.g. 0,2,4); one shard per CPU.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Memory for items, all shards together: bytes or with a unit (512MiB, 4GiB, 1G) (default 1GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// Keep items in this memory-mapped file (one file per shard: PATH.0, PATH.1, ...) so they
    /// survive restarts; without it items live in DRAM only.
    #[arg(long, value_name = "PATH")]
    pub data_file: Option<PathBuf>,
    /// With --data-file: size of the file tier, all shards together, and --memory becomes a DRAM
    /// tier in front of it (the hot items; the others are demoted to the file, LZ4-compressed
    /// when that pays). Without it the file holds every item in --memory bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, requires = "data_file")]
    pub data_size: Option<u64>,
    /// Tiered store: which items leave DRAM for the file (default reused: read in DRAM,
    /// or demoted unread a second time).
    #[arg(long, value_enum, value_name = "RULE")]
    pub cold_admission: Option<AdmissionChoice>,
    /// Tiered store: keep a cold value LZ4-compressed only if raw/compressed reaches this
    /// ratio (default 1.25).
    #[arg(long, value_name = "RATIO")]
    pub compress_ratio: Option<f64>,
    /// When file-tier writes reach the disk: no, everysec (default) or always.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub sync: Option<SyncChoice>,
    /// Event loop: io_uring, epoll, or auto (io_uring when the kernel offers it).
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub io: Option<IoChoice>,
    /// Engine for CRC-64 and LZ4: software, or the Verilated RTL.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub offload: Option<OffloadChoice>,
    /// Most client connections open at once, all shards together (default 10000).
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,
    /// Password clients must give before any other command: RESP `AUTH`, memcached's
    /// authentication `set` (default: none; binding beyond loopback without one logs a warning).
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,
    /// Close a client idle (no input, no replies owed) for this many seconds; 0 never (default 0).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Close a client that holds a partial request, or leaves its replies unread, for this many
    /// seconds without progress; 0 never (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub stall_timeout: Option<u64>,
    /// TOML file with any of these settings (same names, dashes or underscores, e.g.
    /// `memory = "4GiB"`, `cores = [0, 2]`); flags on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive (default info).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Prometheus endpoint: http://127.0.0.1:PORT/metrics; 0 turns it off (default 9778).
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Latency histograms, slow log, hot keys and anomaly signals (counters are always kept).
    #[arg(long, value_enum, value_name = "ON|OFF")]
    pub observability: Option<Switch>,
    /// SLOWLOG: log commands that took at least this many microseconds; 0 logs every command,
    /// a negative value none (default 10000).
    #[arg(long, value_name = "MICROSECONDS", allow_negative_numbers = true)]
    pub slowlog_log_slower_than: Option<i64>,
    /// SLOWLOG: entries kept per shard (default 128, at most 10000).
    #[arg(long, value_name = "N")]
    pub slowlog_max_len: Option<usize>,
}

/// How many shards, or exactly which CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardPlacement {
    /// Every CPU this process may use.
    AllCpus,
    Threads(usize),
    Cpus(Vec<usize>),
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub bind: IpAddr,
    /// None when RESP is off.
    pub resp_port: Option<u16>,
    /// None when the memcached protocol is off.
    pub memcache_port: Option<u16>,
    /// None when the RDMA transport is off.
    pub rdma_port: Option<u16>,
    pub rdma_device: Option<String>,
    /// How long an RDMA link is busy-polled after its last completion (zero: never).
    pub rdma_busy_poll: Duration,
    pub placement: ShardPlacement,
    pub memory_bytes: u64,
    pub data_file: Option<PathBuf>,
    /// The file tier's size when tiered (`--data-size`).
    pub data_size_bytes: Option<u64>,
    pub cold_admission: AdmissionChoice,
    /// `--compress-ratio` in percent (1.25 → 125).
    pub compress_ratio_min_percent: u32,
    pub sync: SyncChoice,
    pub io: IoChoice,
    pub offload: OffloadChoice,
    pub clients_max: usize,
    /// The settings CONFIG SET may change later.
    pub tunables: Tunables,
    pub log_level: String,
    /// None when the Prometheus endpoint is off.
    pub metrics_port: Option<u16>,
    pub observe: crate::observe::Settings,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("memory: {0}")]
    Memory(String),
    #[error("data-size: {0}")]
    DataSize(String),
    #[error("compress-ratio: {0}")]
    CompressRatio(String),
    #[error("threads and cores are both set; give one")]
    ThreadsAndCores,
    #[error("threads must be at least 1")]
    NoThreads,
    #[error("max-clients must be at least 1")]
    NoClients,
    #[error("both ports are 0: nothing to serve")]
    NothingToServe,
    #[error("rdma-busy-poll-us: {0} µs is above the maximum of {max} µs", max = RDMA_BUSY_POLL_MAX.as_micros())]
    BusyPollTooLong(u64),
    #[error("slowlog-max-len {0} is above the limit of {limit}", limit = crate::observe::slowlog::LEN_MAX_LIMIT)]
    SlowlogTooLong(usize),
}

impl Config {
    pub fn tiering(&self) -> Tiering {
        match (&self.data_file, self.data_size_bytes) {
            (None, _) => Tiering::Dram,
            (Some(_), None) => Tiering::File,
            (Some(_), Some(_)) => Tiering::Tiered,
        }
    }

    /// Resolves the settings (command line over config file, see [`Flags::over_config_file`])
    /// over the defaults.
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let memory_bytes = flags.memory.unwrap_or(MEMORY_BYTES_DEFAULT);
        if memory_bytes < MEMORY_BYTES_MIN {
            return Err(ConfigError::Memory(format!(
                "{memory_bytes} bytes is below the minimum of {MEMORY_BYTES_MIN} bytes"
            )));
        }
        let placement = match (flags.threads, flags.cores) {
            (Some(_), Some(_)) => return Err(ConfigError::ThreadsAndCores),
            (Some(0), None) => return Err(ConfigError::NoThreads),
            (Some(threads), None) => ShardPlacement::Threads(threads),
            (None, Some(cores)) if cores.is_empty() => return Err(ConfigError::NoThreads),
            (None, Some(cores)) => ShardPlacement::Cpus(cores),
            (None, None) => ShardPlacement::AllCpus,
        };
        let port_or_off = |port: u16| (port != 0).then_some(port);
        let resp_port = port_or_off(flags.port.unwrap_or(RESP_PORT_DEFAULT));
        let memcache_port = port_or_off(flags.memcache_port.unwrap_or(MEMCACHE_PORT_DEFAULT));
        if resp_port.is_none() && memcache_port.is_none() {
            return Err(ConfigError::NothingToServe);
        }
        let rdma_busy_poll = flags
            .rdma_busy_poll_us
            .map_or(RDMA_BUSY_POLL_DEFAULT, Duration::from_micros);
        if rdma_busy_poll > RDMA_BUSY_POLL_MAX {
            return Err(ConfigError::BusyPollTooLong(
                rdma_busy_poll.as_micros() as u64
            ));
        }
        let clients_max = flags.max_clients.unwrap_or(CLIENTS_MAX_DEFAULT);
        if clients_max == 0 {
            return Err(ConfigError::NoClients);
        }
        if let Some(data_size) = flags.data_size.filter(|&bytes| bytes < MEMORY_BYTES_MIN) {
            return Err(ConfigError::DataSize(format!(
                "{data_size} bytes is below the minimum of {MEMORY_BYTES_MIN} bytes"
            )));
        }
        let compress_ratio = flags.compress_ratio.unwrap_or(COMPRESS_RATIO_DEFAULT);
        if !(1.0..=COMPRESS_RATIO_MAX).contains(&compress_ratio) {
            return Err(ConfigError::CompressRatio(format!(
                "{compress_ratio} is not between 1 and {COMPRESS_RATIO_MAX}"
            )));
        }
        let slowlog_len_max = flags
            .slowlog_max_len
            .unwrap_or(crate::observe::slowlog::LEN_MAX_DEFAULT);
        if slowlog_len_max > crate::observe::slowlog::LEN_MAX_LIMIT {
            return Err(ConfigError::SlowlogTooLong(slowlog_len_max));
        }
        let observe = crate::observe::Settings {
            enabled: flags.observability != Some(Switch::Off),
            slowlog_slower_than_us: flags
                .slowlog_log_slower_than
                .unwrap_or(crate::observe::slowlog::SLOWER_THAN_US_DEFAULT),
            slowlog_len_max,
        };
        let metrics_port = port_or_off(
            flags
                .metrics_port
                .unwrap_or(crate::observe::exporter::METRICS_PORT_DEFAULT),
        );
        Ok(Config {
            metrics_port,
            observe,
            bind: flags.bind.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            resp_port,
            memcache_port,
            rdma_port: flags.rdma_port.and_then(port_or_off),
            rdma_device: flags.rdma_device,
            rdma_busy_poll,
            placement,
            memory_bytes,
            data_file: flags.data_file,
            data_size_bytes: flags.data_size,
            cold_admission: flags.cold_admission.unwrap_or(AdmissionChoice::Reused),
            compress_ratio_min_percent: (compress_ratio * 100.0).round() as u32,
            sync: flags.sync.unwrap_or(SyncChoice::Everysec),
            io: flags.io.unwrap_or(IoChoice::Auto),
            offload: flags.offload.unwrap_or(OffloadChoice::Software),
            clients_max,
            tunables: Tunables {
                requirepass: flags
                    .requirepass
                    .filter(|password| !password.is_empty())
                    .map(|password| Secret::new(password.as_bytes())),
                idle_timeout_secs: flags.timeout.unwrap_or(IDLE_TIMEOUT_SECS_DEFAULT),
                stall_timeout_secs: flags.stall_timeout.unwrap_or(STALL_TIMEOUT_SECS_DEFAULT),
            },
            log_level: flags.log_level.unwrap_or_else(|| "info".to_owned()),
        })
    }
}

impl Flags {
    /// These settings, parsed from `command_line` (program name first), over those of the
    /// config file they name, if any. The file's settings are turned into flags placed before the command
    /// line's, so clap checks both alike and a flag given on the command line wins. `threads`
    /// and `cores` override as a pair: either on the command line drops both from the file.
    pub fn over_config_file(self, command_line: &[OsString]) -> Result<Flags, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let placement_given = self.threads.is_some() || self.cores.is_some();
        let from_file = file_arguments(&path, placement_given)?;
        let (program, rest) = command_line.split_at(1.min(command_line.len()));
        let arguments = program.iter().chain(&from_file).chain(rest);
        Flags::try_parse_from(arguments).map_err(|error| ConfigError::ParseFile {
            path,
            message: first_line(&error.to_string()),
        })
    }
}

/// The TOML file's settings as `--name value` arguments.
fn file_arguments(path: &Path, placement_given: bool) -> Result<Vec<OsString>, ConfigError> {
    let parse_error = |message: String| ConfigError::ParseFile {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|error| parse_error(error.to_string()))?;
    let mut arguments = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        if name == "config" {
            return Err(parse_error("a config file cannot name another".to_owned()));
        }
        if placement_given && (name == "threads" || name == "cores") {
            continue;
        }
        let text = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(scalar_text)
                .collect::<Option<Vec<_>>>()
                .map(|items| items.join(",")),
            scalar => scalar_text(&scalar),
        }
        .ok_or_else(|| parse_error(format!("{key}: expected a number, string, boolean or list")))?;
        arguments.push(OsString::from(format!("--{name}")));
        arguments.push(OsString::from(text));
    }
    Ok(arguments)
}

fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Float(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// clap's messages end with usage lines; a config file error needs only the first, without
/// clap's `error: ` prefix (its `--name` is the file's `name`).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Parses `1234`, `512MiB`, `4GiB`, `64kb`, `1G` (units are powers of 1024, case-insensitive,
/// with or without `i`/`b`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 512MiB, 4GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(arguments: &[&str]) -> Result<Config, ConfigError> {
        let command_line: Vec<OsString> = std::iter::once("ferrite")
            .chain(arguments.iter().copied())
            .map(OsString::from)
            .collect();
        let flags =
            Flags::try_parse_from(&command_line).map_err(|error| ConfigError::ParseFile {
                path: PathBuf::new(),
                message: error.to_string(),
            })?;
        Config::resolve(flags.over_config_file(&command_line)?)
    }

    #[test]
    fn no_arguments_serve_resp_on_loopback_from_dram() {
        let config = resolve(&[]).unwrap();
        assert_eq!(config.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(config.resp_port, Some(6379));
        assert_eq!(config.memcache_port, Some(11211));
        assert_eq!(config.memory_bytes, MEMORY_BYTES_DEFAULT);
        assert_eq!(config.data_file, None);
        assert_eq!(config.tiering(), Tiering::Dram);
        assert_eq!(config.compress_ratio_min_percent, 125);
        assert_eq!(config.io, IoChoice::Auto);
        assert_eq!(config.placement, ShardPlacement::AllCpus);
        assert_eq!(
            config.metrics_port,
            Some(crate::observe::exporter::METRICS_PORT_DEFAULT)
        );
        assert_eq!(config.observe, crate::observe::Settings::default());
    }

    #[test]
    fn observability_flags() {
        let config = resolve(&[
            "--metrics-port",
            "0",
            "--observability",
            "off",
            "--slowlog-log-slower-than",
            "-1",
            "--slowlog-max-len",
            "7",
        ])
        .unwrap();
        assert_eq!(config.metrics_port, None);
        assert_eq!(
            config.observe,
            crate::observe::Settings {
                enabled: false,
                slowlog_slower_than_us: -1,
                slowlog_len_max: 7,
            }
        );
        assert!(matches!(
            resolve(&["--slowlog-max-len", "10001"]),
            Err(ConfigError::SlowlogTooLong(10_001))
        ));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }

    #[test]
    fn flags_are_parsed_with_their_fixed_names() {
        let config = resolve(&[
            "--bind",
            "127.0.0.2",
            "--port",
            "7000",
            "--memcache-port",
            "0",
            "--threads",
            "2",
            "--memory",
            "64MiB",
            "--data-file",
            "x.dat",
            "--io",
            "epoll",
            "--offload",
            "software",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(config.bind, IpAddr::from([127, 0, 0, 2]));
        assert_eq!(config.resp_port, Some(7000));
        assert_eq!(config.memcache_port, None);
        assert_eq!(config.placement, ShardPlacement::Threads(2));
        assert_eq!(config.memory_bytes, 64 << 20);
        assert_eq!(config.data_file, Some(PathBuf::from("x.dat")));
        assert_eq!(config.io, IoChoice::Epoll);
        assert_eq!(config.log_level, "debug");
        assert_eq!(
            resolve(&["--cores", "0,1"]).unwrap().placement,
            ShardPlacement::Cpus(vec![0, 1])
        );
    }

    #[test]
    fn contradictions_and_nonsense_are_refused() {
        assert!(resolve(&["--threads", "2", "--cores", "1"]).is_err());
        assert!(matches!(
            resolve(&["--threads", "0"]),
            Err(ConfigError::NoThreads)
        ));
        assert!(matches!(
            resolve(&["--memory", "1MiB"]),
            Err(ConfigError::Memory(_))
        ));
        assert!(matches!(
            resolve(&["--port", "0", "--memcache-port", "0"]),
            Err(ConfigError::NothingToServe)
        ));
        assert!(resolve(&["--io", "kqueue"]).is_err());
        assert!(matches!(
            resolve(&["--rdma-busy-poll-us", "10001"]),
            Err(ConfigError::BusyPollTooLong(10001))
        ));
        assert!(
            resolve(&["--data-size", "1GiB"]).is_err(),
            "a file tier needs a file"
        );
        assert!(matches!(
            resolve(&["--data-file", "x", "--data-size", "1MiB"]),
            Err(ConfigError::DataSize(_))
        ));
        assert!(matches!(
            resolve(&["--compress-ratio", "0.5"]),
            Err(ConfigError::CompressRatio(_))
        ));
    }

    #[test]
    fn rdma_busy_polling_is_off_unless_asked_for() {
        assert_eq!(resolve(&[]).unwrap().rdma_busy_poll, Duration::ZERO);
        let on = resolve(&["--rdma-busy-poll-us", "50"]).unwrap();
        assert_eq!(on.rdma_busy_poll, Duration::from_micros(50));
        let longest = resolve(&["--rdma-busy-poll-us", "10000"]).unwrap();
        assert_eq!(longest.rdma_busy_poll, RDMA_BUSY_POLL_MAX);
    }

    #[test]
    fn a_data_size_makes_the_file_a_tier_behind_dram() {
        let file_only = resolve(&["--data-file", "x.dat"]).unwrap();
        assert_eq!(file_only.tiering(), Tiering::File);
        let tiered = resolve(&[
            "--memory",
            "256MiB",
            "--data-file",
            "x.dat",
            "--data-size",
            "2GiB",
            "--cold-admission",
            "all",
            "--compress-ratio",
            "1.5",
        ])
        .unwrap();
        assert_eq!(tiered.tiering(), Tiering::Tiered);
        assert_eq!(
            (tiered.memory_bytes, tiered.data_size_bytes),
            (256 << 20, Some(2 << 30))
        );
        assert_eq!(tiered.cold_admission, AdmissionChoice::All);
        assert_eq!(tiered.compress_ratio_min_percent, 150);
    }

    #[test]
    fn the_file_fills_in_and_flags_win() {
        let path =
            std::env::temp_dir().join(format!("ferrite-config-test-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "port = 7001\nmemory = \"32MiB\"\ncores = [0]\nio = \"epoll\"\nmax_clients = 5\n",
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let config = resolve(&["--config", path_text, "--port", "7002"]).unwrap();
        assert_eq!(config.resp_port, Some(7002));
        assert_eq!(config.memory_bytes, 32 << 20);
        assert_eq!(config.placement, ShardPlacement::Cpus(vec![0]));
        assert_eq!(config.io, IoChoice::Epoll);
        assert_eq!(config.clients_max, 5);
        // threads on the command line replaces the file's cores rather than conflicting.
        let config = resolve(&["--config", path_text, "--threads", "2"]).unwrap();
        assert_eq!(config.placement, ShardPlacement::Threads(2));
        std::fs::write(&path, "memory = 16777216\ncores = [0, 1]\n").unwrap();
        let config = resolve(&["--config", path_text]).unwrap();
        assert_eq!(config.memory_bytes, 16 << 20);
        assert_eq!(config.placement, ShardPlacement::Cpus(vec![0, 1]));
        std::fs::write(&path, "port = \"many\"\n").unwrap();
        assert!(matches!(
            resolve(&["--config", path_text]),
            Err(ConfigError::ParseFile { .. })
        ));
        std::fs::write(&path, "prot = 7001\n").unwrap();
        let error = resolve(&["--config", path_text]).unwrap_err();
        assert!(error.to_string().contains("prot"), "{error}");
        std::fs::remove_file(&path).unwrap();
    }
}
