"""Shared fixtures. Integration tests need ffmpeg and MKVToolNix on PATH (.ci/run installs them)."""

from __future__ import annotations

import compileall
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from support import shards
from support.daemon import DaemonProcess, daemon_env, write_config
from support.media import T, audio, make_media, video
from support.postgres import PostgresMissing, PostgresServer, in_ci, running_postgres

REQUIRED = ("ffmpeg", "ffprobe", "mkvmerge", "mkvpropedit")
# Sample media from public projects (see its README): ../shared/corpus beside the
# checkout, or wherever VPOD_CORPUS points. Tests that use it skip when it is absent.
CORPUS = Path(os.environ.get("VPOD_CORPUS") or Path(__file__).resolve().parents[1].parent / "shared" / "corpus")


SHARD = pytest.StashKey[tuple[int, dict[str, int]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard", default=None, metavar="K/N",
        help="collect only part K of N of the test files, split into parts of about equal time "
             "(tests/support/shards.py); contrib/test-parts.sh runs the parts at once",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("shard"):
        try:
            k, n = shards.parse(config.getoption("shard"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[SHARD] = (k, shards.assign(shards.test_files(config.rootpath), n))


def _in_other_shard(path: Path, config: pytest.Config) -> bool:
    """Whether test file ``path`` belongs to another part than this process's ``--shard``."""
    if SHARD not in config.stash:
        return False
    k, parts = config.stash[SHARD]
    try:
        relative = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return False
    return parts.get(relative, k) != k


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Files found in a folder: another part's are not even imported. Files named on the
    # command line are collected anyway (pytest does not ask this hook about them) and
    # deselected below.
    return True if collection_path.suffix == ".py" and _in_other_shard(collection_path, config) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if missing:
        # Failing loudly beats skipping: a green run without the tools proves nothing.
        raise pytest.UsageError(f"tests need {', '.join(missing)} on PATH (run .ci/run, which installs them)")
    if SHARD in config.stash:
        other = [item for item in items if _in_other_shard(item.path, config)]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if not _in_other_shard(item.path, config)]


@pytest.fixture(scope="session", autouse=True)
def compiled_vpod() -> None:
    """vpod's modules compiled once into their ``__pycache__`` before any test: every
    ``vpod`` subprocess (daemons, ``vpod process``, ``vpod status``...) then reads them
    instead of compiling each module from source. Where ``PYTHONDONTWRITEBYTECODE`` is
    set (this machine's environment does) no process writes them, and each start
    compiled vpod again: about 0.2 s of CPU per start (test_daemon_run: 15.4 s of CPU
    without, 11.5 s with). Two processes compiling at once is safe: each file is replaced
    whole (py_compile writes a temporary file and renames it)."""
    import vpod

    compileall.compile_dir(str(Path(vpod.__file__).parent), quiet=1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (tests/support/postgres.py): initdb + pg_ctl
    in a temporary folder on a free 127.0.0.1 port. ``postgres.database(tmp_path)`` gives
    the ``[database]`` section of a fresh database. Skipped (with the reason) when the
    binaries are missing on a machine that is not CI; under CI that fails instead.
    Its folder (a database per test that used it) is removed in the background after."""
    try:
        with running_postgres(remove_in_background=True) as server:
            yield server
    except PostgresMissing as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return daemon_env(home)


@pytest.fixture(scope="session")
def media_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, list[T]], Path]:
    """Generate each distinct media file once per session; tests copy it."""
    folder = tmp_path_factory.mktemp("media-cache")
    made: dict[tuple[str, tuple[T, ...]], Path] = {}

    def get(name: str, tracks: list[T]) -> Path:
        key = (name, tuple(tracks))
        if key not in made:
            made[key] = make_media(folder / f"{len(made)}-{name}", tracks)
        return made[key]

    return get


@pytest.fixture
def jpn_eng_mkv(media_cache: Callable[[str, list[T]], Path]) -> Path:
    """video + audio eng + audio jpn (default): the default policy makes eng the default.

    eng comes first, so the default policy (``track_order`` puts preferred languages
    first) needs only two flag changes: a header-only ``mkvpropedit`` edit, no remux.
    """
    return media_cache("eng-jpn.mkv", [video(), audio("eng"), audio("jpn", default=True)])


@pytest.fixture
def daemon_factory(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., DaemonProcess]]:
    """Start real ``vpod run`` processes; all are stopped at teardown."""
    started: list[DaemonProcess] = []

    def start(sections: dict[str, Any], *, args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None,
              name: str = "daemon") -> DaemonProcess:
        sections = {k: dict(v) if isinstance(v, dict) else v for k, v in sections.items()}
        sections.setdefault("database", {}).setdefault("path", str(tmp_path / "vpod.db"))
        sections.setdefault("logging", {}).setdefault("format", "json")
        sections["logging"].setdefault("level", "debug")
        config = write_config(tmp_path / f"{name}.toml", sections)
        proc = DaemonProcess(config, env={**env, **(extra_env or {})}, log_path=tmp_path / f"{name}-{len(started)}.log", args=args)
        started.append(proc)
        proc.wait_started()
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()
