"""``hwctl`` command-line entry point.

Each subcommand lives in its own module, imported only when that subcommand runs (start-up stays
fast and one broken optional dependency cannot take the whole CLI down). A subcommand module
provides ``add_arguments(parser)`` and ``run(args) -> int``.

User mistakes (bad arguments, bad URLs, missing devices, bad config files) are reported as one
clear line on stderr with exit status 2; they never produce a traceback. Modules signal them by
raising :class:`hwctl.errors.UserError`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from hwctl import __version__
from hwctl.errors import UserError

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("hwctl.demo", "end-to-end demo: node services driving software twins over real transports"),
    "sim": ("hwctl.simcli", "network simulator: ESP / DQP / centralized greedy over a topology, or --table5"),
    "sweep": ("hwctl.sweep", "the ESP paper's whole evaluation grid with replicates (local pool or Dask)"),
    "report": ("hwctl.report", "Table V with confidence intervals and Figs. 6-11 from a sweep dataset"),
    "node": ("hwctl.node", "run one node service (ESP core + backend by URL) from a TOML config"),
    "bridge": ("firmware.bridge", "board-side bridge: ZeroMQ <-> UART frames"),
    "twin": ("sim.twin.serve", "serve a software twin of the FPGA on a pty or ZeroMQ"),
    "study": ("hwctl.study", "regenerate paper studies (e.g. `hwctl study verification`)"),
    "synth": ("hwctl.synth", "synthesize the FPGA top with yosys + nextpnr (iCE40 / ECP5)"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the one line ``hwctl CMD: error: ...`` (exit 2) instead of
    the usage block followed by the error: the message is what the user needs, ``--help`` has the
    rest."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hwctl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hwctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                p.set_defaults(_missing=True)
                continue
            raise
        mod.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"hwctl {args.command}: not available in this build", file=sys.stderr)
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args) or 0)
    except UserError as exc:
        print(f"hwctl {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwctl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
