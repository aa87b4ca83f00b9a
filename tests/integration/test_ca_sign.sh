#!/usr/bin/env bash
# outrider-ca: init, join tokens, signing with curl and openssl CSRs, mTLS
# renewal, refusals (reused/foreign token, identity mismatch, expired client
# cert, malformed CSR, oversized body, weak keys), a flood of bad requests,
# one request per connection (a pipelined pair gets one answer, then close),
# the first-byte timeout and the per-address cap on idle connections, and
# the intermediate mode.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_lib.sh"

ID=$(spiffe_id ns/shop/sa/orders)
OTHER=$(spiffe_id ns/web/sa/frontend)
CA=$T/ca
BUNDLE=$CA/bundle.d/root.pem

# ---- init
ca_admin init --dir "$CA" --trust-domain "$TRUST_DOMAIN" 2>"$T/init.err"
assert_eq 600 "$(stat -c %a "$CA/ca.key")" "CA key is mode 0600"
assert_eq 700 "$(stat -c %a "$CA")" "CA directory is mode 0700"
openssl x509 -in "$CA/ca.pem" -noout -text >"$T/root.txt"
assert_contains "$T/root.txt" 'CA:TRUE' "root is CA:TRUE"
assert_contains "$T/root.txt" 'Certificate Sign, CRL Sign' "root has keyCertSign and cRLSign"
rc=0; ca_admin init --dir "$CA" --trust-domain "$TRUST_DOMAIN" 2>"$T/init2.err" || rc=$?
assert_eq 1 "$rc" "init refuses to overwrite an existing CA"

alloc_ports P
start_ca ca "$CA" "$P" --ttl 1h --max-ttl 2h

# ---- token + sign with an openssl CSR (with and without a URI SAN)
TOKEN=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
assert_eq 64 "${#TOKEN}" "token is 64 hex digits"
if grep -q "$TOKEN" "$CA/tokens"; then fail "token store holds the token in clear"; else pass "token stored hashed"; fi
new_csr "$T/k1.pem" "$T/csr1.pem" "$ID"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr1.pem" "$T/leaf1.pem" -H "Authorization: Bearer $TOKEN")" \
    "sign with a join token"
assert_eq "$T/leaf1.pem: OK" "$(openssl verify -CAfile "$BUNDLE" "$T/leaf1.pem" 2>&1)" \
    "issued cert verifies with openssl against the root"
openssl x509 -in "$T/leaf1.pem" -noout -text >"$T/leaf1.txt"
assert_contains "$T/leaf1.txt" "URI:$ID\$" "SAN is the token's SPIFFE ID"
assert_contains "$T/leaf1.txt" 'CA:FALSE' "leaf is CA:FALSE"
assert_contains "$T/leaf1.txt" 'X509v3 Key Usage: critical' "keyUsage is critical"
assert_contains "$T/leaf1.txt" '^ +Digital Signature$' "keyUsage is digitalSignature only"
assert_contains "$T/leaf1.txt" 'TLS Web Server Authentication, TLS Web Client Authentication' \
    "EKU serverAuth and clientAuth"
assert_eq 1 "$(grep -c 'URI:' "$T/leaf1.txt")" "exactly one URI SAN"
assert_contains "$CA/audit.log" "\"spiffe_id\":\"$ID\".*\"auth\":\"token\",\"peer\":\"127.0.0.1:" \
    "issuance is in the audit log"

# ---- the mesh TLS policy: TLS 1.2, ECDHE with AEAD only
ca_tls() { # ca_tls OPENSSL_ARGS...: 0 if a handshake with the CA succeeds
    timeout $((10 * SLOW)) openssl s_client -connect "127.0.0.1:$P" -CAfile "$BUNDLE" "$@" \
        </dev/null >"$T/s_client.out" 2>&1 && grep -q 'Cipher is ECDHE' "$T/s_client.out"
}
rc=0; ca_tls -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305 || rc=$?
assert_eq 0 "$rc" "the CA speaks TLS 1.2 with ECDHE-ECDSA-CHACHA20-POLY1305"
rc=0; ca_tls -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA || rc=$?
assert_eq 1 "$rc" "the CA refuses a CBC suite"
rc=0; ca_tls -tls1_1 -cipher 'ALL:@SECLEVEL=0' || rc=$?
assert_eq 1 "$rc" "the CA refuses TLS 1.1"

# ---- the token is one-time, also across a restart
new_csr "$T/k2.pem" "$T/csr2.pem"
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $TOKEN")" \
    "a used token is refused"
