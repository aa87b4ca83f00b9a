#!/usr/bin/env bash
# The sandbox (docs/security.md, "Sandbox"): each program, started as root
# with the defaults, runs on as 65532:65532 with no_new_privs, no
# capabilities (effective, permitted, inheritable, ambient, bounding), no
# supplementary groups and the seccomp filter, on every thread, and says so in one log line; the
# proxy also on GET /server_info and in /stats. Traffic still flows through
# a pair, and the agent and CA still write their files. security.sandbox:
# false keeps root and `outrider check` warns about it; so does allow_root;
# run_as takes a user name; a run_as that does not exist is an error.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    note "not root: the user switch cannot be tested; skipped"
    exit 0
fi

ZERO_CAPS=0000000000000000

# status_field PID FIELD: the value of FIELD in /proc/PID/status, tabs as spaces.
status_field() {
    sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr '\t' ' ' | sed 's/ *$//'
}

# assert_confined NAME PID: 65532 everywhere, no capabilities, no_new_privs.
assert_confined() {
    local name=$1 pid=$2 task bad=""
    assert_eq "65532 65532 65532 65532" "$(status_field "$pid" Uid)" "$name: Uid is 65532"
    assert_eq "65532 65532 65532 65532" "$(status_field "$pid" Gid)" "$name: Gid is 65532"
    assert_eq "" "$(status_field "$pid" Groups)" "$name: no supplementary groups"
    assert_eq 1 "$(status_field "$pid" NoNewPrivs)" "$name: NoNewPrivs is 1"
    assert_eq 2 "$(status_field "$pid" Seccomp)" "$name: a seccomp filter is installed"
    assert_eq "$(ls /proc/"$pid"/task | wc -l)" \
        "$(grep -l '^Seccomp:[[:space:]]*2' /proc/"$pid"/task/*/status | wc -l)" \
        "$name: every thread has the seccomp filter"
    local cap
    for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
        assert_eq "$ZERO_CAPS" "$(status_field "$pid" "$cap")" "$name: $cap is empty"
    done
    for task in /proc/"$pid"/task/*; do
        grep -q "^Uid:[[:space:]]*65532[[:space:]]" "$task/status" || bad="$bad ${task##*/}"
        grep -q "^CapEff:[[:space:]]*$ZERO_CAPS" "$task/status" || bad="$bad ${task##*/}"
    done
    assert_eq "" "$bad" "$name: every thread runs as 65532 without capabilities"
}

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports ECHO_PORT IN_PORT OUT_PORT ADMIN_PORT ROOT_PORT ROOT_ADMIN CA_PORT
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
admin: {listen: 127.0.0.1:$ADMIN_PORT}
access_log: {path: $T/orders.access, format: json}
listeners:
$(inbound_listener in "$IN_PORT" "$ECHO_PORT")
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out "$OUT_PORT" "$IN_PORT" "$ORDERS_ID")
EOF

start_echo_app echo "$ECHO_PORT"
start_proxy orders "$T/orders.yaml" "$IN_PORT" "$ADMIN_PORT"
start_proxy frontend "$T/frontend.yaml" "$OUT_PORT"

# ---- the proxy, with the defaults
assert_contains "$(proxy_log orders)" \
    'sandbox applied: run_as=65532:65532 capabilities=none no_new_privs=1 seccomp=(enforce|log) \([0-9]+ calls allowed\)' \
    "the proxy logs what the sandbox applied"
assert_confined orders "${PROC_PID[orders]}"
assert_confined frontend "${PROC_PID[frontend]}"
echo "through the sandbox" >"$T/ping"
tcp_exchange "$OUT_PORT" "$T/ping" "$T/ping.back" || true
assert_eq "through the sandbox" "$(cat "$T/ping.back")" "traffic flows through a confined pair"
assert_contains "$T/orders.access" '"protocol":"tcp"' "the confined proxy writes its access log"

# An access log on /dev/stdout when stdout is a pipe, as in every container.
alloc_ports PIPE_PORT
write_config "$T/piped.yaml" orders "$T/pki/shop-orders" <<EOF
access_log: {path: /dev/stdout, format: json}
listeners:
$(inbound_listener in "$PIPE_PORT" "$ECHO_PORT")
EOF
"$OUTRIDER" -c "$T/piped.yaml" 2>"$T/piped.log" > >(cat >"$T/piped.out") &
piped=$!
wait_port "$PIPE_PORT" || fail "the proxy logging to a pipe starts" "$(tail -3 "$T/piped.log")"
timeout 3 openssl s_client -connect "127.0.0.1:$PIPE_PORT" -cert "$T/pki/web-frontend/cert.pem" \
    -key "$T/pki/web-frontend/key.pem" -CAfile "$T/pki/bundle.pem" -quiet \
    <"$T/ping" >/dev/null 2>&1 || true
