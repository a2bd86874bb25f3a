"""The script files against real Redis, and the extension's redis() against real Redis.

1. Every step of tests/scripts/*.redis is sent to a real redis-server and must reply
   exactly as the file says: the expectations are Redis's, not copies of our output.
2. The same steps run through the extension's `redis(...)` SQL function must give the
   value real Redis's reply maps to in SQL (integer, TEXT/BLOB, NULL, JSON, error text).
   Aggregates map to JSON in their RESP3 shape (maps as objects, WITHSCORES-style pairs
   as two-element arrays, doubles as numbers), so this side talks RESP3 to Redis.
"""

import math

import json
import sqlite3

import pytest

import resp
from conftest import SCRIPTS, script_files, skip_if_newer_than


@pytest.mark.parametrize("name", script_files())
def test_script_matches_real_redis(redis_port, name):
    skip_if_newer_than(redis_port, name)
    conn = resp.Conn(redis_port)
    conn.command("FLUSHALL")
    mismatches = resp.replay(conn, f"{SCRIPTS}/{name}", name, "redis")
    conn.close()
    assert not mismatches, "\n".join(mismatches)


def to_sql(reply):
    """What a Redis reply becomes in SQL, per the extension's documented mapping."""
    if isinstance(reply, resp.RespError):
        return ("error", str(reply))
    if isinstance(reply, bytes):
        try:
            text = reply.decode("utf-8")
        except UnicodeDecodeError:
            return reply
        return reply if "\x00" in text else text
    if isinstance(reply, list):
        return ("json", to_json(reply))
    return reply  # int, float, Status (a str), None


def to_json(reply):
    if isinstance(reply, resp.dict_pairs):
        return {json_key(k): to_json(v) for k, v in reply}
    if isinstance(reply, list):
        return [to_json(x) for x in reply]
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    if isinstance(reply, float) and not math.isfinite(reply):
        return "inf" if reply > 0 else "-inf"
    return reply


def json_key(k):
    v = to_json(k)
    return v if isinstance(v, str) else json.dumps(v)


def sql_call(conn, args):
    marks = ",".join("?" * len(args))
    try:
        value = conn.execute(f"SELECT redis({marks})", args).fetchone()[0]
    except sqlite3.OperationalError as e:
        return ("error", str(e))
    return value


@pytest.mark.parametrize("name", script_files())
def test_extension_matches_real_redis(redis_port, ext_path, name):
    skip_if_newer_than(redis_port, name)
    real = resp.Conn(redis_port)
    assert not isinstance(real.command("HELLO", "3"), resp.RespError)
    real.command("FLUSHALL")
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(ext_path)
    mismatches = []
    for n, cmd, _, unordered in resp.parse_script(f"{SCRIPTS}/{name}"):
        args = resp.split(cmd)
        want = to_sql(real.command(*args))
        got = sql_call(conn, args)
        if isinstance(want, tuple) and want[0] == "json":
            want = want[1]
            got = json.loads(got) if isinstance(got, str) else got
            if unordered:
                want, got = sorted(map(json.dumps, want)), sorted(map(json.dumps, got))
        # A blocking read that Redis answered with nil (it timed out) is, in SQL, the
        # documented "would wait" error: a statement cannot wait.
        if want is None and isinstance(got, tuple) and "would wait" in got[1]:
            continue
        if got != want:
            mismatches.append(f"{name}:{n}: {cmd}\n  redis   {want!r}\n  redlite {got!r}")
    real.close()
    conn.close()
    assert not mismatches, "\n".join(mismatches)
