"""A local process pool that stops at once on Ctrl-C (``hwctl sweep``, ``hwctl sim --table5``).

A terminal sends SIGINT to the whole process group. With a plain ``ProcessPoolExecutor`` each
worker took it as its job's result and went on with the next queued job, and the pool's shutdown
waited for those: ``hwctl sweep --jobs 2`` needed about 17 s to stop, without a word. Here the
workers leave SIGINT to the driver, and on Ctrl-C (or any failure) the driver says what it does
and terminates them: jobs in progress are dropped, results already handed out are the caller's.
A worker that dies (killed, out of memory) still ends the pool with ``BrokenProcessPool`` (a
``multiprocessing.Pool`` would wait for its job for ever).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: queued jobs cancelled, running ones killed (what Python 3.14's
    ``terminate_workers`` does, on the executor's process table). The executor's manager thread
    sees the workers die and reaps them; it is waited for (joining the workers here as well
    raced with it: a reaped worker could stay listed as running)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, ValueError):
            p.terminate()
    if manager is not None:
        manager.join()


@contextlib.contextmanager
def stoppable_pool(jobs: int, n: int, *, prog: str, kept: str = "finished runs are kept"
                   ) -> Iterator[Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]]:
    """For ``n`` jobs on ``min(jobs, n)`` worker processes: yields ``imap(fn, items)``, the
    results as they finish (jobs start in ``items``' order; ``fn`` a module function). Ctrl-C
    anywhere in the block: one line on stderr (``PROG: interrupted: stopping N worker(s) ...``),
    the workers terminated, then the KeyboardInterrupt goes on; any other failure terminates
    them too."""
    workers = max(1, min(jobs, n))
    pool = ProcessPoolExecutor(workers, initializer=_ignore_sigint)

    def imap(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        futs = [pool.submit(fn, x) for x in items]
        for fut in as_completed(futs):
            yield fut.result()

    try:
        yield imap
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            print(f"{prog}: interrupted: stopping {workers} worker(s); runs in progress are "
                  f"dropped, {kept}", file=sys.stderr, flush=True)
        _terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)
