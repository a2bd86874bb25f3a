"""Hashes and sets through the loadable extension, from /usr/bin/python3's sqlite3
(SQLite 3.40 on Debian 12): every scalar function they register, their table-valued
functions in joins with user tables, NULLs, binary fields and members, errors,
transactions, and the replies the script files cannot compare (HGETALL's map, paged
HSCAN/SSCAN) against a real redis-server."""

import json
import sqlite3

import pytest

import resp
from conftest import connect, one  # noqa: F401 (db is a conftest fixture)


def rows(conn, sql, *params):
    return conn.execute(sql, params).fetchall()


def error_text(conn, sql, *params):
    with pytest.raises(sqlite3.OperationalError) as e:
        conn.execute(sql, params).fetchall()
    return str(e.value)


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def test_hash_scalar_functions(db):
    assert one(db, "SELECT redis_hset('user:1', 'name', 'Ada', 'born', 1815)") == 2
    assert one(db, "SELECT redis_hset('user:1', 'name', 'Ada')") == 0
    assert one(db, "SELECT redis_hget('user:1', 'name')") == "Ada"
    assert one(db, "SELECT redis_hget('user:1', 'born')") == "1815"
    assert one(db, "SELECT typeof(redis_hget('user:1', 'born'))") == "text"
    assert one(db, "SELECT redis_hget('user:1', 'missing')") is None
    assert one(db, "SELECT redis_hget('nokey', 'f')") is None
    assert one(db, "SELECT redis_hsetnx('user:1', 'name', 'Grace')") == 0
    assert one(db, "SELECT redis_hsetnx('user:1', 'lang', 'en')") == 1
    assert one(db, "SELECT redis_hmset('user:1', 'a', 1, 'b', 2)") == "OK"
    assert one(db, "SELECT redis_hexists('user:1', 'a')") == 1
    assert one(db, "SELECT redis_hexists('user:1', 'zz')") == 0
    assert one(db, "SELECT redis_hlen('user:1')") == 5
    assert one(db, "SELECT redis_hstrlen('user:1', 'name')") == 3
    assert one(db, "SELECT redis_hincrby('user:1', 'visits', 5)") == 5
    assert one(db, "SELECT redis_hincrby('user:1', 'visits', -7)") == -2
    assert one(db, "SELECT redis_hincrbyfloat('user:1', 'score', '10.50')") == "10.5"
    assert one(db, "SELECT redis_hincrbyfloat('user:1', 'score', 0.1)") == "10.6"
    assert one(db, "SELECT redis_hrandfield('user:1') IN "
                   "(SELECT field FROM redis_hgetall('user:1'))") == 1
    assert json.loads(one(db, "SELECT redis_hrandfield('user:1', -3)"))[0] in {
        "name", "born", "lang", "a", "b", "visits", "score"}
    assert one(db, "SELECT redis_hdel('user:1', 'a', 'b', 'zz')") == 2
    assert one(db, "SELECT redis_hdel('user:1', 'name', 'born', 'lang', 'visits', 'score')") == 5
    assert one(db, "SELECT redis_exists('user:1')") == 0
    assert one(db, "SELECT redis_hlen('user:1')") == 0


def test_set_scalar_functions(db):
    assert one(db, "SELECT redis_sadd('s1', 'a', 'b', 'c', 'a')") == 3
    assert one(db, "SELECT redis_sadd('s2', 'b', 'c', 'd')") == 3
    assert one(db, "SELECT redis_sismember('s1', 'a')") == 1
    assert one(db, "SELECT redis_sismember('s1', 'z')") == 0
    assert one(db, "SELECT redis_scard('s1')") == 3
    assert one(db, "SELECT redis_sintercard(2, 's1', 's2')") == 2
    assert one(db, "SELECT redis_sintercard(2, 's1', 's2', 'LIMIT', 1)") == 1
    assert one(db, "SELECT redis_sinterstore('i', 's1', 's2')") == 2
    assert one(db, "SELECT redis_sunionstore('u', 's1', 's2')") == 4
    assert one(db, "SELECT redis_sdiffstore('d', 's1', 's2')") == 1
    assert rows(db, "SELECT member FROM redis_smembers('d')") == [("a",)]
    assert one(db, "SELECT redis_smove('s1', 's2', 'a')") == 1
    assert one(db, "SELECT redis_smove('s1', 's2', 'zz')") == 0
    assert one(db, "SELECT redis_srem('s1', 'b', 'zz')") == 1
    assert one(db, "SELECT redis_srandmember('s1')") == "c"
    assert json.loads(one(db, "SELECT redis_srandmember('s1', -2)")) == ["c", "c"]
    assert one(db, "SELECT redis_spop('s1')") == "c"
    assert one(db, "SELECT redis_exists('s1')") == 0
    assert one(db, "SELECT redis_spop('s1')") is None
    popped = json.loads(one(db, "SELECT redis_spop('u', 10)"))
    assert sorted(popped) == ["a", "b", "c", "d"]
    assert one(db, "SELECT redis_type('u')") == "none"


