"""redis-py against the real server: pipelines, RESP3, binary values, SCAN, on both loops."""

import pytest
import redis

BACKENDS = ["epoll", "uring"]


@pytest.fixture(params=BACKENDS)
def server(request, ferrite_server):
    return ferrite_server("--threads", "2", "--io", request.param)


def client(server, **options):
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=20, **options)


def test_basic_commands(server):
    r = client(server)
    assert r.ping()
    assert r.set("name", "ferrite")
    assert r.get("name") == b"ferrite"
    assert r.set("name", "other", nx=True) is None
    assert r.set("temp", "v", px=60_000)
    assert 0 < r.pttl("temp") <= 60_000
    assert r.incr("hits") == 1
    assert r.incrby("hits", 9) == 10
    assert r.incrbyfloat("hits", 0.5) == 10.5
    assert r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.mget("a", "b", "missing", "c") == [b"1", b"2", None, b"3"]
    assert r.delete("a", "b", "missing") == 2
    assert r.exists("a", "c") == 1
    assert r.dbsize() == 4
    info = r.info()
    assert info["io_backend"] in ("epoll", "io_uring")
    assert info["db0"]["keys"] == 4
    assert r.flushall()
    assert r.dbsize() == 0


def test_pipeline_of_thousands_keeps_order(server):
    r = client(server)
    pipe = r.pipeline(transaction=False)
    for n in range(5000):
        pipe.set(f"p:{n}", n)
        pipe.get(f"p:{n}")
        pipe.incr(f"count:{n % 10}")
    replies = pipe.execute()
    counts = [0] * 10
    for n in range(5000):
        assert replies[3 * n] is True
        assert replies[3 * n + 1] == str(n).encode()
        counts[n % 10] += 1
        assert replies[3 * n + 2] == counts[n % 10]


def test_resp3(server):
    r = client(server, protocol=3)
    assert r.set("k", "v")
    assert r.get("k") == b"v"
    assert r.get("nothing") is None
    assert r.execute_command("HELLO", "3")[b"proto"] == 3
    assert r.client_id() > 0
    r.client_setname("py3")
    assert r.client_getname() == b"py3"


def test_binary_values(server):
    r = client(server)
    value = bytes(range(256)) * 100
    key = b"\x00\xff\r\nkey"
    assert r.set(key, value)
    assert r.get(key) == value
    assert r.strlen(key) == len(value)
    assert r.getrange(key, 0, 3) == b"\x00\x01\x02\x03"


def test_scan_iteration_visits_every_key_once(server):
    r = client(server)
    keys = {f"scan:{n}".encode() for n in range(1000)}
    with r.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, "v")
        pipe.set("other", "v")
        pipe.execute()
    seen = list(r.scan_iter(match="scan:*", count=50))
    assert len(seen) == len(set(seen)), "a key came back twice"
    assert set(seen) == keys
    assert set(r.keys("scan:99*")) == {b"scan:99", *{f"scan:99{d}".encode() for d in range(10)}}


def test_errors_are_redis_errors(server):
    r = client(server)
    r.set("text", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("text")
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("NOSUCHCOMMAND", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
