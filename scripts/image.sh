#!/usr/bin/env bash
# Builds the Outrider OCI image from what a CMake build produced, offline.
#
#   image.sh BUILDDIR               stage the image's files and build it with podman
#   image.sh --stage-only BUILDDIR  stage the files and the SBOM only (no podman)
#
# The image is FROM scratch and holds, and nothing else (no shell, no package
# manager):
#   /usr/bin/outrider, /usr/bin/outrider-agent, /usr/bin/outrider-ca
#       stripped copies of BUILDDIR/bin/*
#   the shared libraries they load and the dynamic loader
#       found by reading the ELF NEEDED entries recursively (and PT_INTERP),
#       each at the path its Debian package gives it, byte for byte
#   /etc/passwd, /etc/group     user and group outrider = 65532
#   /usr/share/doc/outrider/sbom.spdx.json
#       the SPDX 2.3 SBOM: every other file with its sha1/sha256 and the
#       package it came from (outrider itself, or a Debian package found
#       with dpkg -S, with its version and purl)
# It is tagged outrider:<version> and outrider:dev, carries the OCI labels
# org.opencontainers.image.*, runs as 65532:65532 and is built with
# --network=none --pull=never and a fixed --timestamp, so the same build
# gives the same image. Staging happens in BUILDDIR/image/ (rootfs/, and
# sbom.spdx.json beside it). docs/image.md tells more.
#
# Environment:
#   OUTRIDER_SOURCE_URL  org.opencontainers.image.source and the SBOM's
#                        download location (default https://example.invalid/outrider)
#   OUTRIDER_LICENSE     org.opencontainers.image.licenses, an SPDX expression
#                        (default NOASSERTION: the project names no license)
#   OUTRIDER_REVISION    the commit (default: git rev-parse HEAD, "-dirty"
#                        appended when tracked files differ from it)
#   SOURCE_DATE_EPOCH    the image's and the SBOM's creation time (default:
#                        the commit's time)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
SOURCE_URL=${OUTRIDER_SOURCE_URL:-https://example.invalid/outrider}
LICENSE=${OUTRIDER_LICENSE:-NOASSERTION}
PROGRAMS=(outrider outrider-agent outrider-ca)
UID_GID=65532

die() { echo "image.sh: $*" >&2; exit 1; }

usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,3\}//' >&2
    exit 2
}

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
    done
}

# ---------------------------------------------------------------- identity

project_version() {
    sed -n 's/^project(outrider VERSION \([0-9][0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt" | head -n1
}

# The commit, with -dirty when tracked files differ from it.
git_revision() {
    if [ -n "${OUTRIDER_REVISION:-}" ]; then
        echo "$OUTRIDER_REVISION"
        return
    fi
    local rev
    rev=$(git -C "$SRC" rev-parse HEAD 2>/dev/null) ||
        die "no git checkout at $SRC; set OUTRIDER_REVISION to the commit the build comes from"
    git -C "$SRC" diff --quiet HEAD -- 2>/dev/null || rev+=-dirty
    echo "$rev"
}

source_date_epoch() {
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        echo "$SOURCE_DATE_EPOCH"
    else
        git -C "$SRC" log -1 --format=%ct 2>/dev/null || echo 0
    fi
}

# ---------------------------------------------------------------- ELF walk

