#!/usr/bin/env python3
"""Compares redlite-server builds side by side with redis-server: the same
redis-benchmark load on each, rounds interleaved (Redis, build A, build B, ...), medians.
For deciding whether a change helps on this shared machine, where only ratios from the
same run compare.

    bench/ab.py NAME=PATH[,ENV=VALUE...] [NAME=PATH ...] [--tests set,get] [--rounds 3]
                [--n 50000] [--fsync no]

Example: `bench/ab.py before=/tmp/redlite-server-before after=dist/redlite-server`.
`floor=dist/sqlite-floor` (`make floor`) adds the raw-SQLite floor, for SET and GET.
Prints requests/s and the ratio to Redis per pipeline depth (-P 1 and -P 16), -c 50,
-r 100000.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: server start-up and redis-benchmark runs)


def parse_build(spec):
    name, _, rest = spec.partition("=")
    path, *envs = rest.split(",")
    return name, path, dict(e.split("=", 1) for e in envs)


def start(path, env, workdir, fsync):
    port = R.free_port()
    proc = subprocess.Popen(
        [path, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--dbfilename", "ab.db", "--appendfsync", fsync],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    R.wait_port(port, proc)
    return port, proc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="+", help="NAME=PATH[,ENV=VALUE...]")
    ap.add_argument("--tests", default="set,get")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--fsync", default="no", choices=["no", "everysec", "always"])
    args = ap.parse_args()
    builds = [parse_build(b) for b in args.builds]
    results = {}
    for pipeline in (1, 16):
        for _ in range(args.rounds):
            for name, path, env in [("redis", None, {})] + builds:
                workdir = tempfile.mkdtemp(prefix="bench-ab-")
                if path is None:
                    port, proc = R.start_redis(workdir, args.fsync)
                else:
                    port, proc = start(path, env, workdir, args.fsync)
                try:
                    for test, rps in R.redis_benchmark(port, args.tests, pipeline, args.n).items():
                        results.setdefault((pipeline, test, name), []).append(rps)
                finally:
                    R.stop(proc)
                    shutil.rmtree(workdir, ignore_errors=True)
    print("| -P | test | server | requests/s | of Redis |")
    print("|---:|---|---|---:|---:|")
    for (pipeline, test, name), rps in sorted(results.items()):
        base = statistics.median(results[(pipeline, test, "redis")])
        m = statistics.median(rps)
        print(f"| {pipeline} | {test} | {name} | {m:,.0f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