stop_ca ca
start_ca ca2 "$CA" "$P" --ttl 1h --max-ttl 2h
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $TOKEN")" \
    "a used token is still refused after a restart"
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer 0123")" \
    "an unknown token is refused"
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out")" "no credentials is refused"
# A valid token with 1500 bytes after it, and a 1.5 KB URL: refused, and
# the token stays unused.
TL=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
long=$(printf 'a%.0s' $(seq 1 1500))
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $TL$long")" \
    "a token with an overlong tail is refused"
assert_eq 404 "$(SIGN_QUERY="/$long" sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $TL")" \
    "a URL longer than the CA keeps is answered 404"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $TL")" \
    "the token is still good after both refusals"

# ---- a token for one identity, a CSR asking for another
T2=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
new_csr "$T/k3.pem" "$T/csr3.pem" "$OTHER"
assert_eq 403 "$(sign "$P" "$BUNDLE" "$T/csr3.pem" "$T/r.out" -H "Authorization: Bearer $T2")" \
    "CSR SAN for another identity is refused"
assert_contains "$T/r.out" 'CSR asks for' "the 403 says why"
assert_contains "$T/ca2.err" "sign refused.*$OTHER" "the refusal is logged"
# the token was not spent on the refused request
new_csr "$T/k3b.pem" "$T/csr3b.pem"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr3b.pem" "$T/leaf3.pem" -H "Authorization: Bearer $T2")" \
    "the token still works after a refused CSR (CSR without SAN)"

# ---- renewal over mTLS with the current mesh cert
new_csr "$T/k4.pem" "$T/csr4.pem"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr4.pem" "$T/leaf4.pem" --cert "$T/leaf1.pem" --key "$T/k1.pem")" \
    "renewal with the mesh cert over mTLS"
openssl x509 -in "$T/leaf4.pem" -noout -ext subjectAltName >"$T/leaf4.san"
assert_contains "$T/leaf4.san" "URI:$ID\$" "renewed cert carries the same ID"
assert_contains "$CA/audit.log" '"auth":"mtls"' "mTLS issuance is audited"
assert_eq 403 "$(sign "$P" "$BUNDLE" "$T/csr3.pem" "$T/r.out" --cert "$T/leaf1.pem" --key "$T/k1.pem")" \
    "mTLS caller asking for another identity is refused"

# ---- an expired client cert is refused
new_csr "$T/k5.pem" "$T/csr5.pem"
SIGN_QUERY='?ttl=1s' sign "$P" "$BUNDLE" "$T/csr5.pem" "$T/short.pem" --cert "$T/leaf1.pem" --key "$T/k1.pem" >/dev/null
sleep 2.5
assert_eq 401 "$(sign "$P" "$BUNDLE" "$T/csr4.pem" "$T/r.out" --cert "$T/short.pem" --key "$T/k5.pem")" \
    "an expired client certificate is refused"
assert_contains "$T/r.out" 'expired' "the 401 says the certificate expired"

# ---- TTL: asked shorter is honoured, longer is capped
SIGN_QUERY='?ttl=10m' sign "$P" "$BUNDLE" "$T/csr4.pem" "$T/ttl.pem" --cert "$T/leaf1.pem" --key "$T/k1.pem" >/dev/null
end=$(date -d "$(openssl x509 -in "$T/ttl.pem" -noout -enddate | cut -d= -f2)" +%s)
left=$((end - $(date +%s)))
if [ "$left" -le 600 ] && [ "$left" -gt 500 ]; then pass "?ttl=10m gives a 10 minute cert"; else fail "?ttl=10m gives a 10 minute cert" "left: $left s"; fi
SIGN_QUERY='?ttl=48h' sign "$P" "$BUNDLE" "$T/csr4.pem" "$T/ttl.pem" --cert "$T/leaf1.pem" --key "$T/k1.pem" >/dev/null
end=$(date -d "$(openssl x509 -in "$T/ttl.pem" -noout -enddate | cut -d= -f2)" +%s)
left=$((end - $(date +%s)))
if [ "$left" -le 7200 ]; then pass "max-ttl caps a longer request"; else fail "max-ttl caps a longer request" "left: $left s"; fi

