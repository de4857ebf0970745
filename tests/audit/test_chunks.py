"""Chunk arithmetic: pure, so every edge of the key space is checked without a server."""

from __future__ import annotations

from dbaudit.audit.chunks import (
    MAX_SLICES,
    Digest,
    Plan,
    coarsen,
    key_slices,
    next_power_of_two,
    parse_token,
    truncating_division,
)
from dbaudit.core.snapshot import Column


def test_key_slices_are_half_open_open_ended_and_cover_the_whole_span() -> None:
    slices = key_slices((1, 1_000_000), 1_000_000)
    assert slices[0][0] is None and slices[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
    assert key_slices((1, 10**12), 10**12).__len__() == MAX_SLICES
    assert key_slices((1, 3000), 3000) == []


def test_range_buckets_truncate_toward_zero_like_the_servers() -> None:
    assert [truncating_division(k, 4) for k in (-5, -4, -1, 0, 3, 4)] == [-1, -1, 0, 0, 0, 1]
    plan = Plan("range", (Column("id", 1, "int", False, None),), 4)
    assert [plan.bounds(b) for b in (-1, 0, 1)] == [(-7, -4), (-3, 3), (4, 7)]


def test_finer_range_buckets_merge_into_coarser_ones_without_losing_rows() -> None:
    fine = Plan("range", (Column("id", 1, "int", False, None),), 2)
    merged = coarsen(fine, {0: Digest(1, 5), 1: Digest(2, 7), 2: Digest(1, 1), -1: Digest(1, 2)}, 4)
    assert merged == {0: Digest(4, 14), 1: Digest(1, 1)}


def test_hash_buckets_merge_by_their_low_bits() -> None:
    assert coarsen(Plan("hash", (), 8), {1: Digest(1, 1), 5: Digest(1, 2), 6: Digest(1, 3)}, 4) == {
        1: Digest(2, 3), 2: Digest(1, 3)}


def test_a_fingerprint_token_round_trips_and_names_its_scheme() -> None:
    token = Digest(3, 0xABC).token()
    assert token == "c2/sha256:3:abc"
    assert parse_token(token) == ("c2/sha256", Digest(3, 0xABC))
    assert [next_power_of_two(n) for n in (0, 1, 3, 1024, 1025)] == [1, 1, 4, 1024, 2048]
