"""Job functions for tests/test_job_queue.py. RQ workers import jobs by module path, so
they live in a module of their own that the worker process can import (PYTHONPATH)."""

import os


def add(a, b):
    return a + b


def describe(word):
    """Returns something only the worker process can know, to prove where it ran."""
    return {"word": word.upper(), "pid": os.getpid()}


def fail(message):
    raise ValueError(message)
