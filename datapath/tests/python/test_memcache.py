"""memcached clients against the real server: pymemcache, the libmemcached tools, twemproxy
(nutcracker) in front of three ferrite processes, and raw sockets for the exact error strings."""

import bisect
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymemcache
import pytest
import redis
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheIllegalInputError

BACKENDS = ["epoll", "uring"]
KEY_BYTES_MAX = 250
REPLY_TIMEOUT_S = 20


@pytest.fixture(params=BACKENDS)
def server(request, ferrite_server):
    return ferrite_server("--threads", "2", "--io", request.param, memcache=True)


def client(server, **options):
    return Client(("127.0.0.1", server.memcache_port), timeout=REPLY_TIMEOUT_S, **options)


def exchange(server, request: bytes, expect_len: int) -> bytes:
    """Sends raw bytes and reads until `expect_len` bytes of reply arrived (or the server closed)."""
    with socket.create_connection(("127.0.0.1", server.memcache_port), timeout=REPLY_TIMEOUT_S) as sock:
        sock.sendall(request)
        reply = b""
        while len(reply) < expect_len:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def test_pymemcache_commands(server):
    mc = client(server)
    assert mc.set("k", b"v", expire=0, noreply=False)
    assert mc.get("k") == b"v"
    value, cas = mc.gets("k")
    assert value == b"v"
    assert mc.cas("k", b"w", cas, noreply=False)
    assert mc.cas("k", b"x", cas, noreply=False) is False  # EXISTS: the CAS moved on
    assert mc.cas("missing", b"x", cas, noreply=False) is None  # NOT_FOUND
    assert mc.get("k") == b"w"
    assert mc.add("k", b"no", noreply=False) is False
    assert mc.add("fresh", b"yes", noreply=False) is True
    assert mc.replace("absent", b"no", noreply=False) is False
    assert mc.replace("fresh", b"again", noreply=False) is True
    assert mc.append("fresh", b"!", noreply=False) and mc.prepend("fresh", b">", noreply=False)
    assert mc.get("fresh") == b">again!"
    assert mc.append("absent", b"x", noreply=False) is False
    assert mc.set("n", b"10", noreply=False)
    assert mc.incr("n", 5) == 15
    assert mc.decr("n", 100) == 0
    assert mc.set("n", b"18446744073709551615", noreply=False)
    assert mc.incr("n", 2) == 1  # unsigned 64-bit wrap
    assert mc.incr("absent", 1) is None
    assert mc.touch("fresh", 100, noreply=False) is True
    assert mc.touch("absent", 100, noreply=False) is False
    assert mc.delete("fresh", noreply=False) is True
    assert mc.delete("fresh", noreply=False) is False
    assert mc.version().startswith(b"1.6")


def test_pymemcache_many_keys_across_shards(server):
    mc = client(server)
    values = {f"key:{index}": f"value-{index}".encode() for index in range(500)}
    assert mc.set_many(values, noreply=False) == []
    wanted = list(values) + ["missing:1", "missing:2"]
    assert mc.get_many(wanted) == values
    mc.delete_many(list(values)[:100], noreply=False)
    assert len(mc.get_many(list(values))) == 400
    assert mc.flush_all(noreply=False)
    assert mc.get_many(list(values)) == {}


def test_pymemcache_noreply_binary_values_and_flags(server):
    mc = client(server)
    blob = bytes(range(256)) * 64 + b"\r\nEND\r\n"
    mc.set("blob", blob)  # noreply by default in pymemcache
    mc.set("flagged", b"x", noreply=True)
    assert mc.get("blob") == blob
    raw = exchange(server, b"set f 4294967295 0 1\r\nx\r\nget f\r\n", len(b"STORED\r\nVALUE f 4294967295 1\r\nx\r\nEND\r\n"))
    assert raw == b"STORED\r\nVALUE f 4294967295 1\r\nx\r\nEND\r\n"


def test_key_length_limit(server):
    mc = client(server)
    longest = "k" * KEY_BYTES_MAX
    assert mc.set(longest, b"ok", noreply=False)
    assert mc.get(longest) == b"ok"
    with pytest.raises(MemcacheIllegalInputError):
        mc.set(longest + "k", b"no")
    # The server refuses the 251-byte key itself and skips its data block.
    request = f"set {longest}k 0 0 2\r\nno\r\nget {longest}k\r\n".encode()
    expect = b"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"
    assert exchange(server, request, len(expect)) == expect


