#!/usr/bin/env bash
# Real-systemd end-to-end check of vpod: boots Debian 12 with systemd as PID 1 in a
# systemd-nspawn container and, inside it,
#   1. runs contrib/install.sh (apt packages, /opt/vpod venv, vpod user, config, unit);
#   2. `systemctl start vpod` must reach "active" (Type=notify: only after READY=1);
#   3. a file copied into /var/lib/vpod/inbox must be processed (seen in journalctl -u vpod
#      and checked with mkvmerge -J);
#   4. `systemctl reload vpod` must apply a changed policy to the next file;
#   5. /health and /metrics answer; `vpod status --json` reports the daemon running;
#      STATUS= text reaches systemd; WATCHDOG=1 pings keep it alive (WatchdogSec=3 drop-in);
#   6. `systemctl stop vpod` during a remux must let the remux finish (KillMode=mixed: the
#      SIGTERM reaches vpod alone, which drains) and end with the main process exiting 0;
#   7. a file under a transcoding policy is encoded to HEVC under the unit (its encoder
#      lowers its own priority: setpriority/ioprio_set past the system call filter);
#   8. a wedged daemon (SIGSTOP) stops pinging and systemd's watchdog restarts it.
#
#   contrib/systemd-e2e.sh [--build-only] [--rebuild] [--keep-logs]
#
# Needs root, systemd-nspawn (Debian: systemd-container), debootstrap and nsenter. The
# base rootfs (Debian bookworm minbase + systemd, python3-venv, ffmpeg, mkvtoolnix) is
# built once into $VPOD_E2E_ROOT (~2-4 min) and reused; every run boots it with
# --volatile=overlay, so runs never change it. Set VPOD_E2E_APT=1 to let this script
# apt-get install the missing host tools.
#
# Exit status: 0 passed, 1 a check failed, 3 infrastructure failure (build, boot),
#              77 skipped (not root, or the host tools are missing).
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=${VPOD_E2E_ROOT:-/var/lib/machines/vpod-e2e}
NAME=vpod-e2e-$$
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates,curl,procps,acl,ffmpeg,mkvtoolnix
MIRROR=${VPOD_E2E_MIRROR:-http://deb.debian.org/debian}
T_BOOT=60
BUILD_ONLY=0 REBUILD=0 KEEP_LOGS=0
for arg in "$@"; do
  case $arg in
    --build-only) BUILD_ONLY=1 ;;
    --rebuild) REBUILD=1 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "systemd-e2e: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[systemd-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "ERROR: $*"; exit 3; }
FAILS=()
fail() { FAILS+=("$*"); log "FAIL: $*"; }

[[ $(id -u) -eq 0 ]] || skip "needs root"
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v nsenter >/dev/null || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ ${VPOD_E2E_APT:-0} == 1 ]] || skip "missing host packages: ${missing[*]} (apt-get install them, or set VPOD_E2E_APT=1)"
  log "installing host packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
fi

# ---------------------------------------------------------------- rootfs (cached)
STAMP=$ROOT/.vpod-e2e-stamp
build_rootfs() {
  mkdir -p "$(dirname "$ROOT")"
  exec 8>"$ROOT.lock"
  flock -x -w 1800 8 || die "could not lock $ROOT.lock"
  if [[ $REBUILD -eq 1 ]]; then rm -rf --one-file-system "$ROOT"; fi
  if [[ -f $STAMP && $(sed -n 's/^packages=//p' "$STAMP") == "$PACKAGES" ]]; then
    flock -u 8; return 0
  fi
  [[ -e $ROOT ]] && rm -rf --one-file-system "$ROOT"
  local tmp=$ROOT.tmp
  rm -rf --one-file-system "$tmp"
  log "building rootfs $ROOT (bookworm from $MIRROR; a few minutes, once)"
  timeout 1800 debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tmp" "$MIRROR" \
      >"$ROOT.debootstrap.log" 2>&1 || { tail -20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed"; }
  echo vpod-e2e >"$tmp/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tvpod-e2e\n' >"$tmp/etc/hosts"
  ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  printf 'built=%s\npackages=%s\n' "$(date -Is)" "$PACKAGES" >"$tmp/.vpod-e2e-stamp"
  mv "$tmp" "$ROOT"
  flock -u 8
}
build_rootfs
if [[ $BUILD_ONLY -eq 1 ]]; then log "rootfs ready: $ROOT"; exit 0; fi
exec 9>"$ROOT.lock"
flock -s -w 1800 9 || die "could not lock $ROOT.lock"

