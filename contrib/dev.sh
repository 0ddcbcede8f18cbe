#!/usr/bin/env bash
# vpod's two set-up commands on a fresh Debian/Ubuntu machine:
#   contrib/dev.sh run  [vpod run options]   install what is missing, then run the daemon
#   contrib/dev.sh test [pytest options]     install what is missing, then run the test suite
#   contrib/dev.sh bench [options]           install what is missing, then run the benchmark
#                                            suite (contrib/bench/run.py --help) and rewrite BENCHMARKS.md
# System packages come from apt-get when run as root; otherwise this script says what to
# install. Python packages go into a venv at .venv in the checkout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VPOD_VENV:-$here/.venv}"

say() { printf 'vpod-dev: %s\n' "$*" >&2; }

need_packages() {
    # $@: "command:debian-package" pairs; installs the packages whose command is missing.
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing+=("python3-venv")
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "missing system packages: ${missing[*]}"
        say "install them first, e.g.: sudo apt-get install ${missing[*]}"
        exit 1
    fi
}

check_python() {
    command -v python3 >/dev/null 2>&1 || { say "python3 (>= 3.10) is required: sudo apt-get install python3 python3-venv"; exit 1; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
        say "python3 >= 3.10 is required, found $(python3 --version 2>&1)"; exit 1; }
}

make_venv() {
    # $1: pip extras to install with the package
    if [ ! -x "$venv/bin/python" ]; then
        say "creating a virtual environment in $venv"
        python3 -m venv "$venv"
    fi
    local target="$here"
    [ -n "$1" ] && target="$here[$1]"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
}

tools=(ffmpeg:ffmpeg ffprobe:ffmpeg mkvmerge:mkvtoolnix mkvpropedit:mkvtoolnix)

case "${1:-}" in
    run)
        shift
        check_python
        need_packages "${tools[@]}"
        make_venv ""
        if [ "$(id -u)" -eq 0 ]; then
            say "running as root: vpod refuses root unless told otherwise; passing --allow-root for this quick start"
            set -- --allow-root "$@"
        fi
        exec "$venv/bin/vpod" run "$@"
        ;;
    test)
        shift
        check_python
        need_packages "${tools[@]}" rsync:rsync curl:curl bindfs:bindfs setfacl:acl setfattr:attr chattr:e2fsprogs
        make_venv "test"
        cd "$here"
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    bench)
        shift
        check_python
        need_packages "${tools[@]}"
        make_venv "bench"
        cd "$here"
        exec "$venv/bin/python" contrib/bench/run.py "$@"
        ;;
    *)
        echo "usage: contrib/dev.sh run [vpod run options] | test [pytest options] | bench [options]" >&2
        exit 2
        ;;
esac
