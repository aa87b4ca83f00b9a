# shellcheck shell=bash
# Harness for the integration tests: sourced by tests/integration/test_*.sh.
#
# It gives each test a temp dir under $OUTRIDER_TEST_TMP, free loopback
# ports, background processes that are always cleaned up, a dev PKI made with
# config-examples/make-dev-pki.sh, proxy configs, and assertions that count
# passes and failures. Proxies are stopped with SIGTERM and must exit 0 with
# no sanitizer report in their log; that is how ASan/LSan findings surface.
# The test's exit status is 0 only when nothing failed; the last line is
# "N passed, M failed".
#
# The programs start as root here and switch to the default run_as user,
# 65532:65532, once started (docs/security.md, "Sandbox"). The per-test dir
# stands for the volume a pod gives the sidecar: it belongs to that user, as
# do the PKIs make_pki writes (an agent writes identity files owned by the
# user it runs as), so certificate rotation, access-log reopening and agent
# and CA writes all work after the switch.
#
# Environment (set by ctest; defaults suit a manual run from the source tree):
#   OUTRIDER_SRC       source root
#   OUTRIDER_BIN       directory holding the outrider binary
#   OUTRIDER_TEST_TMP  parent of the per-test temp dirs
#   KEEP_TMP=1         keep the temp dir even when the test passed

set -Eeuo pipefail

OUTRIDER_SRC=${OUTRIDER_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
OUTRIDER_BIN=${OUTRIDER_BIN:-$OUTRIDER_SRC/build/bin}
OUTRIDER_TEST_TMP=${OUTRIDER_TEST_TMP:-$OUTRIDER_SRC/build/test-tmp}
OUTRIDER=$OUTRIDER_BIN/outrider
MAKE_PKI=$OUTRIDER_SRC/config-examples/make-dev-pki.sh
TRUST_DOMAIN=cluster.local

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LC_ALL=C

TEST_NAME=$(basename "$0" .sh)
mkdir -p "$OUTRIDER_TEST_TMP"
T=$(mktemp -d "$OUTRIDER_TEST_TMP/$TEST_NAME.XXXXXX")
SANDBOX_UID=65532
SANDBOX_GID=65532
# give_to_sandbox PATH...: owned by the run_as user (when the test is root).
give_to_sandbox() {
    [ "$(id -u)" -ne 0 ] || chown -R "$SANDBOX_UID:$SANDBOX_GID" "$@"
}
# as_sandbox_user CMD...: runs CMD as the run_as user (when the test is root).
as_sandbox_user() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid="$SANDBOX_UID" --regid="$SANDBOX_GID" --clear-groups -- "$@"
    else
        "$@"
    fi
}
give_to_sandbox "$T"

PASSED=0
FAILED=0
declare -A PROC_PID=()   # name -> pid of a background process (its own process group)
declare -A PROC_IS_PROXY=()
PORTS_HELD=()
PORT_LOCK_DIR=${TMPDIR:-/tmp}/outrider-test-ports

# Sanitizer builds are several times slower; waits scale with this.
SLOW=1
if [ -x "$OUTRIDER" ] && ldd "$OUTRIDER" 2>/dev/null | grep -q 'libasan'; then
    SLOW=3
fi

note() { printf '# %s\n' "$*"; }

# ---------------------------------------------------------------- assertions

pass() {
    PASSED=$((PASSED + 1))
    printf 'ok - %s\n' "$1"
}

fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL - %s\n' "$1"
    shift
    local line
    for line in "$@"; do printf '    %s\n' "$line"; done
}

# Ends the test at once: for a failure that makes the remaining checks moot.
die() {
    fail "$@"
    exit 1
}

assert_eq() {
    local expected=$1 actual=$2 what=$3
    if [ "$expected" = "$actual" ]; then
        pass "$what"
    else
        fail "$what" "expected: $(printf '%q' "$expected")" "     got: $(printf '%q' "$actual")"
    fi
}

