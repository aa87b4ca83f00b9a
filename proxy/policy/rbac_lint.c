/*
 * rbac_lint: warnings about configurations that load but are likely wrong.
 *
 * or_rbac_lint never rejects anything; it adds OR_DIAG_WARNING entries
 * (file:line:col of the policy, rule entry or listener concerned) for
 * `outrider check` to print. Each warning is sound: it fires only when the
 * configuration certainly behaves as the warning says.
 *
 *  - No rbac section (nothing is enforced) while there are inbound
 *    listeners; rbac.default is allow; admin.listen is off loopback (only
 *    possible with admin.allow_non_loopback); an inbound tcp listener on a
 *    wildcard address with no enforced policy for the service; an outbound
 *    listener on a wildcard address (it lends the workload's identity to
 *    the network).
 *  - A policy with no rules (it matches nothing, Istio semantics).
 *  - An entry that can never match because a not_ field excludes every
 *    value of its positive twin (pattern containment is decided exactly
 *    for exact/prefix/suffix/presence patterns, ports and CIDR blocks).
 *  - A principal in another trust domain: peers are verified against the
 *    configured one, so it never matches.
 *  - An allow with principals "*": every workload of the trust domain.
 *  - An inbound listener whose mtls mode is permissive or disable: it
 *    carries traffic that mTLS does not protect.
 *  - When every inbound listener of the service is tcp: an allow or audit
 *    rule that needs HTTP-only fields never matches, and a deny rule with
 *    HTTP-only fields denies on its other fields alone.
 *
 * The checks run on the compiled policies (rbac.c), so patterns are
 * classified exactly as evaluation sees them.
 */
#include "outrider/rbac.h"

#include <netinet/in.h>
#include <string.h>

#include "rbac_compiled.h"

#define OR_RBAC_LINT_FIELDS_MAX 128

typedef struct {
    const or_config *cfg;
    or_diag *diag;
    size_t inbound;       /* inbound listeners */
    bool all_inbound_tcp; /* at least one inbound listener, and all are tcp */
} or_rbac_linter;

/* ---- containment: does every request value matched by inner also match outer? ---- */

static bool ends_with(const char *text, size_t len, const char *tail, size_t tail_len)
{
    return len >= tail_len && memcmp(text + len - tail_len, tail, tail_len) == 0;
}

static bool pattern_covers(const or_rbac_pattern *outer, const or_rbac_pattern *inner)
{
    switch (outer->kind) {
    case OR_RBAC_PRESENCE:
        return true; /* patterns are never empty, so each matches only what "*" matches */
    case OR_RBAC_EXACT:
        return inner->kind == OR_RBAC_EXACT && inner->fixed_len == outer->fixed_len &&
               memcmp(inner->fixed, outer->fixed, outer->fixed_len) == 0;
    case OR_RBAC_PREFIX:
        return (inner->kind == OR_RBAC_EXACT || inner->kind == OR_RBAC_PREFIX) &&
               inner->fixed_len >= outer->fixed_len &&
               memcmp(inner->fixed, outer->fixed, outer->fixed_len) == 0;
    default:
        return (inner->kind == OR_RBAC_EXACT || inner->kind == OR_RBAC_SUFFIX) &&
               ends_with(inner->fixed, inner->fixed_len, outer->fixed, outer->fixed_len);
    }
}

static bool block_covers(const or_cidr *outer, const or_cidr *inner)
{
    if (outer->family != inner->family || outer->prefix_len > inner->prefix_len)
        return false;
    unsigned full = outer->prefix_len / 8, rest = outer->prefix_len % 8;
    if (memcmp(outer->addr, inner->addr, full) != 0)
        return false;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return rest == 0 || (outer->addr[full] & mask) == (inner->addr[full] & mask);
}

static bool value_covered(const or_rbac_field *not_field, const or_rbac_field *field, uint32_t i)
{
    for (uint32_t j = 0; j < not_field->count; j++) {
        bool covers;
        if (field->kind == OR_RBAC_FIELD_PORTS)
            covers = not_field->values.ports[j] == field->values.ports[i];
        else if (field->kind == OR_RBAC_FIELD_IP_BLOCKS)
            covers = block_covers(&not_field->values.blocks[j], &field->values.blocks[i]);
        else
            covers = pattern_covers(&not_field->values.patterns[j], &field->values.patterns[i]);
        if (covers)
            return true;
    }
    return false;
}

/* The positive field of the entry whose every value its not_ twin
 * excludes, or NULL. */
