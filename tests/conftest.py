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

# A suite started in the background by a non-interactive shell (`./dev.sh test &`, `nohup`, some CI
# runners) inherits SIGINT *ignored*, and an exec'd child keeps an ignored signal: every `hwctl`
# process a test starts would then ignore the SIGINT (Ctrl-C) a test sends it, and the test would
# wait for its safety bound (test_ctrl_c_while_waiting_for_the_device_is_one_line hung so). A caught
# signal is reset to its default at exec, so restoring Python's own handler here gives each child
# what it gets when started from a terminal.
import signal  # noqa: E402

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
