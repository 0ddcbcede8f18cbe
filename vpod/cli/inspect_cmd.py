"""``vpod inspect FILE``: the container and tracks of a file as vpod sees them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import click

from vpod.cli.common import config_option, load_or_exit, require_tools_or_exit
from vpod.config import ProcessingConfig
from vpod.errors import MediaError, UsageProblem
from vpod.media.limits import ToolLimits
from vpod.media.flags import TRACK_FLAGS
from vpod.media.model import MediaInfo, Track
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.outcomes import Reason
from vpod.policy.languages import language_name
from vpod.policy.policy import Policy
from vpod.policy.roles import track_roles
from vpod.policy.selection import PolicySelector
from vpod.results import display_path
from vpod.safety import require_regular_file
from vpod.targets import library_file

PROBE_TOOLS = ("mkvmerge", "ffprobe")


def probe_or_exit(path: Path, limits: ToolLimits | None = None, watch_roots: Sequence[Path] = ()) -> MediaInfo:
    """Probe ``path`` (within ``limits``, default: the built-in ``[processing]`` ones), named
    as ``vpod process`` names it (:func:`vpod.targets.library_file`: absolute, ``..``
    taken out, a symlink followed, a file of one of ``watch_roots`` reached through a
    symlinked folder or a bind mount named through that root): the result's ``path`` is
    the one a policy is chosen for.

    Raises:
        Skip: not a regular file (a FIFO named ``x.mkv``, a folder, a device), by the
            pipeline's own check; a MediaError (exit 1).
        MediaError: the file cannot be read as media, or not at all (exit 1).
        ToolsMissing: mkvmerge or ffprobe is not on ``PATH`` (exit 69).
    """
    require_tools_or_exit(PROBE_TOOLS)
    try:
        require_regular_file(path, os.stat(path))  # the pipeline's check: a FIFO is never opened
        return probe(library_file(path, watch_roots), ToolRunner(limits or ToolLimits.from_config(ProcessingConfig())))
    except OSError as exc:
        raise MediaError(f"{display_path(path)}: {exc.strerror or exc}", reason=Reason.OS_ERROR) from exc


def track_flags(track: Track) -> str:
    """The flags set on ``track``, comma-separated in :data:`TRACK_FLAGS` order (``-``
    when none), plus ``lang-mismatch`` when its two Matroska language elements disagree."""
    shown = [flag.label for flag in TRACK_FLAGS if flag.of(track)]
    if not track.languages_agree:
        shown.append("lang-mismatch")
    return ",".join(shown) or "-"


def format_media(media: MediaInfo, roles: Mapping[int, Sequence[str]] | None = None) -> str:
    """A human-readable table of the container and tracks: every flag set on each track
    (:data:`vpod.media.flags.TRACK_FLAGS`) and, when ``roles`` is given (stream index →
    role names), a ``roles`` column."""
    duration = f"{media.duration_seconds:.3f} s" if media.duration_seconds is not None else "unknown duration"
    flags = {t.index: track_flags(t) for t in media.tracks}
    width = max([len("flags"), *(len(f) for f in flags.values())])
    roles_of = {t.index: ",".join((roles or {}).get(t.index, ())) or "-" for t in media.tracks}
    roles_width = max([len("roles"), *(len(r) for r in roles_of.values())])
    roles_head = f" {'roles':<{roles_width}}" if roles is not None else ""
    lines = [
        display_path(media.path),
        f"  {media.container} (probed with {media.probed_with}), {duration}, {media.size_bytes} bytes, "
        f"{media.attachments} attachment(s)",
        f"  {'#':>3}  {'type':<10} {'codec':<22} {'language':<18} {'flags':<{width}}{roles_head} title",
    ]
    for t in media.tracks:
        language = f"{t.language} ({language_name(t.language)})"
        extra = f" [{t.channels} ch]" if t.channels else ""
        role = f" {roles_of[t.index]:<{roles_width}}" if roles is not None else ""
        lines.append(
            f"  {t.index:>3}  {t.type:<10} {t.codec[:22]:<22} {language[:18]:<18} {flags[t.index]:<{width}}{role} "
            f"{t.title or ''}{extra}"
        )
    return "\n".join(lines)


def media_json(media: MediaInfo, roles: Mapping[int, Sequence[str]] | None = None) -> dict[str, Any]:
    """``vpod inspect --json``: :meth:`MediaInfo.as_dict` (each track with its seven flags
    as booleans) plus, per track, ``flags``: the names of those set; and ``roles`` when
    ``roles`` is given (stream index → role names)."""
    data = media.as_dict()
    for track, entry in zip(media.tracks, data["tracks"]):
        entry["flags"] = [flag.name for flag in TRACK_FLAGS if flag.of(track)]
        if roles is not None:
            entry["roles"] = list(roles.get(track.index, ()))
    return data


def role_names(media: MediaInfo, policy: Policy) -> dict[int, tuple[str, ...]]:
    """Stream index → the track's roles (``forced``, ``sdh``, ``commentary``,
    ``description``, ``text_descriptions``) from its flags and, by ``policy``'s title
    patterns, its title (:mod:`vpod.policy.roles`)."""
    return {t.index: track_roles(t, policy).names() for t in media.tracks}


@click.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON.")
def inspect_command(file: Path, config_path: str | None, as_json: bool) -> None:
    """Show FILE's container and tracks as vpod sees them (writes nothing): each track's
    flags, and its roles (forced, SDH, commentary, audio description) from its flags and,
    by the policy's title patterns, its title.

    Exit status: 0, or 1 when the file cannot be read as media, 2 for a bad config or
    folder policy file, 69 when a tool is missing.
    """
    config = load_or_exit(config_path)
    media = probe_or_exit(file, ToolLimits.from_config(config.processing), config.watch.paths)
    try:  # the title patterns of the policy that judges the file
        policy = PolicySelector.from_config(config).select(media.path).policy
    except MediaError as exc:  # a bad .vpod.toml, as vpod plan reports it
        raise UsageProblem(str(exc)) from exc
    roles = role_names(media, policy)
    if as_json:
        click.echo(json.dumps(media_json(media, roles), indent=2))
    else:
        click.echo(format_media(media, roles))
