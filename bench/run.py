#!/usr/bin/env python3
"""`make bench`: Redlite against its anchors, side by side in one run, into BENCHMARKS.md.

- Server: redis-benchmark against a real redis-server and against redlite-server, both on
  loopback, both started here with matching durability (Redis `appendonly no` vs ours
  `appendfsync no`; AOF `everysec` vs `everysec`; AOF `always` vs `always`). Rounds are
  interleaved (Redis, Redlite, Redis, Redlite, ...) and each number is the median of the
  rounds; the ratio Redlite/Redis is what to read on a shared, noisy machine.
- Embedded: `cargo bench --bench embedded` (Rust, the core's SQL functions against raw
  SQLite statements) and the same from Python's sqlite3 with the built extension.
- Scale: GET/SET latency and on-disk size at 10^5 and 10^6 keys (10^7 with
  BENCH_SCALE=full), and resident memory of both servers holding the same keys.

Environment: BENCH_ROUNDS (default 3), BENCH_N (requests per test at -P 1, default 50000:
20,000 ran for about 0.3 s at -P 1, short enough for one stall of this shared machine to
move a ratio;
five times as many at -P 16, so that a pipelined run of Redis lasts long enough to time),
BENCH_QUICK=1 (one durability mode, fewer tests: a smoke run), BENCH_SECTIONS (a comma
list of embedded, python, server, scale; default all).
"""

