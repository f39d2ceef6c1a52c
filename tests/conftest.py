"""Test-wide set-up: the backend URL schemes the CLI registers at start-up (``twin://``), so tests
that open backends or run node services directly see what a user of the CLI sees."""

from hwctl.backends import register_defaults

register_defaults()

# No test may depend on machine speed: Hypothesis' default deadline (200 ms per example) is a
# wall-clock budget that the shared 2-core machine misses under load (test_wire's FREE_MASK
# property took 416 ms at load 14 and failed as "flaky"). Tests that set their own settings keep
# them; the rest run without a deadline.
from hypothesis import settings  # noqa: E402

settings.register_profile("hwctl", deadline=None)
settings.load_profile("hwctl")
