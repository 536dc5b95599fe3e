"""Fixtures that run the real `ferrite` binary on a free loopback port and stop it by PID.

The binary is target/release/ferrite (scripts/test.sh builds it first), or $FERRITE_BIN.
Use `ferrite_server(*flags)` for a server with extra flags; it is stopped with SIGTERM at the end
of the test and must exit 0.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 15


def ferrite_binary() -> str:
    path = os.environ.get("FERRITE_BIN", str(REPO / "target" / "release" / "ferrite"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: build it first with `cargo build --release -p datapath`")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Ferrite:
    """A running ferrite: `port` (RESP), `memcache_port` (0 when off), `pid`, `log()`."""

    def __init__(self, flags, resp=True, memcache=False):
        self.port = free_port() if resp else 0
        # Two probes in a row may get the same port back; with SO_REUSEPORT both listeners would
        # then share it and the kernel would split connections between the protocols.
        self.memcache_port = free_port() if memcache else 0
        while memcache and self.memcache_port == self.port:
            self.memcache_port = free_port()
        self.log_file = tempfile.NamedTemporaryFile(prefix="ferrite-", suffix=".log", delete=False)
        arguments = [ferrite_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
                     "--memcache-port", str(self.memcache_port), "--memory", "64MiB", *flags]
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                        stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self._wait_listening(self.port or self.memcache_port)

    def _wait_listening(self, port):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"ferrite exited with {self.process.returncode}; log:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.01)
        pytest.fail(f"ferrite did not listen on {port} within {START_TIMEOUT_S} s; log:\n{self.log()}")

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"ferrite did not stop within {STOP_TIMEOUT_S} s of SIGTERM; log:\n{self.log()}")
        return self.process.returncode


@pytest.fixture
def ferrite_server():
    started = []

    def start(*flags, resp=True, memcache=False):
        server = Ferrite(list(flags), resp=resp, memcache=memcache)
        started.append(server)
        return server

    yield start
    for server in started:
        code = server.stop()
        log = server.log()
        os.unlink(server.log_file.name)
        assert code == 0, f"ferrite exited with {code} after SIGTERM; log:\n{log}"
