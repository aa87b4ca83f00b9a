#!/usr/bin/env bash
# outrider-agent end to end against outrider-ca: --once with a join token
# writes a matching cert/key/bundle set (key 0600); the loop renews over
# mTLS several times with a short TTL (new serial each time) and survives the
# CA being away for longer than one renewal interval (backs off, recovers).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_lib.sh"
[ -x "$AGENT_BIN" ] || die "no outrider-agent binary at $AGENT_BIN"

ID=$(spiffe_id ns/shop/sa/orders)
CA=$T/ca
OUT=$T/id
STATUS=$T/status.json
ca_admin init --dir "$CA" --trust-domain "$TRUST_DOMAIN" 2>"$T/init.err"
alloc_ports P
start_ca ca "$CA" "$P" --ttl 3s
TOKEN=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
AGENT_ARGS=(--ca "https://127.0.0.1:$P" --ca-bundle "$CA/bundle.d/root.pem" --spiffe-id "$ID"
            --dir "$OUT" --status-file "$STATUS")

# ---- --once with the token
rc=0
"$AGENT_BIN" "${AGENT_ARGS[@]}" --token "$TOKEN" --once 2>"$T/once.err" || rc=$?
assert_eq 0 "$rc" "agent --once succeeds"
check_sanitizers "$T/once.err" agent-once
assert_contains "$T/once.err" 'renewed \(auth token\)' "the first certificate came with the token"
for f in cert.pem key.pem bundle.pem; do
    [ -s "$OUT/$f" ] && pass "$f written" || fail "$f written"
done
assert_eq 600 "$(stat -L -c %a "$OUT/key.pem")" "key.pem is mode 0600"
assert_eq "$(openssl pkey -in "$OUT/key.pem" -pubout)" "$(openssl x509 -in "$OUT/cert.pem" -noout -pubkey)" \
    "cert.pem matches key.pem"
assert_eq "$OUT/cert.pem: OK" "$(openssl verify -CAfile "$OUT/bundle.pem" "$OUT/cert.pem" 2>&1)" \
    "cert.pem verifies with bundle.pem"
openssl x509 -in "$OUT/cert.pem" -noout -ext subjectAltName >"$T/san.txt"
assert_contains "$T/san.txt" "URI:$ID\$" "the cert carries the agent's SPIFFE ID"
assert_contains "$STATUS" '"state":"ok".*"renewals":1,' "status file says ok after one renewal"
rc=0
"$AGENT_BIN" "${AGENT_ARGS[@]}" --token "$TOKEN" --once 2>"$T/once2.err" || rc=$?
assert_eq 0 "$rc" "a second --once renews with the current cert (the token is spent)"
assert_contains "$T/once2.err" 'renewed \(auth mtls\)' "the second run used mTLS"

# ---- the loop renews several times
serial0=$(openssl x509 -in "$OUT/cert.pem" -noout -serial)
start_bg agent "$AGENT_BIN" "${AGENT_ARGS[@]}"
deadline=$((SECONDS + 20 * SLOW))
until [ "$(grep -c 'renewed (auth mtls)' "$T/agent.err" 2>/dev/null)" -ge 3 ] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.2
done
n=$(grep -c 'renewed (auth mtls)' "$T/agent.err" || true)
if [ "$n" -ge 3 ]; then pass "the loop renewed $n times with a 3s TTL"; else fail "the loop renews several times" "$(excerpt "$T/agent.err")"; fi
serial1=$(openssl x509 -in "$OUT/cert.pem" -noout -serial)
[ "$serial0" != "$serial1" ] && pass "the serial changed" || fail "the serial changed"
assert_eq "$(openssl pkey -in "$OUT/key.pem" -pubout)" "$(openssl x509 -in "$OUT/cert.pem" -noout -pubkey)" \
    "cert.pem still matches key.pem"
gens=$(find "$OUT" -maxdepth 1 -name 'gen-*' | wc -l)
if [ "$gens" -le 2 ]; then pass "old generations are pruned ($gens kept)"; else fail "old generations are pruned" "$gens kept"; fi

# ---- the CA goes away for longer than a renewal interval
stop_ca ca
start_ca ca2 "$CA" "$P" --ttl 16s
mark_log "$T/agent.err"
assert_logged "$T/agent.err" 'renewed \(auth mtls\)' "renewed from the restarted CA"
sleep 0.5
stop_ca ca2
mark_log "$T/agent.err"
sleep 10
assert_logged "$T/agent.err" 'renewal failed .*retrying in' "the agent backs off while the CA is down"
# Near expiry the retries come closer: no wait beyond a quarter of the time
# the certificate has left (250 ms at least; 300 ms slack for whole-second
# clocks). Plain exponential backoff would wait 4 s here with 5 s left.
not_after_ms=$(($(date -d "$(openssl x509 -in "$OUT/cert.pem" -noout -enddate | cut -d= -f2)" +%s) * 1000))
too_long=$(tail -c "+$((${LOG_MARK[$T/agent.err]} + 1))" "$T/agent.err" | grep 'retrying in' |
    while read -r stamp rest; do
        wait_ms=$(sed -n 's/.*retrying in \([0-9]*\) ms.*/\1/p' <<<"$rest")
        left_ms=$((not_after_ms - $(date -d "$stamp" +%s%3N)))
        limit=$((left_ms / 4 > 250 ? left_ms / 4 : 250))
        [ "$wait_ms" -le $((limit + 300)) ] || echo "$stamp waits ${wait_ms} ms with ${left_ms} ms left"
    done)
assert_eq "" "$too_long" "retries wait at most a quarter of the certificate's remaining life"
assert_contains "$STATUS" '"state":"retrying"' "status says retrying"
assert_eq 0 "$(openssl x509 -in "$OUT/cert.pem" -noout -checkend 0 >/dev/null && echo 0 || echo 1)" \
    "the old certificate is still in place and valid"
start_ca ca3 "$CA" "$P" --ttl 12s
mark_log "$T/agent.err"
deadline=$((SECONDS + 10 * SLOW))
until grep -q 'renewed (auth mtls)' <(tail -c "+$((${LOG_MARK[$T/agent.err]} + 1))" "$T/agent.err") || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.2
done
assert_logged "$T/agent.err" 'renewed \(auth mtls\)' "the agent recovers when the CA is back"
assert_contains "$STATUS" '"state":"ok".*"consecutive_failures":0' "status is ok again"
if grep -q '"total_failures":0' "$STATUS"; then fail "failures were counted"; else pass "failures were counted"; fi

pid=${PROC_PID[agent]}
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
unset "PROC_PID[agent]"
assert_eq 0 "$rc" "agent exits 0 on SIGTERM"
check_sanitizers "$T/agent.err" agent
stop_ca ca3
