"""``vpod plan FILE``: what the policy would change, without writing anything."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Sequence

import click

from vpod.cli.common import config_option, load_or_exit
from vpod.cli.inspect_cmd import format_media, probe_or_exit, role_names
from vpod.config import VPOConfig
from vpod.errors import MediaError, ToolError, ToolMissing, UsageProblem
from vpod.lanes import TranscodeHours
from vpod.logs import configure_logging
from vpod.media.encoders import HARDWARE, PlannedEncoder, encoder_names_in, planned_encoder
from vpod.media.limits import ToolLimits
from vpod.media.model import MediaInfo
from vpod.media.tools import ToolRunner
from vpod.media.transcode import picture_refusal
from vpod.media.verify import without_video_transcodes
from vpod.not_smaller import NotSmaller, recorded_not_smaller
from vpod.original.resolver import OriginalResolver, Resolution, names_original
from vpod.outcomes import Reason
from vpod.pipeline import header_part, obstacle
from vpod.safety import Skip
from vpod.policy.plan import Action, CostClass, Plan, TranscodeVideo
from vpod.policy.planner import plan as make_plan
from vpod.policy.selection import PolicySelector
from vpod.results import display_path
from vpod.targets import library_file

COST_CLASSES: dict[CostClass, str] = {
    "none": "nothing to do",
    "header": "header edit in place, a fraction of a second",
    "remux": "remux: the file read and written once, seconds to minutes",
    "transcode": "transcode: media encoded, minutes to hours of CPU",
}
"""What each cost class of :attr:`vpod.policy.plan.Plan.cost` means, for people."""

@click.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--json", "as_json", is_flag=True, help='Print {"path": ..., "actions": [...]} as JSON.')
def plan_command(file: Path, config_path: str | None, as_json: bool) -> None:
    """Show what the policy would change in FILE; nothing is written.

    The JSON form is an object with "path", "policy" ({"name", "why"}: the policy that
    judges the file and why it was chosen), "cost" (the plan's cost class: "none",
    "header" for an in-place header edit, "remux", or "transcode" when it encodes
    media), "actions" (empty when the file conforms;
    each names its track by stream index, as `vpod inspect` lists them; a video
    transcode asking for a hardware encoder also has "hardware_encoder",
    "fallback_encoder", the software encoder that runs when the hardware one is not
    usable at run time, and "not_usable_here", why this machine already rules it out, or
    null; no test encode is run), "warnings",
    "skip" (why `vpod run` would leave the file alone, or null), "error" (why
    `vpod run` would fail the file without changing it, e.g. unsupported_stream, or null),
    "would_apply" (the actions `vpod run` would apply: all of them, none, or for a
    hard-linked file under hardlinks = "headers" the header part, or for a file kept as
    not_smaller, hdr_not_kept, interlaced_not_kept or several_video_tracks the plan less
    its video transcode),
    "would_apply_cost"
    (their cost class: "cost" is the whole plan's), "original_language"
    (the file's original language: "code", "source", "detail", "description", "waiting"
    and "notes"; null when no language list of the policy names "original" and no
    source answered or noted anything) and "not_smaller" ("detail", "saved_percent",
    "policy", "try_again"; null unless the configured database holds that outcome for
    this content under the policy in force: its video transcode, marked "not_run", is
    not run again). A video transcode that cannot keep the picture (HDR the encoder
    cannot write, an interlaced source: one ffprobe of the streams and of the first
    frame, no encode; more than one video track to encode) is marked "not_run" with that reason, which "skip" carries.
    "waits_for_transcode_hours" ({"next_window", "transcode_hours"}: what the run would
    apply encodes, [processing] transcode_hours is set and now is outside every window;
    null otherwise). The database is read only when the plan re-encodes video, and only
    if it exists; one it cannot read is said on stderr and the plan made without it.
    A file that cannot be read as media (not media, truncated, not a regular file) still
    gets the object with --json: "error" holds the reason and detail, "policy", "cost" and
    "would_apply_cost" are null and the lists empty; the exit status stays 1 and the
    line on stderr too.
    Exit status: 0, 1 when the file cannot be read as media, 2 for a bad config or
    folder policy file, 69 when a tool is missing.
    """
    config = load_or_exit(config_path)
    # Asking a Sonarr/Radarr instance may log (arr_unavailable): to stderr, warnings only,
    # so stdout holds the plan alone.
    configure_logging("warning", config.logging.format, timestamps=config.logging.timestamps)
    try:
        media = probe_or_exit(file, ToolLimits.from_config(config.processing), config.watch.paths)
    except MediaError as exc:
        if as_json and not isinstance(exc, ToolMissing):
            click.echo(json.dumps(_unreadable(library_file(file, config.watch.paths), exc), indent=2))
        raise  # the line on stderr and exit status 1 (vpod.cli.exits)
    selector = PolicySelector.from_config(config)
    try:
        selection = selector.select(media.path)
    except MediaError as exc:  # a bad .vpod.toml: the run would fail the file (bad_folder_policy)
        raise UsageProblem(str(exc)) from exc
    policy = selection.policy
    # The run's sources in the run's order (vpod.original.resolver); when the run would
    # wait for a Sonarr/Radarr instance, the plan shows what the later sources give.
    resolution = OriginalResolver(config.arr).resolve(media, policy)
    plan = make_plan(policy, media, resolution.original)
    st = os.stat(media.path)
    # The run's own check (vpod.pipeline.obstacle): a skip, or a failure before any write.
    blocked = resolution.error(media.path) or obstacle(media, plan, policy, st)
    skip = blocked if isinstance(blocked, Skip) else None
    error = blocked if blocked is not None and skip is None else None
    applied = plan if blocked is None else header_part(media, plan, policy, st, resolution.original)
    # A video transcode vpod declined before (keep_if_larger): not run again on that content.
    declined = _declined(config, media.path, plan, policy.digest) if blocked is None and policy.keep_if_larger else None
    if declined is not None:  # the run would not encode its video again: the rest only
        applied = without_video_transcodes(plan)
        skip = Skip(f"{display_path(media.path)}: {declined.describe()}; {declined.try_again()}", Reason.NOT_SMALLER)
    # A video transcode the run declines before any encode (HDR, interlacing): the rest only.
    refused = _picture_refused(media, plan, config) if blocked is None and declined is None else None
    if refused is not None:
        applied = without_video_transcodes(plan)
        skip = Skip(str(refused), refused.reason)
    not_run = Reason.NOT_SMALLER if declined is not None else refused.reason if refused is not None else None
    # Shown when it matters: a language list names "original", or a source answered
    # (mark_original would flag its tracks), or there is something to note.
    shown = names_original(policy) or resolution.original is not None or bool(resolution.notes)
    original = _original_as_dict(resolution) if shown else None
    encoders = _planned_encoders(plan.actions, config.processing.vaapi_device, ToolLimits.from_config(config.processing))
    waits = _waits_for_transcode_hours(config, applied.cost if error is None else "none")
    if as_json:
        data: dict[str, Any] = {
            "path": display_path(media.path),
            "policy": selection.as_dict(),
            "cost": plan.cost,
            "actions": [{**_action_json(a, encoders), **_not_run(a, not_run)} for a in plan.actions],
            "warnings": list(plan.warnings),
            "skip": {"reason": skip.reason, "detail": str(skip)} if skip else None,
            "error": {"reason": error.reason, "detail": str(error)} if error else None,
            "would_apply": [_action_json(a, encoders) for a in applied.actions],
            "would_apply_cost": applied.cost,
            "original_language": original,
            "not_smaller": declined.as_dict() if declined is not None else None,
            "waits_for_transcode_hours": waits,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_media(media, role_names(media, policy)))
    click.echo(f"policy: {selection.name} ({selection.why})")
    ignored = selector.ignored_folder_file(media.path)
    if ignored is not None:
        click.echo(f"  note: {ignored}")
    if original is not None:
        click.echo(resolution.describe())
        for note in resolution.notes:
            click.echo(f"  note: {note}")
    if plan.is_empty:
        click.echo("conforms to the policy: nothing to do")
    else:
        click.echo(f"{len(plan.actions)} change(s), cost class {plan.cost} ({COST_CLASSES[plan.cost]}):")
        for action in plan.actions:
            marked = _not_run(action, not_run)
            why_not = "an earlier encode was not smaller" if declined is not None else f"{not_run}: see below"
            note = f"  (not run: {why_not})" if marked else ""
            click.echo(f"  - {_describe(action, encoders)}" + (f"  [{action.why}]" if action.why else "") + note)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}")
    if declined is not None:
        click.echo(f"vpod run would not encode its video again ({Reason.NOT_SMALLER}): {declined.describe()}")
        click.echo(f"  {declined.try_again()}")
        _echo_rest(applied)
    elif refused is not None:
        click.echo(f"vpod run would not encode its video ({refused.reason}): {refused}")
        _echo_rest(applied)
    elif skip is not None and not applied.is_empty:
        click.echo(
            f"vpod run would apply only the header part in place ({len(applied.actions)} change(s), "
            f"cost class {applied.cost} ({COST_CLASSES[applied.cost]})):"
        )
        for line in applied.describe():
            click.echo(f"  - {line}")
        click.echo(f"and skip the rest ({skip.reason}): {skip}")
    elif skip is not None:
        click.echo(f"vpod run would skip it ({skip.reason}): {skip}")
    if error is not None and error.reason is Reason.ORIGINAL_LANGUAGE_UNAVAILABLE:
        click.echo(f"vpod run would wait and try it again later ({error.reason}), changing nothing: {error}")
    elif error is not None:
        click.echo(f"vpod run would fail it ({error.reason}), changing nothing: {error}")
    if waits is not None:
        windows = ", ".join(json.dumps(w) for w in waits["transcode_hours"])  # as the config writes them
        click.echo(
            f"vpod run would wait for transcode_hours {windows}: it is outside every window now; "
            f"the next one opens at {waits['next_window'].replace('T', ' ')} (the daemon defers the file until then, "
            f"transcode_deferred; vpod process skips it, {Reason.OUTSIDE_TRANSCODE_HOURS})"
        )


def _echo_rest(applied: Plan) -> None:
    """The lines saying what the run applies of a plan whose video transcode it declines."""
    if applied.is_empty:
        click.echo(f"vpod run would apply nothing else (cost class {applied.cost})")
        return
    click.echo(
        f"vpod run would apply the rest ({len(applied.actions)} change(s), "
        f"cost class {applied.cost} ({COST_CLASSES[applied.cost]})):"
    )
    for line in applied.describe():
        click.echo(f"  - {line}")


def _picture_refused(media: MediaInfo, plan: Plan, config: VPOConfig) -> MediaError | None:
    """Why the run would decline ``plan``'s video transcode before any encode
    (``several_video_tracks``, ``hdr_not_kept``, ``interlaced_not_kept``: :func:`vpod.media.transcode.picture_refusal`,
    the executor's own check), or ``None``. An ffprobe that fails here is said in one
    line on stderr and the plan made without the check (the run would say more)."""
    try:
        return picture_refusal(media, plan, ToolRunner(ToolLimits.from_config(config.processing)))
    except ToolMissing:
        raise
    except (ToolError, MediaError) as exc:
        click.echo(f"vpod: warning: cannot check whether the video encode keeps the picture: {exc}", err=True)
        return None


def _planned_encoders(actions: Sequence[Action], vaapi_device: str, limits: ToolLimits) -> dict[Action, PlannedEncoder]:
    """Each video transcode of ``actions`` that asks for a hardware encoder, with what the
    plan can say of it by the cheap checks (:func:`vpod.media.encoders.planned_encoder`:
    ``ffmpeg -encoders`` lists it, ``[processing] vaapi_device`` opens); no test encode
    runs here, the executor's own. Without a usable ``ffmpeg`` the listing is not known."""
    hardware = [a for a in actions if isinstance(a, TranscodeVideo) and a.encoder in HARDWARE]
    if not hardware:
        return {}
    try:
        names: frozenset[str] | None = encoder_names_in(
            ToolRunner(limits).run(["ffmpeg", "-hide_banner", "-encoders"]).stdout
        )
    except ToolError:  # ToolMissing too: the run would say so; the plan only cannot tell
        names = None
    return {a: planned_encoder(a.codec, a.encoder, names, vaapi_device) for a in hardware}


def _describe(action: Action, encoders: dict[Action, PlannedEncoder]) -> str:
    """The action's line; a hardware encode's says what runs when the hardware cannot
    (``...: hevc_vaapi if usable at run time, else libx265``)."""
    planned = encoders.get(action)
    return f"{action.describe()}: {planned.describe()}" if planned else action.describe()


def _action_json(action: Action, encoders: dict[Action, PlannedEncoder]) -> dict[str, Any]:
    """An action of ``vpod plan --json``; a video transcode asking for a hardware encoder
    also has ``hardware_encoder`` (ffmpeg's name), ``fallback_encoder`` (the software
    encoder that runs when it is not usable at run time) and ``not_usable_here`` (why the
    cheap checks already rule it out, or null)."""
    data = {**action.as_dict(), "description": _describe(action, encoders)}
    planned = encoders.get(action)
    if planned is not None:
        data.update(
            hardware_encoder=planned.hardware, fallback_encoder=planned.software,
            not_usable_here=planned.not_usable or None,
        )  # fmt: skip
    return data


def _unreadable(file: Path, exc: MediaError) -> dict[str, Any]:
    """``vpod plan --json``'s object for a ``file`` that cannot be read as media: every
    member, ``error`` saying why (``exc``'s reason and message), nothing planned."""
    return {
        "path": display_path(file),
        "policy": None,
        "cost": None,
        "actions": [],
        "warnings": [],
        "skip": None,
        "error": {"reason": exc.reason, "detail": str(exc)},
        "would_apply": [],
        "would_apply_cost": None,
        "original_language": None,
        "not_smaller": None,
        "waits_for_transcode_hours": None,
    }


def _waits_for_transcode_hours(config: VPOConfig, cost: CostClass) -> dict[str, Any] | None:
    """``vpod plan``'s ``waits_for_transcode_hours``: for what the run would apply at
    ``cost`` ``"transcode"`` while ``[processing] transcode_hours`` is set and now (local
    time) is outside every window, ``{"next_window": "YYYY-MM-DDTHH:MM", "transcode_hours":
    [...]}`` (the window's opening in local time, as the daemon's ``transcode_deferred``
    logs it; the configured windows); else ``None`` (:class:`vpod.lanes.TranscodeHours`,
    the daemon's and ``vpod process``'s rule)."""
    hours = TranscodeHours(config.processing.transcode_hours)
    now = dt.datetime.now()
    opens = hours.next_open(now) if cost == "transcode" and not hours.open_at(now) else None
    if opens is None:
        return None
    return {"next_window": f"{opens:%Y-%m-%dT%H:%M}", "transcode_hours": list(hours.text)}


def _declined(config: VPOConfig, path: Path, plan: Plan, digest: str) -> NotSmaller | None:
    """The ``not_smaller`` record that holds for ``path`` under the policy of ``digest``
    (:func:`vpod.not_smaller.recorded_not_smaller`), looked up only when ``plan`` re-encodes
    video (no store is opened otherwise); a database that cannot be read is said in one
    line on stderr, and the plan made as without it."""
    if not any(isinstance(a, TranscodeVideo) for a in plan.actions):
        return None
    lookup = recorded_not_smaller(config, path, digest)
    if lookup.problem is not None:
        click.echo(f"vpod: warning: {lookup.problem}; planned without what it recorded", err=True)
    return lookup.found


def _not_run(action: object, reason: Reason | None) -> dict[str, str]:
    """``{"not_run": REASON}`` for a video transcode the run would not do (``not_smaller``:
    not again; ``hdr_not_kept`` / ``interlaced_not_kept`` / ``several_video_tracks``:
    declined before any encode),
    else ``{}``."""
    return {"not_run": reason.value} if reason is not None and isinstance(action, TranscodeVideo) else {}


def _original_as_dict(resolution: Resolution) -> dict[str, Any]:
    """The ``original_language`` member of ``vpod plan --json``."""
    found = resolution.original
    return {
        "code": found.code if found else None,
        "source": found.source if found else None,
        "detail": found.detail if found else None,
        "description": resolution.describe(),
        "waiting": list(resolution.waiting),
        "notes": list(resolution.notes),
    }
