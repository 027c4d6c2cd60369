#!/usr/bin/env bash
# The benchmark's health figures come from wrk (Debian's package): install it when missing.
set -euo pipefail
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's wrk for the benchmark"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  exit 0
fi
echo "No wrk on PATH: install Debian's package (sudo apt-get install wrk)." >&2
exit 1
