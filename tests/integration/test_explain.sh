#!/usr/bin/env bash
# `outrider explain` and the RBAC warnings of `outrider check`.
#
# explain: the example of docs/rbac.md (a config and its policies file, with
# empty identity files, which explain never reads) answers exit 0 for an
# allowed request and 2 for a denied one, naming the deciding policy, rule
# and file:line:col; an unauthenticated principal, a tcp listener (where an
# HTTP-only deny field fails closed), a dry-run policy and a policy for
# another service show up as documented; usage and config errors exit 1.
# check: with a real identity, rbac warnings are printed as
# "file:line:col: warning: ..." and do not fail the check.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$OUTRIDER" ] || die "no proxy binary at $OUTRIDER"

FRONTEND=$(spiffe_id ns/web/sa/frontend)
OPS=$(spiffe_id ns/ops/sa/bot)
ORDERS=$(spiffe_id ns/shop/sa/orders)

# An ERE matching the text literally.
re_escape() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# explain NAME ARGS...: runs outrider explain; output in $T/NAME.out/.err,
# status in STATUS; a sanitizer report fails the test.
explain() {
    local name=$1
    shift
    STATUS=0
    timeout $((20 * SLOW)) "$OUTRIDER" explain "$@" >"$T/$name.out" 2>"$T/$name.err" || STATUS=$?
    check_sanitizers "$T/$name.err" "explain $name"
}

# --- the example of docs/rbac.md
D=$T/example
mkdir -p "$D"
: >"$D/cert.pem"
: >"$D/key.pem"
: >"$D/bundle.pem"
cat >"$D/config.yaml" <<'EOF'
service: payments
trust_domain: cluster.local
identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}
listeners:
  - name: inbound
    mode: inbound
    protocol: http
    listen: 0.0.0.0:15006
    upstream: 127.0.0.1:8080
rbac:
  default: deny
  policies: policies.yaml
EOF
cat >"$D/policies.yaml" <<'EOF'
policies:
  - name: frontend-reads
    service: payments
    action: allow
    rules:
      - from:
          - principals: ["spiffe://cluster.local/ns/web/sa/frontend"]
          - namespaces: ["ops"]
            ip_blocks: ["10.0.0.0/8"]
        to:
          - methods: [GET, HEAD]
            paths: ["/api/*"]
        when:
          - header: x-tenant
            values: ["acme", "beta-*"]
  - name: block-admin
    action: deny
    rules:
      - from:
          - not_namespaces: ["ops"]
        to:
          - paths: ["/admin/*"]
  - name: try-block-v1
    action: deny
    dry_run: true
    rules:
      - to:
          - paths: ["/api/v1/*"]
  - name: audit-writes
    action: audit
    rules:
      - to:
          - not_methods: [GET, HEAD]
  - name: orders-only
    service: orders
    action: allow
    rules: [{}]
EOF
P=$(re_escape "$D/policies.yaml")

explain allow -c "$D/config.yaml" --principal "$FRONTEND" --path /api/orders --header x-tenant=acme
assert_exit 0 "$STATUS" "explain: frontend reads /api/orders"
assert_contains "$T/allow.out" "^decision: ALLOW by policy \"frontend-reads\" rule 0 \(action allow, $P:2:5\)$" \
    "the allow names policy, rule and position"
assert_contains "$T/allow.out" "^request: principal=\"$(re_escape "$FRONTEND")\" ip=127\.0\.0\.1 port=8080 protocol=http method=\"GET\" path=\"/api/orders\" host=-$" \
    "the request line shows the defaults (ip, listener port, GET)"
assert_contains "$T/allow.out" "^policies considered \(service \"payments\", namespace \"unknown\", 4 apply, default deny\):$" \
    "four policies apply to payments"
assert_contains "$T/allow.out" "^      rule 0: when\[0\] \(header x-tenant\): values \"acme\" matches \"acme\"$" \
    "the matching condition is shown"
assert_contains "$T/allow.out" "^  \"orders-only\" \(another service\) at $P:34:5$" \
    "the policy of another service is listed as skipped"

explain admin -c "$D/config.yaml" --principal "$FRONTEND" --path '/admin/users?page=2' --host payments:15006
assert_exit 2 "$STATUS" "explain: frontend on /admin is denied"
assert_contains "$T/admin.out" "^decision: DENY by policy \"block-admin\" rule 0 \(action deny, $P:16:5\)$" \
    "the deny names block-admin rule 0"
assert_contains "$T/admin.out" "path=\"/admin/users\?page=2\" \(matched as \"/admin/users\"\) host=\"payments:15006\" \(matched as \"payments\"\)$" \
    "query string and port are shown but not matched"
assert_contains "$T/admin.out" "^      rule 0: from\[0\]: not_namespaces: \"ops\" does not match \"web\"$" \
    "the not_namespaces field is explained"
assert_contains "$T/admin.out" "^  allow \"frontend-reads\" at $P:2:5: no match$" \
    "frontend-reads did not match"
assert_contains "$T/admin.out" "^      rule 0: to\[0\]: paths: \"/api/\*\" does not match \"/admin/users\"$" \
    "the first failing field of frontend-reads is named"

