#!/usr/bin/env bash
# Failure handling of tcp listeners, with three proxies: "frontend"
# (outbound listeners), "orders" (inbound listeners, timeouts.handshake: 1s)
# and "limited" (one inbound listener, limits.max_connections: 2).
#
# Checks:
# - an upstream with nothing listening, behind an inbound and behind an
#   outbound listener: the client (socat, and curl which does not half-close
#   first) sees a clean EOF with no data, the proxy
#   logs "upstream failed ... upstream=<host:port>", and once an app listens
#   there the same listener serves;
# - a client that connects to an inbound listener and sends nothing is cut
#   after about 1s, logged as reason="handshake timeout";
# - with max_connections 2 and two connections held open, a third is refused
#   (no data, logged "max_connections reached"); after one closes, a new one
#   is served;
# - resets in the middle of a stream (a plaintext client, a TLS client, and
#   an app that resets) leave the proxies serving new connections;
# - all three proxies exit 0 on SIGTERM, with clean sanitizer logs.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)

alloc_ports ECHO_PORT DEAD_APP_PORT RST_APP_PORT NOPEER_PORT \
    IN_ECHO IN_DEAD IN_RST IN_LIMITED OUT_ECHO OUT_DEAD OUT_NOPEER OUT_RST OUT_LIMITED

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
timeouts: {connect: 2s, handshake: 1s, idle: 60s, drain: 5s}
listeners:
$(inbound_listener in-echo "$IN_ECHO" "$ECHO_PORT")
$(inbound_listener in-dead "$IN_DEAD" "$DEAD_APP_PORT")
$(inbound_listener in-rst "$IN_RST" "$RST_APP_PORT")
EOF

write_config "$T/limited.yaml" orders "$T/pki/shop-orders" <<EOF
limits: {max_connections: 2}
listeners:
$(inbound_listener in-limited "$IN_LIMITED" "$ECHO_PORT")
EOF

write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out-echo "$OUT_ECHO" "$IN_ECHO" "$ORDERS_ID")
$(outbound_listener out-dead "$OUT_DEAD" "$IN_DEAD" "$ORDERS_ID")
$(outbound_listener out-nopeer "$OUT_NOPEER" "$NOPEER_PORT" "$ORDERS_ID")
$(outbound_listener out-rst "$OUT_RST" "$IN_RST" "$ORDERS_ID")
$(outbound_listener out-limited "$OUT_LIMITED" "$IN_LIMITED" "$ORDERS_ID")
EOF

start_echo_app echo "$ECHO_PORT"
start_proxy orders "$T/orders.yaml" "$IN_ECHO" "$IN_DEAD" "$IN_RST"
start_proxy limited "$T/limited.yaml" "$IN_LIMITED"
start_proxy frontend "$T/frontend.yaml" "$OUT_ECHO" "$OUT_DEAD" "$OUT_NOPEER" "$OUT_RST" "$OUT_LIMITED"
ORDERS_LOG=$(proxy_log orders)
LIMITED_LOG=$(proxy_log limited)
FRONTEND_LOG=$(proxy_log frontend)

printf 'ping\n' >"$T/ping"

# expect_echo PORT WHAT: a ping through PORT comes back.
expect_echo() {
    local rc=0 out=$T/echo.$RANDOM
    tcp_exchange "$1" "$T/ping" "$out" || rc=$?
    assert_eq "ping" "$(cat "$out")" "$2"
}

# expect_nothing PORT NAME: the client sees a clean EOF and no data.
expect_nothing() {
    local rc=0 out=$T/$2.out
    tcp_exchange "$1" "$T/ping" "$out" || rc=$?
    assert_exit 0 "$rc" "$2: the client connection ends cleanly"
    assert_empty "$out" "$2: the client gets no data"
}

expect_echo "$OUT_ECHO" "the pair serves"

# --- upstream unreachable
mark_log "$ORDERS_LOG"
expect_nothing "$OUT_DEAD" "app down behind inbound"
assert_logged "$ORDERS_LOG" "upstream failed listener=in-dead upstream=127\.0\.0\.1:$DEAD_APP_PORT reason=\"[^\"]+\"" \
    "app down behind inbound: upstream failed is logged"
assert_curl_eof "$OUT_DEAD" "app down behind inbound"

mark_log "$FRONTEND_LOG"
expect_nothing "$OUT_NOPEER" "peer down behind outbound"
assert_logged "$FRONTEND_LOG" "upstream failed listener=out-nopeer upstream=127\.0\.0\.1:$NOPEER_PORT reason=\"[^\"]+\"" \
    "peer down behind outbound: upstream failed is logged"
