"""Streams through the loadable extension (Debian's /usr/bin/python3 and SQLite 3.40):
the scalar functions, the redis_xrange table, the redis_streams view, consumer groups
through redis(), binary fields, transactions, and two connections sharing a stream."""

import json
import re
import sqlite3
import time

import pytest
from conftest import connect, one  # noqa: F401 (db is a conftest fixture)


def test_scalar_functions(db):
    assert one(db, "SELECT redis_xadd('s', '1-1', 'name', 'ada', 'age', 36)") == "1-1"
    assert one(db, "SELECT redis_xadd('s', '1-*', 'name', 'bob')") == "1-2"
    auto = one(db, "SELECT redis_xadd('s', '*', 'name', 'cy')")
    assert re.fullmatch(r"\d{13}-0", auto)
    assert abs(int(auto.split("-")[0]) - time.time() * 1000) < 60_000
    assert one(db, "SELECT redis_xlen('s')") == 3
    assert one(db, "SELECT redis_xlen('nokey')") == 0
    assert one(db, "SELECT redis_xadd('nomk', 'NOMKSTREAM', '*', 'f', 'v')") is None
    assert one(db, "SELECT redis_xdel('s', '1-2', '9-9')") == 1
    assert one(db, "SELECT redis_xtrim('s', 'MAXLEN', 1)") == 1
    assert one(db, "SELECT redis_xsetid('s', '99999999999999-0')") == "OK"
    assert one(db, "SELECT redis_xadd('s', 'MAXLEN', '=', 1, '99999999999999-*', 'f', 'v')") == \
        "99999999999999-1"
    assert one(db, "SELECT redis_xlen('s')") == 1
    assert one(db, "SELECT redis('XGROUP', 'CREATE', 's', 'g', '0')") == "OK"
    read = json.loads(one(db, "SELECT redis('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>')"))
    # Stream name to entries, as Redis's RESP3 map.
    assert read == {"s": [["99999999999999-1", ["f", "v"]]]}
    assert one(db, "SELECT redis_xack('s', 'g', '99999999999999-1', '1-1')") == 1
    assert one(db, "SELECT redis_type('s')") == "stream"
    assert one(db, "SELECT redis_xadd(NULL, '*', 'f', 'v')") is None


def test_errors_carry_redis_text(db):
    db.execute("SELECT redis_set('str', 'v')")
    cases = [
        ("SELECT redis_xadd('s', '0-0', 'f', 'v')",
         "ERR The ID specified in XADD must be greater than 0-0"),
        ("SELECT redis_xadd('s', '*', 'f')", "ERR wrong number of arguments for 'xadd' command"),
        ("SELECT redis_xadd('str', '*', 'f', 'v')",
         "WRONGTYPE Operation against a key holding the wrong kind of value"),
        ("SELECT redis_xsetid('nokey', '1-1')", "ERR no such key"),
        ("SELECT * FROM redis_xrange('s', 'x')",
         "ERR Invalid stream ID specified as stream command argument"),
        ("SELECT * FROM redis_xrange('str')",
         "WRONGTYPE Operation against a key holding the wrong kind of value"),
        ("SELECT redis('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>')",
         "NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"),
    ]
    for sql, text in cases:
        with pytest.raises(sqlite3.OperationalError) as e:
            db.execute(sql)
        assert str(e.value) == text, sql
    assert one(db, "SELECT redis_exists('s')") == 0


