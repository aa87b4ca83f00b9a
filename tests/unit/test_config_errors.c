/*
 * Unit tests for the config loader's diagnostics: the or_diag collector
 * itself (diag.c), then bad configs outside the rbac section (config.c,
 * config_yaml.c). Each bad config must fail with exactly the expected
 * diagnostics, compared as text with file:line:column: YAML syntax errors,
 * unknown and duplicate keys (with did-you-mean hints), wrong types, bad
 * values, bad listeners, missing keys and files, files that are not regular
 * files (a FIFO, a device), an access log in a missing directory, the size
 * and nesting limits of a YAML file, peer_identity, mtls, upstream_protocol,
 * the admin API, the security section, and one config with many problems,
 * all reported in one pass in file order.
 * Fixtures: config_fixture.h.
 */
#include "config_fixture.h"

#include <time.h>

/* An outbound listener, appended after BASE as listeners[1] (lines 13-18). */
#define OUTBOUND_HEAD                                                                    \
    "  - name: to-orders\n"                                                              \
    "    mode: outbound\n"                                                               \
    "    protocol: tcp\n"                                                                \
    "    listen: 127.0.0.1:15001\n"                                                      \
    "    upstream: orders.shop.svc:15006\n"

/* ==== diag ==== */

static void test_diag_format(void **state)
{
    or_diag d;
    char buf[256];
    (void)state;
    or_diag_init(&d);
    or_diag_add(&d, OR_DIAG_ERROR, "a.yaml", 3, 7, "%s: bad %d", "key", 42);
    or_diag_add(&d, OR_DIAG_WARNING, "a.yaml", 3, 0, "no column");
    or_diag_add(&d, OR_DIAG_ERROR, "a.yaml", 0, 0, "whole file");
    or_diag_add(&d, OR_DIAG_WARNING, NULL, 1, 1, "no file");
    for (int i = 0; i < 20; i++)
        or_diag_add(&d, OR_DIAG_ERROR, "b.yaml", (unsigned long)i + 1, 1, "n%d", i);
    assert_int_equal(d.count, 24);
    assert_int_equal(d.errors, 22);
    assert_int_equal(d.warnings, 2);
    assert_string_equal(d.entries[0].text, "a.yaml:3:7: error: key: bad 42");
    assert_int_equal(d.entries[0].severity, OR_DIAG_ERROR);
    assert_string_equal(d.entries[1].text, "a.yaml: warning: no column");
    assert_int_equal(d.entries[1].severity, OR_DIAG_WARNING);
    assert_string_equal(d.entries[2].text, "a.yaml: error: whole file");
    assert_string_equal(d.entries[3].text, "warning: no file");
    assert_string_equal(d.entries[23].text, "b.yaml:20:1: error: n19");

    FILE *out = tmpfile();
    assert_non_null(out);
    or_diag_print(&d, out);
    rewind(out);
    assert_non_null(fgets(buf, sizeof(buf), out));
    assert_string_equal(buf, "a.yaml:3:7: error: key: bad 42\n");
    assert_non_null(fgets(buf, sizeof(buf), out));
    assert_string_equal(buf, "a.yaml: warning: no column\n");
    fclose(out);

    or_diag_free(&d);
    assert_int_equal(d.count, 0);
    assert_null(d.entries);
    or_diag_free(&d); /* freeing twice is harmless */
}

/* ==== bad configs ==== */