def test_null_arguments_give_null_and_change_nothing(db):
    assert one(db, "SELECT redis_hset('h', 'f', NULL)") is None
    assert one(db, "SELECT redis_sadd('s', NULL)") is None
    assert one(db, "SELECT redis_hget(NULL, 'f')") is None
    assert one(db, "SELECT redis_sismember('s', NULL)") is None
    assert one(db, "SELECT redis_dbsize()") == 0
    for fn in ("redis_hgetall", "redis_hscan", "redis_smembers", "redis_sscan"):
        assert rows(db, f"SELECT * FROM {fn}(NULL)") == []


def test_errors_carry_redis_text(db):
    db.execute("SELECT redis_set('str', 'v')")
    db.execute("SELECT redis_hset('h', 'word', 'hello')")
    assert error_text(db, "SELECT redis_hset('str', 'f', 'v')") == WRONGTYPE
    assert error_text(db, "SELECT redis_sadd('h', 'm')") == WRONGTYPE
    assert error_text(db, "SELECT redis_hset('h', 'f')") == \
        "ERR wrong number of arguments for 'hset' command"
    assert error_text(db, "SELECT redis_hincrby('h', 'word', 1)") == \
        "ERR hash value is not an integer"
    assert error_text(db, "SELECT redis_hincrbyfloat('h', 'word', 1)") == \
        "ERR hash value is not a float"
    assert error_text(db, "SELECT redis_hincrbyfloat('h', 'x', 'inf')") == \
        "ERR value is NaN or Infinity"
    assert error_text(db, "SELECT redis_spop('h', -1)") == \
        "ERR value is out of range, must be positive"
    assert error_text(db, "SELECT redis_srandmember('h', -9223372036854775808)") == \
        "ERR value is out of range, value must between -9223372036854775807 and " \
        "9223372036854775807"
    assert error_text(db, "SELECT redis_sintercard(0, 's')") == \
        "ERR numkeys should be greater than 0"
    # Table-valued functions raise the same errors.
    assert error_text(db, "SELECT * FROM redis_hgetall('str')") == WRONGTYPE
    assert error_text(db, "SELECT * FROM redis_smembers('h')") == WRONGTYPE
    assert error_text(db, "SELECT * FROM redis_sscan('h', '*')") == WRONGTYPE


def test_table_valued_functions(db):
    db.execute("SELECT redis_hset('h', 'b', 2, 'a', 1, 'ab', 'x', 'c', 3)")
    db.execute("SELECT redis_sadd('s', 'pear', 'apple', 'plum')")
    assert rows(db, "SELECT field, value FROM redis_hgetall('h')") == [
        ("a", "1"), ("ab", "x"), ("b", "2"), ("c", "3")]
    assert rows(db, "SELECT * FROM redis_hscan('h', 'a*')") == [("a", "1"), ("ab", "x")]
    assert rows(db, "SELECT * FROM redis_hscan('h')") == rows(db, "SELECT * FROM redis_hgetall('h')")
    assert rows(db, "SELECT member FROM redis_smembers('s')") == [
        ("apple",), ("pear",), ("plum",)]
    assert rows(db, "SELECT member FROM redis_sscan('s', 'p*')") == [("pear",), ("plum",)]
    assert rows(db, "SELECT member FROM redis_sscan('s', '[^p]*')") == [("apple",)]
    assert rows(db, "SELECT * FROM redis_smembers('nokey')") == []
    assert rows(db, "SELECT * FROM redis_hgetall('nokey')") == []
    # Arguments as hidden columns, and aggregates over the rows.
    assert one(db, "SELECT count(*) FROM redis_smembers WHERE key = 's'") == 3
    assert one(db, "SELECT sum(value) FROM redis_hgetall('h') WHERE field != 'ab'") == 6
    # Without its required key argument there is no plan.
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM redis_smembers").fetchall()


