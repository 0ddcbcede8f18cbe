"""Imports with the cyclic garbage collector paused, their objects frozen after.

A command's imports make most of the objects a short vpod run ever has (modules,
classes, functions), and they live until exit. While they are made, the collector
would run dozens of times (every 700 new container objects, Python docs "gc",
``gc.set_threshold``) only to find them alive; afterwards it would walk them again in
every later full collection and in the final one at exit. So: no collection while
importing, then :func:`gc.freeze` moves everything there is to the permanent generation
the collector ignores. Objects made later are collected as usual.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def imports_uncollected() -> Iterator[None]:
    """Run the ``with`` body (imports) with the collector paused; on leaving, freeze every
    object tracked so far and resume collecting if it was on before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
