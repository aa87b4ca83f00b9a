#!/usr/bin/env bash
# Installs the Debian 12 packages Outrider needs to build, test and demo
# (prometheus for promtool, which checks /stats in the tests),
# skipping the ones already present, and sets up podman for the image and
# the packaging tests: runtime runc, and default ulimits in
# /etc/containers/containers.conf (other settings there are kept). Needs
# root or sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-14 libclang-rt-14-dev
  libuv1-dev libmbedtls-dev libhttp-parser-dev libyaml-dev libcmocka-dev libseccomp-dev
  openssl curl socat haproxy nginx-light iproute2 procps
  libnginx-mod-stream jq gnuplot-nox prometheus
  libnghttp2-dev nghttp2-client nghttp2-server python3-grpcio python3-h2
  podman runc containernetworking-plugins iptables catatonit busybox-static
  systemd logrotate
)

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

# ensure_setting FILE SECTION KEY VALUE: FILE (TOML) carries `KEY = VALUE`
# in [SECTION]: an existing KEY line there is replaced, or the line is added
# under the section header, or the section is appended. Nothing is written
# when the setting is already there.
ensure_setting() {
    local file=$1 section=$2 key=$3 value=$4 tmp
    tmp=$(mktemp)
    [ -e "$file" ] || { $sudo mkdir -p "$(dirname "$file")"; $sudo touch "$file"; }
    awk -v sec="[$section]" -v key="$key" -v line="$key = $value" '
        function header(s) { return s ~ /^[ \t]*\[[^]]*\][ \t]*$/ }
        {
            trimmed = $0; gsub(/^[ \t]+|[ \t]+$/, "", trimmed)
            if (header($0)) {
                if (in_sec && !done) { print line; done = 1 }
                in_sec = (trimmed == sec)
                if (in_sec) seen = 1
                print; next
            }
            if (in_sec && !done && trimmed ~ ("^" key "[ \t]*=")) { print line; done = 1; next }
            print
        }
        END {
            if (in_sec && !done) { print line; done = 1 }
            if (!seen) { print ""; print sec; print line }
        }' "$file" >"$tmp"
    if ! cmp -s "$tmp" "$file"; then
        echo "setting $key = $value in [$section] of $file"
        $sudo cp "$tmp" "$file"
    fi
    rm -f "$tmp"
}

configure_podman() {
    local conf=/etc/containers/containers.conf
    ensure_setting "$conf" engine runtime '"runc"'
    ensure_setting "$conf" containers default_ulimits '["nofile=1024:1024", "nproc=1024:1024"]'
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
configure_podman