static void test_syntax_errors(void **state)
{
    (void)state;
    BAD_CONFIG("syntax_indent", BASE_HEAD "listeners:\n  - name: a\n   mode: inbound\n",
               "$D/config.yaml:9:4: error: invalid YAML: did not find expected '-' indicator "
               "(while parsing a block collection at line 8, column 3)");
    BAD_CONFIG("syntax_colon", "service: a: b\n",
               "$D/config.yaml:1:11: error: invalid YAML: mapping values are not allowed "
               "in this context");
    BAD_CONFIG("syntax_quote", "service: \"payments\ntrust_domain: x\n",
               "$D/config.yaml:3:1: error: invalid YAML: found unexpected end of stream "
               "(while scanning a quoted scalar at line 1, column 10)");
    BAD_CONFIG("syntax_utf8", "service: \xff\n",
               "$D/config.yaml: error: invalid YAML: invalid leading UTF-8 octet at byte 9");
    BAD_CONFIG("syntax_alias", "service: *nowhere\n",
               "$D/config.yaml:1:10: error: invalid YAML: found undefined alias");
    BAD_CONFIG("two_documents", BASE "---\nservice: other\n",
               "$D/config.yaml:14:1: error: only one YAML document is allowed in a file");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    BAD_CONFIG("unknown_key",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbound\n"
                         "    protocol: http\n"
                         "    listner: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n"
                         "colour: blue\n",
               "$D/config.yaml:11:5: error: unknown key 'listner' in listeners[0] "
               "(did you mean 'listen'?)",
               "$D/config.yaml:8:5: error: missing required key 'listen' in listeners[0]",
               "$D/config.yaml:13:1: error: unknown key 'colour'");
    BAD_CONFIG("unknown_nested", BASE "timeouts: {idle: 5m, conect: 1s}\n",
               "$D/config.yaml:13:22: error: unknown key 'conect' in timeouts "
               "(did you mean 'connect'?)");
    BAD_CONFIG("non_string_key", BASE "[a]: 1\n",
               "$D/config.yaml:13:1: error: keys must be strings, got a list");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    BAD_CONFIG("duplicate_key", BASE "service: orders\n",
               "$D/config.yaml:13:1: error: duplicate key 'service' (first given at line 1)");
    BAD_CONFIG("duplicate_nested",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbound\n"
                         "    protocol: http\n"
                         "    mode: outbound\n"
                         "    listen: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n",
               "$D/config.yaml:11:5: error: duplicate key 'mode' in listeners[0] "
               "(first given at line 9)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    BAD_CONFIG("type_mapping_for_string", "service: {name: payments}\n"
                                          "trust_domain: cluster.local\n"
                                          "identity: {cert: cert.pem, key: key.pem,"
                                          " bundle: bundle.pem}\n" BASE_LISTENERS,
               "$D/config.yaml:1:10: error: service: expected a string, got a mapping");
    BAD_CONFIG("type_string_for_list", BASE_HEAD "listeners: inbound\n",
               "$D/config.yaml:7:12: error: listeners: expected a list, got a string");
    BAD_CONFIG("type_list_for_mapping", BASE "timeouts: [5s]\n",
               "$D/config.yaml:13:11: error: timeouts: expected a mapping, got a list");
    BAD_CONFIG("type_null", BASE "access_log:\n  path:\n",
               "$D/config.yaml:14:8: error: access_log.path: expected a string, got null");
    BAD_CONFIG("type_bool", BASE "admin: {listen: '127.0.0.1:15000', allow_non_loopback: yes}\n",
               "$D/config.yaml:13:56: error: admin.allow_non_loopback: expected true or "
               "false, got \"yes\"");
    BAD_CONFIG("type_root", "- service: payments\n",
               "$D/config.yaml:1:1: error: top level: expected a mapping, got a list");
    BAD_CONFIG("type_nul", BASE "access_log: {path: \"a\\0b\"}\n",
               "$D/config.yaml:13:20: error: access_log.path: must not contain NUL "
               "characters");
}