# ---------------------------------------------------------------- container
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/vpod-e2e.XXXXXX")
NSPAWN_PID="" LEADER="" CG_DIRS=()
CT_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER=cat SYSTEMD_COLORS=0)
# ct SECONDS CMD...: run CMD inside the container (every namespace of its PID 1)
ct() { local t=$1; shift; timeout -k 5 "$t" nsenter -t "$LEADER" -a -- "${CT_ENV[@]}" "$@"; }
alive() { [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; }

place_in_cgroup() {
  # Without systemd as the host's PID 1, nspawn --keep-unit builds the container's cgroup
  # tree below its own cgroup: give each run a private one, removed at the end.
  [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]] && return 0
  local d
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then d=(/sys/fs/cgroup)
  else d=(); for b in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do [[ -d $b ]] && d+=("$b"); done; fi
  for b in "${d[@]}"; do mkdir -p "$b/vpod-e2e/$NAME" 2>/dev/null && CG_DIRS+=("$b/vpod-e2e/$NAME"); done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if alive; then
    ct 10 systemctl poweroff --no-block >/dev/null 2>&1 || kill -TERM "$NSPAWN_PID"
    for _ in $(seq 1 300); do alive || break; sleep 0.1; done
    alive && { kill -TERM "$NSPAWN_PID"; sleep 1; kill -KILL "$NSPAWN_PID" 2>/dev/null; }
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  for d in "${CG_DIRS[@]}"; do
    for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$(dirname "$d")" 2>/dev/null
  done
  if [[ $KEEP_LOGS -eq 1 || $rc -ne 0 ]]; then log "logs kept in $RUNDIR"; else rm -rf "$RUNDIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

binds=(--bind-ro=/etc/ssl/certs/ca-certificates.crt)
# this host's pip set-up (mirrors, wheelhouses), so pip inside resolves like pip outside
for p in /etc/pip.conf /etc/xdg/pip /root/.config/pip /opt/wheels /opt/pypi /opt/pypi-more; do
  [[ -e $p ]] && binds+=("--bind-ro=$p")
done
place_in_cgroup
log "booting $NAME"
(
  for d in "${CG_DIRS[@]}"; do echo "$BASHPID" >"$d/cgroup.procs" 2>/dev/null || true; done
  export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
  exec systemd-nspawn -D "$ROOT" -M "$NAME" --boot --register=no --keep-unit --volatile=overlay \
    --console=passive --setenv=SYSTEMD_COLORS=0 "${binds[@]}" </dev/null >"$RUNDIR/console.log" 2>&1
) &
NSPAWN_PID=$!
deadline=$(( $(date +%s) + T_BOOT ))
mypidns=$(readlink /proc/self/ns/pid)
while [[ -z $LEADER ]]; do
  alive || { cat "$RUNDIR/console.log" >&2; die "systemd-nspawn exited during boot"; }
  (( $(date +%s) < deadline )) || die "no container PID 1 after ${T_BOOT}s"
  for c in $(pgrep -P "$NSPAWN_PID" || true); do
    if [[ $(readlink "/proc/$c/ns/pid") != "$mypidns" && $(cat "/proc/$c/comm") == systemd ]]; then LEADER=$c; fi
  done
  [[ -n $LEADER ]] || sleep 0.1
done
while :; do
  (( $(date +%s) < deadline )) || { tail -30 "$RUNDIR/console.log" >&2; die "boot did not finish in ${T_BOOT}s"; }
  state=$(ct 10 systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 0.2
done
log "container up ($state)"

# ---------------------------------------------------------------- the checks
log "copying the source tree in"
tar -C "$here" --exclude=.git --exclude=.venv --exclude=__pycache__ --exclude='*.egg-info' \
    --exclude=.pytest_cache --exclude=build -cf - . \
  | ct 120 sh -c 'mkdir -p /opt/vpod-src && tar -C /opt/vpod-src --no-same-owner -xf -' || die "copy failed"

log "contrib/install.sh"
ct 900 bash /opt/vpod-src/contrib/install.sh >"$RUNDIR/install.log" 2>&1 \
  || { tail -40 "$RUNDIR/install.log" >&2; die "contrib/install.sh failed (log: $RUNDIR/install.log)"; }

# Short settle time for the test, and the HTTP listener on; the rest is install.sh's config.
ct 30 sed -i -e 's/^settle_seconds = .*/settle_seconds = 1.0/' -e 's/^listen = .*/listen = "127.0.0.1:9810"/' \
    /etc/vpod/config.toml || die "config edit failed"
ct 30 grep -q '^listen = "127.0.0.1:9810"' /etc/vpod/config.toml || fail "install.sh's config has no [http] listen line"

# Media made inside with the container's ffmpeg: jpn audio default, eng second.
make_media() {  # make_media PATH FIRST_LANG SECOND_LANG [DEFAULT: 1 or 2, the default audio track]
  local d1=default d2=0
  [[ ${4:-1} == 2 ]] && { d1=0; d2=default; }
  ct 60 ffmpeg -v error -y -nostdin -f lavfi -i testsrc=size=64x48:rate=10:duration=1 \
     -f lavfi -i sine=frequency=300:duration=1:sample_rate=8000 -f lavfi -i sine=frequency=400:duration=1:sample_rate=8000 \
     -map 0:0 -map 1:0 -map 2:0 -c:0 mpeg4 -c:1 aac -b:1 16k -c:2 aac -b:2 16k \
     -metadata:s:1 language="$2" -metadata:s:2 language="$3" -disposition:1 "$d1" -disposition:2 "$d2" \
     -default_mode passthrough "$1"
}
default_audio() {  # language of the default audio track, by mkvmerge -J
  ct 30 mkvmerge -J "$1" | python3 -c 'import json,sys; t=json.load(sys.stdin)["tracks"]; print(",".join(x["properties"].get("language","und") for x in t if x["type"]=="audio" and x["properties"].get("default_track")))'
}
wait_journal() {  # wait_journal SECONDS EVENT [PATH]: a JSON log line with that event (and path)
  local until=$(( $(date +%s) + $1 ))
  while (( $(date +%s) < until )); do
    ct 30 journalctl -u vpod --no-pager -o cat 2>/dev/null | grep -F -- "\"event\": \"$2\"" \
      | grep -qF -- "${3:+\"path\": \"$3\"}" && return 0
    sleep 0.5
  done
  return 1
}

# A short watchdog for this test only (the unit says 60 s): the run below lasts several
# periods, so it proves the WATCHDOG=1 pings reach systemd, and the wedge test is quick.
ct 10 sh -c 'mkdir -p /etc/systemd/system/vpod.service.d &&
  printf "[Service]\nWatchdogSec=3\n" > /etc/systemd/system/vpod.service.d/e2e-watchdog.conf &&
  systemctl daemon-reload' || die "drop-in failed"

log "systemctl start vpod"
ct 30 systemd-analyze security vpod.service --no-pager 2>&1 | tail -1 | tee "$RUNDIR/security.txt" >&2
if ct 120 systemctl start vpod; then
  active=$(ct 10 systemctl is-active vpod || true)
  [[ $active == active ]] || fail "vpod is $active after start, not active"
  show=$(ct 10 systemctl show -p Type,StatusText,NotifyAccess,WatchdogUSec vpod)
  log "$(tr '\n' ' ' <<<"$show")"
  grep -q '^Type=notify$' <<<"$show" || fail "unit is not Type=notify"
  grep -q '^StatusText=.\+' <<<"$show" || fail "no STATUS= text reached systemd"
else
  fail "systemctl start vpod failed"
fi
if [[ ${#FAILS[@]} -gt 0 ]]; then  # nothing below can pass: show why and stop
  ct 30 journalctl -u vpod --no-pager -n 40 >&2 || true
  log "RESULT: FAIL"; printf '  - %s\n' "${FAILS[@]}" >&2
  exit 1
fi

# vpod rewrites files in place, so they must be writable by the vpod user: copied as vpod
# here; the second file tests the inbox's default ACL instead (README, "Running under systemd").
ct 10 install -d -m 0755 /opt/e2e-media
make_media /opt/e2e-media/first.mkv jpn eng
ct 10 runuser -u vpod -- cp /opt/e2e-media/first.mkv /var/lib/vpod/inbox/first.mkv
if wait_journal 90 file_processed /var/lib/vpod/inbox/first.mkv; then
  [[ $(default_audio /var/lib/vpod/inbox/first.mkv) == eng ]] || fail "first.mkv: default audio is not eng"
  sleep 1.5  # STATUS= is sent at most once a second
  status_text=$(ct 10 systemctl show -p StatusText --value vpod)
  log "StatusText: $status_text"
  [[ $status_text == *"1 done"* ]] || fail "STATUS= did not reach systemd after the first file ($status_text)"
else
  fail "first.mkv not processed (no file_processed in journalctl -u vpod)"
fi

health=$(ct 10 curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9810/health || true)
[[ $health == 200 ]] || fail "/health answered $health, not 200"
ct 10 curl -s http://127.0.0.1:9810/metrics | grep -q '^vpod_files_processed_total 1' \
  || fail "/metrics does not count the processed file"
ct 30 vpod status --config /etc/vpod/config.toml --json >"$RUNDIR/status.json" || fail "vpod status failed"
grep -q '"state": "running"' "$RUNDIR/status.json" || fail "vpod status does not say running"

log "policy change + systemctl reload vpod"
ct 10 sed -i 's/^audio_languages = .*/audio_languages = ["jpn"]/' /etc/vpod/config.toml
ct 30 systemctl reload vpod || fail "systemctl reload vpod failed"
wait_journal 30 config_reloaded || fail "no config_reloaded after systemctl reload"
# eng first: under the reloaded policy (jpn first) a reorder, so a remux into a new file
make_media /opt/e2e-media/second.mkv eng jpn
# written by root the way downloaders write (open mode 0666): the default ACL lets vpod write
# it; the unit's CAP_CHOWN lets the remuxed file keep root as its owner
ct 10 sh -c 'cat /opt/e2e-media/second.mkv > /var/lib/vpod/inbox/second.mkv' 
if wait_journal 90 file_processed /var/lib/vpod/inbox/second.mkv; then
  [[ $(default_audio /var/lib/vpod/inbox/second.mkv) == jpn ]] || fail "second.mkv: reloaded policy (jpn) not applied"
  owner=$(ct 10 stat -c %U:%G /var/lib/vpod/inbox/second.mkv)
  [[ $owner == root:* ]] || fail "second.mkv: the remuxed file did not keep its owner (now $owner)"
else
  fail "second.mkv not processed after reload"
fi

sleep 3  # at least one full watchdog period more
restarts=$(ct 10 systemctl show -p NRestarts --value vpod)
[[ $restarts == 0 ]] || fail "vpod was restarted $restarts time(s) while healthy (watchdog pings lost?)"

log "a remux in progress when systemctl stop comes must finish"
# A stand-in mkvmerge, first on vpod's PATH (a drop-in), marks that the remux of third.mkv
# started and holds it 5 s before running the real mkvmerge: the stop lands mid-remux
# whatever the machine's speed. One process (it execs mkvmerge), like the real tool.
ct 10 sh -c 'mkdir -p /opt/e2e-bin && cat > /opt/e2e-bin/mkvmerge && chmod 0755 /opt/e2e-bin/mkvmerge' <<'STANDIN'
#!/usr/bin/python3
import os, sys, time
if "--output" in sys.argv and any("third" in a for a in sys.argv):
    open("/var/lib/vpod/e2e-remux-started", "w").close()
    time.sleep(5)
os.execv("/usr/bin/mkvmerge", ["/usr/bin/mkvmerge", *sys.argv[1:]])
STANDIN
ct 10 sh -c 'printf "[Service]\nEnvironment=PATH=/opt/e2e-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" \
  > /etc/systemd/system/vpod.service.d/e2e-slow-remux.conf && systemctl daemon-reload' || die "drop-in failed"
ct 120 systemctl restart vpod || fail "restart with the slow-remux drop-in failed"
make_media /opt/e2e-media/third.mkv eng jpn  # the policy in force (jpn) reorders: a remux
ct 10 runuser -u vpod -- cp /opt/e2e-media/third.mkv /var/lib/vpod/inbox/third.mkv
until_t=$(( $(date +%s) + 90 ))
until ct 10 test -e /var/lib/vpod/e2e-remux-started; do
  (( $(date +%s) < until_t )) || { fail "the remux of third.mkv never started"; break; }
  sleep 0.2
done

log "systemctl stop vpod"
ct 120 systemctl stop vpod || fail "systemctl stop vpod failed"
show=$(ct 10 systemctl show -p ActiveState,Result,ExecMainCode,ExecMainStatus vpod)
log "$(tr '\n' ' ' <<<"$show")"
grep -q '^ActiveState=inactive$' <<<"$show" || fail "vpod not inactive after stop"
grep -q '^Result=success$' <<<"$show" || fail "vpod stop Result is not success"
# ExecMainCode 1 = CLD_EXITED: the daemon exited by itself, with ExecMainStatus
grep -q '^ExecMainCode=1$' <<<"$show" && grep -q '^ExecMainStatus=0$' <<<"$show" \
  || fail "main process did not exit with status 0"
ct 30 journalctl -u vpod --no-pager -o short-precise >"$RUNDIR/journal.txt" || true
grep -q '"event": "daemon_stopped"' "$RUNDIR/journal.txt" || fail "no daemon_stopped in the journal"
# The stop came mid-remux: under KillMode=control-group mkvmerge got the SIGTERM too
# ("mkvmerge exited with status -15"); with KillMode=mixed vpod drains and it completes.
awk '/"event": "file_processed"/ && /"path": "\/var\/lib\/vpod\/inbox\/third.mkv"/ {found = 1} END {exit !found}' \
    "$RUNDIR/journal.txt" || fail "third.mkv, in its remux when systemctl stop came, was not processed before vpod stopped"
if grep -q 'exited with status -15' "$RUNDIR/journal.txt"; then fail "a tool was killed by the stop's SIGTERM (status -15)"; fi
[[ $(default_audio /var/lib/vpod/inbox/third.mkv) == jpn ]] || fail "third.mkv: the remux did not complete"
ct 10 rm -f /etc/systemd/system/vpod.service.d/e2e-slow-remux.conf
ct 10 systemctl daemon-reload

log "a transcode under the unit: the encoder lowers its own priority (nice, ionice) past the syscall filter"
# keep_if_larger = false: the check is that the encode runs and verifies, not its size.
ct 10 sed -i -e 's/^video_codec = .*/video_codec = { codec = "hevc", convert = ["mpeg4"], crf = 30, preset = "ultrafast" }/' \
    -e 's/^keep_if_larger = .*/keep_if_larger = false/' /etc/vpod/config.toml || die "config edit failed"
ct 10 grep -q '^video_codec = { codec = "hevc"' /etc/vpod/config.toml || fail "install.sh's config has no video_codec line"
ct 120 systemctl start vpod || fail "start with a transcoding policy failed"
ct 60 ffmpeg -v error -y -nostdin -f lavfi -i testsrc=size=320x240:rate=10:duration=2 \
   -f lavfi -i sine=frequency=300:duration=2:sample_rate=8000 -c:v mpeg4 -c:a aac -b:a 16k \
   -metadata:s:1 language=jpn /opt/e2e-media/fourth.mkv || die "ffmpeg (fourth.mkv) failed"
ct 10 runuser -u vpod -- cp /opt/e2e-media/fourth.mkv /var/lib/vpod/inbox/fourth.mkv
if wait_journal 120 file_processed /var/lib/vpod/inbox/fourth.mkv; then
  codec=$(ct 30 ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 /var/lib/vpod/inbox/fourth.mkv)
  [[ $codec == hevc ]] || fail "fourth.mkv: video is $codec after the transcode, not hevc"
else
  ct 30 journalctl -u vpod --no-pager -o cat | grep -F fourth.mkv | tail -5 >&2 || true
  fail "fourth.mkv not transcoded under the unit (no file_processed)"
fi
ct 60 systemctl stop vpod || fail "stop after the transcode failed"

log "a wedged daemon (SIGSTOP) stops pinging: systemd's watchdog must restart it"
ct 120 systemctl start vpod || fail "second start failed"
pid=$(ct 10 systemctl show -p MainPID --value vpod)
ct 10 kill -STOP "$pid"
until_t=$(( $(date +%s) + 40 ))
while (( $(date +%s) < until_t )); do
  [[ $(ct 10 systemctl show -p NRestarts --value vpod) -ge 1 ]] && break
  sleep 0.5
done
[[ $(ct 10 systemctl show -p NRestarts --value vpod) -ge 1 ]] || fail "a stopped (wedged) vpod was not restarted by the watchdog"
ct 30 journalctl -u vpod --no-pager -o cat | grep -q "Watchdog timeout" || fail "no 'Watchdog timeout' in the journal"
ct 60 systemctl stop vpod || true

if [[ ${#FAILS[@]} -gt 0 ]]; then
  tail -60 "$RUNDIR/journal.txt" >&2
  log "RESULT: FAIL"; printf '  - %s\n' "${FAILS[@]}" >&2
  exit 1
fi
log "security: $(cat "$RUNDIR/security.txt")"
log "RESULT: PASS"
