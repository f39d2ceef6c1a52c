"""``hwctl`` command-line entry point.

Each subcommand lives in its own module, imported only when that subcommand runs (start-up stays
fast and one broken optional dependency cannot take the whole CLI down). A subcommand module
provides ``add_arguments(parser)`` and ``run(args) -> int``.

User mistakes (bad arguments, bad URLs, missing devices, bad config files) are reported as one
clear line on stderr with exit status 2; they never produce a traceback. Modules signal them by
raising :class:`hwctl.errors.UserError`.

Every command takes ``-v``/``-vv``/``--log-level LEVEL`` (before or after the subcommand): logs go
to stderr through rich's handler, results to stdout (:mod:`hwctl.output`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from hwctl import __version__
from hwctl.errors import UserError
from hwctl.output import add_output_options, add_output_options_tree, log_level, setup_logging

DESCRIPTION = """\
hwctl: hardware-in-the-loop control for quantum-network labs: ESP scheduling and pair
verification over node services, FPGA clock/heralding devices and their software twin, the
network simulator, lab instruments."""
EPILOG = """\
start with:
  hwctl demo                       a 2x2 network of node services on software twins (~30 s)
  hwctl sim --topology 3x3         one network simulation
  hwctl COMMAND --help             every command's options

Devices are opened by URL: twin://, serial:///dev/ttyUSB0?baud=3000000, zmq+tcp://HOST:PORT.
A user mistake is one line on stderr and exit status 2. Docs: README.md and docs/ in the
repository."""

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("hwctl.demo", "end-to-end demo: node services driving software twins over real transports"),
    "sim": ("hwctl.simcli", "network simulator: ESP / DQP / centralized greedy over a topology, or --table5"),
    "sweep": ("hwctl.sweep", "the ESP paper's whole evaluation grid with replicates (local pool or Dask)"),
    "report": ("hwctl.report", "Table V with confidence intervals and Figs. 6-11 from a sweep dataset"),
    "node": ("hwctl.node.cli", "run one node service (ESP core + backend by URL) from a TOML config"),
    "replay": ("hwctl.record", "re-run a node's host logic offline from `hwctl node --record` FILE"),
    "bridge": ("hwctl.firmware.bridge", "board-side bridge: ZeroMQ <-> UART frames"),
    "twin": ("hwctl.sim.twin.serve", "serve a software twin of the FPGA on a pty or ZeroMQ"),
    "keys": ("hwctl.keys", "CurveZMQ key pairs for nodes, bridges and served twins"),
    "study": ("hwctl.study", "regenerate paper studies (e.g. `hwctl study verification`)"),
    "synth": ("hwctl.synth", "synthesize the FPGA top with yosys + nextpnr (iCE40 / ECP5)"),
    "fpga": ("hwctl.fpga.cli", "FPGA boards and proofs: prove, build, flash, selftest"),
    "instruments": ("hwctl.instruments.cli", "lab instruments over VISA: drivers, bench check"),
    "export": ("hwctl.export", "export a run (Parquet + its metadata) to HDF5"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the one line ``hwctl CMD: error: ...`` (exit 2) instead of
    the usage block followed by the error: the message is what the user needs, ``--help`` has the
    rest."""

    #: the arguments this parser was given (for naming a misspelled option in its errors)
    _given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        """As argparse, but arguments this parser does not know are its error, not left for the
        parent: `hwctl sim --topolgy` says `hwctl sim: error: ... (did you mean --topology?)`,
        where argparse had `hwctl: error:` and pointed at `hwctl --help`."""
        self._given = list(sys.argv[1:] if args is None else args)
        ns, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._likely(extras)}")
        return ns, extras

    def _likely(self, unknown: list[str]) -> str:
        """`` (did you mean --x?)`` for the first option in ``unknown`` close to one of ours."""
        import difflib

        ours = {o[2:]: o for a in self._actions for o in a.option_strings if o.startswith("--")}
        for u in unknown:
            if u.startswith("--"):  # (compared without the dashes every option shares)
                near = difflib.get_close_matches(u.split("=", 1)[0][2:], ours, n=1, cutoff=0.7)
                if near:
                    return f" (did you mean {ours[near[0]]}?)"
        return ""

    def _unknown_options(self) -> list[str]:
        """The ``--options`` given to this parser that are none of its own (nor a prefix of one,
        which argparse accepts as an abbreviation)."""
        ours = [o for a in self._actions for o in a.option_strings]
        out = []
        for g in self._given:
            if g == "--":
                break
            name = g.split("=", 1)[0]
            if name.startswith("--") and not any(o.startswith(name) for o in ours):
                out.append(name)
        return out

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        if message.startswith("the following arguments are required"):
            unknown = self._unknown_options()  # a misspelled required option: say which
            if unknown:
                message += f"; unrecognized: {' '.join(unknown)}{self._likely(unknown)}"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _subcommand(argv: list[str]) -> str:
    """The first positional argument: the subcommand (skipping ``--log-level``'s value)."""
    it = iter(argv)
    for a in it:
        if a == "--log-level":
            next(it, None)
        elif not a.startswith("-"):
            return a
    return ""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand named in it imports its module (the others
    are listed by name and help line): start-up does not pay for every subcommand's imports."""
    parser = OneLineParser(
        prog="hwctl", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hwctl {__version__}")
    add_output_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else _subcommand(argv)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if chosen is not None and name != chosen:
            add_output_options(p)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                p.set_defaults(_missing=True)
                add_output_options(p)
                continue
            raise
        mod.add_arguments(p)
        add_output_options_tree(p)
        _describe_subcommands(p)
    return parser


def _describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """A nested subcommand (``hwctl fpga build``) without a description gets its one-line help
    as the description, so its ``--help`` says what it does, not only its usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    child.description = helps[name]
                # its errors say `hwctl fpga build: error: ...`, as its usage errors do
                child.set_defaults(_prog=child.prog)
                _describe_subcommands(child)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `hwctl sim ... | head`: the reader is gone; end quietly, as cat
        import os  # does (and no second error when the interpreter flushes stdout at exit)

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file descriptor (a test's capture)
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a writer the pipe ended


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"hwctl {args.command}: not available in this build", file=sys.stderr)
        return 2
    args._argv = list(argv)  # the command line as given (e.g. what to run again to resume)
    setup_logging(log_level(args))
    from hwctl.backends import register_defaults

    register_defaults()  # twin:// etc. for every command that opens a backend (imports nothing)
    mod = importlib.import_module(args._module)
    prog = getattr(args, "_prog", f"hwctl {args.command}")  # `hwctl fpga build` for nested ones
    try:
        return int(mod.run(args) or 0)
    except UserError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
