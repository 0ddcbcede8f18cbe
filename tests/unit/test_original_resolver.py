"""Where a file's original language comes from, in order (issue 13 item 2): the *arr,
then FlagOriginal, then the policy's original_language; and when an instance's list is
fetched again (vpod/original/catalog.py). Real HTTP to a stand-in instance; a fake
clock stands in for the time that passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from support.arr import ArrStandIn
from support.clock import FakeClock
from vpod.arr_config import ArrConfig, ArrInstance
from vpod.media.model import MediaInfo, Track
from vpod.original.catalog import MISS_REFETCH_SECONDS, UNAVAILABLE_HOLD_SECONDS
from vpod.original.resolver import OriginalResolver, names_original, needs_original
from vpod.outcomes import Reason
from vpod.policy.original import OriginalLanguage
from vpod.policy.policy import Policy

KEY = "0123456789abcdef0123456789abcdef"
FILM = Path("/srv/movies/Parasite (2019)/Parasite.mkv")
POLICY = Policy(audio_languages=("original", "eng"))


def media(path: Path = FILM, *, flagged: tuple[str, ...] = ()) -> MediaInfo:
    """video, kor audio, eng audio; ``flagged``: languages whose audio has FlagOriginal."""
    tracks = (
        Track(0, "video", "MPEG-4p2"),
        Track(1, "audio", "AAC", "kor", original="kor" in flagged),
        Track(2, "audio", "AAC", "eng", original="eng" in flagged),
    )
    return MediaInfo(path, "matroska", 1.0, tracks, 1000, "mkvmerge")


def instance(stand_in: ArrStandIn, **kw: object) -> ArrInstance:
    return ArrInstance(**{
        "name": "radarr", "kind": "radarr", "url": stand_in.url, "api_key": KEY, "timeout_seconds": 2.0,
        "path_mappings": (("/movies", "/srv/movies"),), **kw,
    })


@pytest.fixture
def radarr():
    films = [("Parasite", "/movies/Parasite (2019)", "Korean"), ("Mystery", "/movies/Mystery", "Unknown")]
    with ArrStandIn("radarr", films, api_key=KEY) as stand_in:
        yield stand_in


def test_the_arr_answers_first(radarr):
    resolver = OriginalResolver(ArrConfig((instance(radarr),)))
    found = resolver.resolve(media(flagged=("eng",)), replace(POLICY, original_language="jpn"))
    assert found.original == OriginalLanguage("kor", "radarr", "Parasite") and not found.waiting
    assert found.describe() == "original language: kor (from radarr: Parasite)"


def test_an_instance_named_otherwise_is_named_in_the_detail(radarr):
    resolver = OriginalResolver(ArrConfig((instance(radarr, name="films"),)))
    assert resolver.resolve(media(), POLICY).original == OriginalLanguage("kor", "radarr", "Parasite (films)")


def test_flag_original_answers_when_the_arr_does_not_hold_the_file(radarr):
    resolver = OriginalResolver(ArrConfig((instance(radarr),)))
    elsewhere = Path("/home/me/videos/film.mkv")
    assert resolver.resolve(media(elsewhere, flagged=("kor",)), POLICY).original == OriginalLanguage(
        "kor", "flag_original", "audio track 1"
    )


def test_a_movie_without_a_known_language_falls_through_with_a_note(radarr):
    resolver = OriginalResolver(ArrConfig((instance(radarr),)))
    policy = Policy(audio_languages=("original",), original_language="jpn")
    found = resolver.resolve(media(Path("/srv/movies/Mystery/m.mkv")), policy)
    assert found.original == OriginalLanguage("jpn", "policy", "original_language")
    assert found.notes == ('radarr "radarr" at ' + radarr.url + ": 'Mystery' has no original language vpod knows (Unknown)",)


def test_flags_that_disagree_give_no_answer_and_nothing_answered_says_so():
    resolver = OriginalResolver(ArrConfig())
    found = resolver.resolve(media(flagged=("kor", "eng")), POLICY)
    assert found.original is None and found.error(FILM) is None
    assert found.describe() == "original language unknown: no source answered"
    assert found.notes == ("FlagOriginal: the flagged audio tracks disagree (1 kor, 2 eng): no answer",)


def test_a_new_movie_within_the_refetch_throttle_waits_instead_of_being_judged_without(radarr):
    clock = FakeClock(1000.0)
    resolver = OriginalResolver(ArrConfig((instance(radarr),)), clock=clock)
    fallback = OriginalResolver(ArrConfig((instance(radarr, when_unavailable="fallback"),)), clock=clock)
    assert resolver.resolve(media(), POLICY).original.code == "kor"
    assert fallback.resolve(media(), POLICY).original.code == "kor"
    radarr.items.append(("New", "/movies/New (2024)", "Korean"))
    new = media(Path("/srv/movies/New (2024)/new.mkv"))
    clock.now += 10.0
    found = resolver.resolve(new, POLICY)
    assert found.waiting and "New (2024)" in found.waiting[0] and found.error(new.path) is not None
    assert radarr.requests == 2  # the throttle holds: no request, but no judgement either
    judged = fallback.resolve(new, POLICY)  # fallback: judged by the later sources, with a note
    assert not judged.waiting and judged.original is None and "New (2024)" in judged.notes[0]
    clock.now += MISS_REFETCH_SECONDS
    assert resolver.resolve(new, POLICY).original == OriginalLanguage("kor", "radarr", "New")


def test_a_folder_written_decomposed_matches_the_arrs_composed_path():
    composed = "/movies/Am\u00e9lie (2001)"
    decomposed = Path("/srv/movies/Ame\u0301lie (2001)/Amelie.mkv")
    with ArrStandIn("radarr", [("Amélie", composed, "French")], api_key=KEY) as stand_in:
        found = OriginalResolver(ArrConfig((instance(stand_in),))).resolve(media(decomposed), POLICY)
    assert found.original == OriginalLanguage("fre", "radarr", "Amélie")


def test_mark_original_alone_never_waits_for_a_down_instance(radarr):
    marks_only = Policy(audio_languages=("eng",))  # mark_original defaults to true
    assert needs_original(marks_only) and not names_original(marks_only) and names_original(POLICY)
    resolver = OriginalResolver(ArrConfig((instance(radarr),)))
    assert resolver.resolve(media(), marks_only).original.code == "kor"  # asked while it answers
    radarr.stop()
    down = OriginalResolver(ArrConfig((instance(radarr),)))
    found = down.resolve(media(flagged=("kor",)), marks_only)
    assert not found.waiting and found.error(FILM) is None and "radarr" in found.notes[0]
    assert found.original == OriginalLanguage("kor", "flag_original", "audio track 1")
    assert down.resolve(media(), POLICY).waiting  # "original" in a list still waits


def test_the_failure_text_of_vpod_process_says_what_to_do_instead_of_a_retry(radarr):
    radarr.stop()
    daemon = OriginalResolver(ArrConfig((instance(radarr),))).resolve(media(), POLICY).error(FILM)
    assert daemon is not None and "tried again later" in str(daemon)
    process = OriginalResolver(ArrConfig((instance(radarr),)), retried=False).resolve(media(), POLICY).error(FILM)
    assert process is not None and process.reason is Reason.ORIGINAL_LANGUAGE_UNAVAILABLE
    assert "tried again later" not in str(process) and "run vpod process again once it answers" in str(process)


def test_a_policy_that_does_not_use_the_original_language_asks_nobody(radarr):
    resolver = OriginalResolver(ArrConfig((instance(radarr),)))
    policy = Policy(audio_languages=("eng",), mark_original=False)
    assert not needs_original(policy) and needs_original(POLICY) and needs_original(Policy())
    assert resolver.resolve(media(flagged=("kor",)), policy).original is None
    assert radarr.requests == 0


def test_a_down_instance_makes_the_file_wait_or_fall_back_as_configured(radarr):
    radarr.stop()
    waiting = OriginalResolver(ArrConfig((instance(radarr),))).resolve(media(flagged=("kor",)), POLICY)
    error = waiting.error(FILM)
    assert error is not None and error.reason is Reason.ORIGINAL_LANGUAGE_UNAVAILABLE and not error.permanent
    assert waiting.waiting and waiting.describe().startswith('original language unknown: waiting for radarr "radarr"')
    assert KEY not in str(error)
    fallback = OriginalResolver(ArrConfig((instance(radarr, when_unavailable="fallback"),)))
    found = fallback.resolve(media(flagged=("kor",)), POLICY)
    assert found.original == OriginalLanguage("kor", "flag_original", "audio track 1")
    assert found.error(FILM) is None and found.notes and "radarr" in found.notes[0]


def test_the_list_is_cached_and_fetched_again_by_the_refresh_rule(radarr):
    clock = FakeClock(1000.0)
    resolver = OriginalResolver(ArrConfig((instance(radarr, refresh_seconds=600.0),)), clock=clock)
    assert resolver.resolve(media(), POLICY).original.code == "kor"
    assert resolver.resolve(media(), POLICY).original.code == "kor"
    assert radarr.requests == 1  # one list for every file
    # A file beside the known movies that the list cannot place: maybe a new movie.
    radarr.items.append(("The Host", "/movies/The Host (2006)", "Korean"))
    new = media(Path("/srv/movies/The Host (2006)/host.mkv"))
    assert resolver.resolve(new, POLICY).waiting  # the list is younger than MISS_REFETCH_SECONDS: wait
    assert radarr.requests == 1
    clock.now += MISS_REFETCH_SECONDS
    assert resolver.resolve(new, POLICY).original == OriginalLanguage("kor", "radarr", "The Host")
    assert radarr.requests == 2
    # A file where the instance keeps nothing never makes a request.
    clock.now += MISS_REFETCH_SECONDS
    assert resolver.resolve(media(Path("/home/me/a.mkv")), POLICY).original is None
    assert radarr.requests == 2
    clock.now += 600.0
    resolver.resolve(media(), POLICY)
    assert radarr.requests == 3  # older than refresh_seconds


def test_a_failed_refresh_keeps_the_last_list_and_holds_off_a_slow_instance(radarr):
    clock = FakeClock(1000.0)
    resolver = OriginalResolver(ArrConfig((instance(radarr, refresh_seconds=60.0, timeout_seconds=0.3),)), clock=clock)
    assert resolver.resolve(media(), POLICY).original.code == "kor"
    clock.now += 60.0
    radarr.delay = 2.0  # slow now: each request times out
    found = resolver.resolve(media(), POLICY)
    assert found.original.code == "kor" and not found.waiting  # the old list still places the film
    assert radarr.requests == 2
    new = media(Path("/srv/movies/New (2024)/new.mkv"))
    assert resolver.resolve(new, POLICY).waiting  # the old list cannot: it may be new
    assert radarr.requests == 2  # within UNAVAILABLE_HOLD_SECONDS of the failure: not asked again
    clock.now += UNAVAILABLE_HOLD_SECONDS
    assert resolver.resolve(new, POLICY).waiting
    assert radarr.requests == 3
    assert resolver.resolve(media(Path("/home/me/a.mkv")), POLICY).error(FILM) is None  # not the instance's


def test_a_reload_keeps_the_list_of_an_unchanged_instance(radarr):
    kept = instance(radarr)
    resolver = OriginalResolver(ArrConfig((kept,)))
    resolver.resolve(media(), POLICY)
    resolver.reconfigure(ArrConfig((kept,)))
    resolver.resolve(media(), POLICY)
    assert radarr.requests == 1
    resolver.reconfigure(ArrConfig((instance(radarr, timeout_seconds=3.0),)))
    resolver.resolve(media(), POLICY)
    assert radarr.requests == 2
    resolver.reconfigure(ArrConfig())
    assert resolver.resolve(media(), POLICY).original is None