kill -TERM "$piped"
rc=0; wait "$piped" || rc=$?
assert_eq 0 "$rc" "a confined proxy logging to a pipe on stdout exits 0"
wait_for_match "$T/piped.out" '"protocol":"tcp"' 5 ||
    fail "the access log reaches the pipe" "$(tail -3 "$T/piped.log")"
assert_contains "$T/piped.out" '"protocol":"tcp"' "the access log line reaches stdout, a pipe"
check_sanitizers "$T/piped.log" piped

curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/server_info" >"$T/server_info.json"
assert_eq "true 65532 65532 none true" \
    "$(jq -r '.sandbox | "\(.enabled) \(.uid) \(.gid) \(.capabilities) \(.no_new_privs)"' "$T/server_info.json")" \
    "GET /server_info describes the sandbox"
if jq -e '.sandbox.seccomp.calls > 50' "$T/server_info.json" >/dev/null; then
    pass "GET /server_info counts the allowed system calls"
else
    fail "GET /server_info counts the allowed system calls" "$(cat "$T/server_info.json")"
fi
curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/stats" >"$T/stats.txt"
assert_contains "$T/stats.txt" '^outrider_sandbox_info\{enabled="true",uid="65532",gid="65532",capabilities="none",no_new_privs="true",.*\} 1$' \
    "/stats has outrider_sandbox_info"

# SIGUSR1 after moving the log away: the new file is made by 65532.
mv "$T/orders.access" "$T/orders.access.1"
kill -USR1 "${PROC_PID[orders]}"
tcp_exchange "$OUT_PORT" "$T/ping" "$T/ping.back2" || true
assert_contains "$T/orders.access" '"protocol":"tcp"' "the access log reopens after the switch"
assert_eq "65532" "$(stat -c %u "$T/orders.access")" "the reopened access log belongs to 65532"
# A reload re-reads the config as 65532.
kill -HUP "${PROC_PID[orders]}"
assert_contains "$(proxy_log orders)" 'reload applied' "a reload works after the switch"
# Under Landlock a reload may not name a file the proxy did not read at start.
if grep -q 'landlock=ABI' "$(proxy_log orders)"; then
    printf 'policies: []\n' >"$T/extra.yaml"
    cp "$T/orders.yaml" "$T/orders.yaml.orig"
    sed -i "s|^  default: allow$|  default: allow\n  policies: $T/extra.yaml|" "$T/orders.yaml"
    code=$(curl -sS --max-time 5 -o "$T/reload.body" -w '%{http_code}' -X POST "http://127.0.0.1:$ADMIN_PORT/reload")
    assert_eq 409 "$code" "a reload naming a new file is refused under Landlock"
    assert_contains "$T/reload.body" 'restart the proxy' "the refusal says a restart is needed"
    cp "$T/orders.yaml.orig" "$T/orders.yaml"
fi
stop_proxy frontend
stop_proxy orders

# ---- seccomp: log allows and logs; the filter is still there
# (covered by allow_root below, which runs with seccomp: log)

# ---- sandbox: false keeps root, and check warns
write_config "$T/root.yaml" root "$T/pki/shop-orders" <<EOF
admin: {listen: 127.0.0.1:$ROOT_ADMIN}
security: {sandbox: false}
listeners:
$(inbound_listener in "$ROOT_PORT" "$ECHO_PORT")
EOF
rc=0; "$OUTRIDER" check -c "$T/root.yaml" 2>"$T/check-root.err" || rc=$?
assert_eq 0 "$rc" "check accepts security.sandbox: false"
assert_contains "$T/check-root.err" 'warning: security.sandbox: false' "check warns about sandbox: false"
start_proxy root "$T/root.yaml" "$ROOT_PORT"
assert_eq "0 0 0 0" "$(status_field "${PROC_PID[root]}" Uid)" "with sandbox: false the proxy stays root"
assert_eq 0 "$(status_field "${PROC_PID[root]}" Seccomp)" "with sandbox: false there is no seccomp filter"
assert_contains "$(proxy_log root)" 'sandbox off' "the proxy says the sandbox is off"
curl -sS --max-time 5 "http://127.0.0.1:$ROOT_ADMIN/server_info" >"$T/server_info_root.json"
assert_eq "false 0" "$(jq -r '.sandbox | "\(.enabled) \(.uid)"' "$T/server_info_root.json")" \
    "GET /server_info says the sandbox is off"
stop_proxy root

