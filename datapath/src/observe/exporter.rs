//! The Prometheus endpoint: `GET /metrics` on 127.0.0.1:`--metrics-port`, OpenMetrics text.
//!
//! One thread of its own (not a shard) serves it with tiny_http. On each scrape it mails every
//! shard a request for its figures ([`Mail::observe`]), waits at most [`SHARD_ANSWER_WAIT`]
//! for the answers, and encodes them with prometheus-client, one sample per shard (label
//! `shard`). Shards answer between two loop ticks, so a scrape never takes a lock on the
//! request path.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::anomaly::Signal;
use super::{report, Family, Snapshot};
use crate::exec::ShardFigures;
use crate::shard::{Mail, Shared};

/// The port `/metrics` is served on when `--metrics-port` is not given (0 turns it off).
pub const METRICS_PORT_DEFAULT: u16 = 9778;
/// Longest a scrape waits for the shards' answers; a shard that misses it is left out.
pub const SHARD_ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How often the endpoint's thread looks at the stop flag while no scrape comes.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Hot keys exported per shard.
pub const HOT_KEYS_EXPORTED: usize = 10;
/// Upper bounds of the latency histograms' buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: [f64; 15] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0,
];

/// The running endpoint.
pub struct Exporter {
    pub address: SocketAddr,
    thread: JoinHandle<()>,
}

impl Exporter {
    /// Listens on 127.0.0.1:`port` and serves until the server stops.
    pub fn start(port: u16, shared: Arc<Shared>) -> std::io::Result<Exporter> {
        let server =
            tiny_http::Server::http((Ipv4Addr::LOCALHOST, port)).map_err(std::io::Error::other)?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the metrics listener has no IP address"))?;
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&server, &shared))?;
        Ok(Exporter { address, thread })
    }

    /// Waits for the thread (it ends within [`STOP_POLL`] of the stop flag).
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the metrics thread panicked");
        }
    }
}

fn serve(server: &tiny_http::Server, shared: &Shared) {
    while !shared.stop_requested() {
        let request = match server.recv_timeout(STOP_POLL) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, "metrics endpoint stopped");
                return;
            }
        };
        let response = if request.url() != "/metrics" {
            tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
        } else if *request.method() != tiny_http::Method::Get {
            tiny_http::Response::from_string("only GET\n").with_status_code(405)
        } else {
            let shards = collect(shared);
            let content_type = tiny_http::Header::from_bytes(
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .expect("a valid header");
            tiny_http::Response::from_string(render(shards, &shared.server_info))
                .with_header(content_type)
        };
        if let Err(error) = request.respond(response) {
            tracing::debug!(%error, "metrics scrape: client went away");
        }
    }
}

/// Asks every shard for its figures by mail; the answers that came within
/// [`SHARD_ANSWER_WAIT`], by shard.
pub fn collect(shared: &Shared) -> Vec<ShardFigures> {
    let (sender, receiver) = crossbeam::channel::bounded(shared.shard_count);
    for address in &shared.addresses {
        address.post(Mail {
            observe: Some(sender.clone()),
            ..Mail::default()
        });
    }
    drop(sender);
    let deadline = Instant::now() + SHARD_ANSWER_WAIT;
    let mut shards: Vec<ShardFigures> = Vec::with_capacity(shared.shard_count);
    while shards.len() < shared.shard_count {
        match receiver.recv_deadline(deadline) {
            Ok(figures) => shards.push(figures),
            Err(_) => {
                tracing::warn!(
                    answered = shards.len(),
                    shards = shared.shard_count,
                    "metrics scrape: not every shard answered in time"
                );
                break;
            }
        }
    }
    shards.sort_by_key(|figures| figures.observed.as_ref().map(|snapshot| snapshot.shard));
    shards
}

/// The OpenMetrics text for these shards' figures; `server_info` holds INFO's `name:value`
/// lines about the server, exported as the labels of `ferrite_server_info`.
pub fn render(shards: Vec<ShardFigures>, server_info: &str) -> String {
    let info = server_info
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .chain([("version".to_owned(), crate::commands::VERSION.to_owned())])
        .collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { shards, info }));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct Scrape {
    shards: Vec<ShardFigures>,
    info: Vec<(String, String)>,
}

