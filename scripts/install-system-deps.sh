#!/usr/bin/env bash
# Installs what the test suite needs from Debian, only when it is missing: Xvfb, xdotool, x11-utils, xauth and openbox
# (virtual screens, their input, access control and window manager),
# Chromium (panel tests), the PostgreSQL server binaries (throwaway clusters for outage tests).
set -euo pipefail
missing=()
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v xdotool >/dev/null || missing+=(xdotool)
command -v xdpyinfo >/dev/null || missing+=(x11-utils)
command -v xauth >/dev/null || missing+=(xauth)
command -v openbox >/dev/null || missing+=(openbox)
[ -x /usr/bin/chromium ] || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
