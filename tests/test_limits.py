"""Hostile clients against redlite-server: huge declared lengths from many stalled
connections, unauthenticated limits, oversized requests. Each gets Redis's answer, the
server's memory stays bounded, and other clients keep working."""

import socket
import time

import resp
from conftest import start_redlite, stop


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_stalled_huge_headers_do_not_allocate(tmp_path):
    port, proc = start_redlite(tmp_path)
    try:
        probe = resp.Conn(port)
        assert probe.command("PING") == "PONG"
        before = rss_kb(proc.pid)
        socks = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            # Half declare a 2^31-1 argument command, half a 512 MiB bulk; then stall.
            s.sendall(b"*2147483647\r\n" if i % 2 else b"*1\r\n$536870912\r\nxx")
            socks.append(s)
        time.sleep(1.0)
        assert probe.command("SET", "still", "alive") == "OK"
        grown_mib = (rss_kb(proc.pid) - before) / 1024
        for s in socks:
            s.close()
        assert grown_mib < 64, f"RSS grew {grown_mib:.1f} MiB for 1,000 stalled clients"
        assert probe.command("GET", "still") == b"alive"
    finally:
        stop(proc)


def test_unauthenticated_clients_get_smaller_limits(tmp_path):
    port, proc = start_redlite(tmp_path, "--requirepass", "secret")
    try:
        for payload, error in [
            (b"*11\r\n", b"-ERR Protocol error: unauthenticated multibulk length\r\n"),
            (b"*1\r\n$16385\r\n", b"-ERR Protocol error: unauthenticated bulk length\r\n"),
        ]:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(payload)
            assert s.recv(1024) == error
            assert s.recv(1024) == b"", "the connection is closed after a protocol error"
            s.close()
        c = resp.Conn(port)
        assert str(c.command("GET", "k")) == "NOAUTH Authentication required."
        assert c.command("AUTH", "secret") == "OK"
        assert c.command("SET", "k", "x" * 100000) == "OK"
    finally:
        stop(proc)


def test_big_mset_and_protocol_errors_leave_others_working(tmp_path):
    port, proc = start_redlite(tmp_path)
    try:
        other = resp.Conn(port)
        c = resp.Conn(port)
        args = ["MSET"]
        for i in range(10000):
            args += [f"k{i}", str(i)]
        assert c.command(*args) == "OK"
        assert c.command("GET", "k9999") == b"9999"
        bad = socket.create_connection(("127.0.0.1", port), timeout=5)
        bad.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n")
        assert bad.recv(1024) == b"-ERR Protocol error: expected '$', got 'f'\r\n"
        flood = socket.create_connection(("127.0.0.1", port), timeout=5)
        flood.sendall(b"a" * (70 * 1024))
        assert flood.recv(1024) == b"-ERR Protocol error: too big inline request\r\n"
        assert other.command("DBSIZE") == 10000
    finally:
        stop(proc)


def test_integer_and_size_edges(tmp_path):
    port, proc = start_redlite(tmp_path)
    try:
        c = resp.Conn(port)
        checks = [
            (["SETRANGE", "s", "536870912", "x"], "ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            (["SET", "n", "9223372036854775807"], "OK"),
            (["INCR", "n"], "ERR increment or decrement would overflow"),
            (["SADD", "set", "a"], 1),
            (["SRANDMEMBER", "set", "-9223372036854775808"],
             "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            (["ZADD", "z", "1", "a"], 1),
            (["ZRANDMEMBER", "z", "-9223372036854775808"],
             "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            (["HSET", "h", "f", "v"], 1),
            (["HRANDFIELD", "h", "-9223372036854775808"],
             "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            (["SET", "k", "v", "EX", "0"], "ERR invalid expire time in 'set' command"),
            (["RPUSH", "l", "a", "b"], 2),
            (["LRANGE", "l", "-9223372036854775808", "9223372036854775807"], [b"a", b"b"]),
        ]
        for args, want in checks:
            got = c.command(*args)
            got = str(got) if isinstance(got, resp.RespError) else got
            assert got == want, (args, got)
        t0 = time.monotonic()
        c.command("SET", "a" * 5000, "v")
        assert c.command("KEYS", "a*" * 50 + "b") == []
        assert time.monotonic() - t0 < 1.0
    finally:
        stop(proc)


def test_protected_mode_denies_non_local_peers_like_redis(redis_port, tmp_path):
    """Redis treats only 127.0.0.1 and ::1 as local; a client bound to 127.0.0.2 is
    'external' and gets the DENIED text, then the connection closes."""
    def from_127_0_0_2(port):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.settimeout(5)
        s.sendall(b"PING\r\n")
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:  # Redis closes with a reset after the reply
                break
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    # Redis resets the connection right after its reply, which can race the reply away:
    # ask until the text arrives.
    for _ in range(10):
        want = from_127_0_0_2(redis_port)
        if want:
            break
    assert want.startswith(b"-DENIED Redis is running in protected mode")
    port, proc = start_redlite(tmp_path)
    try:
        assert from_127_0_0_2(port) == want
        assert resp.Conn(port).command("PING") == "PONG"  # 127.0.0.1 is still fine
    finally:
        stop(proc)
    port, proc = start_redlite(tmp_path, "--requirepass", "pw")
    try:
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"PING\r\n")
        s.settimeout(5)
        assert s.recv(1024) == b"-NOAUTH Authentication required.\r\n"
        s.close()
    finally:
        stop(proc)
