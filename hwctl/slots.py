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
        self._pending: list[np.ndarray] = []
        self.n_pending = 0

    @property
    def n_held(self) -> int:
        return int(self._held.sum())

    def held(self, slot: int) -> bool:
        return bool(self._held[slot])

    def allocated(self, slots: np.ndarray) -> int:
        """HEADERs gave these slots; returns how many were already held (conflicts: must be 0)."""
        slots = np.asarray(slots, dtype=np.int64)
        conflicts = int(self._held[slots].sum())
        if slots.size > 1:
            conflicts += slots.size - np.unique(slots).size
        self._held[slots] = True
        return conflicts

    def release(self, slots: np.ndarray) -> int:
        """Queue held slots for FREE; returns how many were not held (double frees: must be 0)."""
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size > 1 and np.unique(slots).size != slots.size:
            slots = np.unique(slots)  # a slot named twice in one call is freed once ...
            extra = 1  # ... and counted as a double free
        else:
            extra = 0
        h = self._held[slots]
        ok = slots[h]
        self._held[ok] = False
        if ok.size:
            self._pending.append(ok)
            self.n_pending += int(ok.size)
        return int(slots.size - ok.size) + extra

    def take(self) -> np.ndarray:
        """All slots queued for FREE (and forget them)."""
        if not self._pending:
            return np.zeros(0, dtype=np.int64)
        out = np.concatenate(self._pending)
        self._pending.clear()
        self.n_pending = 0
        return out
