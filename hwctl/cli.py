"""Command-line entry point (placeholder until the subcommands land)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("hwctl")
    return 0
