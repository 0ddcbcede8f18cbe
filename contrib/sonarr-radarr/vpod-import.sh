#!/bin/sh
# Sonarr / Radarr "Custom Script" connection: normalize each imported file with vpod.
#
# Set-up (Sonarr or Radarr → Settings → Connect → + → Custom Script): path of this
# script, triggers "On Import" and "On Upgrade" (Radarr: "On Import"/"On Upgrade" too).
# The "Test" button runs it with eventtype Test, which only checks that vpod is there.
#
# Why `vpod process` and not a copy into the daemon's inbox: the file has already been
# moved into the library (often as a hard link to a torrent that keeps seeding), so it
# must be fixed where it is. `vpod process FILE` runs vpod's one per-file pipeline on it
# right away, as the Sonarr/Radarr user that owns the file, and returns when the file
# conforms (header edits are in place; a remux is written beside it, verified, then
# renamed over it). Sonarr waits for the script, so the import is complete only after.
# If the library folders are already watched by the vpod daemon, you do not need this:
# give that daemon an [http] listener and use the "Webhook" connection instead (README,
# "Sonarr/Radarr webhooks"), which queues the file at once with its original language.
#
# Environment (set in the Sonarr/Radarr service, or edit the defaults below):
#   VPOD         the vpod command (default /opt/vpod/bin/vpod if present, else vpod)
#   VPOD_CONFIG  config file for this user (default: ~/.vpo/config.toml of the
#                Sonarr/Radarr user, or built-in defaults); it must be readable, and its
#                [database] path writable, by that user
# Variables Sonarr/Radarr pass (wiki.servarr.com, "Custom Scripts"):
#   sonarr_eventtype, sonarr_episodefile_path / radarr_eventtype, radarr_moviefile_path
# Exit status: vpod process's own (0: the file conforms), 1 for a missing file.
set -eu

if [ -z "${VPOD:-}" ]; then
  if [ -x /opt/vpod/bin/vpod ]; then VPOD=/opt/vpod/bin/vpod; else VPOD=vpod; fi
fi
event="${sonarr_eventtype:-${radarr_eventtype:-}}"

case "$event" in
  Test)
    "$VPOD" --version
    exit 0
    ;;
  Download) ;;  # On Import and On Upgrade
  *) exit 0 ;;  # Grab, Rename, Health...: nothing to do
esac

file="${sonarr_episodefile_path:-${radarr_moviefile_path:-}}"
if [ -z "$file" ]; then
  echo "vpod-import: neither sonarr_episodefile_path nor radarr_moviefile_path is set" >&2
  exit 1
fi
if [ ! -f "$file" ]; then
  echo "vpod-import: $file: no such file" >&2
  exit 1
fi
if [ -n "${VPOD_CONFIG:-}" ]; then
  exec "$VPOD" process --config "$VPOD_CONFIG" -- "$file"
fi
exec "$VPOD" process -- "$file"
