"""A local process pool that stops at once on Ctrl-C (``hwctl sweep``, ``hwctl sim --table5``).

A terminal sends SIGINT to the whole process group. With ``concurrent.futures``' pool each worker
took it as its job's result and went on with the next queued job, and the pool's shutdown waited
for those: ``hwctl sweep --jobs 2`` needed about 17 s to stop, without a word. Here the workers
leave SIGINT to the driver, and on Ctrl-C (or any failure) the driver says what it does and
terminates them: jobs in progress are dropped, results already yielded are the caller's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import signal
import sys
from collections.abc import Iterator


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def stoppable_pool(jobs: int, n: int, *, prog: str,
                   kept: str = "finished runs are kept") -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``min(jobs, n)`` worker processes for ``n`` jobs (use its ``imap_unordered``
    with ``chunksize=1``: jobs start in order, results come as they finish). Ctrl-C anywhere in
    the block: one line on stderr (``PROG: interrupted: stopping N worker(s) ...``), the workers
    terminated, then the KeyboardInterrupt goes on; any other failure terminates them too."""
    workers = max(1, min(jobs, n))
    pool = multiprocessing.Pool(workers, initializer=_ignore_sigint)
    try:
        yield pool
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            print(f"{prog}: interrupted: stopping {workers} worker(s); runs in progress are "
                  f"dropped, {kept}", file=sys.stderr, flush=True)
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()
