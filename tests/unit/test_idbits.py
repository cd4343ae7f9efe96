"""IdBits: the bitmap id set the export uses to take each fine once (bounded memory)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bursar.runtime.idbits import IdBits

ids = st.one_of(st.integers(min_value=0, max_value=5000), st.none(), st.integers(max_value=-1), st.text(max_size=3))


@given(st.lists(ids), st.lists(ids))
def test_it_answers_as_a_set_does(added, asked):
    bits, plain = IdBits(), set()
    for value in added:
        bits.add(value)
        plain.add(value)
    for value in added + asked:
        assert (value in bits) == (value in plain), value


def test_memory_is_bounded_by_the_highest_id_not_the_count():
    bits = IdBits()
    for value in range(1_000_000):
        bits.add(value)
    assert len(bits._bits) <= 2 * 1_000_000 // 8
    assert 999_999 in bits and 1_000_000 not in bits and True not in bits
