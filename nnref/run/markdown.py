"""Markdown tables: the one way nnref prints a table (the CLI's reports, the bench, TensorBoard's text)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["markdown_table"]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    """``| a | b |`` lines: the header, the ``|---|`` rule, one line per row (cells formatted with ``str``)."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
