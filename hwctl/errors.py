"""One error taxonomy for host, twin and firmware bridge.

``UserError`` and its subclasses are mistakes a user can fix (bad URL, missing device, wrong
firmware version, bad config): the CLI prints them as one line, no traceback. ``LinkError`` and its
subclasses are faults of the link or the device at run time; they carry counters where relevant.
"""

from __future__ import annotations


class HwctlError(Exception):
    """Base of every error hwctl raises on purpose."""


class UserError(HwctlError):
    """A mistake the user can fix; reported as one clear line."""


class BadUrl(UserError):
    """A backend URL that hwctl cannot parse or does not support."""


class DeviceNotFound(UserError):
    """The device named by a URL does not exist or cannot be opened."""


class DeviceBusy(UserError):
    """The device's port is in use by another program (another node, a bridge, a selftest): two
    programs on one serial port interleave each other's bytes, so the second is refused, and a
    node does not wait for it as for a device that is not there yet."""


class VersionMismatch(UserError):
    """The device speaks another wire version (or is not an hwctl device)."""


class LinkError(HwctlError):
    """Run-time fault of the host <-> device link (timeouts, CRC errors, lost events)."""


class LinkTimeout(LinkError):
    """No response to a command after all retries."""


class DeviceError(LinkError):
    """The device refused a command (NAK) or reported an asynchronous error."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class InstrumentNotFound(UserError):
    """A bench instrument's VISA resource cannot be opened (wrong address, instrument off)."""


class IdentityMismatch(UserError):
    """The instrument at a VISA resource answers ``*IDN?`` as another model than configured."""


class SettingOutOfRange(UserError, ValueError):
    """A bench setting with a wrong type, unit or range; refused before anything is sent."""


class InstrumentError(HwctlError):
    """A bench instrument reported an error in its error queue (e.g. SCPI ``SYST:ERR?``)."""

    def __init__(self, message: str, errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InstrumentTimeout(InstrumentError):
    """A bench instrument did not answer within its VISA timeout."""
