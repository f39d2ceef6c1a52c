"""Argument types shared by the ``hwctl`` subcommands (argparse turns their errors into one-line
usage errors, exit 2, never a traceback)."""

from __future__ import annotations

import argparse


def seed(text: str) -> int:
    """A random seed: an integer 0 <= seed < 2**63 (numpy's generators refuse negative seeds)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer >= 0") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected 0 <= seed < 2**63")
    return value
