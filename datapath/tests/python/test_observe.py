"""Observability against the real server: every figure checked after a known command sequence,
/metrics parsed by prometheus_client's OpenMetrics parser, SLOWLOG, hot keys, CONFIG RESETSTAT."""

import socket
import time
import urllib.request

import pytest
import redis
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import free_port

READ_TIMEOUT_S = 20


def client(server):
    # No CLIENT SETINFO on connect: the server sees exactly the commands the test sends.
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=READ_TIMEOUT_S,
                       lib_name=None, lib_version=None)


def start(ferrite_server, backend, *flags, resp=True, memcache=False):
    metrics_port = free_port()
    server = ferrite_server("--threads", "2", "--io", backend, "--metrics-port", str(metrics_port),
                            *flags, resp=resp, memcache=memcache)
    server.metrics_port = metrics_port
    # The endpoint starts once every shard is up, a moment after the data ports listen.
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", metrics_port), timeout=1).close()
            return server
        except OSError:
            assert time.monotonic() < deadline, f"no metrics endpoint; log:\n{server.log()}"
            time.sleep(0.01)


@pytest.fixture(params=["epoll", "uring"])
def observed(request, ferrite_server):
    """Starts a two-shard server on each event loop, with /metrics on a free port."""
    return lambda *flags, **options: start(ferrite_server, request.param, *flags, **options)


def scrape(server):
    """{(name, labels without shard): value summed over shards} of every sample."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=READ_TIMEOUT_S) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "shard"))
            key = (sample.name, labels)
            samples[key] = samples.get(key, 0) + sample.value
    return samples


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def raw_exchange(port, request, reply_bytes):
    """Sends `request`, reads exactly `reply_bytes` bytes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(request)
        received = b""
        while len(received) < reply_bytes:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {received!r}"
            received += chunk
        return received


def test_every_figure_after_a_known_sequence(observed):
    server = observed()
    r = client(server)
    assert r.set("a", "1") and r.set("b", "2")
    assert r.get("a") == b"1" and r.get("a") == b"1" and r.get("missing") is None
    assert r.delete("a", "missing") == 1
    assert r.mget("b", "nothing") == [b"2", None]
    # A protocol error on a connection of its own.
    raw_exchange(server.port, b"*x\r\n", 1)

    samples = scrape(server)
    commands = {"set": 2, "get": 3, "del": 1, "mget": 1}
    for command, calls in commands.items():
        assert metric(samples, "ferrite_commands_total", command=command) == calls, command
    assert metric(samples, "ferrite_keyspace_hits_total") == 3  # get a, get a, mget b
    assert metric(samples, "ferrite_keyspace_misses_total") == 2  # get missing, mget nothing
    assert metric(samples, "ferrite_sets_total") == 2
    assert metric(samples, "ferrite_deletes_total") == 1
    assert metric(samples, "ferrite_items") == 1
    assert metric(samples, "ferrite_protocol_errors_total") == 1
    # The fixture's readiness probe, redis-py's connection, the raw one.
    assert metric(samples, "ferrite_connections_received_total") == 3
    assert metric(samples, "ferrite_connections_rejected_total") == 0
    # get and mget are reads; set and del writes: one latency sample per command.
    assert metric(samples, "ferrite_command_latency_seconds_count", family="read") == 4
    assert metric(samples, "ferrite_command_latency_seconds_count", family="write") == 3
    assert metric(samples, "ferrite_command_latency_seconds_bucket", family="read", le="+Inf") == 4
    assert metric(samples, "ferrite_segments", state="in_use") >= 1

    info = r.info("everything")
    assert info["cmdstat_get"]["calls"] == 3
    assert info["cmdstat_set"]["calls"] == 2
    assert info["keyspace_hits"] == 3 and info["keyspace_misses"] == 2
    assert info["sets"] == 2 and info["deletes"] == 1 and info["protocol_errors"] == 1
    assert info["keyspace_hit_ratio"] == 0.6
    assert info["observability"] == "on"
    assert set(info["latency_percentiles_usec_write"]) == {"p50", "p95", "p99", "p99.9", "max"}
    # The INFO above is not in its own figures; the scrape that follows sees it.
    assert metric(scrape(server), "ferrite_commands_total", command="info") == 1


def test_network_bytes_are_counted_exactly(observed):
    server = observed()
    ping = b"*1\r\n$4\r\nPING\r\n"
    assert raw_exchange(server.port, ping + ping, 14) == b"+PONG\r\n+PONG\r\n"
    samples = scrape(server)
    assert metric(samples, "ferrite_network_received_bytes_total") == 2 * len(ping)
    assert metric(samples, "ferrite_network_sent_bytes_total") == 14


