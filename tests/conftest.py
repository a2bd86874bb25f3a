"""Shared fixtures: paths to the built artifacts, free ports, and a real redis-server
started for the session as the oracle."""

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = os.path.join(ROOT, "dist")
EXT = os.path.join(DIST, "libredlite")  # load_extension appends .so itself
EXT_SO = EXT + ".so"
SERVER = os.path.join(DIST, "redlite-server")
SCRIPTS = os.path.join(ROOT, "tests", "scripts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


@pytest.fixture(scope="session")
def ext_path():
    assert os.path.exists(EXT_SO), f"{EXT_SO} is missing: run `make` first"
    return EXT


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory):
    """A real redis-server (Debian's) on a free loopback port, for the whole session."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed (apt-get install redis-server)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def connect(ext_path, path=":memory:"):
    """A Python sqlite3 connection with the extension loaded. A generous busy timeout:
    the multi-process tests must not fail on a loaded machine."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.enable_load_extension(True)
    conn.load_extension(ext_path)
    conn.enable_load_extension(False)
    return conn


def one(conn, sql, *params):
    """The first column of the first row."""
    return conn.execute(sql, params).fetchone()[0]


@pytest.fixture
def db(ext_path, tmp_path):
    """A fresh file database with the extension loaded."""
    conn = connect(ext_path, str(tmp_path / "t.db"))
    yield conn
    conn.close()


def script_files():
    return sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".redis"))


def needs_version(name):
    """The Redis version a script file's behaviour arrived in: `zsets-7.2.redis` is 7.2;
    files without a version in their name need nothing newer than Debian's."""
    m = re.search(r"-(\d+)\.(\d+)\.redis$", name)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def skip_if_newer_than(port, name):
    """Skips (never passes) a script the real redis-server on `port` is too old for."""
    import resp
    info = resp.Conn(port)
    text = info.command("INFO", "server")
    info.close()
    version = re.search(rb"redis_version:(\d+)\.(\d+)", text)
    have = (int(version.group(1)), int(version.group(2)))
    if have < needs_version(name):
        pytest.skip(f"{name} needs Redis {needs_version(name)}; the real redis-server is {have}")


def start_redlite(workdir, *extra):
    """Starts dist/redlite-server on a free port with its database in `workdir`."""
    assert os.path.exists(SERVER), f"{SERVER} is missing: run `make` first"
    port = free_port()
    proc = subprocess.Popen(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--dbfilename", "redlite.db", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    return port, proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def redlite_server(tmp_path_factory):
    """A redlite-server for the whole session: (port, database path)."""
    workdir = tmp_path_factory.mktemp("redlite")
    port, proc = start_redlite(workdir)
    try:
        yield port, str(workdir / "redlite.db")
    finally:
        stop(proc)
