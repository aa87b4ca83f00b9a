#!/usr/bin/env bash
# The command line: `outrider check -c FILE`, --version, --help, and the
# start-up refusals of `outrider -c FILE`.
#
# check: a config using the whole schema (relative identity and policy
# paths, checked from another working directory) and the shipped examples
# in config-examples/ exit 0 with "FILE: OK"; an unknown key, a bad duration,
# and both at once exit 1 with "file:line:col: error: ..." naming the line of
# each and "FILE: N error(s)"; a FIFO as the certificate, the policies file
# or the config, 100000 nested lists and an access log in a missing
# directory are refused within seconds. Start-up: a key file readable by
# group/other,
# a missing identity file and a listen address already in use each make
# `outrider -c` exit 1 with an error that names the file or the address.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/payments

# An ERE matching the text literally.
# shellcheck disable=SC2001
re_escape() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# run_cli OUT_PREFIX ARGS...: runs outrider, stdout/stderr in OUT_PREFIX.out/.err,
# sets STATUS. Bounded, in case a command meant to exit starts serving.
run_cli() {
    local prefix=$1
    shift
    STATUS=0
    timeout $((20 * SLOW)) "$OUTRIDER" "$@" >"$prefix.out" 2>"$prefix.err" || STATUS=$?
}

[ -x "$OUTRIDER" ] || die "no proxy binary at $OUTRIDER"

# --- --version, --help, a bad option
version=$(sed -n 's/^project(outrider VERSION \([0-9.]*\).*/\1/p' "$OUTRIDER_SRC/CMakeLists.txt")
for flag in --version -V; do
    run_cli "$T/version" "$flag"
    assert_exit 0 "$STATUS" "outrider $flag"
    assert_contains "$T/version.out" "^outrider $(re_escape "$version")" "outrider $flag prints the version $version"
    assert_contains "$T/version.out" "mbedTLS 2\.28\.[0-9]+" "outrider $flag names the mbedTLS version"
    assert_contains "$T/version.out" "libuv 1\.[0-9]+" "outrider $flag names the libuv version"
done
for flag in --help -h; do
    run_cli "$T/help" "$flag"
    assert_exit 0 "$STATUS" "outrider $flag"
    assert_contains "$T/help.out" "check -c" "outrider $flag shows the check command"
done
run_cli "$T/badopt" --no-such-option
if [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ]; then
    pass "an unknown option fails (status $STATUS)"
else
    fail "an unknown option fails" "exit status $STATUS"
fi

# --- a good config with the whole schema, relative paths
mkdir -p "$T/good"
cp -r "$T/pki/shop-payments" "$T/good/identity"
alloc_ports ADMIN_PORT IN_PORT APP_PORT OUT_PORT PEER_PORT
cat >"$T/good/policies.yaml" <<'EOF'
policies:
  - name: frontend-reads
    service: payments
    action: allow
    rules:
      - from:
          - principals: ["spiffe://cluster.local/ns/web/sa/frontend"]
          - namespaces: ["ops"]
            ip_blocks: ["10.0.0.0/8"]
        to:
          - ports: [8080]
  - name: no-legacy
    action: deny
    rules:
      - from:
          - namespaces: ["legacy"]
  - name: watch-batch
    action: audit
    dry_run: true
    rules:
      - from:
          - not_namespaces: ["shop", "web"]
EOF
cat >"$T/good/outrider.yaml" <<EOF
service: payments
trust_domain: cluster.local
identity:
  cert: identity/cert.pem
  key: identity/key.pem
  bundle: ./identity/bundle.pem
workers: auto
admin:
  listen: 127.0.0.1:$ADMIN_PORT
listeners:
  - name: inbound
    mode: inbound
    protocol: tcp
    listen: 127.0.0.1:$IN_PORT
    upstream: 127.0.0.1:$APP_PORT
  - name: to-orders
    mode: outbound
    protocol: tcp
    listen: 127.0.0.1:$OUT_PORT
    upstream: localhost:$PEER_PORT
    peer_identity: spiffe://cluster.local/ns/shop/sa/orders
access_log:
  path: access.log
  format: json
rbac:
  default: deny
  policies: policies.yaml
timeouts: {connect: 5s, handshake: 10s, idle: 5m, request_headers: 10s, drain: 30s}
limits: {max_connections: 10000, max_request_headers: 64KiB}
EOF
good=$T/good/outrider.yaml
STATUS=0
(cd / && timeout $((20 * SLOW)) "$OUTRIDER" check -c "$good" >"$T/good.out" 2>"$T/good.err") || STATUS=$?
assert_exit 0 "$STATUS" "check of a good config, run from another directory"
assert_contains "$T/good.err" "^$(re_escape "$good"): OK" "check prints FILE: OK"
assert_not_contains "$T/good.err" ": error: " "check of a good config reports no error"