def test_slowlog_get_len_reset(observed):
    server = observed("--slowlog-log-slower-than", "0", "--slowlog-max-len", "3")
    r = client(server)
    assert r.execute_command("SLOWLOG", "RESET") == b"OK"
    assert r.set("k", "v")
    assert r.get("k") == b"v"
    assert r.execute_command("CONFIG", "GET", "requirepass") is not None
    # RESET itself, set, get, config: this connection's shard logs them all and keeps the last 3.
    assert r.execute_command("SLOWLOG", "LEN") == 3
    entries = r.execute_command("SLOWLOG", "GET", 2)
    redacted = [b"CONFIG", b"GET", b"(redacted)"]
    assert [entry[3] for entry in entries] == [[b"SLOWLOG", b"LEN"], redacted]
    newest = entries[0]
    assert newest[0] > entries[1][0]
    assert abs(newest[1] - time.time()) < 60
    assert newest[4].startswith(b"127.0.0.1:")
    assert len(r.execute_command("SLOWLOG", "GET", -1)) == 3
    assert r.execute_command("SLOWLOG", "RESET") == b"OK"
    assert r.execute_command("SLOWLOG", "LEN") == 1  # the RESET
    with pytest.raises(redis.ResponseError, match="SLOWLOG HELP"):
        r.execute_command("SLOWLOG", "NOPE")


def test_slowlog_threshold_keeps_fast_commands_out(observed):
    server = observed("--slowlog-log-slower-than", "10000000")
    r = client(server)
    for _ in range(10):
        r.set("k", "v")
    assert r.execute_command("SLOWLOG", "LEN") == 0
    # CONFIG SET reaches every shard; the CONFIG SET itself is the first command logged.
    assert r.config_set("slowlog-log-slower-than", 0)
    r.set("k", "v")
    assert r.execute_command("SLOWLOG", "LEN") == 2
    assert r.config_get("slowlog-*") == {"slowlog-log-slower-than": "0", "slowlog-max-len": "128"}
    assert r.config_set("slowlog-max-len", 1)
    assert r.execute_command("SLOWLOG", "LEN") == 1
    with pytest.raises(redis.ResponseError, match="slowlog-max-len"):
        r.config_set("slowlog-max-len", 10_001)


