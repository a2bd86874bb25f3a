"""The server and its files: under a full disk and under another process's write lock,
writes fail with a clear error, reads keep working, nothing acknowledged is lost, writes
resume; and a quiet writer folds the WAL back into the database file."""

import os
import shutil
import sqlite3
import subprocess
import threading
import time

import pytest

import resp
from conftest import start_redlite, stop


@pytest.fixture
def tiny_fs(tmp_path):
    """A 4 MiB tmpfs (the tests run as root, as CI does)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_fails_writes_keeps_reads_and_recovers(tiny_fs):
    # Something else takes half the disk; freeing it later is "space returns".
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * (2 << 20))
    port, proc = start_redlite(tiny_fs, "--appendfsync", "always")
    try:
        c = resp.Conn(port)
        acked = {}
        error = None
        for i in range(100000):
            r = c.command("SET", f"key:{i}", "x" * 1000)
            if isinstance(r, resp.RespError):
                error = str(r)
                break
            acked[f"key:{i}"] = "x" * 1000
        assert error is not None, "the disk never filled"
        assert "full" in error, error
        # Reads keep working, and every acknowledged write is there.
        assert c.command("DBSIZE") >= len(acked) - 1
        for key in list(acked)[:: max(1, len(acked) // 50)]:
            assert c.command("GET", key) == acked[key].encode()
        assert isinstance(c.command("SET", "still", "full"), resp.RespError)
        # Space returns: writes resume, and nothing acknowledged was lost.
        os.remove(filler)
        assert c.command("SET", "after", "ok") == "OK"
        assert c.command("GET", "after") == b"ok"
        for key in acked:
            assert c.command("EXISTS", key) == 1, key
    finally:
        stop(proc)


def test_a_foreign_write_lock_makes_writes_wait_then_fail_clearly(tmp_path):
    port, proc = start_redlite(tmp_path)
    try:
        c = resp.Conn(port, timeout=30)
        assert c.command("SET", "k", "before") == "OK"
        holder = sqlite3.connect(str(tmp_path / "redlite.db"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        result = {}

        def write():
            t0 = time.monotonic()
            result["reply"] = resp.Conn(port, timeout=30).command("SET", "k", "during")
            result["seconds"] = time.monotonic() - t0

        w = threading.Thread(target=write)
        w.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        assert c.command("GET", "k") == b"before"  # reads do not wait for the lock
        assert time.monotonic() - t0 < 1.0
        w.join(30)
        holder.execute("ROLLBACK")
        holder.close()
        reply = result["reply"]
        assert isinstance(reply, resp.RespError) and "locked" in str(reply), reply
        assert 4.0 <= result["seconds"] < 15.0, result["seconds"]
        assert c.command("SET", "k", "after") == "OK"
        assert c.command("GET", "k") == b"after"
    finally:
        stop(proc)


def test_a_quiet_writer_folds_the_wal_back_into_the_database_file(tmp_path):
    # Readers ignore a WAL that is wholly copied back, so the server checkpoints when
    # writes pause, and empties the WAL file a second later. The database file alone then
    # holds every write.
    port, proc = start_redlite(tmp_path)
    try:
        c = resp.Conn(port, timeout=30)
        for i in range(50):
            assert c.command("SET", f"k{i}", f"v{i}") == "OK"
        time.sleep(1.5)
        assert os.path.getsize(tmp_path / "redlite.db-wal") == 0
        copy = tmp_path / "copy.db"
        shutil.copyfile(tmp_path / "redlite.db", copy)  # no -wal, no -shm
        plain = sqlite3.connect(str(copy))
        count = plain.execute(
            "SELECT count(*) FROM redlite_keys k JOIN redlite_strings s ON s.key_id = k.id "
            "WHERE k.key LIKE 'k%'").fetchone()[0]
        value = plain.execute(
            "SELECT s.value FROM redlite_keys k JOIN redlite_strings s ON s.key_id = k.id "
            "WHERE k.key = 'k49'").fetchone()[0]
        plain.close()
        assert (count, value) == (50, "v49")
        assert c.command("GET", "k49") == b"v49"
    finally:
        stop(proc)


def test_sustained_writes_keep_the_wal_bounded(tmp_path):
    # Checkpoints run on a thread of their own while the writer goes on appending, so the
    # WAL is never wholly copied when a batch begins (when SQLite would start it over);
    # the writer copies the rest itself once the WAL holds 16,000 frames (64 MiB). Without
    # that, the WAL grew past 270 MB during 100,000 pipelined SETs of random keys.
    port, proc = start_redlite(tmp_path)
    try:
        load = subprocess.Popen(
            ["redis-benchmark", "-p", str(port), "-t", "set", "-n", "100000", "-c", "50",
             "-P", "16", "-r", "100000", "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The WAL is emptied once writes pause: watch it while they go on.
        largest = 0
        while load.poll() is None:
            try:
                largest = max(largest, os.path.getsize(tmp_path / "redlite.db-wal"))
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        assert load.returncode == 0
        # 16,000 frames of 4,120 bytes, plus what one group commit may add on top.
        assert 0 < largest < 128 * 1024 * 1024, largest
        c = resp.Conn(port, timeout=30)
        keys = c.command("DBSIZE")
        assert 50_000 < keys <= 100_000, keys
        assert c.command("SET", "after", "x") == "OK"
        assert c.command("GET", "after") == b"x"
    finally:
        stop(proc)
