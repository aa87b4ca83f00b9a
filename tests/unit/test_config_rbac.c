/*
 * Unit tests for the rbac section of the config (config_rbac.c): bad policy
 * values (CIDR blocks, ports, methods, paths, principals, header
 * conditions, empty entries), bad and duplicate policies, policies kept in a
 * file of their own (missing, invalid, empty), and YAML aliases, which are
 * followed but cut off when a document expands without bound. Every error
 * is compared as exact text with file:line:column. Fixtures:
 * config_fixture.h.
 */
#include "config_fixture.h"

/* ==== bad policies ==== */

#define POLICY_HEAD                                                                      \
    "rbac:\n"                       /* 13 */                                             \
    "  policies:\n"                 /* 14 */                                             \
    "    - name: p\n"               /* 15 */                                             \
    "      action: allow\n"         /* 16 */                                             \
    "      rules:\n"                /* 17 */

static void test_bad_policy_values(void **state)
{
    (void)state;
    BAD_CONFIG("bad_cidr",
               BASE POLICY_HEAD "        - from: [{ip_blocks: [10.1.2.3/8, 10.0.0.0/33]}]\n",
               "$D/config.yaml:18:31: error: rbac.policies[0].rules[0].from[0].ip_blocks[0]: "
               "invalid CIDR block \"10.1.2.3/8\": host bits are set below the prefix length "
               "(write the network address of the block)",
               "$D/config.yaml:18:43: error: rbac.policies[0].rules[0].from[0].ip_blocks[1]: "
               "invalid CIDR block \"10.0.0.0/33\": prefix length must be at most 32 for "
               "IPv4");
    BAD_CONFIG("bad_port", BASE POLICY_HEAD "        - to: [{ports: [0, 8080, 65536, http]}]\n",
               "$D/config.yaml:18:25: error: rbac.policies[0].rules[0].to[0].ports[0]: "
               "expected a whole number from 1 to 65535, got \"0\"",
               "$D/config.yaml:18:34: error: rbac.policies[0].rules[0].to[0].ports[2]: "
               "expected a whole number from 1 to 65535, got \"65536\"",
               "$D/config.yaml:18:41: error: rbac.policies[0].rules[0].to[0].ports[3]: "
               "expected a whole number from 1 to 65535, got \"http\"");
    BAD_CONFIG("bad_method_path",
               BASE POLICY_HEAD "        - to: [{methods: [get], paths: [api, '/a*b']}]\n",
               "$D/config.yaml:18:27: error: rbac.policies[0].rules[0].to[0].methods[0]: "
               "expected an upper-case HTTP method such as GET, got \"get\"",
               "$D/config.yaml:18:41: error: rbac.policies[0].rules[0].to[0].paths[0]: "
               "expected a path starting with '/' or a pattern such as \"*.json\", got \"api\"",
               "$D/config.yaml:18:46: error: rbac.policies[0].rules[0].to[0].paths[1]: '*' "
               "may only stand alone or come first or last, got \"/a*b\"");
    BAD_CONFIG("bad_principal", BASE POLICY_HEAD
               "        - from: [{principals: [frontend, 'spiffe://Cluster/x', 'web*']}]\n",
               "$D/config.yaml:18:32: error: rbac.policies[0].rules[0].from[0].principals[0]: "
               "invalid SPIFFE ID \"frontend\": scheme is not \"spiffe://\"",
               "$D/config.yaml:18:42: error: rbac.policies[0].rules[0].from[0].principals[1]: "
               "invalid SPIFFE ID \"spiffe://Cluster/x\": trust domain contains an upper-case "
               "letter",
               "$D/config.yaml:18:64: error: rbac.policies[0].rules[0].from[0].principals[2]: "
               "expected \"*\", a SPIFFE ID, \"spiffe://...*\" or \"*...\", got \"web*\"");
    BAD_CONFIG("bad_condition", BASE POLICY_HEAD
               "        - when: [{header: 'x tenant', values: []}, {header: x-a}]\n",
               "$D/config.yaml:18:27: error: rbac.policies[0].rules[0].when[0].header: "
               "expected an HTTP header name, got \"x tenant\"",
               "$D/config.yaml:18:47: error: rbac.policies[0].rules[0].when[0].values: must "
               "not be empty (leave the key out instead)",
               "$D/config.yaml:18:52: error: rbac.policies[0].rules[0].when[1]: a condition "
               "needs values or not_values");
    BAD_CONFIG("empty_entry", BASE POLICY_HEAD "        - from: [{}]\n          to: []\n",
               "$D/config.yaml:18:18: error: rbac.policies[0].rules[0].from[0]: empty entry "
               "(leave the list out to match anything)",
               "$D/config.yaml:19:15: error: rbac.policies[0].rules[0].to: must not be empty "
               "(leave the key out instead)");
}

