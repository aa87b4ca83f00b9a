/*
 * Unit tests for the manifest check (check_kube.h): the rules, one broken at
 * a time in an otherwise good Pod, each giving exactly one finding at the
 * expected line and column; the pod-level securityContext inherited and
 * overridden by the container; where each workload kind keeps its pod
 * template; multi-document files, a List, and kinds that are not workloads;
 * the sidecar's config read out of a ConfigMap.
 *
 * POD is a good Pod of 22 lines (numbers in the comments), so positions in
 * the expectations can be read off the text. A case edits it with
 * variant(from, to) and lists the findings it must give, in order: each
 * expected string is the start of a message, "t.yaml:LINE:COL: severity: ..."
 * and the count must match too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/check_kube.h"

#define POD                                             \
    "apiVersion: v1\n"                        /*  1 */  \
    "kind: Pod\n"                             /*  2 */  \
    "metadata:\n"                             /*  3 */  \
    "  name: web\n"                           /*  4 */  \
    "spec:\n"                                 /*  5 */  \
    "  automountServiceAccountToken: false\n" /*  6 */  \
    "  securityContext:\n"                    /*  7 */  \
    "    runAsNonRoot: true\n"                /*  8 */  \
    "    runAsUser: 65532\n"                  /*  9 */  \
    "    seccompProfile:\n"                   /* 10 */  \
    "      type: RuntimeDefault\n"            /* 11 */  \
    "  containers:\n"                         /* 12 */  \
    "    - name: app\n"                       /* 13 */  \
    "      image: web:1.0\n"                  /* 14 */  \
    "      securityContext:\n"                /* 15 */  \
    "        allowPrivilegeEscalation: false\n" /* 16 */ \
    "        readOnlyRootFilesystem: true\n"  /* 17 */  \
    "        capabilities:\n"                 /* 18 */  \
    "          drop: [ALL]\n"                 /* 19 */  \
    "      resources:\n"                      /* 20 */  \
    "        requests: {cpu: 10m, memory: 16Mi}\n" /* 21 */ \
    "        limits: {cpu: 100m, memory: 64Mi}\n"  /* 22 */

/* The pod spec alone (POD from line 6), for the workload kinds. */
#define POD_SPEC_FROM_LINE 6

/* Not inlined: inlined at -O3 (Release), gcc 12 reports a false
 * -Wdangling-pointer on `at`. */
__attribute__((noinline)) static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    char *out;
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
    return out;
}

static char *variant(const char *from, const char *to)
{
    return replace(POD, from, to);
}

static or_kube_summary last;

/* Checks text as t.yaml; the findings must start with expected[], in order. */
static void expect_list(const char *text, const char *const *expected)
{
    or_diag diag;
    or_diag_init(&diag);
    or_kube_check("t.yaml", text, strlen(text), &diag, &last);
    size_t n = 0;
    while (expected[n] != NULL)
        n++;
    for (size_t i = 0; i < diag.count; i++)
        print_message("  got: %s\n", diag.entries[i].text);
    assert_int_equal(diag.count, n);
    for (size_t i = 0; i < n; i++)
        if (strncmp(diag.entries[i].text, expected[i], strlen(expected[i])) != 0)
            fail_msg("finding %zu:\n  got:      %s\n  expected: %s...", i,
                     diag.entries[i].text, expected[i]);
    or_diag_free(&diag);
}

#define EXPECT(text, ...) expect_list(text, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_NONE(text) expect_list(text, (const char *const[]){NULL})
/* A variant of POD with exactly the findings listed. */
#define CASE(from, to, ...)                 \
    do {                                    \
        char *t_ = variant(from, to);       \
        EXPECT(t_, __VA_ARGS__);            \
        free(t_);                           \
    } while (0)

#define APP "t.yaml:%s: error: Pod/web: container 'app': "

static void test_good_pod(void **state)
{
    (void)state;
    EXPECT_NONE(POD);
    assert_int_equal(last.objects, 1);
    assert_int_equal(last.workloads, 1);
    assert_int_equal(last.containers, 1);
    assert_int_equal(last.configs, 0);
}

