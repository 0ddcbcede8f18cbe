"""Where a file's original language comes from (issue 13, "Original language").

The planner receives the answer as a :class:`vpod.policy.original.OriginalLanguage`
(``"original"`` in the policy's language lists stands for it); this package finds it.
One module per concept:

- :mod:`vpod.original.client`: one request to a Sonarr or Radarr instance's v3 API
  (``GET /api/v3/series``, ``GET /api/v3/movie``) and the fields vpod reads;
- :mod:`vpod.original.names`: the *arr's language names as ISO 639-2/B codes;
- :mod:`vpod.original.folders`: which series or movie folder holds a file;
- :mod:`vpod.original.catalog`: an instance's list, cached, and when it is fetched again;
- :mod:`vpod.original.resolver`: the sources in order (the *arr, ``FlagOriginal``, the
  policy's ``original_language``), first answer wins.

docs/original-language.md is the user's side of the same.
"""
