"""What a config reload (SIGHUP) may change in a running daemon, and what waits for a restart.

:func:`plan_reload` compares the config in force with the one just loaded and returns the
config to put in force: every key that can change live takes the new value; keys that
only a restart can apply keep the old value and are listed, so the log can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from vpod.config import VPOConfig
from vpod.policy.selection import table_name

_SECTIONS = ("watch", "processing", "database", "node", "logging", "http", "policy", "arr", "notify", "media_servers", "hooks")


def _restart_only() -> frozenset[tuple[str, str]]:
    defaults = VPOConfig()
    return frozenset(
        (name, f.name)
        for name in _SECTIONS
        for f in fields(getattr(defaults, name))
        if not f.metadata.get("live", True)
    )


RESTART_ONLY: frozenset[tuple[str, str]] = _restart_only()
"""``(section, key)`` pairs a reload does not apply (listed in the README), read from
the keys' declarations (``setting(..., live=False)`` in :mod:`vpod.config`). Every
other key applies live; the tool time limits (``probe_timeout_seconds``,
``tool_timeout_seconds``, ``tool_timeout_seconds_per_gib``,
``transcode_timeout_seconds_per_hour``) and the encoders' ``transcode_nice``,
``transcode_ionice`` and ``vaapi_device`` from the next tool run on: a run in progress
keeps the limit and priority it started with; the transcode lane's ``max_transcodes``
and ``transcode_hours`` (:meth:`vpod.lanes.TranscodeLane.reconfigure`) from the next
file whose plan transcodes: running encodes go on, deferred files are looked at again
at once."""


@dataclass(frozen=True)
class ReloadPlan:
    """The outcome of comparing two configs.

    Attributes:
        config: the config to put in force.
        changed: ``"[section] key"`` names whose new value is applied.
        needs_restart: ``"[section] key"`` names that changed in the file but keep their
            old value until the daemon restarts.
        not_applied: ``"[section] key"`` names the daemon tried to apply and could not
            (see :meth:`without`); they keep their old value.
    """

    config: VPOConfig
    changed: tuple[str, ...]
    needs_restart: tuple[str, ...]
    not_applied: tuple[str, ...] = ()

    def without(self, old: VPOConfig, section: str, key: str) -> "ReloadPlan":
        """This plan with ``[section] key`` back at its value in ``old``, moved from
        :attr:`changed` to :attr:`not_applied`: the daemon could not apply it (an
        ``[http] listen`` address that cannot be bound)."""
        kept = replace(getattr(self.config, section), **{key: getattr(getattr(old, section), key)})
        label = f"[{section}] {key}"
        return replace(
            self,
            config=replace(self.config, **{section: kept}),
            changed=tuple(c for c in self.changed if c != label),
            not_applied=(*self.not_applied, label),
        )


def plan_reload(old: VPOConfig, new: VPOConfig) -> ReloadPlan:
    """Merge ``new`` into ``old`` by the rules of :data:`RESTART_ONLY`."""
    changed: list[str] = []
    needs_restart: list[str] = []
    sections: dict[str, Any] = {}
    for name in _SECTIONS:
        old_section, new_section = getattr(old, name), getattr(new, name)
        keep: dict[str, Any] = {}
        for f in fields(new_section):
            before, after = getattr(old_section, f.name), getattr(new_section, f.name)
            if before == after:
                continue
            label = f"[{name}] {f.name}"
            if (name, f.name) in RESTART_ONLY:
                needs_restart.append(label)
                keep[f.name] = before
            else:
                changed.append(label)
        sections[name] = replace(new_section, **keep) if keep else new_section
    config = replace(new, **sections)
    changed += _policy_choices_changed(old, new)
    return ReloadPlan(config, tuple(changed), tuple(needs_restart))


def _policy_choices_changed(old: VPOConfig, new: VPOConfig) -> list[str]:
    """``[policies.NAME] key`` for each key of a named policy that changed (the name
    alone when the policy was added or removed) and ``[libraries.NAME] key`` for each
    changed choice of a library: which policy judges a folder. All apply live, from the
    next file on, like ``[policy]``."""
    changed: list[str] = []
    for section, before, after in (
        ("policies", dict(old.policies), dict(new.policies)),
        ("libraries", dict(old.library_policies), dict(new.library_policies)),
    ):
        for name in sorted(set(before) | set(after)):
            where = table_name(section, name)
            if name not in before or name not in after:
                changed.append(where)
                continue
            changed += [
                f"{where} {f.name}"
                for f in fields(after[name])
                if getattr(before[name], f.name) != getattr(after[name], f.name)
            ]
    return changed
