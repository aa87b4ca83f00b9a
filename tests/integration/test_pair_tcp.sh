#!/usr/bin/env bash
# A pair of sidecars on protocol tcp: a plaintext client talks to an outbound
# listener of the "frontend" proxy, which originates mTLS to the inbound
# listener of the "orders" proxy, which forwards plaintext to the app.
#
#   socat client -> out (frontend) =mTLS=> in (orders) -> socat app
#
# Checks: an echo round trip; 100 MiB of random data each way, compared by
# sha256 (upload into an app that hashes what it receives, download from an
# app that sends a file); 200 concurrent short sessions that all get their
# own bytes back; half-close: the client shuts down its write side and still
# gets the whole answer, which the app only sends after seeing EOF (a hash,
# and the 100 MiB file); an upload into an app that reads in bursts, so the
# inbound proxy pauses its TLS reads and replays held records many times.
# Both proxies must then exit 0 on SIGTERM with clean sanitizer logs.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

BIG_MIB=${OUTRIDER_TEST_BIG_MIB:-100}
CONCURRENT=${OUTRIDER_TEST_CONCURRENT:-200}

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend

alloc_ports ECHO_PORT SHA_PORT FILE_PORT LATE_PORT BURST_PORT IN_ECHO IN_SHA IN_FILE IN_LATE IN_BURST \
    OUT_ECHO OUT_SHA OUT_FILE OUT_LATE OUT_BURST

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
listeners:
$(inbound_listener in-echo "$IN_ECHO" "$ECHO_PORT")
$(inbound_listener in-sha "$IN_SHA" "$SHA_PORT")
$(inbound_listener in-file "$IN_FILE" "$FILE_PORT")
$(inbound_listener in-late "$IN_LATE" "$LATE_PORT")
$(inbound_listener in-burst "$IN_BURST" "$BURST_PORT")
EOF

orders_id=$(spiffe_id ns/shop/sa/orders)
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out-echo "$OUT_ECHO" "$IN_ECHO" "$orders_id")
$(outbound_listener out-sha "$OUT_SHA" "$IN_SHA" "$orders_id")
$(outbound_listener out-file "$OUT_FILE" "$IN_FILE" "$orders_id")
$(outbound_listener out-late "$OUT_LATE" "$IN_LATE" "$orders_id")
$(outbound_listener out-burst "$OUT_BURST" "$IN_BURST" "$orders_id")
EOF

head -c "$((BIG_MIB * 1048576))" /dev/urandom >"$T/big"
big_sha=$(sha256sum <"$T/big" | cut -d' ' -f1)

start_echo_app echo "$ECHO_PORT"
start_bg sha-app socat "TCP-LISTEN:$SHA_PORT,bind=127.0.0.1,fork,reuseaddr" EXEC:sha256sum
start_bg file-app socat -U "TCP-LISTEN:$FILE_PORT,bind=127.0.0.1,fork,reuseaddr" "OPEN:$T/big,rdonly"
start_bg late-app socat "TCP-LISTEN:$LATE_PORT,bind=127.0.0.1,fork,reuseaddr" \
    SYSTEM:"cat >/dev/null; cat '$T/big'"
# Reads 128 KiB, sleeps 10 ms, and so on to EOF; hashes what it read. Its
# small receive buffer leaves the backlog to the proxies' watermarks.
start_bg burst-app socat "TCP-LISTEN:$BURST_PORT,bind=127.0.0.1,fork,reuseaddr,rcvbuf=32768" \
    SYSTEM:'{ while n=$(head -c 131072 | tee /dev/fd/3 | wc -c); [ "$n" -gt 0 ]; do sleep 0.01; done; } 3>&1 | sha256sum'
wait_port "$SHA_PORT" || die "sha app does not listen"
wait_port "$LATE_PORT" || die "late app does not listen"
wait_port "$FILE_PORT" || die "file app does not listen"
wait_port "$BURST_PORT" || die "burst app does not listen"

start_proxy orders "$T/orders.yaml" "$IN_ECHO" "$IN_SHA" "$IN_FILE" "$IN_LATE" "$IN_BURST"
start_proxy frontend "$T/frontend.yaml" "$OUT_ECHO" "$OUT_SHA" "$OUT_FILE" "$OUT_LATE" "$OUT_BURST"

assert_contains "$(proxy_log orders)" "listener up name=in-echo mode=inbound protocol=tcp address=127\.0\.0\.1:$IN_ECHO workers=2"
assert_contains "$(proxy_log frontend)" "listener up name=out-echo mode=outbound protocol=tcp address=127\.0\.0\.1:$OUT_ECHO workers=2"