def test_planted_hot_key_is_found_everywhere(observed):
    server = observed(memcache=True)
    r = client(server)
    hot_accesses = 20_000
    pipe = r.pipeline(transaction=False)
    for n in range(hot_accesses):
        pipe.get("hot:planted")
        pipe.get(f"cold:{n}")  # every other key once
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()

    top = r.execute_command("FERRITE.HOTKEYS", "COUNT", 3)
    assert len(top) == 3
    key, accesses = top[0]
    assert key == b"hot:planted"
    # Sampled one in 8: the estimate is within a few percent of the truth.
    assert abs(accesses - hot_accesses) < hot_accesses * 0.1, accesses
    assert top[1][1] < hot_accesses / 10

    samples = scrape(server)
    assert metric(samples, "ferrite_hot_key_accesses", key="hot:planted") == accesses

    with socket.create_connection(("127.0.0.1", server.memcache_port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(b"stats hotkeys\r\n")
        text = b""
        while not text.endswith(b"END\r\n"):
            text += sock.recv(65536)
    lines = text.decode().split("\r\n")
    assert lines[0] == "STAT hotkey:1:key hot:planted"
    assert lines[1] == f"STAT hotkey:1:accesses {accesses}"


def test_config_resetstat_clears_the_figures(observed):
    server = observed("--slowlog-log-slower-than", "0")
    r = client(server)
    r.set("k", "v")
    r.get("k")
    r.get("nope")
    assert r.config_resetstat()
    info = r.info("everything")
    assert info["keyspace_hits"] == 0 and info["keyspace_misses"] == 0
    # Only the CONFIG RESETSTAT itself ran since.
    assert [name for name in info if name.startswith("cmdstat_")] == ["cmdstat_config"]
    assert info["slowlog_len"] == 1
    assert r.execute_command("FERRITE.HOTKEYS") == []


def test_memcached_stats_count_exactly(observed):
    server = observed(resp=False, memcache=True)
    requests = [b"set k 0 0 1\r\nv\r\n", b"get k\r\n", b"get missing\r\n", b"bogus\r\n"]
    replies = [b"STORED\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n", b"END\r\n", b"ERROR\r\n"]
    with socket.create_connection(("127.0.0.1", server.memcache_port), timeout=READ_TIMEOUT_S) as sock:
        for request, reply in zip(requests, replies):
            sock.sendall(request)
            received = b""
            while len(received) < len(reply):
                received += sock.recv(65536)
            assert received == reply
        sock.sendall(b"stats\r\n")
        text = b""
        while not text.endswith(b"END\r\n"):
            text += sock.recv(65536)
    stats = dict(line.split(" ")[1:3] for line in text.decode().split("\r\n") if line.startswith("STAT "))
    assert stats["get_hits"] == "1" and stats["get_misses"] == "1"
    assert stats["bytes_read"] == str(sum(map(len, requests)) + len(b"stats\r\n"))
    assert stats["bytes_written"] == str(sum(map(len, replies)))
    assert stats["protocol_errors"] == "1"
    assert stats["rejected_connections"] == "0"
    assert "latency_read_p99_us" in stats
    samples = scrape(server)
    assert metric(samples, "ferrite_commands_total", command="mc_get") == 2
    assert metric(samples, "ferrite_commands_total", command="mc_set") == 1


def test_observability_off_keeps_counters_only(observed):
    server = observed("--observability", "off", "--slowlog-log-slower-than", "0")
    r = client(server)
    for _ in range(100):
        r.get("k")
    info = r.info("everything")
    assert info["observability"] == "off"
    assert info["cmdstat_get"]["calls"] == 100
    assert info["keyspace_misses"] == 100
    assert not any(name.startswith("latency_percentiles") for name in info)
    assert r.execute_command("SLOWLOG", "LEN") == 0
    assert r.execute_command("FERRITE.HOTKEYS") == []


def test_metrics_endpoint_answers_only_get_metrics(observed):
    server = observed()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/other", timeout=READ_TIMEOUT_S)
    assert error.value.code == 404


def test_grafana_dashboard_uses_only_exported_metrics(observed):
    import json
    import re

    from conftest import REPO

    server = observed()
    client(server).get("k")  # at least one sample of every labelled family
    exported = {name for name, _ in scrape(server)}
    dashboard = json.loads((REPO / "deploy" / "grafana" / "ferrite.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bferrite_[a-z_]+", target["expr"])}
    used |= set(re.findall(r"\bferrite_[a-z_]+", dashboard["templating"]["list"][0]["query"]))
    assert used and used <= exported, used - exported


def test_recovery_and_expiry_figures(observed, tmp_path):
    data = str(tmp_path / "ferrite.data")
    flags = ("--threads", "1", "--data-file", data, "--sync", "no")
    first = observed(*flags)
    r = client(first)
    for n in range(5):
        assert r.set(f"kept:{n}", "v")
    assert first.stop() == 0
    second = observed(*flags)
    samples = scrape(second)
    assert metric(samples, "ferrite_recovery_items_restored") == 5
    assert metric(samples, "ferrite_recovery_items_corrupt") == 0
    r = client(second)
    assert r.set("short", "v", px=50)
    time.sleep(0.2)
    assert r.get("short") is None
    samples = scrape(second)
    assert metric(samples, "ferrite_expired_items_total") == 1
    assert metric(samples, "ferrite_keyspace_misses_total") == 1
    assert r.info("ferrite")["recovery_items_restored"] == 5


def test_replies_from_other_shards_are_timed_once(observed):
    # Two shards: about half of these keys live on the other shard, whose reply comes back by
    # mail; each GET and MGET is one latency sample, recorded when its reply is ready.
    server = observed()
    r = client(server)
    for n in range(50):
        r.get(f"spread:{n}")
    for n in range(10):
        r.mget(*(f"spread:{n}:{part}" for part in range(8)))
    samples = scrape(server)
    assert metric(samples, "ferrite_command_latency_seconds_count", family="read") == 60
    assert metric(samples, "ferrite_cross_shard_requests_total") > 0
    info = r.info("commandstats")
    assert info["cmdstat_get"]["calls"] == 50 and info["cmdstat_mget"]["calls"] == 10


def test_a_hit_ratio_drop_is_counted_and_logged_once(ferrite_server):
    # One shard, so every lookup falls in the same windows. Steady hits build the baseline
    # (5 windows of 1 s, each with at least 100 lookups), then only misses.
    server = start(ferrite_server, "epoll", "--threads", "1")
    r = client(server)
    r.set("present", "v")

    def lookups(key, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pipe = r.pipeline(transaction=False)
            for _ in range(100):
                pipe.get(key)
            pipe.execute()
            time.sleep(0.05)

    lookups("present", 6.5)
    assert metric(scrape(server), "ferrite_anomalies_total", signal="hit_ratio_drop") == 0
    lookups("absent", 2.5)
    samples = scrape(server)
    # The windows of misses fire (one or two, by where the window edges fell); the log says so
    # once, since a signal is logged at most once a minute.
    assert metric(samples, "ferrite_anomalies_total", signal="hit_ratio_drop") in (1, 2, 3)
    assert metric(samples, "ferrite_anomalies_total", signal="eviction_storm") == 0
    assert server.log().count('signal="hit_ratio_drop"') == 1
