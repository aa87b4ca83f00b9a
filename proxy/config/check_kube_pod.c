/*
 * check_kube_pod: the rules a pod spec and each of its containers are held
 * to (docs/cli-and-logs.md, "Kubernetes manifests", lists them).
 *
 * Errors are what the Kubernetes "restricted" Pod Security Standard
 * refuses: privileged containers, the node's namespaces, ports and files,
 * root, privilege escalation, capabilities, no or an unconfined seccomp
 * profile, an unmasked /proc, unsafe sysctls, SELinux and AppArmor
 * loosened. Warnings are the project's guidance beyond the profile: a
 * read-only root file system, cpu and memory requests and limits, pinned
 * images, no API token, a fixed non-zero user.
 *
 * A setting the pod's securityContext can hold (runAsUser, runAsNonRoot,
 * seccompProfile) is taken from the container when it has it, else from
 * the pod. A finding about a value points at the value; one about a
 * missing key points at the container's securityContext (or, without one,
 * at the container), or at the pod's `spec` for pod-level keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_kube_int.h"

/* ---- helpers ---- */

static yaml_node_t *get(kube_pod *pod, const yaml_node_t *map, const char *name)
{
    return kube_get(pod->doc, map, name, NULL);
}

/* securityContext.<name> of the container, else of the pod. */
static yaml_node_t *effective(kube_pod *pod, const kube_container *c, const char *name)
{
    yaml_node_t *v = get(pod, c->sc, name);
    return v ? v : get(pod, pod->psc, name);
}

static const yaml_node_t *missing_at(const kube_container *c)
{
    return c->sc_key ? c->sc_key : c->node;
}

static bool is_uid(const char *text, unsigned long long *uid)
{
    char *end;
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    *uid = strtoull(text, &end, 10);
    return *end == '\0';
}

static bool in_list(const char *text, const char *const *list, size_t n)
{
    for (size_t i = 0; text != NULL && i < n; i++)
        if (strcmp(text, list[i]) == 0)
            return true;
    return false;
}

/* ---- SELinux and AppArmor, at pod or container level ---- */

static void check_selinux(kube_pod *pod, const kube_container *c, const yaml_node_t *sc)
{
    static const char *const types[] = {"", "container_t", "container_init_t",
                                        "container_kvm_t", "container_engine_t"};
    yaml_node_t *sel = get(pod, sc, "seLinuxOptions");
    yaml_node_t *type = get(pod, sel, "type");
    const char *text = kube_scalar(type);
    const char *in = c ? "" : " in the pod's securityContext";
    if (type != NULL && !in_list(text, types, sizeof types / sizeof types[0]))
        kube_report(pod, c, OR_DIAG_ERROR, type, "seLinuxOptions.type %s%s is not a container "
                    "type; remove it or use container_t", text ? text : "(not a string)", in);
    static const char *const fixed[] = {"user", "role"};
    for (size_t i = 0; i < 2; i++) {
        yaml_node_t *v = get(pod, sel, fixed[i]);
        const char *t = kube_scalar(v);
        if (v != NULL && (t == NULL || t[0] != '\0'))
            kube_report(pod, c, OR_DIAG_ERROR, v, "seLinuxOptions.%s is set%s; remove it%s",
                        fixed[i], in, c ? " (the runtime chooses)" : "");
    }
    yaml_node_t *aa = get(pod, get(pod, sc, "appArmorProfile"), "type");
    if (aa != NULL && kube_scalar(aa) && strcmp(kube_scalar(aa), "Unconfined") == 0)
        kube_report(pod, c, OR_DIAG_ERROR, aa, "appArmorProfile.type%s is Unconfined; set it to "
                    "RuntimeDefault", in);
}

