"""``vpod inspect FILE``: the container and tracks of a file as vpod sees them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from vpod.cli.common import require_tools_or_exit
from vpod.config import ProcessingConfig
from vpod.errors import MediaError
from vpod.media.limits import ToolLimits
from vpod.media.model import MediaInfo
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.outcomes import Reason
from vpod.policy.languages import language_name
from vpod.results import display_path
from vpod.safety import require_regular_file

PROBE_TOOLS = ("mkvmerge", "ffprobe")


def probe_or_exit(path: Path, limits: ToolLimits | None = None) -> MediaInfo:
    """Probe ``path`` (within ``limits``, default: the built-in ``[processing]`` ones).

    Raises:
        Skip: not a regular file (a FIFO named ``x.mkv``, a folder, a device), by the
            pipeline's own check; a MediaError (exit 1).
        MediaError: the file cannot be read as media, or not at all (exit 1).
        ToolsMissing: mkvmerge or ffprobe is not on ``PATH`` (exit 69).
    """
    require_tools_or_exit(PROBE_TOOLS)
    try:
        require_regular_file(path, os.stat(path))  # the pipeline's check: a FIFO is never opened
        return probe(path.absolute(), ToolRunner(limits or ToolLimits.from_config(ProcessingConfig())))
    except OSError as exc:
        raise MediaError(f"{display_path(path)}: {exc.strerror or exc}", reason=Reason.OS_ERROR) from exc


def format_media(media: MediaInfo) -> str:
    """A human-readable table of the container and tracks."""
    duration = f"{media.duration_seconds:.3f} s" if media.duration_seconds is not None else "unknown duration"
    lines = [
        display_path(media.path),
        f"  {media.container} (probed with {media.probed_with}), {duration}, {media.size_bytes} bytes, "
        f"{media.attachments} attachment(s)",
        f"  {'#':>3}  {'type':<10} {'codec':<22} {'language':<18} {'flags':<16} title",
    ]
    for t in media.tracks:
        flags = ",".join(name for name, on in (("default", t.default), ("forced", t.forced)) if on) or "-"
        if not t.languages_agree:
            flags += ",lang-mismatch"
        language = f"{t.language} ({language_name(t.language)})"
        extra = f" [{t.channels} ch]" if t.channels else ""
        lines.append(
            f"  {t.index:>3}  {t.type:<10} {t.codec[:22]:<22} {language[:18]:<18} {flags:<16} {t.title or ''}{extra}"
        )
    return "\n".join(lines)


@click.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON.")
def inspect_command(file: Path, as_json: bool) -> None:
    """Show FILE's container and tracks as vpod sees them (writes nothing).

    Exit status: 0, or 1 when the file cannot be read as media, 69 when a tool is missing.
    """
    media = probe_or_exit(file)
    if as_json:
        click.echo(json.dumps(media.as_dict(), indent=2))
    else:
        click.echo(format_media(media))