def test_xrange_table(db):
    for i in range(1, 6):
        db.execute("SELECT redis_xadd('s', ?, 'n', ?, 'sq', ?)", (f"{i}-1", i, i * i))
    rows = db.execute("SELECT id, ms, seq, fields FROM redis_xrange('s')").fetchall()
    assert [r[:3] for r in rows] == [(f"{i}-1", i, 1) for i in range(1, 6)]
    assert [json.loads(r[3]) for r in rows][1] == {"n": "2", "sq": "4"}
    assert db.execute("SELECT typeof(ms), typeof(seq), json_valid(fields) FROM redis_xrange('s') "
                      "LIMIT 1").fetchone() == ("integer", "integer", 1)
    ids = lambda sql, *p: [r[0] for r in db.execute(sql, p)]
    assert ids("SELECT id FROM redis_xrange('s', '2', '3')") == ["2-1", "3-1"]
    assert ids("SELECT id FROM redis_xrange('s', '(2-1', '+')") == ["3-1", "4-1", "5-1"]
    assert ids("SELECT id FROM redis_xrange('s', '-', '(3-1')") == ["1-1", "2-1"]
    # As an end, `3` means 3-18446744073709551615, so `(3` still includes 3-1 (as in Redis).
    assert ids("SELECT id FROM redis_xrange('s', '-', '(3')") == ["1-1", "2-1", "3-1"]
    assert ids("SELECT id FROM redis_xrange('s', '-', '+', 2)") == ["1-1", "2-1"]
    assert ids("SELECT id FROM redis_xrange('s', '-', '+', 0)") == []
    assert ids("SELECT id FROM redis_xrange('nokey')") == []
    assert ids("SELECT id FROM redis_xrange(NULL)") == []
    assert ids("SELECT id FROM redis_xrange('s', NULL)") == []
    # Named arguments, and SQL over the fields.
    assert ids("SELECT id FROM redis_xrange WHERE key = 's' AND start = '4'") == ["4-1", "5-1"]
    total = one(db, "SELECT sum(json_extract(fields, '$.sq')) FROM redis_xrange('s')")
    assert total == 1 + 4 + 9 + 16 + 25
    # A join against an ordinary table.
    db.execute("CREATE TABLE wanted (id TEXT)")
    db.execute("INSERT INTO wanted VALUES ('2-1'), ('4-1'), ('9-9')")
    joined = db.execute("SELECT w.id, json_extract(x.fields, '$.n') FROM wanted w "
                        "JOIN redis_xrange('s') x ON x.id = w.id ORDER BY w.id").fetchall()
    assert joined == [("2-1", "2"), ("4-1", "4")]


def test_fields_keep_order_duplicates_and_bytes(db):
    blob = b"\x00\xff"
    assert one(db, "SELECT redis_xadd('b', '1-1', 'z', 1, 'a', 2, 'z', 3, ?, ?)",
               b"k\x00", blob) == "1-1"
    reply = json.loads(one(db, "SELECT redis('XRANGE', 'b', '-', '+')"))
    assert reply[0][1][:6] == ["z", "1", "a", "2", "z", "3"]
    # JSON replaces bytes that are not UTF-8; XRANGE through a Redis client returns
    # them exactly (tests/streams.rs and the server tests).
    fields = one(db, "SELECT fields FROM redis_xrange('b')")
    assert fields.startswith('{"z":"1","a":"2","z":"3","k\\u0000":"\\u0000')
    assert one(db, "SELECT json_valid(?)", fields) == 1


def test_streams_view(db):
    db.execute("SELECT redis_xadd('s', '1-1', 'f', 'v')")
    db.execute("SELECT redis_xadd('s', '2-5', 'f', 'v')")
    db.execute("SELECT redis_xadd('gone', '1-1', 'f', 'v')")
    db.execute("SELECT redis('PEXPIRE', 'gone', 1)")
    time.sleep(0.01)
    rows = db.execute("SELECT db, key, id, ms, seq, expires FROM redis_streams").fetchall()
    assert rows == [(0, "s", "1-1", 1, 1, None), (0, "s", "2-5", 2, 5, None)]


