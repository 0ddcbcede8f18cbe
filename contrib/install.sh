#!/usr/bin/env bash
# Install vpod as a systemd service on Debian/Ubuntu. Run as root from a checkout:
#
#   sudo contrib/install.sh [--start]
#
# It installs ffmpeg, mkvtoolnix and python3-venv with apt-get; vpod into a venv at
# /opt/vpod (command: /usr/local/bin/vpod, using /etc/vpod/config.toml by default); the system user and group "vpod"; the
# config /etc/vpod/config.toml (only when absent: watch folder /var/lib/vpod/inbox,
# database /var/lib/vpod/vpod.db); the unit /etc/systemd/system/vpod.service (enabled);
# bash completion. Run it again to upgrade: the config is kept.
# Then: systemctl start vpod (or pass --start).
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=/opt/vpod
start=0
for arg in "$@"; do
  case $arg in
    --start) start=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'vpod-install: %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run this as root (sudo $0)"; exit 1; }
command -v apt-get >/dev/null || { say "this script needs apt-get (Debian/Ubuntu)"; exit 1; }
[ -f "$src/pyproject.toml" ] && [ -f "$src/systemd/vpod.service" ] || { say "run it from a vpod checkout"; exit 1; }

say "installing system packages (ffmpeg, mkvtoolnix, python3-venv, acl)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ffmpeg mkvtoolnix python3 python3-venv acl >/dev/null
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { say "python3 >= 3.10 is required"; exit 1; }

if ! getent passwd vpod >/dev/null; then
  say "creating the system user vpod"
  useradd --system --user-group --home-dir /var/lib/vpod --no-create-home --shell /usr/sbin/nologin vpod
fi

say "installing vpod into $prefix"
[ -x "$prefix/bin/python" ] || python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$src"
# The command operators type: the service's config unless VPOD_CONFIG or --config says otherwise.
rm -f /usr/local/bin/vpod
cat >/usr/local/bin/vpod <<WRAPPER
#!/bin/sh
# installed by vpod's contrib/install.sh
: "\${VPOD_CONFIG:=/etc/vpod/config.toml}"
export VPOD_CONFIG
exec $prefix/bin/vpod "\$@"
WRAPPER
chmod 0755 /usr/local/bin/vpod

# /var/lib/vpod is the unit's StateDirectory; made here too so the inbox exists before the
# first start. vpod rewrites files in place, so they must be writable by user vpod. The
# inbox is setgid vpod and group-writable; its default ACL gives vpod write access to files
# that programs create with mode 0666 (browsers, downloaders, shell redirection). `cp` of a
# 0644 file keeps 0644: copy as vpod (runuser -u vpod -- cp ...) or chmod g+w afterwards.
install -d -o vpod -g vpod -m 0755 /var/lib/vpod
install -d -o vpod -g vpod -m 2775 /var/lib/vpod/inbox
if command -v setfacl >/dev/null && ! setfacl -d -m u:vpod:rwX,g:vpod:rwX /var/lib/vpod/inbox 2>/dev/null; then
  say "note: no default ACL on /var/lib/vpod/inbox (filesystem without ACLs); make dropped files group-writable"
fi

install -d -m 0755 /etc/vpod
if [ ! -e /etc/vpod/config.toml ]; then
  say "writing /etc/vpod/config.toml (from contrib/config.example.toml)"
  install -o root -g vpod -m 0640 "$src/contrib/config.example.toml" /etc/vpod/config.toml
else
  say "keeping the existing /etc/vpod/config.toml"
fi

install -m 0644 "$src/systemd/vpod.service" /etc/systemd/system/vpod.service
install -d /usr/share/bash-completion/completions
install -m 0644 "$src/contrib/completion/vpod.bash" /usr/share/bash-completion/completions/vpod

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable vpod.service >/dev/null 2>&1
  if [ "$start" -eq 1 ] || systemctl is-active --quiet vpod.service; then
    systemctl restart vpod.service
    say "vpod is running: systemctl status vpod"
  else
    say "installed and enabled; start it with: systemctl start vpod"
  fi
else
  say "systemd is not running here: the unit is installed but not enabled"
fi
# After the restart: a running daemon of the old release would keep the database at its
# old schema, which this release's doctor may not upgrade under it.
say "checking the installation as the vpod user (vpod doctor)"
runuser -u vpod -- "$prefix/bin/vpod" doctor --config /etc/vpod/config.toml >&2 || say "vpod doctor reported a blocking problem (see above)"

say "drop video files into /var/lib/vpod/inbox; see: vpod status --config /etc/vpod/config.toml"