static const or_rbac_field *excluded_field(const or_rbac_entry *entry,
                                           const or_rbac_field **not_field)
{
    for (uint32_t i = 0; i < entry->nfields; i++) {
        const or_rbac_field *field = &entry->fields[i];
        for (uint32_t j = 0; !field->negated && j < entry->nfields; j++) {
            const or_rbac_field *twin = &entry->fields[j];
            if (!twin->negated || twin->kind != field->kind)
                continue;
            uint32_t v = 0;
            while (v < field->count && value_covered(twin, field, v))
                v++;
            if (v == field->count) {
                *not_field = twin;
                return field;
            }
        }
    }
    return NULL;
}

/* ---- entries ---- */

static void lint_excluded(or_rbac_linter *l, const or_rbac_policy *p, uint32_t rule,
                          const char *section, uint32_t index, const or_rbac_entry *entry)
{
    const or_rbac_field *not_field = NULL;
    const or_rbac_field *field = excluded_field(entry, &not_field);
    if (field == NULL)
        return;
    or_diag_add(l->diag, OR_DIAG_WARNING, p->file, entry->line, entry->col,
                "policy \"%s\" rule %u %s[%u] can never match: %s excludes every value of %s",
                p->name, (unsigned)rule, section, (unsigned)index, or_rbac_field_name(p, not_field),
                or_rbac_field_name(p, field));
}

/* Trust domain of an exact or prefix principal that names it whole. */
static bool principal_trust_domain(const or_rbac_pattern *pattern, const char **td, size_t *len)
{
    static const char scheme[] = "spiffe://";
    const size_t scheme_len = sizeof(scheme) - 1;
    if (pattern->kind != OR_RBAC_EXACT && pattern->kind != OR_RBAC_PREFIX)
        return false;
    if (pattern->fixed_len <= scheme_len || memcmp(pattern->fixed, scheme, scheme_len) != 0)
        return false;
    const char *start = pattern->fixed + scheme_len;
    const char *slash = memchr(start, '/', pattern->fixed_len - scheme_len);
    if (slash == NULL)
        return false;
    *td = start;
    *len = (size_t)(slash - start);
    return true;
}

static void lint_principals(or_rbac_linter *l, const or_rbac_policy *p, uint32_t rule,
                            uint32_t index, const or_rbac_entry *entry)
{
    const char *expected = l->cfg->trust_domain ? l->cfg->trust_domain : "";
    for (uint32_t f = 0; f < entry->nfields; f++) {
        const or_rbac_field *field = &entry->fields[f];
        if (field->kind != OR_RBAC_FIELD_PRINCIPALS || field->negated)
            continue;
        for (uint32_t v = 0; v < field->count; v++) {
            const or_rbac_pattern *pattern = &field->values.patterns[v];
            const char *td;
            size_t td_len;
            if (pattern->kind == OR_RBAC_PRESENCE && p->action == OR_RBAC_ALLOW)
                or_diag_add(l->diag, OR_DIAG_WARNING, p->file, entry->line, entry->col,
                            "policy \"%s\" rule %u from[%u]: principals \"*\" allows every "
                            "workload with a certificate from trust domain \"%s\"; name the "
                            "principals or namespaces that need access",
                            p->name, (unsigned)rule, (unsigned)index, expected);
            if (principal_trust_domain(pattern, &td, &td_len) &&
                (td_len != strlen(expected) || memcmp(td, expected, td_len) != 0))
                or_diag_add(l->diag, OR_DIAG_WARNING, p->file, entry->line, entry->col,
                            "policy \"%s\" rule %u from[%u]: principals \"%s\" is in trust "
                            "domain \"%.*s\", but peers are verified against \"%s\", so it "
                            "never matches",
                            p->name, (unsigned)rule, (unsigned)index, pattern->text, (int)td_len,
                            td, expected);
        }
    }
}

/* ---- rules on a tcp-only service ---- */

/* The distinct HTTP-only keys a rule uses, as a list in text. */
typedef struct {
    const char *names[8]; /* or_rbac_field_name strings, compared by address */
    size_t count;
    char text[OR_RBAC_LINT_FIELDS_MAX];
} or_rbac_key_list;

static void add_key(or_rbac_key_list *keys, const char *name)
{
    for (size_t i = 0; i < keys->count; i++)
        if (keys->names[i] == name)
            return;
    if (keys->count == sizeof(keys->names) / sizeof(keys->names[0]))
        return;
    size_t used = strlen(keys->text);
    snprintf(keys->text + used, sizeof(keys->text) - used, "%s%s", keys->count ? ", " : "",
             name);
    keys->names[keys->count++] = name;
}

