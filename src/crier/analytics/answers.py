"""Answers read from the snapshots, kept in the process until the snapshots change.

A view's data is read from the daily snapshots alone, and those change only when a rollup
(or `crier analytics rebuild`) writes them: a trigger then moves the workspace's snapshot
generation on (`analytics_generations`). An answer is kept under everything it rests on
(the workspace, that generation, its timezone, the days, the accounts in scope now, the
metrics, the steps and the comparison), so a dashboard read again costs one look-up of
the generation and the accounts, and never shows what the snapshots no longer say.
Least recently used answers are dropped past a budget of bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_BUDGET = 32 * 1024 * 1024
"""Bytes of answers one process keeps by default."""


class Answers:
    """Serialized answers by key, the least recently used dropped past `budget` bytes (0:
    nothing is kept)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.size = 0
        self.hits = 0
        """Answers given from what is kept."""
        self._kept: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        found = self._kept.get(key)
        if found is None:
            return None
        self.hits += 1
        self._kept.move_to_end(key)
        return found

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.budget:
            return
        if key in self._kept:
            self.size -= len(self._kept.pop(key))
        self._kept[key] = body
        self.size += len(body)
        while self.size > self.budget:
            _, dropped = self._kept.popitem(last=False)
            self.size -= len(dropped)
