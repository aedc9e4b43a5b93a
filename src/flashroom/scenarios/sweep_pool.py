"""Where a sweep's cut points run: in this process, on a local process pool, or on a Dask
cluster (``dask.distributed``). The points are split into the same contiguous chunks whichever
runs them and merged in order, so the results do not depend on the backend.

Workers ignore Ctrl-C (the parent handles it) and, on Linux, die with their parent
(``PR_SET_PDEATHSIG``); a Ctrl-C in the parent stops the pool within a second and raises
:class:`~flashroom.errors.Interrupted` saying how much was done.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from flashroom.errors import Interrupted, ParamError
from flashroom.progress import ProgressFn

S = TypeVar("S")
R = TypeVar("R")

#: chunks per worker: small enough to balance, large enough for the equivalence proofs
CHUNKS_PER_WORKER = 16
#: how long to wait for a Dask scheduler to answer
CONNECT_TIMEOUT_S = 10.0


def split(cuts: Sequence[int], workers: int) -> list[list[int]]:
    """The contiguous chunks the points run in (the same for every backend)."""
    n_chunks = max(1, min(len(cuts), workers * CHUNKS_PER_WORKER))
    size = -(-len(cuts) // n_chunks)
    return [list(cuts[i : i + size]) for i in range(0, len(cuts), size)]


# --------------------------------------------------------------------------- worker side
_STATE = threading.local()


def _die_with_parent() -> None:
    """Workers: leave Ctrl-C to the parent, and get SIGKILL when the parent dies (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def worker_state(key: Any, make: Callable[[], S]) -> S:
    """The per-process (per-thread on Dask) set-up for ``key``, built once with ``make``."""
    cached = getattr(_STATE, "value", None)
    if cached is None or cached[0] != key:
        _STATE.value = (key, make())
    value: S = _STATE.value[1]
    return value


def _pool_init(seed_state: tuple[Any, Any] | None) -> None:
    _die_with_parent()
    if seed_state is not None:  # forked: the parent's set-up, no second recording run
        _STATE.value = seed_state


# --------------------------------------------------------------------------- backends
def run_local(
    run: Callable[[list[int]], R],
    parts: list[list[int]],
    workers: int,
    units: Callable[[list[int]], int],
    total: int,
    progress: ProgressFn | None,
    inherit: tuple[Any, Any] | None = None,
) -> list[R]:
    """Run ``run(part)`` for every part on ``workers`` processes; results in part order.

    Args:
        run: a picklable module-level function of one part.
        parts: the chunks.
        workers: processes.
        units: progress units a part counts (cut points).
        total: progress total.
        progress: ``progress(done, total)``.
        inherit: ``(key, setup)`` handed to forked workers (:func:`worker_state`).

    Raises:
        Interrupted: Ctrl-C; the workers are killed.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    seed = inherit if ctx.get_start_method() == "fork" else None
    results: list[R | None] = [None] * len(parts)
    done = 0
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_pool_init, initargs=(seed,)
    )
    try:
        futures: dict[Future[R], int] = {pool.submit(run, p): i for i, p in enumerate(parts)}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = futures[fut]
                results[i] = fut.result()
                done += units(parts[i])
                if progress:
                    progress(done, total)
    except KeyboardInterrupt:
        _kill(pool)
        raise Interrupted(f"sweep interrupted: {done} of {total} cut points done") from None
    except BaseException:
        _kill(pool)
        raise
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill the workers first (no public way to reach them), then let the pool wind down: its
    management thread sees them gone and exits at once."""
    for p in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            p.kill()
    with contextlib.suppress(Exception):
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(
    run: Callable[[Any, list[int]], R],
    arg: Any,
    parts: list[list[int]],
    address: str,
    units: Callable[[list[int]], int],
    total: int,
    progress: ProgressFn | None,
) -> list[R]:
    """Run ``run(arg, part)`` for every part on the Dask cluster at ``address``.

    Raises:
        ParamError: no scheduler answers at ``address``.
        Interrupted: Ctrl-C; the submitted work is cancelled.
    """
    # dask: deferred for start-up time; its API is only partly typed, so it is used as Any
    dist: Any = importlib.import_module("distributed")
    try:
        client = dist.Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as e:
        raise ParamError(f"scheduler {address}: cannot connect ({e})", "scheduler") from None
    results: list[R | None] = [None] * len(parts)
    done = 0
    futures: list[Any] = []
    try:
        futures = [client.submit(run, arg, p, pure=False) for p in parts]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dist.as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            done += units(parts[i])
            if progress:
                progress(done, total)
    except KeyboardInterrupt:
        client.cancel(futures)
        raise Interrupted(f"sweep interrupted: {done} of {total} cut points done") from None
    finally:
        client.close()
    return [r for r in results if r is not None]


__all__ = ["CHUNKS_PER_WORKER", "run_dask", "run_local", "split", "worker_state"]
