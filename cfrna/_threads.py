"""The one ordered-threads scheduler: items read in one thread, worked on by several, emitted in input order.

Used by the BAM reader (:func:`cfrna.io.bam.stream_records`: inflate + decode in parallel, pairing in
order) and by the mappy aligner (:mod:`cfrna.align.mappy_runner`: map in parallel, write the SAM in
input order). Memory is bounded by ``window`` (items read but not yet emitted).

Errors: the error of the earliest item is raised (an error of the item reader ranks after the items
read before it), after every thread has stopped; items after a failed one are never emitted. A work
function blocked on another item (the BAM reader's record hand-over) is woken by ``on_stop`` and
gives up by raising :class:`Cancelled`, which is never reported.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

__all__ = ["Cancelled", "run_ordered"]

_POLL = 0.2  # seconds between checks of the stop flag while blocked on a queue
_DONE = object()


class Cancelled(Exception):
    """Raised by a work function that gave up because another item failed (not reported)."""


def _run_inline(items: Iterable, make_worker: Callable, emit: Callable) -> int:
    work, close = make_worker()
    n = 0
    try:
        for item in items:
            emit(work(item))
            n += 1
    finally:
        if close is not None:
            close()
    return n


def run_ordered(items: Iterable, make_worker: Callable[[], tuple[Callable, Callable | None]],
                emit: Callable[[object], object], *, threads: int, window: int | None = None,
                on_stop: Callable[[], None] | None = None, name: str = "cfrna") -> int:
    """Run ``work(item)`` for every item on ``threads`` threads; ``emit(result)`` in input order.

    ``make_worker()`` runs once in each worker thread and returns ``(work, close)``; ``close()``
    (may be None) frees the worker's state. ``emit`` runs in the calling thread, one result at a
    time, in the order of ``items``. ``items`` is iterated in its own thread, at most ``window``
    items (default ``2 * threads + 2``) ahead of the last one emitted. With ``threads == 1``
    everything runs in the calling thread, in order. ``on_stop()`` is called once when the first
    error stops the run. Returns the number of items emitted.
    """
    threads = max(1, int(threads))
    if threads == 1:
        return _run_inline(items, make_worker, emit)
    window = max(1, int(window or 2 * threads + 2))
    in_q: queue.Queue = queue.Queue()
    out_q: queue.Queue = queue.Queue()
    free = threading.Semaphore(window)  # one permit per item in flight (read, not yet emitted)
    stop = threading.Event()
    lock = threading.Lock()
    errors: list[tuple[int, int, BaseException]] = []  # (rank, arrival, error)

    def fail(rank: int, exc: BaseException) -> None:
        with lock:
            errors.append((rank, len(errors), exc))
            first = not stop.is_set()
            stop.set()
        if first and on_stop is not None:
            on_stop()

    def reader() -> None:
        i = 0
        try:
            it = iter(items)
            while True:
                while not free.acquire(timeout=_POLL):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    return
                in_q.put((i, item))
                i += 1
        except BaseException as exc:
            fail(i, exc)
        finally:
            for _ in range(threads):
                in_q.put(None)

    def worker() -> None:
        close = None
        try:
            try:
                work, close = make_worker()
            except BaseException as exc:
                fail(-1, exc)
                return
            while True:
                item = in_q.get()
                if item is None:
                    break
                if stop.is_set():
                    continue  # drain: the reader's end marker must still be taken
                i, obj = item
                try:
                    out_q.put((i, work(obj)))
                except Cancelled:
                    pass
                except BaseException as exc:
                    fail(i, exc)
        finally:
            if close is not None:
                close()
            out_q.put(_DONE)

    pool = [threading.Thread(target=reader, name=f"{name}-reader", daemon=True)]
    pool += [threading.Thread(target=worker, name=f"{name}-{t}", daemon=True) for t in range(threads)]
    for t in pool:
        t.start()
    pending: dict[int, object] = {}
    nxt = 0
    done = 0
    try:
        while done < threads:
            got = out_q.get()
            if got is _DONE:
                done += 1
                continue
            pending[got[0]] = got[1]
            while nxt in pending and not stop.is_set():
                try:
                    emit(pending.pop(nxt))
                except BaseException as exc:
                    fail(nxt, exc)
                    break
                nxt += 1
                free.release()
    except BaseException as exc:  # KeyboardInterrupt in the calling thread
        fail(-2, exc)
        raise
    finally:
        stop.set()
        for t in pool:
            t.join(timeout=5)
    if errors:
        raise min(errors, key=lambda e: (e[0], e[1]))[2]
    return nxt
