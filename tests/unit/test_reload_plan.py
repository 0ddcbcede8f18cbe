"""Which config keys a reload applies and which wait for a restart (vpod/reload.py)."""

from dataclasses import fields, replace
from pathlib import Path

from vpod.config import VPOConfig
from vpod.reload import RESTART_ONLY, plan_reload


def test_live_keys_change_and_restart_only_keys_keep_old_values():
    old = VPOConfig()
    new = replace(
        old,
        policy=replace(old.policy, audio_languages=("jpn",)),
        processing=replace(old.processing, workers=4, queue_size=9),
        watch=replace(old.watch, paths=(Path("/srv/a"),), extensions=("mkv",)),
        database=replace(old.database, path=Path("/elsewhere.db")),
    )
    plan = plan_reload(old, new)
    assert plan.config.policy.audio_languages == ("jpn",)
    assert plan.config.processing.workers == 4
    assert plan.config.watch.paths == (Path("/srv/a"),)
    # restart-only: old values stay in force
    assert plan.config.processing.queue_size == old.processing.queue_size
    assert plan.config.watch.extensions == old.watch.extensions
    assert plan.config.database.path == old.database.path
    assert set(plan.changed) == {"[policy] audio_languages", "[processing] workers", "[watch] paths"}
    assert set(plan.needs_restart) == {"[processing] queue_size", "[watch] extensions", "[database] path"}


def test_unchanged_config_changes_nothing():
    plan = plan_reload(VPOConfig(), VPOConfig())
    assert plan.changed == () and plan.needs_restart == ()


def test_restart_only_names_real_keys():
    config = VPOConfig()
    for section, key in RESTART_ONLY:
        assert hasattr(getattr(config, section), key), (section, key)


def test_a_key_the_daemon_could_not_apply_keeps_its_old_value():
    old = VPOConfig()
    new = replace(old, http=replace(old.http, listen="127.0.0.1:9810"), policy=replace(old.policy, backup=True))
    plan = plan_reload(old, new).without(old, "http", "listen")
    assert plan.config.http.listen == "" and plan.config.policy.backup is True
    assert plan.changed == ("[policy] backup",) and plan.not_applied == ("[http] listen",)


def test_whether_a_key_reloads_is_declared_with_the_key():
    config = VPOConfig()
    declared = {
        (section, f.name)
        for section in ("watch", "processing", "database", "node", "logging", "http", "policy")
        for f in fields(getattr(config, section))
        if f.metadata["live"] is False  # a KeyError: a key declared without setting()
    }
    assert declared == RESTART_ONLY
    assert ("watch", "paths") not in declared and ("processing", "workers") not in declared
