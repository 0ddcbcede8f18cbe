"""The docs name what the code does (issue 11 item 18): every log event in the README's
table, every reason in docs/policy.md's, and commands that work on a minimal Debian."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from vpod.outcomes import Reason, Status, Unwatched

ROOT = Path(__file__).resolve().parents[2]
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
TAG = re.compile(r"[a-z]+(_[a-z]+)*")


def _code() -> list[tuple[Path, ast.AST]]:
    return [(f, ast.parse(f.read_text())) for f in sorted((ROOT / "vpod").rglob("*.py"))]


def _log_events() -> dict[str, str]:
    """Event name → where it is logged (a logger call whose first argument is a literal)."""
    found = {}
    for path, tree in _code():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and TAG.fullmatch(node.args[0].value)
            ):
                found.setdefault(node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _reason_literals(code: list[tuple[Path, ast.AST]]) -> dict[str, str]:
    """Where a reason is written as a string literal instead of a :class:`Reason` member:
    ``reason=`` of a non-log call, the second argument of ``Skip``, the first of
    ``WriteRefusal``, ``reason = A if ... else B``, and ``X.reason == "..."``."""
    found = {}
    for path, tree in code:
        if path.name == "outcomes.py":
            continue
        for node in ast.walk(tree):
            values: list[ast.AST] = []
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name not in LOG_METHODS and name != "update":  # log fields, /health's body
                    values += [kw.value for kw in node.keywords if kw.arg == "reason"]
                if name == "Skip" and len(node.args) >= 2:
                    values.append(node.args[1])
                if name == "WriteRefusal" and node.args:
                    values.append(node.args[0])
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "reason" for t in node.targets):
                values += [node.value.body, node.value.orelse] if isinstance(node.value, ast.IfExp) else [node.value]
            elif isinstance(node, ast.Compare) and getattr(node.left, "attr", None) == "reason":
                values += node.comparators
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.value, f"{path.relative_to(ROOT)}:{value.lineno}")
    return found


def _policy_reasons_table(heading: str) -> set[str]:
    """The reasons listed in the first column of docs/policy.md's "Reasons" table that
    follows the paragraph starting with ``heading``."""
    policy = (ROOT / "docs" / "policy.md").read_text()
    section = policy.split("\n## Reasons\n", 1)[1].split("\n## ", 1)[0]
    table = section.split(f"\n{heading}", 1)[1].split("\n\n| reason", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines() if line.startswith("| `")
    )))


def test_every_log_event_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Log events\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines() if line.startswith("| `")
    )))
    events = _log_events()
    assert {"watch_stopped", "shutdown_timeout", "daemon_started"} <= set(events)  # the scan works
    missing = {name: where for name, where in events.items() if name not in documented}
    assert not missing, f"log events missing from README.md's table: {missing}"


def test_every_reason_is_in_the_policy_table_of_its_status():
    """Each Reason member is documented, in the Skipped or the Failed table as its
    ``status`` says, and each documented reason is a member."""
    tables = {Status.SKIPPED: _policy_reasons_table("Skipped ("), Status.FAILED: _policy_reasons_table("Failed (")}
    assert {"symlink_inside", "dry_run"} <= tables[Status.SKIPPED] and {"killed", "timeout"} <= tables[Status.FAILED]
    misplaced = {r.value: r.status.value for r in Reason if r.value not in tables[r.status]}
    assert not misplaced, f"reasons missing from the docs/policy.md table of their status: {misplaced}"
    unknown = (tables[Status.SKIPPED] | tables[Status.FAILED]) - {r.value for r in Reason}
    assert not unknown, f"docs/policy.md documents reasons vpod.outcomes.Reason does not have: {unknown}"


def test_every_unwatched_reason_is_in_the_policy_table():
    """docs/policy.md's "Not watched" table lists exactly the members of Unwatched."""
    documented = _policy_reasons_table("Not watched (")
    assert documented == {r.value for r in Unwatched}, documented


def test_no_reason_is_a_string_literal_outside_the_enum():
    sample = ast.parse(
        'Skip("m", "a")\nMediaError("m", reason="b")\nWriteRefusal("c", "cause", "fix")\n'
        'reason = "d" if x else "e"\nif result.reason != "f": pass\nlog.info("file_skipped", reason="g")\n'
    )
    assert set(_reason_literals([(ROOT / "vpod" / "sample.py", sample)])) == set("abcdef")  # the scan works
    literals = _reason_literals(_code())
    assert not literals, f"reasons written as string literals, not vpod.outcomes.Reason members: {literals}"


def test_commands_for_the_service_user_work_without_sudo():
    """Minimal Debian has no sudo; util-linux's runuser is always there."""
    for path in [ROOT / "README.md", ROOT / "contrib" / "install.sh", *(ROOT / "vpod").rglob("*.py")]:
        assert not re.search(r"sudo -u vpod [a-z]", path.read_text()), path


def test_example_config_says_what_default_subtitle_does():
    """Its comment follows docs/policy.md: "forced" and "preferred" go by the default audio's language."""
    lines = (ROOT / "contrib" / "config.example.toml").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("default_subtitle ="))
    comment = " ".join(line.lstrip("# ") for line in lines[at - 5:at] if line.startswith("#"))
    assert "default audio" in comment and "preferred language present" not in comment


def test_every_policy_key_is_in_the_key_table_of_docs_policy_md():
    """Each Policy field has a row in docs/policy.md's key table (issue 13: every new key
    documented)."""
    from dataclasses import fields

    from vpod.policy.policy import Policy

    text = (ROOT / "docs" / "policy.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    missing = [f.name for f in fields(Policy) if f.name not in rows]
    assert not missing, f"docs/policy.md has no key-table row for {missing}"


def test_every_video_codec_name_video_codec_accepts_is_in_docs_policy_md():
    """``video_codec = "h265"`` and ``convert = ["xvid"]`` are accepted: each name the
    parser takes is written in docs/policy.md's ``video_codec`` section."""
    from vpod.policy.codecs import _VIDEO_FAMILIES

    text = (ROOT / "docs" / "policy.md").read_text()
    section = text.split("\n### `video_codec`\n", 1)[1].split("\n### ", 1)[0]
    missing = [name for _, names in _VIDEO_FAMILIES for name in names if f"`{name}`" not in section]
    assert not missing, f"docs/policy.md's video_codec section does not name {missing}"