static void test_bad_values(void **state)
{
    (void)state;
    BAD_CONFIG("bad_duration", BASE "timeouts:\n  idle: 5x\n  connect: 0s\n  drain: -1s\n",
               "$D/config.yaml:14:9: error: timeouts.idle: invalid duration \"5x\": unknown "
               "unit (use ms, s, m or h)",
               "$D/config.yaml:15:12: error: timeouts.connect: invalid duration \"0s\": must "
               "be greater than zero",
               "$D/config.yaml:16:10: error: timeouts.drain: invalid duration \"-1s\": must "
               "not be negative");
    BAD_CONFIG("bad_size", BASE "limits:\n  max_request_headers: 64KB\n",
               "$D/config.yaml:14:24: error: limits.max_request_headers: invalid size "
               "\"64KB\": unknown unit (use B, KiB, MiB or GiB)");
    BAD_CONFIG("size_range", BASE "limits: {max_request_headers: 2MiB, max_connections: 0}\n",
               "$D/config.yaml:13:31: error: limits.max_request_headers: must be from 1KiB "
               "to 1MiB, got \"2MiB\"",
               "$D/config.yaml:13:54: error: limits.max_connections: expected a whole number "
               "from 1 to 4294967295, got \"0\"");
    BAD_CONFIG("bad_workers", BASE "workers: 65\n",
               "$D/config.yaml:13:10: error: workers: expected \"auto\" or a number from 1 to "
               "64, got \"65\"");
    BAD_CONFIG("bad_trust_domain", "service: payments\ntrust_domain: Cluster.Local\n",
               "$D/config.yaml:2:15: error: trust_domain: invalid trust domain "
               "\"Cluster.Local\": may contain only lower-case letters, digits, '.', '-' "
               "and '_'",
               "$D/config.yaml:1:1: error: missing required key 'identity'",
               "$D/config.yaml:1:1: error: missing required key 'listeners'");
    BAD_CONFIG("bad_service", "service: 'pay ments'\n",
               "$D/config.yaml:1:10: error: service: expected letters, digits, '.', '-' or "
               "'_', got \"pay ments\"",
               "$D/config.yaml:1:1: error: missing required key 'trust_domain'",
               "$D/config.yaml:1:1: error: missing required key 'identity'",
               "$D/config.yaml:1:1: error: missing required key 'listeners'");
    BAD_CONFIG("bad_format", BASE "access_log: {path: /dev/stdout, format: xml}\n",
               "$D/config.yaml:13:41: error: access_log.format: expected \"text\" or "
               "\"json\", got \"xml\"");
    BAD_CONFIG("bad_default", BASE "rbac: {default: permit}\n",
               "$D/config.yaml:13:17: error: rbac.default: expected \"deny\" or \"allow\", "
               "got \"permit\"");
}

static void test_bad_listeners(void **state)
{
    (void)state;
    BAD_CONFIG("bad_mode",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbond\n"
                         "    protocol: htp\n"
                         "    listen: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n",
               "$D/config.yaml:9:11: error: listeners[0].mode: expected \"inbound\" or "
               "\"outbound\", got \"inbond\"",
               "$D/config.yaml:10:15: error: listeners[0].protocol: expected \"tcp\" or "
               "\"http\", got \"htp\"");
    BAD_CONFIG("duplicate_listener", BASE "  - name: inbound\n"
                                          "    mode: inbound\n"
                                          "    protocol: tcp\n"
                                          "    listen: 0.0.0.0:15007\n"
                                          "    upstream: 127.0.0.1:8081\n",
               "$D/config.yaml:13:11: error: listeners[1].name: duplicate listener name "
               "\"inbound\" (also listeners[0] at line 8)");
    BAD_CONFIG("same_address", BASE "  - name: other\n"
                                    "    mode: inbound\n"
                                    "    protocol: tcp\n"
                                    "    listen: 127.0.0.1:15006\n"
                                    "    upstream: 127.0.0.1:8081\n",
               "$D/config.yaml:16:13: error: listeners[1].listen: address 127.0.0.1:15006 is "
               "already used by listeners[0] (line 8)");
    BAD_CONFIG("listen_name", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                   " listen: 'localhost:80', upstream: 'x:1'}\n",
               "$D/config.yaml:13:53: error: listeners[1].listen: expected a literal IP "
               "address and port, got \"localhost:80\"");
    BAD_CONFIG("listen_port_zero", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                        " listen: '127.0.0.1:0', upstream: 'x:1'}\n",
               "$D/config.yaml:13:53: error: listeners[1].listen: invalid address "
               "\"127.0.0.1:0\": port must be between 1 and 65535");
    BAD_CONFIG("upstream_no_port", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                        " listen: '127.0.0.1:1', upstream: orders}\n",
               "$D/config.yaml:13:78: error: listeners[1].upstream: invalid address "
               "\"orders\": missing port");
    BAD_CONFIG("empty_listeners", BASE_HEAD "listeners: []\n",
               "$D/config.yaml:7:12: error: listeners: must not be empty (leave the key out "
               "instead)");
}

