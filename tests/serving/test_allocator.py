"""The allocator settings of `smg launch`: which environments keep their own, and when a trim runs (what
they give back is measured on a real gateway in tests/serving/test_slow_readers.py)."""

from __future__ import annotations

import pytest

from smg.serving.allocator import Trimmer, operator_tuned, returning_freed_memory

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("env", "tuned"),
    [
        ({}, False),
        ({"MALLOC_ARENA_MAX": "2", "GLIBC_TUNABLES": "glibc.pthread.rseq=0"}, False),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, True),
    ],
)
def test_an_environment_that_sets_a_threshold_keeps_it(env: dict[str, str], tuned: bool) -> None:
    assert operator_tuned(env) is tuned


def test_trims_run_while_the_rss_is_the_slack_above_the_lowest_seen() -> None:
    rss = [100 * MIB]
    trims: list[int] = []

    def trim() -> None:
        trims.append(rss[0])
        rss[0] = max(rss[0] - 20 * MIB, 101 * MIB)  # what the trim gave back

    trimmer = Trimmer(trim, rss=lambda: rss[0], slack=8 * MIB)
    rss[0] = 107 * MIB
    assert not trimmer.check()
    rss[0] = 300 * MIB  # a burst: a trim gives a little back, memory is in use
    assert trimmer.check()
    assert trimmer.check()  # still far above the lowest: trimmed again
    # The burst is over, its memory freed but kept: a trim gives it back.
    assert trimmer.check()
    assert trims == [300 * MIB, 280 * MIB, 260 * MIB]
    rss[0] = 104 * MIB
    assert not trimmer.check()


async def test_a_tuned_environment_leaves_the_allocator_alone() -> None:
    async with returning_freed_memory({"MALLOC_MMAP_THRESHOLD_": "131072"}) as applied:
        assert applied is False
