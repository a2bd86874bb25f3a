"""The loadable extension through /usr/bin/python3's sqlite3 module (SQLite 3.40 on
Debian 12): every function, NULLs, binary values, transactions, and several processes
sharing one file."""

import json
import multiprocessing
import os
import sqlite3
import time

import pytest
from conftest import connect, one  # noqa: F401 (db is a conftest fixture)

FUNCTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")


def test_issue_walkthrough(db):
    assert one(db, "SELECT redis_set('greeting', 'hello')") == "OK"
    assert one(db, "SELECT redis_get('greeting')") == "hello"
    assert one(db, "SELECT typeof(redis_get('greeting'))") == "text"
    assert db.execute("SELECT redis_set('n', 10), redis_incrby('n', 5)").fetchone() == ("OK", 15)
    assert one(db, "SELECT redis_set('s', 'v', 'EX', 100, 'NX')") == "OK"
    assert one(db, "SELECT redis_set('s', 'w', 'NX')") is None
    assert db.execute("SELECT redis_ttl('s'), redis_type('greeting')").fetchone() == (100, "string")
    assert one(db, "SELECT redis('MSET', 'a', 1, 'b', 2)") == "OK"
    rows = db.execute("SELECT key, type, ttl FROM redis_keys('*') ORDER BY key").fetchall()
    assert rows == [("a", "string", -1), ("b", "string", -1), ("greeting", "string", -1),
                    ("n", "string", -1), ("s", "string", 100)]
    assert one(db, "SELECT redis_select(1)") == "OK"
    assert one(db, "SELECT redis_dbsize()") == 0
    assert one(db, "SELECT redis_db()") == 1
    assert one(db, "SELECT redis_select(0)") == "OK"
    assert one(db, "SELECT redis_dbsize()") == 5
    with pytest.raises(sqlite3.OperationalError, match="^ERR value is not an integer or out of range$"):
        db.execute("SELECT redis_incr('greeting')")


def test_errors_carry_redis_text(db):
    db.execute("SELECT redis_set('k', 'v')")
    cases = [
        ("SELECT redis('NOPE', 'a')", "ERR unknown command 'NOPE', with args beginning with: 'a' "),
        ("SELECT redis_get()", "ERR wrong number of arguments for 'get' command"),
        ("SELECT redis_get('a', 'b')", "ERR wrong number of arguments for 'get' command"),
        ("SELECT redis_set('k', 'v', 'EX', 0)", "ERR invalid expire time in 'set' command"),
        ("SELECT redis_set('k', 'v', 'BOGUS')", "ERR syntax error"),
        ("SELECT redis_select(99)", "ERR DB index is out of range"),
        ("SELECT redis()", "ERR redis() needs a command name"),
    ]
    for sql, text in cases:
        with pytest.raises(sqlite3.OperationalError) as e:
            db.execute(sql)
        assert str(e.value) == text, sql


def test_null_arguments_give_null_and_change_nothing(db):
    assert one(db, "SELECT redis_get(NULL)") is None
    assert one(db, "SELECT redis_set('k', NULL)") is None
    assert one(db, "SELECT redis('SET', NULL, 'v')") is None
    assert one(db, "SELECT redis_dbsize()") == 0
    assert db.execute("SELECT * FROM redis_keys(NULL)").fetchall() == []


def test_sql_argument_types(db):
    assert one(db, "SELECT redis_set('i', 42)") == "OK"
    assert one(db, "SELECT redis_get('i')") == "42"
    assert one(db, "SELECT redis_set('r', 2.5)") == "OK"
    assert one(db, "SELECT redis_get('r')") == "2.5"
    assert one(db, "SELECT redis_incrbyfloat('r', 0.5)") == "3"
    assert one(db, "SELECT redis_set(7, 'seven')") == "OK"
    assert one(db, "SELECT redis_get('7')") == "seven"


