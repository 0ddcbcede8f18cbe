"""Which policy judges a file, and why: named policies chosen per library and per folder.

The config may hold, besides the default policy ``[policy]`` (named ``"default"``):

* ``[policies.NAME]``: named policies, each with the keys of ``[policy]`` or a
  ``policy_file`` (:func:`policies_from_table`);
* ``[libraries.NAME]``: for the library ``NAME`` (a watched folder's name,
  :mod:`vpod.libraries`), its ``policy``, ``rules`` that choose another policy by the
  file's path inside the library (globs, :mod:`vpod.policy.pathglob`; the first match
  wins), and ``folder_files = true`` to read folders' ``.vpod.toml``
  (:mod:`vpod.policy.folder_file`) (:func:`libraries_from_table`).

:meth:`PolicySelector.select` decides, in this order, the first answer winning:

1. the nearest folder file (when the library enables them): its ``policy``, else the
   policy steps 2 to 4 choose, with the keys it overrides;
2. the first rule of the library whose glob matches the file's relative path;
3. the library's ``policy``;
4. the default policy ``[policy]`` (also for files outside every library).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple

from vpod.errors import ConfigError, MediaError
from vpod.outcomes import Reason
from vpod.policy.folder_file import FolderFile, nearest_folder_file, read_folder_file
from vpod.policy.pathglob import GlobError, PathGlob, compile_glob
from vpod.tomlschema import shown_value
from vpod.policy.policy import Policy, policy_from_table, policy_with_overrides
from vpod.results import display_path

if TYPE_CHECKING:
    from vpod.config import VPOConfig

DEFAULT_POLICY = "default"
"""The name of the ``[policy]`` table among the named policies."""

LIBRARY_KEYS = ("policy", "rules", "folder_files")
RULE_KEYS = ("match", "policy")
_FOLDER_CACHE_SIZE = 1024
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def table_name(section: str, name: str) -> str:
    """``[section.name]`` as TOML writes it (a name that is no bare key is quoted)."""
    return f"[{section}.{name}]" if _BARE_KEY.fullmatch(name) else f'[{section}."{name}"]'


@dataclass(frozen=True)
class PathRule:
    """One rule of ``[libraries.NAME] rules``: files whose relative path ``glob``
    matches are judged by the policy named ``policy``."""

    glob: PathGlob
    policy: str


@dataclass(frozen=True)
class LibraryPolicy:
    """``[libraries.NAME]``: the library's ``policy`` name, its ``rules`` (first match
    wins) and whether its folders' ``.vpod.toml`` files count (``folder_files``)."""

    policy: str = DEFAULT_POLICY
    rules: tuple[PathRule, ...] = ()
    folder_files: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as the config file writes it (``vpod config check``)."""
        return {
            "policy": self.policy,
            "rules": [{"match": r.glob.pattern, "policy": r.policy} for r in self.rules],
            "folder_files": self.folder_files,
        }


class Selection(NamedTuple):
    """The policy that judges one file: ``policy`` itself, its ``name`` (``"default"``
    or a ``[policies]`` name) and ``why`` it was chosen, for people (the rule that
    matched, the folder file, the library's policy or the default)."""

    policy: Policy
    name: str
    why: str

    def as_dict(self) -> dict[str, str]:
        """``{"name": ..., "why": ...}`` (``vpod plan --json``)."""
        return {"name": self.name, "why": self.why}


def policies_from_table(
    table: Any, *, default: Policy, source: Path | None, base_dir: Path | None
) -> tuple[tuple[str, Policy], ...]:
    """The named policies of ``[policies]``: ``NAME = { keys }`` or ``[policies.NAME]``
    tables, each read like ``[policy]`` (keys or a ``policy_file``). ``on_error`` is
    global: a named policy gets ``default``'s and may only repeat it.

    Raises:
        ConfigError: not a table of tables, the name ``default`` (the ``[policy]``
            table's), a name with control characters or outer spaces, or a bad policy.
    """
    if not isinstance(table, dict):
        raise ConfigError(source, "[policies]", "expected tables of policy keys: [policies.NAME]")
    named: list[tuple[str, Policy]] = []
    for name, keys in table.items():
        where = table_name("policies", name)
        if name == DEFAULT_POLICY:
            raise ConfigError(source, where, f'"{DEFAULT_POLICY}" is the name of the [policy] table; choose another')
        if not name or name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ConfigError(source, where, "expected a name without control characters or outer spaces")
        if not isinstance(keys, dict):
            raise ConfigError(source, where, f"expected a table of policy keys (or policy_file), got {keys!r}")
        try:
            policy = policy_from_table(keys, source=source, base_dir=base_dir, on_error=default.on_error)
        except ConfigError as exc:
            # "[policy] key" read inside [policies.NAME] is "[policies.NAME] key".
            key = exc.key
            if key and key.startswith("[policy]") and exc.source == (str(source) if source else "<defaults>"):
                key = where + key[len("[policy]") :]
            raise ConfigError(exc.source, key, exc.reason) from None
        named.append((name, policy))
    return tuple(named)


def libraries_from_table(
    table: Any, *, policies: Iterable[str], libraries: Iterable[str], source: Path | None
) -> tuple[tuple[str, LibraryPolicy], ...]:
    """The policy choices of ``[libraries]``: ``[libraries.NAME]`` with ``policy``,
    ``rules = [{ match = "GLOB", policy = "NAME" }, ...]`` and ``folder_files``.

    Args:
        policies: the policy names there are (``"default"`` and ``[policies]``).
        libraries: the library names of the config (:attr:`WatchConfig.library_names`).

    Raises:
        ConfigError: an unknown library or policy name, an unknown key, a wrong type, or
            a glob outside the dialect of :mod:`vpod.policy.pathglob`.
    """
    known_policies = set(policies)
    known_libraries = sorted(set(libraries))
    if not isinstance(table, dict):
        raise ConfigError(source, "[libraries]", "expected tables: [libraries.NAME] with policy, rules, folder_files")
    chosen: list[tuple[str, LibraryPolicy]] = []
    for name, keys in table.items():
        where = table_name("libraries", name)
        if name not in known_libraries:
            raise ConfigError(
                source, where, f"no library is named {name!r} (libraries: {', '.join(known_libraries) or 'none'}; "
                "a library's name comes from [watch.libraries] or from its folder's name)",
            )
        if not isinstance(keys, dict):
            raise ConfigError(
                source, where, f"expected a table of {', '.join(LIBRARY_KEYS)} (the folder of a library is set "
                f"in [watch.libraries]), got {keys!r}",
            )
        unknown = sorted(set(keys) - set(LIBRARY_KEYS))
        if unknown:
            raise ConfigError(source, f"{where} {unknown[0]}", f"unknown key (known keys: {', '.join(LIBRARY_KEYS)})")
        policy = _policy_name(keys.get("policy", DEFAULT_POLICY), known_policies, source, f"{where} policy")
        folder_files = keys.get("folder_files", False)
        if not isinstance(folder_files, bool):
            raise ConfigError(source, f"{where} folder_files", f"expected a boolean, got {shown_value(folder_files)}")
        rules = _rules(keys.get("rules", []), known_policies, source, where)
        chosen.append((name, LibraryPolicy(policy, rules, folder_files)))
    return tuple(chosen)


def _policy_name(value: Any, known: set[str], source: Path | None, key: str) -> str:
    if not isinstance(value, str) or value not in known:
        names = ", ".join(f'"{n}"' for n in sorted(known))
        raise ConfigError(source, key, f"expected the name of a policy ({names}), got {shown_value(value)}")
    return value


def _rules(value: Any, known: set[str], source: Path | None, where: str) -> tuple[PathRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(source, f"{where} rules", f'expected a list of {{ match = "GLOB", policy = "NAME" }}, got {shown_value(value)}')
    rules = []
    for i, item in enumerate(value):
        key = f"{where} rules[{i}]"
        if not isinstance(item, dict) or set(item) != set(RULE_KEYS):
            raise ConfigError(source, key, f'expected {{ match = "GLOB", policy = "NAME" }}, got {shown_value(item)}')
        if not isinstance(item["match"], str):
            raise ConfigError(source, f"{key} match", f"expected a path glob, got {shown_value(item['match'])}")
        try:
            glob = compile_glob(item["match"])
        except GlobError as exc:
            raise ConfigError(source, f"{key} match", str(exc)) from None
        rules.append(PathRule(glob, _policy_name(item["policy"], known, source, f"{key} policy")))
    return tuple(rules)


class PolicySelector:
    """Chooses the policy of each file (see the module docstring); thread-safe, one per
    config (a reload builds a new one).

    Args:
        default: the ``[policy]`` table.
        policies: the named policies (``[policies]``), name -> policy.
        libraries: the libraries' choices (``[libraries]``), library name -> choice.
        folders: each watched folder's library name (absolute folder -> name), to find
            the library of a path when the caller does not know it (``vpod plan``).

    Folder files are read when a file is judged, and kept (up to 1,024, by path, inode,
    size, mtime and ctime, with the policy each base gives) until they change.
    """

    def __init__(
        self,
        default: Policy,
        policies: Mapping[str, Policy] | None = None,
        libraries: Mapping[str, LibraryPolicy] | None = None,
        folders: Mapping[Path, str] | None = None,
    ) -> None:
        self.policies: dict[str, Policy] = {DEFAULT_POLICY: default, **(policies or {})}
        self.libraries = dict(libraries or {})
        self.folders = dict(folders or {})
        self._cache: dict[tuple[object, ...], tuple[FolderFile, Policy] | ConfigError] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: VPOConfig) -> PolicySelector:
        """The selector of ``config``'s policies and libraries."""
        return cls(config.policy, dict(config.policies), dict(config.library_policies), config.watch.library_names)

    @classmethod
    def single(cls, policy: Policy) -> PolicySelector:
        """A selector that gives every file ``policy`` (as ``"default"``)."""
        return cls(policy)

    @property
    def default(self) -> Policy:
        """The ``[policy]`` table."""
        return self.policies[DEFAULT_POLICY]

    def select(self, path: Path, *, root: Path | None = None, library: str | None = None) -> Selection:
        """The policy that judges the file ``path`` (absolute).

        Args:
            root: the folder of its library (``None``: the innermost watched folder that
                holds it, if any).
            library: its library's name (``None``: the name of ``root``'s watched folder).

        Raises:
            MediaError: reason ``bad_folder_policy`` (permanent): the folder file that
                counts cannot be read or holds a bad key; the message names the file,
                the folder file and the key.
        """
        root, library = self._locate(path, root, library)
        name, why = self._configured(path, root, library)
        choice = self.libraries.get(library) if library is not None else None
        if choice is None or not choice.folder_files or root is None:
            return Selection(self.policies[name], name, why)
        try:
            found = nearest_folder_file(root, path)
            if found is None:
                return Selection(self.policies[name], name, why)
            folder_file, policy = self._folder_policy(found[0], found[1], name)
        except ConfigError as exc:
            raise MediaError(
                f"{display_path(path)}: cannot choose its policy: folder policy file {exc}",
                reason=Reason.BAD_FOLDER_POLICY,
            ) from None
        chosen = folder_file.policy or name
        if folder_file.policy is None:
            why = f"folder file {display_path(folder_file.path)}: {folder_file.describe()} of {chosen} ({why})"
        else:
            why = f"folder file {display_path(folder_file.path)}: {folder_file.describe()}"
        return Selection(policy, chosen, why)

    def ignored_folder_file(self, path: Path, *, root: Path | None = None, library: str | None = None) -> str | None:
        """Why the folder file nearest to ``path`` does not count, for people, when there
        is one and the file's library leaves ``folder_files`` off (``None`` otherwise):
        ``"/srv/x/Kids/.vpod.toml is ignored: [libraries.x] folder_files = false"``.
        A folder file that cannot be looked at is not reported here."""
        root, library = self._locate(path, root, library)
        if root is None or library is None:
            return None
        choice = self.libraries.get(library)
        if choice is not None and choice.folder_files:
            return None
        try:
            found = nearest_folder_file(root, path)
        except ConfigError:
            return None
        if found is None:
            return None
        where = table_name("libraries", library)
        unset = "" if choice is not None else f" (the default; there is no {where} table)"
        return f"{display_path(found[0])} is ignored: {where} folder_files = false{unset}"

    def by_name(self, root: Path) -> bool:
        """Whether a file's own name, not only its folder, can choose its policy under the
        library folder ``root``: the library has ``rules`` (globs on the relative path).
        Without rules the policy is the library's, or a folder file's (:meth:`select`
        looks only at folders), so every file of one folder has the same digest (the
        intake then asks :meth:`digest` once per folder of a batch)."""
        library = self.folders.get(root)
        choice = self.libraries.get(library) if library is not None else None
        return choice is not None and bool(choice.rules)

    def digest(self, path: Path, *, root: Path | None = None, library: str | None = None) -> str | None:
        """:attr:`Policy.digest` of the policy that judges ``path`` (:meth:`select`);
        ``None`` when its folder file is bad (the file is judged, and fails, later)."""
        try:
            return self.select(path, root=root, library=library).policy.digest
        except MediaError:
            return None

    def _locate(self, path: Path, root: Path | None, library: str | None) -> tuple[Path | None, str | None]:
        """(root, library) of ``path``, filling in what the caller does not know; the
        library is ``None`` outside every configured library (a folder vpod process was given)."""
        if root is None:
            root = self._root_of(path)
        if library is None and root is not None:
            library = self.folders.get(root)
        return root, library if library in self.folders.values() else None

    def _root_of(self, path: Path) -> Path | None:
        inside = [folder for folder in self.folders if folder in path.parents]
        return max(inside, key=lambda folder: len(folder.parts), default=None)

    def _configured(self, path: Path, root: Path | None, library: str | None) -> tuple[str, str]:
        """(policy name, why) by the config alone: a rule, the library's policy, the default."""
        if library is None or root is None:
            return DEFAULT_POLICY, "outside every library: the default policy [policy]"
        choice = self.libraries.get(library)
        where = table_name("libraries", library)
        if choice is None:
            return DEFAULT_POLICY, f"library {library!r} has no {where} table: the default policy [policy]"
        relpath = Path(os.path.relpath(path, root)).as_posix()
        for i, rule in enumerate(choice.rules):
            if rule.glob.matches(relpath):
                return rule.policy, f'{where} rules[{i}]: "{rule.glob.pattern}" matches "{relpath}"'
        return choice.policy, f'{where} policy = "{choice.policy}"'

    def _folder_policy(self, path: Path, st: os.stat_result, base: str) -> tuple[FolderFile, Policy]:
        """The folder file at ``path`` and the policy it makes of the policy ``base``.

        Raises:
            ConfigError: the file is bad, names an unknown policy or overrides a key badly.
        """
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, base)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            try:
                folder_file = read_folder_file(path)
                name = folder_file.policy or base
                if name not in self.policies:
                    names = ", ".join(f'"{n}"' for n in sorted(self.policies))
                    raise ConfigError(path, "policy", f"expected the name of a policy ({names}), got {shown_value(name)}")
                policy = self.policies[name]
                if folder_file.overrides:
                    policy = policy_with_overrides(policy, folder_file.overrides, source=path)
                cached = (folder_file, policy)
            except ConfigError as exc:
                cached = exc
            with self._lock:
                if len(self._cache) >= _FOLDER_CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = cached
        if isinstance(cached, ConfigError):
            raise ConfigError(cached.source, cached.key, cached.reason)
        return cached
