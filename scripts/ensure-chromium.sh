#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (no browser download): install it when missing.
set -euo pipefail
browser="${MIVA_CONNECT_CHROMIUM:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "No Chromium at $browser: install Debian's package (sudo apt-get install chromium)," >&2
echo "or set MIVA_CONNECT_CHROMIUM to a Chromium executable." >&2
exit 1
