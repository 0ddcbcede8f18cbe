#!/usr/bin/env python3
"""Write ``vpod/data/bcp47_legacy_language.json``: for each ISO 639-3 language subtag
that has no ISO 639-2 code of its own, the ISO 639-2/B code mkvmerge writes to
Matroska's legacy ``Language`` element beside ``LanguageBCP47`` when it is not ``und``.

mkvmerge's rule (MKVToolNix ``src/common/bcp47.cpp``,
``language_c::get_closest_iso639_2_alpha_3_code``): a language in ISO 639-2 keeps its
code; else, when the language is an extended language subtag of the IANA Language
Subtag Registry (``yue``, ``cmn``, ``arb``...), the ISO 639-2 code of the extlang's
prefix (``zh`` → ``chi``, ``ar`` → ``ara``), if it has one; else ``und``. The table is
taken from mkvmerge itself rather than transcribed: one subtitle track per candidate
code (every ISO 639-3 code of Debian's iso-codes not in ISO 639-2), read back with
``mkvmerge -J``. Only the codes that do not come back ``und`` are stored.

Usage: make_legacy_language_table.py [/usr/share/iso-codes/json/iso_639-3.json]
Needs mkvmerge (the table in vpod was made with v74.0.0).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "vpod" / "data" / "bcp47_legacy_language.json"
CHUNK = 500  # tracks per mkvmerge run


def main() -> int:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/iso-codes/json/iso_639-3.json")
    iso_639_3 = json.loads(source.read_text("utf-8"))["639-3"]
    iso_639_2 = json.loads((ROOT / "vpod" / "data" / "iso_639-2.json").read_text("utf-8"))["639-2"]
    in_639_2 = {e[k] for e in iso_639_2 for k in ("alpha_3", "bibliographic") if e.get(k)}
    candidates = [e["alpha_3"] for e in iso_639_3 if e["alpha_3"] not in in_639_2]
    table: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        srt, out = Path(tmp, "s.srt"), Path(tmp, "out.mkv")
        srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n")
        for start in range(0, len(candidates), CHUNK):
            chunk = candidates[start : start + CHUNK]
            args = ["mkvmerge", "-q", "-o", str(out)]
            for code in chunk:
                args += ["--language", f"0:{code}", str(srt)]
            subprocess.run(args, check=True, capture_output=True)
            tracks = json.loads(subprocess.run(["mkvmerge", "-J", str(out)], check=True, capture_output=True).stdout)
            for code, track in zip(chunk, tracks["tracks"], strict=True):
                legacy = track["properties"].get("language", "und")
                if legacy != "und":
                    table[code] = legacy
    version = subprocess.run(["mkvmerge", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    OUT.write_text(json.dumps({"made_with": version, "legacy": dict(sorted(table.items()))}, indent=1) + "\n")
    print(f"{OUT}: {len(table)} codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
