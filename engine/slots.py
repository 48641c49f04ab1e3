"""Size-1 hand-over slots between threads: the newest item wins, old ones are dropped."""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item. `put` replaces an unconsumed item (counted in `dropped`),
    so a slow consumer never makes a queue grow and always gets the newest item.

    With `block=True`, `put` instead waits until the consumer took the previous item
    (lossless hand-over for offline runs over a file, where every frame matters).
    """

    def __init__(self, block: bool = False) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self.block = block
        self.dropped = 0  # items replaced before being taken, or refused once closed
        self.put_count = 0  # items offered to put()

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Store `item`; returns False if the slot is closed (or a blocking put timed out)."""
        with self._cond:
            self.put_count += 1
            if self.block:
                if not self._cond.wait_for(lambda: not self._has_item or self._closed, timeout):
                    return False
            if self._closed:
                self.dropped += 1
                return False
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest item, waiting up to `timeout` s; None on timeout or when closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self._cond.notify_all()
            return item

    def get_nowait(self) -> T | None:
        """Take the newest item if there is one, without waiting."""
        return self.get(timeout=0)

    def count_drop(self) -> None:
        """Count an item refused before it reached the slot (e.g. its consumer stopped)."""
        with self._cond:
            self.dropped += 1

    def peek(self) -> T | None:
        with self._cond:
            return self._item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