def test_expiry(server):
    mc = client(server)
    assert mc.set("short", b"v", expire=1, noreply=False)
    assert mc.set("gone", b"v", expire=-1, noreply=False)
    assert mc.get("gone") is None
    assert mc.get("short") == b"v"
    time.sleep(2.1)
    assert mc.get("short") is None
    far = int(time.time()) + 3600  # above 30 days: an absolute unix time
    assert mc.set("absolute", b"v", expire=far, noreply=False)
    assert mc.get("absolute") == b"v"
    assert mc.set("past", b"v", expire=int(time.time()) - 10, noreply=False)
    assert mc.get("past") is None


def test_protocols_share_the_store(ferrite_server):
    server = ferrite_server("--threads", "2", memcache=True)
    mc = client(server)
    r = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=REPLY_TIMEOUT_S)
    r.set("from-redis", "hello")
    assert mc.get("from-redis") == b"hello"
    assert mc.set("from-memcache", b"world", noreply=False)
    assert r.get("from-memcache") == b"world"
    assert r.incr("counter") == 1
    assert mc.incr("counter", 4) == 5
    assert r.get("counter") == b"5"
    # RESP writes flags 0; a RESP write renews the CAS value, so a pending cas fails.
    assert mc.set("shared", b"v", noreply=False)
    _, cas = mc.gets("shared")
    r.set("shared", "from redis")
    assert exchange(server, b"gets shared\r\n", len(b"VALUE shared 0 10 ")).startswith(b"VALUE shared 0 10 ")
    assert mc.cas("shared", b"late", cas, noreply=False) is False


def run_tool(name, *args, cwd=None):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install libmemcached-tools (scripts/setup.sh --test)")
    done = subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name} {' '.join(args)} failed: {done.stdout}{done.stderr}"
    return done.stdout


def test_libmemcached_tools(ferrite_server):
    server = ferrite_server("--threads", "2", memcache=True)
    servers = f"--servers=127.0.0.1:{server.memcache_port}"
    mc = client(server)
    with tempfile.TemporaryDirectory() as directory:
        for name, content in [("alpha", b"first file"), ("beta", bytes(range(256)))]:
            Path(directory, name).write_bytes(content)
        run_tool("memccp", servers, "alpha", "beta", cwd=directory)
    assert mc.get("alpha") == b"first file"
    assert mc.get("beta") == bytes(range(256))
    assert run_tool("memccat", servers, "alpha") == "first file\n"  # memccat ends each value with a newline
    run_tool("memcrm", servers, "alpha")
    assert mc.get("alpha") is None
    stats = run_tool("memcstat", servers)
    for name in ["curr_items", "total_items", "get_hits", "get_misses", "cmd_get", "cmd_set",
                 "curr_connections", "bytes", "limit_maxbytes", "threads", "evictions"]:
        assert f"\t{name}: " in stats, f"memcstat lacks {name}: {stats}"
    run_tool("memcflush", servers)
    assert mc.get("beta") is None
    hits_before = int(mc.stats()[b"get_hits"])
    for test in ["set", "get", "mget"]:
        run_tool("memcslap", servers, "--concurrency=4", "--execute-number=500", f"--test={test}")
    stats = mc.stats()
    assert int(stats[b"curr_items"]) >= 500
    assert int(stats[b"get_hits"]) > hits_before


def start_nutcracker(config: str, ports):
    path = shutil.which("nutcracker")
    if path is None:
        pytest.fail("nutcracker not found: install it (scripts/setup.sh --test)")
    directory = tempfile.mkdtemp(prefix="nutcracker-")
    config_path = Path(directory, "nutcracker.yml")
    config_path.write_text(config)
    stats_port = free_port()
    process = subprocess.Popen([path, "-c", str(config_path), "-s", str(stats_port), "-a", "127.0.0.1",
                                "-o", str(Path(directory, "nutcracker.log"))])
    wait_listening("nutcracker", process, ports)
    return process


def wait_listening(name, process, ports):
    deadline = time.monotonic() + 10
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{name} did not listen"
                assert process.poll() is None, f"{name} exited with {process.returncode}"
                time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pool(name, listen, backends, redis_pool):
    lines = [f"{name}:", f"  listen: 127.0.0.1:{listen}", "  hash: fnv1a_64", "  distribution: ketama",
             "  timeout: 5000", "  preconnect: true", "  auto_eject_hosts: false", "  servers:"]
    if redis_pool:
        lines.insert(2, "  redis: true")
    lines += [f"    - 127.0.0.1:{port}:1 backend{index}" for index, port in enumerate(backends)]
    return "\n".join(lines) + "\n"


