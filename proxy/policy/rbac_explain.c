/*
 * rbac_explain: the operator's report of one RBAC decision.
 *
 * or_rbac_explain runs or_rbac_evaluate for the decision, then walks every
 * policy again with the same matchers (or_rbac_entry_first_failure and
 * friends from rbac.c), so the report cannot disagree with what the proxy
 * does. For each policy it prints whether it matched and what that meant
 * for the decision; for a matching policy the fields of the rule that
 * matched, for a policy that did not match the first field of each rule
 * that failed, with the values written and the value of the request. Every
 * policy is named with file:line:col so the operator can find it.
 *
 * The report is plain text, one fact per line, meant for people; tests
 * check its key lines, so wording changes are interface changes.
 */
#include "outrider/rbac.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "rbac_compiled.h"

#define OR_RBAC_VALUES_SHOWN 5

static const char *action_name(or_rbac_action action)
{
    return action == OR_RBAC_DENY ? "deny" : action == OR_RBAC_AUDIT ? "audit" : "allow";
}

/* Writes text in double quotes, escaping quotes, backslashes and bytes
 * that are not printable ASCII. */
static void print_quoted(FILE *out, const char *text, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void print_ip(FILE *out, const struct sockaddr *addr)
{
    char text[INET6_ADDRSTRLEN] = "?";
    if (addr == NULL)
        fputs("-", out);
    else if (addr->sa_family == AF_INET)
        fputs(inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, text,
                        sizeof(text)) ? text : "?", out);
    else if (addr->sa_family == AF_INET6)
        fputs(inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, text,
                        sizeof(text)) ? text : "?", out);
    else
        fputs("?", out);
}

static bool is_ip_field(const or_rbac_field *field)
{
    return field->kind == OR_RBAC_FIELD_IP_BLOCKS || field->kind == OR_RBAC_FIELD_REMOTE_IP_BLOCKS;
}

static void print_value(FILE *out, const or_rbac_field *field, uint32_t i)
{
    char text[INET6_ADDRSTRLEN] = "?";
    if (field->kind == OR_RBAC_FIELD_PORTS) {
        fprintf(out, "%u", (unsigned)field->values.ports[i]);
    } else if (is_ip_field(field)) {
        const or_cidr *block = &field->values.blocks[i];
        inet_ntop(block->family, block->addr, text, sizeof(text));
        fprintf(out, "%s/%u", text, (unsigned)block->prefix_len);
    } else {
        const char *pattern = field->values.patterns[i].text;
        print_quoted(out, pattern, strlen(pattern));
    }
}

static void print_subject(FILE *out, const or_rbac_field *field, const or_rbac_subject *s)
{
    if (field->kind == OR_RBAC_FIELD_PORTS)
        fprintf(out, "%u", (unsigned)s->port);
    else if (is_ip_field(field))
        print_ip(out, s->addr);
    else
        print_quoted(out, s->text, s->len);
}

/* "A" or "none of A, B, C" (shortened past a few values). */
static void print_values(FILE *out, const or_rbac_field *field)
{
    if (field->count > 1)
        fputs("none of ", out);
    for (uint32_t i = 0; i < field->count && i < OR_RBAC_VALUES_SHOWN; i++) {
        fputs(i ? ", " : "", out);
        print_value(out, field, i);
    }
    if (field->count > OR_RBAC_VALUES_SHOWN)
        fprintf(out, ", ... (%u more)", (unsigned)(field->count - OR_RBAC_VALUES_SHOWN));
}

/* Why a subject is missing: "the request has no principal (...)". */
static void print_absence(FILE *out, const or_rbac_field *field, const or_rbac_entry *entry,
                          const or_rbac_view *view)
{
    const char *principal = view->req->principal;
    switch ((or_rbac_field_kind)field->kind) {
    case OR_RBAC_FIELD_NAMESPACES:
        if (principal != NULL) {
            fputs("principal ", out);
            print_quoted(out, principal, view->principal_len);
            fputs(" has no /ns/<namespace>/ segment", out);
            return;
        }
        /* fall through */
    case OR_RBAC_FIELD_PRINCIPALS:
        fputs("the request has no principal (unauthenticated)", out);
        return;
    case OR_RBAC_FIELD_IP_BLOCKS:
    case OR_RBAC_FIELD_REMOTE_IP_BLOCKS:
        fputs("the request has no source address", out);
        return;
    case OR_RBAC_FIELD_SNI:
        fputs("the connection has no TLS server name (SNI)", out);
        return;
    case OR_RBAC_FIELD_VALUES:
        fprintf(out, "header %s is absent", entry ? entry->header : "?");
        return;
    default:
        fprintf(out, "the request has no %s", field->kind == OR_RBAC_FIELD_METHODS ? "method"
                                              : field->kind == OR_RBAC_FIELD_PATHS ? "path"
                                                                                   : "host");
        return;
    }
}