static void test_missing_required(void **state)
{
    (void)state;
    BAD_CONFIG("missing_service", "trust_domain: cluster.local\n"
                                  "identity: {cert: cert.pem, key: key.pem}\n" BASE_LISTENERS,
               "$D/config.yaml:2:11: error: missing required key 'bundle' in identity",
               "$D/config.yaml:1:1: error: missing required key 'service'");
    BAD_CONFIG("missing_listener_keys", BASE_HEAD "listeners:\n  - name: a\n",
               "$D/config.yaml:8:5: error: missing required key 'mode' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'protocol' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'listen' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'upstream' in listeners[0]");
    BAD_CONFIG("empty_file", "",
               "$D/config.yaml: error: the file is empty; expected service, trust_domain, "
               "identity and listeners");
    BAD_CONFIG("comment_only", "# nothing here\n",
               "$D/config.yaml: error: the file is empty; expected service, trust_domain, "
               "identity and listeners");
}

static void test_missing_files(void **state)
{
    test_case c;
    (void)state;
    BAD_CONFIG("missing_identity", "service: payments\n"
                                   "trust_domain: cluster.local\n"
                                   "identity:\n"
                                   "  cert: cert.pem\n"
                                   "  key: /nonexistent/key.pem\n"
                                   "  bundle: certs/bundle.pem\n" BASE_LISTENERS,
               "$D/config.yaml:5:8: error: identity.key: cannot read \"/nonexistent/key.pem\": "
               "No such file or directory",
               "$D/config.yaml:6:11: error: identity.bundle: cannot read "
               "\"$D/certs/bundle.pem\": No such file or directory");
    BAD_CONFIG("identity_directory", "service: payments\n"
                                     "trust_domain: cluster.local\n"
                                     "identity: {cert: ., key: key.pem, bundle: bundle.pem}\n"
                                     BASE_LISTENERS,
               "$D/config.yaml:3:18: error: identity.cert: cannot read \"$D/.\": it is a "
               "directory, not a regular file");

    case_init(&c, "missing_config");
    EXPECT(&c, "$D/config.yaml: error: cannot read the file: No such file or directory");
}

/* A FIFO, a device or a directory named where a file is read is refused
 * without being opened for a blocking read; the alarm fails the test if the
 * loader blocks instead. */
