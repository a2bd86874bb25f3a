"""A real job queue library from PyPI against redlite-server: RQ (pinned in
requirements.txt), unmodified.

RQ needs no Lua for plain jobs (only its optional unique jobs and its scheduler use
EVAL, which Redlite lacks), but leans on most of what issue 5 asks for: the worker waits
for jobs in BLMOVE (BLPOP with several queues), enqueueing is a MULTI/EXEC pipeline with
WATCH for dependencies, results go to a stream per job and are awaited with XREAD BLOCK,
and the worker names itself with CLIENT SETNAME and finds its address in CLIENT LIST.

The worker is a separate process (`rq worker`, which forks a work horse per job) started
before anything is enqueued, so every job reaches it through a blocked BLMOVE that a
write from this process wakes up.
"""

import os
import subprocess
import sys
import time

import pytest

redis = pytest.importorskip("redis")
rq = pytest.importorskip("rq")

import rq_jobs  # noqa: E402  (the worker imports the same module)
from conftest import start_redlite, stop  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))
QUEUE = "redlite-jobs"


def blocked_clients(conn) -> int:
    return int(conn.info("clients")["blocked_clients"])


def wait_until(predicate, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path):
    port, proc = start_redlite(tmp_path)
    try:
        yield port
    finally:
        stop(proc)


def start_worker(port, tmp_path, max_jobs, *queues):
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rq.cli import main; main()", "worker",
         "--url", f"redis://127.0.0.1:{port}/0", "--max-jobs", str(max_jobs),
         "--name", "redlite-test-worker", *queues],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, tmp_path / "worker.log"


def finish(proc, log, timeout=60):
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("worker did not finish:\n" + log.read_text(errors="replace"))
    assert code == 0, f"worker exited with {code}:\n" + log.read_text(errors="replace")


def test_rq_jobs_enqueued_processed_by_a_worker_process_and_results_read_back(server, tmp_path):
    conn = redis.Redis(port=server)
    jobs_total = 25
    worker, log = start_worker(server, tmp_path, jobs_total + 2, QUEUE)
    try:
        # The idle worker waits in BLMOVE on the queue: a blocked client of redlite.
        wait_until(lambda: blocked_clients(conn) >= 1, "the worker to block")
        clients = conn.client_list()
        names = {c["name"]: c for c in clients}
        assert "redlite-test-worker" in names, clients
        assert any("b" in c["flags"] and c["cmd"] == "blmove" for c in clients), clients

        queue = rq.Queue(QUEUE, connection=conn)
        adds = [queue.enqueue(rq_jobs.add, i, 1000) for i in range(jobs_total)]
        described = queue.enqueue(rq_jobs.describe, "redlite")
        failing = queue.enqueue(rq_jobs.fail, "on purpose")

        # Results are read back by waiting on each job's result stream (XREAD BLOCK).
        for i, job in enumerate(adds):
            result = job.latest_result(timeout=30)
            assert result is not None, f"no result for job {i}"
            assert result.type == rq.results.Result.Type.SUCCESSFUL
            assert result.return_value == i + 1000
            assert job.get_status(refresh=True) == rq.job.JobStatus.FINISHED
        info = described.latest_result(timeout=30).return_value
        assert info["word"] == "REDLITE"
        assert info["pid"] != os.getpid()
        failed = failing.latest_result(timeout=30)
        assert failed.type == rq.results.Result.Type.FAILED
        assert "ValueError: on purpose" in failed.exc_string
        assert failing.get_status(refresh=True) == rq.job.JobStatus.FAILED
        assert failing.id in rq.registry.FailedJobRegistry(queue=queue).get_job_ids()
        assert len(queue) == 0
    finally:
        finish(worker, log)
    # Nothing left waiting once the worker is gone.
    assert blocked_clients(conn) == 0


def test_rq_dependencies_and_several_queues(server, tmp_path):
    """Several queues make the worker wait in BLPOP on all of them; a dependent job is
    enqueued by the worker itself (WATCH/MULTI) when its parent finishes."""
    conn = redis.Redis(port=server)
    worker, log = start_worker(server, tmp_path, 3, "high", "low")
    try:
        wait_until(lambda: blocked_clients(conn) >= 1, "the worker to block")
        assert any(c["cmd"] == "blpop" for c in conn.client_list() if "b" in c["flags"])
        low = rq.Queue("low", connection=conn)
        high = rq.Queue("high", connection=conn)
        parent = low.enqueue(rq_jobs.add, 1, 2)
        child = high.enqueue(rq_jobs.add, 40, 2, depends_on=parent)
        other = high.enqueue(rq_jobs.describe, "queue")
        assert child.latest_result(timeout=30).return_value == 42
        assert parent.latest_result(timeout=30).return_value == 3
        assert other.latest_result(timeout=30).return_value["word"] == "QUEUE"
    finally:
        finish(worker, log)