/* One field and its outcome, e.g. `paths "/api/v1*" matches "/api/v1/x"`
 * or `principals: "spiffe://a" does not match "spiffe://b"`. */
static void print_field(FILE *out, const or_rbac_policy *policy, const or_rbac_field *field,
                        const or_rbac_entry *entry, const or_rbac_view *view)
{
    const char *name = or_rbac_field_name(policy, field);
    const char *verb = is_ip_field(field) ? "contains" : "matches";
    or_rbac_field_outcome outcome = or_rbac_field_check(policy, field, entry, view);
    if (outcome == OR_RBAC_FIELD_NO_JWT) {
        fprintf(out, "'%s' is treated as matching: Outrider validates no JWT (deny fails "
                     "closed)", name);
        return;
    }
    if (outcome == OR_RBAC_FIELD_L4_NEVER || outcome == OR_RBAC_FIELD_L4_ALWAYS) {
        fprintf(out, "HTTP-only field '%s' %s on a tcp request (%s)", name,
                outcome == OR_RBAC_FIELD_L4_NEVER ? "never matches" : "is treated as matching",
                outcome == OR_RBAC_FIELD_L4_NEVER ? "fail closed" : "deny fails closed");
        return;
    }
    or_rbac_subject subject = or_rbac_field_subject(field, entry, view);
    int hit = or_rbac_field_first_match(field, &subject);
    if (!subject.present) {
        fprintf(out, "%s: ", name);
        print_absence(out, field, entry, view);
    } else if (hit >= 0) {
        fprintf(out, "%s%s ", name, field->negated ? ":" : "");
        print_value(out, field, (uint32_t)hit);
        fprintf(out, " %s ", verb);
        print_subject(out, field, &subject);
    } else {
        fprintf(out, "%s: ", name);
        print_values(out, field);
        if (field->count > 1)
            fprintf(out, " %s ", verb);
        else
            fprintf(out, " does not %s ", is_ip_field(field) ? "contain" : "match");
        print_subject(out, field, &subject);
    }
}

/* The heading of a detail line: "      rule 0: from[1]: " or for a
 * condition "      rule 0: when[0] (header x-tenant): ". */
static void print_where(FILE *out, int rule, const char *section, uint32_t index,
                        const or_rbac_entry *entry)
{
    fprintf(out, "      rule %d: %s[%u]", rule, section, (unsigned)index);
    if (entry->header != NULL && entry->header[0] != '\0')
        fprintf(out, " (header %s)", entry->header);
    fputs(": ", out);
}

/* The first failing field of entry `i` of a section, if it fails. */
static bool explain_entry_miss(FILE *out, const or_rbac_policy *policy, int rule,
                               const char *section, uint32_t i, const or_rbac_entry *entry,
                               const or_rbac_view *view)
{
    int failed = or_rbac_entry_first_failure(policy, entry, view);
    if (failed < 0)
        return false;
    print_where(out, rule, section, i, entry);
    print_field(out, policy, &entry->fields[failed], entry, view);
    fputc('\n', out);
    return true;
}

static void explain_section_miss(FILE *out, const or_rbac_policy *policy, int rule,
                                 const char *section, const or_rbac_entry *entries, uint32_t n,
                                 const or_rbac_view *view)
{
    for (uint32_t i = 0; i < n; i++)
        explain_entry_miss(out, policy, rule, section, i, &entries[i], view);
}

