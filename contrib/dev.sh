#!/usr/bin/env bash
# vpod's two set-up commands on a fresh Debian/Ubuntu machine:
#   contrib/dev.sh run  [vpod run options]   install what is missing, then run the daemon
#   contrib/dev.sh vpod ARGS...              run any vpod command (status, process, ...) from the venv
#   contrib/dev.sh test [pytest options]     install what is missing, type-check vpod/ with mypy
#                                            (always, also with pytest options; a few seconds),
#                                            then run the test suite (two parts at once:
#                                            contrib/test-parts.sh) or the tests named
#   contrib/dev.sh bench [options]           install what is missing, then run the benchmark
#                                            suite (contrib/bench/run.py --help) and rewrite BENCHMARKS.md
# System packages come from apt-get when run as root; otherwise this script says what to
# install. Python packages go into a venv at .venv in the checkout, once: later calls
# reuse it without pip (no network needed) until pyproject.toml changes. The install is
# editable, so changes to vpod's code need no reinstall.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VPOD_VENV:-$here/.venv}"

say() { printf 'vpod-dev: %s\n' "$*" >&2; }

need_packages() {
    # $@: "command:debian-package" pairs; installs the packages whose command is missing.
    local missing=() pair
    # A "command" with a slash is a file pattern instead (PostgreSQL's server programs
    # live in /usr/lib/postgresql/VERSION/bin, not on PATH).
    for pair in "$@"; do
        case "${pair%%:*}" in
            */*) compgen -G "${pair%%:*}" >/dev/null || missing+=("${pair##*:}") ;;
            *) command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}") ;;
        esac
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

install_key() {
    # What an install depends on: pyproject.toml (dependencies, entry points) and the venv's Python.
    printf '%s python %s' "$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)" \
        "$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
}

make_venv() {
    # $1: pip extras the command needs ("" for none, else comma-separated). Pip runs only
    # when the venv is new, pyproject.toml or its Python changed, or an extra is missing;
    # the stamp file records what was installed (line 1: install_key, line 2: extras).
    local stamp="$venv/.vpod-dev-installed" key="" extras="" wanted
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        say "creating a virtual environment in $venv"
        python3 -m venv --clear "$venv"
    fi
    if [ -f "$stamp" ]; then
        key="$(sed -n 1p "$stamp")"
        extras="$(sed -n 2p "$stamp")"
    fi
    wanted="$(printf '%s\n' ${extras//,/ } ${1//,/ } | sort -u | paste -sd, -)"
    if [ "$key" = "$(install_key)" ] && [ "$wanted" = "$extras" ]; then
        return 0  # installed and unchanged: no pip, no network
    fi
    local target="$here"
    [ -n "$wanted" ] && target="$here[$wanted]"
    say "installing vpod${wanted:+ [$wanted]} and its Python packages into $venv (again only when pyproject.toml changes)"
    rm -f "$stamp"
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target"; then
        say "pip could not install vpod's Python packages (its message is above)."
        say "They come from PyPI: without network access, point pip at a mirror or a folder of wheels"
        say "(PIP_INDEX_URL, PIP_FIND_LINKS). Once installed, the venv is reused without pip."
        exit 1
    fi
    printf '%s\n%s\n' "$(install_key)" "$wanted" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
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
        say "other vpod commands, from another terminal: contrib/dev.sh vpod status (or $venv/bin/vpod status)"
        exec "$venv/bin/vpod" run "$@"
        ;;
    vpod)
        shift
        check_python
        need_packages "${tools[@]}"
        make_venv ""
        exec "$venv/bin/vpod" "$@"
        ;;
    test)
        shift
        check_python
        # Commands the tests run besides vpod's tools (util-linux, mount and coreutils are essential);
        # PostgreSQL's server (tests/support/postgres.py runs initdb + pg_ctl) and faketime
        # (a node with a skewed clock) for the several-nodes tests; a C compiler for the
        # wall-clock shift library tests/support/faketime.py builds where libfaketime
        # cannot run Python 3.11 (Debian 12's 0.9.10). Debian's chromium for the web page's
        # browser tests (tests/integration/test_web_page.py drives /usr/bin/chromium through
        # playwright from PyPI; no browser is downloaded).
        need_packages "${tools[@]}" rsync:rsync curl:curl bindfs:bindfs pgrep:procps setfacl:acl setfattr:attr chattr:e2fsprogs gdb:gdb git:git \
            '/usr/lib/postgresql/*/bin/initdb:postgresql' faketime:faketime cc:gcc '/usr/include/stdlib.h:libc6-dev' \
            '/usr/bin/chromium:chromium'
        make_venv "test"
        cd "$here"
        # mypy reads [tool.mypy] in pyproject.toml (strict, vpod/ as Python 3.10). It runs
        # before pytest, whatever pytest options are given, and a type error stops here.
        if [ "${VPOD_DEV_SKIP_MYPY:-}" = 1 ]; then
            say "mypy skipped (VPOD_DEV_SKIP_MYPY=1)"
        else
            say "mypy: type-checking vpod/ ([tool.mypy] in pyproject.toml)"
            if ! "$venv/bin/python" -m mypy; then
                say "mypy found type errors (listed above): the tests were not run"
                say "fix them, or run the tests anyway with VPOD_DEV_SKIP_MYPY=1 contrib/dev.sh test ..."
                exit 1
            fi
        fi
        if [ "$#" -eq 0 ]; then
            # The whole suite: in parts that run at once (VPOD_TEST_SHARDS, default 2).
            say "pytest, the whole suite in ${VPOD_TEST_SHARDS:-2} parts at once (contrib/test-parts.sh)"
            exec "$here/contrib/test-parts.sh" "$venv/bin/python"
        fi
        say "pytest${*:+ $*}"
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    bench)
        shift
        check_python
        need_packages "${tools[@]}" '/usr/bin/chromium:chromium'  # the page section (contrib/bench/page.py)
        make_venv "bench"
        cd "$here"
        exec "$venv/bin/python" contrib/bench/run.py "$@"
        ;;
    *)
        echo "usage: contrib/dev.sh run [vpod run options] | vpod ARGS... | test [pytest options] | bench [options]" >&2
        exit 2
        ;;
esac
