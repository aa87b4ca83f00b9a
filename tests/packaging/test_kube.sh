#!/usr/bin/env bash
# The Kubernetes manifests of config-examples/kubernetes/, played for real
# with `podman kube play` by the steps of scripts/demo-kube.sh (sourced, so
# the demo and this test run the same code), on a podman network the test
# creates. The image outrider:dev is built from the build under test with
# scripts/image.sh first. Asserted:
# - the CA (Job outrider-ca-init on the PVC, then the Deployment) answers
#   /healthz, and both workload pods become ready (their sidecars' /ready);
# - GET /api/orders from the frontend app, through its outbound sidecar and
#   mTLS to the orders sidecar: 200 with the file the orders app serves, the
#   orders app logged the request line, and the orders sidecar's access log
#   names the caller spiffe://cluster.local/ns/web/sa/frontend, allowed by
#   the policy frontend-reads-orders;
# - GET /admin/orders: 403 from the orders sidecar (rbac deny in its access
#   log), and the orders app never saw /admin;
# - certificates living 24 s: requests keep flowing while the agents renew,
#   the serial the orders sidecar serves (/certs) changes and no request
#   fails;
# - everything the run created (pods, volumes, secrets, network) is gone
#   afterwards.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=scripts/demo-kube.sh
source "$OUTRIDER_SRC/scripts/demo-kube.sh"

trap 'kube_cleanup; on_exit' EXIT

BUILD_DIR=$(cd "$OUTRIDER_BIN/.." && pwd)
bash "$OUTRIDER_SRC/scripts/image.sh" "$BUILD_DIR" >"$T/image.log" 2>&1 ||
    die "scripts/image.sh $BUILD_DIR failed" "$(excerpt "$T/image.log")"
kube_need || die "the host lacks what podman kube play needs (above)"
kube_setup "$T/kube" || die "cannot create the podman network"
kube_build_app || die "cannot build the demo app image"

kube_start_ca || die "the CA did not come up"
pass "CA: Job outrider-ca-init finished, Deployment answers /healthz"
kube_start_workload orders "$KUBE_ORDERS_IP" || die "orders did not become ready"
kube_start_workload frontend "$KUBE_FRONTEND_IP" || die "frontend did not become ready"
assert_eq ready "$(kube_admin "$KUBE_ORDERS_POD" /ready)" "orders sidecar /ready"
assert_eq live "$(kube_admin "$KUBE_FRONTEND_POD" /live)" "frontend sidecar /live"

# log_until FILE ERE CMD...: CMD's output into FILE, taken again until FILE
# has a line matching ERE or 10 s pass (podman logs lags behind, and the
# sidecar's access-log writer flushes every 100 ms).
log_until() {
    local file=$1 ere=$2 deadline=$((SECONDS + 10))
    shift 2
    while :; do
        "$@" >"$file"
        if grep -E -q -- "$ere" "$file" || [ "$SECONDS" -ge "$deadline" ]; then
            return 0
        fi
        sleep 0.2
    done
}

kube_step_allowed
assert_eq 200 "$KUBE_STATUS" "allowed request: status"
assert_eq "orders: 3 open" "$KUBE_BODY" "allowed request: the orders app's file came back"
log_until "$T/orders-app.log" 'url:/api/orders$' kube_app_log "$KUBE_ORDERS_POD"
assert_contains "$T/orders-app.log" 'url:/api/orders$' "the orders app served /api/orders"
allowed_line='"peer_id":"spiffe://cluster.local/ns/web/sa/frontend","method":"GET","path":"/api/orders",.*"status":200,.*"rbac_policy":"frontend-reads-orders"'
log_until "$T/orders-access.log" "$allowed_line" kube_sidecar_log "$KUBE_ORDERS_POD"
assert_contains "$T/orders-access.log" "$allowed_line" \
    "orders access log: the frontend's SPIFFE ID, allowed by frontend-reads-orders"

kube_step_denied
assert_eq 403 "$KUBE_STATUS" "denied request: status 403"
denied_line='"path":"/admin/orders",.*"status":403,.*"rbac_decision":"deny"'
log_until "$T/orders-access.log" "$denied_line" kube_sidecar_log "$KUBE_ORDERS_POD"
assert_contains "$T/orders-access.log" "$denied_line" "orders access log: /admin/orders denied"
kube_app_log "$KUBE_ORDERS_POD" >"$T/orders-app.log"
assert_not_contains "$T/orders-app.log" 'url:/admin' "the orders app never saw /admin/orders"

kube_step_rotation
note "serial $KUBE_SERIAL_BEFORE -> $KUBE_SERIAL_AFTER, $KUBE_SENT requests, $KUBE_FAILED failed"
[[ -n $KUBE_SERIAL_BEFORE && $KUBE_SERIAL_BEFORE != None ]] || fail "no serial in the orders sidecar's /certs"
if [[ $KUBE_SERIAL_AFTER != "$KUBE_SERIAL_BEFORE" ]]; then
    pass "rotation: the served certificate's serial changed"
else
    fail "rotation: the serial stayed $KUBE_SERIAL_BEFORE for 90 s"
fi
((KUBE_SENT >= 5)) && pass "rotation: $KUBE_SENT requests sent" || fail "rotation: only $KUBE_SENT requests sent"
assert_eq 0 "$KUBE_FAILED" "rotation: no request failed"

net=$KUBE_NET
kube_cleanup
left=$(podman pod ls -q --filter "name=$KUBE_P"; podman volume ls -q | grep "^$KUBE_P" || true
       podman secret ls --format '{{.Name}}' | grep "^$KUBE_P" || true
       podman network ls -q --filter "name=$net")
assert_eq "" "$left" "cleanup: no pod, volume, secret or network of the run is left"