static bool section_matches(const or_rbac_policy *policy, const or_rbac_entry *entries,
                            uint32_t n, const or_rbac_view *view)
{
    for (uint32_t i = 0; i < n; i++)
        if (or_rbac_entry_first_failure(policy, &entries[i], view) < 0)
            return true;
    return n == 0;
}

/* A rule that did not match: the first section that failed, and in it the
 * first failing field of each entry (or of the first failing condition). */
static void explain_rule_miss(FILE *out, const or_rbac_policy *policy, int index,
                              const or_rbac_view *view)
{
    const or_rbac_compiled_rule *rule = &policy->rules[index];
    if (!section_matches(policy, rule->from, rule->nfrom, view)) {
        explain_section_miss(out, policy, index, "from", rule->from, rule->nfrom, view);
        return;
    }
    if (!section_matches(policy, rule->to, rule->nto, view)) {
        explain_section_miss(out, policy, index, "to", rule->to, rule->nto, view);
        return;
    }
    for (uint32_t i = 0; i < rule->nwhen; i++)
        if (explain_entry_miss(out, policy, index, "when", i, &rule->when[i], view))
            return;
}

/* Every field of the first matching entry of a section. */
static void explain_section_match(FILE *out, const or_rbac_policy *policy, int rule,
                                  const char *section, const or_rbac_entry *entries, uint32_t n,
                                  const or_rbac_view *view)
{
    for (uint32_t i = 0; i < n; i++) {
        if (or_rbac_entry_first_failure(policy, &entries[i], view) >= 0)
            continue;
        for (uint32_t f = 0; f < entries[i].nfields; f++) {
            print_where(out, rule, section, i, &entries[i]);
            print_field(out, policy, &entries[i].fields[f], &entries[i], view);
            fputc('\n', out);
        }
        return;
    }
}

static void explain_rule_match(FILE *out, const or_rbac_policy *policy, int index,
                               const or_rbac_view *view)
{
    const or_rbac_compiled_rule *rule = &policy->rules[index];
    if (rule->nfrom == 0 && rule->nto == 0 && rule->nwhen == 0) {
        fprintf(out, "      rule %d: an empty rule matches every request\n", index);
        return;
    }
    explain_section_match(out, policy, index, "from", rule->from, rule->nfrom, view);
    explain_section_match(out, policy, index, "to", rule->to, rule->nto, view);
    for (uint32_t i = 0; i < rule->nwhen; i++)
        explain_section_match(out, policy, index, "when", &rule->when[i], 1, view);
}

/* What a matching policy meant for the decision. */
static void print_match_role(FILE *out, const or_rbac_policy *p, int rule,
                             const or_rbac_decision *d)
{
    fprintf(out, "matched rule %d", rule);
    if (p->action == OR_RBAC_AUDIT)
        fputs(": audit, logged only\n", out);
    else if (p->dry_run)
        fprintf(out, ": dry run, would %s (not enforced)\n", action_name(p->action));
    else if (d->policy == p->name)
        fprintf(out, ": decides %s\n", d->allowed ? "ALLOW" : "DENY");
    else if (p->action == OR_RBAC_ALLOW && !d->allowed)
        fprintf(out, ", but deny \"%s\" decides first (deny policies win)\n", d->policy);
    else
        fprintf(out, " (an earlier %s decides)\n", action_name(p->action));
}

static void explain_policy(FILE *out, const or_rbac_policy *p, const or_rbac_view *view,
                           const or_rbac_decision *d)
{
    fprintf(out, "  %-5s \"%s\"%s at %s:%lu:%lu: ", action_name(p->action), p->name,
            p->dry_run ? " (dry run)" : "", p->file ? p->file : "?", p->line, p->col);
    if (p->nrules == 0) {
        fputs("no match: the policy has no rules, so it matches no request "
              "(write rules: [{}] to match every request)\n", out);
        return;
    }
    int rule = or_rbac_policy_first_match(p, view);
    if (rule >= 0) {
        print_match_role(out, p, rule, d);
        explain_rule_match(out, p, rule, view);
        return;
    }
    fputs("no match\n", out);
    for (uint32_t i = 0; i < p->nrules; i++)
        explain_rule_miss(out, p, (int)i, view);
}