static void test_not_regular_files(void **state)
{
    test_case c;
    char fifo[PATH_MAX];
    (void)state;
    alarm(10);
    case_init(&c, "fifo_files");
    format_path(fifo, "%s/fifo.pem", c.dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    case_write(&c, "config.yaml",
               "service: payments\n"
               "trust_domain: cluster.local\n"
               "identity: {cert: fifo.pem, key: key.pem, bundle: /dev/null}\n"
               BASE_LISTENERS
               "rbac: {policies: fifo.pem}\n");
    EXPECT(&c,
           "$D/config.yaml:3:18: error: identity.cert: cannot read \"$D/fifo.pem\": it is a "
           "FIFO, not a regular file",
           "$D/config.yaml:3:50: error: identity.bundle: cannot read \"/dev/null\": it is a "
           "character device, not a regular file",
           "$D/config.yaml:10:18: error: rbac.policies: cannot read \"$D/fifo.pem\": it is a "
           "FIFO, not a regular file");

    case_init(&c, "fifo_config");
    remove(c.config);
    assert_int_equal(mkfifo(c.config, 0600), 0);
    EXPECT(&c, "$D/config.yaml: error: cannot read the file: it is a FIFO, not a regular file");
    alarm(0);
}

/* access_log.path is written later: its directory must exist now. */
static void test_access_log_path(void **state)
{
    (void)state;
    BAD_CONFIG("alog_missing_dir", BASE "access_log: {path: logs/today/access.log}\n",
               "$D/config.yaml:13:20: error: access_log.path: cannot write "
               "\"$D/logs/today/access.log\": the directory \"$D/logs/today\" does not "
               "exist; create it or name a file in an existing directory");
    BAD_CONFIG("alog_is_dir", BASE "access_log: {path: .}\n",
               "$D/config.yaml:13:20: error: access_log.path: \"$D/.\" is a directory; name "
               "a file in it");
    BAD_CONFIG("alog_under_file", BASE "access_log: {path: cert.pem/access.log}\n",
               "$D/config.yaml:13:20: error: access_log.path: cannot write "
               "\"$D/cert.pem/access.log\": \"$D/cert.pem\" is not a directory");
}

/* Text of `n` bytes: `head`, then comment lines up to the size. */
static char *padded(const char *head, size_t n)
{
    char *text = malloc(n + 1);
    assert_non_null(text);
    size_t len = strlen(head);
    memcpy(text, head, len);
    for (size_t i = len; i < n; i++)
        text[i] = (i - len) % 64 == 0 ? '#' : (i - len) % 64 == 63 ? '\n' : 'x';
    text[n] = '\0';
    return text;
}

static char *nested(size_t depth)
{
    char *text = malloc(2 * depth + 2);
    assert_non_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    strcpy(text + 2 * depth, "\n");
    return text;
}

/* A config or policies file over 4 MiB, or nested more than 64 deep. */
static void test_yaml_limits(void **state)
{
    test_case c;
    (void)state;
    char *big = padded(BASE, 4 * 1024 * 1024 + 1);
    BAD_CONFIG("yaml_too_big", big,
               "$D/config.yaml: error: cannot read the file: it is larger than 4 MiB, the "
               "limit for a config or policies file");
    case_init(&c, "policies_too_big");
    case_write(&c, "policies.yaml", big);
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/config.yaml:13:18: error: rbac.policies: cannot read \"$D/policies.yaml\": "
               "it is larger than 4 MiB, the limit for a config or policies file");
    free(big);
    big = padded(BASE, 4 * 1024 * 1024);
    or_config *cfg = case_load_ok(&c, big);
    or_config_free(cfg);
    free(big);

    char *deep = nested(64);
    BAD_CONFIG("yaml_depth_64", deep,
               "$D/config.yaml:1:1: error: top level: expected a mapping, got a list");
    free(deep);
    deep = nested(65);
    BAD_CONFIG("yaml_depth_65", deep,
               "$D/config.yaml:1:65: error: lists and mappings nested more than 64 deep; a "
               "config or policies file may nest at most 64 levels");
    free(deep);
    struct timespec t0, t1;
    deep = nested(100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    BAD_CONFIG("yaml_depth_100k", deep,
               "$D/config.yaml:1:65: error: lists and mappings nested more than 64 deep; a "
               "config or policies file may nest at most 64 levels");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(deep);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took > 0.5)
        fail_msg("100000 nested lists took %.2f s to refuse", took);
    case_init(&c, "policies_depth");
    case_write(&c, "policies.yaml", "policies:\n  - name: a\n    rules: [[[[[[[[[[[[[[[[[[[[[["
                                    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                    "[[[[[[[[[[[[[[[[[[[[]\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml:3:73: error: lists and mappings nested more than 64 deep; a "
               "config or policies file may nest at most 64 levels");
}

