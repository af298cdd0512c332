#!/usr/bin/env bash
# A loopback-only RDP server for the RDP tests (../shared/NOTES-rdp.md): xrdp + xorgxrdp, a throwaway user whose
# desktop is openbox on a known blue with an xterm, its password in a root-only file. Idempotent: installs what is
# missing, configures once, starts sesman and xrdp unless they run. Needs root (sesman authenticates through PAM
# and becomes the user); without root it says so and exits 0, and the RDP tests skip saying why.
set -euo pipefail
STATE=/var/lib/robofleet-rdp-test
USER_NAME=rfrdp
if [ "$(id -u)" != 0 ]; then
  echo "rdp-test-server: not root, no loopback RDP server (the RDP tests will skip)"
  exit 0
fi
# A machine's own RDP server is never touched: one that runs (or anything on port 3389) other than the loopback one
# this script starts means no test server here.
loopback_config() { grep -q '^port=tcp://127.0.0.1:3389$' /etc/xrdp/xrdp.ini 2>/dev/null; }
if ! ss -ltn | grep -q '127.0.0.1:3389 ' && { ss -ltn | grep -q ':3389 ' ||
    { ! loopback_config && { pgrep -x xrdp >/dev/null || pgrep -x xrdp-sesman >/dev/null; }; }; }; then
  echo "rdp-test-server: an RDP server of this machine's own runs; it is left alone (the RDP tests will skip)"
  exit 0
fi
packages=(xrdp xorgxrdp freerdp2-x11 openbox xterm x11-xserver-utils)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "rdp-test-server: installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Loopback only, whatever the package's default.
sed -i 's|^port=3389$|port=tcp://127.0.0.1:3389|' /etc/xrdp/xrdp.ini
getent group ssl-cert >/dev/null && usermod -aG ssl-cert xrdp
install -d -m 0700 "$STATE"
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$USER_NAME"
fi
if [ ! -s "$STATE/password" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$STATE/password")
  echo "$USER_NAME:$(cat "$STATE/password")" | chpasswd
fi
home=$(getent passwd "$USER_NAME" | cut -d: -f6)
install -d -o "$USER_NAME" -g "$USER_NAME" "$home/.config/openbox"
cat > "$home/.xsession" <<'XS'
xsetroot -solid '#2a6f97'
exec openbox-session
XS
# Apps from openbox's autostart: started before openbox, an xterm may stay unmapped (NOTES-rdp.md, pitfall 3).
cat > "$home/.config/openbox/autostart" <<'AS'
xterm -geometry 100x30+50+50 -bg '#ffffe0' -fg black -e bash --norc &
AS
chown "$USER_NAME:$USER_NAME" "$home/.xsession" "$home/.config/openbox/autostart"
if ! ss -ltn | grep -q '127.0.0.1:3389 '; then
  sh /usr/share/xrdp/socksetup
  # Ours (configured for loopback above) but half up: ended, to start whole again.
  pkill -x xrdp-sesman 2>/dev/null || true
  pkill -x xrdp 2>/dev/null || true
  rm -f /var/run/xrdp/xrdp.pid /var/run/xrdp/xrdp-sesman.pid
  setsid /usr/sbin/xrdp-sesman --nodaemon >/dev/null 2>&1 < /dev/null &
  setsid setpriv --reuid=xrdp --regid=xrdp --init-groups /usr/sbin/xrdp --nodaemon >/dev/null 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    ss -ltn | grep -q '127.0.0.1:3389 ' && break
    sleep 0.1
  done
fi
ss -ltn | grep -q '127.0.0.1:3389 ' || { echo "rdp-test-server: xrdp does not listen on 127.0.0.1:3389"; exit 1; }
echo "rdp-test-server: xrdp on 127.0.0.1:3389, user $USER_NAME, password in $STATE/password"
