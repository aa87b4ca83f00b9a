#!/usr/bin/env bash
# Installs the Debian 12 packages Outrider needs to build, test and demo,
# skipping the ones already present. Needs root or sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-14 libclang-rt-14-dev
  libuv1-dev libmbedtls-dev libhttp-parser-dev libyaml-dev libcmocka-dev libseccomp-dev
  openssl curl socat haproxy nginx-light iproute2 procps
  libnginx-mod-stream jq gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