# The last few lines of a file, indented, for failure messages.
excerpt() {
    if [ -s "$1" ]; then
        tail -n "${2:-8}" "$1" | cut -c1-300
    else
        echo "($1 is empty or missing)"
    fi
}

# assert_contains FILE ERE [WHAT]: the file has a line matching ERE, waiting
# a few seconds for it to appear (logs are written asynchronously).
assert_contains() {
    local file=$1 pattern=$2 what=${3:-"$(basename "$1") has /$2/"}
    if wait_for_match "$file" "$pattern" "$((5 * SLOW))"; then
        pass "$what"
    else
        local lines
        mapfile -t lines < <(excerpt "$file")
        fail "$what" "expected a line matching: $pattern" "in $file, which ends with:" "${lines[@]}"
    fi
}

assert_not_contains() {
    local file=$1 pattern=$2 what=${3:-"$(basename "$1") has no /$2/"}
    local seen
    if seen=$(grep -E -m1 -- "$pattern" "$file" 2>/dev/null); then
        fail "$what" "expected no line matching: $pattern" "     got: $seen"
    else
        pass "$what"
    fi
}

# assert_empty FILE WHAT: the file exists and holds no bytes.
assert_empty() {
    local file=$1 what=$2
    if [ -f "$file" ] && [ ! -s "$file" ]; then
        pass "$what"
    else
        local lines
        mapfile -t lines < <(head -c 600 "$file" 2>/dev/null | head -n 5)
        fail "$what" "expected $file to be empty; it holds $(stat -c %s "$file" 2>/dev/null || echo no) bytes:" "${lines[@]}"
    fi
}

# assert_exit EXPECTED ACTUAL WHAT
assert_exit() {
    assert_eq "$1" "$2" "$3 (exit status)"
}