def test_joins_with_user_tables(db):
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)",
                   [(1, "Ada"), (2, "Grace"), (3, "Edsger"), (4, "Barbara")])
    db.execute("SELECT redis_sadd('online', 1, 3, 99)")
    db.execute("SELECT redis_hset('scores', 'Ada', 10, 'Grace', 7, 'Nobody', 1)")
    # Members are TEXT ('1'); an INTEGER column compares them numerically.
    assert rows(db, "SELECT u.name FROM redis_smembers('online') s "
                    "JOIN users u ON u.id = s.member ORDER BY u.id") == [("Ada",), ("Edsger",)]
    assert rows(db, "SELECT name FROM users WHERE id IN "
                    "(SELECT member FROM redis_smembers('online')) ORDER BY id") == [
        ("Ada",), ("Edsger",)]
    assert rows(db, "SELECT u.id, h.value FROM users u JOIN redis_hgetall('scores') h "
                    "ON h.field = u.name ORDER BY h.value + 0 DESC") == [(1, "10"), (2, "7")]
    # A set per user, read with a correlated table-valued function.
    db.execute("SELECT redis_sadd('tags:1', 'math', 'poetry')")
    db.execute("SELECT redis_sadd('tags:2', 'navy')")
    assert rows(db, "SELECT u.name, t.member FROM users u, redis_smembers('tags:' || u.id) t "
                    "ORDER BY u.id, t.member") == [
        ("Ada", "math"), ("Ada", "poetry"), ("Grace", "navy")]


def test_binary_fields_and_members(db):
    field, value, member = b"f\x00", b"v\x00\xff", b"\xff\xfe"
    assert one(db, "SELECT redis_hset('h', ?, ?)", field, value) == 1
    assert one(db, "SELECT redis_hget('h', ?)", field) == value
    assert one(db, "SELECT typeof(redis_hget('h', ?))", field) == "blob"
    assert one(db, "SELECT redis_hstrlen('h', ?)", field) == 3
    assert rows(db, "SELECT field, value FROM redis_hgetall('h')") == [(field, value)]
    assert one(db, "SELECT redis_sadd('s', ?, 'text')", member) == 2
    assert one(db, "SELECT redis_sismember('s', ?)", member) == 1
    # TEXT members sort before BLOB ones.
    assert rows(db, "SELECT member, typeof(member) FROM redis_smembers('s')") == [
        ("text", "text"), (member, "blob")]
    # Valid UTF-8 given as a BLOB is the same member as the TEXT.
    assert one(db, "SELECT redis_sismember('s', ?)", b"text") == 1
    assert one(db, "SELECT redis_sadd('s', ?)", b"text") == 0


def test_rollback_undoes_hash_and_set_writes(db):
    db.execute("SELECT redis_sadd('s', 'a')")
    db.execute("BEGIN")
    assert one(db, "SELECT redis_sadd('s', 'b')") == 1
    assert one(db, "SELECT redis_hset('h', 'f', 'v')") == 1
    assert one(db, "SELECT redis_spop('s', 5) IS NOT NULL") == 1
    db.execute("ROLLBACK")
    assert rows(db, "SELECT member FROM redis_smembers('s')") == [("a",)]
    assert one(db, "SELECT redis_exists('h')") == 0


def test_views_show_hashes_and_sets(db):
    db.execute("SELECT redis_hset('h', 'f', 'v')")
    db.execute("SELECT redis_sadd('s', 'm1', 'm2')")
    assert rows(db, "SELECT key, field, value FROM redis_hashes") == [("h", "f", "v")]
    assert rows(db, "SELECT key, member FROM redis_sets ORDER BY member") == [
        ("s", "m1"), ("s", "m2")]


def test_writers_are_directonly_and_readers_are_not(db):
    flags = dict(db.execute(
        "SELECT name, flags FROM pragma_function_list WHERE name IN "
        "('redis_hset', 'redis_sadd', 'redis_spop', 'redis_hget', 'redis_sismember', "
        "'redis_srandmember', 'redis_hrandfield')"))
    directonly = 0x80000
    for name in ("redis_hset", "redis_sadd", "redis_spop"):
        assert flags[name] & directonly, name
    for name in ("redis_hget", "redis_sismember", "redis_srandmember", "redis_hrandfield"):
        assert not flags[name] & directonly, name


