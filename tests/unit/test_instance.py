"""One daemon per node of a database (issue 14 item 3): vpod/instance.py.

SQLite keeps its lock beside the file; a database server (a URL, no file) is locked per
(database identity, node name) in the state folder, so two nodes of one database may
run on one machine and two daemons of one node may not. The holder is a real other
process: flock(2) locks of one process would not conflict the same way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vpod.instance import AlreadyRunning, InstanceLock, instance_lock, several_nodes

DATABASE_ID = "0123456789abcdef0123456789abcdef"
URL = "postgresql://vpod@db.example/vpod"


def hold(lock: InstanceLock) -> subprocess.Popen[str]:
    """Another process holding ``lock`` until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.pwrite(fd, f'{os.getpid()}\\n'.encode(), 0); "
         "print('locked', flush=True); sys.stdin.read()",
         str(lock.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_two_daemons_of_one_node_are_refused_two_nodes_of_one_database_are_not(tmp_path):
    database_path = tmp_path / "state" / "vpod.db"  # [database] path: only its folder is used
    database_path.parent.mkdir()
    mine = instance_lock(database_path, location=URL, database_id=DATABASE_ID, node="node-a")
    assert mine.path.parent == database_path.parent and "vpod-node-" in mine.path.name
    holder = hold(mine)
    try:
        with pytest.raises(AlreadyRunning) as refused:
            mine.acquire()
        assert f"pid {holder.pid}" in str(refused.value) and "'node-a'" in str(refused.value)
        assert "[node] name" in str(refused.value)
        other_node = instance_lock(database_path, location=URL, database_id=DATABASE_ID, node="node-b")
        other_database = instance_lock(database_path, location=URL, database_id="f" * 32, node="node-a")
        assert len({mine.path, other_node.path, other_database.path}) == 3
        other_node.acquire()  # another node of the same database, on the same machine
        other_database.acquire()
        other_node.release()
        other_database.release()
    finally:
        holder.communicate("")
    mine.acquire()  # its holder ended: the kernel dropped the lock
    mine.release()


def test_sqlite_keeps_its_lock_beside_the_file_whatever_the_node_name(tmp_path):
    database_path = tmp_path / "vpod.db"
    assert not several_nodes(database_path, str(database_path))
    assert several_nodes(database_path, URL)
    first = instance_lock(database_path, location=str(database_path), database_id=DATABASE_ID, node="a")
    second = instance_lock(database_path, location=str(database_path), database_id=DATABASE_ID, node="b")
    assert first.path == second.path == Path(f"{database_path}.lock")
    holder = hold(first)
    try:
        with pytest.raises(AlreadyRunning, match="already using the database"):
            second.acquire()
    finally:
        holder.communicate("")
