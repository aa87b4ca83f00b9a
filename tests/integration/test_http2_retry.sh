#!/usr/bin/env bash
# A pooled HTTP/2 connection to the peer that dies retries, on another
# connection, the requests it had not started, and fails the one it had
# (docs/http2.md, "Upstream connections", "Retry").
#
#   curl x5 --(HTTP/1.1 or h2c)--> outbound "frontend" =(mTLS)=> h2_drop_peer.py
#
# The peer (tests/integration/h2_drop_peer.py) presents the SPIFFE ID the
# outbound expects, verifies the sidecar's client certificate and selects
# ALPN outrider.h2 (the hop: the clients speak HTTP/1.1) or h2 (the clients
# speak h2c). Its first connection holds its handshake until the five
# requests of the case are waiting for it, then announces
# SETTINGS_MAX_CONCURRENT_STREAMS = 1 together with its last handshake
# flight: the outbound sends one request (HEADERS) and nghttp2 holds the
# other four. The peer never answers that request and drops the connection:
# a FIN, a RST, GOAWAY with the held stream as last stream ID, or GOAWAY
# with last stream ID 0 (the held stream declared unprocessed). Every later
# connection answers 200 with "served <path>".
#
# Checked from what the peer saw (its log), what each client got and the
# outbound's access log:
# - the first connection received exactly one request; the second was
#   opened only after the drop (so the four were held, then retried);
# - the held request is not sent again (the peer saw its path once) and its
#   client gets 502, logged UC; after GOAWAY(0) it is sent again instead,
#   served once on the new connection, and its client gets 200;
# - each of the other four is served exactly once, on the new connection,
#   and its client gets 200 with its own body; one access-log line each;
# - hop requests carry outrider-orig-proto: HTTP/1.1, h2 ones do not;
# - outrider_upstream_retries_total counts the requests sent again (4; 5
#   after GOAWAY(0));
# - the listener serves a request afterwards, and the proxy exits 0 with
#   no sanitizer report.
# The held stream and the four queued ones differ only in whether HEADERS
# had left, which is what the retry rule turns on; were the queued streams
# failed instead of retried, or the held one retried after a close, the
# peer's log and the clients' statuses would show it.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
PEER=$(dirname "$0")/h2_drop_peer.py
"$PY" -c 'import h2' 2>/dev/null || die "the Python h2 library is missing (python3-h2; scripts/install-deps.sh)"
N=5

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)

# case: MODE-DROP; MODE hop (ALPN outrider.h2, HTTP/1.1 clients) or h2
# (ALPN h2, h2c clients); DROP as h2_drop_peer.py --drop takes it.
CASES=(hop-close hop-reset hop-goaway hop-goaway0 h2-close h2-goaway)
declare -A PEER_PORT=() OUT_PORT=()
listeners=""
for c in "${CASES[@]}"; do
    alloc_ports "PEER_PORT[$c]" "OUT_PORT[$c]"
    listeners+=$(outbound_listener "out-$c" "${OUT_PORT[$c]}" "${PEER_PORT[$c]}" "$ORDERS_ID" http)
    listeners+=$'\n'
    [ "${c%%-*}" = h2 ] && listeners+="    http2: true"$'\n'
done
ALOG=$T/frontend-access.log
alloc_ports ADMIN
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$ADMIN}
access_log: {path: $ALOG, format: json}
listeners:
$listeners
EOF
start_proxy frontend "$T/frontend.yaml" "${OUT_PORT[@]}"

established() { # PORT: established TCP connections to 127.0.0.1:PORT
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}

# get CASE PATH: one GET through the case's listener, with the protocol of
# its mode; the status in $T/CASE.PATH.code, the body in $T/CASE.PATH.body.
get() {
    local c=$1 path=$2 proto=--http1.1 f
    [ "${c%%-*}" = h2 ] && proto=--http2-prior-knowledge
    f=$T/$c.${path//\//_}
    curl -sS "$proto" -m $((20 * SLOW)) -o "$f.body" -w '%{http_code}' \
        "http://127.0.0.1:${OUT_PORT[$c]}$path" >"$f.code" 2>>"$T/clients.err" || true
}
code_of() { cat "$T/$1.${2//\//_}.code" 2>/dev/null || true; }
body_of() { cat "$T/$1.${2//\//_}.body" 2>/dev/null || true; }

# peer_lines LOG KIND [FIELD=VALUE...]: the peer's log lines of KIND with
# every FIELD=VALUE given.
peer_lines() {
    local log=$1 kind=$2
    shift 2
    awk -v kind="$kind" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        $1 != kind { next }
        { for (i = 1; i <= n; i++) { ok = 0; for (j = 2; j <= NF; j++) if ($j == w[i]) ok = 1; if (!ok) next } print }
    ' "$log"
}
count() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; } # LINE NAME: the value of NAME=

