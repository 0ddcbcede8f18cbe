"""Typed, validated sections built from parsed TOML tables.

Each config or policy section is a frozen dataclass. Its fields carry their own
validation in ``metadata`` (see :func:`setting`), so one generic builder can turn a
TOML table into a section and name the file, the key and what was expected when a
value is wrong. TOML itself is parsed by :mod:`tomllib` (``tomli`` before 3.11).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from vpod.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    SectionT = TypeVar("SectionT", bound=DataclassInstance)
else:
    SectionT = TypeVar("SectionT")

Check = Callable[[Any], "str | None"]
"""A validator: returns ``None`` when the value is acceptable, else what was expected."""


def setting(
    default: Any,
    *,
    check: Check | None = None,
    check_list: tuple[Check, ...] = (),
    doc: str = "",
    live: bool = True,
    secret: bool = False,
) -> Any:
    """Declare a section field with optional validators and a one-line description.

    ``check(value)`` (each item of a list setting) and each of ``check_list(list)``
    return ``None`` for a good value or a short phrase saying what was expected (for
    example ``"an integer >= 1"``). ``live``: a config reload (SIGHUP) applies a new
    value in the running daemon; ``False``: only a restart does (:mod:`vpod.reload`).
    ``secret``: a value never shown (an API key): left out of the dataclass's ``repr``
    and shown as :data:`HIDDEN` by :func:`section_as_dict` (``vpod config check``).
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults so sections stay immutable")
    return dataclasses.field(
        default=default,
        repr=not secret,
        metadata={"check": check, "check_list": check_list, "doc": doc, "live": live, "secret": secret},
    )


HIDDEN = "(hidden)"
"""What :func:`section_as_dict` shows instead of a set ``secret`` setting."""


def masked_url(text: str) -> str:
    """A URL as an error may show it: ``scheme://host:port/…`` only (user, password,
    path and query dropped: an ntfy topic, a Telegram bot token or ``?apikey=`` may sit
    in any of them); a text that is not ``scheme://...`` becomes ``…``."""
    import re

    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return "…"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = netloc.rpartition("@")[2]
    if not re.fullmatch(r"[A-Za-z0-9.\-]*(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]*\](:[0-9]{1,5})?", host):
        host = "…"
    return f"{scheme}://{host}" + ("/…" if len(netloc) < len(rest) or "@" in netloc else "")


def shown_value(value: Any, *, secret: bool = False) -> str:
    """``value`` as a config error may echo it: a ``secret`` setting's never (only its
    type), a string holding ``://`` as :func:`masked_url`, lists item by item."""
    if secret:
        return f"a {_json_type(value)} (not shown: a secret setting)"
    if isinstance(value, str) and "://" in value:
        return toml_value(masked_url(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown_value(v) for v in value) + "]"
    return toml_value(value)


def toml_value(value: Any) -> str:
    """``value`` (parsed TOML) written back as TOML, as the user wrote it: ``true``,
    ``95``, ``"relative/dev"``, ``[1, 2]``, ``{ to = "aac" }`` (not Python's ``True``,
    ``95.0`` or ``'x'``). A string is a TOML basic string (JSON's escapes are TOML's)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    return str(value)


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def at_least(minimum: float, *, strict: bool = False) -> Check:
    """Validator for numbers ``>= minimum`` (``> minimum`` when ``strict``)."""

    def check(value: Any) -> str | None:
        ok = value > minimum if strict else value >= minimum
        if ok:
            return None
        return f"a number {'>' if strict else '>='} {minimum:g}"

    return check


def in_range(minimum: int, maximum: int) -> Check:
    """Validator for counts from ``minimum`` to ``maximum`` inclusive."""

    def check(value: Any) -> str | None:
        if minimum <= value <= maximum:
            return None
        return f"a number from {minimum:,} to {maximum:,}"

    return check


MAX_SECONDS = 7 * 24 * 3600.0
"""Upper bound of every duration setting (7 days): longer waits overflow the OS's
millisecond timers (poll(2) takes an int of milliseconds, about 24.8 days at most)."""


def seconds() -> Check:
    """Validator for a duration in seconds: more than 0 and at most :data:`MAX_SECONDS`."""

    def check(value: Any) -> str | None:
        if 0 < value <= MAX_SECONDS:
            return None
        return f"a number of seconds > 0 and <= {MAX_SECONDS:g} (7 days)"

    return check


def non_empty(value: tuple[Any, ...]) -> str | None:
    """List validator: at least one item."""
    return None if value else "at least one item"


def distinct(value: tuple[Any, ...]) -> str | None:
    """List validator: no item twice."""
    return None if len(set(value)) == len(value) else "each item at most once"


def one_of(*choices: str) -> Check:
    """Validator for a string among ``choices``."""

    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return "one of " + ", ".join(f'"{c}"' for c in choices)

    return check


def load_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file.

    Raises:
        ConfigError: the file cannot be read or is not valid TOML (the message names
            the file and the parser's reason, which includes line and column). A
            leading UTF-8 byte order mark is allowed.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        # Editors on Windows start UTF-8 files with a byte order mark, which TOML does not allow.
        return tomllib.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (TOML files must be UTF-8): {exc.reason} at byte {exc.start}") from exc
    except ValueError as exc:  # a path with a NUL byte ("embedded null byte")
        raise ConfigError(path, None, f"cannot read the file: {exc}") from exc


def _optional_of(hint: Any) -> Any:
    """``X`` for a hint ``X | None`` (a setting whose default ``None`` means "not set":
    TOML has no null, so a file either gives an ``X`` or leaves the key out); else ``None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _type_name(hint: Any) -> str:
    if _optional_of(hint) is not None:
        return _type_name(_optional_of(hint))
    origin = typing.get_origin(hint)
    if origin is tuple:
        inner = typing.get_args(hint)[0]
        return "a list of " + {str: "strings", Path: "path strings"}.get(inner, f"{_type_name(inner)} values")
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a finite number",
        str: "a string",
        Path: "a path string",
    }.get(hint, str(hint))


