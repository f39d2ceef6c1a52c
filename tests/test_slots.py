"""SlotBook: the node's record of device memory slots (allocated by HEADER, freed by FREE_MASK)."""

from __future__ import annotations

import numpy as np

from hwctl.slots import SlotBook
from hwctl.wire import free_masks


def test_allocate_release_take_round_trip() -> None:
    b = SlotBook()
    assert b.allocated(np.array([3, 4, 5, 700])) == 0
    assert b.n_held == 4 and b.held(700) and not b.held(6)
    assert b.release(np.array([4, 700])) == 0
    assert b.n_held == 2 and b.n_pending == 2
    assert b.release(np.array([5])) == 0
    got = b.take()
    assert sorted(got.tolist()) == [4, 5, 700] and b.n_pending == 0 and b.take().size == 0
    named = sorted(base + i for base, m in free_masks(got) for i in range(m.bit_length()) if m >> i & 1)
    assert named == [4, 5, 700]


def test_conflicts_and_double_frees_are_counted_not_hidden() -> None:
    b = SlotBook()
    b.allocated(np.array([1, 2]))
    assert b.allocated(np.array([2, 9, 9])) == 2  # 2 still held, 9 twice in one block
    assert b.release(np.array([1])) == 0
    assert b.release(np.array([1, 8])) == 2  # 1 already released, 8 never held
    assert b.release(np.array([2, 2])) == 1  # freed once, the second counted
    assert sorted(b.take().tolist()) == [1, 2]