run_case() {
    local c=$1 mode=${1%%-*} drop=${1#*-} alpn proto orig log=$T/$1.peer i pids=() paths=()
    note "$c: the first connection to the peer dies ($drop) with one request taken, four held"
    alpn=outrider.h2 proto=HTTP/1.1 orig=HTTP/1.1
    [ "$mode" = h2 ] && alpn=h2 proto=HTTP/2 orig=-
    : >"$log"
    start_bg "peer-$c" "$PY" "$PEER" --port "${PEER_PORT[$c]}" --cert "$T/pki/shop-orders/cert.pem" \
        --key "$T/pki/shop-orders/key.pem" --ca "$T/pki/bundle.pem" --alpn "$alpn" --drop "$drop" \
        --log "$log" --go "$T/$c.go" --settle "$(awk -v s="$SLOW" 'BEGIN { print 0.3 * s }')" \
        --lifetime $((90 * SLOW))
    wait_port "${PEER_PORT[$c]}" || die "$c: the peer does not listen"

    for ((i = 1; i <= N; i++)); do
        paths+=("/$c/req-$i")
        get "$c" "/$c/req-$i" &
        pids+=($!)
    done
    # Every request waits for the first connection, whose handshake the peer
    # holds until the go file exists.
    local deadline=$((SECONDS + 10 * SLOW))
    while [ "$(established "${OUT_PORT[$c]}")" -lt "$N" ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
    wait_for_match "$log" '^accept conn=1$' $((10 * SLOW)) || fail "$c: the outbound connects to the peer"
    sleep "$SLOW" # the proxy has read the requests
    touch "$T/$c.go"
    for i in "${pids[@]}"; do wait "$i" || true; done

    # The first connection: one request, then the drop, then the second connection.
    local conn1 held held_path
    assert_eq "" "$(peer_lines "$log" error)" "$c: the peer saw nothing unexpected"
    assert_eq "alpn=$alpn client=$FRONTEND_ID" "$(peer_lines "$log" tls conn=1 | cut -d' ' -f3-)" \
        "$c: the peer selected $alpn and verified the sidecar's certificate"
    conn1=$(peer_lines "$log" headers conn=1)
    assert_eq 1 "$(count "$conn1")" "$c: the first connection got exactly one request (the others were held)"
    held=$(field "$conn1" stream)
    held_path=$(field "$conn1" path)
    [ -n "$held_path" ] || die "$c: no request on the first connection" "$(excerpt "$log")"
    note "$c: held stream $held, $held_path"
    local order
    order=$(awk '$1 == "drop" || $1 == "accept" { printf "%s%s ", $1, ($2 == "conn=1" && $1 == "drop") ? "" : substr($2, 6) }' "$log")
    assert_eq "accept1 drop accept2 " "$order" \
        "$c: one connection before the drop, the second opened after it"

    # The access log's writer thread writes the lines within a flush period.
    deadline=$((SECONDS + 5 * SLOW))
    while [ "$(jq -r --arg l "out-$c" 'select(.listener == $l) | .path' "$ALOG" | wc -l)" -lt "$N" ] &&
        [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done

    # What each request got, and what the peer served.
    local p seen served code body line want_code want_flags
    for p in "${paths[@]}"; do
        seen=$(peer_lines "$log" headers "path=$p")
        served=$(peer_lines "$log" served "path=$p")
        code=$(code_of "$c" "$p")
        body=$(body_of "$c" "$p")
        if [ "$p" = "$held_path" ] && [ "$drop" != goaway0 ]; then
            assert_eq 1 "$(count "$seen")" "$c: $p (started, then the connection died) is not sent again"
            assert_eq 0 "$(count "$served")" "$c: $p is not served"
            assert_eq 502 "$code" "$c: $p: its client gets 502"
            want_code=502 want_flags=UC
        else
            if [ "$p" = "$held_path" ]; then
                assert_eq 2 "$(count "$seen")" "$c: $p (above the GOAWAY's last stream ID) is sent again"
            else
                assert_eq 1 "$(count "$seen")" "$c: $p (held) is sent once"
            fi
            assert_eq 1 "$(count "$served")" "$c: $p is served exactly once"
            if [ "$(count "$served")" = 1 ] && [ "$(field "$served" conn)" != 1 ]; then
                pass "$c: $p is served on a later connection ($(field "$served" conn))"
            else
                fail "$c: $p is served on a later connection" "$served"
            fi
            assert_eq 200 "$code" "$c: $p: its client gets 200"
            assert_eq "served $p" "$body" "$c: $p: its client gets its own body"
            want_code=200 want_flags=-
        fi
        assert_eq "$(count "$seen")" "$(count "$(peer_lines "$log" headers "path=$p" orig_proto="$orig")")" \
            "$c: $p: outrider-orig-proto ${orig/-/absent}"
        line=$(jq -r --arg l "out-$c" --arg p "$p" \
            'select(.listener == $l and .path == $p) | "\(.protocol) \(.status) \(.response_flags)"' "$ALOG")
        assert_eq "$proto $want_code $want_flags" "$line" "$c: $p: one access-log line, $want_code $want_flags"
    done
    assert_eq "$N" "$(jq -r --arg l "out-$c" 'select(.listener == $l) | .path' "$ALOG" | wc -l)" \
        "$c: $N access-log lines"
    assert_eq 2 "$(count "$(peer_lines "$log" accept)")" "$c: two connections in all"
    local retries=$((N - 1))
    [ "$drop" = goaway0 ] && retries=$N
    curl -sS -m $((5 * SLOW)) "http://127.0.0.1:$ADMIN/stats" >"$T/$c.stats" 2>>"$T/clients.err" || true
    assert_eq "$retries" "$(awk -v s="outrider_upstream_retries_total{listener=\"out-$c\"}" \
        '$1 == s { print $2 }' "$T/$c.stats")" "$c: outrider_upstream_retries_total counts the $retries requests sent again"

    # The listener goes on serving.
    get "$c" "/$c/after"
    assert_eq "200 served /$c/after" "$(code_of "$c" "/$c/after") $(body_of "$c" "/$c/after")" \
        "$c: a later request gets 200 from the peer"
    stop_bg "peer-$c"
}

for c in "${CASES[@]}"; do
    run_case "$c"
done

stop_proxy frontend