static void test_peer_identity(void **state)
{
    (void)state;
    BAD_CONFIG("outbound_without_peer", BASE OUTBOUND_HEAD,
               "$D/config.yaml:13:5: error: listeners[1]: an outbound listener needs "
               "peer_identity, the SPIFFE ID the upstream must present");
    BAD_CONFIG("peer_wrong_domain",
               BASE OUTBOUND_HEAD "    peer_identity: spiffe://other.local/ns/shop/sa/orders\n",
               "$D/config.yaml:18:20: error: listeners[1].peer_identity: trust domain "
               "\"other.local\" is not the configured trust_domain \"cluster.local\"");
    BAD_CONFIG("peer_invalid", BASE OUTBOUND_HEAD "    peer_identity: spiffe://cluster.local\n",
               "$D/config.yaml:18:20: error: listeners[1].peer_identity: invalid SPIFFE ID "
               "\"spiffe://cluster.local\": no path after the trust domain (expected "
               "spiffe://<trust-domain>/<path>)");
    BAD_CONFIG("peer_on_inbound", BASE "    peer_identity: spiffe://cluster.local/ns/a/sa/b\n",
               "$D/config.yaml:13:20: error: listeners[0].peer_identity: only outbound "
               "listeners take a peer_identity (inbound peers are checked by rbac)");
}

static void test_mtls(void **state)
{
    (void)state;
    BAD_CONFIG("mtls_unknown", BASE "    mtls: optional\n",
               "$D/config.yaml:13:11: error: listeners[0].mtls: expected \"strict\", "
               "\"permissive\" or \"disable\", got \"optional\"");
    BAD_CONFIG("mtls_on_outbound",
               BASE OUTBOUND_HEAD "    peer_identity: spiffe://cluster.local/ns/shop/sa/orders\n"
                                  "    mtls: strict\n",
               "$D/config.yaml:19:11: error: listeners[1].mtls: only inbound listeners take "
               "mtls (an outbound listener always originates mTLS)");
    BAD_CONFIG("mtls_detect_timeout", BASE "timeouts: {detect: 0s}\n",
               "$D/config.yaml:13:20: error: timeouts.detect: invalid duration \"0s\": must be "
               "greater than zero");
}

static void test_upstream_protocol(void **state)
{
    (void)state;
    BAD_CONFIG("upstream_protocol_unknown", BASE "    upstream_protocol: h3\n",
               "$D/config.yaml:13:24: error: listeners[0].upstream_protocol: expected \"auto\", "
               "\"http1\" or \"http2\", got \"h3\"");
    BAD_CONFIG("upstream_protocol_on_tcp",
               BASE OUTBOUND_HEAD "    peer_identity: spiffe://cluster.local/ns/shop/sa/orders\n"
                                  "    upstream_protocol: http1\n",
               "$D/config.yaml:19:24: error: listeners[1].upstream_protocol: only protocol http "
               "listeners take upstream_protocol (remove it, or set protocol: http)");
}

static void test_admin(void **state)
{
    (void)state;
    BAD_CONFIG("admin_wildcard", BASE "admin:\n  listen: 0.0.0.0:15000\n",
               "$D/config.yaml:14:11: error: admin.listen: 0.0.0.0:15000 is not a loopback "
               "address; the admin API must stay on 127.0.0.1 or [::1] unless "
               "admin.allow_non_loopback is true");
    BAD_CONFIG("admin_conflict", BASE "admin: {listen: '127.0.0.1:15006'}\n",
               "$D/config.yaml:13:17: error: admin.listen: address 127.0.0.1:15006 is already "
               "used by listeners[0] (line 8)");
    BAD_CONFIG("admin_no_listen", BASE "admin: {allow_non_loopback: false}\n",
               "$D/config.yaml:13:8: error: missing required key 'listen' in admin");
}