def test_binary_values_round_trip(db):
    blob = b"a\x00b\xff\xfe"
    assert one(db, "SELECT redis_set(?, ?)", b"bin\x00key", blob) == "OK"
    got = one(db, "SELECT redis_get(?)", b"bin\x00key")
    assert isinstance(got, bytes) and got == blob
    assert one(db, "SELECT typeof(redis_get(?))", b"bin\x00key") == "blob"
    # Valid UTF-8 given as a BLOB comes back as TEXT: the same bytes, one SQL value.
    assert one(db, "SELECT redis_set(?, ?)", b"k", "héllo".encode()) == "OK"
    assert one(db, "SELECT redis_get('k')") == "héllo"
    assert one(db, "SELECT redis_get('k') = 'héllo'") == 1
    assert one(db, "SELECT redis_strlen('k')") == 6
    assert one(db, "SELECT redis_append(?, ?)", b"bin\x00key", b"\x00") == 6
    assert one(db, "SELECT redis_get(?)", b"bin\x00key") == blob + b"\x00"
    keys = [r[0] for r in db.execute("SELECT key FROM redis_keys('bin*')")]
    assert keys == [b"bin\x00key"]


def test_rollback_undoes_writes(db):
    db.execute("SELECT redis_set('n', 1)")
    db.execute("BEGIN")
    assert one(db, "SELECT redis_incr('n')") == 2
    assert one(db, "SELECT redis_set('other', 'x')") == "OK"
    db.execute("ROLLBACK")
    assert one(db, "SELECT redis_get('n')") == "1"
    assert one(db, "SELECT redis_exists('other')") == 0
    db.execute("BEGIN")
    assert one(db, "SELECT redis_incr('n')") == 2
    db.execute("COMMIT")
    assert one(db, "SELECT redis_get('n')") == "2"


def test_failed_command_inside_transaction_changes_nothing(db):
    db.execute("SELECT redis_set('s', 'text')")
    db.execute("BEGIN")
    db.execute("SELECT redis_set('a', 1)")
    with pytest.raises(sqlite3.OperationalError):
        # The failing command raises; the caller's transaction and its writes stay.
        db.execute("SELECT redis('INCRBY', 's', 1)")
    db.execute("COMMIT")
    assert one(db, "SELECT redis_get('a')") == "1"
    assert one(db, "SELECT redis_get('s')") == "text"


def test_history_recorded_in_a_python_transaction(db):
    # Writes in one transaction, a failing command and a rolled-back savepoint among them:
    # only the surviving writes have entries, numbered as they were made, the newest
    # COUNT of them kept; the key-and-time query takes bound parameters.
    db.execute("SELECT redis('HISTORY', 'ENABLE', 'KEY', 'job', 'RETENTION', 'COUNT', 4)")
    db.execute("BEGIN")
    for i in range(1, 7):
        db.execute("SELECT redis_set('job', ?)", (f"step{i}",))
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT redis('INCR', 'job')")
    db.execute("SAVEPOINT s")
    db.execute("SELECT redis_set('job', 'undone')")
    db.execute("ROLLBACK TO s")
    db.execute("RELEASE s")
    db.execute("SELECT redis_set('job', 'step7')")
    db.execute("COMMIT")
    rows = db.execute(
        "SELECT version, op, value FROM redis_history WHERE key = ? AND ts_ms > ? ORDER BY version",
        ("job", 0),
    ).fetchall()
    assert rows == [(v, "set", json.dumps(f"step{v}")) for v in (4, 5, 6, 7)]


def test_writers_are_directonly(db):
    db.execute("CREATE TABLE t (x)")
    db.execute("CREATE VIEW v_reads AS SELECT redis_get('k') AS g")
    db.execute("CREATE VIEW v_writes AS SELECT redis_set('k', 'from view') AS s")
    db.execute("SELECT redis_set('k', 'v')")
    assert one(db, "SELECT g FROM v_reads") == "v"
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of redis_set"):
        db.execute("SELECT s FROM v_writes")
    db.execute("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT redis('SET', 'k', 'trig'); END")
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of redis"):
        db.execute("INSERT INTO t VALUES (1)")
    assert one(db, "SELECT redis_get('k')") == "v"


