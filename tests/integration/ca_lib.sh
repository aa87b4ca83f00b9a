# shellcheck shell=bash
# Helpers for the control-plane tests (test_ca_*.sh), sourced after lib.sh:
# run outrider-ca, make CSRs with openssl, post them with curl.

CA_BIN=$OUTRIDER_BIN/outrider-ca
AGENT_BIN=$OUTRIDER_BIN/outrider-agent
[ -x "$CA_BIN" ] || die "no outrider-ca binary at $CA_BIN"

# ca_admin ARGS...: a one-shot outrider-ca command (init, token create) run
# as the user the CA serves as (sandbox_user, see lib.sh), so the state
# directory belongs to that user as it would in a deployment.
ca_admin() {
    as_sandbox_user "$CA_BIN" "$@"
}

# start_ca NAME DIR PORT [ARGS...]: outrider-ca serve, stderr in $T/NAME.err.
start_ca() {
    local name=$1 dir=$2 port=$3
    shift 3
    start_bg "$name" "$CA_BIN" serve --dir "$dir" --listen "127.0.0.1:$port" "$@"
    if ! wait_port "$port"; then
        local lines
        mapfile -t lines < <(excerpt "$T/$name.err" 20)
        die "outrider-ca $name does not listen on $port" "${lines[@]}"
    fi
}

# stop_ca NAME: SIGTERM; it must exit 0 with no sanitizer report.
stop_ca() {
    local name=$1 pid=${PROC_PID[$1]:-} rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10 * SLOW))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    unset "PROC_PID[$name]"
    assert_eq 0 "$rc" "$name exits 0 after SIGTERM"
    check_sanitizers "$T/$name.err" "$name"
}

# new_csr KEYFILE CSRFILE [URI] [KEYSPEC]: an openssl key (EC P-256 unless
# KEYSPEC gives genpkey options) and a CSR, with a URI SAN when URI is set.
new_csr() {
    local key=$1 csr=$2 uri=${3:-} spec=${4:-"-algorithm EC -pkeyopt ec_paramgen_curve:P-256"}
    # shellcheck disable=SC2086
    openssl genpkey $spec -out "$key" 2>/dev/null
    if [ -n "$uri" ]; then
        openssl req -new -key "$key" -subj /CN=test -addext "subjectAltName=URI:$uri" -out "$csr"
    else
        openssl req -new -key "$key" -subj /CN=test -out "$csr"
    fi
}

# sign PORT BUNDLE CSRFILE OUT [CURL ARGS...]: POST /v1/sign; prints the HTTP status.
sign() {
    local port=$1 bundle=$2 csr=$3 out=$4
    shift 4
    curl -sS --max-time $((10 * SLOW)) --cacert "$bundle" --data-binary "@$csr" \
        -o "$out" -w '%{http_code}' "$@" "https://127.0.0.1:$port/v1/sign${SIGN_QUERY:-}" \
        2>>"$T/curl.err" || echo "curl-failed"
}
