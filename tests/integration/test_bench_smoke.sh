#!/usr/bin/env bash
# Smoke test of outrider-bench: every mode runs for about a second against a
# real sidecar pair and an nginx app, and reports completed work, no errors
# and well-formed JSON. No timing thresholds: this checks the harness, not
# the proxy's speed.
#
#   bench (plain) -> out (frontend) =mTLS=> in (orders) -> nginx app
#   bench (mTLS, frontend identity) ========> in (orders) -> nginx app
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH=$OUTRIDER_BIN/outrider-bench
[ -x "$BENCH" ] || die "no outrider-bench binary at $BENCH"
command -v jq >/dev/null || die "jq not found"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports APP_PORT IN_HTTP IN_TCP OUT_HTTP OUT_TCP

head -c 262144 /dev/urandom >"$T/big.bin"
start_nginx app "$APP_PORT" <<EOF
        location = / { return 200 "hello from the app\n"; }
        location = /big { alias $T/big.bin; }
EOF

orders_id=$(spiffe_id ns/shop/sa/orders)
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
listeners:
$(inbound_listener in-http "$IN_HTTP" "$APP_PORT" http)
$(inbound_listener in-tcp "$IN_TCP" "$APP_PORT" tcp)
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out-http "$OUT_HTTP" "$IN_HTTP" "$orders_id" http)
$(outbound_listener out-tcp "$OUT_TCP" "$IN_TCP" "$orders_id" tcp)
EOF
start_proxy orders "$T/orders.yaml" "$IN_HTTP" "$IN_TCP"
start_proxy frontend "$T/frontend.yaml" "$OUT_HTTP" "$OUT_TCP"

ID=$T/pki/web-frontend
TLS=(--cert "$ID/cert.pem" --key "$ID/key.pem" --ca "$ID/bundle.pem" --peer-id "$orders_id")

# run_bench NAME ARGS...: runs outrider-bench with --json; the report goes
# to $T/NAME.json, stderr to $T/NAME.err.
run_bench() {
    local name=$1 rc=0
    shift
    timeout $((60 * SLOW)) "$BENCH" "$@" --json >"$T/$name.json" 2>"$T/$name.err" || rc=$?
    assert_exit 0 "$rc" "bench $name"
}

# check_load NAME JQ_CONDITION...: the report is one JSON object with
# completed > 0, no errors, no timeouts, ordered latency fields, and each
# extra condition true.
check_load() {
    local name=$1 cond
    shift
    if ! jq -e . "$T/$name.json" >/dev/null 2>&1; then
        fail "bench $name prints valid JSON" "$(head -c 300 "$T/$name.json")"
        return
    fi
    pass "bench $name prints valid JSON"
    for cond in '.completed > 0' '.errors == 0' '.timeouts == 0' \
        '.latency_us | (.p50 > 0 and .p90 >= .p50 and .p99 >= .p90 and .p999 >= .p99 and .max >= .p999)' \
        '.latency_us.samples == .completed' '.elapsed_s > 0' '.rps > 0' "$@"; do
        if jq -e "$cond" "$T/$name.json" >/dev/null; then
            pass "bench $name: $cond"
        else
            fail "bench $name: $cond" "$(head -c 600 "$T/$name.json")"
        fi
    done
}

run_bench rps-http rps --url "http://127.0.0.1:$OUT_HTTP/" -c 4 -d 1s
check_load rps-http '.mode == "rps"' '.tls == false' '.bytes_received > 0'
run_bench rps-tcp rps --url "http://127.0.0.1:$OUT_TCP/" -c 4 -d 1s -t 2
check_load rps-tcp '.threads == 2'
run_bench rps-rate rps --url "http://127.0.0.1:$OUT_HTTP/" -c 4 -d 1s --rate 200
check_load rps-rate '.rate == 200' '.completed <= 202'
run_bench rps-count rps --url "http://127.0.0.1:$OUT_HTTP/" -c 2 -n 100
check_load rps-count '.completed == 100'
run_bench rps-mtls rps --url "https://127.0.0.1:$IN_HTTP/" "${TLS[@]}" -c 4 -d 1s
check_load rps-mtls '.tls == true' '.cipher == "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256"' \
    '.handshakes.full >= 4'
orders_pid=${PROC_PID[orders]}
run_bench handshake-full handshake --url "https://127.0.0.1:$IN_HTTP/" "${TLS[@]}" -c 2 -d 1s \
    --pid "$orders_pid"
check_load handshake-full '.handshakes.resumed == 0' '.handshakes.full >= .completed' \
    ".server_cpu.pid == $orders_pid" '.server_cpu.seconds > 0' \
    '(.server_cpu.us_per_request - .server_cpu.seconds * 1e6 / .requests | fabs) < 1'
run_bench handshake-resumed handshake --url "https://127.0.0.1:$IN_HTTP/" "${TLS[@]}" -c 2 -d 1s --resume
check_load handshake-resumed '.handshakes.resumed > 0'
run_bench bulk bulk --url "http://127.0.0.1:$OUT_HTTP/big" -c 2 -d 1s
check_load bulk '.bytes_received >= 262144 * .completed' '.mb_per_s > 0'
run_bench bulk-up bulk --url "http://127.0.0.1:$OUT_TCP/" -c 2 -d 1s -s 64KiB
check_load bulk-up '.req_size == 65536' '.bytes_sent >= 65536 * .completed'

run_bench idle idle --url "https://127.0.0.1:$IN_TCP/" "${TLS[@]}" -c 50 --hold 1s --pid "$orders_pid"
check_load idle '.completed == 50' '.connections_opened == 50' '.handshakes.resumed >= 1' \
    ".server_rss_kb.pid == $orders_pid" '.server_rss_kb.before > 0' '.server_rss_kb.after > 0'

# The crypto figures: positive rates.
run_bench cipher cipher --bytes 4MiB
if jq -e '.chacha20_poly1305_mb_per_s > 0 and .aes_128_gcm_mb_per_s > 0' "$T/cipher.json" >/dev/null; then
    pass "bench cipher reports MB/s"
else
    fail "bench cipher reports MB/s" "$(head -c 300 "$T/cipher.json")"
fi
run_bench pkops pkops
if jq -e '[.ecdsa_p256_sign, .ecdsa_p256_verify, .ecdh_p256, .ecdh_x25519] | all(.ops_per_s > 0)' \
    "$T/pkops.json" >/dev/null; then
    pass "bench pkops reports ops/s"
else
    fail "bench pkops reports ops/s" "$(head -c 300 "$T/pkops.json")"
fi

# The text report and the progress line.
rc=0
"$BENCH" rps --url "http://127.0.0.1:$OUT_HTTP/" -c 1 -d 1500ms >"$T/text.out" 2>"$T/text.err" || rc=$?
assert_exit 0 "$rc" "bench text report"
assert_contains "$T/text.out" '^latency +p50 ' "text report has the latency line"
assert_contains "$T/text.err" '^\[ +1s\] completed [1-9]' "progress line once a second on stderr"

# Usage errors exit 2 and say what is wrong.
rc=0
"$BENCH" rps --url "https://127.0.0.1:$IN_HTTP/" -d 1s >/dev/null 2>"$T/usage.err" || rc=$?
assert_eq 2 "$rc" "https without client credentials is a usage error"
assert_contains "$T/usage.err" 'needs --cert, --key and --ca' "usage error explains itself"
"$BENCH" --help >"$T/help.out"
assert_contains "$T/help.out" '--rate R' "--help documents the options"

stop_proxy frontend
stop_proxy orders
