#!/usr/bin/env bash
# `outrider check -c FILE` on Kubernetes manifests (tests/data/kube/).
#
# good.yaml (a ConfigMap with the sidecar's config and policies, a
# Deployment with the application, the sidecar and the agent, a Service and
# a NetworkPolicy) exits 0 with "FILE: OK" and no finding, having checked one
# sidecar config; bad.yaml (a DaemonSet and a CronJob) exits 1 and prints
# each expected "file:line:col: error: Kind/name: container 'x': ..." line
# and the error count; bad_sidecar.yaml exits 1 with the missing rbac
# section reported at its line and column inside the ConfigMap;
# warnings.yaml exits 0 with "OK" and its four warnings; malformed.yaml
# exits 1 with "invalid YAML" at the line and column of the problem. A
# plain config still gets the config check (test_check.sh has the rest).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

DATA=$OUTRIDER_SRC/tests/data/kube

[ -x "$OUTRIDER" ] || die "no proxy binary at $OUTRIDER"

# check NAME: runs `outrider check` on tests/data/kube/NAME.yaml from that
# directory (messages then name the file as given); stderr in $T/NAME.err.
check() {
    STATUS=0
    (cd "$DATA" && timeout $((20 * SLOW)) "$OUTRIDER" check -c "$1.yaml") \
        >"$T/$1.out" 2>"$T/$1.err" || STATUS=$?
    check_sanitizers "$T/$1.err" "$1"
}

# has_line FILE TEXT: FILE has a line starting with TEXT (not a pattern).
has_line() {
    local lines
    if awk -v t="$2" 'index($0, t) == 1 { found = 1 } END { exit !found }' "$1"; then
        pass "$(basename "$1" .err): $2"
    else
        mapfile -t lines < <(excerpt "$1" 20)
        fail "$(basename "$1" .err): a line starting with: $2" "got:" "${lines[@]}"
    fi
}

count_lines() {
    grep -c -- "$2" "$1" || true
}

# --- a good multi-document manifest
check good
assert_exit 0 "$STATUS" "check good.yaml"
has_line "$T/good.err" "good.yaml: OK (Kubernetes manifest: 4 object(s), 1 workload(s), 3 container(s), 1 sidecar config(s) checked; 0 warning(s))"
assert_eq 1 "$(wc -l <"$T/good.err")" "good.yaml: the summary is the only line"

# --- the restricted profile broken
check bad
assert_exit 1 "$STATUS" "check bad.yaml"
has_line "$T/bad.err" "bad.yaml:15:20: error: DaemonSet/node-agent: hostNetwork: true shares the node's network namespace"
has_line "$T/bad.err" "bad.yaml:36:11: error: DaemonSet/node-agent: volume 'host' is a hostPath volume (/)"
has_line "$T/bad.err" "bad.yaml:25:25: error: DaemonSet/node-agent: container 'agent': securityContext.privileged is true; remove it or set it to false"
has_line "$T/bad.err" "bad.yaml:26:39: error: DaemonSet/node-agent: container 'agent': allowPrivilegeEscalation is not false; set securityContext.allowPrivilegeEscalation: false"
has_line "$T/bad.err" "bad.yaml:30:21: error: DaemonSet/node-agent: container 'agent': adds the capability SYS_ADMIN"
has_line "$T/bad.err" "bad.yaml:55:28: error: CronJob/report: container 'report': runs as root (runAsUser: 0)"
has_line "$T/bad.err" "bad.yaml:61:25: error: CronJob/report: container 'report': seccompProfile.type Unconfined"
has_line "$T/bad.err" "bad.yaml: 7 error(s), 0 warning(s) (Kubernetes manifest: 2 object(s), 2 workload(s), 2 container(s)"
assert_eq 7 "$(count_lines "$T/bad.err" ': error: ')" "bad.yaml: seven findings, no more"

# --- the sidecar's config, read out of its ConfigMap
check bad_sidecar
assert_exit 1 "$STATUS" "check bad_sidecar.yaml"
has_line "$T/bad_sidecar.err" "bad_sidecar.yaml:10:5: error: ConfigMap/payments-outrider outrider.yaml: no rbac section"
has_line "$T/bad_sidecar.err" "bad_sidecar.yaml: 1 error(s)"

# --- guidance only: warnings, exit 0
check warnings
assert_exit 0 "$STATUS" "check warnings.yaml"
has_line "$T/warnings.err" "warnings.yaml:7:1: warning: Pod/tool: automountServiceAccountToken is not set"
has_line "$T/warnings.err" "warnings.yaml:16:7: warning: Pod/tool: container 'tool': readOnlyRootFilesystem is not set"
has_line "$T/warnings.err" "warnings.yaml:20:7: warning: Pod/tool: container 'tool': no resources.limits.cpu, resources.limits.memory"
has_line "$T/warnings.err" "warnings.yaml:15:14: warning: Pod/tool: container 'tool': image registry.example/tool:latest is not pinned"
has_line "$T/warnings.err" "warnings.yaml: OK (Kubernetes manifest: 1 object(s), 1 workload(s), 1 container(s), 0 sidecar config(s) checked; 4 warning(s))"

# --- malformed YAML
check malformed
assert_exit 1 "$STATUS" "check malformed.yaml"
has_line "$T/malformed.err" "malformed.yaml:9:1: error: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 8, column 14)"

# --- a config is still checked as a config
cat >"$T/plain.yaml" <<'EOF'
service: payments
trust_domain: cluster.local
identity: {cert: c.pem, key: k.pem, bundle: b.pem}
listeners: []
EOF
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" check -c "$T/plain.yaml" 2>"$T/plain.err" || STATUS=$?
assert_exit 1 "$STATUS" "check on a config that is not a manifest"
assert_contains "$T/plain.err" "plain\.yaml:4:12: error: listeners: must not be empty" "a config gets the config loader's messages"
assert_not_contains "$T/plain.err" "Kubernetes" "a config is not taken for a manifest"

# --- the project's own manifests pass, and every workload's sidecar config is checked
for f in "$OUTRIDER_SRC"/config-examples/kubernetes/*.yaml; do
    name=$(basename "$f")
    STATUS=0
    timeout $((20 * SLOW)) "$OUTRIDER" check -c "$f" 2>"$T/own-$name.err" || STATUS=$?
    assert_exit 0 "$STATUS" "check config-examples/kubernetes/$name"
    assert_not_contains "$T/own-$name.err" ": error:" "config-examples/kubernetes/$name: no errors"
done
assert_contains "$T/own-orders.yaml.err" "1 sidecar config\(s\) checked" "orders.yaml: the sidecar's config was checked"
assert_contains "$T/own-frontend.yaml.err" "1 sidecar config\(s\) checked" "frontend.yaml: the sidecar's config was checked"
