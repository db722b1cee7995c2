"""Giving freed memory back to the system between the big steps of a training and of a run."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import functools


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
