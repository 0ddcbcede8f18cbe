"""Stores for tests, and owner records made by real processes (a process that starts a row and exits)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Store

_SCRIPT = """
import json
import sys
from pathlib import Path
from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
fields = json.loads(sys.argv[1])
store = open_store(DatabaseConfig(**{**fields, "path": Path(fields["path"])}))
owner = store.register_owner(sys.argv[2])
job = store.job_for_path(Path(sys.argv[3]), sys.argv[4].encode(), "fp", None)
assert store.start(job, "process-x_0", "b")
print(owner.id)
"""


def own_a_row_and_exit(db: Path | DatabaseConfig, root: Path, relpath: bytes, kind: str = "process") -> int:
    """A real process registers as an owner of ``kind`` (``process`` or ``daemon``) in the
    database ``db`` (an SQLite file, or any backend's ``[database]`` section), starts the
    row of ``root``/``relpath`` and exits without ending its owner record, as a kill -9
    would leave it. Returns the owner's id."""
    database = db if isinstance(db, DatabaseConfig) else DatabaseConfig(path=db)
    fields = {
        "path": str(database.path), "url": database.url, "password_file": database.password_file,
        "busy_timeout_seconds": database.busy_timeout_seconds,
    }
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(fields), kind, str(root), relpath.decode()],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in ``tmp_path``, opened by the factory (import it as ``store``
    into a test module)."""
    opened = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    yield opened
    opened.close()
