"""Hypothesis beside atheris: each harness's own check (``fuzz.NAME.test_one``) over
byte-level edits of its seed corpus (flips, cuts, insertions, integers overwritten),
shrunk to a minimal input when one fails. The same property as the fuzzers, found by
another search: a refusal is a ``ColearningError``, anything accepted is consistent."""

import importlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = {"codec": 300, "network": 300, "config": 100, "booster": 60, "forest": 60, "store": 25}

edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "int"]),
        st.integers(0, 1 << 20),
        st.binary(min_size=1, max_size=8),
        st.sampled_from([0, 1, 255, 2**31 - 1, 2**32, 2**63, 2**64 - 1]),
    ),
    min_size=1,
    max_size=4,
)


def mutate(seed: bytes, changes) -> bytes:
    blob = bytearray(seed)
    for kind, at, data, number in changes:
        at = at % (len(blob) + 1)
        if kind == "flip" and at < len(blob):
            blob[at] ^= data[0] or 1
        elif kind == "cut":
            del blob[at:]
        elif kind == "insert":
            blob[at:at] = data
        else:
            blob[at : at + 8] = struct.pack("<Q", number % 2**64)
    return bytes(blob)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_edited_seeds_are_refused_cleanly_or_read_consistently(name):
    harness = importlib.import_module(f"fuzz.{name}")
    corpus = harness.seeds()

    @settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(index=st.integers(0, len(corpus) - 1), changes=edits)
    def check(index, changes):
        harness.test_one(mutate(corpus[index], changes))

    for seed in corpus:  # the seeds themselves are valid
        harness.test_one(seed)
    check()