static const or_rbac_policy *find_policy(const or_rbac *rbac, const char *name)
{
    for (size_t i = 0; name != NULL && i < rbac->npolicies; i++)
        if (rbac->policies[i].name == name)
            return &rbac->policies[i];
    return NULL;
}

static void print_decision(FILE *out, const or_rbac *rbac, const or_rbac_decision *d)
{
    const or_rbac_policy *p = find_policy(rbac, d->policy);
    const char *verdict = d->allowed ? "ALLOW" : "DENY";
    if (p != NULL)
        fprintf(out, "decision: %s by policy \"%s\" rule %d (action %s, %s:%lu:%lu)\n", verdict,
                p->name, d->rule, action_name(p->action), p->file ? p->file : "?", p->line,
                p->col);
    else if (d->basis == OR_RBAC_BY_NO_ALLOW_MATCH)
        fprintf(out, "decision: DENY: Istio ALLOW policies apply to this workload and none "
                     "matched (what they do not allow is denied)\n");
    else
        fprintf(out, "decision: %s by default (rbac.default: %s%s; no enforced policy "
                     "matched)\n", verdict,
                rbac->default_allow ? "allow" : "deny",
                rbac->default_written ? "" : rbac->default_allow ? ", Istio's default"
                                                                 : ", Outrider's default");
    if (d->dry_run_policy != NULL)
        fprintf(out, "dry run: policy \"%s\" would %s\n", d->dry_run_policy,
                d->dry_run_would_allow ? "allow" : "deny");
    if (d->audit_policy != NULL)
        fprintf(out, "audit: policy \"%s\" matched\n", d->audit_policy);
}

/* A request string, and what was matched when the view shortened it. */
static void print_request_text(FILE *out, const char *key, const char *text, size_t len,
                               const char *matched, size_t matched_len)
{
    fprintf(out, " %s=", key);
    if (text == NULL) {
        fputs("-", out);
        return;
    }
    print_quoted(out, text, len);
    if (matched != NULL && matched_len != len) {
        fputs(" (matched as ", out);
        print_quoted(out, matched, matched_len);
        fputs(")", out);
    }
}

static void print_request(FILE *out, const or_rbac_view *view)
{
    const or_rbac_request *req = view->req;
    fputs("request: principal=", out);
    if (req->principal != NULL)
        print_quoted(out, req->principal, view->principal_len);
    else
        fputs("none (unauthenticated)", out);
    fputs(" ip=", out);
    print_ip(out, req->source);
    fprintf(out, " port=%u", (unsigned)req->port);
    if (req->l4) {
        fputs(" protocol=tcp (no HTTP fields)\n", out);
        return;
    }
    fputs(" protocol=http", out);
    print_request_text(out, "method", req->method, req->method_len, NULL, 0);
    print_request_text(out, "path", req->path, req->path_len, view->path, view->path_len);
    print_request_text(out, "host", req->host, req->host_len, view->host, view->host_len);
    fputc('\n', out);
}

void or_rbac_explain(const or_rbac *rbac, const or_rbac_request *req, FILE *out)
{
    or_rbac_decision decision;
    or_rbac_view view;
    if (rbac == NULL) {
        fputs("decision: DENY (no compiled policies)\n", out);
        return;
    }
    or_rbac_evaluate(rbac, req, &decision);
    or_rbac_view_init(&view, req);
    print_decision(out, rbac, &decision);
    print_request(out, &view);
    fprintf(out, "policies considered (service \"%s\", namespace \"%s\", %zu apply, default "
                 "%s):%s\n",
            rbac->service, rbac->namespace[0] ? rbac->namespace : "unknown", rbac->npolicies,
            rbac->default_allow ? "allow" : "deny", rbac->npolicies == 0 ? " none" : "");
    for (size_t i = 0; i < rbac->npolicies; i++)
        explain_policy(out, &rbac->policies[i], &view, &decision);
    if (rbac->nskipped == 0)
        return;
    fputs("policies skipped (they do not apply to this workload):\n", out);
    for (size_t i = 0; i < rbac->nskipped; i++) {
        const or_rbac_policy *p = &rbac->skipped[i];
        fprintf(out, "  \"%s\" (%s) at %s:%lu:%lu\n", p->name, p->miss,
                p->file ? p->file : "?", p->line, p->col);
    }
}