static void test_detect(void **state)
{
    (void)state;
    static const char config[] = "service: a\ntrust_domain: cluster.local\n";
    static const char multi[] = "a: 1\n---\napiVersion: v1\nkind: Service\n";
    assert_true(or_kube_detect(POD, strlen(POD)));
    assert_true(or_kube_detect(multi, strlen(multi)));
    assert_false(or_kube_detect(config, strlen(config)));
    assert_false(or_kube_detect("kind: [", 7));
    assert_false(or_kube_detect("", 0));
}

static void test_privileged_and_escalation(void **state)
{
    (void)state;
    CASE("        readOnly", "        privileged: true\n        readOnly",
         "t.yaml:17:21: error: Pod/web: container 'app': securityContext.privileged is true; "
         "remove it or set it to false");
    CASE("        allowPrivilegeEscalation: false\n", "",
         "t.yaml:15:7: error: Pod/web: container 'app': allowPrivilegeEscalation is not set; "
         "set securityContext.allowPrivilegeEscalation: false");
    CASE("Escalation: false", "Escalation: true",
         "t.yaml:16:35: error: Pod/web: container 'app': allowPrivilegeEscalation is not false");
}

static void test_host_namespaces_and_volumes(void **state)
{
    (void)state;
    CASE("  securityContext:\n    runAsNonRoot", "  hostNetwork: true\n  securityContext:\n    runAsNonRoot",
         "t.yaml:7:16: error: Pod/web: hostNetwork: true shares the node's network namespace");
    CASE("  securityContext:\n    runAsNonRoot", "  hostPID: true\n  securityContext:\n    runAsNonRoot",
         "t.yaml:7:12: error: Pod/web: hostPID: true shares the node's process (PID) namespace");
    CASE("  securityContext:\n    runAsNonRoot", "  hostIPC: True\n  securityContext:\n    runAsNonRoot",
         "t.yaml:7:12: error: Pod/web: hostIPC: true shares the node's IPC namespace");
    CASE("  containers:\n", "  hostNetwork: false\n  containers:\n", NULL);
    char *t = replace(POD, "  containers:\n",
                      "  volumes:\n    - name: data\n      hostPath: {path: /var/lib}\n"
                      "    - name: scratch\n      emptyDir: {}\n  containers:\n");
    EXPECT(t, "t.yaml:14:7: error: Pod/web: volume 'data' is a hostPath volume (/var/lib)");
    free(t);
    CASE("      image: web:1.0\n",
         "      image: web:1.0\n      ports:\n        - containerPort: 80\n          hostPort: 80\n",
         "t.yaml:17:21: error: Pod/web: container 'app': hostPort 80 opens a port on the node");
}

static void test_user(void **state)
{
    (void)state;
    CASE("runAsUser: 65532", "runAsUser: 0",
         "t.yaml:9:16: error: Pod/web: container 'app': runs as root (runAsUser: 0)");
    /* no runAsNonRoot and no runAsUser: the image decides */
    CASE("    runAsNonRoot: true\n    runAsUser: 65532\n", "",
         "t.yaml:13:7: error: Pod/web: container 'app': may run as root: runAsNonRoot is not set");
    CASE("runAsNonRoot: true", "runAsNonRoot: false",
         "t.yaml:8:19: error: Pod/web: container 'app': runAsNonRoot is not true (runAsUser "
         "65532 alone");
    CASE("    runAsUser: 65532\n", "",
         "t.yaml:14:7: warning: Pod/web: container 'app': no fixed non-zero runAsUser");
}

/* The container's securityContext overrides the pod's, key by key. */
static void test_inheritance(void **state)
{
    (void)state;
    /* pod says root, the container a user: the container's wins */
    char *t = replace(POD, "runAsUser: 65532", "runAsUser: 0");
    char *u = replace(t, "        allowPrivilegeEscalation", "        runAsUser: 1000\n"
                                                          "        allowPrivilegeEscalation");
    EXPECT_NONE(u);
    free(t);
    free(u);
    /* pod says a user, the container root */
    CASE("        allowPrivilegeEscalation", "        runAsUser: 0\n        allowPrivilegeEscalation",
         "t.yaml:16:20: error: Pod/web: container 'app': runs as root (runAsUser: 0)");
    /* the container's runAsNonRoot: false overrides the pod's true */
    CASE("        allowPrivilegeEscalation", "        runAsNonRoot: false\n        allowPrivilegeEscalation",
         "t.yaml:16:23: error: Pod/web: container 'app': runAsNonRoot is not true");
    /* seccomp only in the container: fine; Unconfined there overrides the pod's */
    t = replace(POD, "    seccompProfile:\n      type: RuntimeDefault\n", "");
    u = replace(t, "        readOnly", "        seccompProfile: {type: Localhost, localhostProfile: p.json}\n"
                                     "        readOnly");
    EXPECT_NONE(u);
    free(t);
    free(u);
    CASE("        readOnly", "        seccompProfile: {type: Unconfined}\n        readOnly",
         "t.yaml:17:32: error: Pod/web: container 'app': seccompProfile.type Unconfined");
}

