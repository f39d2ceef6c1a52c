"""Test-wide set-up: the backend URL schemes the CLI registers at start-up (``twin://``), so tests
that open backends or run node services directly see what a user of the CLI sees."""

from hwctl.backends import register_defaults

register_defaults()