assert_curl_eof "$OUT_NOPEER" "peer down behind outbound"

start_echo_app late-app "$DEAD_APP_PORT"
expect_echo "$OUT_DEAD" "once the app is up, the same listener serves"

# --- a client that connects and sends nothing meets timeouts.handshake (1s)
mark_log "$ORDERS_LOG"
start_ns=$(date +%s%N)
rc=0
timeout 30 socat -u "TCP:127.0.0.1:$IN_ECHO" STDOUT >"$T/silent.out" 2>>"$T/clients.err" || rc=$?
took=$(elapsed_ms "$start_ns")
if [ "$rc" = 124 ]; then
    fail "a silent client is cut off" "still connected after 30s"
elif [ "$took" -ge 900 ] && [ "$took" -le $((3000 * SLOW)) ]; then
    pass "a silent client is cut off after the 1s handshake timeout (${took}ms)"
else
    fail "a silent client is cut off after the 1s handshake timeout" "cut after ${took}ms"
fi
assert_empty "$T/silent.out" "the silent client gets no data"
assert_logged "$ORDERS_LOG" "handshake failed listener=in-echo peer=127\.0\.0\.1:[0-9]+ reason=\"handshake timeout\"" \
    "the handshake timeout is logged"

# --- limits.max_connections: 2
hold_connection() {
    start_bg "$1" bash -c "(printf '$1\n'; sleep 600) | socat -t 5 - TCP:127.0.0.1:$OUT_LIMITED"
    wait_for_match "$T/$1.out" "^$1\$" $((10 * SLOW)) || die "held connection $1 does not get its echo" \
        "$(cat "$T/$1.err" 2>/dev/null)"
}
hold_connection held-1
hold_connection held-2
pass "two connections are held through the limited proxy"

mark_log "$LIMITED_LOG"
expect_nothing "$OUT_LIMITED" "third connection over max_connections"
assert_logged "$LIMITED_LOG" "connection refused listener=in-limited peer=127\.0\.0\.1:[0-9]+ reason=\"max_connections reached\"" \
    "the third connection is logged as refused"
mark_log "$LIMITED_LOG"
assert_curl_eof "$OUT_LIMITED" "third connection over max_connections"
assert_logged "$LIMITED_LOG" "max_connections reached" "the curl connection is logged as refused"
assert_contains "$T/held-1.out" "^held-1$" "the held connections are untouched"

stop_bg held-1
served=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
    tcp_exchange "$OUT_LIMITED" "$T/ping" "$T/after-limit.out" || true
    if [ "$(cat "$T/after-limit.out")" = ping ]; then
        served=1
        break
    fi
    sleep 0.5
done
assert_eq 1 "$served" "after one held connection closes, a new one is served"
stop_bg held-2

# --- resets in the middle of a stream
# A plaintext client streaming through the pair resets (SO_LINGER 0).
start_bg rst-client bash -c "head -c 500M /dev/zero | socat - TCP:127.0.0.1:$OUT_ECHO,linger=0 >/dev/null"
sleep 1
stop_bg rst-client

# A TLS client streaming into an inbound listener is killed outright.
start_bg rst-tls bash -c "head -c 500M /dev/zero | openssl s_client -quiet -connect 127.0.0.1:$IN_ECHO \
    -cert '$T/pki/web-frontend/cert.pem' -key '$T/pki/web-frontend/key.pem' -CAfile '$T/pki/bundle.pem' >/dev/null"
sleep 1
stop_bg rst-tls KILL

# An app that reads a little, then resets.
start_bg rst-app socat "TCP-LISTEN:$RST_APP_PORT,bind=127.0.0.1,fork,reuseaddr,linger=0" \
    SYSTEM:'head -c 1000 >/dev/null'
wait_port "$RST_APP_PORT" || die "reset app does not listen"
rc=0
head -c 20M /dev/zero >"$T/zeros"
tcp_exchange "$OUT_RST" "$T/zeros" "$T/rst-app.out" 20 || rc=$?
if [ "$rc" = 124 ]; then
    fail "a client of an app that resets is not left hanging" "still connected after 20s"
else
    pass "a client of an app that resets sees its connection end (status $rc)"
fi

for name in orders limited frontend; do
    if is_running "$name"; then pass "proxy $name survives the resets"; else fail "proxy $name survives the resets"; fi
done
expect_echo "$OUT_ECHO" "the pair serves after the resets"
expect_echo "$OUT_DEAD" "the other listener serves after the resets"

stop_proxy frontend
stop_proxy limited
stop_proxy orders
