"""The raw-SQLite floor `make bench` runs beside Redis and Redlite
(server/examples/sqlite_floor.rs): it must answer as Redis does for what it serves, and
reply to a write only once it is committed, or its ratios would flatter SQLite."""

import os
import socket
import sqlite3
import subprocess

import pytest

from conftest import ROOT, free_port, wait_for_port

# `cargo test --release --workspace` (make test) builds the examples; `make floor` copies
# this one to dist/sqlite-floor.
FLOOR = os.path.join(ROOT, "target", "release", "examples", "sqlite_floor")


@pytest.fixture
def floor(tmp_path):
    assert os.path.exists(FLOOR), f"{FLOOR} is missing: run `make test` or `make floor`"
    port = free_port()
    proc = subprocess.Popen(
        [FLOOR, "--port", str(port), "--dir", str(tmp_path), "--dbfilename", "floor.db",
         "--appendfsync", "always"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield port, str(tmp_path / "floor.db")
    finally:
        proc.kill()
        proc.wait()


def resp(*args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def exchange(sock: socket.socket, data: bytes, expect: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(expect):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_floor_answers_set_and_get_as_redis_does(floor):
    port, _ = floor
    with socket.create_connection(("127.0.0.1", port)) as s:
        # Replies as Debian's redis-server gives them for the same requests.
        assert exchange(s, resp(b"SET", b"k", b"v1"), b"+OK\r\n") == b"+OK\r\n"
        assert exchange(s, resp(b"GET", b"k"), b"$2\r\nv1\r\n") == b"$2\r\nv1\r\n"
        assert exchange(s, resp(b"GET", b"nokey"), b"$-1\r\n") == b"$-1\r\n"
        assert exchange(s, resp(b"PING"), b"+PONG\r\n") == b"+PONG\r\n"
        # A pipeline, split mid-request: replies in order, the GET sees the SET before it.
        data = resp(b"SET", b"k", b"v2") + resp(b"GET", b"k") + resp(b"SET", b"x", b"\x00\xff")
        want = b"+OK\r\n$2\r\nv2\r\n+OK\r\n"
        s.sendall(data[:7])
        assert exchange(s, data[7:], want) == want


def test_floor_replies_to_a_write_after_its_commit(floor):
    port, path = floor
    with socket.create_connection(("127.0.0.1", port)) as s:
        for i in range(50):
            value = b"value-%d" % i
            assert exchange(s, resp(b"SET", b"key", value), b"+OK\r\n") == b"+OK\r\n"
            # Another connection to the file sees the write as soon as it is answered.
            db = sqlite3.connect(path)
            try:
                assert db.execute("SELECT v FROM kv WHERE k = ?", (b"key",)).fetchone() == \
                    (value,)
            finally:
                db.close()