import csv
import io
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "dist", "redlite-server")
# One thread serving SET and GET as raw SQLite statements on one table, a transaction per
# event-loop turn (server/examples/sqlite_floor.rs; `make floor`).
FLOOR = os.path.join(ROOT, "dist", "sqlite-floor")
# The tests the floor serves.
FLOOR_TESTS = ("set", "get")
EXT = os.path.join(ROOT, "dist", "libredlite")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_N", "50000"))
# Requests per test at -P 16: Redis answers 20,000 pipelined GETs in about 20 ms, which
# is mostly the 50 connections' setup.
N_PIPELINED = 5 * N
QUICK = os.environ.get("BENCH_QUICK") == "1"
TESTS = "set,get,incr,lpush,rpop,sadd,hset,zadd,lrange_100,mset,xadd"
# Debian's redis-benchmark (7.0) has no built-in xadd test and skips the name without a
# word: XADD runs as a command of its own, an auto id and a random field value.
XADD = ["XADD", "mystream", "*", "myfield", "__rand_int__"]
# redis-benchmark's SET writes the same bytes every time, and SQLite does not write a
# cell whose new content equals the old, which hides the cost of writing the value. This
# row writes a value that changes (on the same keys as the SET test).
SET_NEW = ["SET", "key:__rand_int__", "__rand_int__"]
SET_NEW_NAME = "SET (a new value each time)"
MODES = [("no", "no"), ("everysec", "everysec"), ("always", "always")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server on {port}")


def start_redis(workdir, fsync):
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", workdir, "--appendonly", "no" if fsync == "no" else "yes"]
    if fsync != "no":
        args += ["--appendfsync", fsync]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return port, proc


def start_redlite(workdir, fsync):
    port = free_port()
    proc = subprocess.Popen(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--dbfilename", "bench.db", "--appendfsync", fsync],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return port, proc


def start_floor(workdir, fsync):
    port = free_port()
    proc = subprocess.Popen(
        [FLOOR, "--port", str(port), "--dir", workdir, "--dbfilename", "floor.db",
         "--appendfsync", fsync],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return port, proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def redis_benchmark(port, tests, pipeline, n=N):
    base = ["redis-benchmark", "-p", str(port), "-n", str(n), "-c", "50",
            "-P", str(pipeline), "-r", "100000", "--csv"]
    names = tests.split(",")
    runs = [(base + ["-t", ",".join(t for t in names if t != "xadd")], None)]
    if "xadd" in names:
        runs.append((base + XADD, "XADD"))
    if "set" in names:
        runs.append((base + SET_NEW, SET_NEW_NAME))
    rows = {}
    for argv, name in runs:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        for row in csv.DictReader(io.StringIO(out.stdout)):
            rows[name or row["test"]] = float(row["rps"])
    return rows


def memory_kb(pid):
    """(VmRSS, RssAnon) in KiB. RssAnon is memory the process owns (heap, SQLite's page
    caches); the rest of RSS is file pages mapped in (SQLite's mmap of the database),
    which the kernel can drop and reread at any time."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


def server_section(out):
    modes = MODES[:1] if QUICK else MODES
    tests = "set,get" if QUICK else TESTS
    out.append("## Server: redis-benchmark, Redlite / Redis\n")
    builtin = ",".join(t for t in tests.split(",") if t != "xadd")
    xadd = (f", and `{' '.join(XADD)}` the same way (Debian's redis-benchmark has no xadd "
            "test)") if "xadd" in tests.split(",") else ""
    xadd += (f", and `{' '.join(SET_NEW)}` (\"{SET_NEW_NAME}\": the SET test writes the same "
             "bytes every time, which SQLite does not write again)"
             ) if "set" in tests.split(",") else ""
    out.append(f"`redis-benchmark -t {builtin} -n <n> -c 50 -P <p> -r 100000 --csv`{xadd}, "
               f"n = {N:,} at -P 1 and {N_PIPELINED:,} at -P 16, "
               f"{ROUNDS} interleaved rounds, medians of requests/s.\n")
    floor_tests = ",".join(t for t in tests.split(",") if t in FLOOR_TESTS)
    if floor_tests:
        out.append(
            "The SQLite floor (`dist/sqlite-floor`, server/examples/sqlite_floor.rs) runs the "
            f"{floor_tests.upper().replace(',', ' and ')} rows in the same rounds: one thread "
            "that parses RESP and runs each request as raw SQLite on one `WITHOUT ROWID` "
            "table (a SET's UPDATE, and an INSERT for a new key; a GET's SELECT), one "
            "transaction per turn of its event loop, replies after the COMMIT, stock SQLite "
            "with the same `synchronous` (no fsync at all for `everysec`), checkpoints on a "
            "second thread. No types, expiry, versions or history: where Redlite's ratio is "
            "near the floor's, the rest of the distance to Redis is SQLite's. In the SET row "
            "the floor writes nothing when a key already holds the same bytes (SQLite skips "
            "an identical cell); Redlite cannot skip it, since every SET counts as a "
            "modification for WATCH. The row with a new value each time compares the same "
            "work.\n")
    servers = [("redis", start_redis, tests), ("redlite", start_redlite, tests)]
    if floor_tests:
        servers.append(("floor", start_floor, floor_tests))
    for fsync, _ in modes:
        for pipeline in (1, 16):
            results = {name: {} for name, _, _ in servers}
            for _ in range(ROUNDS):
                for name, start, its_tests in servers:
                    workdir = tempfile.mkdtemp(prefix=f"bench-{name}-")
                    port, proc = start(workdir, fsync)
                    try:
                        n = N if pipeline == 1 else N_PIPELINED
                        for test, rps in redis_benchmark(port, its_tests, pipeline, n).items():
                            results[name].setdefault(test, []).append(rps)
                    finally:
                        stop(proc)
                        shutil.rmtree(workdir, ignore_errors=True)
            out.append(f"\n### appendfsync {fsync}, -P {pipeline}\n")
            out.append("| test | Redis rps | Redlite rps | Redlite/Redis | SQLite floor rps "
                       "| floor/Redis |")
            out.append("|---|---:|---:|---:|---:|---:|")
            for test in results["redis"]:
                r = statistics.median(results["redis"][test])
                cells = []
                for name in ("redlite", "floor"):
                    got = results.get(name, {}).get(test)
                    if got:
                        m = statistics.median(got)
                        cells.append(f"{m:,.0f} | {m / r:.2f}")
                    else:
                        cells.append("- | -" if name == "floor" else "(no result) | -")
                out.append(f"| {test} | {r:,.0f} | {cells[0]} | {cells[1]} |")
            out.append("")


def python_embedded_section(out):
    out.append("## Embedded from Python (sqlite3 + the built extension)\n")
    out.append(f"`/usr/bin/python3`'s sqlite3 (SQLite {sqlite3.sqlite_version}), a file database in WAL "
               "mode, one transaction per round of 20,000 calls; medians of interleaved rounds.\n")
    tmp = tempfile.mkdtemp(prefix="bench-py-")
    conn = sqlite3.connect(os.path.join(tmp, "py.db"), isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(EXT)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value ANY) STRICT")
    cases = [
        ("SET", "SELECT redis_set(?, ?)",
         "INSERT INTO kv VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", 2),
        ("GET", "SELECT redis_get(?)", "SELECT value FROM kv WHERE key = ?", 1),
    ]
    out.append("| op | redlite µs/op | raw SQLite µs/op | ratio |")
    out.append("|---|---:|---:|---:|")
    for name, ours, raw, nparams in cases:
        times = {"ours": [], "raw": []}
        for _ in range(max(ROUNDS, 3)):
            for which, sql in (("ours", ours), ("raw", raw)):
                conn.execute("BEGIN")
                t0 = time.perf_counter()
                for i in range(20000):
                    params = (f"key:{i % 1000}", f"value-{i}")[:nparams]
                    conn.execute(sql, params).fetchone()
                dt = time.perf_counter() - t0
                conn.execute("COMMIT")
                times[which].append(dt / 20000 * 1e6)
        a, b = statistics.median(times["ours"]), statistics.median(times["raw"])
        out.append(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    conn.close()
    shutil.rmtree(tmp, ignore_errors=True)
    out.append("")


def rust_embedded_section(out):
    for bench, title in (("embedded", "Embedded from Rust"), ("collections", "Collections at scale")):
        proc = subprocess.run(["cargo", "bench", "-q", "-p", "redlite", "--features", "bundled",
                               "--bench", bench], cwd=ROOT, capture_output=True, text=True)
        out.append(f"## {title} (`cargo bench --bench {bench}`)\n")
        out.append(proc.stdout.strip())
        out.append("")


def load_keys(port, n):
    """Writes keys 0..n-1 with pipelined SETs (raw RESP, no client library), named as
    redis-benchmark names them (`key:` and 12 digits), so its GETs hit."""
    s = socket.create_connection(("127.0.0.1", port))
    batch = 1000
    for start in range(0, n, batch):
        payload = b"".join(
            b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$10\r\n0123456789\r\n" % (len(k), k)
            for k in (b"key:%012d" % i for i in range(start, min(n, start + batch))))
        s.sendall(payload)
        need = min(n, start + batch) - start
        got = b""
        while got.count(b"\r\n") < need:
            got += s.recv(1 << 20)
    s.close()


def latency(port, test, keys):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", test, "-n", "20000", "-c", "1",
         "-r", str(keys), "--csv", "--precision", "3"],
        capture_output=True, text=True, timeout=600)
    for row in csv.DictReader(io.StringIO(out.stdout)):
        return float(row["p50_latency_ms"]), float(row["p99_latency_ms"])
    return float("nan"), float("nan")


def scale_section(out):
    sizes = [10**5, 10**6] + ([10**7] if os.environ.get("BENCH_SCALE") == "full" else [])
    if QUICK:
        sizes = [10**5]
    out.append("## Scale: one client, p50/p99 latency (ms), disk and memory\n")
    out.append("GET and SET of random keys over the whole keyspace (`-r <keys>`), 20,000 "
               "requests each, one client.\n")
    out.append("| keys | server | GET p50 | GET p99 | SET p50 | SET p99 | WAL after the SETs | on-disk after 2 s | RSS | of which owned |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for name, start in (("Redis", start_redis), ("Redlite", start_redlite)):
            workdir = tempfile.mkdtemp(prefix="bench-scale-")
            port, proc = start(workdir, "no")
            try:
                load_keys(port, n)
                g50, g99 = latency(port, "get", n)
                s50, s99 = latency(port, "set", n)
                wals = [f for f in os.listdir(workdir) if f.endswith("-wal")]
                wal = (f"{os.path.getsize(os.path.join(workdir, wals[0])) / 1e6:.1f} MB"
                       if wals else "-")
                # Redlite empties the WAL a second after writes pause.
                time.sleep(2)
                disk = sum(os.path.getsize(os.path.join(workdir, f)) for f in os.listdir(workdir))
                rss, anon = memory_kb(proc.pid)
                out.append(f"| {n:,} | {name} | {g50:.3f} | {g99:.3f} | {s50:.3f} | {s99:.3f} | "
                           f"{wal} | {disk / 1e6:.1f} MB | {rss / 1e3:.1f} MB | {anon / 1e3:.1f} MB |")
            finally:
                stop(proc)
                shutil.rmtree(workdir, ignore_errors=True)
    out.append("\nRedis keeps everything in memory and writes nothing to disk here (no "
               "persistence); Redlite's data is in the file. While writes go on, Redlite's WAL "
               "holds up to 16,000 pages (64 MiB) besides; it is emptied a second after they pause. "
               "\"Owned\" is RssAnon (heap and "
               "SQLite's page caches); the rest of Redlite's RSS is the database file mapped "
               "in (`mmap_size`), pages the kernel can drop and reread.\n")


def main():
    for tool in ("redis-server", "redis-benchmark"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install redis-server redis-tools)")
    if not os.path.exists(SERVER) or not os.path.exists(FLOOR):
        sys.exit("run `make build floor` first")
    out = ["# Redlite benchmarks", "",
           f"Generated by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
           f"{os.cpu_count()} cores, shared machine: read the ratios, not the absolute numbers.", ""]
    sections = os.environ.get("BENCH_SECTIONS", "embedded,python,server,scale").split(",")
    for name, section in (("embedded", rust_embedded_section), ("python", python_embedded_section),
                          ("server", server_section), ("scale", scale_section)):
        if name in sections:
            section(out)
    text = "\n".join(out) + "\n"
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
