"""A memory budget for decoded frames and volumes: least recently used entries go first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class FrameCache:
    """Thread-safe LRU cache that keeps the sum of its entries' sizes within a byte budget.

    Parameters
    ----------
    budget_bytes : int
        The most the entries may hold together. An entry larger than the budget is not kept.

    Notes
    -----
    The cache drops its reference to an evicted entry; the memory returns once nobody else holds
    it (a viewport keeps the frame it shows). ``evictions`` counts what was dropped.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self.evictions = 0

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> Any | None:
        """The entry (now the most recently used) or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` can be kept at all."""
        return nbytes <= self.budget

    def put(self, key: Hashable, value: Any, nbytes: int) -> bool:
        """Keep ``value`` under ``key``; evict the oldest entries to stay within the budget.

        Returns False (and keeps nothing) when the entry alone exceeds the budget.
        """
        nbytes = max(0, int(nbytes))
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            if nbytes > self.budget:
                return False
            self._entries[key] = (value, nbytes)
            self._used += nbytes
            while self._used > self.budget and len(self._entries) > 1:
                k, (_, size) = next(iter(self._entries.items()))
                if k == key:
                    break
                del self._entries[k]
                self._used -= size
                self.evictions += 1
            return True

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (no error when absent)."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]

    def discard_prefix(self, prefix: Hashable) -> None:
        """Forget every tuple key whose first element is ``prefix``."""
        with self._lock:
            for k in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == prefix]:
                self._used -= self._entries.pop(k)[1]
