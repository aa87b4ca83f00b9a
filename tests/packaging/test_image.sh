#!/usr/bin/env bash
# The container image (docs/image.md): scripts/image.sh builds it from the
# build under test, then this checks what was shipped.
#
# - Both tags, the same image, and a second build gives the same image id.
# - Size under 10 MB; User 65532:65532; entrypoint and command; the OCI
#   labels with this version, this commit and the commit's time.
# - The exported file list is exactly the three programs, the libraries ldd
#   finds for them at their Debian paths, the loader, /etc/passwd,
#   /etc/group and the SBOM: no shell, no symlink, all owned by root.
# - The SBOM (SPDX 2.3): required fields, every other file listed with the
#   sha1 and sha256 of the file taken out of the image and one CONTAINS from
#   its package; each library's package is the Debian package whose md5sums
#   list that file, with its installed version and its purl.
# - outrider --version, outrider-agent and outrider-ca usage, run read-only,
#   without capabilities, with no-new-privileges, as 65532.
# - A real request: the image's outrider runs as an inbound sidecar (with
#   its default command, config and dev PKI mounted read-only) on a podman
#   network the test creates, its port published on 127.0.0.1; a static
#   busybox httpd serves a random token in the same network namespace; the
#   host's outrider outbound listener (mTLS, the sidecar must be
#   spiffe://cluster.local/ns/shop/sa/orders) carries curl's request through
#   it. The token comes back, the sidecar's access log names the client's
#   SPIFFE ID, a plaintext client gets nothing, the container's process has
#   NoNewPrivs 1, Seccomp 2, CapEff 0 and uid 65532, and it exits 0 on stop.
# Containers and the network are removed at exit; images stay.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

BUILD_DIR=$(cd "$OUTRIDER_BIN/.." && pwd)
VERSION=$(sed -n 's/^project(outrider VERSION \([0-9][0-9.]*\).*/\1/p' "$OUTRIDER_SRC/CMakeLists.txt")
RUN_ID=outrider-test-image-$$
NET=$RUN_ID-net
SIDECAR=$RUN_ID-sidecar
APP=$RUN_ID-app
EXPORT_CTR=$RUN_ID-export
APP_IMAGE=localhost/outrider-test-app:dev
SBOM_PATH=usr/share/doc/outrider/sbom.spdx.json
MAX_SIZE=10000000

cleanup_podman() {
    local c
    for c in "$APP" "$SIDECAR" "$EXPORT_CTR"; do
        podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    podman network rm -f "$NET" >/dev/null 2>&1 || true
}

# Removes what the test made in podman, then lib.sh's on_exit with the
# script's own exit status.
exit_status() { return "$1"; }
on_exit_image() {
    local rc=$?
    trap - ERR
    set +e
    cleanup_podman
    exit_status "$rc"
    on_exit
}
trap on_exit_image EXIT

for tool in podman jq busybox curl readelf dpkg-query; do
    command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
done

# ---------------------------------------------------------------- building

expected_revision() {
    local rev
    rev=$(git -C "$OUTRIDER_SRC" rev-parse HEAD)
    git -C "$OUTRIDER_SRC" diff --quiet HEAD -- || rev+=-dirty
    echo "$rev"
}

inspect() { podman image inspect --format "$1" "$2"; }

build_image() {
    local rc=0 lines
    bash "$OUTRIDER_SRC/scripts/image.sh" "$BUILD_DIR" >"$T/image-$1.out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        mapfile -t lines < <(excerpt "$T/image-$1.out" 20)
        die "scripts/image.sh $BUILD_DIR exits 0" "it exited $rc:" "${lines[@]}"
    fi
}

check_build() {
    local id_version id_dev id_again size
    build_image 1
    REVISION=$(expected_revision)
    local tag
    for tag in "outrider:$VERSION" outrider:dev; do
        if podman image exists "$tag"; then pass "tag $tag exists"; else fail "tag $tag exists"; fi
    done
    id_version=$(inspect '{{.Id}}' "outrider:$VERSION")
    id_dev=$(inspect '{{.Id}}' outrider:dev)
    assert_eq "$id_version" "$id_dev" "outrider:$VERSION and outrider:dev are one image"
    build_image 2
    id_again=$(inspect '{{.Id}}' outrider:dev)
    assert_eq "$id_version" "$id_again" "a second build of the same tree gives the same image id"
    size=$(inspect '{{.Size}}' outrider:dev)
    note "image size: $size bytes"
    if [ "$size" -gt 0 ] && [ "$size" -lt "$MAX_SIZE" ]; then
        pass "image size $size < $MAX_SIZE bytes"
    else
        fail "image size under $MAX_SIZE bytes" "got $size"
    fi
}

