#!/usr/bin/env bash
# HTTP/2 upstream connections shared across downstream connections
# (docs/http2.md, "Upstream connections").
#
#   h2load / curl --(h2c)--> outbound "frontend" =(h2, mTLS)=> inbound
#   "orders" --(h2c)--> nginx (the app)
#
# Both proxies run one worker, so each listener has one pool.
#
# Checks: 64 concurrent HTTP/2 client connections (h2load, a bounded
# number of requests) all get 200 while the mTLS connections from the
# outbound to the inbound stay at most the pool cap (8) -- not one per
# client -- and so do the h2c connections to the app, which serves
# exactly the number of requests sent although it ends each connection
# with GOAWAY after 1000 requests (nginx keepalive_requests); a client that takes no response
# byte on 20 large downloads (more than the upstream connection window
# holds) does not stall another client whose requests share the same
# upstream connection; the app going away mid-run (killed, then started
# again) and the inbound sidecar restarting (its mTLS connections gone) do
# not keep new requests from succeeding; the proxies exit clean.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
command -v h2load >/dev/null || die "h2load not found (nghttp2-client; scripts/install-deps.sh)"
command -v nginx >/dev/null || die "nginx not found (scripts/install-deps.sh installs it)"
ABUSE=$(dirname "$0")/h2_abuse.py
CLIENTS=64
REQUESTS=12800

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports APP IN OUT

mkdir -p "$T/htdocs" "$T/app/tmp"
printf 'hello pool\n' >"$T/htdocs/hello.txt"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/htdocs/big.bin"
cat >"$T/app/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $T/app/nginx.pid;
error_log $T/app.err info;
events { worker_connections 1024; }
http {
    log_format pool '\$connection \$status \$request_uri';
    access_log $T/app.access pool;
    client_body_temp_path $T/app/tmp/body;
    proxy_temp_path $T/app/tmp/proxy;
    fastcgi_temp_path $T/app/tmp/fastcgi;
    uwsgi_temp_path $T/app/tmp/uwsgi;
    scgi_temp_path $T/app/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$APP http2;
        root $T/htdocs;
    }
}
EOF
start_app() {
    : >"$T/app.access"
    start_bg app nginx -p "$T/app" -c "$T/app/nginx.conf"
    wait_port "$APP" || die "nginx does not listen on $APP"
}
start_app

IN_ALOG=$T/orders-access.log
OUT_ALOG=$T/frontend-access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
access_log: {path: $IN_ALOG, format: json}
listeners:
$(inbound_listener in-h2 "$IN" "$APP" http)
    http2: true
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
access_log: {path: $OUT_ALOG, format: json}
listeners:
$(outbound_listener out-h2 "$OUT" "$IN" "$ORDERS_ID" http)
    http2: true
EOF
start_proxy orders "$T/orders.yaml" "$IN"
start_proxy frontend "$T/frontend.yaml" "$OUT"

established() { # PORT: established TCP connections to 127.0.0.1:PORT
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}
h2c_status() { # PATH: the status of one HTTP/2 GET through the pair
    curl -sS --http2-prior-knowledge -m $((10 * SLOW)) -o "$T/body" -w '%{http_code}' \
        "http://127.0.0.1:$OUT$1" 2>>"$T/clients.err" || true
}
statuses() { # N PATH: N sequential GETs; prints the distinct statuses with counts
    local i
    for ((i = 0; i < $1; i++)); do h2c_status "$2"; echo; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' '
}

note "$CLIENTS client connections share the upstream connections"
start_bg load timeout $((60 * SLOW)) h2load -c "$CLIENTS" -m 1 -n "$REQUESTS" \
    "http://127.0.0.1:$OUT/hello.txt"
max_mtls=0 max_app=0 samples=0
deadline=$((SECONDS + 60 * SLOW))
while is_running load && [ "$SECONDS" -lt "$deadline" ]; do
    m=$(established "$IN") a=$(established "$APP")
    [ "$m" -gt "$max_mtls" ] && max_mtls=$m
    [ "$a" -gt "$max_app" ] && max_app=$a
    samples=$((samples + 1))
    sleep 0.1
done
wait "${PROC_PID[load]}" 2>/dev/null || true
unset "PROC_PID[load]"
assert_contains "$T/load.out" "requests: $REQUESTS total, $REQUESTS started, $REQUESTS done, $REQUESTS succeeded" \
    "h2load: all $REQUESTS requests over $CLIENTS connections succeed"
assert_contains "$T/load.out" "status codes: $REQUESTS 2xx" "... all of them 200"
note "established during the load ($samples samples): mTLS to the inbound max $max_mtls, h2c to the app max $max_app"
if [ "$max_mtls" -ge 1 ] && [ "$max_mtls" -le 8 ]; then
    pass "mTLS connections outbound -> inbound stay within the pool cap: $max_mtls"
else
    fail "mTLS connections outbound -> inbound stay within the pool cap" "max $max_mtls"
fi
if [ "$max_app" -ge 1 ] && [ "$max_app" -le 8 ]; then
    pass "h2c connections inbound -> app stay within the pool cap: $max_app"
else
    fail "h2c connections inbound -> app stay within the pool cap" "max $max_app"
fi
served=$(grep -c ' 200 /hello.txt$' "$T/app.access" || true)
assert_eq "$REQUESTS" "$served" "the app served exactly the $REQUESTS requests sent"
conns=$(awk '{print $1}' "$T/app.access" | sort -u | wc -l)
if [ "$conns" -ge $((REQUESTS / 1000)) ]; then
    pass "... over $conns h2c connections in turn: each GOAWAY after 1000 requests was replaced"
else
    fail "... over at least $((REQUESTS / 1000)) h2c connections in turn" "$conns"
fi

note "a client that reads nothing does not stall the shared connection"
start_bg stall "$PY" "$ABUSE" "$OUT" stall /big.bin 20 $((8 * SLOW))
sleep 1
assert_eq "200x10" "$(statuses 10 /hello.txt)" "another client's requests get 200 while 20 downloads stall"
assert_eq 200 "$(h2c_status /big.bin)" "... and its own 2 MiB download completes"
assert_eq "$(sha256sum <"$T/htdocs/big.bin")" "$(sha256sum <"$T/body")" "... whole"
assert_eq 1 "$(established "$IN")" "... over the same single mTLS connection"
deadline=$((SECONDS + 30 * SLOW))
while is_running stall && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
assert_contains "$T/stall.out" '^heads=20 data=0 other=none$' \
    "the stalled client got its 20 response heads, no byte, no reset"

note "the app goes away mid-run"
start_bg load2 timeout $((60 * SLOW)) h2load -c 8 -m 4 -D 3 "http://127.0.0.1:$OUT/hello.txt"
sleep 1
stop_bg app KILL
sleep 0.5
start_app
wait "${PROC_PID[load2]}" 2>/dev/null || true
unset "PROC_PID[load2]"
assert_eq "200x20" "$(statuses 20 /hello.txt)" "after the app is back, new requests get 200"

note "the inbound sidecar restarts"
stop_proxy orders
: >"$IN_ALOG"
start_proxy orders "$T/orders.yaml" "$IN"
assert_eq "200x20" "$(statuses 20 /hello.txt)" "new requests get 200 over a new mTLS connection"
assert_eq 1 "$(established "$IN")" "... one of them"

stop_proxy frontend
stop_proxy orders
stop_bg app
