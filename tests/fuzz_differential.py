"""Differential fuzzing: random command sequences sent to a real redis-server and to
redlite-server, replies compared.

`python tests/fuzz_differential.py --seconds 60 --seed N` runs against servers it starts
(`make stress`); tests/test_fuzz_differential.py runs a short fixed-seed form in `make test`.
Commands whose replies are random or time-dependent are left out; replies whose order
Redis leaves unspecified are compared sorted.
"""

import argparse
import random
import sys
import time

import resp

KEYS = ["a", "b", "c", "h", "l", "s", "z", "x"]
FIELDS = ["f1", "f2", "f3", ""]
VALUES = ["1", "-1", "0", "10", "3.5", "abc", "", "9223372036854775807", "-9223372036854775808",
          "1e5", "inf", "-inf", "\x00bin\xff".encode("latin-1"), "x" * 40]
INTS = ["0", "1", "2", "-1", "-2", "3", "10", "-100", "abc", "9223372036854775807",
        "-9223372036854775808", "1.5"]
UNORDERED = {"KEYS", "SMEMBERS", "SINTER", "SUNION", "SDIFF", "HKEYS", "HVALS", "HGETALL"}


def pick(rng, xs):
    return rng.choice(xs)


def gen_command(rng):
    k, k2 = pick(rng, KEYS), pick(rng, KEYS)
    v, f, n = pick(rng, VALUES), pick(rng, FIELDS), pick(rng, INTS)
    choices = [
        ["SET", k, v], ["SET", k, v, pick(rng, ["NX", "XX", "GET", "KEEPTTL"])],
        ["GET", k], ["APPEND", k, v], ["INCR", k], ["DECRBY", k, n], ["INCRBYFLOAT", k, v],
        ["STRLEN", k], ["GETRANGE", k, n, pick(rng, INTS)], ["SETRANGE", k, pick(rng, ["0", "1", "5", "-1"]), v],
        ["MSET", k, v, k2, v], ["MGET", k, k2], ["GETDEL", k], ["SETNX", k, v],
        ["DEL", k, k2], ["EXISTS", k, k2], ["TYPE", k], ["RENAME", k, k2], ["RENAMENX", k, k2],
        ["COPY", k, k2], ["COPY", k, k2, "REPLACE"], ["PERSIST", k], ["TTL", k],
        ["EXPIRE", k, pick(rng, ["100", "200", "-1", "abc"])], ["KEYS", "*"],
        ["HSET", k, f, v], ["HSET", k, f, v, pick(rng, FIELDS), v], ["HGET", k, f], ["HDEL", k, f],
        ["HLEN", k], ["HEXISTS", k, f], ["HINCRBY", k, f, n], ["HINCRBYFLOAT", k, f, v],
        ["HGETALL", k], ["HKEYS", k], ["HMGET", k, f, "f2"], ["HSETNX", k, f, v], ["HSTRLEN", k, f],
        ["LPUSH", k, v], ["RPUSH", k, v, v], ["LPOP", k], ["RPOP", k, pick(rng, ["1", "2", "0"])],
        ["LRANGE", k, n, pick(rng, INTS)], ["LINDEX", k, n], ["LSET", k, n, v], ["LLEN", k],
        ["LTRIM", k, n, pick(rng, INTS)], ["LREM", k, n, v], ["LINSERT", k, pick(rng, ["BEFORE", "AFTER"]), v, v],
        ["LPOS", k, v], ["LMOVE", k, k2, pick(rng, ["LEFT", "RIGHT"]), pick(rng, ["LEFT", "RIGHT"])],
        ["SADD", k, v, v], ["SREM", k, v], ["SISMEMBER", k, v], ["SCARD", k], ["SMEMBERS", k],
        ["SINTER", k, k2], ["SUNION", k, k2], ["SDIFF", k, k2], ["SMOVE", k, k2, v],
        ["SINTERSTORE", k, k, k2], ["SUNIONSTORE", k2, k, k2], ["SMISMEMBER", k, v, "zz"],
        ["ZADD", k, n, v], ["ZADD", k, pick(rng, ["NX", "XX", "GT", "LT", "CH"]), n, v],
        ["ZADD", k, "INCR", n, v], ["ZSCORE", k, v], ["ZINCRBY", k, n, v], ["ZREM", k, v],
        ["ZCARD", k], ["ZRANK", k, v], ["ZREVRANK", k, v], ["ZRANGE", k, n, pick(rng, INTS)],
        ["ZRANGE", k, "0", "-1", "WITHSCORES"], ["ZRANGEBYSCORE", k, pick(rng, ["-inf", "(1", "0"]), pick(rng, ["+inf", "10", "(3"])],
        ["ZCOUNT", k, "-inf", "+inf"], ["ZPOPMIN", k], ["ZPOPMAX", k, "2"],
        ["ZUNIONSTORE", k2, "2", k, k2], ["ZINTERSTORE", k2, "2", k, k2, "AGGREGATE", "MAX"],
        ["ZREMRANGEBYRANK", k, n, pick(rng, INTS)], ["ZRANGEBYLEX", k, "-", "+"],
    ]
    return [a if isinstance(a, bytes) else a for a in pick(rng, choices)]


def render(cmd, reply):
    if cmd[0] in UNORDERED and isinstance(reply, resp.dict_pairs):
        # A RESP3 map (HGETALL): its order is as unspecified as the RESP2 array's.
        return resp.render(resp.dict_pairs(sorted(reply, key=lambda kv: resp.render(kv[0]))))
    if cmd[0] in UNORDERED and isinstance(reply, list):
        return resp.render_step(reply, True)
    return resp.render(reply)


def run(redis_port, redlite_port, seed, count=None, seconds=None, protocols=(2, 3)):
    rng = random.Random(seed)
    conns = []
    for proto in protocols:
        pair = (resp.Conn(redis_port), resp.Conn(redlite_port))
        for c in pair:
            if proto == 3:
                c.command("HELLO", "3")
            c.command("SELECT", "9")
            c.command("FLUSHDB")
        conns.append(pair)
    mismatches, done = [], 0
    deadline = time.time() + seconds if seconds else None
    while (count is None or done < count) and (deadline is None or time.time() < deadline):
        cmd = gen_command(rng)
        real, ours = conns[done % len(conns)]
        want = render(cmd, real.command(*cmd))
        got = render(cmd, ours.command(*cmd))
        done += 1
        if want != got:
            mismatches.append(f"#{done} {cmd!r}\n  redis   {want}\n  redlite {got}")
            # Resynchronise both sides so one difference does not cascade.
            for r, o in conns:
                r.command("FLUSHDB")
                o.command("FLUSHDB")
            if len(mismatches) >= 20:
                break
    for r, o in conns:
        r.close()
        o.close()
    return done, mismatches


def main():
    from conftest import start_redlite, stop  # noqa: E402 (tests/ is the working dir)
    import subprocess
    import tempfile
    from conftest import free_port, wait_for_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                              "--dir", work], stdout=subprocess.DEVNULL)
    wait_for_port(port, redis)
    ours, proc = start_redlite(work)
    try:
        done, mismatches = run(port, ours, args.seed, seconds=args.seconds)
    finally:
        stop(proc)
        redis.terminate()
    print(f"seed {args.seed}: {done} commands, {len(mismatches)} mismatches")
    for m in mismatches:
        print(m)
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
