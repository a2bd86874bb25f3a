"""The extension in Debian's sqlite3 shell (SQLite 3.40): load, use, errors, and a file
shared with Python."""

import sqlite3
import subprocess


def shell(db, sql, ext):
    p = subprocess.run(["sqlite3", "-batch", "-cmd", f".load {ext}", db], input=sql,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_shell_is_at_least_337():
    out = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout
    assert out.startswith("3.")
    major, minor = (int(x) for x in out.split(".")[:2])
    assert (major, minor) >= (3, 37)


def test_shell_session(ext_path, tmp_path):
    db = str(tmp_path / "shell.db")
    rc, out, err = shell(db, """
SELECT redis_set('greeting', 'hello');
SELECT redis_get('greeting');
SELECT redis_set('n', 10), redis_incrby('n', 5);
SELECT redis_set('s', 'v', 'EX', 100, 'NX');
SELECT quote(redis_set('s', 'w', 'NX'));
SELECT redis_ttl('s'), redis_type('greeting');
SELECT key, type, ttl FROM redis_keys('*') ORDER BY key;
BEGIN; SELECT redis_incr('n'); ROLLBACK;
SELECT redis_get('n');
""", ext_path)
    # Exits cleanly: the statements Redlite caches are finalized when the shell closes
    # the connection (no "unable to close due to unfinalized statements").
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "OK", "hello", "OK|15", "OK", "NULL", "100|string",
        "greeting|string|-1", "n|string|-1", "s|string|100",
        "16", "15",
    ]


def test_shell_error_text(ext_path, tmp_path):
    rc, out, err = shell(str(tmp_path / "e.db"),
                         "SELECT redis_set('g','x');\nSELECT redis_incr('g');\n", ext_path)
    assert rc != 0
    assert "ERR value is not an integer or out of range" in err


def test_file_shared_between_shell_and_python(ext_path, tmp_path):
    db = str(tmp_path / "both.db")
    rc, _, err = shell(db, "SELECT redis_set('from_shell', 'yes');", ext_path)
    assert rc == 0, err
    conn = sqlite3.connect(db)
    conn.enable_load_extension(True)
    conn.load_extension(ext_path)
    assert conn.execute("SELECT redis_get('from_shell')").fetchone()[0] == "yes"
    conn.execute("SELECT redis_set('from_python', 'yes')")
    conn.close()
    rc, out, err = shell(db, "SELECT redis_get('from_python');", ext_path)
    assert (rc, out.strip()) == (0, "yes"), err
    # Plain SQL with no extension sees the data through the views.
    p = subprocess.run(["sqlite3", db, "SELECT key, value FROM redis_strings ORDER BY key"],
                       capture_output=True, text=True)
    assert p.stdout.splitlines() == ["from_python|yes", "from_shell|yes"]


def test_history_in_the_shell(ext_path, tmp_path):
    # A write undone by ROLLBACK TO leaves no entry and takes no number, the newest 3
    # entries are kept, the key-and-time query goes through the table's primary key, and
    # the shell closes cleanly over the statements history keeps prepared.
    rc, out, err = shell(str(tmp_path / "h.db"), """
SELECT redis('HISTORY', 'ENABLE', 'KEY', 'cart:7', 'RETENTION', 'COUNT', 3);
BEGIN;
SELECT redis_set('cart:7', '1');
SELECT redis_set('cart:7', '2');
SAVEPOINT s;
SELECT redis_set('cart:7', 'undone');
ROLLBACK TO s;
RELEASE s;
SELECT redis_set('cart:7', '3');
SELECT redis_set('cart:7', '4');
COMMIT;
SELECT version, op, type, value FROM redis_history WHERE key = 'cart:7' ORDER BY version;
SELECT redis_history_at('cart:7', (SELECT max(ts_ms) FROM redis_history WHERE key = 'cart:7'));
EXPLAIN QUERY PLAN
  SELECT ts_ms, op, value FROM redis_history WHERE key = 'cart:7' AND ts_ms > 0;
""", ext_path)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[:9] == [
        "OK", "OK", "OK", "OK", "OK", "OK",
        '2|set|string|"2"', '3|set|string|"3"', '4|set|string|"4"',
    ]
    assert lines[9] == "4"
    plan = "\n".join(lines[10:])
    assert "VIRTUAL TABLE INDEX" in plan and "redlite_history primary key" in plan, plan