static void test_bad_policies(void **state)
{
    (void)state;
    BAD_CONFIG("bad_action", BASE "rbac:\n"
                                  "  policies:\n"
                                  "    - name: p\n"
                                  "      action: permit\n"
                                  "      dry_run: maybe\n"
                                  "      rulez: []\n",
               "$D/config.yaml:16:15: error: rbac.policies[0].action: expected \"allow\", "
               "\"deny\" or \"audit\", got \"permit\"",
               "$D/config.yaml:17:16: error: rbac.policies[0].dry_run: expected true or "
               "false, got \"maybe\"",
               "$D/config.yaml:18:7: error: unknown key 'rulez' in rbac.policies[0] "
               "(did you mean 'rules'?)");
    BAD_CONFIG("duplicate_policy", BASE "rbac:\n"
                                        "  policies:\n"
                                        "    - {name: p, action: allow}\n"
                                        "    - {name: q, action: deny}\n"
                                        "    - {name: p, action: audit}\n",
               "$D/config.yaml:17:14: error: rbac.policies[2].name: duplicate policy name "
               "\"p\" (also at line 15)");
    BAD_CONFIG("policy_missing_keys", BASE "rbac: {policies: [{service: payments}]}\n",
               "$D/config.yaml:13:19: error: missing required key 'name' in rbac.policies[0]",
               "$D/config.yaml:13:19: error: missing required key 'action' in "
               "rbac.policies[0]");
    BAD_CONFIG("policies_type", BASE "rbac: {policies: {name: p}}\n",
               "$D/config.yaml:13:18: error: rbac.policies: expected a file or directory name or a "
               "list of policies, got a mapping");
}

static void test_policies_file(void **state)
{
    test_case c;
    (void)state;
    BAD_CONFIG("policies_missing", BASE "rbac:\n  policies: rbac/policies.yaml\n",
               "$D/config.yaml:14:13: error: rbac.policies: cannot read "
               "\"$D/rbac/policies.yaml\": No such file or directory");

    case_init(&c, "policies_file_errors");
    case_write(&c, "policies.yaml", "policies:\n"
                                    "  - name: p\n"
                                    "    action: allow\n"
                                    "    rules: [{from: [{ip_blocks: [bad]}]}]\n"
                                    "extra: 1\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c,
           "$D/policies.yaml:4:34: error: policies[0].rules[0].from[0].ip_blocks[0]: invalid "
           "CIDR block \"bad\": not an IP address",
           "$D/policies.yaml:5:1: error: unknown key 'extra'");

    case_init(&c, "policies_file_syntax");
    case_write(&c, "policies.yaml", "policies: [\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml:2:1: error: invalid YAML: did not find expected node content "
               "(while parsing a flow node at line 2, column 1)");

    case_init(&c, "policies_file_empty");
    case_write(&c, "policies.yaml", "");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml: error: the file is empty; write \"policies: []\" for no "
               "policies");

    case_init(&c, "policies_file_scalar");
    case_write(&c, "policies.yaml", "allow everything\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml:1:1: error: expected a mapping with 'policies', a list of policies or "
               "an Istio resource, got a string");
}

/* Aliases are followed, but a document that expands without bound (here:
 * a list that contains itself) is cut off instead of hanging. */
static void test_aliases(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "aliases");
    or_config *cfg = case_load_ok(&c, BASE "rbac:\n"
                                            "  policies:\n"
                                            "    - name: a\n"
                                            "      action: allow\n"
                                            "      rules: [{from: &web [{namespaces: [web]}]}]\n"
                                            "    - name: b\n"
                                            "      action: deny\n"
                                            "      rules: [{from: *web}]\n");
    STRINGS(&cfg->rbac.policies[1].rules[0].from[0].namespaces, "web");
    assert_pos(cfg->rbac.policies[1].rules[0].from[0].pos, cfg->files[0], 17, 28);
    or_config_free(cfg);

    BAD_CONFIG("alias_loop", BASE "rbac: {policies: &p [*p]}\n",
               "$D/config.yaml:13:18: error: rbac.policies[0]: expected a mapping, got a list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_policy_values),
        cmocka_unit_test(test_bad_policies),
        cmocka_unit_test(test_policies_file),
        cmocka_unit_test(test_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
