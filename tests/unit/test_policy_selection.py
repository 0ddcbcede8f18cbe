"""Named policies chosen per library and per folder (vpod/policy/selection.py): the config
shape, the order of the choice, folder files and their errors, reloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpod.config import config_from_data, load_config, with_overrides
from vpod.errors import ConfigError, MediaError
from vpod.policy.selection import PolicySelector
from vpod.reload import plan_reload


def make_config(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    """A config whose library "series" is tmp_path/series, with policies anime and kids."""
    series = tmp_path / "series"
    series.mkdir(exist_ok=True)
    data = {
        "watch": {"libraries": {"series": str(series)}},
        "policy": {"audio_languages": ["eng"]},
        "policies": {
            "anime": {"audio_languages": ["jpn", "eng"], "default_subtitle": "preferred"},
            "kids": {"audio_languages": ["ger"]},
            "tv": {"audio_languages": ["fre"]},
        },
        **extra,
    }
    return config_from_data(data, source=tmp_path / "config.toml"), series


def test_old_configs_keep_their_one_policy_as_the_default(tmp_path):
    config = config_from_data({"policy": {"audio_languages": ["jpn"]}}, source=None)
    assert config.policies == () and config.library_policies == ()
    chosen = PolicySelector.from_config(config).select(tmp_path / "x.mkv")
    assert chosen.name == "default" and chosen.policy is config.policy
    assert chosen.why == "outside every library: the default policy [policy]"


def test_first_matching_rule_wins_then_the_library_policy(tmp_path):
    config, series = make_config(
        tmp_path,
        libraries={
            "series": {
                "policy": "tv",
                "rules": [
                    {"match": "Anime/Kids/**", "policy": "kids"},
                    {"match": "Anime/**", "policy": "anime"},
                    {"match": "Anime/*", "policy": "default"},  # never reached: the rule above matches first
                ],
            }
        },
    )
    select = PolicySelector.from_config(config).select
    kids = select(series / "Anime/Kids/Show/e1.mkv")
    assert (kids.name, kids.why) == ("kids", '[libraries.series] rules[0]: "Anime/Kids/**" matches "Anime/Kids/Show/e1.mkv"')
    assert kids.policy.audio_languages == ("ger",)
    anime = select(series / "Anime/e1.mkv")
    assert (anime.name, anime.why) == ("anime", '[libraries.series] rules[1]: "Anime/**" matches "Anime/e1.mkv"')
    other = select(series / "Drama/e1.mkv")
    assert (other.name, other.why) == ("tv", '[libraries.series] policy = "tv"')
    # The caller may name the library (the daemon's job does): the same answer.
    assert select(series / "Anime/e1.mkv", root=series, library="series").name == "anime"


def test_a_library_without_a_table_and_files_outside_every_library_get_the_default(tmp_path):
    config, series = make_config(tmp_path)
    select = PolicySelector.from_config(config).select
    assert select(series / "a.mkv").why == "library 'series' has no [libraries.series] table: the default policy [policy]"
    outside = select(tmp_path / "elsewhere" / "a.mkv", root=tmp_path / "elsewhere", library=str(tmp_path / "elsewhere"))
    assert outside.name == "default" and outside.why.startswith("outside every library")


def test_folder_file_beats_the_rules_and_overrides_keys(tmp_path):
    config, series = make_config(
        tmp_path,
        libraries={"series": {"policy": "tv", "rules": [{"match": "Anime/**", "policy": "anime"}], "folder_files": True}},
    )
    (series / "Anime" / "Kids" / "Deep").mkdir(parents=True)
    (series / "Anime" / "Kids" / ".vpod.toml").write_text('policy = "kids"\n')
    (series / "Anime" / ".vpod.toml").write_text('keep_audio_languages = ["jpn", "eng"]\n')
    select = PolicySelector.from_config(config).select
    # The nearest file counts: Kids's own, found from a folder below it.
    kids = select(series / "Anime/Kids/Deep/e1.mkv")
    assert kids.name == "kids" and kids.policy == config.policies[1][1]
    assert kids.why == f'folder file {series}/Anime/Kids/.vpod.toml: policy = "kids"'
    # Overrides only: the policy the config chooses (rule 0: anime), with the key replaced.
    anime = select(series / "Anime/e1.mkv")
    assert anime.name == "anime" and anime.policy.keep_audio_languages == ("jpn", "eng")
    assert anime.policy.audio_languages == ("jpn", "eng") and anime.policy.digest != config.policies[0][1].digest
    assert anime.why == (
        f"folder file {series}/Anime/.vpod.toml: overrides keep_audio_languages of anime "
        '([libraries.series] rules[0]: "Anime/**" matches "Anime/e1.mkv")'
    )
    # Outside the folders that have one: the config's choice.
    assert select(series / "Drama/e1.mkv").name == "tv"


def test_folder_files_are_off_unless_the_library_enables_them(tmp_path):
    config, series = make_config(tmp_path, libraries={"series": {"policy": "tv"}})
    (series / ".vpod.toml").write_text('policy = "kids"\n')
    assert PolicySelector.from_config(config).select(series / "a.mkv").name == "tv"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('audio_languages = ["english-ish"]', ".vpod.toml: audio_languages: 'english-ish' is not"),
        ('policy = "anim"', '.vpod.toml: policy: expected the name of a policy ("anime", "default", "kids", "tv")'),
        ("sizzle = true", ".vpod.toml: sizzle: unknown key"),
        ('on_error = "fail"', ".vpod.toml: on_error: on_error is global"),
        ('policy_file = "x.toml"', ".vpod.toml: policy_file: a folder file cannot name a policy file"),
        ("policy = [", ".vpod.toml: invalid TOML"),
        ('[policy]\naudio_languages = ["jpn"]', ".vpod.toml: [policy]: a folder file has no [policy] table: write its keys at the top level"),
        ("x" * 70_000, ".vpod.toml: larger than 64 KiB"),
    ],
)
def test_a_bad_folder_file_is_an_error_of_the_file_naming_the_folder_file_and_key(tmp_path, text, says):
    config, series = make_config(tmp_path, libraries={"series": {"folder_files": True}})
    (series / ".vpod.toml").write_text(text)
    selector = PolicySelector.from_config(config)
    with pytest.raises(MediaError) as caught:
        selector.select(series / "a.mkv")
    assert caught.value.reason == "bad_folder_policy" and caught.value.permanent
    assert str(caught.value).startswith(f"{series}/a.mkv: cannot choose its policy: folder policy file {series}/")
    assert says in str(caught.value)
    assert selector.digest(series / "a.mkv") is None  # the intake queues it; the worker reports the error


def test_a_folder_file_may_start_with_a_byte_order_mark(tmp_path):
    """Windows editors write UTF-8 with a BOM (issue 13 finding I)."""
    config, series = make_config(tmp_path, libraries={"series": {"folder_files": True}})
    (series / ".vpod.toml").write_bytes('\ufeffpolicy = "anime"\n'.encode())
    assert PolicySelector.from_config(config).select(series / "a.mkv").name == "anime"


def test_an_ignored_folder_file_is_named_with_the_key_that_ignores_it(tmp_path):
    """Issue 13 finding J: vpod plan says why a .vpod.toml does not count."""
    config, series = make_config(tmp_path, libraries={"series": {"policy": "tv"}})
    (series / "Kids").mkdir()
    (series / ".vpod.toml").write_text('policy = "kids"\n')
    selector = PolicySelector.from_config(config)
    said = f"{series}/.vpod.toml is ignored: [libraries.series] folder_files = false"
    assert selector.ignored_folder_file(series / "Kids" / "a.mkv") == said
    assert selector.ignored_folder_file(tmp_path / "elsewhere.mkv") is None  # outside every library
    bare, series = make_config(tmp_path)  # no [libraries.series] table: off by default
    assert PolicySelector.from_config(bare).ignored_folder_file(series / "a.mkv") == (
        f"{series}/.vpod.toml is ignored: [libraries.series] folder_files = false "
        "(the default; there is no [libraries.series] table)"
    )
    enabled, series = make_config(tmp_path, libraries={"series": {"folder_files": True}})
    assert PolicySelector.from_config(enabled).ignored_folder_file(series / "a.mkv") is None
    (series / ".vpod.toml").unlink()
    assert selector.ignored_folder_file(series / "a.mkv") is None


def test_a_fixed_folder_file_is_read_again(tmp_path):
    config, series = make_config(tmp_path, libraries={"series": {"folder_files": True}})
    folder_file = series / ".vpod.toml"
    folder_file.write_text('policy = "anim"\n')
    selector = PolicySelector.from_config(config)
    with pytest.raises(MediaError):
        selector.select(series / "a.mkv")
    folder_file.write_text('policy = "anime"   # fixed\n')
    assert selector.select(series / "a.mkv").name == "anime"


@pytest.mark.parametrize(
    ("extra", "key", "says"),
    [
        ({"policies": {"default": {}}}, '[policies.default]', "name of the [policy] table"),
        ({"policies": {"a": {"audio_languages": ["xx-nope"]}}}, "[policies.a] audio_languages", "not an ISO 639-2"),
        ({"policies": {"a": {"on_error": "fail"}}}, "[policies.a] on_error", "on_error is global"),
        ({"libraries": {"movies": {}}}, "[libraries.movies]", "no library is named 'movies' (libraries: series"),
        ({"libraries": {"series": "/srv/x"}}, "[libraries.series]", "the folder of a library is set in [watch.libraries]"),
        ({"libraries": {"series": {"policy": "anim"}}}, "[libraries.series] policy", 'expected the name of a policy'),
        ({"libraries": {"series": {"rules": [{"match": "A/**"}]}}}, "[libraries.series] rules[0]", "match ="),
        (
            {"libraries": {"series": {"rules": [{"match": "/A/**", "policy": "anime"}]}}},
            "[libraries.series] rules[0] match", "leave out the leading /",
        ),
        ({"libraries": {"series": {"folder_files": "yes"}}}, "[libraries.series] folder_files", "a boolean"),
        ({"libraries": {"series": {"rule": []}}}, "[libraries.series] rule", "unknown key"),
    ],
)
def test_bad_policy_choices_stop_the_config_naming_the_key(tmp_path, extra, key, says):
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, **extra)
    assert caught.value.key == key and says in caught.value.reason


def test_named_policies_follow_the_global_on_error(tmp_path):
    """on_error stays global: a named policy may repeat it; the CLI's --on-error applies to all."""
    config, _ = make_config(tmp_path, policy={"on_error": "fail"}, policies={"a": {"on_error": "fail"}, "b": {}})
    assert [p.on_error for _, p in config.policies] == ["fail", "fail"]
    assert [p.on_error for _, p in with_overrides(config, on_error="skip").policies] == ["skip", "skip"]


