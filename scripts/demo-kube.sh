#!/usr/bin/env bash
# Plays the Kubernetes manifests of config-examples/kubernetes/ for real with
# `podman kube play`, on a podman network of its own (nothing else is
# contacted): the CA, then the workloads "orders" and "frontend", each with
# its app, the outrider sidecar and outrider-agent. Then it shows
#   1. a request from the frontend app through its outbound sidecar, over
#      mTLS, to the orders sidecar and app (allowed by a policy);
#   2. a request the orders policy denies with 403 (the app never sees it);
#   3. certificates that live 24 s renewed by the agents and swapped by the
#      sidecars while requests keep flowing.
#
#   scripts/demo-kube.sh            run the demo (`make demo-kube` builds the
#                                   image outrider:dev first)
#   source scripts/demo-kube.sh     define the steps only (tests/packaging/test_kube.sh)
#
# podman 4.3 lacks parts of Kubernetes that the manifests use, so what is
# played is a copy adapted by kube_overlay (below); docs/deploy.md lists each
# difference. Everything created (pods, volumes, podman secrets, the network,
# the demo app image) is removed on exit, also on failure; every wait is
# bounded. Environment: OUTRIDER_IMAGE (default outrider:dev), KUBE_CA_TTL
# (default 24s), KUBE_WORKDIR (default a new temp dir).

KUBE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_DIR=$KUBE_SRC/config-examples/kubernetes
KUBE_IMAGE=${OUTRIDER_IMAGE:-outrider:dev}
KUBE_APP_IMAGE=localhost/outrider-demo-app:0.1.0
KUBE_CA_TTL=${KUBE_CA_TTL:-24s}
KUBE_PYTHON=/usr/bin/python3      # Debian's, with the yaml module
KUBE_P=okube$$                    # prefix of every podman object made here

kube_say() { printf '\n== %s\n' "$*"; }
kube_die() { printf 'demo-kube: %s\n' "$*" >&2; return 1; }