static void test_capabilities(void **state)
{
    (void)state;
    CASE("drop: [ALL]", "drop: [NET_RAW]",
         "t.yaml:19:11: error: Pod/web: container 'app': capabilities are not dropped; set "
         "securityContext.capabilities.drop: [ALL]");
    CASE("        capabilities:\n          drop: [ALL]\n", "",
         "t.yaml:15:7: error: Pod/web: container 'app': capabilities are not dropped");
    CASE("drop: [ALL]", "drop: [ALL]\n          add: [NET_BIND_SERVICE, SYS_ADMIN]",
         "t.yaml:20:35: error: Pod/web: container 'app': adds the capability SYS_ADMIN");
}

static void test_seccomp_and_proc(void **state)
{
    (void)state;
    CASE("type: RuntimeDefault", "type: Unconfined",
         "t.yaml:11:13: error: Pod/web: container 'app': seccompProfile.type Unconfined runs "
         "without a system-call filter");
    CASE("    seccompProfile:\n      type: RuntimeDefault\n", "",
         "t.yaml:13:7: error: Pod/web: container 'app': no seccomp profile; set "
         "securityContext.seccompProfile.type: RuntimeDefault");
    CASE("        readOnly", "        procMount: Unmasked\n        readOnly",
         "t.yaml:17:20: error: Pod/web: container 'app': procMount Unmasked unmasks /proc");
    CASE("      type: RuntimeDefault\n",
         "      type: RuntimeDefault\n    sysctls:\n      - {name: net.ipv4.tcp_syncookies, value: \"1\"}\n"
         "      - {name: kernel.msgmax, value: \"1\"}\n",
         "t.yaml:14:16: error: Pod/web: sysctl kernel.msgmax is not one of the safe");
    CASE("      type: RuntimeDefault\n",
         "      type: RuntimeDefault\n    seLinuxOptions: {type: spc_t}\n",
         "t.yaml:12:28: error: Pod/web: seLinuxOptions.type spc_t");
    CASE("        readOnly", "        appArmorProfile: {type: Unconfined}\n        readOnly",
         "t.yaml:17:33: error: Pod/web: container 'app': appArmorProfile.type is Unconfined");
}

static void test_guidance(void **state)
{
    (void)state;
    CASE("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
         "t.yaml:17:33: warning: Pod/web: container 'app': readOnlyRootFilesystem is not true");
    CASE("        limits: {cpu: 100m, memory: 64Mi}\n", "",
         "t.yaml:20:7: warning: Pod/web: container 'app': no resources.limits.cpu, "
         "resources.limits.memory; set requests and limits for cpu and memory");
    CASE("  automountServiceAccountToken: false\n", "",
         "t.yaml:5:1: warning: Pod/web: automountServiceAccountToken is not set");
    CASE("Token: false", "Token: true",
         "t.yaml:6:33: warning: Pod/web: automountServiceAccountToken is not false");
    CASE("web:1.0", "registry.local:5000/team/web",
         "t.yaml:14:14: warning: Pod/web: container 'app': image registry.local:5000/team/web "
         "has no tag");
    CASE("web:1.0", "web:latest",
         "t.yaml:14:14: warning: Pod/web: container 'app': image web:latest is not pinned");
    CASE("web:1.0", "web@sha256:0123", NULL);
}