elf_needed() {
    readelf -d --wide "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

elf_soname() {
    readelf -d --wide "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p'
}

elf_interp() {
    readelf -l --wide "$1" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p'
}

# resolve_soname NAME: the path the x86-64 loader opens for NAME, from the
# ld.so cache, else the default directories.
LDCACHE=""
resolve_soname() {
    local name=$1 path dir
    [ -n "$LDCACHE" ] || LDCACHE=$(ldconfig -p)
    path=$(awk -v n="$name" '$1 == n && $2 ~ /x86-64/ { print $NF; exit }' <<<"$LDCACHE")
    if [ -z "$path" ]; then
        for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
            [ -e "$dir/$name" ] && { path=$dir/$name; break; }
        done
    fi
    [ -n "$path" ] || die "cannot find the library $name that $2 needs; install its -dev package's runtime (scripts/install-deps.sh)"
    echo "$path"
}

# needed_libraries ELF...: every library path the programs load, with the
# loader, each once, sorted.
needed_libraries() {
    local -A seen=() loaded=()
    local queue=("$@") file name path interp
    for file in "$@"; do
        interp=$(elf_interp "$file")
        [ -n "$interp" ] || die "$file has no program interpreter; is it a dynamically linked program?"
        seen[$interp]=1
        # the loader is loaded already: a NEEDED entry naming its soname
        # (libc's, for one) is the loader itself, not another file
        loaded[$(elf_soname "$interp")]=1
    done
    while [ ${#queue[@]} -gt 0 ]; do
        file=${queue[0]}
        queue=("${queue[@]:1}")
        for name in $(elf_needed "$file"); do
            [ -n "${loaded[$name]:-}" ] && continue
            path=$(resolve_soname "$name" "$file")
            [ -n "${seen[$path]:-}" ] && continue
            seen[$path]=1
            queue+=("$path")
        done
    done
    printf '%s\n' "${!seen[@]}" | sort
}

# ---------------------------------------------------------------- Debian origin

# usrmerge_twin PATH: the same path with or without the /usr prefix.
usrmerge_twin() {
    case "$1" in
    /usr/*) echo "${1#/usr}" ;;
    *) echo "/usr$1" ;;
    esac
}

# deb_origin PATH: "PACKAGE OWNED_PATH" for the Debian package that ships
# PATH, trying the path, its usrmerge twin, and the same for the file the
# symlinks lead to. The owned path keeps PATH's file name when dpkg knows
# that name, so the image has the file where the loader looks for it.
deb_origin() {
    local path=$1 real candidate owner
    real=$(readlink -f "$path")
    for candidate in "$path" "$(usrmerge_twin "$path")" "$real" "$(usrmerge_twin "$real")"; do
        owner=$(dpkg-query -S "$candidate" 2>/dev/null | awk -F': ' -v p="$candidate" '$2 == p { print $1; exit }') || true
        if [ -n "$owner" ]; then
            echo "${owner%%:*} $candidate"
            return
        fi
    done
    die "no Debian package ships $path (nor $real); the image takes libraries from Debian packages only"
}

# deb_purl NAME VERSION ARCH
deb_purl() {
    local version=${2//:/%3A}
    version=${version//+/%2B}
    echo "pkg:deb/debian/$1@$version?arch=$3&distro=debian-12"
}

# ---------------------------------------------------------------- staging

stage_user_files() {
    local root=$1
    mkdir -p "$root/etc"
    printf 'outrider:x:%s:%s:outrider:/nonexistent:/sbin/nologin\n' "$UID_GID" "$UID_GID" >"$root/etc/passwd"
    printf 'outrider:x:%s:\n' "$UID_GID" >"$root/etc/group"
    chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

# stage BUILDDIR STAGE: fills STAGE/rootfs and writes STAGE/origins.tsv, one
# line per file: image path, then "outrider" or "deb PACKAGE".
stage() {
    local bin=$1/bin stage=$2 root=$2/rootfs p lib owned pkg dest
    rm -rf "$stage"
    mkdir -p "$root/usr/bin"
    : >"$stage/origins.tsv"
    for p in "${PROGRAMS[@]}"; do
        [ -x "$bin/$p" ] || die "no $bin/$p; build first (make build, or cmake --build $1)"
        strip --strip-all -o "$root/usr/bin/$p" "$bin/$p"
        chmod 0755 "$root/usr/bin/$p"
        printf '/usr/bin/%s\toutrider\n' "$p" >>"$stage/origins.tsv"
    done
    stage_user_files "$root"
    printf '/etc/group\toutrider\n/etc/passwd\toutrider\n' >>"$stage/origins.tsv"
    while IFS= read -r lib; do
        read -r pkg owned < <(deb_origin "$lib")
        # the file keeps the name the loader asks for, in the directory
        # its package gives it
        dest=$(dirname "$owned")/$(basename "$lib")
        mkdir -p "$root$(dirname "$dest")"
        cp -L "$lib" "$root$dest"
        chmod "$(stat -L -c %a "$lib")" "$root$dest"
        printf '%s\tdeb %s\n' "$dest" "$pkg" >>"$stage/origins.tsv"
    done < <(needed_libraries "${PROGRAMS[@]/#/$bin/}")
    LC_ALL=C sort -o "$stage/origins.tsv" "$stage/origins.tsv"
}

# ---------------------------------------------------------------- SBOM

spdx_id() {
    local s=${1#/}
    s=${s//[^A-Za-z0-9.]/-}
    echo "$s"
}

# write_sbom STAGE VERSION REVISION EPOCH: STAGE/sbom.spdx.json, from
# origins.tsv and the staged files.
write_sbom() {
    local stage=$1 version=$2 revision=$3 epoch=$4 records=$1/records.tsv
    local path origin pkg pver arch spdx sha1 sha256 kind created namespace
    : >"$records"
    while IFS=$'\t' read -r path origin; do
        sha1=$(sha1sum "$stage/rootfs$path" | cut -d' ' -f1)
        sha256=$(sha256sum "$stage/rootfs$path" | cut -d' ' -f1)
        kind=BINARY
        case "$path" in /etc/*) kind=TEXT ;; esac
        if [ "$origin" = outrider ]; then
            printf 'file\t%s\t%s\t%s\t%s\t%s\tSPDXRef-Package-outrider\n' \
                "$path" "SPDXRef-File-$(spdx_id "$path")" "$sha1" "$sha256" "$kind" >>"$records"
        else
            pkg=${origin#deb }
            spdx=SPDXRef-Package-deb-$(spdx_id "$pkg")
            printf 'file\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                "$path" "SPDXRef-File-$(spdx_id "$path")" "$sha1" "$sha256" "$kind" "$spdx" >>"$records"
            if ! grep -q -P "^deb\t\Q$pkg\E\t" "$records"; then
                IFS=$'\t' read -r pver arch < <(dpkg-query -W -f '${Version}\t${Architecture}\n' "$pkg")
                printf 'deb\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$spdx" "$pver" "$arch" \
                    "$(deb_purl "$pkg" "$pver" "$arch")" \
                    "$(dpkg-query -W -f '${source:Package} ${source:Version}' "$pkg")" >>"$records"
            fi
        fi
    done <"$stage/origins.tsv"
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    namespace="$SOURCE_URL/spdx/outrider-image-$version-$revision-$(sha256sum "$records" | cut -c1-16)"
    jq -n -R --arg version "$version" --arg revision "$revision" --arg created "$created" \
        --arg namespace "$namespace" --arg source "$SOURCE_URL" --arg license "$LICENSE" '
        [inputs | split("\t")] as $rows
        | ($rows | map(select(.[0] == "file"))) as $files
        | ($rows | map(select(.[0] == "deb"))) as $debs
        | {
            spdxVersion: "SPDX-2.3",
            dataLicense: "CC0-1.0",
            SPDXID: "SPDXRef-DOCUMENT",
            name: "outrider-image-\($version)",
            documentNamespace: $namespace,
            creationInfo: {created: $created, creators: ["Tool: outrider-image.sh-\($version)"]},
            documentDescribes: ["SPDXRef-Package-outrider"],
            comment: "The files of the outrider:\($version) image, except this SBOM (/usr/share/doc/outrider/sbom.spdx.json), each with the package it comes from.",
            packages: ([{
                name: "outrider",
                SPDXID: "SPDXRef-Package-outrider",
                versionInfo: $version,
                supplier: "NOASSERTION",
                downloadLocation: $source,
                sourceInfo: "built from commit \($revision)",
                filesAnalyzed: false,
                licenseConcluded: $license,
                licenseDeclared: $license,
                copyrightText: "NOASSERTION",
                primaryPackagePurpose: "APPLICATION",
                externalRefs: [{referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                referenceLocator: "pkg:generic/outrider@\($version)"}],
                annotations: [{annotationType: "OTHER", annotator: "Tool: outrider-image.sh-\($version)",
                               annotationDate: $created, comment: "revision: \($revision)"}]
              }] + [$debs[] | {
                name: .[1],
                SPDXID: .[2],
                versionInfo: .[3],
                supplier: "Organization: Debian",
                downloadLocation: "NOASSERTION",
                sourceInfo: "Debian source package \(.[6])",
                filesAnalyzed: false,
                licenseConcluded: "NOASSERTION",
                licenseDeclared: "NOASSERTION",
                copyrightText: "NOASSERTION",
                primaryPackagePurpose: "LIBRARY",
                externalRefs: [{referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                referenceLocator: .[5]}]
              }]),
            files: [$files[] | {
                fileName: ".\(.[1])",
                SPDXID: .[2],
                fileTypes: [.[5]],
                checksums: [{algorithm: "SHA1", checksumValue: .[3]},
                            {algorithm: "SHA256", checksumValue: .[4]}],
                licenseConcluded: "NOASSERTION",
                copyrightText: "NOASSERTION"
              }],
            relationships: (
                [{spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES",
                  relatedSpdxElement: "SPDXRef-Package-outrider"}]
                + [$debs[] | {spdxElementId: "SPDXRef-Package-outrider", relationshipType: "DEPENDS_ON",
                              relatedSpdxElement: .[2]}]
                + [$files[] | {spdxElementId: .[6], relationshipType: "CONTAINS",
                               relatedSpdxElement: .[2]}])
          }' <"$records" >"$stage/sbom.spdx.json"
    rm -f "$records"
}

# ---------------------------------------------------------------- image

install_sbom() {
    local stage=$1 dir=$1/rootfs/usr/share/doc/outrider
    mkdir -p "$dir"
    cp "$stage/sbom.spdx.json" "$dir/sbom.spdx.json"
    chmod 0644 "$dir/sbom.spdx.json"
}

# Fixed modes and mtimes, so that the layer depends only on the contents.
normalise_tree() {
    local root=$1 epoch=$2
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -exec touch -h -d "@$epoch" {} +
}

build_image() {
    local stage=$1 version=$2 revision=$3 epoch=$4
    podman build --quiet --network=none --pull=never --identity-label=false \
        --timestamp "$epoch" -f "$SRC/packaging/Containerfile" \
        --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
        --build-arg "SOURCE=$SOURCE_URL" --build-arg "LICENSES=$LICENSE" \
        --build-arg "CREATED=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
        --iidfile "$stage/image-id" -t "outrider:$version" -t outrider:dev "$stage/rootfs" >/dev/null ||
        die "podman build failed (see above); the image is built FROM scratch, offline"
}

main() {
    local stage_only=0
    if [ "${1:-}" = --stage-only ]; then
        stage_only=1
        shift
    fi
    [ $# -eq 1 ] || usage
    local build version revision epoch stage
    build=$(cd "$1" && pwd) || die "no build directory $1"
    need_tools readelf strip ldconfig dpkg-query jq sha1sum sha256sum
    [ "$stage_only" = 1 ] || need_tools podman
    version=$(project_version)
    [ -n "$version" ] || die "no 'project(outrider VERSION x.y.z)' in $SRC/CMakeLists.txt"
    revision=$(git_revision)
    epoch=$(source_date_epoch)
    stage=$build/image
    stage "$build" "$stage"
    write_sbom "$stage" "$version" "$revision" "$epoch"
    install_sbom "$stage"
    normalise_tree "$stage/rootfs" "$epoch"
    if [ "$stage_only" = 1 ]; then
        echo "staged $stage/rootfs and $stage/sbom.spdx.json (outrider $version, $revision)"
        return
    fi
    build_image "$stage" "$version" "$revision" "$epoch"
    echo "built outrider:$version and outrider:dev ($(cut -c1-19 "$stage/image-id"), $(podman image inspect --format '{{.Size}}' outrider:dev) bytes, revision $revision)"
    echo "SBOM: $stage/sbom.spdx.json"
}

main "$@"
