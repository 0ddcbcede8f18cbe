"""Import structlog without importing :mod:`asyncio`, which vpod never uses.

``import structlog`` runs ``structlog/__init__.py``, which imports ``structlog.stdlib``
and ``structlog._native``; both ``import asyncio`` at their top, and both use it only
inside their ``async`` log methods (``BoundLogger.ainfo`` …, ``AsyncBoundLogger``:
``asyncio.get_running_loop()`` when such a method runs). vpod never calls those, but
importing asyncio (and with it ``ssl``, ``socket``, ``subprocess`` …) cost every
command about 30 ms of CPU, a fifth of ``vpod process``'s start-up
(contrib/bench/startup.py).

:func:`import_structlog` imports structlog while ``sys.modules["asyncio"]`` is an
:class:`OnDemandModule`, and removes it again right after: the structlog modules keep
the stand-in as their ``asyncio``, and it imports the real asyncio the first time one
of its attributes is read, so those methods keep working; any later ``import asyncio``
(the PostgreSQL driver, the metrics) gets the real module, as always.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

DEFERRED = ("asyncio",)
"""The modules :func:`import_structlog` keeps structlog from importing at start-up
(tests/integration/test_startup_imports.py checks that ``vpod process`` imports none)."""


class OnDemandModule(types.ModuleType):
    """A stand-in for the module of the same name: reading any attribute it does not
    have imports the real module (taking the stand-in out of ``sys.modules`` first, if
    it is still there) and returns that module's attribute.

    Its ``__spec__`` is ``None``, so an ``import NAME`` while the stand-in is in
    ``sys.modules`` binds the stand-in without loading anything (the import system
    reads only ``__spec__`` of a module it finds there).
    """

    def __getattr__(self, attribute: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attribute)


def import_structlog() -> None:
    """Import structlog, without importing :data:`DEFERRED` if nothing imported them yet.

    A no-op when structlog is imported already. Call it before anything imports
    structlog (:meth:`vpod.cli.lazy.LazyGroup.get_command` does, before a command's
    module), from one thread: ``sys.modules`` holds the stand-ins only during this call.
    """
    if "structlog" in sys.modules:
        return
    import logging  # here, not at the top: vpod --version imports neither logging nor structlog

    stand_ins = {name: OnDemandModule(name) for name in DEFERRED if name not in sys.modules}
    # Python 3.12+: a LogRecord names the current asyncio task when sys.modules holds
    # asyncio (logging.logAsyncioTasks, Python docs "logging"), and structlog.stdlib makes
    # one at import; that would load asyncio through the stand-in. Without asyncio
    # imported its taskName is None either way, so the flag is off during the import.
    task_names = getattr(logging, "logAsyncioTasks", None)
    sys.modules.update(stand_ins)
    try:
        if task_names is not None:
            setattr(logging, "logAsyncioTasks", False)  # 3.12+ only: not in 3.10's stubs
        import structlog  # noqa: F401  (an import statement: python -X importtime reports it)
    finally:
        if task_names is not None:
            setattr(logging, "logAsyncioTasks", task_names)
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
