#!/usr/bin/env bash
# gRPC through a real sidecar pair (docs/http2.md).
#
#   grpc_demo.py client --(h2c)--> outbound "frontend"
#       =(h2 over mTLS)=> inbound "orders" --(h2c)--> grpc_demo.py server
#
# Checks: unary, server-streaming, client-streaming and bidirectional calls
# answer OK with their messages; an error status (INVALID_ARGUMENT) and its
# message pass unchanged; a deadline the app misses ends DEADLINE_EXCEEDED;
# a 6 MiB message goes both ways intact; a method the policy denies ends
# PERMISSION_DENIED and never reaches the app; an app that is down ends
# UNAVAILABLE; the access logs carry the :path and the grpc_status of each
# call.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
"$PY" -c 'import grpc' 2>/dev/null || die "python3-grpcio not found (scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"
DEMO=$(dirname "$0")/grpc_demo.py

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports APP IN OUT DOWN_APP DOWN_IN DOWN_OUT ADMIN_IN

start_bg app "$PY" "$DEMO" serve "$APP" "$T/app.calls"
wait_port "$APP" || die "the gRPC app does not listen on $APP"

# orders denies the demo.Admin service; access logs in $IN_ALOG and $OUT_ALOG.
start_h2_pair "$ADMIN_IN" deny-admin-service "/demo.Admin/*" \
    "grpc:$IN:$APP:$OUT" "down:$DOWN_IN:$DOWN_APP:$DOWN_OUT"

grpc_call() { timeout $((40 * SLOW)) "$PY" "$DEMO" call "127.0.0.1:$1" "$2" 2>>"$T/clients.err" || true; }

note "the four kinds of call"
assert_eq "OK hello" "$(grpc_call "$OUT" unary)" "a unary call"
assert_eq "OK part-0,part-1,part-2,part-3,part-4" "$(grpc_call "$OUT" server_stream)" \
    "a server-streaming call"
assert_eq "OK a+b+c" "$(grpc_call "$OUT" client_stream)" "a client-streaming call"
assert_eq "OK echo:1,echo:2,echo:3,echo:4" "$(grpc_call "$OUT" bidi)" "a bidirectional call"

note "statuses"
assert_eq "INVALID_ARGUMENT bad input: fail" "$(grpc_call "$OUT" error)" \
    "an error status and its message pass unchanged"
assert_eq "DEADLINE_EXCEEDED Deadline Exceeded" "$(grpc_call "$OUT" deadline)" \
    "a deadline the app misses ends DEADLINE_EXCEEDED"
assert_eq "OK same" "$(grpc_call "$OUT" big)" "a 6 MiB message goes both ways intact"

note "policy and failures"
assert_eq "PERMISSION_DENIED RBAC: access denied" "$(grpc_call "$OUT" denied)" \
    "a denied method ends PERMISSION_DENIED"
assert_not_contains "$T/app.calls" 'Secret' "the app never saw the denied call"
assert_eq "UNAVAILABLE upstream connect error" "$(grpc_call "$DOWN_OUT" unary)" \
    "an app that is down ends UNAVAILABLE"

note "access logs"
wait_for_match "$IN_ALOG" '"listener":"in-down"' $((5 * SLOW)) || true
wait_for_match "$OUT_ALOG" '"listener":"out-down"' $((5 * SLOW)) || true
st() { jq -r "select(.path==\"$2\") | \"\(.status) \(.grpc_status)\"" "$1" | head -1; }
assert_eq "200 0" "$(st "$IN_ALOG" /demo.Echo/ServerStream)" "the inbound logs a call with grpc_status 0"
assert_eq "200 3" "$(jq -r 'select(.path=="/demo.Echo/Unary" and .grpc_status=="3") | "\(.status) \(.grpc_status)"' \
    "$IN_ALOG" | head -1)" "... and the error's grpc_status 3"
assert_eq "200 7" "$(st "$IN_ALOG" /demo.Admin/Secret)" "... and the denial's grpc_status 7"
assert_eq "deny" "$(jq -r 'select(.path=="/demo.Admin/Secret") | .rbac_decision' "$IN_ALOG" | head -1)" \
    "... decided by RBAC"
assert_eq "200 7" "$(st "$OUT_ALOG" /demo.Admin/Secret)" "the outbound logs the relayed denial"
assert_eq "200 14" "$(jq -r 'select(.listener=="in-down") | "\(.status) \(.grpc_status)"' "$IN_ALOG" | head -1)" \
    "the failed upstream is logged with grpc_status 14"

note "metrics: gRPC statuses by caller, counted like the access log"
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
curl -sS -m $((10 * SLOW)) "http://127.0.0.1:$ADMIN_IN/stats" >"$T/stats" 2>>"$T/clients.err" || true
grpc_series() { # LISTENER STATUS: the value of outrider_grpc_responses_total, or "none"
    local v
    v=$(grep -F "outrider_grpc_responses_total{listener=\"$1\",direction=\"inbound\",peer=\"$FRONTEND_ID\",grpc_status=\"$2\"}" \
        "$T/stats" | awk '{print $2}')
    echo "${v:-none}"
}
logged() { # LISTENER STATUS: access-log lines with that grpc_status
    jq -r --arg l "$1" --arg s "$2" 'select(.listener==$l and .grpc_status==$s) | .grpc_status' \
        "$IN_ALOG" | wc -l
}
log_settled "$IN_ALOG"
for code in 0 3 7; do
    assert_eq "$(logged in-grpc $code)" "$(grpc_series in-grpc $code)" \
        "grpc_responses_total{grpc_status=\"$code\"} equals the access-log lines with it"
done
assert_eq "$(logged in-down 14)" "$(grpc_series in-down 14)" \
    "grpc_responses_total{grpc_status=\"14\"} counts the UNAVAILABLE answers"
if command -v promtool >/dev/null; then
    if promtool check metrics <"$T/stats" >"$T/promtool.out" 2>&1; then
        pass "promtool accepts /stats with the gRPC series"
    else
        fail "promtool accepts /stats with the gRPC series" "$(head -5 "$T/promtool.out")"
    fi
fi

stop_proxy frontend
stop_proxy orders