check_config() {
    local labels created
    assert_eq "65532:65532" "$(inspect '{{.Config.User}}' outrider:dev)" "image User"
    assert_eq '["/usr/bin/outrider"]' "$(inspect '{{json .Config.Entrypoint}}' outrider:dev)" "image Entrypoint"
    assert_eq '["-c","/etc/outrider/outrider.yaml"]' "$(inspect '{{json .Config.Cmd}}' outrider:dev)" "image Cmd"
    labels=$(inspect '{{json .Config.Labels}}' outrider:dev)
    label() { jq -r --arg k "org.opencontainers.image.$1" '.[$k] // ""' <<<"$labels"; }
    assert_eq "$VERSION" "$(label version)" "label version"
    assert_eq "$REVISION" "$(label revision)" "label revision (the commit, -dirty when the tree differs)"
    assert_eq outrider "$(label title)" "label title"
    created=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$OUTRIDER_SRC" log -1 --format=%ct)}" +%Y-%m-%dT%H:%M:%SZ)
    assert_eq "$created" "$(label created)" "label created is the commit's time"
    local k
    for k in source licenses description; do
        if [ -n "$(label "$k")" ]; then
            pass "label $k is set ($(label "$k" | cut -c1-60))"
        else
            fail "label $k is set" "labels: $labels"
        fi
    done
}

# ---------------------------------------------------------------- contents