# ---- bad requests
AUTH=(--cert "$T/leaf1.pem" --key "$T/k1.pem")
echo "not a csr" >"$T/garbage.pem"
assert_eq 400 "$(sign "$P" "$BUNDLE" "$T/garbage.pem" "$T/r.out" "${AUTH[@]}")" "malformed CSR: 400"
openssl req -in "$T/csr4.pem" -outform DER | sed 's/test/tesu/' >"$T/badsig.der"
assert_eq 400 "$(sign "$P" "$BUNDLE" "$T/badsig.der" "$T/r.out" "${AUTH[@]}")" "CSR with a bad signature: 400"
assert_contains "$T/r.out" 'signature' "the 400 says the signature is bad"
head -c 20000 /dev/zero | tr '\0' 'A' >"$T/big.bin"
assert_eq 413 "$(sign "$P" "$BUNDLE" "$T/big.bin" "$T/r.out" "${AUTH[@]}")" "oversized body: 413"
new_csr "$T/kr.pem" "$T/csrr.pem" "" "-algorithm RSA -pkeyopt rsa_keygen_bits:1024"
assert_eq 400 "$(sign "$P" "$BUNDLE" "$T/csrr.pem" "$T/r.out" "${AUTH[@]}")" "RSA-1024 CSR: 400"
new_csr "$T/ke.pem" "$T/csre.pem" "" "-algorithm ed25519"
assert_eq 400 "$(sign "$P" "$BUNDLE" "$T/csre.pem" "$T/r.out" "${AUTH[@]}")" "Ed25519 CSR: 400"
new_csr "$T/kR.pem" "$T/csrR.pem" "" "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csrR.pem" "$T/r.out" "${AUTH[@]}")" "RSA-2048 CSR: 200"
new_csr "$T/k384.pem" "$T/csr384.pem" "" "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr384.pem" "$T/r.out" "${AUTH[@]}")" "EC P-384 CSR: 200"
assert_eq 200 "$(curl -sS --cacert "$BUNDLE" -o "$T/bundle.out" -w '%{http_code}' "https://127.0.0.1:$P/v1/bundle")" \
    "GET /v1/bundle"
assert_eq "$(cat "$BUNDLE")" "$(cat "$T/bundle.out")" "the bundle is the root"

# ---- a flood of bad requests, then a good one (waiting on the clients only:
# a bare `wait` would wait for the CA too)
pids=()
for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$P" && printf 'GARBAGE %s\r\n\r\n' "$i" >&3 && cat <&3 >/dev/null) 2>/dev/null &
    pids+=($!)
    curl -sS --max-time 10 --cacert "$BUNDLE" --data-binary @"$T/garbage.pem" \
        -H "Authorization: Bearer bad$i" "https://127.0.0.1:$P/v1/sign" -o /dev/null 2>/dev/null &
    pids+=($!)
    if [ $((i % 25)) = 0 ]; then wait "${pids[@]}" || true; pids=(); fi
done
T3=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $T3")" \
    "after 200 bad requests a good one succeeds"
# ---- one request per connection: a pipelined pair gets one answer, then close
printf 'GET /healthz HTTP/1.1\r\nHost: ca\r\n\r\nGET /v1/bundle HTTP/1.1\r\nHost: ca\r\n\r\n' >"$T/pipelined.req"
rc=0
timeout $((10 * SLOW)) openssl s_client -quiet -ign_eof -connect "127.0.0.1:$P" -CAfile "$BUNDLE" \
    <"$T/pipelined.req" >"$T/pipelined.out" 2>"$T/pipelined.err" || rc=$?
if [ "$rc" = 124 ]; then fail "the CA closes a connection after its first request" "still open after $((10 * SLOW))s"; else pass "the CA closes a connection after its first request"; fi
assert_eq "HTTP/1.1 200 OK" "$(head -n1 "$T/pipelined.out" | tr -d '\r')" "the first of a pipelined pair is answered 200"
assert_eq 1 "$(grep -c '^HTTP/1.1 ' "$T/pipelined.out" || true)" "a pipelined pair gets exactly one response"
assert_eq "ok" "$(tail -n1 "$T/pipelined.out")" "the one response is the answer to GET /healthz"
assert_not_contains "$T/pipelined.out" 'BEGIN CERTIFICATE' "the second request of the pair is not answered"

# ---- idle connections: a first-byte deadline, and a cap per client address
# silent_for CMD...: milliseconds until CMD (a client that sends nothing) ends
silent_for() {
    local start rc=0
    start=$(date +%s%N)
    timeout 30 "$@" >/dev/null 2>&1 || rc=$?
    [ "$rc" != 124 ] || { echo 30000; return; }
    elapsed_ms "$start"
}
took=$(silent_for socat -u "TCP:127.0.0.1:$P" STDOUT)
if [ "$took" -ge 2500 ] && [ "$took" -le $((3000 + 1500 * SLOW)) ]; then
    pass "a connection that sends nothing is closed after the 3s first-byte timeout (${took}ms)"
