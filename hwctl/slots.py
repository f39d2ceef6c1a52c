"""Host-side book of the device's memory slots (pair-verification paper §II-C2 steps 1 and 6).

The header decoder allocates a slot per stored qubit (HEADER) and the host gives it back with
FREE / FREE_MASK once the verification core has verified or discarded the pair. The book keeps
which slots this node holds, refuses to free a slot twice (a host bug the device would NAK) and
queues the ones to free so that one FREE_MASK can carry up to 240 of them. Sans-IO, numpy.
"""

from __future__ import annotations

import numpy as np

#: the wire's slot field is u16
N_SLOTS_MAX = 1 << 16


class SlotBook:
    def __init__(self) -> None:
        self._held = np.zeros(N_SLOTS_MAX, dtype=bool)
        self._pend = np.zeros(N_SLOTS_MAX, dtype=bool)  # queued for FREE, not yet taken
        self._pending: list[np.ndarray] = []
        self.n_pending = 0
        self._stamp = np.zeros(N_SLOTS_MAX, dtype=np.int32)  # scratch: duplicate detection

    def _dups(self, slots: np.ndarray) -> int:
        """How many entries repeat an earlier one in ``slots`` (O(n), no sort)."""
        if slots.size < 2:
            return 0
        pos = np.arange(slots.size, dtype=np.int32)
        self._stamp[slots] = pos  # the last occurrence wins
        return int(slots.size - np.count_nonzero(self._stamp[slots] == pos))

    @property
    def n_held(self) -> int:
        return int(self._held.sum())

    def held(self, slot: int) -> bool:
        return bool(self._held[slot])

    def pending(self, slot: int) -> bool:
        return bool(self._pend[slot])

    def allocated(self, slots: np.ndarray) -> int:
        """HEADERs gave these slots; returns how many were already held or still waiting for
        their FREE (conflicts: must be 0; the device never hands out a slot it has not freed)."""
        slots = np.asarray(slots, dtype=np.int64)
        conflicts = int((self._held[slots] | self._pend[slots]).sum()) + self._dups(slots)
        self._held[slots] = True
        return conflicts

    def release(self, slots: np.ndarray) -> int:
        """Queue held slots for FREE; returns how many were not held (double frees: must be 0)."""
        slots = np.asarray(slots, dtype=np.int64)
        extra = self._dups(slots)
        if extra:
            slots = np.unique(slots)  # a slot named twice in one call is freed once, the rest count
        h = self._held[slots]
        ok = slots[h & ~self._pend[slots]]  # a conflicting slot is queued once
        self._held[slots[h]] = False
        self._pend[ok] = True
        if ok.size:
            self._pending.append(ok)
            self.n_pending += int(ok.size)
        return int(slots.size - h.sum()) + extra

    def take(self) -> np.ndarray:
        """All slots queued for FREE (and forget them)."""
        if not self._pending:
            return np.zeros(0, dtype=np.int64)
        out = np.concatenate(self._pending)
        self._pend[out] = False
        self._pending.clear()
        self.n_pending = 0
        return out