/* Collects the HTTP-only keys of a rule; returns whether the rule needs
 * HTTP to match (every `to` entry has such a key, or there is a `when`). */
static bool http_only_keys(const or_rbac_compiled_rule *rule, or_rbac_key_list *keys)
{
    static const char when[] = "when";
    bool every_to = rule->nto > 0;
    for (uint32_t i = 0; i < rule->nto; i++) {
        bool has = false;
        for (uint32_t f = 0; f < rule->to[i].nfields; f++) {
            if (!or_rbac_field_is_http_only(&rule->to[i].fields[f]))
                continue;
            has = true;
            add_key(keys, or_rbac_field_name(NULL, &rule->to[i].fields[f]));
        }
        every_to = every_to && has;
    }
    if (rule->nwhen > 0)
        add_key(keys, when);
    return every_to || rule->nwhen > 0;
}

/* On a tcp request, with HTTP-only fields holding: a rule with no `from`
 * and a `to` entry of HTTP-only fields alone matches every connection. */
static bool denies_every_connection(const or_rbac_compiled_rule *rule)
{
    if (rule->nfrom > 0)
        return false;
    for (uint32_t i = 0; i < rule->nto; i++) {
        uint32_t f = 0;
        while (f < rule->to[i].nfields && or_rbac_field_is_http_only(&rule->to[i].fields[f]))
            f++;
        if (f == rule->to[i].nfields)
            return true;
    }
    return rule->nto == 0;
}

static void lint_tcp_rule(or_rbac_linter *l, const or_rbac_policy *p, uint32_t index)
{
    or_rbac_key_list keys = {{NULL}, 0, ""};
    const or_rbac_compiled_rule *rule = &p->rules[index];
    bool needs_http = http_only_keys(rule, &keys);
    if (keys.count == 0)
        return;
    if (p->action == OR_RBAC_DENY)
        or_diag_add(l->diag, OR_DIAG_WARNING, p->file, rule->line, rule->col,
                    "policy \"%s\" rule %u uses HTTP-only fields (%s), but every inbound "
                    "listener is tcp, where they always match (deny fails closed): %s",
                    p->name, (unsigned)index, keys.text,
                    denies_every_connection(rule) ? "the rule denies every connection"
                                                  : "the rule denies on its other fields alone");
    else if (needs_http)
        or_diag_add(l->diag, OR_DIAG_WARNING, p->file, rule->line, rule->col,
                    "policy \"%s\" rule %u uses HTTP-only fields (%s), but every inbound "
                    "listener is tcp, where they never match (fail closed): the rule never "
                    "matches",
                    p->name, (unsigned)index, keys.text);
}

static void lint_policy(or_rbac_linter *l, const or_rbac_policy *p)
{
    if (p->nrules == 0) {
        or_diag_add(l->diag, OR_DIAG_WARNING, p->file, p->line, p->col,
                    "policy \"%s\" has no rules, so it matches no request (Istio semantics); "
                    "write \"rules: [{}]\" to match every request",
                    p->name);
        return;
    }
    for (uint32_t r = 0; r < p->nrules; r++) {
        const or_rbac_compiled_rule *rule = &p->rules[r];
        for (uint32_t i = 0; i < rule->nfrom; i++) {
            lint_excluded(l, p, r, "from", i, &rule->from[i]);
            lint_principals(l, p, r, i, &rule->from[i]);
        }
        for (uint32_t i = 0; i < rule->nto; i++)
            lint_excluded(l, p, r, "to", i, &rule->to[i]);
        for (uint32_t i = 0; i < rule->nwhen; i++)
            lint_excluded(l, p, r, "when", i, &rule->when[i]);
        if (l->all_inbound_tcp)
            lint_tcp_rule(l, p, r);
    }
}

/* ---- the config ---- */

static bool is_wildcard(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET)
        return ((const struct sockaddr_in *)addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (addr->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)addr)->sin6_addr);
    return false;
}

static size_t enforced_policies(const or_rbac *rbac)
{
    size_t n = 0;
    for (size_t i = 0; rbac != NULL && i < rbac->npolicies; i++)
        n += rbac->policies[i].action != OR_RBAC_AUDIT && !rbac->policies[i].dry_run;
    return n;
}