def test_aggregate_replies_as_json(db):
    db.execute("SELECT redis_hset('h', 'a', 1, 'b', 2)")
    db.execute("SELECT redis_sadd('s', 'x', 'y')")
    assert json.loads(one(db, "SELECT redis('HGETALL', 'h')")) == {"a": "1", "b": "2"}
    assert json.loads(one(db, "SELECT redis('HMGET', 'h', 'a', 'zz')")) == ["1", None]
    assert json.loads(one(db, "SELECT redis('HKEYS', 'h')")) == ["a", "b"]
    assert json.loads(one(db, "SELECT redis('SMEMBERS', 's')")) == ["x", "y"]
    assert json.loads(one(db, "SELECT redis('SMISMEMBER', 's', 'x', 'z')")) == [1, 0]
    assert json.loads(one(db, "SELECT redis('HSCAN', 'h', 0)")) == ["0", ["a", "1", "b", "2"]]
    # Field/value pairs as pairs (their RESP3 shape).
    assert json.loads(one(db, "SELECT redis_hrandfield('h', 5, 'WITHVALUES')")) in (
        [["a", "1"], ["b", "2"]], [["b", "2"], ["a", "1"]])


def real_redis(port):
    conn = resp.Conn(port)
    conn.command("FLUSHALL")
    return conn


def test_hgetall_matches_real_redis(redis_port, db):
    real = real_redis(redis_port)
    pairs = [("name", "Ada"), ("born", "1815"), ("empty", ""), ("", "blank field"),
             ("héllo", "wörld"), ("n", "-0.5")]
    for f, v in pairs:
        assert real.command("HSET", "h", f, v) == one(db, "SELECT redis_hset('h', ?, ?)", f, v)
    assert real.command("HINCRBYFLOAT", "h", "n", "1.25").decode() == \
        one(db, "SELECT redis_hincrbyfloat('h', 'n', '1.25')")
    flat = real.command("HGETALL", "h")
    want = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    assert json.loads(one(db, "SELECT redis('HGETALL', 'h')")) == want
    assert dict(rows(db, "SELECT field, value FROM redis_hgetall('h')")) == want
    assert real.command("HGETALL", "nokey") == []
    assert json.loads(one(db, "SELECT redis('HGETALL', 'nokey')")) == {}
    real.close()


def scan_all(call, command, key, count):
    """Follows cursors to the end; returns the items (fields only for HSCAN)."""
    cursor, seen, calls = "0", [], 0
    step = 2 if command == "HSCAN" else 1
    while True:
        calls += 1
        assert calls < 10000
        cursor, page = call(command, key, cursor, "COUNT", str(count))
        seen.extend(page[::step])
        if cursor == "0":
            return seen


def test_large_scans_return_what_real_redis_returns(redis_port, db):
    real = real_redis(redis_port)
    members = [f"user:{i:06}" for i in range(3000)] + [str(i) for i in range(500)]
    # SQLite caps a function at 127 arguments: add in chunks.
    for chunk in range(0, len(members), 50):
        part = members[chunk:chunk + 50]
        real.command("SADD", "s", *part)
        db.execute(f"SELECT redis('SADD', 's', {','.join('?' * len(part))})", part)
        fields = [x for m in part for x in (m, m.upper())]
        real.command("HSET", "h", *fields)
        db.execute(f"SELECT redis('HSET', 'h', {','.join('?' * len(fields))})", fields)

    def ours(*args):
        cursor, page = json.loads(one(db, f"SELECT redis({','.join('?' * len(args))})", *args))
        return cursor, page

    def theirs(*args):
        cursor, page = real.command(*args)
        return cursor.decode(), [p.decode() for p in page]

    for command, key in (("SSCAN", "s"), ("HSCAN", "h")):
        got = scan_all(ours, command, key, 20)
        want = scan_all(theirs, command, key, 20)
        assert len(got) == len(set(got)) == 3500, command
        assert set(got) == set(want) == set(members)
    assert one(db, "SELECT count(*) FROM redis_sscan('s', 'user:0001*')") == \
        len(scan_all(lambda *a: theirs(*a[:3], "MATCH", "user:0001*", *a[3:]), "SSCAN", "s", 100))
    real.close()