static void test_container_lists(void **state)
{
    (void)state;
    char *t = replace(POD, "  containers:\n",
                      "  initContainers:\n    - name: setup\n      image: setup:1\n"
                      "      securityContext: {privileged: true}\n  containers:\n");
    const char *init = "Pod/web: init container 'setup': ";
    char e[5][200];
    snprintf(e[0], sizeof e[0], "t.yaml:15:37: error: %ssecurityContext.privileged is true", init);
    snprintf(e[1], sizeof e[1], "t.yaml:15:7: error: %sallowPrivilegeEscalation is not set", init);
    snprintf(e[2], sizeof e[2], "t.yaml:15:7: error: %scapabilities are not dropped", init);
    snprintf(e[3], sizeof e[3], "t.yaml:15:7: warning: %sreadOnlyRootFilesystem is not set", init);
    snprintf(e[4], sizeof e[4], "t.yaml:13:7: warning: %sno resources.requests.cpu", init);
    EXPECT(t, e[0], e[1], e[2], e[3], e[4]);
    free(t);
    /* ephemeral containers take no resources: none asked for */
    t = replace(POD, "  containers:\n",
                "  ephemeralContainers:\n    - name: debug\n      image: busybox:1.36\n"
                "      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: "
                "true, capabilities: {drop: [ALL]}}\n  containers:\n");
    EXPECT_NONE(t);
    assert_int_equal(last.containers, 2);
    free(t);
}

/* Each kind with its pod spec where that kind keeps it; the spec is POD's
 * with a privileged container. */
static void test_workload_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *head;
        int indent, head_lines;
    } kinds[] = {
        {"Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
                       "  template:\n    metadata: {labels: {a: b}}\n    spec:\n", 6, 7},
        {"DaemonSet", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: w}\nspec:\n"
                      "  template:\n    spec:\n", 6, 6},
        {"StatefulSet", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: w}\nspec:\n"
                        "  serviceName: w\n  template:\n    spec:\n", 6, 7},
        {"ReplicaSet", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: w}\nspec:\n"
                       "  template:\n    spec:\n", 6, 6},
        {"Job", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: w}\nspec:\n"
                "  template:\n    spec:\n", 6, 6},
        {"CronJob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: w}\nspec:\n"
                    "  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      template:\n"
                    "        spec:\n", 10, 9},
    };
    const char *spec = strstr(POD, "  automountServiceAccountToken");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char text[4096], expected[300];
        size_t used = (size_t)snprintf(text, sizeof text, "%s", kinds[k].head);
        for (const char *line = spec; *line;) {
            const char *nl = strchr(line, '\n');
            used += (size_t)snprintf(text + used, sizeof text - used, "%*s%.*s\n",
                                     kinds[k].indent - 2, "", (int)(nl - line), line);
            line = nl + 1;
        }
        /* privileged: true in the container, before readOnlyRootFilesystem (POD line 17) */
        char pad[32];
        snprintf(pad, sizeof pad, "%*sreadOnly", kinds[k].indent + 6, "");
        char with[64];
        snprintf(with, sizeof with, "%*sprivileged: true\n%s", kinds[k].indent + 6, "", pad);
        char *t = replace(text, pad, with);
        snprintf(expected, sizeof expected,
                 "t.yaml:%d:%d: error: %s/w: container 'app': securityContext.privileged is true",
                 kinds[k].head_lines + 17 - POD_SPEC_FROM_LINE + 1, kinds[k].indent + 6 + 13,
                 kinds[k].kind);
        EXPECT(t, expected);
        assert_int_equal(last.workloads, 1);
        assert_int_equal(last.containers, 1);
        free(t);
    }
}

static void test_documents(void **state)
{
    (void)state;
    /* a good pod, then the same pod privileged, after a comment-only document */
    char *bad = variant("        readOnly", "        privileged: true\n        readOnly");
    char *text;
    assert_true(asprintf(&text, "%s---\n# nothing here\n---\n%s", POD, bad) > 0);
    EXPECT(text, "t.yaml:42:21: error: Pod/web: container 'app': securityContext.privileged");
    assert_int_equal(last.workloads, 2);
    free(text);
    free(bad);
    /* kinds that hold no pod are skipped without a word */
    static const char others[] =
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n}\n"
        "spec: {podSelector: {}}\n";
    EXPECT_NONE(others);
    assert_int_equal(last.objects, 3);
    assert_int_equal(last.workloads, 0);
    /* a List: its items are checked */
    static const char list[] =
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n"
        "    spec:\n      automountServiceAccountToken: false\n      hostPID: true\n"
        "  - apiVersion: v1\n    kind: Service\n    metadata: {name: s}\n";
    EXPECT(list, "t.yaml:9:16: error: Pod/p: hostPID: true");
    assert_int_equal(last.objects, 2);
    /* a document that is no object: a warning, the rest is checked */
    assert_true(asprintf(&text, "just: a mapping\n---\n%s", POD) > 0);
    EXPECT(text, "t.yaml:1:1: warning: this document has no apiVersion and kind");
    free(text);
    /* malformed YAML after a good document */
    assert_true(asprintf(&text, "%s---\nkind: [\n", POD) > 0);
    EXPECT(text, "t.yaml:25:1: error: invalid YAML: did not find expected node content");
    free(text);
    /* a workload without its template */
    EXPECT("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 1\n",
           "t.yaml:4:1: error: Deployment/d: no pod spec at spec.template.spec");
}