else
    fail "a connection that sends nothing is closed after the 3s first-byte timeout" "closed after ${took}ms"
fi
took=$(silent_for bash -c "exec openssl s_client -quiet -connect 127.0.0.1:$P -CAfile '$BUNDLE' < <(sleep 20)")
if [ "$took" -ge 2500 ] && [ "$took" -le $((3000 + 1500 * SLOW)) ]; then
    pass "a client that completes the handshake and sends no request is closed after 3s (${took}ms)"
else
    fail "a client that completes the handshake and sends no request is closed after 3s" "closed after ${took}ms"
fi

mark_log "$T/ca2.err"
idle=()
for _ in $(seq 1 40); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$P"
    idle+=("$fd")
done
sleep 0.3
refused=0
for fd in "${idle[@]}"; do
    rc=0
    read -r -t 0.001 -u "$fd" _ 2>/dev/null || rc=$?
    [ "$rc" -gt 128 ] || refused=$((refused + 1))
done
assert_eq 8 "$refused" "of 40 idle connections from one address, the 8 over the cap of 32 are closed at once"
assert_logged "$T/ca2.err" "connection from 127\.0\.0\.1:[0-9]+ refused: more than 32 connections open from its address \([0-9]+ refused since start\)" \
    "the refusal is logged"
assert_eq 1 "$(tail -c "+$((LOG_MARK[$T/ca2.err] + 1))" "$T/ca2.err" | grep -c 'refused: more than 32')" \
    "eight refusals within a second make one log line"
code=$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer x")
assert_eq 000curl-failed "$code" "while they are held, a request from the same address is refused"
sleep 3.5
for fd in "${idle[@]}"; do
    exec {fd}>&-
done
T5=$(ca_admin token create --dir "$CA" --spiffe-id "$ID")
assert_eq 200 "$(sign "$P" "$BUNDLE" "$T/csr2.pem" "$T/r.out" -H "Authorization: Bearer $T5")" \
    "once the idle connections time out, a request succeeds"

fds=$(ls "/proc/${PROC_PID[ca2]}/fd" | wc -l)
if [ "$fds" -lt 30 ]; then pass "no descriptor leak after the flood ($fds open)"; else fail "no descriptor leak after the flood" "$fds open"; fi
stop_ca ca2
assert_contains "$T/ca2.err" "stopping \([0-9]+ requests served, [1-9][0-9]* connections refused\)" \
    "the CA reports the refused connections when it stops"

# ---- intermediate mode: an offline root, the CA signs with an intermediate
make_pki "$T/pki" "$TRUST_DOMAIN"
INTERMEDIATE=1 make_pki "$T/pki" "$TRUST_DOMAIN"
ca_admin init --dir "$T/ica" --trust-domain "$TRUST_DOMAIN" \
    --ca-cert "$T/pki/intermediate/cert.pem" --ca-key "$T/pki/intermediate/key.pem" \
    --root "$T/pki/bundle.pem" 2>"$T/init3.err"
assert_eq "$(cat "$T/pki/bundle.pem")" "$(cat "$T/ica/bundle.d/root.pem")" "intermediate mode: the bundle is the offline root"
rc=0; ca_admin init --dir "$T/ica2" --trust-domain "$TRUST_DOMAIN" \
    --ca-cert "$T/pki/intermediate/cert.pem" --ca-key "$T/pki/intermediate/key.pem" 2>"$T/init4.err" || rc=$?
assert_eq 1 "$rc" "intermediate without --root is refused"
alloc_ports P2
start_ca ica "$T/ica" "$P2"
T4=$(ca_admin token create --dir "$T/ica" --spiffe-id "$ID")
assert_eq 200 "$(sign "$P2" "$T/pki/bundle.pem" "$T/csr2.pem" "$T/ileaf.pem" -H "Authorization: Bearer $T4")" \
    "intermediate CA signs (its TLS cert verifies with the root only)"
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$T/ileaf.pem")" "issued chain is leaf + intermediate"
assert_eq "$T/ileaf.pem: OK" "$(openssl verify -CAfile "$T/pki/bundle.pem" -untrusted "$T/ileaf.pem" "$T/ileaf.pem" 2>&1)" \
    "the chain verifies with the root only"
stop_ca ica