# --- round trip
printf 'hello through the mesh\n' >"$T/hello"
rc=0
tcp_exchange "$OUT_ECHO" "$T/hello" "$T/hello.back" || rc=$?
assert_exit 0 "$rc" "echo round trip client"
assert_eq "hello through the mesh" "$(cat "$T/hello.back")" "echo round trip returns the bytes sent"

# --- half-close: the app answers only after EOF on its input
printf 'abc' >"$T/abc"
start_ns=$(date +%s%N)
rc=0
tcp_exchange "$OUT_SHA" "$T/abc" "$T/abc.sha" 30 || rc=$?
took=$(elapsed_ms "$start_ns")
assert_exit 0 "$rc" "half-close client"
assert_eq "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -" \
    "$(cat "$T/abc.sha")" "after half-closing, the client gets the answer sent after EOF"
if [ "$took" -lt $((10000 * SLOW)) ]; then
    pass "half-close answer arrives promptly (${took}ms)"
else
    fail "half-close answer arrives promptly" "took ${took}ms"
fi

# --- large upload: the app hashes everything it received, answers after EOF
start_ns=$(date +%s%N)
rc=0
tcp_exchange "$OUT_SHA" "$T/big" "$T/big.up.sha" 120 || rc=$?
note "upload of $BIG_MIB MiB took $(elapsed_ms "$start_ns")ms"
assert_exit 0 "$rc" "large upload client"
assert_eq "$big_sha  -" "$(cat "$T/big.up.sha")" "$BIG_MIB MiB upload arrives intact (sha256)"

# --- upload into an app that reads in bursts: reads pause and resume often
head -c 16777216 "$T/big" >"$T/burst"
rc=0
tcp_exchange "$OUT_BURST" "$T/burst" "$T/burst.up.sha" 120 || rc=$?
assert_exit 0 "$rc" "bursty reader upload client"
assert_eq "$(sha256sum <"$T/burst")" "$(cat "$T/burst.up.sha")" \
    "16 MiB upload into an app that reads in bursts arrives intact (sha256)"

# --- large download: the app sends the file and closes
start_ns=$(date +%s%N)
rc=0
timeout 180 socat -u -T 120 "TCP:127.0.0.1:$OUT_FILE" STDOUT >"$T/big.down" 2>>"$T/clients.err" || rc=$?
note "download of $BIG_MIB MiB took $(elapsed_ms "$start_ns")ms"
assert_exit 0 "$rc" "large download client"
assert_eq "$big_sha" "$(sha256sum <"$T/big.down" | cut -d' ' -f1)" \
    "$BIG_MIB MiB download arrives intact (sha256, got $(stat -c %s "$T/big.down") bytes)"
rm -f "$T/big.down"

# --- half-close, then a large answer: the app reads to EOF, then sends the file
start_ns=$(date +%s%N)
rc=0
tcp_exchange "$OUT_LATE" "$T/hello" "$T/big.late" 120 || rc=$?
note "half-close then download of $BIG_MIB MiB took $(elapsed_ms "$start_ns")ms"
assert_exit 0 "$rc" "half-close then large answer client"
assert_eq "$big_sha" "$(sha256sum <"$T/big.late" | cut -d' ' -f1)" \
    "after half-closing, the client gets all $BIG_MIB MiB sent after EOF (got $(stat -c %s "$T/big.late") bytes)"
rm -f "$T/big.late"

# --- many concurrent short sessions
mkdir "$T/conc"
pids=()
for i in $(seq 1 "$CONCURRENT"); do
    printf 'session %d %s\n' "$i" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/conc/$i.in"
    tcp_exchange "$OUT_ECHO" "$T/conc/$i.in" "$T/conc/$i.out" 60 &
    pids+=($!)
done
client_failures=0
for pid in "${pids[@]}"; do
    wait "$pid" || client_failures=$((client_failures + 1))
done
intact=0
for i in $(seq 1 "$CONCURRENT"); do
    cmp -s "$T/conc/$i.in" "$T/conc/$i.out" && intact=$((intact + 1))
done
assert_eq 0 "$client_failures" "$CONCURRENT concurrent clients exit 0"
assert_eq "$CONCURRENT" "$intact" "$CONCURRENT concurrent sessions each get their own bytes back"

# --- the proxies are still serving, and saw no failed handshakes
rc=0
tcp_exchange "$OUT_ECHO" "$T/hello" "$T/hello.again" || rc=$?
assert_eq "hello through the mesh" "$(cat "$T/hello.again")" "round trip after the load"
assert_not_contains "$(proxy_log orders)" "handshake failed|upstream failed"
assert_not_contains "$(proxy_log frontend)" "handshake failed|upstream failed"

stop_proxy frontend
stop_proxy orders