# debian_path PATH: PATH or its usrmerge twin, whichever dpkg knows.
debian_path() {
    local p=$1 twin
    case "$p" in /usr/*) twin=${p#/usr} ;; *) twin=/usr$p ;; esac
    if dpkg-query -S "$p" >/dev/null 2>&1; then echo "$p"; else echo "$twin"; fi
}

# The files the image must hold, from ldd (scripts/image.sh reads the ELF
# NEEDED entries instead), without the leading /.
expected_files() {
    local prog lib
    {
        printf '%s\n' etc/group etc/passwd usr/bin/outrider usr/bin/outrider-agent \
            usr/bin/outrider-ca "$SBOM_PATH"
        for prog in outrider outrider-agent outrider-ca; do
            ldd "$OUTRIDER_BIN/$prog" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
        done | sort -u | while IFS= read -r lib; do
            lib=$(debian_path "$lib")
            echo "${lib#/}"
        done
    } | LC_ALL=C sort -u
}

check_contents() {
    podman create --name "$EXPORT_CTR" outrider:dev >/dev/null
    podman export "$EXPORT_CTR" >"$T/image.tar"
    podman rm "$EXPORT_CTR" >/dev/null
    tar -tf "$T/image.tar" | grep -v '/$' | sed 's|^\./||' | LC_ALL=C sort >"$T/files.actual"
    expected_files >"$T/files.expected"
    if cmp -s "$T/files.expected" "$T/files.actual"; then
        pass "the image holds exactly the expected $(wc -l <"$T/files.actual") files"
    else
        local lines
        mapfile -t lines < <(diff "$T/files.expected" "$T/files.actual" | grep '^[<>]')
        fail "the image holds exactly the expected files" "< expected only, > image only:" "${lines[@]}"
    fi
    if grep -qx 'bin/sh' "$T/files.actual"; then
        fail "no /bin/sh in the image"
    else
        pass "no /bin/sh in the image"
    fi
    local odd
    odd=$(tar --numeric-owner -tvf "$T/image.tar" | awk '$1 !~ /^[-d]/ || $2 != "0/0"' | head -n 5)
    assert_eq "" "$odd" "every entry is a plain file or directory owned by 0/0"
    mkdir -p "$T/rootfs"
    tar -xf "$T/image.tar" -C "$T/rootfs"
}

# ---------------------------------------------------------------- SBOM

sbom() { jq -r "$@" "$T/rootfs/$SBOM_PATH"; }

check_sbom_structure() {
    if cmp -s "$T/rootfs/$SBOM_PATH" "$BUILD_DIR/image/sbom.spdx.json"; then
        pass "the SBOM in the image is the one written to the build dir"
    else
        fail "the SBOM in the image is the one written to the build dir"
    fi
    local missing
    missing=$(sbom '
        [ (if .spdxVersion == "SPDX-2.3" then empty else "spdxVersion" end),
          (if .dataLicense == "CC0-1.0" then empty else "dataLicense" end),
          (if .SPDXID == "SPDXRef-DOCUMENT" then empty else "SPDXID" end),
          (if (.name // "") != "" then empty else "name" end),
          (if (.documentNamespace // "") | test("^[a-z]+://") then empty else "documentNamespace" end),
          (if (.creationInfo.created // "") | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$") then empty else "creationInfo.created" end),
          (if (.creationInfo.creators // []) | length > 0 then empty else "creationInfo.creators" end),
          (.packages[] | select((.name // "") == "" or (.versionInfo // "") == "" or (.downloadLocation // "") == ""
                                or .filesAnalyzed != false) | "package \(.SPDXID)"),
          (.files[] | select((.fileName // "") == "" or ([.checksums[].algorithm] | index("SHA1") == null)
                             or ([.checksums[].algorithm] | index("SHA256") == null)) | "file \(.SPDXID)"),
          (([.packages[].SPDXID, .files[].SPDXID] | map(select(test("^SPDXRef-[A-Za-z0-9.-]+$") | not))) | .[] | "bad id \(.)"),
          (([.packages[].SPDXID, .files[].SPDXID] | (length != (unique | length))) | if . then "duplicate SPDXIDs" else empty end)
        ] | join(", ")')
    assert_eq "" "$missing" "the SBOM has the required SPDX 2.3 fields"
    assert_eq "$VERSION" "$(sbom '.packages[] | select(.SPDXID == "SPDXRef-Package-outrider") | .versionInfo')" \
        "the SBOM's outrider package has the version"
    assert_eq "built from commit $REVISION" \
        "$(sbom '.packages[] | select(.SPDXID == "SPDXRef-Package-outrider") | .sourceInfo')" \
        "the SBOM's outrider package names the commit"
    assert_eq SPDXRef-Package-outrider \
        "$(sbom '.relationships[] | select(.spdxElementId == "SPDXRef-DOCUMENT" and .relationshipType == "DESCRIBES") | .relatedSpdxElement')" \
        "the SBOM describes the outrider package"
}

# md5_from_dpkg PACKAGE PATH: the md5 dpkg recorded for the file PATH leads to.
md5_from_dpkg() {
    local pkg=$1 real sums rel
    real=$(readlink -f "$2")
    sums=/var/lib/dpkg/info/$pkg:amd64.md5sums
    [ -e "$sums" ] || sums=/var/lib/dpkg/info/$pkg.md5sums
    for rel in "${real#/}" "${real#/usr/}"; do
        awk -v p="$rel" '$2 == p { print $1; exit }' "$sums" 2>/dev/null | grep . && return
    done
    true
}

check_sbom_file() {
    local f=$1 entry sha1 sha256 owners owner pkg version purl
    entry=$(sbom --arg f "./$f" '.files[] | select(.fileName == $f)')
    if [ -z "$entry" ]; then
        fail "/$f is listed in the SBOM"
        return
    fi
    sha256=$(jq -r '.checksums[] | select(.algorithm == "SHA256") | .checksumValue' <<<"$entry")
    sha1=$(jq -r '.checksums[] | select(.algorithm == "SHA1") | .checksumValue' <<<"$entry")
    assert_eq "$(sha256sum "$T/rootfs/$f" | cut -d' ' -f1)" "$sha256" "/$f: SBOM sha256 matches the image's file"
    assert_eq "$(sha1sum "$T/rootfs/$f" | cut -d' ' -f1)" "$sha1" "/$f: SBOM sha1 matches the image's file"
    owners=$(sbom --arg id "$(jq -r .SPDXID <<<"$entry")" \
        '[.relationships[] | select(.relationshipType == "CONTAINS" and .relatedSpdxElement == $id) | .spdxElementId] | join(" ")')
    case "$f" in
    usr/bin/* | etc/*)
        assert_eq SPDXRef-Package-outrider "$owners" "/$f: contained in the outrider package"
        return ;;
    esac
    owner=$(sbom --arg id "$owners" '.packages[] | select(.SPDXID == $id)')
    pkg=$(jq -r '.name // ""' <<<"$owner")
    if [ -z "$pkg" ]; then
        fail "/$f: contained in one package of the SBOM" "CONTAINS from: '$owners'"
        return
    fi
    version=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null || true)
    assert_eq "$version" "$(jq -r .versionInfo <<<"$owner")" "/$f: from $pkg, the installed version"
    purl="pkg:deb/debian/$pkg@$(sed 's/:/%3A/g; s/+/%2B/g' <<<"$version")?arch=amd64&distro=debian-12"
    assert_eq "$purl" "$(jq -r '.externalRefs[] | select(.referenceType == "purl") | .referenceLocator' <<<"$owner")" \
        "/$f: $pkg's purl"
    assert_eq "$(md5_from_dpkg "$pkg" "/$f")" "$(md5sum "$T/rootfs/$f" | cut -d' ' -f1)" \
        "/$f: the file $pkg ships, byte for byte (dpkg md5sums)"
}

check_sbom_files() {
    local f
    sbom '.files[].fileName' | sed 's|^\./||' | LC_ALL=C sort >"$T/files.sbom"
    grep -vx "$SBOM_PATH" "$T/files.actual" >"$T/files.listable"
    if cmp -s "$T/files.listable" "$T/files.sbom"; then
        pass "the SBOM lists every file of the image but itself, and no other"
    else
        local lines
        mapfile -t lines < <(diff "$T/files.listable" "$T/files.sbom" | grep '^[<>]')
        fail "the SBOM lists every file of the image but itself" "< image only, > SBOM only:" "${lines[@]}"
    fi
    while IFS= read -r f; do
        check_sbom_file "$f"
    done <"$T/files.listable"
    note "SBOM packages: $(sbom '[.packages[] | "\(.name) \(.versionInfo)"] | join(", ")')"
}

# ---------------------------------------------------------------- running

HARDENED=(--read-only --cap-drop=ALL --security-opt=no-new-privileges --user 65532:65532)

check_programs() {
    local out rc prog
    out=$(podman run --rm "${HARDENED[@]}" outrider:dev --version 2>&1) || true
    assert_eq "outrider $VERSION" "$(cut -d' ' -f1-2 <<<"$out")" "outrider --version in the image"
    for prog in outrider-agent outrider-ca; do
        rc=0
        out=$(podman run --rm "${HARDENED[@]}" --entrypoint "/usr/bin/$prog" outrider:dev --version 2>&1) || rc=$?
        assert_eq "0 $prog $VERSION" "$rc $out" "$prog --version in the image"
        rc=0
        out=$(podman run --rm "${HARDENED[@]}" --entrypoint "/usr/bin/$prog" outrider:dev --help 2>&1) || rc=$?
        if grep -q "^usage: $prog " <<<"$out" && [ "$rc" = 0 ]; then
            pass "$prog --help in the image prints its usage (exit $rc)"
        else
            fail "$prog --help in the image prints its usage" "exit $rc, output:" "$(head -c 300 <<<"$out")"
        fi
    done
}

create_network() {
    local _try sub
    for _try in 1 2 3 4 5; do
        sub=10.89.$((RANDOM % 200 + 20)).0/24
        podman network create --subnet "$sub" "$NET" >/dev/null 2>"$T/network.err" && {
            note "network $NET: $sub"
            return
        }
    done
    die "podman network create $NET" "$(excerpt "$T/network.err")"
}

build_app_image() {
    local dir=$T/app-image
    mkdir -p "$dir"
    cp "$(command -v busybox)" "$dir/busybox"
    cat >"$dir/Containerfile" <<'EOF'
FROM scratch
COPY busybox /busybox
USER 65532:65532
ENTRYPOINT ["/busybox", "httpd", "-f", "-v", "-p", "127.0.0.1:8080", "-h", "/www"]
EOF
    podman build --quiet --network=none --pull=never -t "$APP_IMAGE" "$dir" >"$T/app-build.out" 2>&1 ||
        die "the test's app image builds" "$(excerpt "$T/app-build.out")"
}

start_sidecar() {
    mkdir -p "$T/sidecar" "$T/sidecar-log"
    write_config "$T/sidecar/outrider.yaml" orders /var/run/outrider/identity <<CONFIG
access_log:
  path: /var/log/outrider/access.log
  format: json
listeners:
  - name: in
    mode: inbound
    protocol: http
    listen: 0.0.0.0:15006
    upstream: 127.0.0.1:8080
CONFIG
    give_to_sandbox "$T/sidecar" "$T/sidecar-log"
    podman run -d --name "$SIDECAR" --network "$NET" -p "127.0.0.1:$PUB_PORT:15006" "${HARDENED[@]}" \
        -v "$T/sidecar:/etc/outrider:ro" -v "$T/pki/shop-orders:/var/run/outrider/identity:ro" \
        -v "$T/sidecar-log:/var/log/outrider" \
        outrider:dev >/dev/null 2>"$T/sidecar-run.err" ||
        die "the sidecar container starts" "$(excerpt "$T/sidecar-run.err")"
    local deadline=$((SECONDS + 15))
    until podman logs "$SIDECAR" 2>&1 | grep -q 'sandbox applied'; do
        if [ "$(podman inspect --format '{{.State.Running}}' "$SIDECAR")" != true ] || [ "$SECONDS" -ge "$deadline" ]; then
            podman logs "$SIDECAR" >"$T/sidecar.log" 2>&1
            die "the sidecar container starts and confines itself" "$(excerpt "$T/sidecar.log" 15)"
        fi
        sleep 0.2
    done
    pass "the image's outrider starts as a sidecar with its default command"
}

start_app() {
    TOKEN="outrider image test $RANDOM$RANDOM"
    mkdir -p "$T/www"
    echo "$TOKEN" >"$T/www/index.html"
    chmod -R a+rX "$T/www"
    podman run -d --name "$APP" --network "container:$SIDECAR" "${HARDENED[@]}" \
        -v "$T/www:/www:ro" "$APP_IMAGE" >/dev/null 2>"$T/app-run.err" ||
        die "the app container starts" "$(excerpt "$T/app-run.err")"
}

# get_through PORT FILE: GET /index.html via 127.0.0.1:PORT until a 200
# (the app may still be starting), for at most 15 s; prints the status.
get_through() {
    local code deadline=$((SECONDS + 15))
    while :; do
        code=$(curl -s -o "$2" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/index.html") || true
        [ "$code" = 200 ] || [ "$SECONDS" -ge "$deadline" ] && break
        sleep 0.3
    done
    echo "$code"
}

check_sandbox_state() {
    local pid status
    pid=$(podman inspect --format '{{.State.Pid}}' "$SIDECAR")
    status=$(cat "/proc/$pid/status" 2>/dev/null || true)
    field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$status"; }
    assert_eq 1 "$(field NoNewPrivs)" "container process (host pid $pid): NoNewPrivs"
    assert_eq 2 "$(field Seccomp)" "container process: Seccomp (filter)"
    assert_eq 0000000000000000 "$(field CapEff)" "container process: CapEff"
    assert_eq "65532 65532 65532 65532" "$(field Uid | tr -s '\t ' ' ')" "container process: Uid"
}

check_real_run() {
    local code orders_id
    alloc_ports PUB_PORT OUT_PORT
    make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
    orders_id=$(spiffe_id ns/shop/sa/orders)
    create_network
    build_app_image
    start_sidecar
    start_app
    write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<CONFIG
listeners:
$(outbound_listener out "$OUT_PORT" "$PUB_PORT" "$orders_id" http)
CONFIG
    start_proxy frontend "$T/frontend.yaml" "$OUT_PORT"
    code=$(get_through "$OUT_PORT" "$T/through.body")
    assert_eq 200 "$code" "GET through host outbound => containerised inbound sidecar => app: status"
    assert_eq "$TOKEN" "$(cat "$T/through.body" 2>/dev/null)" "the app's token came back through the sidecar"
    podman logs "$SIDECAR" >"$T/sidecar.log" 2>&1
    assert_contains "$T/sidecar-log/access.log" \
        "$(spiffe_id ns/web/sa/frontend).*/index.html|/index.html.*$(spiffe_id ns/web/sa/frontend)" \
        "the sidecar's access log names the client's SPIFFE ID and the path"
    assert_contains "$T/sidecar.log" 'sandbox applied: run_as=65532:65532' "the sidecar's start-up line reports its sandbox"
    curl -s --max-time 5 -o "$T/plain.body" "http://127.0.0.1:$PUB_PORT/index.html" 2>/dev/null || true
    if grep -qF "$TOKEN" "$T/plain.body" 2>/dev/null; then
        fail "a plaintext client gets nothing from the sidecar's mTLS port"
    else
        pass "a plaintext client gets nothing from the sidecar's mTLS port"
    fi
    check_sandbox_state
    podman stop -t 15 "$SIDECAR" >/dev/null 2>&1 || true
    assert_eq 0 "$(podman inspect --format '{{.State.ExitCode}}' "$SIDECAR")" "the sidecar exits 0 on SIGTERM"
    stop_proxy frontend
}

check_build
check_config
check_contents
check_sbom_structure
check_sbom_files
check_programs
check_real_run
