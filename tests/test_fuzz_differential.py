"""A short, fixed-seed run of the differential fuzzer (tests/fuzz_differential.py)."""

import fuzz_differential


def test_random_commands_match_real_redis(redis_port, redlite_server):
    done, mismatches = fuzz_differential.run(redis_port, redlite_server[0], seed=20261125, count=4000)
    assert done == 4000 or mismatches
    assert not mismatches, "\n".join(mismatches)