/* container.apparmor.security.beta.kubernetes.io/NAME: unconfined */
static void check_apparmor_annotations(kube_pod *pod)
{
    static const char prefix[] = "container.apparmor.security.beta.kubernetes.io/";
    yaml_node_t *ann = get(pod, pod->meta, "annotations");
    if (ann == NULL || ann->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = ann->data.mapping.pairs.start; p < ann->data.mapping.pairs.top;
         p++) {
        const char *key = kube_scalar(yaml_document_get_node(pod->doc, p->key));
        yaml_node_t *value = yaml_document_get_node(pod->doc, p->value);
        const char *text = kube_scalar(value);
        if (key && text && strncmp(key, prefix, sizeof prefix - 1) == 0 &&
            strcmp(text, "unconfined") == 0)
            kube_report(pod, NULL, OR_DIAG_ERROR, value, "annotation %s: unconfined runs the "
                        "container without AppArmor; use runtime/default", key);
    }
}

/* ---- the pod ---- */

static void check_host_namespaces(kube_pod *pod)
{
    static const char *const keys[] = {"hostNetwork", "hostPID", "hostIPC"};
    static const char *const what[] = {"network", "process (PID)", "IPC"};
    for (size_t i = 0; i < 3; i++) {
        yaml_node_t *v = get(pod, pod->spec, keys[i]);
        if (kube_is_true(v))
            kube_report(pod, NULL, OR_DIAG_ERROR, v, "%s: true shares the node's %s namespace with "
                        "the pod; remove it or set %s: false", keys[i], what[i], keys[i]);
    }
}

static void check_volumes(kube_pod *pod)
{
    yaml_node_t *volumes = get(pod, pod->spec, "volumes");
    for (size_t i = 0; i < kube_length(volumes); i++) {
        yaml_node_t *v = kube_item(pod->k, pod->doc, volumes, i), *key;
        yaml_node_t *host = kube_get(pod->doc, v, "hostPath", &key);
        if (host == NULL)
            continue;
        const char *name = kube_get_text(pod->doc, v, "name");
        const char *path = kube_get_text(pod->doc, host, "path");
        kube_report(pod, NULL, OR_DIAG_ERROR, key, "volume '%s' is a hostPath volume (%s): it "
                    "exposes the node's files; use an emptyDir, configMap, secret or "
                    "persistentVolumeClaim volume instead", name ? name : "?",
                    path ? path : "no path");
    }
}