explain ops -c "$D/config.yaml" --principal "$OPS" --ip 192.168.1.5 --path /api/x --header X-Tenant=beta-1
assert_exit 2 "$STATUS" "explain: ops from outside 10.0.0.0/8 is denied by default"
assert_contains "$T/ops.out" "^decision: DENY by default \(rbac.default: deny; no enforced policy matched\)$" \
    "the default decides"
assert_contains "$T/ops.out" "^      rule 0: from\[1\]: ip_blocks: 10\.0\.0\.0/8 does not contain 192\.168\.1\.5$" \
    "the failing ip block is named"

explain v1 -c "$D/config.yaml" --principal "$FRONTEND" --method POST --path /api/v1/orders --header x-tenant=acme
assert_exit 2 "$STATUS" "explain: a POST is not a read"
assert_contains "$T/v1.out" "^dry run: policy \"try-block-v1\" would deny$" "the dry-run deny is reported"
assert_contains "$T/v1.out" "^audit: policy \"audit-writes\" matched$" "the audit policy is reported"

explain anon -c "$D/config.yaml" --principal none
assert_exit 2 "$STATUS" "explain: an unauthenticated request"
assert_contains "$T/anon.out" "^      rule 0: from\[0\]: principals: the request has no principal \(unauthenticated\)$" \
    "the missing principal is explained"

# --- a tcp listener: HTTP-only fields fail closed
cat >"$D/tcp.yaml" <<'EOF'
service: ledger-db
trust_domain: cluster.local
identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}
listeners:
  - name: postgres
    mode: inbound
    protocol: tcp
    listen: 0.0.0.0:15432
    upstream: 127.0.0.1:5432
rbac:
  default: deny
  policies:
    - name: db-clients
      action: allow
      rules:
        - from:
            - namespaces: ["shop"]
          to:
            - ports: [5432]
    - name: web-no-admin
      action: deny
      rules:
        - from:
            - namespaces: ["web"]
          to:
            - paths: ["/admin/*"]
EOF
explain db -c "$D/tcp.yaml" --principal "$ORDERS"
assert_exit 0 "$STATUS" "explain: orders may connect to the database"
assert_contains "$T/db.out" "port=5432 protocol=tcp \(no HTTP fields\)$" "a tcp listener gives a tcp request"
explain db-web -c "$D/tcp.yaml" --principal "$FRONTEND"
assert_exit 2 "$STATUS" "explain: web may not connect to the database"
assert_contains "$T/db-web.out" "^decision: DENY by policy \"web-no-admin\" rule 0" "the deny with paths applies on tcp"
assert_contains "$T/db-web.out" "^      rule 0: to\[0\]: HTTP-only field 'paths' is treated as matching on a tcp request \(deny fails closed\)$" \
    "the fail-closed field is explained"

# --- the second of two conditions fails: it is named by its own index
sed -n '1,/^rbac:/p' "$D/config.yaml" >"$D/when.yaml"
cat >>"$D/when.yaml" <<'EOF'
  default: deny
  policies:
    - name: tenant-and-region
      action: allow
      rules:
        - when:
            - header: x-tenant
              values: ["acme"]
            - header: x-region
              values: ["eu"]
EOF
explain when2 -c "$D/when.yaml" --principal "$FRONTEND" --header x-tenant=acme --header x-region=us
assert_exit 2 "$STATUS" "explain: the second condition fails"
assert_contains "$T/when2.out" "^      rule 0: when\[1\] \(header x-region\): values: \"eu\" does not match \"us\"$" \
    "the failing second condition is when[1]"

# --- usage and config errors
explain nocfg --principal "$FRONTEND"
assert_exit 1 "$STATUS" "explain without -c"
assert_contains "$T/nocfg.err" "missing -c FILE" "the missing option is named"
explain noprincipal -c "$D/config.yaml"
assert_exit 1 "$STATUS" "explain without --principal"
explain badip -c "$D/config.yaml" --principal "$FRONTEND" --ip 300.1.1.1
assert_exit 1 "$STATUS" "explain with a bad --ip"
explain missing -c "$D/nowhere.yaml" --principal "$FRONTEND"
assert_exit 1 "$STATUS" "explain with a missing config"
assert_contains "$T/missing.err" "$(re_escape "$D/nowhere.yaml")" "the missing config is named"
explain help --help
assert_exit 0 "$STATUS" "explain --help"
assert_contains "$T/help.out" "^usage: outrider explain -c FILE" "explain --help shows its usage"

# --- outrider check prints the rbac warnings and still passes
make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/payments
write_config "$T/lint.yaml" payments "$T/pki/shop-payments" <<'EOF'
listeners:
  - name: inbound
    mode: inbound
    protocol: tcp
    listen: 127.0.0.1:15006
    upstream: 127.0.0.1:8080
rbac:
  default: allow
  policies:
    - name: nothing
      action: allow
EOF
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" check -c "$T/lint.yaml" >"$T/check.out" 2>"$T/check.err" || STATUS=$?
check_sanitizers "$T/check.err" check
assert_exit 0 "$STATUS" "check passes with rbac warnings"
L=$(re_escape "$T/lint.yaml")
assert_contains "$T/check.err" "^$L: warning: rbac\.default is allow" "check warns about default allow"
assert_contains "$T/check.err" "^$L:[0-9]+:7: warning: policy \"nothing\" has no rules, so it matches no request" \
    "check warns about a policy with no rules, with its position"
