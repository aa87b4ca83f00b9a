#!/usr/bin/env bash
# Makes a development PKI of X509-SVIDs with the openssl command line.
#
#   make-dev-pki.sh OUTDIR TRUST_DOMAIN [DIR=]ID_PATH...
#
#   make-dev-pki.sh /tmp/pki cluster.local ns/shop/sa/orders ns/web/sa/frontend
#
# OUTDIR/bundle.pem is the root CA (EC P-256, CA:TRUE, keyCertSign, cRLSign);
# its key stays in OUTDIR/ca/. Each ID_PATH gets a directory with
#   cert.pem    the leaf (then the intermediate, when INTERMEDIATE=1)
#   key.pem     its EC P-256 key, mode 0600
#   bundle.pem  a copy of the root
# The directory is named "<ns>-<sa>" for an "ns/<ns>/sa/<sa>" path, the path
# with "/" replaced by "-" otherwise, or DIR when the argument is DIR=ID_PATH.
# Leaves follow the X509-SVID profile: exactly one URI SAN
# spiffe://TRUST_DOMAIN/ID_PATH, CA:FALSE, keyUsage digitalSignature
# (critical), extendedKeyUsage serverAuth and clientAuth.
#
# Environment:
#   DAYS=1            leaf validity in days
#   CA_DAYS=3650      root (and intermediate) validity in days, when made
#   INTERMEDIATE=1    sign leaves with an intermediate CA kept in OUTDIR/intermediate/
#   STARTDATE, ENDDATE  explicit leaf validity as YYYYMMDDHHMMSSZ (both or
#                     neither); used to make expired or not-yet-valid leaves
#
# Running it again reuses the CA in OUTDIR and re-issues the leaves named.
# It prints nothing on success.
set -euo pipefail

die() { echo "make-dev-pki.sh: $*" >&2; exit 1; }

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,3\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

outdir=$1
trust_domain=$2
shift 2

days=${DAYS:-1}
ca_days=${CA_DAYS:-3650}
startdate=${STARTDATE:-}
enddate=${ENDDATE:-}

[[ $days =~ ^[1-9][0-9]*$ ]] || die "DAYS must be a positive integer, got '$days'"
[[ $ca_days =~ ^[1-9][0-9]*$ ]] || die "CA_DAYS must be a positive integer, got '$ca_days'"
if [ -n "$startdate$enddate" ]; then
    [[ $startdate =~ ^[0-9]{14}Z$ && $enddate =~ ^[0-9]{14}Z$ ]] ||
        die "STARTDATE and ENDDATE must both be set, as YYYYMMDDHHMMSSZ"
fi
[[ $trust_domain =~ ^[a-z0-9._-]+$ ]] ||
    die "trust domain '$trust_domain' may hold only lower-case letters, digits, '.', '-', '_'"

