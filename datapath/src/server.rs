//! Start-up and shutdown: what the machine offers and what was chosen (logged), one pinned shard
//! thread per chosen core, and SIGINT/SIGTERM handled by the main thread.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use platform::kernel::{probe_io_uring, IoUringSupport};
use platform::topology::{pin_current_thread, ChosenCpu, Topology};
use thiserror::Error;

use crate::config::{Config, IoChoice, ShardPlacement, SyncChoice};
use crate::exec::{Executor, StoreSettings};
use crate::io::listener::{self, Listener};
use crate::io::rdma::RdmaPort;
use crate::mailbox::{Address, Mailbox};
use crate::shard::conn::Protocol;
use crate::shard::{now_ms, Mail, Shard, Shared};
use crate::syncer::Syncer;
use persistent::SyncHandle;

/// How often the main thread, waiting for a signal, checks that every shard thread still runs.
const SIGNAL_WAIT: Duration = Duration::from_millis(200);

/// The event loop a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Uring,
    Epoll,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cores: {0}")]
    Cores(#[from] platform::topology::TopologyError),
    #[error("--io uring was asked for but io_uring is unusable here: {0}")]
    UringUnavailable(String),
    #[error("{0}")]
    Offload(String),
    #[error("shard {shard}: cannot listen on {address}: {source}")]
    Listen {
        shard: usize,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("shard {shard}: {message}")]
    Shard { shard: usize, message: String },
    #[error("data files: {0}")]
    DataFiles(String),
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    #[error("RDMA transport: {0}")]
    Rdma(String),
}

