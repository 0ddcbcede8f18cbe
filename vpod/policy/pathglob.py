"""The path globs of policy rules (``[libraries.NAME] rules``): a small, exact dialect.

A glob is matched against a file's whole path relative to its library's folder, with
``/`` between folders (``Anime/Show/S01E01.mkv``), case-sensitively (Linux file names
are bytes; undecodable ones are matched as Python decodes them, ``\\udcNN``):

* ``*`` matches any run of characters within one path component (never ``/``), also none;
* ``?`` matches one character other than ``/``;
* ``[abc]``, ``[a-z]``, ``[!abc]`` match one character of (or not of) a set, never ``/``;
  ``[*]``, ``[?]`` and ``[[]`` match a literal ``*``, ``?`` and ``[``;
* ``**`` as a whole component matches any number of folders: ``Anime/**`` every file
  below ``Anime`` at any depth, ``**/Extras/*`` the files directly in any ``Extras``
  folder, ``a/**/b.mkv`` ``a/b.mkv`` and ``a/x/y/b.mkv``; a bare ``**`` every file;
* anything else matches itself.

The glob must match the whole relative path (``Kids/*`` matches ``Kids/a.mkv``, not
``Kids/Show/a.mkv`` and not ``More/Kids/a.mkv``). Refused, with what to write instead:
an empty glob, a leading ``/`` (globs are relative), a trailing ``/`` (write ``X/**``),
``**`` inside a component (``a**``), an empty component (``a//b``), ``.`` or ``..``
components, an unclosed ``[``, and a backwards range in a set (``[z-a]``: write
``[a-z]``; fnmatch(3) would match nothing). This is the dialect of gitignore(5) for ``**``, and
of fnmatch(3) with ``FNM_PATHNAME`` for the rest, except that no pattern floats: a glob
without ``/`` matches files directly in the library's folder only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class GlobError(ValueError):
    """A glob that is not in the dialect; ``str()`` says what to write instead."""


@dataclass(frozen=True)
class PathGlob:
    """A compiled glob; ``pattern`` as written. Build it with :func:`compile_glob`."""

    pattern: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, relpath: str) -> bool:
        """True when ``relpath`` (``/``-separated, relative to the library's folder) matches."""
        return self.regex.fullmatch(relpath) is not None


def compile_glob(pattern: str) -> PathGlob:
    """Compile ``pattern`` (see the module docstring).

    Raises:
        GlobError: the pattern is not in the dialect; the message says why.
    """
    if not pattern:
        raise GlobError("an empty glob matches nothing; write a path glob such as \"Anime/**\"")
    if pattern.startswith("/"):
        raise GlobError(f"{pattern!r}: globs are relative to the library's folder; leave out the leading /")
    if pattern.endswith("/"):
        raise GlobError(f"{pattern!r}: globs match files; write {pattern + '**'!r} for every file below the folder")
    parts = pattern.split("/")
    regex = ""
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if part == "**":
            # Any number of whole components: "x/**" needs at least one below x (a file).
            regex += ".*" if last else "(?:[^/]*/)*"
            continue
        if not part:
            raise GlobError(f"{pattern!r}: an empty path component (//)")
        if part in (".", ".."):
            raise GlobError(f"{pattern!r}: {part!r} components are not allowed; paths are relative to the library")
        if "**" in part:
            raise GlobError(f"{pattern!r}: ** must be a whole path component (a/**/b); use * within a name")
        regex += _component(part, pattern) + ("" if last else "/")
    try:
        return PathGlob(pattern, re.compile(regex, re.DOTALL))
    except re.error as exc:  # a case the checks above miss must still be a config error
        raise GlobError(f"{pattern!r}: not a glob vpod can read ({exc})") from None


def _component(part: str, pattern: str) -> str:
    """The regex of one path component without ``**``."""
    out = ""
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = _class_end(part, i)
            if end < 0:
                raise GlobError(f"{pattern!r}: [ without a closing ]; write [[] for a literal [")
            body = part[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            _check_ranges(body, pattern)
            escaped = "".join("\\" + c if c in "\\^[]&~|" else c for c in body)
            # A range may span "/" ([+-0]): a set never matches it, as in fnmatch(3) with FNM_PATHNAME.
            # "/" stays out of the set itself: "[^/-a]" would read as the range "/"-"a".
            out += f"(?!/)[{'^' if negate else ''}{escaped}]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return out


def _check_ranges(body: str, pattern: str) -> None:
    """Refuse a backwards range (``z-a``) in the set ``body`` (without ``[``, ``!``, ``]``).
    Ranges are read as the regex of the set reads them: ``x-y`` left to right, a ``-``
    first or last is itself.

    Raises:
        GlobError: names the range and the way round to write it.
    """
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            low, high = body[j], body[j + 2]
            if low > high:
                raise GlobError(
                    f"{pattern!r}: the range {low}-{high} is backwards (it matches nothing); write {high}-{low}"
                )
            j += 3
        else:
            j += 1


def _class_end(part: str, start: int) -> int:
    """Index of the ``]`` closing the set opened at ``start``, or -1. A ``]`` right after
    ``[`` or ``[!`` belongs to the set (fnmatch(3))."""
    i = start + 1
    if i < len(part) and part[i] == "!":
        i += 1
    if i < len(part) and part[i] == "]":
        i += 1
    end = part.find("]", i)
    return end
