"""vpod.import_gc.imports_uncollected: the collector is off while a command's modules
load, and back on (if it was) for the work that follows; what the imports made is
frozen (Python docs "gc": ``gc.freeze``, ``gc.get_freeze_count``)."""

from __future__ import annotations

import gc

import pytest

from vpod.import_gc import imports_uncollected


@pytest.fixture
def collector():
    """Leave the collector as the test found it (on), and unfreeze what the test froze."""
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_off_while_importing_then_on_again_and_the_objects_frozen(collector):
    gc.enable()
    gc.unfreeze()
    with imports_uncollected():
        assert not gc.isenabled()
        made = [[n] for n in range(100)]  # container objects, as an import makes
    assert gc.isenabled()  # a long batch after the imports collects its garbage as usual
    assert gc.get_freeze_count() >= len(made)


def test_off_stays_off_and_an_error_still_restores(collector):
    gc.disable()
    with imports_uncollected():
        pass
    assert not gc.isenabled()  # someone else switched it off: not ours to switch on
    gc.enable()
    with pytest.raises(ImportError):
        with imports_uncollected():
            raise ImportError("a module that fails to import")
    assert gc.isenabled()