def test_json_for_aggregate_replies(db):
    db.execute("SELECT redis('MSET', 'a', '1', 'b', '2')")
    assert json.loads(one(db, "SELECT redis('MGET', 'a', 'b', 'c')")) == ["1", "2", None]
    info = json.loads(one(db, "SELECT redis('KEYINFO', 'a')"))
    assert info["type"] == "string" and info["ttl"] == -1 and info["version"] == 1


def test_views_hide_expired_keys(db):
    db.execute("SELECT redis_set('live', 'v')")
    db.execute("SELECT redis_set('dying', 'v', 'PX', 1)")
    import time
    time.sleep(0.01)
    assert db.execute("SELECT key, value FROM redis_strings").fetchall() == [("live", "v")]
    assert db.execute("SELECT key FROM redis_keyspace").fetchall() == [("live",)]
    assert one(db, "SELECT redis_exists('dying')") == 0
    assert one(db, "SELECT redis('VACUUM')") == 1
    assert one(db, "SELECT count(*) FROM redlite_keys") == 1


def test_function_list_is_exact(db):
    names = {r[0] for r in db.execute(
        "SELECT name FROM pragma_function_list WHERE name LIKE 'redis%' OR name LIKE 'redlite%'")}
    # One file per module lists the functions it registers (tests/functions/*.txt), so a
    # new function fails this test until someone writes it down (and tests it).
    expected, expected_modules = set(), set()
    for name in sorted(os.listdir(FUNCTIONS)):
        for line in open(os.path.join(FUNCTIONS, name), encoding="utf-8"):
            line = line.split("#")[0].strip()
            if line.startswith("table "):
                expected_modules.add(line.split()[1])
            elif line:
                expected.add(line)
    assert names == expected
    modules = {r[0] for r in db.execute(
        "SELECT name FROM pragma_module_list WHERE name LIKE 'redis%'")}
    assert modules == expected_modules
    flags = dict(db.execute(
        "SELECT name, flags FROM pragma_function_list WHERE name IN ('redis_set','redis_get')"))
    directonly, deterministic, innocuous = 0x80000, 0x800, 0x200000
    assert flags["redis_set"] & directonly
    assert not flags["redis_get"] & directonly
    for f in flags.values():
        assert not f & deterministic and not f & innocuous


def _incr_worker(args):
    ext, path, n = args
    conn = connect(ext, path)
    for _ in range(n):
        conn.execute("SELECT redis_incr('counter')").fetchone()
    conn.close()
    return n


def test_four_processes_share_one_file(ext_path, tmp_path):
    path = str(tmp_path / "shared.db")
    connect(ext_path, path).close()  # create the schema once, before the race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        done = pool.map(_incr_worker, [(ext_path, path, 5000)] * 4)
    assert sum(done) == 20000
    conn = connect(ext_path, path)
    assert one(conn, "SELECT redis_get('counter')") == "20000"
    assert one(conn, "PRAGMA journal_mode") == "wal"
    assert one(conn, "PRAGMA integrity_check") == "ok"


def test_connection_closes_cleanly_after_calls(ext_path, tmp_path):
    # Redlite keeps statements prepared between calls; closing must still succeed and
    # release the file (a second connection can then switch journal modes, which needs
    # every other connection gone).
    path = str(tmp_path / "close.db")
    conn = connect(ext_path, path)
    for i in range(100):
        conn.execute("SELECT redis_set(?, ?), redis_get(?)", (f"k{i}", i, f"k{i}")).fetchone()
    list(conn.execute("SELECT * FROM redis_keys('k1*')"))
    conn.close()
    other = sqlite3.connect(path, isolation_level=None)
    assert other.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    other.close()


def test_schema_is_stable_on_reload(ext_path, tmp_path):
    path = str(tmp_path / "r.db")
    c1 = connect(ext_path, path)
    c1.execute("SELECT redis_set('k', 'v')")
    c1.close()
    c2 = connect(ext_path, path)
    assert one(c2, "PRAGMA user_version") == 8
    assert one(c2, "SELECT redis_get('k')") == "v"
    tables = {r[0] for r in c2.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"redlite_keys", "redlite_strings", "redlite_hashes", "redlite_lists",
            "redlite_sets", "redlite_zsets", "redlite_streams", "redlite_stream_entries",
            "redlite_stream_groups", "redlite_stream_consumers", "redlite_stream_pending",
            "redlite_history", "redlite_history_config", "redlite_settings",
            "redlite_zset_ranks"} <= tables


