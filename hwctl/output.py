"""Terminal output shared by every ``hwctl`` command: logging options, stderr consoles, tables that
fit the terminal.

Conventions (docs in README "Output and logging"):

* stdout carries results only (tables, summaries, ``--json``), so ``hwctl sim > out.txt`` or
  ``hwctl sim --json | jq`` get clean data;
* logs, progress bars and spinners go to stderr (:func:`stderr_console`);
* ``-v`` (INFO), ``-vv`` (DEBUG) or ``--log-level LEVEL`` on every command select what the
  ``logging`` loggers of hwctl show, through rich's :class:`~rich.logging.RichHandler` on stderr
  when it is a terminal, else as plain one-line records (time, level, logger, message; never
  wrapped); the default is WARNING.
* tables: :func:`fit_table` gives a rich table when it fits the console's width and a compact
  one-block-per-row layout otherwise (an 80-column terminal never sees ``26/…``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

LEVELS = ("debug", "info", "warning", "error", "critical")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` (repeatable) and ``--log-level`` on ``parser``.

    Defaults are :data:`argparse.SUPPRESS` so the options may be given before or after the
    subcommand (``hwctl -v sim`` and ``hwctl sim -v``) without the subparser resetting them."""
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="show INFO logs on stderr (-vv: DEBUG)")
    group.add_argument("--log-level", choices=LEVELS, type=str.lower, default=argparse.SUPPRESS,
                       metavar="LEVEL",
                       help="log level on stderr: " + ", ".join(LEVELS) + " (default warning; "
                            "overrides -v)")