def _coerce(hint: Any, value: Any, base_dir: Path | None) -> Any:
    """Convert a TOML value to ``hint`` or raise ``TypeError``."""
    if _optional_of(hint) is not None:
        return _coerce(_optional_of(hint), value, base_dir)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(inner, item, base_dir) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError  # inf and nan are TOML floats, but no setting means them
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise TypeError
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return path
    raise AssertionError(f"unsupported setting type {hint!r}")


def build_section(
    cls: type[SectionT],
    table: Mapping[str, Any],
    *,
    source: Path | None,
    section: str,
    base_dir: Path | None = None,
    skip: tuple[str, ...] = (),
) -> SectionT:
    """Build the dataclass ``cls`` from a TOML ``table``.

    Keys listed in ``skip`` are left to the caller. Unknown keys, wrong types and values
    rejected by a field's validator raise :class:`ConfigError` naming ``source``,
    ``[section] key`` and what was expected. Relative ``Path`` values are resolved
    against ``base_dir`` (the config file's folder).
    """
    if not isinstance(table, Mapping):
        raise ConfigError(source, f"[{section}]", "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key in skip:
            continue
        if key not in fields:
            known = ", ".join(sorted({*fields, *skip}))  # a skipped key is known: the caller reads it
            raise ConfigError(source, f"[{section}] {key}", f"unknown key (known keys: {known})")
        hint = hints[key]
        secret = bool(fields[key].metadata.get("secret"))
        try:
            value = _coerce(hint, raw, base_dir)
        except TypeError:
            raise ConfigError(
                source, f"[{section}] {key}", f"expected {_type_name(hint)}, got {shown_value(raw, secret=secret)}"
            ) from None
        check = fields[key].metadata.get("check")
        for check_list in fields[key].metadata.get("check_list", ()):
            problem = check_list(value)
            if problem:
                raise ConfigError(source, f"[{section}] {key}", f"expected {problem}, got {shown_value(raw, secret=secret)}")
        # Echo each item as written (95, not the float 95.0 it became).
        items = zip(value, raw) if isinstance(value, tuple) else ((value, raw),)
        for item, written in items:
            problem = check(item) if check else None
            if problem:
                raise ConfigError(source, f"[{section}] {key}", f"expected {problem}, got {shown_value(written, secret=secret)}")
        values[key] = value
    return cls(**values)


def section_as_dict(section: Any) -> dict[str, Any]:
    """A JSON- and TOML-friendly dict of a section, a dataclass instance (paths as
    strings, tuples as lists, nested sections as dicts, ``secret`` settings as
    :data:`HIDDEN` when set)."""

    def shown(f: dataclasses.Field[Any], value: Any) -> Any:
        if f.metadata.get("secret"):
            return HIDDEN if value else value
        return plain(value)

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: shown(f, getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return {f.name: shown(f, getattr(section, f.name)) for f in dataclasses.fields(section)}