type Labels = Vec<(&'static str, String)>;
/// One number of a shard, from its figures and its snapshot.
type Figure = fn(&ShardFigures, &Snapshot) -> u64;

impl Scrape {
    fn shard_of(figures: &ShardFigures) -> String {
        figures
            .observed
            .as_ref()
            .map_or_else(String::new, |snapshot| snapshot.shard.to_string())
    }

    /// One metric family with a sample per shard and per `samples(figures)` entry.
    fn family<V>(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        metric_type: MetricType,
        samples: impl Fn(&ShardFigures, &Snapshot) -> Vec<(Labels, V)>,
        write: impl Fn(prometheus_client::encoding::MetricEncoder<'_>, &V) -> fmt::Result,
    ) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
        for figures in &self.shards {
            let Some(snapshot) = figures.observed.as_deref() else {
                continue;
            };
            for (mut labels, value) in samples(figures, snapshot) {
                labels.insert(0, ("shard", Self::shard_of(figures)));
                write(metric.encode_family(&labels)?, &value)?;
            }
        }
        Ok(())
    }

    fn counter(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: impl Fn(&ShardFigures, &Snapshot) -> u64,
    ) -> fmt::Result {
        self.family(
            encoder,
            name,
            help,
            MetricType::Counter,
            |figures, snapshot| vec![(Vec::new(), value(figures, snapshot))],
            |mut metric, value| metric.encode_counter::<NoLabelSet, _, u64>(value, None),
        )
    }

    fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        samples: impl Fn(&ShardFigures, &Snapshot) -> Vec<(Labels, V)>,
    ) -> fmt::Result {
        self.family(
            encoder,
            name,
            help,
            MetricType::Gauge,
            samples,
            |mut metric, value| metric.encode_gauge(value),
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let encoder = &mut encoder;
        encoder
            .encode_descriptor(
                "ferrite_server",
                "The server's version, I/O backend, offload engine and storage.",
                None,
                MetricType::Info,
            )?
            .encode_info(&self.info)?;
        self.family(
            encoder,
            "ferrite_commands",
            "Commands run, by command (memcached commands have an mc_ prefix).",
            MetricType::Counter,
            |_, snapshot| {
                snapshot
                    .calls
                    .iter()
                    .map(|(id, calls)| (vec![("command", id.name().to_owned())], calls.calls))
                    .collect()
            },
            |mut metric, value| metric.encode_counter::<NoLabelSet, _, u64>(value, None),
        )?;
        let counters: [(&str, &str, Figure); 13] = [
            (
                "ferrite_keyspace_hits",
                "Lookups that found their key.",
                |f, _| f.hits,
            ),
            (
                "ferrite_keyspace_misses",
                "Lookups that did not.",
                |f, _| f.misses,
            ),
            (
                "ferrite_sets",
                "SET-family writes that stored an item.",
                |_, s| s.counters.sets,
            ),
            (
                "ferrite_deletes",
                "Keys deleted by delete commands.",
                |_, s| s.counters.deletes,
            ),
            (
                "ferrite_expired_items",
                "Items dropped because they expired.",
                |f, _| f.expired_items,
            ),
            (
                "ferrite_evicted_items",
                "Items evicted under the memory limit.",
                |f, _| f.evicted_items,
            ),
            (
                "ferrite_connections_received",
                "Connections accepted.",
                |f, _| f.connections_total,
            ),
            (
                "ferrite_connections_rejected",
                "Connections turned away (max clients, shutdown).",
                |_, s| s.counters.connections_rejected,
            ),
            (
                "ferrite_network_received_bytes",
                "Bytes received from clients.",
                |_, s| s.counters.bytes_in,
            ),
            (
                "ferrite_network_sent_bytes",
                "Bytes sent to clients.",
                |_, s| s.counters.bytes_out,
            ),
            (
                "ferrite_cross_shard_requests",
                "Operations this shard ran for other shards.",
                |f, _| f.remote_requests,
            ),
            (
                "ferrite_cross_shard_messages",
                "Messages this shard posted to other shards.",
                |_, s| s.counters.mail_sent,
            ),
            (
                "ferrite_protocol_errors",
                "Requests that did not parse.",
                |_, s| s.counters.protocol_errors,
            ),
        ];
        for (name, help, value) in counters {
            self.counter(encoder, name, help, value)?;
        }
        self.family(
            encoder,
            "ferrite_anomalies",
            "Windows in which an anomaly signal fired (see the server log for the figures).",
            MetricType::Counter,
            |_, snapshot| {
                Signal::ALL
                    .iter()
                    .zip(snapshot.anomalies)
                    .map(|(signal, count)| (vec![("signal", signal.name().to_owned())], count))
                    .collect()
            },
            |mut metric, value| metric.encode_counter::<NoLabelSet, _, u64>(value, None),
        )?;
        let gauges: [(&str, &str, Figure); 7] = [
            (
                "ferrite_memory_used_bytes",
                "Bytes of segments in use.",
                |f, _| f.bytes_used,
            ),
            ("ferrite_memory_limit_bytes", "The memory limit.", |f, _| {
                f.bytes_limit
            }),
            ("ferrite_items", "Keys held.", |f, _| f.items),
            ("ferrite_connections", "Open client connections.", |f, _| {
                f.connections
            }),
            (
                "ferrite_recovery_items_restored",
                "Items recovered from the data file at start.",
                |_, s| s.recovery.items_restored,
            ),
            (
                "ferrite_recovery_items_corrupt",
                "Items skipped at start: checksum failed or torn.",
                |_, s| s.recovery.items_corrupt,
            ),
            (
                "ferrite_slowlog_entries",
                "Entries in the slow log.",
                |_, s| s.slowlog.len() as u64,
            ),
        ];
        for (name, help, value) in gauges {
            self.gauge(encoder, name, help, |figures, snapshot| {
                vec![(Vec::new(), value(figures, snapshot))]
            })?;
        }
        self.gauge(
            encoder,
            "ferrite_keyspace_hit_ratio",
            "Hits over lookups since start (or CONFIG RESETSTAT).",
            |figures, _| vec![(Vec::new(), report::hit_ratio(figures))],
        )?;
        self.gauge(
            encoder,
            "ferrite_segments",
            "Segments by state.",
            |figures, _| {
                vec![
                    (vec![("state", "free".to_owned())], figures.segments_free),
                    (
                        vec![("state", "in_use".to_owned())],
                        figures.segments_in_use,
                    ),
                ]
            },
        )?;
        self.gauge(
            encoder,
            "ferrite_hot_key_accesses",
            "Estimated accesses of the hottest keys (count-min sketch over sampled accesses).",
            |_, snapshot| {
                snapshot
                    .hot_keys
                    .iter()
                    .take(HOT_KEYS_EXPORTED)
                    .map(|hot| {
                        let key = String::from_utf8_lossy(&hot.key).into_owned();
                        (vec![("key", key)], hot.accesses)
                    })
                    .collect()
            },
        )?;
        self.family(
            encoder,
            "ferrite_command_latency_seconds",
            "From a read batch reaching the shard to the command's reply queued, by family.",
            MetricType::Histogram,
            |_, snapshot| {
                Family::ALL
                    .iter()
                    .map(|family| {
                        let time_ns: u64 = snapshot
                            .calls
                            .iter()
                            .filter(|(id, _)| id.family() == *family)
                            .map(|(_, calls)| calls.time_ns)
                            .sum();
                        let histogram = &snapshot.latency[*family as usize];
                        (
                            vec![("family", family.name().to_owned())],
                            (time_ns as f64 / 1e9, buckets(histogram), histogram.len()),
                        )
                    })
                    .collect()
            },
            |mut metric, (sum, buckets, count)| {
                metric.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
            },
        )
    }
}

/// Per-bucket counts (the encoder accumulates them) at [`LATENCY_BUCKETS_SECONDS`], then +Inf.
fn buckets(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(f64, u64)> {
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_SECONDS
        .iter()
        .map(|&bound| {
            let cumulative = histogram.count_between(0, (bound * 1e9) as u64);
            let count = cumulative - below;
            below = cumulative;
            (bound, count)
        })
        .collect();
    buckets.push((f64::INFINITY, histogram.len() - below));
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Observer, RecoveryFigures, Settings};

    #[test]
    fn renders_openmetrics_with_shard_labels_and_buckets() {
        let mut observer = Observer::new(1, 2, Settings::default());
        observer.counters.bytes_in = 42;
        let figures = ShardFigures {
            hits: 3,
            misses: 1,
            segments_free: 5,
            observed: Some(Box::new(observer.snapshot(RecoveryFigures::default()))),
            ..ShardFigures::default()
        };
        let text = render(vec![figures], "io_backend:epoll\r\noffload:software\r\n");
        assert!(
            text.contains("ferrite_network_received_bytes_total{shard=\"1\"} 42\n"),
            "{text}"
        );
        assert!(text.contains("ferrite_keyspace_hits_total{shard=\"1\"} 3\n"));
        assert!(text.contains("ferrite_keyspace_hit_ratio{shard=\"1\"} 0.75\n"));
        assert!(text.contains("ferrite_segments{shard=\"1\",state=\"free\"} 5\n"));
        assert!(text.contains("io_backend=\"epoll\""));
        assert!(text.contains(
            "ferrite_command_latency_seconds_bucket{le=\"+Inf\",shard=\"1\",family=\"read\"} 0\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn buckets_split_the_histogram() {
        let mut histogram = super::super::latency_histogram();
        histogram.saturating_record(5_000); // 5 µs
        histogram.saturating_record(300_000); // 300 µs
        histogram.saturating_record(5_000_000_000); // 5 s
        let buckets = buckets(&histogram);
        assert_eq!(buckets[0], (0.000_01, 1));
        assert_eq!(buckets[5], (0.000_5, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(buckets.iter().map(|(_, count)| count).sum::<u64>(), 3);
    }
}
