"""Giving freed memory back to the system between the big steps of a training and of a run."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import functools
import threading
from collections.abc import Iterator


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return library if library is not None and hasattr(library, "malloc_trim") else None


def release_free_memory() -> None:
    """Collect garbage and, with glibc, return the free heap to the system (`malloc_trim`): the
    windows of a batch and the arrays of a finished fit are freed, but glibc keeps their pages in
    the process, so the next step's arrays would come on top of them. Changes no computed value."""
    gc.collect()
    _trim()


def _trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def release_memory() -> None:
    """The free heap (`malloc_trim`) and Arrow's pool's unused memory back to the system (each step of
    a run, when it ends): the frames a step built are freed, but the allocators keep their pages, so
    every later step's peak would sit on top of them (a forecast-only run for 100,000 series kept about
    300 MiB after its Parquet write alone). No garbage collection: with TensorFlow loaded a full one
    takes about half a second, and the steps' frames are freed by reference counting. Changes no computed value."""
    import pyarrow as pa

    _trim()
    pa.default_memory_pool().release_unused()


_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside the block (it nests, and threads may overlap: collection
    resumes when the last block ends, if it was on when the first began). The data steps build an
    object or two per series and row batch; each of them that survives pushes the collector towards
    a full pass over every object in the process, TensorFlow's included, so with collection on the
    per-series cost grew with the number of series (per DatetimeIndex slice: 7 us at 10,000 series,
    11-14 us at 100,000). Their frames are freed by reference counting either way; cycles made
    inside the block are collected after it."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