static void lint_listeners(or_rbac_linter *l, const or_rbac *rbac)
{
    const or_config *cfg = l->cfg;
    char addr[80];
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const or_listener_config *lc = &cfg->listeners[i];
        if (!is_wildcard(&lc->listen.addr))
            continue;
        or_addr_format((const struct sockaddr *)&lc->listen.addr, addr, sizeof(addr));
        if (lc->mode == OR_MODE_OUTBOUND)
            or_diag_add(l->diag, OR_DIAG_WARNING, lc->pos.file, lc->pos.line, lc->pos.col,
                        "outbound listener \"%s\" listens on every address (%s): any host that "
                        "can reach it can send traffic with this workload's identity; bind it "
                        "to 127.0.0.1 unless this proxy is a gateway",
                        lc->name, addr);
        else if (lc->protocol == OR_PROTO_TCP && cfg->rbac.enabled &&
                 enforced_policies(rbac) == 0)
            or_diag_add(l->diag, OR_DIAG_WARNING, lc->pos.file, lc->pos.line, lc->pos.col,
                        "listener \"%s\" accepts tcp connections on every address (%s) and no "
                        "enforced RBAC policy applies to service \"%s\": rbac.default (%s) "
                        "decides every connection",
                        lc->name, addr, cfg->service, rbac && rbac->default_allow ? "allow" : "deny");
    }
}

static void lint_default(or_rbac_linter *l, const or_rbac *rbac)
{
    const or_config *cfg = l->cfg;
    if (cfg->rbac.default_written && cfg->rbac.default_allow)
        or_diag_add(l->diag, OR_DIAG_WARNING, cfg->path, 0, 0,
                    "rbac.default is allow: requests that no policy matches are allowed; prefer "
                    "\"default: deny\" with allow policies for the callers you expect");
    else if (rbac != NULL && rbac->default_allow && !rbac->has_allow && cfg->rbac.enabled)
        or_diag_add(l->diag, OR_DIAG_WARNING, cfg->path, 0, 0,
                    "no Istio ALLOW policy applies to this workload and rbac.default is not "
                    "written: as in Istio, every request no DENY policy matches is allowed; "
                    "write \"default: deny\" for default-deny");
}

static void lint_mtls_modes(or_rbac_linter *l)
{
    for (size_t i = 0; i < l->cfg->nlisteners; i++) {
        const or_listener_config *lc = &l->cfg->listeners[i];
        if (lc->mode != OR_MODE_INBOUND || lc->mtls_effective == OR_MTLS_STRICT)
            continue;
        or_diag_add(l->diag, OR_DIAG_WARNING, lc->pos.file, lc->pos.line, lc->pos.col,
                    "listener \"%s\" has mtls %s: traffic on this port is not protected by "
                    "mTLS; plaintext peers have no principal or namespace",
                    lc->name, lc->mtls_effective == OR_MTLS_PERMISSIVE ? "permissive" : "disable");
    }
}

static void lint_config(or_rbac_linter *l, const or_rbac *rbac)
{
    const or_config *cfg = l->cfg;
    char addr[80];
    if (!cfg->rbac.enabled && l->inbound > 0)
        or_diag_add(l->diag, OR_DIAG_WARNING, cfg->path, 0, 0,
                    "no rbac section: the proxy enforces no policy, so every peer with a "
                    "certificate from trust domain \"%s\" may use the inbound listeners; add "
                    "rbac with \"default: deny\" and allow policies",
                    cfg->trust_domain ? cfg->trust_domain : "");
    lint_default(l, rbac);
    if (cfg->admin.enabled && !or_addr_is_loopback(&cfg->admin.listen.addr))
        or_diag_add(l->diag, OR_DIAG_WARNING, cfg->path, 0, 0,
                    "admin.listen %s is not a loopback address (admin.allow_non_loopback is "
                    "true): anyone who can reach it can reload, drain or stop the proxy",
                    or_addr_format((const struct sockaddr *)&cfg->admin.listen.addr, addr,
                                   sizeof(addr)));
}

void or_rbac_lint(const or_config *cfg, or_diag *diag)
{
    or_rbac_linter l = {cfg, diag, 0, false};
    size_t inbound_tcp = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        l.inbound += cfg->listeners[i].mode == OR_MODE_INBOUND;
        inbound_tcp += cfg->listeners[i].mode == OR_MODE_INBOUND &&
                       cfg->listeners[i].protocol == OR_PROTO_TCP;
    }
    l.all_inbound_tcp = l.inbound > 0 && l.inbound == inbound_tcp;
    or_rbac *rbac = or_rbac_compile(cfg, diag);
    lint_config(&l, rbac);
    lint_listeners(&l, rbac);
    lint_mtls_modes(&l);
    for (size_t i = 0; rbac != NULL && i < rbac->npolicies; i++)
        lint_policy(&l, &rbac->policies[i]);
    or_rbac_free(rbac);
}