def test_named_policy_from_a_policy_file(tmp_path):
    (tmp_path / "anime.toml").write_text('[policy]\naudio_languages = ["jpn"]\n')
    config = tmp_path / "config.toml"
    config.write_text('[policies.anime]\npolicy_file = "anime.toml"\n')
    assert dict(load_config(config).policies)["anime"].audio_languages == ("jpn",)


def test_config_check_shows_the_policies_and_the_libraries_choices(tmp_path):
    config, _ = make_config(tmp_path, libraries={"series": {"rules": [{"match": "Anime/**", "policy": "anime"}]}})
    data = config.as_dict()
    assert data["policies"]["anime"]["audio_languages"] == ["jpn", "eng"]
    assert data["libraries"] == {
        "series": {"policy": "default", "rules": [{"match": "Anime/**", "policy": "anime"}], "folder_files": False}
    }
    assert "library_policies" not in data


def test_a_reload_that_changes_which_policy_judges_a_folder_says_so(tmp_path):
    old, _ = make_config(tmp_path, libraries={"series": {"rules": [{"match": "Anime/**", "policy": "anime"}]}})
    new, _ = make_config(
        tmp_path,
        libraries={"series": {"rules": [{"match": "Anime/**", "policy": "kids"}], "folder_files": True}},
        policies={"anime": {"audio_languages": ["jpn"]}, "kids": {"audio_languages": ["ger"]}, "tv": {}},
    )
    plan = plan_reload(old, new)
    assert plan.changed == (
        "[policies.anime] audio_languages", "[policies.anime] default_subtitle", "[policies.tv] audio_languages",
        "[libraries.series] rules", "[libraries.series] folder_files",
    )
    assert plan.needs_restart == () and plan.config.library_policies == new.library_policies
