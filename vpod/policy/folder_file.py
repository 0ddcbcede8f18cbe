"""A folder's own policy file, ``.vpod.toml``, for libraries that enable it
(``[libraries.NAME] folder_files = true``).

The file holds, at its top level (no ``[policy]`` table), ``policy = "NAME"`` (a
policy of ``[policies]``, or ``"default"`` for ``[policy]``) and/or policy keys (those
of ``[policy]``, except ``policy_file``) that override the chosen policy's values. Only the nearest one counts:
the one in the file's own folder, else in the closest folder above it, up to and
including the library's folder (:func:`nearest_folder_file`); files are not merged.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import Any, Mapping, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from vpod.errors import ConfigError
from vpod.tomlschema import shown_value

FOLDER_FILE = ".vpod.toml"
FOLDER_FILE_MAX_BYTES = 64 * 1024
"""A folder file is small: a name and a few keys. A bigger one is refused unread."""


class FolderFile(NamedTuple):
    """What a ``.vpod.toml`` says: ``policy`` (a policy name, or ``None``: the one the
    config chooses for the file) and ``overrides`` (policy keys and their TOML values,
    checked when applied: :func:`vpod.policy.policy.policy_with_overrides`)."""

    path: Path
    policy: str | None
    overrides: Mapping[str, Any]

    def describe(self) -> str:
        """``policy = "anime", overrides audio_languages``: what the file says, for people."""
        said = [f'policy = "{self.policy}"'] if self.policy is not None else []
        if self.overrides:
            said.append("overrides " + ", ".join(self.overrides))
        return ", ".join(said) or "nothing (an empty file)"


def nearest_folder_file(root: Path, path: Path) -> tuple[Path, os.stat_result] | None:
    """The ``.vpod.toml`` nearest to the file ``path``: in its folder, else the closest
    folder above it, up to and including ``root`` (its library's folder); with its stat.
    ``None`` when there is none.

    Raises:
        ConfigError: a folder file that is not a regular file, or cannot be looked at
            (a folder vpod may not search); it names the file.
    """
    if root not in path.parents:
        return None
    folder = path.parent
    while True:
        candidate = folder / FOLDER_FILE
        try:
            st = os.stat(candidate)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ConfigError(candidate, None, f"cannot be read: {exc.strerror or exc}") from None
        else:
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(candidate, None, "is not a regular file; a folder policy file must be one")
            return candidate, st
        if folder == root:
            return None
        folder = folder.parent


def read_folder_file(path: Path) -> FolderFile:
    """Read and check the shape of the folder file ``path`` (its keys' values are checked
    when applied to a policy).

    Raises:
        ConfigError: unreadable, larger than :data:`FOLDER_FILE_MAX_BYTES`, not UTF-8
            TOML (a leading byte order mark is allowed), a ``[policy]`` table (keys go
            at the top level), ``policy`` not a string, or ``policy_file`` present; it
            names the file and the key.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(FOLDER_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > FOLDER_FILE_MAX_BYTES:
        raise ConfigError(path, None, f"larger than {FOLDER_FILE_MAX_BYTES // 1024} KiB; a folder policy file is small")
    try:
        # A byte order mark (U+FEFF, as Windows editors write UTF-8) is no TOML; it is dropped.
        table = tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from None
    name = table.pop("policy", None)
    if isinstance(name, dict):
        raise ConfigError(
            path, "[policy]", 'a folder file has no [policy] table: write its keys at the top level '
            '(policy = "NAME" to name a policy, any other key of [policy] to override it)',
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(path, "policy", f'expected the name of a policy of [policies] (or "default"), got {shown_value(name)}')
    if "policy_file" in table:
        raise ConfigError(path, "policy_file", "a folder file cannot name a policy file; name a policy of [policies]")
    return FolderFile(path, name, table)