def test_consumer_group_through_sql(db):
    for i in range(1, 4):
        db.execute("SELECT redis_xadd('jobs', ?, 'job', ?)", (f"{i}-0", f"task{i}"))
    assert one(db, "SELECT redis('XGROUP', 'CREATE', 'jobs', 'workers', '0')") == "OK"
    got = json.loads(one(db, "SELECT redis('XREADGROUP', 'GROUP', 'workers', 'w1', 'COUNT', 2, "
                             "'STREAMS', 'jobs', '>')"))
    assert got == {"jobs": [["1-0", ["job", "task1"]], ["2-0", ["job", "task2"]]]}
    assert json.loads(one(db, "SELECT redis('XPENDING', 'jobs', 'workers')")) == \
        [2, "1-0", "2-0", [["w1", "2"]]]
    claimed = json.loads(one(db, "SELECT redis('XAUTOCLAIM', 'jobs', 'workers', 'w2', 0, '-')"))
    assert claimed == ["0-0", [["1-0", ["job", "task1"]], ["2-0", ["job", "task2"]]], []]
    info = json.loads(one(db, "SELECT redis('XINFO', 'STREAM', 'jobs')"))
    assert info["length"] == 3 and info["groups"] == 1 and info["last-entry"][0] == "3-0"
    groups = json.loads(one(db, "SELECT redis('XINFO', 'GROUPS', 'jobs')"))
    assert groups == [{"name": "workers", "consumers": 2, "pending": 2,
                       "last-delivered-id": "2-0", "entries-read": 2, "lag": 1}]
    assert one(db, "SELECT redis_xack('jobs', 'workers', '1-0', '2-0')") == 2
    # Nothing new and BLOCK: the SQL call does not wait; it fails at once with an error
    # that says waiting needs redlite-server (not NULL, which would read as a timeout).
    start = time.monotonic()
    db.execute("SELECT redis('XREADGROUP', 'GROUP', 'workers', 'w1', 'COUNT', 1, "
               "'STREAMS', 'jobs', '>')")
    for sql in ("SELECT redis('XREAD', 'BLOCK', 5000, 'STREAMS', 'jobs', '$')",
                "SELECT redis('XREADGROUP', 'GROUP', 'workers', 'w1', 'BLOCK', 0, "
                "'STREAMS', 'jobs', '>')"):
        with pytest.raises(sqlite3.OperationalError, match="would wait: blocking needs redlite-server"):
            db.execute(sql)
    # With data there, BLOCK returns it at once, as Redis does.
    db.execute("SELECT redis_xadd('jobs', '9-0', 'f', 'v')")
    assert json.loads(one(db, "SELECT redis('XREAD', 'BLOCK', 0, 'STREAMS', 'jobs', '8-0')")) == {
        "jobs": [["9-0", ["f", "v"]]]}
    assert time.monotonic() - start < 2


def test_rollback_undoes_stream_writes(db):
    db.execute("SELECT redis_xadd('s', '1-1', 'f', 'v')")
    db.execute("SELECT redis('XGROUP', 'CREATE', 's', 'g', '0')")
    db.execute("BEGIN")
    assert one(db, "SELECT redis_xadd('s', '2-1', 'f', 'v')") == "2-1"
    db.execute("SELECT redis('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>')")
    db.execute("ROLLBACK")
    assert one(db, "SELECT redis_xlen('s')") == 1
    assert json.loads(one(db, "SELECT redis('XPENDING', 's', 'g')")) == [0, None, None, None]
    # The next XADD may reuse 2-1: the stream's last ID was rolled back too.
    assert one(db, "SELECT redis_xadd('s', '2-1', 'f', 'v')") == "2-1"


def test_writers_are_directonly_readers_are_not(db):
    flags = dict(db.execute(
        "SELECT name, flags FROM pragma_function_list WHERE name IN "
        "('redis_xadd', 'redis_xlen', 'redis_xdel', 'redis_xtrim', 'redis_xsetid', 'redis_xack')"))
    directonly = 0x80000
    assert {n for n, f in flags.items() if f & directonly} == \
        {"redis_xadd", "redis_xdel", "redis_xtrim", "redis_xsetid", "redis_xack"}


def test_two_connections_share_a_stream(ext_path, tmp_path):
    path = str(tmp_path / "shared.db")
    producer, consumer = connect(ext_path, path), connect(ext_path, path)
    producer.execute("SELECT redis('XGROUP', 'CREATE', 'q', 'g', '$', 'MKSTREAM')")
    for i in range(1, 101):
        producer.execute("SELECT redis_xadd('q', ?, 'n', ?)", (f"{i}-0", i))
    seen = []
    while True:
        got = one(consumer, "SELECT redis('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 7, "
                            "'STREAMS', 'q', '>')")
        if got is None:
            break
        entries = json.loads(got)["q"]
        seen += [int(e[1][1]) for e in entries]
        consumer.execute("SELECT redis_xack('q', 'g', " + ",".join("?" * len(entries)) + ")",
                         [e[0] for e in entries])
    assert seen == list(range(1, 101))
    assert json.loads(one(producer, "SELECT redis('XPENDING', 'q', 'g')"))[0] == 0
    producer.close()
    consumer.close()