static void check_sysctls(kube_pod *pod)
{
    static const char *const safe[] = {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"};
    yaml_node_t *sysctls = get(pod, pod->psc, "sysctls");
    for (size_t i = 0; i < kube_length(sysctls); i++) {
        yaml_node_t *name = get(pod, kube_item(pod->k, pod->doc, sysctls, i), "name");
        const char *text = kube_scalar(name);
        if (name != NULL && !in_list(text, safe, sizeof safe / sizeof safe[0]))
            kube_report(pod, NULL, OR_DIAG_ERROR, name, "sysctl %s is not one of the safe, "
                        "namespaced sysctls; remove it", text ? text : "(not a string)");
    }
}

static void check_token(kube_pod *pod)
{
    yaml_node_t *v = get(pod, pod->spec, "automountServiceAccountToken");
    if (kube_is_false(v))
        return;
    kube_report(pod, NULL, OR_DIAG_WARNING, v ? v : pod->spec_key, "automountServiceAccountToken "
                "is %s: every container gets a Kubernetes API token; set "
                "automountServiceAccountToken: false in the pod spec", v ? "not false" : "not set");
}

/* ---- containers: the restricted profile ---- */

static void check_privileged(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *v = get(pod, c->sc, "privileged");
    if (kube_is_true(v))
        kube_report(pod, c, OR_DIAG_ERROR, v, "securityContext.privileged is true; remove it or "
                    "set it to false");
    v = get(pod, c->sc, "allowPrivilegeEscalation");
    if (kube_is_false(v))
        return;
    kube_report(pod, c, OR_DIAG_ERROR, v ? v : missing_at(c), "allowPrivilegeEscalation is %s; set "
                "securityContext.allowPrivilegeEscalation: false", v ? "not false" : "not set");
}

static void check_capabilities(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *caps_key, *drop_key;
    yaml_node_t *caps = kube_get(pod->doc, c->sc, "capabilities", &caps_key);
    yaml_node_t *drop = kube_get(pod->doc, caps, "drop", &drop_key);
    bool all = false;
    for (size_t i = 0; i < kube_length(drop) && !all; i++) {
        const char *text = kube_scalar(kube_item(pod->k, pod->doc, drop, i));
        all = text != NULL && strcmp(text, "ALL") == 0;
    }
    if (!all)
        kube_report(pod, c, OR_DIAG_ERROR,
                    drop_key   ? drop_key : caps_key ? caps_key : missing_at(c), "capabilities are "
                    "not dropped; set securityContext.capabilities.drop: [ALL]");
    yaml_node_t *add = get(pod, caps, "add");
    for (size_t i = 0; i < kube_length(add); i++) {
        yaml_node_t *item = kube_item(pod->k, pod->doc, add, i);
        const char *text = kube_scalar(item);
        if (item != NULL && (text == NULL || strcmp(text, "NET_BIND_SERVICE") != 0))
            kube_report(pod, c, OR_DIAG_ERROR, item, "adds the capability %s; remove it (only "
                        "NET_BIND_SERVICE may be added)", text ? text : "(not a string)");
    }
}

static void check_user(kube_pod *pod, const kube_container *c)
{
    unsigned long long uid = 0;
    yaml_node_t *user = effective(pod, c, "runAsUser");
    yaml_node_t *nonroot = effective(pod, c, "runAsNonRoot");
    bool has_uid = is_uid(kube_scalar(user), &uid);
    if (has_uid && uid == 0)
        kube_report(pod, c, OR_DIAG_ERROR, user, "runs as root (runAsUser: 0); set runAsUser to a "
                    "non-zero uid such as 65532 and runAsNonRoot: true");
    else if (!kube_is_true(nonroot) && !has_uid)
        kube_report(pod, c, OR_DIAG_ERROR, nonroot ? nonroot : missing_at(c), "may run as root: "
                    "runAsNonRoot is %s and no runAsUser is set, so the image decides; set "
                    "securityContext.runAsNonRoot: true and runAsUser: 65532 (in the pod or the "
                    "container)", nonroot ? "not true" : "not set");
    else if (!kube_is_true(nonroot))
        kube_report(pod, c, OR_DIAG_ERROR, nonroot ? nonroot : missing_at(c), "runAsNonRoot is %s "
                    "(runAsUser %llu alone does not satisfy the restricted profile); set "
                    "securityContext.runAsNonRoot: true", nonroot ? "not true" : "not set", uid);
    else if (!has_uid)
        kube_report(pod, c, OR_DIAG_WARNING, user ? user : missing_at(c), "no fixed non-zero "
                    "runAsUser: the image's user must not be root or the container will not start; "
                    "set securityContext.runAsUser: 65532");
}

static void check_seccomp(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *profile = effective(pod, c, "seccompProfile");
    yaml_node_t *type = get(pod, profile, "type");
    const char *text = kube_scalar(type);
    if (text != NULL && (!strcmp(text, "RuntimeDefault") || !strcmp(text, "Localhost")))
        return;
    if (type != NULL)
        kube_report(pod, c, OR_DIAG_ERROR, type, "seccompProfile.type %s runs without a "
                    "system-call filter; set it to RuntimeDefault (or Localhost)",
                    text ? text : "(not a string)");
    else
        kube_report(pod, c, OR_DIAG_ERROR, profile ? profile : missing_at(c), "no seccomp profile; "
                    "set securityContext.seccompProfile.type: RuntimeDefault (in the pod or the "
                    "container)");
}

static void check_proc_and_ports(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *proc = get(pod, c->sc, "procMount");
    const char *text = kube_scalar(proc);
    if (proc != NULL && (text == NULL || strcmp(text, "Default") != 0))
        kube_report(pod, c, OR_DIAG_ERROR, proc, "procMount %s unmasks /proc; remove it or set "
                    "procMount: Default", text ? text : "(not a string)");
    yaml_node_t *ports = get(pod, c->node, "ports");
    for (size_t i = 0; i < kube_length(ports); i++) {
        yaml_node_t *hp = get(pod, kube_item(pod->k, pod->doc, ports, i), "hostPort");
        const char *port = kube_scalar(hp);
        if (hp != NULL && (port == NULL || strcmp(port, "0") != 0))
            kube_report(pod, c, OR_DIAG_ERROR, hp, "hostPort %s opens a port on the node; remove "
                        "it and reach the container through a Service", port ? port : "?");
    }
}

/* ---- containers: guidance ---- */

static void check_read_only(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *v = get(pod, c->sc, "readOnlyRootFilesystem");
    if (kube_is_true(v))
        return;
    kube_report(pod, c, OR_DIAG_WARNING, v ? v : missing_at(c), "readOnlyRootFilesystem is %s; set "
                "securityContext.readOnlyRootFilesystem: true (and mount an emptyDir where the "
                "container writes)", v ? "not true" : "not set");
}

static void check_resources(kube_pod *pod, const kube_container *c)
{
    static const char *const sections[] = {"requests", "limits"};
    static const char *const kinds[] = {"cpu", "memory"};
    yaml_node_t *key;
    yaml_node_t *res = kube_get(pod->doc, c->node, "resources", &key);
    char missing[200] = "";
    for (size_t s = 0; s < 2; s++)
        for (size_t r = 0; r < 2; r++)
            if (get(pod, get(pod, res, sections[s]), kinds[r]) == NULL)
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
                         "%sresources.%s.%s", missing[0] ? ", " : "", sections[s], kinds[r]);
    if (missing[0])
        kube_report(pod, c, OR_DIAG_WARNING, key ? key : c->node, "no %s; set requests and limits "
                    "for cpu and memory", missing);
}