static void test_security(void **state)
{
    (void)state;
    BAD_CONFIG("security_run_as_format", BASE "security: {run_as: '65532:x'}\n",
               "$D/config.yaml:13:20: error: security.run_as: expected \"UID:GID\" with decimal "
               "numbers (like \"65532:65532\") or a user name, got \"65532:x\"");
    BAD_CONFIG("security_run_as_user", BASE "security:\n  run_as: no-such-user\n",
               "$D/config.yaml:14:11: error: security.run_as: no user named \"no-such-user\" on "
               "this system; name a user from the user database or give \"UID:GID\" (like "
               "\"65532:65532\")");
    BAD_CONFIG("security_run_as_type", BASE "security: {run_as: [1, 2]}\n",
               "$D/config.yaml:13:20: error: security.run_as: expected a string, got a list");
    BAD_CONFIG("security_seccomp", BASE "security: {seccomp: strict}\n",
               "$D/config.yaml:13:21: error: security.seccomp: expected \"enforce\" or \"log\", got "
               "\"strict\"");
    BAD_CONFIG("security_sandbox_yes", BASE "security: {sandbox: yes}\n",
               "$D/config.yaml:13:21: error: security.sandbox: expected true or false, got \"yes\"");
    BAD_CONFIG("security_unknown", BASE "security: {sandboxed: true}\n",
               "$D/config.yaml:13:12: error: unknown key 'sandboxed' in security (did you mean "
               "'sandbox'?)");
}

/* One pass reports every independent problem, in file order. */
static void test_many_errors(void **state)
{
    (void)state;
    BAD_CONFIG("many_errors",
               "service: payments\n"
               "trust_domain: cluster.local\n"
               "identity:\n"
               "  cert: missing.pem\n"
               "  key: key.pem\n"
               "  bundle: bundle.pem\n"
               "workers: lots\n"
               "admin: {listen: '0.0.0.0:15000'}\n"
               "listeners:\n"
               "  - name: in\n"
               "    mode: inbond\n"
               "    protocol: http\n"
               "    listen: 0.0.0.0:0\n"
               "    upstream: 127.0.0.1:8080\n"
               "  - name: out\n"
               "    mode: outbound\n"
               "    protocol: tcp\n"
               "    listen: 127.0.0.1:15001\n"
               "    upstream: orders:15006\n"
               "timeouts: {idle: 5 minutes}\n"
               "limits: {max_request_headers: 10MiB}\n"
               "rbac:\n"
               "  default: maybe\n"
               "  policies: [{name: a, action: allow}, {name: a, action: nope}]\n",
               "$D/config.yaml:4:9: error: identity.cert: cannot read \"$D/missing.pem\": No "
               "such file or directory",
               "$D/config.yaml:7:10: error: workers: expected \"auto\" or a number from 1 to "
               "64, got \"lots\"",
               "$D/config.yaml:8:17: error: admin.listen: 0.0.0.0:15000 is not a loopback "
               "address; the admin API must stay on 127.0.0.1 or [::1] unless "
               "admin.allow_non_loopback is true",
               "$D/config.yaml:11:11: error: listeners[0].mode: expected \"inbound\" or "
               "\"outbound\", got \"inbond\"",
               "$D/config.yaml:13:13: error: listeners[0].listen: invalid address "
               "\"0.0.0.0:0\": port must be between 1 and 65535",
               "$D/config.yaml:15:5: error: listeners[1]: an outbound listener needs "
               "peer_identity, the SPIFFE ID the upstream must present",
               "$D/config.yaml:20:18: error: timeouts.idle: invalid duration \"5 minutes\": "
               "unknown unit (use ms, s, m or h)",
               "$D/config.yaml:21:31: error: limits.max_request_headers: must be from 1KiB to "
               "1MiB, got \"10MiB\"",
               "$D/config.yaml:23:12: error: rbac.default: expected \"deny\" or \"allow\", got "
               "\"maybe\"",
               "$D/config.yaml:24:47: error: rbac.policies[1].name: duplicate policy name "
               "\"a\" (also at line 24)",
               "$D/config.yaml:24:58: error: rbac.policies[1].action: expected \"allow\", "
               "\"deny\" or \"audit\", got \"nope\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_listeners),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_not_regular_files),
        cmocka_unit_test(test_access_log_path),
        cmocka_unit_test(test_yaml_limits),
        cmocka_unit_test(test_peer_identity),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_upstream_protocol),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_many_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