# nutcracker's placement, to check that each key sits on the backend ketama chose: 160 points per
# server (four per MD5 of "name-index"), keys hashed with nutcracker's fnv1a_64, which keeps the
# 64-bit constants but computes in 32 bits; a key goes to the first point at or after its hash.
KETAMA_POINTS_PER_SERVER = 160


def nutcracker_fnv1a_64(key: bytes) -> int:
    value = 0xCBF29CE484222325 & 0xFFFFFFFF
    for byte in key:
        value = ((value ^ byte) * (0x100000001B3 & 0xFFFFFFFF)) & 0xFFFFFFFF
    return value


def ketama_points(names):
    points = []
    for index, name in enumerate(names):
        for pointer in range(KETAMA_POINTS_PER_SERVER // 4):
            digest = hashlib.md5(f"{name}-{pointer}".encode()).digest()
            points += [(int.from_bytes(digest[at:at + 4], "little"), index) for at in range(0, 16, 4)]
    return sorted(points)


def ketama_backend(points, key: str) -> int:
    position = bisect.bisect_left(points, (nutcracker_fnv1a_64(key.encode()), -1))
    return points[position % len(points)][1]


def test_twemproxy_ketama_pool_of_three(ferrite_server):
    backends = [ferrite_server("--threads", "1", memcache=True) for _ in range(3)]
    memcache_listen, redis_listen = free_port(), free_port()
    while redis_listen == memcache_listen:  # two probes in a row may return the same port
        redis_listen = free_port()
    config = pool("memcache_pool", memcache_listen, [backend.memcache_port for backend in backends], False)
    config += pool("redis_pool", redis_listen, [backend.port for backend in backends], True)
    proxy = start_nutcracker(config, [memcache_listen, redis_listen])
    try:
        through = Client(("127.0.0.1", memcache_listen), timeout=REPLY_TIMEOUT_S)
        direct = [client(backend) for backend in backends]
        keys = [f"proxied:{index}" for index in range(3000)]
        for key in keys:
            assert through.set(key, key.encode() * 2, noreply=False)
        assert through.get_many(keys) == {key: key.encode() * 2 for key in keys}
        points = ketama_points([f"backend{index}" for index in range(len(backends))])
        placed = [0, 0, 0]
        for key in keys:
            holders = [index for index, backend in enumerate(direct) if backend.get(key) is not None]
            assert holders == [ketama_backend(points, key)], f"{key} is on backends {holders}"
            placed[holders[0]] += 1
        assert all(count > len(keys) / 10 for count in placed), f"ketama spread {placed}"

        # nutcracker forwards no CLIENT command: redis-py must not send CLIENT SETINFO.
        through_redis = redis.Redis(host="127.0.0.1", port=redis_listen, socket_timeout=REPLY_TIMEOUT_S,
                                    lib_name=None, lib_version=None)
        direct_redis = [redis.Redis(host="127.0.0.1", port=backend.port) for backend in backends]
        for index in range(1000):
            through_redis.set(f"r:{index}", index)
        for index in range(1000):
            assert through_redis.get(f"r:{index}") == str(index).encode()
            holders = [number for number, r in enumerate(direct_redis) if r.exists(f"r:{index}")]
            assert holders == [ketama_backend(points, f"r:{index}")]
    finally:
        proxy.terminate()
        proxy.wait(10)


@pytest.fixture
def memcached():
    """The real memcached on a free loopback port: the reference for byte-exact replies."""
    path = shutil.which("memcached")
    if path is None:
        pytest.fail("memcached not found: install memcached (scripts/setup.sh --test)")
    port = free_port()
    # memcached refuses to run as root unless told which user to be.
    user = ["-u", pwd.getpwuid(os.geteuid()).pw_name] if os.geteuid() == 0 else []
    process = subprocess.Popen([path, "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening("memcached", process, [port])
        yield port
    finally:
        process.terminate()
        process.wait(10)


def converse(port, request: bytes) -> bytes:
    """Sends `request` then `mn`, and returns every reply before the `MN` that answers it."""
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S) as sock:
        sock.sendall(request + b"mn\r\n")
        reply = b""
        while not reply.endswith(b"MN\r\n"):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {reply!r}"
            reply += chunk
        return reply[:-len(b"MN\r\n")]


# Every error string, byte for byte as memcached sends it. memcached answers nothing, errors
# included, for a text command whose last token is `noreply` once its token count is right (a wrong
# count is still `ERROR`); meta commands answer their errors, quiet or not. The data block of a
# storage command whose line is refused before its length is read is left to be read as a command
# (here `hello`, or the `\r\n` after a bad chunk).
REPLY_CASES = [
    (b"bogus\r\n", b"ERROR\r\n"),
    (b"get\r\n", b"ERROR\r\n"),
    (b"set k 0 0 x\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"set k 0 0 3\r\nabcd\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    (b"set k 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\nget k\r\n",
     b"SERVER_ERROR object too large for cache\r\nEND\r\n"),
    (b"set k 0 0 1\r\nx\r\nadd k 0 0 1\r\ny\r\n", b"STORED\r\nNOT_STORED\r\n"),
    (b"set k 0 0 1\r\nx\r\ncas k 0 0 1 18446744073709551615\r\ny\r\n", b"STORED\r\nEXISTS\r\n"),
    (b"cas nothere 0 0 1 1\r\ny\r\n", b"NOT_FOUND\r\n"),
    (b"incr k x\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
    (b"set k 0 0 1\r\nx\r\nincr k 1\r\n", b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (b"touch k x\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"delete k 5\r\n", b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
    (b"mg k v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
    (b"mg k Y\r\n", b"CLIENT_ERROR invalid flag\r\n"),
    (b"ms k 2 MX\r\nhi\r\n", b"CLIENT_ERROR invalid mode for ms M token\r\n"),
    (b"set n 0 0 1 noreply\r\n5\r\nincr n abc noreply\r\nincr n noreply\r\nincr n 2 noreply\r\nget n\r\n",
     b"VALUE n 0 1\r\n7\r\nEND\r\n"),
    (b"incr n 1 noreply x\r\n", b"ERROR\r\n"),
    (b"set v 0 0 notanumber noreply\r\nhello\r\n", b"ERROR\r\n"),
    (b"set v 0 0 notanumber\r\nhello\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"set v 0 0 noreply\r\nget v\r\n", b"END\r\n"),
    (b"set v 0 0 5 noreply\r\nhelloXX\r\nget v\r\n", b"ERROR\r\nEND\r\n"),
    (b"set v 0 0 2000000 noreply\r\n" + b"x" * 2000000 + b"\r\nget v\r\n", b"END\r\n"),
    (b"touch t x noreply\r\ntouch t noreply\r\ntouch t x\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"set t 0 0 1 noreply\r\nx\r\ndelete t 5 noreply\r\ndelete t noreply x\r\n"
     + b"delete " + b"k" * 251 + b" noreply\r\nget t\r\n",
     b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nVALUE t 0 1\r\nx\r\nEND\r\n"),
    (b"set t 0 0 1 noreply\r\nx\r\nflush_all x noreply\r\nflush_all noreply noreply\r\nflush_all noreply 5\r\n"
     b"get t\r\nflush_all noreply\r\nget t\r\n",
     b"CLIENT_ERROR invalid exptime argument\r\nVALUE t 0 1\r\nx\r\nEND\r\nEND\r\n"),
    (b"verbosity x noreply\r\nverbosity noreply\r\nverbosity x\r\nverbosity 0 noreply\r\nverbosity 0\r\n",
     b"CLIENT_ERROR bad command line format\r\nOK\r\n"),
    # Numbers as strtol / strtoull read them: a leading `+` and leading zeros are fine.
    (b"set k +3 007 +1\r\nx\r\nget k\r\ntouch k +100\r\ngat 0100 k\r\n",
     b"STORED\r\nVALUE k 3 1\r\nx\r\nEND\r\nTOUCHED\r\nVALUE k 3 1\r\nx\r\nEND\r\n"),
    (b"set n 0 0 1\r\n5\r\nincr n +2\r\ndecr n 007\r\nflush_all +0\r\nverbosity 01\r\n",
     b"STORED\r\n7\r\n0\r\nOK\r\nOK\r\n"),
    (b"ms m +1 T007 F+3\r\nx\r\nmg m f v\r\nma n N0 J+5 D+1 v\r\n", b"HD\r\nVA 1 f3\r\nx\r\nVA 1\r\n5\r\n"),
    # `me` wants a key and ignores flags other than a leading `b`; an opaque token is 32 bytes
    # with its `O`.
    (b"me\r\nme k v\r\n", b"CLIENT_ERROR bad command line format\r\nEN\r\n"),
    (b"mg k O" + b"1" * 32 + b"\r\nmg k O" + b"1" * 31 + b"\r\n",
     b"CLIENT_ERROR opaque token too long\r\nEN O" + b"1" * 31 + b"\r\n"),
    # md and ma give every flag they cannot read one generic line; a mode is one upper-case letter.
    (b"md k q q\r\nmd k Tx\r\nma k Dx\r\nma k MII\r\n",
     b"CLIENT_ERROR invalid or duplicate flag\r\n" * 4),
    (b"ma k Mi\r\nms k 1 Ms\r\nx\r\nms k 1 MSS\r\nx\r\nmg k Tx h h\r\n",
     b"CLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid mode for ms M token\r\n"
     b"CLIENT_ERROR incorrect length for M token\r\nCLIENT_ERROR duplicate flag\r\n"),
    # Every meta command takes every flag memcached knows and ignores those it has no use for.
    (b"ms a 1 v t f s h l u R5 J1 D1\r\nx\r\nmd a v t f s N5 R5 J1 F1 MZ\r\nmg a C5 MZ D3 J4 F1 I v\r\n",
     b"HD\r\nHD\r\nEN\r\n"),
    # A meta line takes at most 19 tokens; the refused ms block is read as a command.
    (b"mg k c f h k l O1 s t u v P L I C1 D1 J1 F1 R1\r\nms k 1 c f h k l O1 s t u v P L I C1 D1 J1 F1\r\nx\r\n",
     b"CLIENT_ERROR options flags are too long\r\nCLIENT_ERROR options flags too long\r\nERROR\r\n"),
    (b"ms m 3 q\r\nabcd\r\nmg m q q\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\nCLIENT_ERROR duplicate flag\r\n"),
]


@pytest.mark.parametrize("request_bytes, expect", REPLY_CASES, ids=[repr(case[0][:24]) for case in REPLY_CASES])
def test_replies_byte_for_byte_as_memcached(ferrite_server, memcached, request_bytes, expect):
    server = ferrite_server(memcache=True)
    assert converse(memcached, request_bytes) == expect, "memcached itself"
    assert converse(server.memcache_port, request_bytes) == expect


def test_long_line_and_binary_protocol_close_the_connection(ferrite_server):
    server = ferrite_server(memcache=True)
    reply = exchange(server, b"x" * 4096, 1 << 20)
    assert reply == b"CLIENT_ERROR line too long\r\n"
    reply = exchange(server, bytes([0x80, 0x00, 0x00, 0x05]) + b"\x00" * 20, 1 << 20)
    assert reply.startswith(b"SERVER_ERROR binary protocol is not supported")


def test_quit_after_silent_replies_from_another_shard_closes(server):
    """quit after commands whose replies are empty (noreply, meta q) but come from the other
    shard: once they are in, nothing is sent, and the connection must still close."""
    keys = [f"silent-{index}".encode() for index in range(16)]
    request = b"".join(b"set " + key + b" 0 0 1 noreply\r\nx\r\n" for key in keys)
    request += b"".join(b"mg " + key + b"-missing q\r\n" for key in keys) + b"quit\r\n"
    with socket.create_connection(("127.0.0.1", server.memcache_port), timeout=REPLY_TIMEOUT_S) as sock:
        sock.sendall(request)
        assert sock.recv(65536) == b"", "the connection stays open after quit"
    assert client(server).get_many(keys) == {key: b"x" for key in keys}


def test_split_reads_one_byte_at_a_time(server):
    request = b"set split 3 0 5\r\nhello\r\nms m 2 T0 F4\r\nhi\r\nget split\r\nmg m v f\r\nmn\r\n"
    expect = b"STORED\r\nHD\r\nVALUE split 3 5\r\nhello\r\nEND\r\nVA 2 f4\r\nhi\r\nMN\r\n"
    with socket.create_connection(("127.0.0.1", server.memcache_port), timeout=REPLY_TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in request:
            sock.sendall(bytes([byte]))
        reply = b""
        while len(reply) < len(expect):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {reply!r}"
            reply += chunk
    assert reply == expect


def test_pipelined_text_and_meta_mix(server):
    parts = []
    expect = []
    for index in range(200):
        key = f"p{index}"
        parts.append(f"set {key} {index} 0 {len(key)}\r\n{key}\r\n")
        expect.append("STORED\r\n")
        parts.append(f"mg {key} v f k q O{index}\r\n")
        expect.append(f"VA {len(key)} f{index} k{key} O{index}\r\n{key}\r\n")
        parts.append(f"mg none{index} v q\r\n")  # a quiet miss answers nothing
        parts.append(f"get {key} none{index}\r\n")
        expect.append(f"VALUE {key} {index} {len(key)}\r\n{key}\r\nEND\r\n")
        parts.append(f"ms {key} 1 q MA\r\n!\r\n")  # a quiet success answers nothing
    parts.append("mn\r\n")
    expect.append("MN\r\n")
    request, expect = "".join(parts).encode(), "".join(expect).encode()
    assert exchange(server, request, len(expect)) == expect


class Raw:
    """One connection speaking raw bytes: `ask` sends a request and reads one reply line (and the
    data block a VA / VALUE line announces)."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.memcache_port), timeout=REPLY_TIMEOUT_S)
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed; have {self.buffer!r}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def block(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            chunk = self.sock.recv(65536)
            assert chunk, "closed in a data block"
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def ask(self, request: bytes) -> bytes:
        self.sock.sendall(request)
        line = self.line()
        if line.startswith(b"VA "):
            return line + b"|" + self.block(int(line.split()[1]))
        return line


def test_meta_commands(server):
    raw = Raw(server)
    assert raw.ask(b"ms m 2 T60 F7 c\r\nhi\r\n").startswith(b"HD c")
    line = raw.ask(b"mg m v f t s c k O9\r\n")
    head, data = line.split(b"|")
    tokens = head.split()
    assert tokens[:5] == [b"VA", b"2", b"f7", b"t60", b"s2"] and data == b"hi"
    assert tokens[6:] == [b"km", b"O9"]
    cas = int(tokens[5][1:])
    assert raw.ask(b"ms m 1 ME\r\nx\r\n") == b"NS"
    assert raw.ask(b"ms m 1 MA\r\n!\r\n") == b"HD"
    assert raw.ask(b"ms m 1 MP\r\n<\r\n") == b"HD"
    assert raw.ask(b"mg m v\r\n") == b"VA 4|<hi!"
    assert raw.ask(b"ms nothere 1 MR\r\nx\r\n") == b"NS"
    assert raw.ask(f"ms m 1 C{cas}\r\nx\r\n".encode()) == b"EX"  # the appends moved the CAS on
    cas = int(raw.ask(b"mg m c\r\n").split()[1][1:])
    assert raw.ask(f"md m C{cas + 1} q\r\n".encode()) == b"EX"
    assert raw.ask(f"md m C{cas} q\r\nmn\r\n".encode()) == b"MN"  # deleted, quietly
    assert raw.ask(b"mg m v\r\n") == b"EN"
    assert raw.ask(b"ma n\r\n") == b"NF"
    assert raw.ask(b"ma n N0 J10 v\r\n") == b"VA 2|10"
    assert raw.ask(b"ma n D5 v\r\n") == b"VA 2|15"
    assert raw.ask(b"ma n MD D100 v\r\n") == b"VA 1|0"
    assert raw.ask(b"ma n M- q\r\nmn\r\n") == b"MN"
    assert raw.ask(b"ms bWs= 2 b k\r\nhi\r\n") == b"HD kbWs= b"
    assert raw.ask(b"mg mk v\r\n") == b"VA 2|hi"  # the same key, sent in base64 above
    assert raw.ask(b"me mk\r\n").startswith(b"ME mk exp=-1 la=0 cas=")
    assert raw.ask(b"me nothere\r\n") == b"EN"
    assert raw.ask(b"mg viv N30 v t\r\n") == b"VA 0 t30 W|"
    assert raw.ask(b"mg viv N30 v\r\n") == b"VA 0 Z|"  # someone is already recaching it
    assert raw.ask(b"ms m 1 E5\r\nx\r\n").startswith(b"SERVER_ERROR E (explicit CAS value) is not supported")


def test_arithmetic_takes_any_unsigned_delta(server):
    """memcached reads a delta with strtoull: every u64 is one, and incr wraps at 2^64."""
    raw = Raw(server)
    assert raw.ask(b"set n 0 0 1\r\n5\r\n") == b"STORED"
    assert raw.ask(b"incr n 18446744073709551615\r\n") == b"4"
    # The quiet ones send nothing: the reply read is the last command's.
    quiet = b"decr n 18446744073709551615 noreply\r\nincr n 18446744073709551615 noreply\r\n"
    assert raw.ask(quiet + b"decr n 1\r\n") == b"18446744073709551614"
    assert raw.ask(b"ma n D18446744073709551615 v\r\n") == b"VA 20|18446744073709551613"
    assert raw.ask(b"ma n MD D18446744073709551615 q\r\nmn\r\n") == b"MN"
    assert raw.ask(b"get n\r\n") == b"VALUE n 0 1"


def test_touching_reads_with_a_past_exptime_return_the_hit(server):
    """memcached fetches the item, then sets its exptime: the read is a hit, the next one a miss."""
    raw = Raw(server)
    for read in (b"gat -1 k\r\n", b"gats -1 k\r\n"):
        assert raw.ask(b"set k 5 0 1\r\nv\r\n") == b"STORED"
        assert raw.ask(read).startswith(b"VALUE k 5 1")
        assert raw.line() == b"v" and raw.line() == b"END"
        assert raw.ask(b"get k\r\n") == b"END"
    assert raw.ask(b"ms k 1\r\nv\r\n") == b"HD"
    assert raw.ask(b"mg k T-1 v\r\n") == b"VA 1|v"
    assert raw.ask(b"mg k v\r\n") == b"EN"


def cas_of(raw, key: bytes) -> int:
    """The CAS `me` reports: it looks without counting a fetch or taking a win token."""
    line = raw.ask(b"me " + key + b"\r\n")
    return int(next(token for token in line.split() if token.startswith(b"cas="))[4:])


def test_meta_stale_items_and_win_tokens(server):
    """memcached's invalidate-and-recache protocol, over keys on both shards."""
    readers = [Raw(server) for _ in range(3)]
    raw = readers[0]
    for index in range(20):
        key = f"stale{index}".encode()
        assert raw.ask(b"ms " + key + b" 3 T100\r\nold\r\n") == b"HD"
        assert raw.ask(b"mg " + key + b" h l\r\n") == b"HD h0 l0"
        assert raw.ask(b"mg " + key + b" h\r\n") == b"HD h1"
        before = cas_of(raw, key)
        assert raw.ask(b"md " + key + b" I T30\r\n") == b"HD"
        stale = cas_of(raw, key)
        assert stale != before
        # One of the concurrent readers wins the right to recache; the others see Z.
        replies = [reader.ask(b"mg " + key + b" v t\r\n") for reader in readers]
        assert replies[0] == b"VA 3 t30 X W|old"
        assert replies[1:] == [b"VA 3 t30 Z X|old"] * 2
        # The winner stores the new value under the stale CAS: a plain item again.
        assert raw.ask(b"ms " + key + f" 3 I C{stale}\r\nnew\r\n".encode()) == b"HD"
        assert readers[1].ask(b"mg " + key + b" v\r\n") == b"VA 3|new"
        # A late writer holding the CAS from before the invalidation stores stale, not fresh.
        assert raw.ask(b"ms " + key + f" 3 I C{before}\r\nlag\r\n".encode()) == b"HD"
        assert readers[2].ask(b"mg " + key + b" v\r\n") == b"VA 3 X W|lag"


def test_meta_compare_cas_remove_value_and_recache(server):
    raw = Raw(server)
    assert raw.ask(b"ms n 1 F3 T100\r\n5\r\n") == b"HD"
    cas = cas_of(raw, b"n")
    assert raw.ask(f"ma n C{cas + 1} v\r\n".encode()) == b"EX"
    assert raw.ask(f"ma n C{cas} v\r\n".encode()) == b"VA 1|6"
    cas = cas_of(raw, b"n")
    assert raw.ask(f"ms n 1 MA C{cas + 1}\r\n!\r\n".encode()) == b"EX"
    assert raw.ask(f"ms n 1 MA C{cas}\r\n!\r\n".encode()) == b"HD"
    assert raw.ask(b"mg n v\r\n") == b"VA 2|6!"
    assert raw.ask(b"md n x C1\r\n") == b"EX"
    assert raw.ask(b"md n x\r\n") == b"HD"
    assert raw.ask(b"mg n v f t\r\n") == b"VA 0 f0 t-1|"  # a new empty item: no TTL without T
    assert raw.ask(b"ms n 1 T100\r\n5\r\n") == b"HD"
    assert raw.ask(b"md n I x T30\r\n") == b"HD"
    assert raw.ask(b"mg n v t\r\n") == b"VA 0 t30 X W|"  # emptied and stale
    assert raw.ask(b"md nothere x\r\n") == b"NF"
    assert raw.ask(b"ms r 1 T20\r\nv\r\n") == b"HD"
    assert raw.ask(b"mg r R10\r\n") == b"HD"
    assert raw.ask(b"mg r R30\r\n") == b"HD W"
    assert raw.ask(b"mg r R30\r\n") == b"HD Z"
    # memcached counts an mg that sets a TTL as a touch.
    touches = int(client(server).stats()[b"cmd_touch"])
    assert raw.ask(b"mg r T30\r\n") == b"HD Z"
    assert int(client(server).stats()[b"cmd_touch"]) == touches + 1


def test_flush_all_with_a_delay(server):
    mc = client(server)
    mc.set("delayed", b"v", noreply=False)
    assert mc.flush_all(delay=2, noreply=False)
    assert mc.get("delayed") == b"v"
    deadline = time.monotonic() + 10
    while mc.get("delayed") is not None:
        assert time.monotonic() < deadline, "the delayed flush never happened"
        time.sleep(0.1)


def test_memcached_tool_reads_stats(ferrite_server):
    tool = Path("/usr/share/memcached/scripts/memcached-tool")
    if not tool.exists():
        pytest.fail(f"{tool} not found: install memcached (scripts/setup.sh --test)")
    server = ferrite_server("--threads", "2", memcache=True)
    mc = client(server)
    mc.set_many({f"tool:{index}": b"x" * 100 for index in range(50)}, noreply=False)
    address = f"127.0.0.1:{server.memcache_port}"

    def tool_output(mode):
        done = subprocess.run(["perl", str(tool), address, mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "uninitialized" not in done.stderr, done.stdout + done.stderr
        return done.stdout

    display = tool_output("display").splitlines()
    assert display[0].split()[:3] == ["#", "Item_Size", "Max_age"]
    assert display[1].split()[0] == "1" and display[1].split()[4] == "50", display
    stats = dict(line.split()[:2] for line in tool_output("stats").splitlines()[1:])
    assert stats["curr_items"] == "50" and stats["total_items"] == "50"
    settings = dict(line.split()[:2] for line in tool_output("settings").splitlines()[1:])
    assert settings["cas_enabled"] == "yes" and int(settings["maxbytes"]) > 0


def general_stats(port) -> dict:
    reply = converse(port, b"stats\r\n").decode()
    lines = reply.split("\r\n")
    assert lines[-2:] == ["END", ""], reply
    return {name: value for _, name, value in (line.split(" ", 2) for line in lines[:-2])}


def test_stats_reset_zeroes_the_counters_as_memcached_does(server, memcached):
    counted = ["cmd_get", "cmd_set", "get_hits", "get_misses", "total_items"]
    for port in [memcached, server.memcache_port]:
        assert converse(port, b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\n") == b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nEND\r\n"
        before = general_stats(port)
        assert [before[name] for name in counted] == ["2", "1", "1", "1", "1"], f"port {port}: {before}"
        assert converse(port, b"stats reset\r\n") == b"RESET\r\n"
        after = general_stats(port)
        assert [after[name] for name in counted] == ["0"] * len(counted), f"port {port}: {after}"
        assert after["curr_items"] == "1"  # the items stay


def test_hit_and_miss_counters_as_memcached_counts_them(server, memcached):
    script = (b"set a 0 0 1\r\n5\r\nincr a 1\r\nincr b 1\r\ndecr a 1\r\ndecr b 1\r\n"
              b"cas a 0 0 1 18446744073709551615\r\nx\r\ncas b 0 0 1 1\r\nx\r\n"
              b"touch a 100\r\ntouch b 100\r\ngat 100 a b\r\nmg a T10\r\nmg b T10\r\n"
              b"get a b\r\ngets a\r\nmg a v\r\nmg b v\r\n"
              b"delete a\r\ndelete a\r\nms m 1\r\nx\r\nmd m\r\nmd m\r\n"
              b"ma n\r\nms n 1\r\n5\r\nma n\r\nma n MD\r\nms n 1 C18446744073709551615\r\n7\r\nincr a 1 noreply\r\n"
              b"ma v N0\r\nma v N0\r\n")
    expect = {"delete_misses": "2", "delete_hits": "2", "incr_misses": "3", "incr_hits": "3",
              "decr_misses": "1", "decr_hits": "2", "cas_misses": "1", "cas_hits": "1", "cas_badval": "2",
              "touch_hits": "3", "touch_misses": "2", "get_hits": "4", "get_misses": "3",
              "cmd_get": "7", "cmd_touch": "5"}
    for port in [memcached, server.memcache_port]:
        converse(port, script)
        cas = converse(port, b"gets n\r\n").split(b"\r\n")[0].split()[-1]
        assert converse(port, b"cas n 0 0 1 " + cas + b"\r\n8\r\n") == b"STORED\r\n"
        stats = general_stats(port)
        assert {name: stats.get(name) for name in expect} == expect, f"port {port}"