# Validates one argument; prints "DIR ID_PATH" with ID_PATH without a leading "/".
parse_identity_arg() {
    local arg=$1 dir="" path seg
    if [[ $arg == *=* ]]; then
        dir=${arg%%=*}
        path=${arg#*=}
    else
        path=$arg
    fi
    path=${path#/}
    [ -n "$path" ] || die "empty identity path in '$arg'"
    local IFS=/
    for seg in $path; do
        [[ -n $seg && $seg =~ ^[A-Za-z0-9._-]+$ && $seg != . && $seg != .. ]] ||
            die "identity path '$path': segment '$seg' must be non-empty [A-Za-z0-9._-], not '.' or '..'"
    done
    [[ $path != */ && $path != *//* ]] || die "identity path '$path' has an empty segment"
    if [ -z "$dir" ]; then
        if [[ $path =~ ^ns/([^/]+)/sa/([^/]+)$ ]]; then
            dir="${BASH_REMATCH[1]}-${BASH_REMATCH[2]}"
        else
            dir=${path//\//-}
        fi
    fi
    [[ $dir =~ ^[A-Za-z0-9._-]+$ && $dir != . && $dir != .. ]] ||
        die "directory name '$dir' must be [A-Za-z0-9._-]"
    printf '%s %s\n' "$dir" "$path"
}

# Runs openssl quietly; on failure shows what it said.
run_openssl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        echo "$out" >&2
        die "openssl $1 failed"
    fi
}

new_ec_key() {
    (umask 077 && run_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
    chmod 600 "$1"
}

# The config of `openssl ca` for one signing CA directory.
write_ca_config() {
    local cadir=$1
    cat >"$cadir/openssl.cnf" <<EOF
[ ca ]
default_ca = this_ca

[ this_ca ]
dir = $cadir
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir/issued
certificate = \$dir/cert.pem
private_key = \$dir/key.pem
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no

[ any_name ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_svid ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:\${ENV::SVID_URI}
EOF
}

init_ca_dir() {
    local cadir=$1
    mkdir -p "$cadir/issued"
    chmod 700 "$cadir"
    [ -f "$cadir/index.txt" ] || : >"$cadir/index.txt"
    [ -f "$cadir/serial" ] || openssl rand -hex 16 >"$cadir/serial"
    write_ca_config "$cadir"
}

make_root() {
    local cadir=$outdir/ca
    init_ca_dir "$cadir"
    if [ -f "$cadir/key.pem" ] && [ -f "$cadir/cert.pem" ]; then
        return
    fi
    new_ec_key "$cadir/key.pem"
    run_openssl req -new -x509 -config "$cadir/openssl.cnf" \
        -key "$cadir/key.pem" -subj "/O=Outrider dev/CN=Outrider dev root CA" \
        -days "$ca_days" -extensions v3_root -out "$cadir/cert.pem"
}

make_intermediate() {
    local cadir=$outdir/intermediate
    init_ca_dir "$cadir"
    if [ -f "$cadir/key.pem" ] && [ -f "$cadir/cert.pem" ]; then
        return
    fi
    new_ec_key "$cadir/key.pem"
    run_openssl req -new -config "$cadir/openssl.cnf" -key "$cadir/key.pem" \
        -subj "/O=Outrider dev/CN=Outrider dev intermediate CA" -out "$cadir/csr.pem"
    run_openssl ca -batch -notext -config "$outdir/ca/openssl.cnf" \
        -extensions v3_intermediate -days "$ca_days" \
        -in "$cadir/csr.pem" -out "$cadir/cert.pem"
    rm -f "$cadir/csr.pem"
}

# Issues the leaf for one identity into OUTDIR/DIR, signed by the CA in cadir.
issue_svid() {
    local dir=$1 path=$2 cadir=$3
    local target=$outdir/$dir uri="spiffe://$trust_domain/$path"
    local validity=(-days "$days")
    [ -z "$startdate" ] || validity=(-startdate "$startdate" -enddate "$enddate")

    mkdir -p "$target"
    new_ec_key "$target/key.pem.new"
    run_openssl req -new -config "$cadir/openssl.cnf" -key "$target/key.pem.new" \
        -subj "/O=Outrider dev/CN=${path//\//.}" -out "$target/csr.pem"
    SVID_URI=$uri run_openssl ca -batch -notext -config "$cadir/openssl.cnf" \
        -extensions v3_svid "${validity[@]}" -in "$target/csr.pem" -out "$target/leaf.pem"
    rm -f "$target/csr.pem"

    if [ "$cadir" = "$outdir/intermediate" ]; then
        cat "$target/leaf.pem" "$cadir/cert.pem" >"$target/cert.pem.new"
    else
        cp "$target/leaf.pem" "$target/cert.pem.new"
    fi
    rm -f "$target/leaf.pem"
    cp "$outdir/bundle.pem" "$target/bundle.pem"
    mv -f "$target/key.pem.new" "$target/key.pem"
    mv -f "$target/cert.pem.new" "$target/cert.pem"
}

# The leaf section of openssl.cnf reads the URI SAN from here.
export SVID_URI=unset

mkdir -p "$outdir" || die "cannot create $outdir"
outdir=$(cd "$outdir" && pwd)

identities=()
for arg in "$@"; do
    identities+=("$(parse_identity_arg "$arg")")
done

make_root
cp "$outdir/ca/cert.pem" "$outdir/bundle.pem"
signer=$outdir/ca
if [ "${INTERMEDIATE:-0}" = 1 ]; then
    make_intermediate
    signer=$outdir/intermediate
fi

for entry in "${identities[@]}"; do
    issue_svid "${entry%% *}" "${entry#* }" "$signer"
done
