"""Hostile databases and SQL: a file crafted to call Redlite from triggers and views, and
a corrupted file, give clean errors; nothing crashes and nothing is written."""

import os
import sqlite3

import pytest

from conftest import connect


def test_crafted_schema_cannot_call_writers(ext_path, tmp_path):
    path = str(tmp_path / "crafted.db")
    # Someone else's file: a trigger on Redlite's own table and a view that write.
    plain = sqlite3.connect(path)
    plain.executescript("""
        CREATE TABLE notes (x);
        CREATE TRIGGER sneaky AFTER INSERT ON notes
          BEGIN SELECT redis_set('owned', 'yes'); SELECT redis('FLUSHALL'); END;
        CREATE VIEW looks_harmless AS SELECT redis_flushall() AS x;
    """)
    plain.close()
    conn = connect(ext_path, path)
    conn.execute("SELECT redis_set('keep', 'me')")
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of redis_set"):
        conn.execute("INSERT INTO notes VALUES (1)")
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of redis_flushall"):
        conn.execute("SELECT * FROM looks_harmless")
    assert conn.execute("SELECT redis_get('keep')").fetchone()[0] == "me"
    assert conn.execute("SELECT redis_exists('owned')").fetchone()[0] == 0


def test_trigger_on_redlite_tables_cannot_write_through_redlite(ext_path, tmp_path):
    path = str(tmp_path / "t.db")
    conn = connect(ext_path, path)
    conn.execute("""CREATE TRIGGER echo AFTER INSERT ON redlite_strings
                    BEGIN SELECT redis('SET', 'echo', 'x'); END""")
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of redis"):
        conn.execute("SELECT redis_set('a', '1')")
    # The failed command left nothing behind.
    conn.execute("DROP TRIGGER echo")
    assert conn.execute("SELECT redis_dbsize()").fetchone()[0] == 0


def test_reentrant_reader_in_trigger_is_an_error_not_a_deadlock(ext_path, tmp_path):
    conn = connect(ext_path, str(tmp_path / "r.db"))
    conn.execute("CREATE TABLE log (v)")
    conn.execute("""CREATE TRIGGER peek AFTER INSERT ON redlite_strings
                    BEGIN INSERT INTO log VALUES (redis_get('a')); END""")
    with pytest.raises(sqlite3.OperationalError, match="recursive call into Redlite"):
        conn.execute("SELECT redis_set('a', '1')")


def test_corrupted_file_gives_a_clean_error(ext_path, tmp_path):
    path = str(tmp_path / "corrupt.db")
    conn = connect(ext_path, path)
    for i in range(2000):
        conn.execute("SELECT redis_set(?, ?)", (f"key:{i}", "v" * 100))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        # Leave the header and schema page, scramble pages further in.
        for offset in range(4096 * 3, size, 4096 * 2):
            f.seek(offset)
            f.write(os.urandom(512))
    errors = 0
    try:
        conn = connect(ext_path, path)
    except sqlite3.DatabaseError:
        return  # refusing to load a damaged file is a clean error too
    for i in range(0, 2000, 50):
        try:
            conn.execute("SELECT redis_get(?)", (f"key:{i}",)).fetchone()
        except sqlite3.DatabaseError as e:
            errors += 1
            assert "malformed" in str(e) or "corrupt" in str(e) or "not a database" in str(e), e
    assert conn.execute("PRAGMA quick_check").fetchone()[0] != "ok" or errors == 0


def test_a_newer_schema_is_refused(ext_path, tmp_path):
    path = str(tmp_path / "future.db")
    connect(ext_path, path).close()
    plain = sqlite3.connect(path)
    plain.execute("PRAGMA user_version = 99")
    plain.close()
    with pytest.raises(sqlite3.OperationalError, match="schema version 99 is newer"):
        connect(ext_path, path)
