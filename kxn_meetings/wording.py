"""Counts as people read them: '1 invitation', '29 members'."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
