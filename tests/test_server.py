"""redlite-server against real Redis, and with real clients.

- Differential: every step of tests/scripts/*.redis goes to a real redis-server and to
  redlite-server over raw RESP, in RESP2 and in RESP3 (after HELLO 3); the replies must
  be the same bytes once parsed. tests/allowlist.txt lists deliberate differences.
- redis-py (connection pool, pipeline, RESP3), redis-cli and redis-benchmark smoke runs.
- Mixed use: the extension in another process and the server share one file.
"""

import os
import sqlite3
import subprocess
import time

import pytest

import resp
from conftest import (EXT, SCRIPTS, needs_version, script_files, skip_if_newer_than,
                      start_redlite, stop)

ALLOWLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "allowlist.txt")


def allowed():
    out = {}
    for line in open(ALLOWLIST, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            where, _, why = line.partition(" ")
            assert why.strip(), f"allowlist entry without a reason: {line}"
            out[where] = why.strip()
    return out


def run_both(redis_port, redlite_port, name, proto):
    real, ours = resp.Conn(redis_port), resp.Conn(redlite_port)
    for c in (real, ours):
        if proto == 3:
            assert not isinstance(c.command("HELLO", "3"), resp.RespError)
        c.command("FLUSHALL")
    diffs = {}
    for n, cmd, _, unordered in resp.parse_script(f"{SCRIPTS}/{name}"):
        args = resp.split(cmd)
        want = resp.render_step(real.command(*args), unordered)
        got = resp.render_step(ours.command(*args), unordered)
        if got != want:
            diffs[f"{name}:{n}"] = f"{cmd}\n  redis   {want}\n  redlite {got}"
    real.close()
    ours.close()
    return diffs


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name", script_files())
def test_server_matches_real_redis(redis_port, redlite_server, name, proto):
    skip_if_newer_than(redis_port, name)
    diffs = run_both(redis_port, redlite_server[0], name, proto)
    allow = allowed()
    unexpected = [d for where, d in diffs.items() if where not in allow]
    assert not unexpected, "\n".join(unexpected)


def test_allowlist_entries_still_differ(redis_port, redlite_server):
    allow = allowed()
    diffs = {}
    for name in script_files():
        if needs_version(name) > (0, 0):
            continue  # replayed against the real server only when it is new enough
        for proto in (2, 3):
            diffs.update(run_both(redis_port, redlite_server[0], name, proto))
    stale = [w for w in allow if w not in diffs]
    assert not stale, f"allowlist entries that no longer differ: {stale}"


@pytest.mark.parametrize("name", [f for f in script_files() if needs_version(f) > (0, 0)])
def test_newer_redis_scripts_against_redlite(redlite_server, name):
    """Scripts of behaviour newer than Debian's redis-server: redlite-server must reply as
    the file says (RESP2), the expectations being written from Redis's source and docs."""
    ours = resp.Conn(redlite_server[0])
    ours.command("FLUSHALL")
    mismatches = resp.replay(ours, f"{SCRIPTS}/{name}", name, "redlite")
    ours.close()
    assert not mismatches, "\n".join(mismatches)


def raw_replies(port, commands):
    """The exact bytes of the replies to `commands` (lists of str), sent one by one."""
    import socket
    import time
    out = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        for args in commands:
            s.sendall(b"*%d\r\n" % len(args) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
            time.sleep(0.05)
            s.settimeout(2)
            out.append(s.recv(65536))
    return out


def test_zrank_withscore_reply_bytes(redlite_server):
    """Redis 7.2's shapes (t_zset.c zrankGenericCommand): [rank, score] with the score a
    bulk string in RESP2 and a double in RESP3; a missing member is a null array, `*-1`
    in RESP2, `_` in RESP3, where without WITHSCORE it is a null bulk string."""
    got = raw_replies(redlite_server[0], [
        ["SELECT", "3"], ["FLUSHDB"], ["ZADD", "z", "1.5", "a", "2", "b"],
        ["ZRANK", "z", "b", "WITHSCORE"], ["ZREVRANK", "z", "b", "WITHSCORE"],
        ["ZRANK", "z", "nope", "WITHSCORE"], ["ZRANK", "z", "nope"],
        ["HELLO", "3"],
        ["ZRANK", "z", "a", "WITHSCORE"], ["ZRANK", "z", "nope", "WITHSCORE"],
        ["ZRANK", "z", "nope"],
    ])
    assert got[3] == b"*2\r\n:1\r\n$1\r\n2\r\n"
    assert got[4] == b"*2\r\n:0\r\n$1\r\n2\r\n"
    assert got[5] == b"*-1\r\n"
    assert got[6] == b"$-1\r\n"
    assert got[8] == b"*2\r\n:0\r\n,1.5\r\n"
    assert got[9] == b"_\r\n"
    assert got[10] == b"_\r\n"


def test_redis_py_client(redlite_server):
    redis = pytest.importorskip("redis")
    port, _ = redlite_server
    for protocol in (2, 3):
        r = redis.Redis(port=port, protocol=protocol, db=2)
        r.flushdb()
        assert r.set("a", 1) is True
        assert r.incr("a") == 2
        assert r.get("a") == b"2"
        assert r.set("b", "x", ex=100) is True
        assert 99 <= r.ttl("b") <= 100
        assert r.mget("a", "b", "c") == [b"2", b"x", None]
        pipe = r.pipeline(transaction=False)
        for i in range(100):
            pipe.incr("counter")
        assert pipe.execute()[-1] == 100
        with pytest.raises(redis.ResponseError, match="value is not an integer"):
            r.incr("b")
        assert sorted(r.keys("*")) == [b"a", b"b", b"counter"]
        assert r.dbsize() == 3
        info = r.info()
        assert info["redis_version"] and "arch_bits" in info
        r.close()
    pool = redis.ConnectionPool(port=port, db=3, max_connections=8)
    clients = [redis.Redis(connection_pool=pool) for _ in range(8)]
    for i, c in enumerate(clients):
        c.set(f"k{i}", i)
    assert [int(clients[0].get(f"k{i}")) for i in range(8)] == list(range(8))
    pool.disconnect()


def test_redis_cli_smoke(redlite_server):
    port = str(redlite_server[0])
    cli = ["redis-cli", "-p", port]
    run = lambda *a: subprocess.run(cli + list(a), capture_output=True, text=True, timeout=30)
    assert run("SET", "cli:k", "v").stdout.strip() == "OK"
    assert run("GET", "cli:k").stdout.strip() == "v"
    hello = run("-3", "HELLO", "3").stdout
    assert "proto" in hello and "3" in hello
    # Not a terminal, so redis-cli prints the error text bare.
    assert run("INCR", "cli:k").stdout.strip() == "ERR value is not an integer or out of range"


def test_redis_benchmark_smoke(redlite_server):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(redlite_server[0]), "-q", "-t", "set,get,incr", "-P", "16",
         "-n", "5000", "-c", "10"],
        capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "WARNING" not in text and "ERROR" not in text.upper().replace("ERRORS", ""), text
    for test in ("SET", "GET", "INCR"):
        assert f"{test}: " in text, text


def test_extension_and_server_share_the_file(redlite_server):
    port, path = redlite_server
    c = resp.Conn(port)
    assert c.command("SELECT", "5") == "OK"
    assert c.command("SET", "from:server", "1") == "OK"
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.enable_load_extension(True)
    conn.load_extension(EXT)
    conn.execute("SELECT redis_select(5)")
    assert conn.execute("SELECT redis_get('from:server')").fetchone()[0] == "1"
    conn.execute("SELECT redis_set('from:extension', 'yes')")
    conn.execute("SELECT redis_incr('from:server')")
    assert c.command("GET", "from:extension") == b"yes"
    assert c.command("GET", "from:server") == b"2"
    # And plain sqlite3 sees what the server wrote, through the views.
    rows = subprocess.run(
        ["sqlite3", path, "SELECT key, value FROM redis_strings WHERE db = 5 ORDER BY key"],
        capture_output=True, text=True, timeout=30).stdout.split()
    assert rows == ["from:extension|yes", "from:server|2"]
    conn.close()
    c.close()


def test_reads_see_every_acknowledged_write(redlite_server):
    # Fast reads run on the connection's own thread with a connection of that thread's
    # (not the reader pool): each must still see every write acknowledged before it,
    # from any client, with or without pipelining.
    port, _ = redlite_server
    a, b = resp.Conn(port), resp.Conn(port)
    for c in (a, b):
        assert c.command("SELECT", "7") == "OK"
    a.command("DEL", "seen:n", "seen:h")
    for i in range(1, 301):
        assert a.command("INCR", "seen:n") == i
        assert b.command("GET", "seen:n") == str(i).encode()
        assert a.command("HSET", "seen:h", f"f{i}", i) == 1
        assert b.command("HLEN", "seen:h") == i
    b.send_raw(resp.encode(("GET", "seen:n")) + resp.encode(("HGET", "seen:h", "f300"))
               + resp.encode(("EXISTS", "seen:n", "seen:h", "nope")))
    assert [b.read_reply() for _ in range(3)] == [b"300", b"300", 2]
    a.close()
    b.close()


def test_clients_on_different_io_threads_see_each_other(tmp_path):
    """With `io-threads 2` connections alternate between two threads; what one client
    does reaches clients on the other: a blocked pop, a subscription, WATCH, CLIENT KILL."""
    port, proc = start_redlite(tmp_path, "--io-threads", "2")
    try:
        a, b = resp.Conn(port), resp.Conn(port)  # the 1st and 2nd clients: one per thread
        assert a.command("CONFIG", "GET", "io-threads") == [b"io-threads", b"2"]
        # A pop blocked on one thread is served by a push from the other.
        a.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n5\r\n")
        time.sleep(0.2)
        assert b.command("LPUSH", "q", "x") == 1
        assert a.read_reply() == [b"q", b"x"]
        # A published message crosses threads.
        sub = resp.Conn(port)  # the 3rd client: back on the first thread
        assert sub.command("SUBSCRIBE", "ch") == [b"subscribe", b"ch", 1]
        assert b.command("PUBLISH", "ch", "hi") == 1
        assert sub.read_reply() == [b"message", b"ch", b"hi"]
        # WATCH sees a write made on the other thread.
        c = resp.Conn(port)  # the 4th: second thread
        assert a.command("WATCH", "w") == "OK"
        assert c.command("SET", "w", "1") == "OK"
        assert a.command("MULTI") == "OK"
        assert a.command("SET", "w", "2") == "QUEUED"
        assert a.command("EXEC") is None
        # CLIENT KILL of a client on the other thread closes it.
        cid = c.command("CLIENT", "ID")
        assert a.command("CLIENT", "KILL", "ID", str(cid)) == 1
        time.sleep(0.2)
        with pytest.raises((ConnectionError, OSError, EOFError)):
            c.command("PING")
    finally:
        stop(proc)


def test_history_recorded_by_group_commits(tmp_path):
    # Four clients pipeline SETs to three shared keys, with a failing INCR in each batch
    # and a MULTI/EXEC whose middle command fails, while history keeps the newest 5
    # entries of every key. The writer records inside its group-commit transactions, so
    # each entry's number (seq) must still be its version: one per acknowledged write,
    # none lost, none repeated, none from a failed command.
    port, proc = start_redlite(tmp_path)
    try:
        admin = resp.Conn(port)
        assert admin.command("HISTORY", "ENABLE", "GLOBAL", "RETENTION", "COUNT", "5") == "OK"
        assert admin.command("SET", "text", "not a number") == "OK"
        clients = [resp.Conn(port) for _ in range(4)]
        sets = {"k0": 0, "k1": 0, "k2": 0}
        for rnd in range(25):
            for c, conn in enumerate(clients):
                batch = []
                for i in range(8):
                    key = f"k{(rnd + c + i) % 3}"
                    batch.append(("SET", key, f"r{rnd}c{c}i{i}"))
                    sets[key] += 1
                batch.insert(4, ("INCR", "text"))
                conn.send_raw(b"".join(resp.encode(cmd) for cmd in batch))
            for conn in clients:
                replies = [conn.read_reply() for _ in range(9)]
                assert str(replies[4]) == "ERR value is not an integer or out of range"
                assert [r for i, r in enumerate(replies) if i != 4] == ["OK"] * 8
        tx = clients[0]
        for cmd in (("MULTI",), ("SET", "k1", "in-multi-1"), ("INCR", "text"),
                    ("SET", "k1", "in-multi-2")):
            tx.command(*cmd)
        executed = tx.command("EXEC")
        assert executed[0] == "OK" and executed[2] == "OK"
        assert isinstance(executed[1], resp.RespError)
        sets["k1"] += 2
        for key, n in sets.items():
            entries = admin.command("HISTORY", "GET", key)
            assert len(entries) == 5, key
            versions = [dict(zip(e[::2], e[1::2]))[b"version"] for e in entries]
            assert versions == list(range(n, n - 5, -1)), key
        assert admin.command("GET", "k1") == b"in-multi-2"
        for conn in clients + [admin]:
            conn.close()
    finally:
        stop(proc)
    db = sqlite3.connect(str(tmp_path / "redlite.db"))
    rows = db.execute("SELECT key, seq, version FROM redlite_history WHERE key != 'text'").fetchall()
    db.close()
    assert len(rows) == 15
    assert all(seq == version for _, seq, version in rows), rows
