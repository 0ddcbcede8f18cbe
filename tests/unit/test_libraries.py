"""Library names (issue 12 item 3): derived from the folder, stable, unique; or given in
``[watch.libraries]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpod.config import config_from_data
from vpod.errors import ConfigError
from vpod.libraries import library_names


def test_a_folder_is_named_after_itself_whatever_the_order():
    paths = [Path("/srv/media/movies"), Path("/srv/media/tv")]
    assert library_names(paths) == {Path("/srv/media/movies"): "movies", Path("/srv/media/tv"): "tv"}
    assert library_names(paths[::-1]) == library_names(paths)


def test_folders_of_the_same_name_get_parent_folders_added():
    names = library_names([Path("/a/x/movies"), Path("/b/x/movies"), Path("/c/tv")])
    assert names == {Path("/a/x/movies"): "a/x/movies", Path("/b/x/movies"): "b/x/movies", Path("/c/tv"): "tv"}


def test_a_given_name_is_kept_and_a_derived_one_steps_aside():
    names = library_names([Path("/srv/movies"), Path("/mnt/films")], {"movies": Path("/mnt/films")})
    assert names == {Path("/srv/movies"): "srv/movies", Path("/mnt/films"): "movies"}


def test_watch_libraries_table_names_and_watches_folders(tmp_path):
    config = config_from_data(
        {"watch": {"paths": [str(tmp_path / "in")], "libraries": {"Films": str(tmp_path / "movies")}}}, source=None
    )
    assert config.watch.paths == (tmp_path / "in", tmp_path / "movies")
    assert config.watch.library_names == {tmp_path / "in": "in", tmp_path / "movies": "Films"}
    assert config.as_dict()["watch"]["libraries"] == {"in": str(tmp_path / "in"), "Films": str(tmp_path / "movies")}
    only_named = config_from_data({"watch": {"libraries": {"tv": str(tmp_path / "tv")}}}, source=None)
    assert only_named.watch.paths == (tmp_path / "tv",)  # not the default inbox


@pytest.mark.parametrize(
    "libraries, expected",
    [
        ({"/abs": "/x"}, 'does not start with "/"'),
        ({" x": "/x"}, "leading or trailing spaces"),
        ({"a": "/x", "b": "/x"}, "each folder at most once"),
        ({"a": 3}, "expected a path string"),
    ],
)
def test_bad_library_names_are_refused_naming_the_key(libraries, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        config_from_data({"watch": {"libraries": libraries}}, source=Path("/etc/vpod.toml"))
    assert "[watch.libraries]" in str(caught.value)