wait_for_match() {
    local file=$1 pattern=$2 seconds=$3
    local deadline=$((SECONDS + seconds))
    while :; do
        grep -E -q -- "$pattern" "$file" 2>/dev/null && return 0
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# log_settled FILE: waits (at most 5 s x SLOW) until FILE has not grown for
# 300 ms. The access log's writer thread flushes every 100 ms, so a count of
# its lines taken right after the clients end can miss the last ones.
log_settled() {
    local file=$1 deadline=$((SECONDS + 5 * SLOW)) size last=-1 still=0
    while [ "$SECONDS" -lt "$deadline" ]; do
        size=$(stat -c %s "$file" 2>/dev/null || echo 0)
        if [ "$size" = "$last" ]; then
            still=$((still + 1))
            [ "$still" -ge 3 ] && return 0
        else
            still=0
        fi
        last=$size
        sleep 0.1
    done
}

# Log marks: `mark_log FILE` remembers how long FILE is now; `assert_logged
# FILE ERE` then looks only at what was written after the mark.
declare -A LOG_MARK=()
mark_log() {
    LOG_MARK[$1]=$(stat -c %s "$1" 2>/dev/null || echo 0)
}

assert_logged() {
    local file=$1 pattern=$2 what=${3:-"log has /$2/"}
    local since=$T/.since.$RANDOM
    local deadline=$((SECONDS + 5 * SLOW))
    while :; do
        tail -c "+$((${LOG_MARK[$file]:-0} + 1))" "$file" >"$since" 2>/dev/null || : >"$since"
        if grep -E -q -- "$pattern" "$since"; then
            pass "$what"
            rm -f "$since"
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.1
    done
    local lines
    mapfile -t lines < <(excerpt "$since")
    fail "$what" "expected a new line matching: $pattern" "new lines in $(basename "$file"):" "${lines[@]}"
    rm -f "$since"
}

# ---------------------------------------------------------------- ports

# alloc_ports VAR...: sets each VAR to a TCP port that is free on this host,
# below the ephemeral range (so no outgoing connection takes it meanwhile)
# and reserved against concurrent test runs by a lock directory.
alloc_ports() {
    local var lo _hi span port _try owner
    read -r lo _hi </proc/sys/net/ipv4/ip_local_port_range
    span=$((lo - 20000))
    [ "$span" -ge 1000 ] || die "ephemeral port range starts at $lo; need room above 20000"
    mkdir -p "$PORT_LOCK_DIR"
    for var in "$@"; do
        for _try in $(seq 1 500); do
            port=$((20000 + (RANDOM * 32768 + RANDOM) % span))
            if ! mkdir "$PORT_LOCK_DIR/$port" 2>/dev/null; then
                owner=$(cat "$PORT_LOCK_DIR/$port/owner" 2>/dev/null || echo 0)
                if [ "$owner" != 0 ] && ! kill -0 "$owner" 2>/dev/null; then
                    rm -rf "${PORT_LOCK_DIR:?}/$port"
                fi
                continue
            fi
            echo $$ >"$PORT_LOCK_DIR/$port/owner"
            if [ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then
                rm -rf "${PORT_LOCK_DIR:?}/$port"
                continue
            fi
            PORTS_HELD+=("$port")
            printf -v "$var" '%s' "$port"
            continue 2
        done
        die "no free port found for $var"
    done
}

release_ports() {
    local port
    for port in "${PORTS_HELD[@]}"; do
        rm -rf "${PORT_LOCK_DIR:?}/$port"
    done
    PORTS_HELD=()
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT. It
# asks the kernel (ss) rather than connecting, so a TLS listener logs no
# aborted handshake for the probe.
wait_port() {
    local port=$1 seconds=${2:-$((10 * SLOW))}
    local deadline=$((SECONDS + seconds))
    until [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- processes

# start_bg NAME CMD...: runs CMD in the background in its own process group,
# output in $T/NAME.out and $T/NAME.err.
start_bg() {
    local name=$1
    shift
    [ -z "${PROC_PID[$name]:-}" ] || die "process name $name used twice"
    setsid "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
    PROC_PID[$name]=$!
}

# start_proxy NAME CONFIG [PORT...]: runs outrider -c CONFIG; stderr (the
# diagnostic log) goes to $T/NAME.log, stdout to $T/NAME.out. Waits until
# every PORT listens; ends the test if the proxy exits first.
start_proxy() {
    local name=$1 config=$2
    shift 2
    [ -x "$OUTRIDER" ] || die "no proxy binary at $OUTRIDER"
    [ -z "${PROC_PID[$name]:-}" ] || die "process name $name used twice"
    setsid "$OUTRIDER" -c "$config" >"$T/$name.out" 2>"$T/$name.log" </dev/null &
    PROC_PID[$name]=$!
    PROC_IS_PROXY[$name]=1
    local port
    for port in "$@"; do
        local deadline=$((SECONDS + 15 * SLOW))
        until [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; do
            if ! kill -0 "${PROC_PID[$name]}" 2>/dev/null; then
                local rc=0 lines
                wait "${PROC_PID[$name]}" || rc=$?
                unset "PROC_PID[$name]"
                mapfile -t lines < <(excerpt "$T/$name.log" 20)
                die "proxy $name exited with status $rc before listening on $port" "${lines[@]}"
            fi
            [ "$SECONDS" -lt "$deadline" ] || die "proxy $name does not listen on $port"
            sleep 0.05
        done
    done
}

proxy_log() { echo "$T/$1.log"; }
is_running() { [ -n "${PROC_PID[$1]:-}" ] && kill -0 "${PROC_PID[$1]}" 2>/dev/null; }

# stop_proxy NAME: SIGTERM, then the proxy must exit 0 within the drain
# time, with no sanitizer report in its log.
stop_proxy() {
    local name=$1 pid=${PROC_PID[$1]:-}
    [ -n "$pid" ] || return 0
    local rc=0 deadline=$((SECONDS + 15 * SLOW)) early=0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            fail "proxy $name exits after SIGTERM" "still running after $((15 * SLOW))s; killed"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    else
        early=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
    unset "PROC_PID[$name]"
    if [ "$early" = 1 ]; then
        local lines
        mapfile -t lines < <(excerpt "$T/$name.log" 20)
        fail "proxy $name was still running when stopped" "it had exited with status $rc" "${lines[@]}"
    else
        assert_eq 0 "$rc" "proxy $name exits 0 after SIGTERM"
    fi
    check_sanitizers "$T/$name.log" "$name"
}

check_sanitizers() {
    local file=$1 name=$2 lines
    if grep -E -q 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|LeakSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer' "$file" 2>/dev/null; then
        mapfile -t lines < <(grep -E -A12 'Sanitizer|runtime error:' "$file" | head -n 40 | cut -c1-300)
        fail "proxy $name: no sanitizer report" "${lines[@]}"
    fi
}

# stop_bg NAME [SIGNAL]: ends a background helper (its whole process group)
# with SIGNAL (default TERM), then KILL if it lingers.
stop_bg() {
    local name=$1 sig=${2:-TERM} pid=${PROC_PID[$1]:-}
    [ -n "$pid" ] || return 0
    {
        kill "-$sig" -- "-$pid" || kill "-$sig" "$pid" || true
        local deadline=$((SECONDS + 5))
        while kill -0 "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        kill -KILL -- "-$pid" || true
        wait "$pid" || true
    } 2>/dev/null
    unset "PROC_PID[$name]"
}

on_error() {
    [ "$BASHPID" = "$$" ] || return 0
    fail "unexpected error at ${BASH_SOURCE[1]##*/}:$1: $2 (status $3)"
}

# The tail of every log in $T, after a failure: the files are gone when CI
# ends, and they tell why.
show_logs() {
    local f
    [ "$FAILED" -gt 0 ] || return 0
    for f in "$T"/*.log; do
        [ -s "$f" ] || continue
        echo "# --- last lines of ${f##*/}"
        tail -n 20 "$f" | cut -c1-400 | sed 's/^/#   /'
    done
}

on_exit() {
    local status=$? name
    trap - ERR
    set +e
    for name in "${!PROC_PID[@]}"; do
        [ -n "${PROC_IS_PROXY[$name]:-}" ] && stop_proxy "$name"
    done
    for name in "${!PROC_PID[@]}"; do
        stop_bg "$name"
    done
    release_ports
    if [ "$status" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        fail "test script exited with status $status"
    fi
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -eq 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T"
    else
        echo "# files kept in $T"
        show_logs
    fi
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

trap 'on_error $LINENO "$BASH_COMMAND" $?' ERR
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- PKI and configs

# make_pki DIR [TRUST_DOMAIN] [DIR=]ID_PATH...
make_pki() {
    local dir=$1
    shift
    "$MAKE_PKI" "$dir" "$@"
    give_to_sandbox "$dir"
}

# The SPIFFE ID of an "ns/<ns>/sa/<sa>" path in the test trust domain.
spiffe_id() { echo "spiffe://$TRUST_DOMAIN/$1"; }

# write_config FILE SERVICE IDENTITY_DIR: a proxy config whose identity is
# the cert.pem/key.pem/bundle.pem in IDENTITY_DIR. The rest (listeners and
# any of timeouts/limits/workers/rbac) is read from stdin; short test
# timeouts, 2 workers and rbac default allow are added when stdin sets none.
write_config() {
    local file=$1 service=$2 id_dir=$3 rest
    rest=$(cat)
    {
        echo "service: $service"
        echo "trust_domain: $TRUST_DOMAIN"
        echo "identity:"
        echo "  cert: $id_dir/cert.pem"
        echo "  key: $id_dir/key.pem"
        echo "  bundle: $id_dir/bundle.pem"
        grep -q '^workers:' <<<"$rest" || echo "workers: 2"
        grep -q '^rbac:' <<<"$rest" || printf 'rbac:\n  default: allow\n'
        grep -q '^timeouts:' <<<"$rest" ||
            echo "timeouts: {connect: 2s, handshake: 10s, idle: 60s, drain: 5s}"
        echo "$rest"
    } >"$file"
}

# YAML for one listener: inbound NAME LISTEN_PORT UPSTREAM_PORT [PROTOCOL]
# (tcp unless PROTOCOL is given)
inbound_listener() {
    cat <<EOF
  - name: $1
    mode: inbound
    protocol: ${4:-tcp}
    listen: 127.0.0.1:$2
    upstream: 127.0.0.1:$3
EOF
}

# outbound NAME LISTEN_PORT UPSTREAM_PORT PEER_ID [PROTOCOL]
outbound_listener() {
    cat <<EOF
  - name: $1
    mode: outbound
    protocol: ${5:-tcp}
    listen: 127.0.0.1:$2
    upstream: 127.0.0.1:$3
    peer_identity: $4
EOF
}

# ---------------------------------------------------------------- apps and clients

# An echo app on 127.0.0.1:PORT.
start_echo_app() {
    start_bg "$1" socat "TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr" PIPE
    wait_port "$2" || die "echo app $1 does not listen on $2"
}

# start_http_app NAME PORT BODY: answers every connection with one HTTP/1.0
# response carrying BODY, after reading the request head; appends each
# request line to $T/NAME.requests.
start_http_app() {
    local name=$1 port=$2 body=$3 script=$T/$1.sh
    cat >"$script" <<EOF
#!/usr/bin/env bash
while IFS= read -r line; do
    line=\${line%\$'\r'}
    [ -z "\$line" ] && break
    case "\$line" in GET*|HEAD*|POST*) echo "\$line" >>"$T/$name.requests";; esac
done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' ${#body} '$body'
EOF
    chmod +x "$script"
    : >"$T/$name.requests"
    start_bg "$name" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "EXEC:$script"
    wait_port "$port" || die "http app $name does not listen on $port"
}

# tcp_exchange PORT INPUT_FILE OUTPUT_FILE [SECONDS]: sends the input, shuts
# down the write side, and collects what comes back until the peer closes.
tcp_exchange() {
    local port=$1 input=$2 output=$3 seconds=${4:-$((10 * SLOW))}
    timeout "$((seconds + 5))" socat -t "$seconds" -T "$seconds" - "TCP:127.0.0.1:$port" \
        <"$input" >"$output" 2>>"$T/clients.err"
}

# assert_curl_eof PORT WHAT: a plain HTTP GET with curl to 127.0.0.1:PORT
# ends in an orderly close with nothing received: curl's status 52 ("Empty
# reply from server"), not 56 (a reset) or 28 (a timeout).
assert_curl_eof() {
    local port=$1 what=$2 rc=0
    curl -sS --max-time $((10 * SLOW)) -o "$T/curl-eof.out" "http://127.0.0.1:$port/" \
        2>"$T/curl-eof.err" || rc=$?
    if [ "$rc" = 52 ]; then
        pass "$what: curl sees EOF and no data"
    else
        fail "$what: curl sees EOF and no data" "expected curl status 52 (empty reply)" \
            "     got: status $rc: $(head -c 200 "$T/curl-eof.err")"
    fi
}

# elapsed_ms START_NS: milliseconds since START_NS (from `date +%s%N`).
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# start_nginx NAME PORT [PORT...]: nginx as the app on 127.0.0.1:PORT (one
# server listening on every PORT given), in the foreground as one process
# (so $connection numbers every connection it accepts), with the
# server-block directives read from stdin. Its access log, $T/NAME.access,
# has one line per request:
#   CONNECTION CONNECTION_REQUESTS STATUS REQUEST_LENGTH BODY_BYTES_SENT "REQUEST LINE" te="..." xfcc="..." rid="..." host="..."
# (te, xfcc, rid and host: the Transfer-Encoding, x-forwarded-client-cert,
# x-request-id and Host request headers the app received), then
# $NGINX_LOG_EXTRA (nginx log_format text, empty unless a test sets it).
start_nginx() {
    local name=$1 dir=$T/$1 body port listens=""
    shift
    body=$(cat)
    for port in "$@"; do
        listens+="        listen 127.0.0.1:$port;"$'\n'
    done
    command -v nginx >/dev/null || die "nginx not found (scripts/install-deps.sh installs it)"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $T/$name.err info;
events { worker_connections 1024; }
http {
    log_format outrider_test '\$connection \$connection_requests \$status \$request_length \$body_bytes_sent "\$request" te="\$http_transfer_encoding" xfcc="\$http_x_forwarded_client_cert" rid="\$http_x_request_id" host="\$http_host"${NGINX_LOG_EXTRA:-}';
    access_log $T/$name.access outrider_test;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 100000;
    keepalive_timeout 300s;
    server {
$listens$body
    }
}
EOF
    : >"$T/$name.access"
    start_bg "$name" nginx -p "$dir" -c "$dir/nginx.conf"
    for port in "$@"; do
        if ! wait_port "$port"; then
            local lines
            mapfile -t lines < <(excerpt "$T/$name.err")
            die "nginx $name does not listen on $port" "${lines[@]}"
        fi
    done
}

# start_http_pair ORDERS_ID_DIR FRONTEND_ID_DIR ORDERS_ID: the HTTP sidecar
# pair in front of an nginx app answering "ok": orders (inbound http on
# $IN_PORT to the app on $APP_PORT) and frontend (outbound http on $OUT_PORT
# to orders, which must present ORDERS_ID), with identities from the dirs.
start_http_pair() {
    write_config "$T/orders.yaml" orders "$1" <<CONFIG
listeners:
$(inbound_listener in "$IN_PORT" "$APP_PORT" http)
CONFIG
    write_config "$T/frontend.yaml" frontend "$2" <<CONFIG
listeners:
$(outbound_listener out "$OUT_PORT" "$IN_PORT" "$3" http)
CONFIG
    start_nginx app "$APP_PORT" <<'NGINX'
        location / { return 200 "ok\n"; }
NGINX
    start_proxy orders "$T/orders.yaml" "$IN_PORT"
    start_proxy frontend "$T/frontend.yaml" "$OUT_PORT"
}

# start_h2_pair ADMIN_PORT POLICY PATH LISTENER...: the HTTP/2 sidecar pair
# of test_http2.sh and test_grpc.sh, with the PKI of
# `make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend`.
# Each LISTENER is NAME:IN_PORT:APP_PORT:OUT_PORT: orders gets an inbound
# listener in-NAME on IN_PORT to the app on APP_PORT, frontend an outbound
# listener out-NAME on OUT_PORT to orders' IN_PORT, which must present
# orders' SPIFFE ID; all of them protocol http with http2: true. orders has
# RBAC default allow with one deny policy named POLICY for the path glob
# PATH, an admin listener on ADMIN_PORT and a JSON access log in $IN_ALOG;
# frontend logs JSON to $OUT_ALOG (both set here). Starts orders, then
# frontend, each waiting for its ports.
start_h2_pair() {
    local admin_port=$1 policy=$2 path=$3 spec name in app out ins="" outs="" orders_id
    local in_ports=() out_ports=()
    shift 3
    orders_id=$(spiffe_id ns/shop/sa/orders)
    for spec in "$@"; do
        IFS=: read -r name in app out <<<"$spec"
        ins+="$(inbound_listener "in-$name" "$in" "$app" http)"$'\n'"    http2: true"$'\n'
        outs+="$(outbound_listener "out-$name" "$out" "$in" "$orders_id" http)"$'\n'"    http2: true"$'\n'
        in_ports+=("$in")
        out_ports+=("$out")
    done
    IN_ALOG=$T/orders-access.log
    OUT_ALOG=$T/frontend-access.log
    write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<CONFIG
rbac:
  default: allow
  policies:
    - name: $policy
      action: deny
      rules:
        - to: [{paths: ["$path"]}]
access_log: {path: $IN_ALOG, format: json}
admin: {listen: 127.0.0.1:$admin_port}
listeners:
$ins
CONFIG
    write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<CONFIG
access_log: {path: $OUT_ALOG, format: json}
listeners:
$outs
CONFIG
    start_proxy orders "$T/orders.yaml" "${in_ports[@]}"
    start_proxy frontend "$T/frontend.yaml" "${out_ports[@]}"
}

# start_dump_app NAME PORT RESPONSE_FILE: an app that, on each connection,
# reads one request head, appends it to $T/NAME.heads (without CRs, then a
# line "--"), sends the bytes of RESPONSE_FILE exactly as they are and
# closes. An empty RESPONSE_FILE makes an app that closes without answering.
start_dump_app() {
    local name=$1 port=$2 response=$3 script=$T/$1.sh
    cat >"$script" <<EOF
#!/usr/bin/env bash
head=
while IFS= read -r line; do
    line=\${line%\$'\r'}
    [ -z "\$line" ] && break
    head+="\$line"\$'\n'
done
printf '%s--\n' "\$head" >>"$T/$name.heads"
cat "$response"
EOF
    chmod +x "$script"
    : >"$T/$name.heads"
    start_bg "$name" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "EXEC:$script"
    wait_port "$port" || die "dump app $name does not listen on $port"
}

# raw_http PORT INPUT_FILE OUTPUT_FILE [HOLD]: sends the bytes of INPUT_FILE
# to 127.0.0.1:PORT, keeps its own write side open for HOLD seconds
# (default 8) and collects what comes back until the peer closes. RAW_MS is
# set to how long that took: well under HOLD seconds when the peer closed
# the connection, HOLD or more when it did not.
# shellcheck disable=SC2034
RAW_MS=0
raw_http() {
    local port=$1 input=$2 output=$3 hold=${4:-8} start rc=0 feeder=$T/.raw-feeder.$RANDOM
    start=$(date +%s%N)
    timeout $((hold + 10)) socat -t 0.5 - "TCP:127.0.0.1:$port" \
        < <(echo "$BASHPID" >"$feeder"; exec 2>/dev/null; cat "$input"; exec sleep "$hold") \
        >"$output" 2>>"$T/clients.err" || rc=$?
    # shellcheck disable=SC2034
    RAW_MS=$(elapsed_ms "$start")
    # The feeder is a sleep by now (exec keeps its pid): end it early, if
    # that pid is still the sleep.
    local pid
    pid=$(cat "$feeder" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = sleep ]; then
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$feeder"
    return "$rc"
}

# http_status FILE: the status code on the first line of a raw response.
http_status() {
    head -n1 "$1" 2>/dev/null | tr -d '\r' | cut -d' ' -f2 || true
}

# ---------------------------------------------------------------- load and certificates

# served_serial PORT CERT KEY: the serial of the certificate a fresh mTLS
# handshake with 127.0.0.1:PORT shows (empty when the handshake fails).
served_serial() {
    openssl s_client -connect "127.0.0.1:$1" -cert "$2" -key "$3" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 || true
}

# start_load PORT: GET http://127.0.0.1:PORT/ one request after another, in
# the background, each status code a line of $T/load.codes, until stop_load.
start_load() {
    local port=$1
    rm -f "$T/load.stop"
    while [ ! -e "$T/load.stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time $((10 * SLOW)) "http://127.0.0.1:$port/" ||
            echo "curl-failed"
    done >"$T/load.codes" &
    PROC_PID[load]=$! # on_exit stops it if the test ends first
}

# stop_load WHAT: ends the load, then asserts it made progress (20 requests
# or more) and that every request got a 200.
stop_load() {
    local what=$1 total ok
    touch "$T/load.stop"
    wait "${PROC_PID[load]}" || true
    unset "PROC_PID[load]"
    total=$(wc -l <"$T/load.codes")
    ok=$(grep -c '^200$' "$T/load.codes" || true)
    note "$total requests $what"
    assert_eq "$total" "$ok" "every request $what got a 200"
    if [ "$total" -ge 20 ]; then
        pass "the load kept flowing ($total requests)"
    else
        fail "the load kept flowing" "only $total requests"
    fi
}