/* ---- the sidecar ---- */

#define SIDECAR_POD                                                        \
    "apiVersion: v1\n"                                  /*  1 */           \
    "kind: Pod\n"                                       /*  2 */           \
    "metadata: {name: p}\n"                             /*  3 */           \
    "spec:\n"                                           /*  4 */           \
    "  automountServiceAccountToken: false\n"           /*  5 */           \
    "  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n" \
    "  containers:\n"                                   /*  7 */           \
    "    - name: outrider\n"                            /*  8 */           \
    "      image: registry.local/mesh/outrider:0.1.0\n" /*  9 */           \
    "      args: [\"-c\", \"/etc/outrider/outrider.yaml\"]\n" /* 10 */     \
    "      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n" \
    "      resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n" \
    "      volumeMounts:\n"                             /* 13 */           \
    "        - {name: cfg, mountPath: /etc/outrider}\n" /* 14 */           \
    "  volumes:\n"                                      /* 15 */           \
    "    - {name: cfg, configMap: {name: mesh}}\n"      /* 16 */           \
    "---\n"                                             /* 17 */           \
    "apiVersion: v1\n"                                  /* 18 */           \
    "kind: ConfigMap\n"                                 /* 19 */           \
    "metadata: {name: mesh}\n"                          /* 20 */           \
    "data:\n"                                           /* 21 */           \
    "  outrider.yaml: |\n"                              /* 22 */           \
    "    service: payments\n"                           /* 23 */           \
    "    trust_domain: cluster.local\n"                 /* 24 */           \
    "    identity: {cert: /i/c.pem, key: /i/k.pem, bundle: /i/b.pem}\n" /* 25 */ \
    "    listeners:\n"                                  /* 26 */           \
    "      - {name: in, mode: inbound, protocol: http, listen: 0.0.0.0:15006, upstream: 127.0.0.1:8080}\n" \
    "    rbac:\n"                                       /* 28 */           \
    "      default: deny\n"                             /* 29 */           \
    "      policies: policies.yaml\n"                   /* 30 */           \
    "  policies.yaml: |\n"                              /* 31 */           \
    "    - {name: all, action: allow, rules: [{from: [{namespaces: [shop]}]}]}\n" /* 32 */

static char *sidecar(const char *from, const char *to)
{
    return replace(SIDECAR_POD, from, to);
}

#define SIDECAR_CASE(from, to, ...)         \
    do {                                    \
        char *t_ = sidecar(from, to);       \
        EXPECT(t_, __VA_ARGS__);            \
        free(t_);                           \
    } while (0)

static void test_sidecar_good(void **state)
{
    (void)state;
    EXPECT_NONE(SIDECAR_POD);
    assert_int_equal(last.configs, 1);
    /* the agent and the CA share the image but are not the proxy */
    char *t = sidecar("      args:", "      command: [/usr/bin/outrider-agent]\n      args:");
    char *u = replace(t, "/etc/outrider}", "/elsewhere}");
    EXPECT_NONE(u);
    assert_int_equal(last.configs, 0);
    free(t);
    free(u);
    /* items map keys to other file names; the default config path */
    t = sidecar("configMap: {name: mesh}", "configMap: {name: mesh, items: [{key: outrider.yaml, "
                                           "path: outrider.yaml}, {key: policies.yaml, path: p.yaml}]}");
    u = replace(t, "policies: policies.yaml", "policies: p.yaml");
    free(t);
    t = replace(u, "      args: [\"-c\", \"/etc/outrider/outrider.yaml\"]\n", "");
    EXPECT_NONE(t);
    assert_int_equal(last.configs, 1);
    free(t);
    free(u);
}