static void check_image(kube_pod *pod, const kube_container *c)
{
    yaml_node_t *image = get(pod, c->node, "image");
    const char *text = kube_scalar(image);
    if (text == NULL) {
        kube_report(pod, c, OR_DIAG_WARNING, image ? image : c->node, "no image; name one pinned "
                    "to a version or a digest");
        return;
    }
    if (strchr(text, '@') != NULL)
        return; /* a digest */
    const char *last = strrchr(text, '/');
    const char *tag = strchr(last ? last : text, ':');
    if (tag == NULL)
        kube_report(pod, c, OR_DIAG_WARNING, image, "image %s has no tag, so it means :latest; pin "
                    "it to a version (%s:1.2.3) or a digest (%s@sha256:...)", text, text, text);
    else if (strcmp(tag, ":latest") == 0)
        kube_report(pod, c, OR_DIAG_WARNING, image, "image %s is not pinned; use a version tag or "
                    "a digest (@sha256:...) instead of :latest", text);
}

/* ---- walking the containers ---- */

static void check_container(kube_pod *pod, kube_container *c)
{
    c->sc = kube_get(pod->doc, c->node, "securityContext", &c->sc_key);
    pod->k->summary->containers++;
    check_privileged(pod, c);
    check_capabilities(pod, c);
    check_user(pod, c);
    check_seccomp(pod, c);
    check_proc_and_ports(pod, c);
    check_selinux(pod, c, c->sc);
    check_read_only(pod, c);
    if (!c->ephemeral)
        check_resources(pod, c); /* ephemeral containers may not have resources */
    check_image(pod, c);
    if (kube_is_sidecar(pod, c))
        kube_check_sidecar(pod, c);
}

void kube_check_pod(kube_pod *pod)
{
    static const struct {
        const char *key, *what;
    } lists[] = {{"initContainers", "init container"},
                 {"containers", "container"},
                 {"ephemeralContainers", "ephemeral container"}};
    check_host_namespaces(pod);
    check_volumes(pod);
    check_sysctls(pod);
    check_selinux(pod, NULL, pod->psc);
    check_apparmor_annotations(pod);
    check_token(pod);
    for (size_t l = 0; l < 3; l++) {
        yaml_node_t *list = get(pod, pod->spec, lists[l].key);
        for (size_t i = 0; i < kube_length(list); i++) {
            kube_container c = {lists[l].what, NULL, NULL, NULL, NULL, l == 2};
            c.node = kube_item(pod->k, pod->doc, list, i);
            if (c.node == NULL || c.node->type != YAML_MAPPING_NODE)
                continue;
            c.name = kube_get_text(pod->doc, c.node, "name");
            if (c.name == NULL)
                c.name = "(no name)";
            check_container(pod, &c);
        }
    }
}
