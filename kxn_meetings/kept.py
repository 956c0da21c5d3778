"""What a web process keeps between requests: values read or rendered once and served again, each for a bounded
time, at most a bounded number of them, the least recently used dropped first. Kept per app (its `extensions`), so
test apps never see one another's."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from flask import current_app

V = TypeVar("V")


class Kept(Generic[V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.values: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, ttl: float | None = None) -> V | None:
        """The value kept under `key`, if it was kept less than `ttl` seconds ago (None: however long ago)."""
        with self.lock:
            found = self.values.get(key)
            if found is None or (ttl is not None and time.monotonic() - found[0] >= ttl):
                return None
            self.values.move_to_end(key)
            return found[1]

    def keep(self, key: Hashable, value: V) -> V:
        with self.lock:
            self.values[key] = (time.monotonic(), value)
            self.values.move_to_end(key)
            while len(self.values) > self.size:
                self.values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self.values)


def kept(name: str, size: int) -> Kept:
    """The app's store called `name`, made on first use."""
    store = current_app.extensions.get(name)
    if store is None:
        store = current_app.extensions.setdefault(name, Kept(size))
    return store


def read_through(name: str, size: int, key: Hashable, ttl: float | None, read: Callable[[], V]) -> V:
    """The value kept under `key` in the store `name`, or `read()` kept there; with a `ttl` of 0 or less, `read()`
    every time and nothing kept. None (nothing found) is not kept, so addresses of things that do not exist never
    push out those that do."""
    if ttl is not None and ttl <= 0:
        return read()
    store: Kept[V] = kept(name, size)
    found = store.get(key, ttl)
    if found is not None:
        return found
    value = read()
    if value is None:
        return value
    return store.keep(key, value)
