#!/usr/bin/env bash
# A proxy out of file descriptors: "orders" (inbound tcp listener, one
# worker, admin endpoint) runs under `prlimit --nofile=LIMIT`, behind a
# "frontend" outbound proxy with no such limit.
#
#   socat -> out (frontend) =mTLS=> in (orders, fd-limited) -> echo app
#
# Checks: with the descriptors that are left used up by idle connections to
# the inbound listener, the connections beyond them are closed at once
# (their clients see EOF, not a hang), counted in /stats as
# outrider_accept_errors_total{reason="emfile"} and logged as "connections
# refused ... out of file descriptors" with what to raise, at most one line
# a second; the worker does not spin meanwhile; once the idle connections
# close, the pair serves again and the proxy exits 0 on SIGTERM.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v prlimit >/dev/null || die "prlimit not found (util-linux)"
make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports ECHO_PORT IN_PORT OUT_PORT ADMIN_PORT
LIMIT=64

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$ADMIN_PORT}
timeouts: {connect: 2s, handshake: 60s, idle: 60s, drain: 5s}
listeners:
$(inbound_listener in "$IN_PORT" "$ECHO_PORT")
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out "$OUT_PORT" "$IN_PORT" "$ORDERS_ID")
EOF

start_echo_app echo "$ECHO_PORT"
# start_proxy, under prlimit (which execs the proxy: the pid is the proxy's).
setsid prlimit --nofile="$LIMIT:$LIMIT" "$OUTRIDER" -c "$T/orders.yaml" \
    >"$T/orders.out" 2>"$T/orders.log" </dev/null &
PROC_PID[orders]=$!
PROC_IS_PROXY[orders]=1
wait_port "$IN_PORT" && wait_port "$ADMIN_PORT" ||
    die "the fd-limited proxy does not listen" "$(excerpt "$T/orders.log")"
ORDERS_PID=${PROC_PID[orders]}
start_proxy frontend "$T/frontend.yaml" "$OUT_PORT"
ORDERS_LOG=$(proxy_log orders)

printf 'ping\n' >"$T/ping"
expect_echo() { # expect_echo WHAT
    local out=$T/echo.$RANDOM
    tcp_exchange "$OUT_PORT" "$T/ping" "$out" || true
    assert_eq "ping" "$(cat "$out")" "$1"
}
expect_echo "the pair serves under the descriptor limit"

cpu_ticks() { # user + system time of the proxy, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$ORDERS_PID/stat"
}

# --- use up the descriptors with idle connections, then go past them
open_now=$(find "/proc/$ORDERS_PID/fd" -mindepth 1 | wc -l)
spare=$((LIMIT - open_now))
extra=20
note "$open_now descriptors open of $LIMIT; opening $((spare + extra)) idle connections"
[ "$spare" -gt 0 ] || die "the proxy already uses all $LIMIT descriptors"
mark_log "$ORDERS_LOG"
clients=()
start_ticks=$(cpu_ticks)
start_ns=$(date +%s%N)
for _ in $(seq 1 $((spare + extra))); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$IN_PORT"
    clients+=("$fd")
done
assert_logged "$ORDERS_LOG" 'connections refused count=[0-9]+ reason="out of file descriptors" emfile=[1-9][0-9]* .*open_files_limit=64: raise the open-file limit \(ulimit -n, or LimitNOFILE= under systemd' \
    "running out of descriptors is logged with the limit and what to raise"

# Each client either waits for a handshake (accepted) or sees EOF (refused).
closed=0
for fd in "${clients[@]}"; do
    rc=0
    read -r -t 0.1 -u "$fd" _ 2>/dev/null || rc=$?
    [ "$rc" -gt 128 ] || closed=$((closed + 1))
done
if [ "$closed" -ge $((extra / 2)) ]; then
    pass "connections over the limit are closed at once ($closed of $((spare + extra)) see EOF)"
else
    fail "connections over the limit are closed at once" "only $closed of $((spare + extra)) see EOF"
fi

# More connections while still at the limit, over two seconds: no spin, and
# at most one log line a second.
for _ in 1 2 3 4; do
    for _ in 1 2 3 4 5; do
        exec {fd}<>"/dev/tcp/127.0.0.1/$IN_PORT"
        clients+=("$fd")
    done
    sleep 0.5
done
took_ms=$(elapsed_ms "$start_ns")
ticks=$(($(cpu_ticks) - start_ticks))
hz=$(getconf CLK_TCK)
if [ $((ticks * 1000 / hz)) -lt $((took_ms / 2)) ]; then
    pass "the worker does not spin at the limit ($ticks ticks of CPU in ${took_ms}ms)"
else
    fail "the worker does not spin at the limit" "$ticks ticks of CPU in ${took_ms}ms"
fi
lines=$(tail -c "+$((LOG_MARK[$ORDERS_LOG] + 1))" "$ORDERS_LOG" | grep -c 'connections refused count=' || true)
if [ "$lines" -ge 1 ] && [ "$lines" -le $((took_ms / 1000 + 2)) ]; then
    pass "the refusals are logged at most once a second ($lines lines in ${took_ms}ms)"
else
    fail "the refusals are logged at most once a second" "$lines lines in ${took_ms}ms"
fi

for fd in "${clients[@]}"; do
    exec {fd}>&-
done

# --- after the idle connections close: counted in /stats, and serving again
refused=""
deadline=$((SECONDS + 10 * SLOW))
while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -s --max-time 5 -o "$T/stats" "http://127.0.0.1:$ADMIN_PORT/stats"; then
        refused=$(sed -n 's/^outrider_accept_errors_total{reason="emfile"} \([0-9]*\)$/\1/p' "$T/stats")
        [ -n "$refused" ] && break
    fi
    sleep 0.2
done
if [ -n "$refused" ] && [ "$refused" -ge "$closed" ] && [ "$refused" -gt 0 ]; then
    pass "/stats counts the refused connections (outrider_accept_errors_total{reason=\"emfile\"} $refused)"
else
    fail "/stats counts the refused connections" "emfile count: '${refused}', clients that saw EOF: $closed"
fi
assert_contains "$T/stats" '^outrider_accept_errors_total\{reason="other"\} 0$' "/stats has no other accept error"

served=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
    tcp_exchange "$OUT_PORT" "$T/ping" "$T/after.out" || true
    if [ "$(cat "$T/after.out")" = ping ]; then
        served=1
        break
    fi
    sleep 0.5
done
assert_eq 1 "$served" "once the idle connections close, the pair serves again"

stop_proxy frontend
stop_proxy orders