static void test_sidecar_config(void **state)
{
    (void)state;
    /* a schema error, at its line and column inside the ConfigMap */
    SIDECAR_CASE("default: deny", "default: maybe",
                 "t.yaml:29:16: error: ConfigMap/mesh outrider.yaml: rbac.default: expected "
                 "\"deny\" or \"allow\", got \"maybe\"");
    SIDECAR_CASE("policies: policies.yaml", "policies: other.yaml",
                 "t.yaml:30:17: error: ConfigMap/mesh outrider.yaml: rbac.policies: cannot read "
                 "\"/etc/outrider/other.yaml\": it is not a data key of a ConfigMap");
    SIDECAR_CASE("    rbac:\n      default: deny\n      policies: policies.yaml\n", "",
                 "t.yaml:22:3: warning: ConfigMap/mesh outrider.yaml: no rbac section",
                 "t.yaml:23:5: error: ConfigMap/mesh outrider.yaml: no rbac section: any workload");
    SIDECAR_CASE("default: deny\n      policies: policies.yaml\n", "default: allow\n",
                 "t.yaml:22:3: warning: ConfigMap/mesh outrider.yaml: rbac.default is allow: "
                 "requests that no policy matches",
                 "t.yaml:29:16: error: ConfigMap/mesh outrider.yaml: rbac.default is allow and "
                 "there are no policies");
    SIDECAR_CASE("    rbac:\n", "    security: {sandbox: false}\n    rbac:\n",
                 "t.yaml:28:25: warning: ConfigMap/mesh outrider.yaml: security.sandbox: false");
    SIDECAR_CASE("upstream: 127.0.0.1:8080", "upstream: 10.0.0.5:8080",
                 "t.yaml:27:9: warning: ConfigMap/mesh outrider.yaml: inbound listener \"in\" "
                 "forwards plaintext to 10.0.0.5:8080");
    SIDECAR_CASE("mode: inbound", "mode: outbound, peer_identity: spiffe://cluster.local/x",
                 "t.yaml:27:9: warning: ConfigMap/mesh outrider.yaml: outbound listener \"in\" "
                 "listens on every address",
                 "t.yaml:26:5: warning: ConfigMap/mesh outrider.yaml: no inbound listener");
}

static void test_sidecar_not_checkable(void **state)
{
    (void)state;
    SIDECAR_CASE("metadata: {name: mesh}", "metadata: {name: other}",
                 "t.yaml:14:11: warning: Pod/p: container 'outrider': ConfigMap 'mesh' "
                 "(volume 'cfg') is not in this file");
    SIDECAR_CASE("  outrider.yaml: |", "  config.yaml: |",
                 "t.yaml:14:11: error: Pod/p: container 'outrider': ConfigMap 'mesh' (volume "
                 "'cfg') has no data key for /etc/outrider/outrider.yaml");
    SIDECAR_CASE("/etc/outrider/outrider.yaml\"]", "/srv/o.yaml\"]",
                 "t.yaml:8:7: warning: Pod/p: container 'outrider': no volume is mounted at "
                 "/srv/o.yaml");
    SIDECAR_CASE("configMap: {name: mesh}", "emptyDir: {}",
                 "t.yaml:14:11: warning: Pod/p: container 'outrider': the config "
                 "/etc/outrider/outrider.yaml comes from volume 'cfg', which is not a configMap");
    /* a folded scalar: the position of the value, and where in it */
    char *t = sidecar("  policies.yaml: |\n", "  policies.yaml: >\n");
    char *u = replace(t, "action: allow", "action: permit");
    EXPECT(u, "t.yaml:31:18: error: ConfigMap/mesh policies.yaml (line 1, column 23 of it): "
              "policies[0].action: expected");
    free(t);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_pod),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_privileged_and_escalation),
        cmocka_unit_test(test_host_namespaces_and_volumes),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_seccomp_and_proc),
        cmocka_unit_test(test_guidance),
        cmocka_unit_test(test_container_lists),
        cmocka_unit_test(test_workload_kinds),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_sidecar_good),
        cmocka_unit_test(test_sidecar_config),
        cmocka_unit_test(test_sidecar_not_checkable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
