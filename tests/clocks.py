"""A monotonic clock that tests move by hand, for what a process keeps for a few seconds."""

from __future__ import annotations

from types import ModuleType


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stopped_clock(monkeypatch, *modules: ModuleType) -> Clock:
    """One clock for every module named, each of which reads time.monotonic through its own `time` import."""
    clock = Clock()
    for module in modules:
        monkeypatch.setattr(module.time, "monotonic", clock)
    return clock