# What the demo needs on the host, installed when missing (as root).
kube_need() {
    command -v podman >/dev/null || { kube_die "podman is not installed (apt-get install podman)"; return 1; }
    "$KUBE_PYTHON" -c 'import yaml' 2>/dev/null ||
        { kube_die "$KUBE_PYTHON has no yaml module (apt-get install python3-yaml)"; return 1; }
    local missing=()
    command -v catatonit >/dev/null || missing+=(catatonit)   # podman's pod infra needs it
    [[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
        missing+=(busybox-static)
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || { kube_die "missing packages ${missing[*]}: apt-get install them"; return 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
            { kube_die "apt-get install ${missing[*]} failed"; return 1; }
    fi
    podman image exists "$KUBE_IMAGE" ||
        { kube_die "no image $KUBE_IMAGE: run 'make image' (or bash scripts/image.sh BUILDDIR)"; return 1; }
}

# Names and addresses of this run. $1: a work directory.
kube_setup() {
    KT=$1
    mkdir -p "$KT"
    : >"$KT/pods"; : >"$KT/volumes"; : >"$KT/secrets"
    KUBE_NET=$KUBE_P-net
    local n=$((100 + $$ % 100))
    KUBE_SUBNET=10.89.$n.0/24
    KUBE_CA_IP=10.89.$n.10
    KUBE_ORDERS_IP=10.89.$n.20
    KUBE_FRONTEND_IP=10.89.$n.30
    KUBE_CA_POD=$KUBE_P-outrider-ca-pod-0
    KUBE_ORDERS_POD=$KUBE_P-orders-pod-0
    KUBE_FRONTEND_POD=$KUBE_P-frontend-pod-0
    podman network create --subnet "$KUBE_SUBNET" "$KUBE_NET" >/dev/null ||
        { kube_die "cannot create the podman network $KUBE_NET ($KUBE_SUBNET)"; return 1; }
    echo "$KUBE_NET" >"$KT/network"
}

# Removes everything this run made; safe to call more than once, and it
# never fails (no ERR trap of a caller fires in it).
kube_cleanup() {
    [[ -n ${KT:-} && -d $KT ]] || return 0
    local x
    if [[ -f $KT/pods ]]; then
        while read -r x; do podman pod rm -f -t 2 "$x" >/dev/null 2>&1 || true; done <"$KT/pods"
    fi
    if [[ -f $KT/volumes ]]; then
        while read -r x; do podman volume rm -f "$x" >/dev/null 2>&1 || true; done <"$KT/volumes"
    fi
    if [[ -f $KT/secrets ]]; then
        while read -r x; do podman secret rm "$x" >/dev/null 2>&1 || true; done <"$KT/secrets"
    fi
    if [[ -f $KT/network ]]; then
        podman network rm -f "$(cat "$KT/network")" >/dev/null 2>&1 || true
    fi
    if [[ -f $KT/app-image ]]; then
        podman rmi -f "$KUBE_APP_IMAGE" >/dev/null 2>&1 || true
    fi
    rm -f "$KT/pods" "$KT/volumes" "$KT/secrets" "$KT/network" "$KT/app-image"
}

# The demo app: busybox httpd FROM scratch, serving /www and logging every
# request line ("url:/api/orders") on stderr, which `podman logs` shows.
kube_build_app() {
    local d=$KT/app
    mkdir -p "$d/root/bin" "$d/root/www/api" "$d/root/etc"
    cp /bin/busybox "$d/root/bin/busybox"
    echo "orders: 3 open" >"$d/root/www/api/orders"
    echo "demo app" >"$d/root/www/index.html"
    echo 'app:x:65532:65532:app:/:/bin/busybox' >"$d/root/etc/passwd"
    printf 'FROM scratch\nCOPY root/ /\nUSER 65532:65532\nENTRYPOINT ["/bin/busybox"]\n' >"$d/Containerfile"
    podman build -q --network=none --pull=never -t "$KUBE_APP_IMAGE" "$d" >/dev/null ||
        { kube_die "cannot build the demo app image"; return 1; }
    touch "$KT/app-image"
}

# kube_overlay TAG OUT FILE...: the documents of FILE... as podman 4.3 can
# play them (docs/deploy.md, "What differs under podman"). Records the pods,
# volumes and podman secrets it names for kube_cleanup, and writes each
# Secret used through secretKeyRef as OUT.secret-NAME.json.
kube_overlay() {
    local tag=$1 out=$2; shift 2
    KUBE_TAG=$tag KUBE_OUT=$out KUBE_IMAGE=$KUBE_IMAGE KUBE_P=$KUBE_P KUBE_CA_TTL=$KUBE_CA_TTL \
    KUBE_MAP="outrider-ca.outrider-system.svc.cluster.local=$KUBE_CA_IP orders.shop.svc.cluster.local=$KUBE_ORDERS_IP" \
        "$KUBE_PYTHON" - "$@" <<'PY' || { kube_die "cannot adapt $* for podman"; return 1; }
import base64, json, os, sys, yaml

P, tag, out = os.environ["KUBE_P"], os.environ["KUBE_TAG"], os.environ["KUBE_OUT"]
names = dict(kv.split("=") for kv in os.environ["KUBE_MAP"].split())
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
pods, volumes, secrets, played, fills = [], [], [], [], []
secret_docs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}

def secret_data(d):
    data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
    data.update(d.get("stringData") or {})
    return data

def rename(s):
    # Service names: podman has no cluster DNS here, so the pods' static IPs.
    for k, v in names.items():
        s = s.replace(k, v)
    return s

def walk(x):
    if isinstance(x, dict):
        return {k: walk(v) for k, v in x.items()}
    if isinstance(x, list):
        return [walk(v) for v in x]
    return rename(x) if isinstance(x, str) else x

def adapt_container(c):
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        c.pop(probe, None)                   # podman runs them with curl, via systemd
    c.pop("ports", None)                     # podman would publish them on the host
    if c["image"] == "outrider:0.1.0":
        c["image"] = os.environ["KUBE_IMAGE"]
    elif c["image"] == "outrider-demo-app:0.1.0":
        c["image"] = "localhost/outrider-demo-app:0.1.0"
    cmd = c.get("command", [])
    if cmd[:2] == ["/usr/bin/outrider-ca", "serve"] and "--ttl" in cmd:
        cmd[cmd.index("--ttl") + 1] = os.environ["KUBE_CA_TTL"]
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            name = ref["name"]
            ref["name"] = f"{P}-{name}"
            path = f"{out}.secret-{name}.json"
            data = secret_data(secret_docs[name])
            json.dump({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}, open(path, "w"))
            secrets.append((f"{P}-{name}", path))
    for m in c.get("volumeMounts", []):
        m["name"] = f"{P}-{tag}-{m['name']}"
    return c

def adapt_pod(spec, name):
    # Native sidecars: podman 4.3 restarts an exited init container under the
    # pod's restart policy and does not know restartPolicy: Always on one. The
    # sidecar becomes a regular container, preceded by a copy that runs once
    # (outrider-agent --once) so the identity exists before the others start.
    inits, sidecars = [], []
    for c in spec.get("initContainers", []):
        if c.pop("restartPolicy", None) == "Always":
            once = json.loads(json.dumps(c))
            once["name"] = c["name"] + "-once"
            once["command"] = c["command"] + ["--once"]
            inits.append(once)
            sidecars.append(c)
        else:
            inits.append(c)
    spec["initContainers"] = [adapt_container(c) for c in inits]
    spec["containers"] = [adapt_container(c) for c in sidecars + spec["containers"]]
    if not spec["initContainers"]:
        del spec["initContainers"]
    if spec.get("restartPolicy", "Always") == "Always":
        spec["restartPolicy"] = "OnFailure"
    for v in spec.get("volumes", []):
        v["name"] = f"{P}-{tag}-{v['name']}"
        if "secret" in v:
            # Secret volumes crash podman 4.3.1, and its ConfigMap files are
            # 0644: a volume filled by the script with the Secret's files,
            # owned by the pod's user, mode defaultMode.
            sec = v.pop("secret")
            vol = f"{P}-{tag}-{sec['secretName']}"
            v["persistentVolumeClaim"] = {"claimName": vol}
            d = f"{out}.vol-{sec['secretName']}"
            os.makedirs(d, exist_ok=True)
            for k, val in secret_data(secret_docs[sec["secretName"]]).items():
                open(os.path.join(d, k), "w").write(val)
            fills.append((vol, d, "%o" % sec.get("defaultMode", 0o644),
                          spec.get("securityContext", {}).get("runAsUser", 0)))
            volumes.append(vol)
        elif "configMap" in v:
            v["configMap"]["name"] = f"{P}-{tag}-{v['configMap']['name']}"
            volumes.append(v["configMap"]["name"])
        elif "persistentVolumeClaim" in v:
            v["persistentVolumeClaim"]["claimName"] = f"{P}-{v['persistentVolumeClaim']['claimName']}"
        else:
            volumes.append(v["name"])        # emptyDir: a podman volume of that name
    pods.append(name)
    return spec

for d in docs:
    kind, meta = d["kind"], d["metadata"]
    meta.pop("namespace", None)              # podman has no namespaces
    if kind == "Deployment":
        meta["name"] = f"{P}-{meta['name']}"
        adapt_pod(d["spec"]["template"]["spec"], meta["name"] + "-pod-0")
        played.append(d)
    elif kind == "Job":                      # no Jobs in podman: a pod that runs once
        spec = d["spec"]["template"]["spec"]
        name = f"{P}-{meta['name']}"
        adapt_pod(spec, name)
        spec["restartPolicy"] = "Never"
        played.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    elif kind == "PersistentVolumeClaim":
        meta["name"] = f"{P}-{meta['name']}"
        volumes.append(meta["name"])
        played.append(d)
    elif kind == "ConfigMap":
        played.append(d)
    # Namespace, Service, NetworkPolicy, Secret: podman 4.3 plays none of them.

for d in played:
    if d["kind"] == "ConfigMap":
        d["metadata"]["name"] = f"{P}-{tag}-{d['metadata']['name']}"
# ConfigMaps first: podman looks them up while it makes the pods.
played.sort(key=lambda d: d["kind"] != "ConfigMap" and d["kind"] != "PersistentVolumeClaim")
yaml.safe_dump_all([walk(d) for d in played], open(out, "w"), sort_keys=False)
with open(out + ".objects", "w") as f:
    for p in pods: print("pod", p, file=f)
    for v in volumes: print("volume", v, file=f)
    for s, path in secrets: print("secret", s, path, file=f)
    for vol, d, mode, uid in fills: print("fill", vol, d, mode, uid, file=f)
PY
    local what name path mode uid mnt
    while read -r what name path mode uid; do
        case $what in
        pod) echo "$name" >>"$KT/pods" ;;
        volume) echo "$name" >>"$KT/volumes" ;;
        secret)
            grep -qxF "$name" "$KT/secrets" || echo "$name" >>"$KT/secrets"
            podman secret rm "$name" >/dev/null 2>&1 || true
            podman secret create "$name" "$path" >/dev/null ||
                { kube_die "cannot create the podman secret $name"; return 1; } ;;
        fill)
            echo "$name" >>"$KT/volumes"
            podman volume create "$name" >/dev/null &&
                mnt=$(podman volume inspect -f '{{.Mountpoint}}' "$name") &&
                cp "$path"/* "$mnt"/ && chown -R "$uid:$uid" "$mnt" && chmod "$mode" "$mnt"/* ||
                { kube_die "cannot fill the volume $name"; return 1; } ;;
        esac
    done <"$out.objects"
}

# kube_play FILE IP: play an adapted file with the pod at IP on our network.
kube_play() {
    podman kube play --network "$KUBE_NET" --ip "$2" "$1" >"$1.play.log" 2>&1 ||
        { cat "$1.play.log" >&2; kube_die "podman kube play $1 failed"; return 1; }
}

# kube_until SECONDS CMD...: run CMD every 0.5 s until it succeeds.
kube_until() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.5
    done
}

# The CA: a signing root made outside the pods (as an operator would), the
# Secret outrider-ca-signer, the Job outrider-ca-init on the PVC, then the
# Deployment.
kube_start_ca() {
    mkdir -p "$KT/signer" && chmod 0777 "$KT/signer"
    podman run --rm --network=none --user 65532:65532 -v "$KT/signer:/out" \
        --entrypoint /usr/bin/outrider-ca "$KUBE_IMAGE" init --dir /out/root \
        --trust-domain cluster.local >"$KT/signer.log" 2>&1 ||
        { cat "$KT/signer.log" >&2; kube_die "cannot make the signing root"; return 1; }
    "$KUBE_PYTHON" - "$KT/signer/root" >"$KT/signer-secret.yaml" <<'PY'
import sys, yaml
d = sys.argv[1]
print(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "outrider-ca-signer", "namespace": "outrider-system"},
                      "stringData": {"ca.pem": open(d + "/ca.pem").read(),
                                     "ca.key": open(d + "/ca.key").read()}}))
PY
    /usr/bin/python3 -c 'import yaml,sys
print(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "outrider-ca-bundle"}, "data": {"bundle.pem": open(sys.argv[1]).read()}}))' \
        "$KT/signer/root/ca.pem" >"$KT/ca-bundle.yaml"
    "$KUBE_PYTHON" -c 'import yaml,sys
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for kinds, out in ((("PersistentVolumeClaim", "Job"), sys.argv[2]), (("Deployment",), sys.argv[3])):
    yaml.safe_dump_all([d for d in docs if d["kind"] in kinds], open(out, "w"))' \
        "$KUBE_DIR/ca.yaml" "$KT/ca-init.in.yaml" "$KT/ca-deploy.in.yaml" || return 1
    kube_overlay ca-init "$KT/ca-init.yaml" "$KT/ca-init.in.yaml" "$KT/signer-secret.yaml" || return 1
    kube_play "$KT/ca-init.yaml" "${KUBE_CA_IP%.*}.11" || return 1
    local c=$KUBE_P-outrider-ca-init-outrider-ca
    kube_until 30 kube_exited "$c" || { kube_die "the Job outrider-ca-init did not finish in 30 s"; return 1; }
    [[ $(podman inspect -f '{{.State.ExitCode}}' "$c") == 0 ]] ||
        { podman logs "$c" >&2; kube_die "outrider-ca init failed (above)"; return 1; }
    podman pod rm -f "$KUBE_P-outrider-ca-init" >/dev/null
    kube_overlay ca "$KT/ca.yaml" "$KT/ca-deploy.in.yaml" || return 1
    kube_play "$KT/ca.yaml" "$KUBE_CA_IP" || return 1
    kube_until 20 curl -skf --max-time 2 "https://$KUBE_CA_IP:8443/healthz" ||
        { podman logs "$KUBE_CA_POD-outrider-ca" >&2; kube_die "the CA did not answer /healthz in 20 s"; return 1; }
}

kube_exited() { [[ $(podman inspect -f '{{.State.Status}}' "$1") == exited ]]; }

# kube_start_workload NAME IP: a join token from the CA (kubectl exec in a
# cluster), the Secret NAME-join-token, the CA bundle ConfigMap and the
# workload's manifest; waits until its sidecar is ready.
kube_start_workload() {
    local name=$1 ip=$2 ns
    ns=$([[ $name == orders ]] && echo shop || echo web)
    local token
    token=$(podman exec "$KUBE_CA_POD-outrider-ca" /usr/bin/outrider-ca token create \
        --dir /var/lib/outrider-ca/state --spiffe-id "spiffe://cluster.local/ns/$ns/sa/$name" --ttl 10m) ||
        { kube_die "cannot create a join token for $name"; return 1; }
    printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: %s-join-token, namespace: %s}\nstringData: {token: "%s"}\n' \
        "$name" "$ns" "$token" >"$KT/$name-token.yaml"
    kube_overlay "$name" "$KT/$name.yaml" "$KUBE_DIR/$name.yaml" "$KT/ca-bundle.yaml" "$KT/$name-token.yaml" || return 1
    kube_play "$KT/$name.yaml" "$ip" || return 1
    local pod=$KUBE_P-$name-pod-0
    kube_until 40 kube_admin "$pod" /ready || {
        podman logs "$pod-outrider-agent-once" >&2 2>&1; podman logs "$pod-outrider" >&2 2>&1
        kube_die "the sidecar of $name was not ready within 40 s"; return 1; }
}

# kube_admin POD PATH: GET the sidecar's admin PATH from inside the pod (the
# app container has busybox wget; the pod shares one network namespace).
kube_admin() { podman exec "$1-app" /bin/busybox wget -q -O - "http://127.0.0.1:15000$2"; }

# kube_call PATH: the frontend app asks orders for PATH through its outbound
# sidecar; prints the HTTP status, then the body.
kube_call() {
    # (busybox wget -T crashes in this build: the bound is timeout's.)
    { timeout 10 podman exec "$KUBE_FRONTEND_POD-app" /bin/busybox wget -S -q -O - \
        "http://127.0.0.1:15001$1" 2>&1 || true; } | "$KUBE_PYTHON" -c '
import re, sys
text = sys.stdin.read()
m = re.findall(r"HTTP/1\.[01] (\d{3})", text)
print(m[-1] if m else "000")
print("\n".join(l for l in text.splitlines() if not l.startswith("  ") and not l.startswith("wget:")))'
}

# kube_serial POD: the serial of the certificate the sidecar serves (/certs).
kube_serial() {
    kube_admin "$1" /certs | "$KUBE_PYTHON" -c '
import json, re, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
    def find(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "serial": return v
                r = find(v)
                if r: return r
        if isinstance(x, list):
            for v in x:
                r = find(v)
                if r: return r
    print(find(d))
except ValueError:
    print(re.search(r"serial\W+([0-9A-Fa-f:]+)", text).group(1))'
}

kube_app_log() { podman logs "$1-app" 2>&1; }
# The sidecar's access log: its JSON lines on stdout (the diagnostic log is on stderr).
# Empty (not a failure) while the sidecar has logged no request yet.
kube_sidecar_log() { podman logs "$1-outrider" 2>/dev/null | grep '^{' || true; }

# Step 1: an allowed request. Sets KUBE_STATUS, KUBE_BODY.
kube_step_allowed() {
    local r; r=$(kube_call /api/orders)
    KUBE_STATUS=${r%%$'\n'*}; KUBE_BODY=${r#*$'\n'}
}

# Step 2: a request the orders policy denies.
kube_step_denied() {
    local r; r=$(kube_call /admin/orders)
    KUBE_STATUS=${r%%$'\n'*}; KUBE_BODY=${r#*$'\n'}
}

# Step 3: requests flow while the orders certificate is renewed. Sets
# KUBE_SERIAL_BEFORE/AFTER, KUBE_SENT, KUBE_FAILED (bounded: 90 s).
kube_step_rotation() {
    KUBE_SERIAL_BEFORE=$(kube_serial "$KUBE_ORDERS_POD")
    KUBE_SERIAL_AFTER=$KUBE_SERIAL_BEFORE
    KUBE_SENT=0 KUBE_FAILED=0
    local end=$((SECONDS + 90)) after_change=0 s
    while ((SECONDS < end && after_change < 5)); do
        s=$(kube_call /api/orders); s=${s%%$'\n'*}
        KUBE_SENT=$((KUBE_SENT + 1))
        [[ $s == 200 ]] || { KUBE_FAILED=$((KUBE_FAILED + 1)); echo "request $KUBE_SENT: status $s" >&2; }
        KUBE_SERIAL_AFTER=$(kube_serial "$KUBE_ORDERS_POD")
        [[ $KUBE_SERIAL_AFTER != "$KUBE_SERIAL_BEFORE" ]] && after_change=$((after_change + 1))
        sleep 0.3
    done
}

kube_main() {
    set -euo pipefail
    kube_need
    KUBE_WORK=${KUBE_WORKDIR:-$(mktemp -d /tmp/outrider-kube.XXXXXX)}
    trap 'kube_cleanup; rm -rf "$KUBE_WORK"' EXIT
    trap 'exit 130' INT TERM
    kube_setup "$KUBE_WORK"
    kube_say "building the demo app image (busybox httpd, FROM scratch)"
    kube_build_app
    kube_say "CA: signing root, Job outrider-ca-init, Deployment outrider-ca at $KUBE_CA_IP (certificates live $KUBE_CA_TTL)"
    kube_start_ca
    kube_say "workload orders at $KUBE_ORDERS_IP"
    kube_start_workload orders "$KUBE_ORDERS_IP"
    kube_say "workload frontend at $KUBE_FRONTEND_IP"
    kube_start_workload frontend "$KUBE_FRONTEND_IP"
    podman pod ps --filter "name=$KUBE_P" --format '{{.Name}}  {{.Status}}  {{.NumberOfContainers}} containers'

    kube_say "1. frontend app -> 127.0.0.1:15001 (outbound sidecar) -> mTLS -> orders sidecar -> app: GET /api/orders"
    kube_step_allowed
    echo "status $KUBE_STATUS, body: $KUBE_BODY"
    echo "orders app log:";  kube_app_log "$KUBE_ORDERS_POD" | grep 'url:' | tail -2
    echo "orders sidecar access log:"; kube_sidecar_log "$KUBE_ORDERS_POD" | grep '"path":"/api/orders"' | tail -1

    kube_say "2. GET /admin/orders: no policy allows it"
    kube_step_denied
    echo "status $KUBE_STATUS"
    kube_sidecar_log "$KUBE_ORDERS_POD" | grep '"path":"/admin/orders"' | tail -1
    echo "orders app saw /admin/orders: $(kube_app_log "$KUBE_ORDERS_POD" | grep -c 'url:/admin' || true) times"

    kube_say "3. requests while the orders certificate is renewed"
    kube_step_rotation
    echo "serial before $KUBE_SERIAL_BEFORE, after $KUBE_SERIAL_AFTER; $KUBE_SENT requests, $KUBE_FAILED failed"
    [[ $KUBE_SERIAL_AFTER != "$KUBE_SERIAL_BEFORE" && $KUBE_FAILED == 0 ]] ||
        kube_die "the rotation did not go as expected"
    kube_say "done; removing the pods, volumes, secrets and the network"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    kube_main "$@"
fi