# --- the shipped examples, with a PKI made the way their README says
mkdir -p "$T/examples/log"
cp "$OUTRIDER_SRC"/config-examples/*.yaml "$T/examples/"
# gateway.yaml logs to /var/log/outrider/, which check requires to exist.
sed -i "s#/var/log/outrider/#$T/examples/log/#" "$T/examples/gateway.yaml"
example_ids=$(sed -n 's/^.*make-dev-pki\.sh pki cluster\.local //p' "$OUTRIDER_SRC/config-examples/README.md" | head -n 1)
[ -n "$example_ids" ] || die "config-examples/README.md shows no 'make-dev-pki.sh pki cluster.local ...' command"
# shellcheck disable=SC2086
make_pki "$T/examples/pki" "$TRUST_DOMAIN" $example_ids
for example in sidecar gateway; do
    run_cli "$T/example-$example" check -c "$T/examples/$example.yaml"
    assert_exit 0 "$STATUS" "check of config-examples/$example.yaml"
    assert_not_contains "$T/example-$example.err" ": error: " "config-examples/$example.yaml has no error"
done

# --- bad configs: each error names file:line:col and the key
bad_config() {
    local file=$1 extra_top=$2 timeouts=$3
    cat >"$file" <<EOF
service: payments
trust_domain: cluster.local
identity:
  cert: $T/pki/shop-payments/cert.pem
  key: $T/pki/shop-payments/key.pem
  bundle: $T/pki/bundle.pem
${extra_top}listeners:
  - name: inbound
    mode: inbound
    protocol: tcp
    listen: 127.0.0.1:$IN_PORT
    upstream: 127.0.0.1:$APP_PORT
timeouts:
  connect: 5s
  handshake: $timeouts
EOF
}

# expect_errors FILE COUNT LINE:KEY...: check exits 1 and reports each.
expect_errors() {
    local file=$1 count=$2 spec esc
    shift 2
    esc=$(re_escape "$file")
    run_cli "$T/bad" check -c "$file"
    assert_exit 1 "$STATUS" "check of $(basename "$file")"
    for spec in "$@"; do
        assert_contains "$T/bad.err" "^$esc:${spec%%:*}:[0-9]+: error: .*${spec#*:}" \
            "$(basename "$file"): error at line ${spec%%:*} naming ${spec#*:}"
    done
    assert_contains "$T/bad.err" "^$esc: $count error" "$(basename "$file"): ends with \"$count error(s)\""
}

bad_config "$T/unknown-key.yaml" $'colour: blue\n' 10s
expect_errors "$T/unknown-key.yaml" 1 "7:colour"

bad_config "$T/bad-duration.yaml" "" "10 parsecs"
expect_errors "$T/bad-duration.yaml" 1 "15:handshake"

bad_config "$T/two-errors.yaml" $'colour: blue\n' "ten"
expect_errors "$T/two-errors.yaml" 2 "7:colour" "16:handshake"

# --- files that are not regular files, YAML limits, the access log directory
# (each run bounded by a short timeout: a check that blocks fails)
run_quick() { # run_quick OUT_PREFIX ARGS...: like run_cli, 5 s at most
    local prefix=$1
    shift
    STATUS=0
    timeout $((5 * SLOW)) "$OUTRIDER" "$@" >"$prefix.out" 2>"$prefix.err" </dev/null || STATUS=$?
}
mkdir -p "$T/fifo"
mkfifo "$T/fifo/cert.pem" "$T/fifo/policies.yaml"
cp "$T/pki/shop-payments/key.pem" "$T/pki/bundle.pem" "$T/fifo/"
write_config "$T/fifo.yaml" payments "$T/fifo" <<EOF
rbac:
  default: allow
  policies: $T/fifo/policies.yaml
listeners:
$(inbound_listener inbound "$IN_PORT" "$APP_PORT")
EOF
run_quick "$T/fifo-check" check -c "$T/fifo.yaml"
assert_exit 1 "$STATUS" "check with a FIFO as the certificate and the policies file"
assert_contains "$T/fifo-check.err" "^$(re_escape "$T/fifo.yaml"):4:[0-9]+: error: identity.cert: cannot read .*it is a FIFO, not a regular file" \
    "check names the FIFO certificate at its line"
assert_contains "$T/fifo-check.err" "error: rbac.policies: cannot read .*it is a FIFO, not a regular file" \
    "check names the FIFO policies file"
run_quick "$T/fifo-start" -c "$T/fifo.yaml"
assert_exit 1 "$STATUS" "outrider -c with a FIFO as the certificate"
mkfifo "$T/fifo/config.yaml"
run_quick "$T/fifo-config" check -c "$T/fifo/config.yaml"
assert_exit 1 "$STATUS" "check of a config that is a FIFO"
assert_contains "$T/fifo-config.err" "cannot read the file: it is a FIFO, not a regular file" \
    "check says the config is a FIFO"

head -c 100000 /dev/zero | tr '\0' '[' >"$T/deep.yaml"
start_ns=$(date +%s%N)
run_quick "$T/deep" check -c "$T/deep.yaml"
took=$(elapsed_ms "$start_ns")
assert_exit 1 "$STATUS" "check of 100000 nested lists"
assert_contains "$T/deep.err" "^$(re_escape "$T/deep.yaml"):1:65: error: lists and mappings nested more than 64 deep" \
    "the nesting error points at the 65th level"
if [ "$took" -lt $((1000 * SLOW)) ]; then
    pass "100000 nested lists are refused quickly (${took}ms)"
else
    fail "100000 nested lists are refused quickly" "took ${took}ms"
fi

write_config "$T/nolog.yaml" payments "$T/pki/shop-payments" <<EOF
access_log: {path: $T/no-such-dir/access.log}
listeners:
$(inbound_listener inbound "$IN_PORT" "$APP_PORT")
EOF
run_quick "$T/nolog" check -c "$T/nolog.yaml"
assert_exit 1 "$STATUS" "check with an access log in a missing directory"
assert_contains "$T/nolog.err" "^$(re_escape "$T/nolog.yaml"):[0-9]+:[0-9]+: error: access_log.path: cannot write \"$(re_escape "$T/no-such-dir/access.log")\": the directory \"$(re_escape "$T/no-such-dir")\" does not exist" \
    "check names access_log.path and says the directory does not exist"
sed -i "s#$T/no-such-dir/access.log#/dev/stderr#" "$T/nolog.yaml"
run_quick "$T/stderr-log" check -c "$T/nolog.yaml"
assert_exit 0 "$STATUS" "check with the access log on /dev/stderr"

# The proxy itself refuses such a config too, with the same messages.
run_cli "$T/bad-start" -c "$T/bad-duration.yaml"
assert_exit 1 "$STATUS" "outrider -c with a bad config"
assert_contains "$T/bad-start.err" "^$(re_escape "$T/bad-duration.yaml"):15:[0-9]+: error: .*handshake" \
    "outrider -c reports the bad duration with file:line:col"

# --- start-up refusals that name the file or address
mkdir -p "$T/loose"
cp "$T/pki/shop-payments/"*.pem "$T/loose/"
chmod 0644 "$T/loose/key.pem"
write_config "$T/loose.yaml" payments "$T/loose" <<EOF
listeners:
$(inbound_listener inbound "$IN_PORT" "$APP_PORT")
EOF
key_re=$(re_escape "$T/loose/key.pem")
run_cli "$T/loose" -c "$T/loose.yaml"
assert_exit 1 "$STATUS" "outrider -c with a key file of mode 0644"
assert_contains "$T/loose.err" "error: .*$key_re" "the refusal of a 0644 key names the key file"
run_cli "$T/loose-check" check -c "$T/loose.yaml"
assert_exit 1 "$STATUS" "check with a key file of mode 0644"
assert_contains "$T/loose-check.err" "error: .*$key_re" "check names the 0644 key file"
chmod 0600 "$T/loose/key.pem"
run_cli "$T/tight-check" check -c "$T/loose.yaml"
assert_exit 0 "$STATUS" "check passes once the key is mode 0600"

write_config "$T/missing.yaml" payments "$T/nowhere" <<EOF
listeners:
$(inbound_listener inbound "$IN_PORT" "$APP_PORT")
EOF
run_cli "$T/missing" -c "$T/missing.yaml"
assert_exit 1 "$STATUS" "outrider -c with a missing identity file"
assert_contains "$T/missing.err" "error: .*$(re_escape "$T/nowhere/")" "the refusal names the missing file"

# A listen address already taken by another process.
start_bg squatter socat "TCP-LISTEN:$IN_PORT,bind=127.0.0.1,reuseaddr" PIPE
wait_port "$IN_PORT" || die "socat does not listen on $IN_PORT"
run_cli "$T/busy" -c "$T/loose.yaml"
assert_exit 1 "$STATUS" "outrider -c with its listen address in use"
assert_contains "$T/busy.err" "error.*127\.0\.0\.1:$IN_PORT" "the refusal names the address in use"
check_sanitizers "$T/busy.err" busy
check_sanitizers "$T/loose.err" loose