/// Runs the server until SIGINT or SIGTERM, then stops cleanly (exit 0) or reports why not.
pub fn run(config: Config) -> Result<(), ServerError> {
    let topology = Topology::probe();
    log_topology(&topology);
    let cpus = match &config.placement {
        ShardPlacement::AllCpus => topology.choose_threads(topology.cpu_count())?,
        ShardPlacement::Threads(threads) => topology.choose_threads(*threads)?,
        ShardPlacement::Cpus(cpus) => topology.choose_cpus(cpus)?,
    };
    if cpus.len() > topology.cpu_count() {
        tracing::warn!(
            shards = cpus.len(),
            cpus = topology.cpu_count(),
            "more shards than CPUs: shards share CPUs (expect less throughput per shard)"
        );
    }
    let backend = choose_backend(config.io)?;
    // Starting one engine here turns a missing or broken offload into one clear start-up error.
    let offload_name = StoreSettings::for_shards(&config, 1)
        .offload_engine()
        .map_err(ServerError::Offload)?
        .name();
    let shard_count = cpus.len();
    let store_settings = StoreSettings::for_shards(&config, shard_count);
    tracing::info!(
        shards = shard_count,
        cpus = ?cpus.iter().map(|chosen| chosen.cpu).collect::<Vec<_>>(),
        memory_per_shard_bytes = store_settings.memory_bytes,
        arena = %store_settings.describe(),
        offload = offload_name,
        "shards chosen"
    );
    match crate::rehome::prepare(&store_settings, shard_count, now_ms())
        .map_err(ServerError::DataFiles)?
    {
        crate::rehome::Preparation::Ready => {}
        crate::rehome::Preparation::Rehomed { old_shards, items } => {
            tracing::info!(
                items,
                from = old_shards,
                to = shard_count,
                "data files re-homed to the new shard count"
            )
        }
    }

    warn_if_exposed(&config);
    let (rdma, rdma_info) = rdma_ports(&config, shard_count)?;
    let mut rdma = rdma.into_iter();
    let signals = block_stop_signals().map_err(ServerError::Signals)?;
    let (mailboxes, addresses): (Vec<Mailbox<Mail>>, Vec<Address<Mail>>) = (0..shard_count)
        .map(|_| Mailbox::new())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ServerError::Shard {
            shard: 0,
            message: format!("mailbox: {error}"),
        })?
        .into_iter()
        .unzip();
    let server_info = format!(
        "io_backend:{}\r\noffload:{offload_name}\r\ntiering:{}\r\narena:{}\r\ntcp_port:{}\r\nmemcache_port:{}\r\nbind:{}\r\nrdma:{rdma_info}\r\n",
        backend.name(),
        store_settings.tiering().name(),
        store_settings.describe(),
        config.resp_port.unwrap_or(0),
        config.memcache_port.unwrap_or(0),
        config.bind,
    );
    let shared = Arc::new(Shared {
        shard_count,
        clients_max: AtomicUsize::new(config.clients_max),
        clients: AtomicUsize::new(0),
        next_client_id: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        drained: AtomicUsize::new(0),
        started_ms: now_ms(),
        server_info,
        settings: settings(&config, shard_count, backend),
        ring_fds: (0..shard_count)
            .map(|_| std::sync::atomic::AtomicI32::new(-1))
            .collect(),
        addresses,
    });

    let (ready_sender, ready_receiver) = mpsc::channel::<Result<Option<SyncHandle>, ServerError>>();
    let mut threads: Vec<JoinHandle<Result<(), ServerError>>> = Vec::with_capacity(shard_count);
    for (id, (mailbox, cpu)) in mailboxes.into_iter().zip(cpus.iter().copied()).enumerate() {
        let shard_shared = Arc::clone(&shared);
        let config = config.clone();
        let store_settings = store_settings.clone();
        let ready = ready_sender.clone();
        // Shard 0's port listens and hands links to the others (see io::rdma).
        let shard_rdma = rdma.next();
        let spawned = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                shard_main(
                    id,
                    cpu,
                    backend,
                    &config,
                    store_settings,
                    shard_shared,
                    mailbox,
                    shard_rdma,
                    ready,
                )
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(error) => {
                stop_all(&shared);
                return Err(ServerError::Shard {
                    shard: id,
                    message: format!("cannot start thread: {error}"),
                });
            }
        }
    }
    drop(ready_sender);

    let mut ready = 0;
    let mut first_error = None;
    let mut files = Vec::new();
    for answer in ready_receiver.iter().take(shard_count) {
        match answer {
            Ok(file) => {
                ready += 1;
                files.extend(file);
            }
            Err(error) => {
                first_error.get_or_insert(error);
                break;
            }
        }
    }
    let syncer = match Syncer::start(files) {
        Ok(syncer) => syncer,
        Err(error) => {
            first_error.get_or_insert(ServerError::Shard {
                shard: usize::MAX,
                message: format!("cannot start the sync thread: {error}"),
            });
            None
        }
    };
    let mut exporter = None;
    if ready == shard_count && first_error.is_none() {
        if let Some(port) = config.resp_port {
            tracing::info!(
                backend = backend.name(),
                "ready: RESP on {}",
                SocketAddr::new(config.bind, port)
            );
        }
        exporter = config.metrics_port.and_then(|port| {
            match crate::observe::exporter::Exporter::start(port, Arc::clone(&shared)) {
                Ok(exporter) => {
                    tracing::info!("metrics: http://{}/metrics", exporter.address);
                    Some(exporter)
                }
                Err(error) => {
                    // Serving the cache matters more than its metrics: say so, go on.
                    tracing::warn!(port, %error, "metrics endpoint off: cannot listen (--metrics-port 0 silences this)");
                    None
                }
            }
        });
        wait_for_stop(&signals, &threads);
    }
    stop_all(&shared);
    if let Some(exporter) = exporter {
        exporter.join();
    }
    if let Some(syncer) = syncer {
        syncer.stop();
    }
    for handle in threads {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(_) => {
                first_error.get_or_insert(ServerError::Shard {
                    shard: usize::MAX,
                    message: "a shard thread panicked".into(),
                });
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Every shard's RDMA port (the first listening), when `--rdma-port` asks for them and the
/// machine has a device to serve on, and what INFO says about it. No device is not an error: the
/// server says so and serves TCP.
fn rdma_ports(config: &Config, shard_count: usize) -> Result<(Vec<RdmaPort>, String), ServerError> {
    let Some(port) = config.rdma_port else {
        return Ok((Vec::new(), "off".to_owned()));
    };
    let found = platform::rdma::probe();
    let chosen = found
        .choose(config.rdma_device.as_deref())
        .and_then(|(device, device_port)| {
            device_port
                .roce_v2_ipv4()
                .map(|ip| (device, SocketAddrV4::new(ip, port)))
        });
    let Some((device, address)) = chosen else {
        let wanted = config.rdma_device.as_deref().unwrap_or("any device");
        let why = format!("no active RoCEv2 port on {wanted}; probed: {found}");
        tracing::warn!("RDMA transport off, serving TCP only: {why}");
        return Ok((Vec::new(), format!("off ({why})")));
    };
    let ports = RdmaPort::bind(address, shard_count, config.rdma_busy_poll)
        .map_err(|error| ServerError::Rdma(format!("listen on {address}: {error}")))?;
    tracing::info!(device = %device.name, %address, busy_poll_us = config.rdma_busy_poll.as_micros() as u64,
        "RDMA transport: RoCEv2 RC queue pairs on {address}, links spread over {shard_count} shards");
    if config.tunables.requirepass.is_none() {
        tracing::warn!(
            %address,
            "SECURITY WARNING: RDMA clients reach {address} with no password: anyone on that \
             network can read, change and flush every item; set --requirepass"
        );
    }
    Ok((ports, format!("{} {address}", device.name)))
}

fn stop_all(shared: &Shared) {
    shared.stopping.store(true, Ordering::Release);
    for address in &shared.addresses {
        address.doorbell().ring();
    }
}

#[allow(clippy::too_many_arguments)]
fn shard_main(
    id: usize,
    cpu: ChosenCpu,
    backend: Backend,
    config: &Config,
    store_settings: StoreSettings,
    shared: Arc<Shared>,
    mailbox: Mailbox<Mail>,
    rdma: Option<RdmaPort>,
    ready: mpsc::Sender<Result<Option<SyncHandle>, ServerError>>,
) -> Result<(), ServerError> {
    let pinned = pin_current_thread(cpu.cpu);
    if pinned {
        tracing::info!(
            shard = id,
            cpu = cpu.cpu,
            numa_node = cpu.numa_node,
            "shard pinned"
        );
    } else {
        tracing::warn!(
            shard = id,
            cpu = cpu.cpu,
            "could not pin to the CPU; the scheduler places this shard"
        );
    }
    let setup = || -> Result<(Executor, Vec<Listener>, Option<SyncHandle>), ServerError> {
        let executor = Executor::open(&store_settings, id, shared.shard_count, now_ms())
            .map_err(|message| ServerError::Shard { shard: id, message })?;
        let sync = match store_settings.sync {
            SyncChoice::Everysec => executor
                .sync_handle()
                .map_err(|message| ServerError::Shard { shard: id, message })?,
            SyncChoice::No | SyncChoice::Always => None,
        };
        if let (Some(report), Some(path)) =
            (executor.recovery_report(), store_settings.shard_file(id))
        {
            tracing::info!(
                shard = id,
                file = %path.display(),
                created = report.created,
                clean_shutdown = report.clean_shutdown,
                items_restored = report.items_restored,
                items_corrupt = report.items_corrupt,
                items_expired = report.items_expired,
                segments_corrupt = report.segments_corrupt,
                "store opened"
            );
        }
        let mut listeners = Vec::new();
        if let Some(port) = config.resp_port {
            let address = SocketAddr::new(config.bind, port);
            let listener =
                listener::bind(address, Protocol::Resp).map_err(|source| ServerError::Listen {
                    shard: id,
                    address,
                    source,
                })?;
            listeners.push(listener);
        }
        if let Some(port) = config.memcache_port {
            let address = SocketAddr::new(config.bind, port);
            let listener = listener::bind(address, Protocol::Memcache).map_err(|source| {
                ServerError::Listen {
                    shard: id,
                    address,
                    source,
                }
            })?;
            listeners.push(listener);
        }
        Ok((executor, listeners, sync))
    };
    let (executor, listeners, sync) = match setup() {
        Ok(parts) => parts,
        Err(error) => {
            let _ = ready.send(Err(error));
            return Ok(());
        }
    };
    let _ = ready.send(Ok(sync));
    let mut shard = Shard::new(
        id,
        shared,
        executor,
        mailbox,
        config.tunables.clone(),
        config.observe,
    );
    let result = match backend {
        Backend::Epoll => crate::io::epoll::run(&mut shard, listeners, rdma),
        Backend::Uring => crate::io::uring::run(&mut shard, listeners, rdma),
    };
    let closed = shard.core.executor.close(now_ms());
    result.map_err(|error| ServerError::Shard {
        shard: id,
        message: format!("event loop: {error}"),
    })?;
    closed.map_err(|message| ServerError::Shard { shard: id, message })
}

fn log_topology(topology: &Topology) {
    for node in &topology.nodes {
        tracing::info!(
            numa_node = node.os_index,
            cpus = ?node.cpus,
            memory_mib = node.memory_bytes >> 20,
            "NUMA node"
        );
    }
    tracing::info!(
        nodes = topology.nodes.len(),
        physical_cores = topology.physical_cores,
        allowed_cpus = topology.cpu_count(),
        source = %topology.source,
        "topology"
    );
}

fn choose_backend(choice: IoChoice) -> Result<Backend, ServerError> {
    match choice {
        IoChoice::Epoll => {
            tracing::info!(backend = "epoll", "I/O backend: epoll, as --io epoll asked");
            Ok(Backend::Epoll)
        }
        IoChoice::Uring | IoChoice::Auto => {
            match probe_io_uring() {
                IoUringSupport::Available { msg_ring } => {
                    tracing::info!(backend = "io_uring", msg_ring, "I/O backend: io_uring (probed: multishot accept/recv, provided buffer rings)");
                    Ok(Backend::Uring)
                }
                IoUringSupport::Unavailable { reason } if choice == IoChoice::Auto => {
                    tracing::warn!(backend = "epoll", %reason, "I/O backend: epoll, because io_uring is unusable");
                    Ok(Backend::Epoll)
                }
                IoUringSupport::Unavailable { reason } => {
                    Err(ServerError::UringUnavailable(reason))
                }
            }
        }
    }
}

/// Redis' protected-mode idea: serving beyond loopback with no password is allowed, loudly.
fn warn_if_exposed(config: &Config) {
    if !config.bind.is_loopback() && config.tunables.requirepass.is_none() {
        tracing::warn!(
            bind = %config.bind,
            "SECURITY WARNING: listening beyond loopback with no password: anyone who can reach \
             this address can read, change and flush every item; set --requirepass or bind 127.0.0.1"
        );
    }
}

fn settings(config: &Config, shard_count: usize, backend: Backend) -> Vec<(String, String)> {
    let pairs = [
        ("bind", config.bind.to_string()),
        ("port", config.resp_port.unwrap_or(0).to_string()),
        ("maxmemory", config.memory_bytes.to_string()),
        ("maxmemory-policy", "allkeys-lru".to_owned()),
        ("databases", "1".to_owned()),
        ("save", String::new()),
        ("appendonly", "no".to_owned()),
        ("appendfsync", config.sync.name().to_owned()),
        ("io-threads", shard_count.to_string()),
        ("ferrite-io", backend.name().to_owned()),
        ("ferrite-tiering", config.tiering().name().to_owned()),
        (
            "ferrite-data-size",
            config.data_size_bytes.unwrap_or(0).to_string(),
        ),
        (
            "ferrite-observability",
            if config.observe.enabled { "on" } else { "off" }.to_owned(),
        ),
        (
            "ferrite-metrics-port",
            config.metrics_port.unwrap_or(0).to_string(),
        ),
        (
            "ferrite-data-file",
            config
                .data_file
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        ),
    ];
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// The signal set SIGINT + SIGTERM, blocked in the calling thread (and so in every thread it
/// starts afterwards) so that only [`wait_for_stop`] receives them.
fn block_stop_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    // SAFETY: `set` is initialised; the old mask is not wanted (null).
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(std::io::Error::from_raw_os_error(result));
    }
    Ok(set)
}

/// Waits for SIGINT/SIGTERM, or for a shard thread to end on its own (an error).
fn wait_for_stop(signals: &libc::sigset_t, threads: &[JoinHandle<Result<(), ServerError>>]) {
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: SIGNAL_WAIT.as_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: `signals` is an initialised set, `timeout` a live timespec; no siginfo wanted.
        let signal = unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &timeout) };
        if signal == libc::SIGINT || signal == libc::SIGTERM {
            let name = if signal == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            tracing::info!(
                "{name}: stopping: no new connections, finishing owed replies, closing the store"
            );
            return;
        }
        if threads.iter().any(JoinHandle::is_finished) {
            tracing::error!("a shard stopped on its own; stopping the server");
            return;
        }
    }
}