# ---- allow_root: stays uid 0 without capabilities
write_config "$T/allow.yaml" allow "$T/pki/shop-orders" <<EOF
security: {allow_root: true, seccomp: log}
listeners:
$(inbound_listener in "$ROOT_PORT" "$ECHO_PORT")
EOF
"$OUTRIDER" check -c "$T/allow.yaml" 2>"$T/check-allow.err" || true
assert_contains "$T/check-allow.err" 'warning: security.allow_root: true' "check warns about allow_root: true"
start_proxy allow "$T/allow.yaml" "$ROOT_PORT"
assert_eq "0 0 0 0" "$(status_field "${PROC_PID[allow]}" Uid)" "allow_root keeps uid 0"
assert_eq "$ZERO_CAPS" "$(status_field "${PROC_PID[allow]}" CapEff)" "allow_root still drops the capabilities"
assert_eq 1 "$(status_field "${PROC_PID[allow]}" NoNewPrivs)" "allow_root still sets no_new_privs"
assert_contains "$(proxy_log allow)" 'seccomp=log \([0-9]+ calls allowed\)' "seccomp: log is applied and logged"
stop_proxy allow

# ---- run_as by name, and a user that does not exist
write_config "$T/nobody.yaml" nobody "$T/pki/shop-orders" <<EOF
security: {run_as: nobody}
listeners:
$(inbound_listener in "$ROOT_PORT" "$ECHO_PORT")
EOF
start_proxy nobody "$T/nobody.yaml" "$ROOT_PORT"
assert_eq "$(id -u nobody)" "$(status_field "${PROC_PID[nobody]}" Uid | cut -d' ' -f1)" \
    "run_as: nobody runs as nobody"
stop_proxy nobody
sed 's/run_as: nobody/run_as: no-such-user/' "$T/nobody.yaml" >"$T/nouser.yaml"
rc=0; "$OUTRIDER" check -c "$T/nouser.yaml" 2>"$T/check-nouser.err" || rc=$?
assert_eq 1 "$rc" "check refuses a run_as user that does not exist"
assert_contains "$T/check-nouser.err" 'security.run_as: no user named "no-such-user"' \
    "the error names the missing user"

# ---- outrider-ca serve and outrider-agent
CA=$T/ca
ca_admin init --dir "$CA" --trust-domain "$TRUST_DOMAIN" 2>"$T/init.err"
start_ca ca "$CA" "$CA_PORT" --ttl 1h
assert_contains "$T/ca.err" 'sandbox applied: run_as=65532:65532 capabilities=none' \
    "outrider-ca logs what the sandbox applied"
assert_confined outrider-ca "${PROC_PID[ca]}"
TOKEN=$(ca_admin token create --dir "$CA" --spiffe-id "$ORDERS_ID")
start_bg agent "$AGENT_BIN" --ca "https://127.0.0.1:$CA_PORT" --ca-bundle "$CA/bundle.d/root.pem" \
    --spiffe-id "$ORDERS_ID" --token "$TOKEN" --dir "$T/agent-out" --status-file "$T/agent.json"
assert_contains "$T/agent.err" 'sandbox applied: run_as=65532:65532 capabilities=none' \
    "outrider-agent logs what the sandbox applied"
assert_contains "$T/agent.err" 'renewed \(auth token\)' "the confined agent gets a certificate from the confined CA"
assert_confined outrider-agent "${PROC_PID[agent]}"
assert_eq 65532 "$(stat -L -c %u "$T/agent-out/key.pem")" "the agent's key belongs to 65532"
pid=${PROC_PID[agent]}
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
unset "PROC_PID[agent]"
assert_eq 0 "$rc" "the confined agent exits 0 on SIGTERM"
check_sanitizers "$T/agent.err" agent
stop_ca ca

# --no-sandbox keeps root.
assert_contains "$T/ca.err" 'seccomp=enforce \([0-9]+ calls allowed\)' "outrider-ca runs with the seccomp filter"
start_ca ca-root "$CA" "$CA_PORT" --no-sandbox
assert_eq "0 0 0 0" "$(status_field "${PROC_PID[ca-root]}" Uid)" "outrider-ca --no-sandbox stays root"
assert_contains "$T/ca-root.err" 'sandbox off' "outrider-ca says the sandbox is off"
stop_ca ca-root
rc=0; "$CA_BIN" serve --dir "$CA" --listen "127.0.0.1:$CA_PORT" --run-as 'x:y' 2>"$T/badflag.err" || rc=$?
assert_eq 2 "$rc" "outrider-ca refuses a bad --run-as"
assert_contains "$T/badflag.err" '--run-as: expected "UID:GID"' "the message says what --run-as takes"