ORPHANS = " + ".join(
    f"(SELECT count(*) FROM {t} WHERE key_id NOT IN (SELECT id FROM redlite_keys))"
    for t in ["redlite_strings", "redlite_hashes", "redlite_lists", "redlite_sets",
              "redlite_zsets", "redlite_zset_ranks", "redlite_streams",
              "redlite_stream_entries", "redlite_stream_groups", "redlite_stream_consumers",
              "redlite_stream_pending"])


def fill_every_type(db):
    db.execute("SELECT redis_set('s', 'v')")
    db.execute("SELECT redis_hset('h', 'f', 'v', 'g', 'w')")
    db.execute("SELECT redis_rpush('l', 'a', 'b')")
    db.execute("SELECT redis_sadd('st', 'a', 'b')")
    db.execute("BEGIN")
    for i in range(1100):  # past the size that keeps rank rows
        db.execute("SELECT redis_zadd('z', ?, ?)", (i % 9, f"m{i}"))
    db.execute("COMMIT")
    db.execute("SELECT redis('XADD', 'x', '1-1', 'f', 'v')")
    db.execute("SELECT redis('XGROUP', 'CREATE', 'x', 'g', '0')")
    db.execute("SELECT redis('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 'x', '>')")


def test_deleted_keys_leave_no_rows_with_foreign_keys_off(db):
    """Python's sqlite3, like the sqlite3 shell, has foreign keys off, so the schema's
    ON DELETE CASCADE does nothing here: DEL, a SET over another type, an expired key
    written again and FLUSHALL must still take every row of the key with them."""
    assert one(db, "PRAGMA foreign_keys") == 0
    fill_every_type(db)
    assert one(db, "SELECT count(*) FROM redlite_zset_ranks") > 3
    assert one(db, f"SELECT {ORPHANS}") == 0
    assert one(db, "SELECT redis_del('s', 'h', 'l', 'st', 'z', 'x')") == 6
    assert one(db, f"SELECT {ORPHANS}") == 0
    assert one(db, "SELECT count(*) FROM redlite_hashes") + \
        one(db, "SELECT count(*) FROM redlite_zsets") == 0
    fill_every_type(db)
    db.execute("SELECT redis_set('h', 'now a string')")
    db.execute("SELECT redis('PEXPIRE', 'l', 1)")
    time.sleep(0.01)
    db.execute("SELECT redis_rpush('l', 'fresh')")
    assert one(db, "SELECT count(*) FROM redlite_hashes") == 0
    assert one(db, "SELECT count(*) FROM redlite_lists") == 1
    assert one(db, f"SELECT {ORPHANS}") == 0
    db.execute("SELECT redis('FLUSHALL')")
    assert one(db, f"SELECT {ORPHANS}") == 0
    assert one(db, "SELECT count(*) FROM redlite_zsets") == 0


def test_rows_left_by_earlier_versions_are_deleted_once(ext_path, tmp_path):
    path = str(tmp_path / "old.db")
    c = connect(ext_path, path)
    fill_every_type(c)
    # As an earlier version left a file: no triggers, keys deleted with foreign keys off.
    for t in ["string", "hash", "list", "set", "zset", "stream"]:
        c.execute(f"DROP TRIGGER redlite_keys_delete_{t}")
    c.execute("DELETE FROM redlite_keys")
    c.execute("PRAGMA user_version = 3")
    assert one(c, f"SELECT {ORPHANS}") > 1100
    c.close()
    c = connect(ext_path, path)
    assert one(c, "SELECT redis_dbsize()") == 0
    assert one(c, "PRAGMA user_version") == 8
    assert one(c, f"SELECT {ORPHANS}") == 0
    c.close()