def add_output_options_tree(parser: argparse.ArgumentParser) -> None:
    """:func:`add_output_options` on ``parser`` and every nested subcommand parser under it
    (``hwctl instruments check -v`` works like ``hwctl sim -v``)."""
    if not any("--log-level" in a.option_strings for a in parser._actions):
        add_output_options(parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                add_output_options_tree(child)


def log_level(args: argparse.Namespace) -> int:
    """The numeric level selected by ``--log-level`` or the ``-v`` count (WARNING by default)."""
    name = getattr(args, "log_level", None)
    if name:
        return int(getattr(logging, name.upper()))
    verbose = int(getattr(args, "verbose", 0) or 0)
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def setup_logging(level: int) -> logging.Handler:
    """Route the ``hwctl``, ``sim`` and ``firmware`` loggers to a RichHandler on stderr at
    ``level`` (other libraries' loggers are left alone). Idempotent: a second call replaces the
    handler it installed before."""
    import sys

    handler: logging.Handler
    if stderr_is_terminal():
        from rich.logging import RichHandler

        handler = RichHandler(console=stderr_console(), show_path=level <= logging.DEBUG,
                              rich_tracebacks=False, markup=False, log_time_format="%H:%M:%S")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        # redirected to a file or a pipe (a node under systemd, `2> node.log`): one record per
        # line, never wrapped at rich's default 80 columns, so grep and log shippers see whole
        # records
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.set_name("hwctl-cli")
    for name in ("hwctl", "sim", "firmware"):
        lg = logging.getLogger(name)
        for old in [h for h in lg.handlers if h.get_name() == "hwctl-cli"]:
            lg.removeHandler(old)
        lg.addHandler(handler)
        lg.setLevel(level)
    return handler


#: the log line format when stderr is not a terminal (:func:`setup_logging`)
PLAIN_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal (rich's own test, so FORCE_COLOR / TTY_COMPATIBLE
    and Jupyter are honoured the same way)."""
    return stderr_console().is_terminal


def stderr_console() -> Console:
    """A rich console on stderr: for progress bars, spinners, live views and logs."""
    from rich.console import Console

    return Console(stderr=True)


class NoProgress:
    """Stands in for a rich Progress when progress display is off (same calls, no output)."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *a: object, **k: object) -> int:
        return 0

    def advance(self, *a: object) -> None:
        return None

    def update(self, *a: object, **k: object) -> None:
        return None


class LineProgress:
    """Progress for a redirected stderr (`hwctl sweep ... 2> sweep.log`, nohup, a batch job): rich
    draws a bar only on a terminal and, redirected, printed nothing until the end, so an hour's
    sweep showed no sign of life. This prints one plain line per task (``DESC: 12/54 (22 %),
    0:01:02 elapsed, ~0:03:40 left``) at most every ``every`` seconds, and a last one at the end
    if it printed any (a run shorter than ``every`` prints nothing). Same calls as rich's
    Progress (those hwctl uses)."""

    def __init__(self, *, eta: bool = False, every: float = 30.0,
                 clock: Any = None) -> None:
        import sys
        import time

        self.console = stderr_console()
        self.eta = eta
        self.every = every
        self.clock = clock or time.monotonic
        self._file = sys.stderr
        self._tasks: list[dict[str, Any]] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for t in self._tasks:
            if t["printed"] and not t["final"]:
                self._line(t)

    def add_task(self, description: str, total: float | None = None, **_: object) -> int:
        now = self.clock()
        self._tasks.append({"description": description, "total": total, "completed": 0.0,
                            "start": now, "last": now, "printed": False, "final": False})
        return len(self._tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None,
               **_: object) -> None:
        t = self._tasks[task]
        if total is not None:
            t["total"] = total
        if description is not None:
            t["description"] = description
        if completed is not None:
            t["completed"] = completed
        if advance:
            t["completed"] += advance
        now = self.clock()
        if now - t["last"] >= self.every:
            self._line(t)

    def _line(self, t: dict[str, Any]) -> None:
        import datetime

        now = self.clock()
        el = now - t["start"]
        done, total = t["completed"], t["total"]
        text = f"{t['description']}: {done:g}"
        if total:
            text += f"/{total:g} ({100 * done / total:.0f} %)"
        text += f", {datetime.timedelta(seconds=round(el))} elapsed"
        if self.eta and total and 0 < done < total:
            left = el * (total - done) / done
            text += f", ~{datetime.timedelta(seconds=round(left))} left"
        print(text, file=self._file, flush=True)
        t["last"], t["printed"] = now, True
        t["final"] = bool(total) and done >= total


def progress(enabled: bool, *, eta: bool = False, transient: bool = False):
    """A progress bar on stderr (never into redirected results on stdout), a
    :class:`LineProgress` when stderr is not a terminal (a log file), or a :class:`NoProgress`
    when ``enabled`` is false. ``eta`` adds the time-remaining column."""
    if not enabled:
        return NoProgress()
    if not stderr_is_terminal():
        return LineProgress(eta=eta)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if eta:
        cols.append(TimeRemainingColumn())
    return Progress("[progress.description]{task.description}", *cols, transient=transient,
                    console=stderr_console())


def stdout_console(width: int | None = None) -> Console:
    """A rich console on stdout for results (no colour codes when stdout is not a terminal)."""
    from rich.console import Console

    return Console(width=width)


def table_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Characters a rich table with a simple box needs to show every cell on one line: per column
    the widest cell or header plus two of padding, plus one border per column and one."""
    widths = [len(c) for c in columns]
    for row in rows:
        for k, cell in enumerate(row):
            widths[k] = max(widths[k], len(cell))
    return sum(w + 2 for w in widths) + len(widths) + 1


def fit_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None,
              width: int = 80, justify: str = "right") -> RenderableType:
    """``rows`` under ``columns`` as a rich table when that fits ``width`` (never truncating a
    cell), else a compact layout: one block per row, the first cell as its heading and the other
    cells as ``column value`` pairs wrapped to the width."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if table_width(columns, rows) <= width:
        t = Table(title=title)
        for c in columns:
            t.add_column(c, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for row in rows:
            t.add_row(*row)
        return t
    parts: list[Any] = []
    if title:
        parts.append(Text(title, style="bold"))
    for row in rows:
        line = Text()
        line.append(f"{columns[0]} {row[0]}", style="bold")
        for c, cell in zip(columns[1:], row[1:], strict=True):
            line.append("  ")
            line.append(f"{c} ", style="dim")
            line.append(cell)
        parts.append(line)
    return Group(*parts)


def jsonable(obj: Any) -> Any:
    """``obj`` with proper JSON types: NaN/inf become ``null`` (strict JSON has no NaN), numpy
    scalars become ints/floats, tuples and sets become lists, dataclasses become objects."""
    import dataclasses
    import math

    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return jsonable(obj.item())
    if hasattr(obj, "tolist"):  # numpy array
        return jsonable(obj.tolist())
    return str(obj)


def print_json(obj: Any) -> None:
    """Print ``obj`` to stdout as strict JSON (:func:`jsonable`), indented, one document."""
    import json

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))
