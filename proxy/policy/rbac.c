/*
 * rbac: compiling the authorization policies and evaluating requests.
 *
 * Compiling copies what evaluation needs out of the loaded config into one
 * arena owned by the or_rbac, so a compiled policy set outlives the config
 * it came from and is freed in one sweep. Only the policies that apply to
 * the config's service are compiled (a policy without `service` applies to
 * every service); the others are remembered by name and position so
 * `outrider explain` can say why they were not considered. String values
 * become or_rbac_pattern: classified once as exact, prefix ("abc*"), suffix
 * ("*abc") or presence ("*") with the compared part and its length stored,
 * so matching is a length check and a memcmp. Host patterns are stored
 * lower-case and compared case-insensitively; methods are stored upper-case
 * and compared exactly; header names are stored lower-case.
 *
 * Scopes (config_scope.c) decide which policies are compiled. Istio's `when`
 * keys become fields of a condition entry (source.ip is an ip_blocks field,
 * and so on); JWT fields are loaded only in deny policies, where they fail
 * closed.
 *
 * Evaluation walks the policies in file order and never allocates. The
 * request is first turned into an or_rbac_view (principal length and
 * namespace, path without query, host without port), then each field of an
 * entry is compared with its subject from the view, with the semantics and
 * the decision order rbac.h states.
 */
#include "outrider/rbac.h"
#include "outrider/log.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/spiffe.h"
#include "rbac_compiled.h"

#define OR_RBAC_CHUNK_SIZE 8192

/* ---- the arena ---- */

struct or_rbac_chunk {
    or_rbac_chunk *next;
    size_t used, size;
    max_align_t data[];
};

/* Allocation during compilation; `failed` records that memory ran out so
 * the caller can stop at one place. */
typedef struct {
    or_rbac *rbac;
    bool failed;
    const char *last_file_in; /* policies of one file share one copy */
    const char *last_file_out;
} or_rbac_builder;

static void *arena_alloc(or_rbac_builder *b, size_t bytes)
{
    const size_t align = alignof(max_align_t);
    bytes = (bytes + align - 1) / align * align;
    or_rbac_chunk *chunk = b->rbac->chunks;
    if (chunk == NULL || chunk->size - chunk->used < bytes) {
        size_t size = bytes > OR_RBAC_CHUNK_SIZE ? bytes : OR_RBAC_CHUNK_SIZE;
        if ((chunk = malloc(sizeof(*chunk) + size)) == NULL) {
            b->failed = true;
            return NULL;
        }
        chunk->used = 0;
        chunk->size = size;
        chunk->next = b->rbac->chunks;
        b->rbac->chunks = chunk;
    }
    void *p = (char *)chunk->data + chunk->used;
    chunk->used += bytes;
    memset(p, 0, bytes);
    return p;
}

static void *arena_array(or_rbac_builder *b, size_t count, size_t size)
{
    if (count == 0)
        return NULL;
    return arena_alloc(b, count * size);
}

typedef enum { CASE_KEEP, CASE_LOWER, CASE_UPPER } or_rbac_case;

static char *arena_strdup(or_rbac_builder *b, const char *text, or_rbac_case fold)
{
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    char *copy = arena_alloc(b, len + 1);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (fold == CASE_LOWER && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (fold == CASE_UPPER && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        copy[i] = c;
    }
    return copy;
}

/* ---- compiling ---- */

static void compile_pattern(or_rbac_builder *b, const char *written, or_rbac_case fold,
                            or_rbac_pattern *out)
{
    char *text = arena_strdup(b, written, fold);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    out->text = text;
    out->fixed = text;
    out->fixed_len = (uint32_t)len;
    out->kind = OR_RBAC_EXACT;
    if (len == 1 && text[0] == '*') {
        out->kind = OR_RBAC_PRESENCE;
        out->fixed_len = 0;
    } else if (len > 0 && text[len - 1] == '*') {
        out->kind = OR_RBAC_PREFIX;
        out->fixed_len = (uint32_t)(len - 1);
    } else if (len > 0 && text[0] == '*') {
        out->kind = OR_RBAC_SUFFIX;
        out->fixed = text + 1;
        out->fixed_len = (uint32_t)(len - 1);
    }
}

/* One key of an entry as written: exactly one of the lists is set. */
typedef struct {
    or_rbac_field_kind kind;
    bool negated;
    const or_strlist *strings;
    const or_cidrlist *blocks;
    const or_portlist *ports;
} or_rbac_written_field;

static size_t written_count(const or_rbac_written_field *w)
{
    return w->strings ? w->strings->count : w->blocks ? w->blocks->count : w->ports->count;
}

static void compile_field(or_rbac_builder *b, const or_rbac_written_field *w, or_rbac_field *out)
{
    size_t n = written_count(w);
    out->kind = (uint8_t)w->kind;
    out->negated = w->negated;
    out->count = (uint32_t)n;
    if (w->blocks) {
        or_cidr *blocks = arena_array(b, n, sizeof(*blocks));
        if (blocks != NULL)
            memcpy(blocks, w->blocks->items, n * sizeof(*blocks));
        out->values.blocks = blocks;
    } else if (w->ports) {
        uint16_t *ports = arena_array(b, n, sizeof(*ports));
        if (ports != NULL)
            memcpy(ports, w->ports->items, n * sizeof(*ports));
        out->values.ports = ports;
    } else {
        or_rbac_case fold = w->kind == OR_RBAC_FIELD_HOSTS || w->kind == OR_RBAC_FIELD_SNI
                                ? CASE_LOWER
                            : w->kind == OR_RBAC_FIELD_METHODS ? CASE_UPPER
                                                               : CASE_KEEP;
        or_rbac_pattern *patterns = arena_array(b, n, sizeof(*patterns));
        for (size_t i = 0; patterns != NULL && i < n; i++)
            compile_pattern(b, w->strings->items[i], fold, &patterns[i]);
        out->values.patterns = patterns;
    }
}

/* Keeps the written keys that hold values, in the order given. */
static void compile_entry(or_rbac_builder *b, const or_rbac_written_field *written, size_t n,
                          const or_source_pos *pos, or_rbac_entry *out)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += written_count(&written[i]) > 0;
    or_rbac_field *fields = arena_array(b, used, sizeof(*fields));
    out->line = pos->line;
    out->col = pos->col;
    if (fields == NULL)
        return;
    for (size_t i = 0, j = 0; i < n; i++)
        if (written_count(&written[i]) > 0)
            compile_field(b, &written[i], &fields[j++]);
    out->fields = fields;
    out->nfields = (uint32_t)used;
}

#define STRINGS(kind, neg, list) {kind, neg, &(list), NULL, NULL}
#define BLOCKS(kind, neg, list) {kind, neg, NULL, &(list), NULL}
#define PORTS(kind, neg, list) {kind, neg, NULL, NULL, &(list)}

/* A JWT field has no values to compare: it is one field that holds in a
 * deny policy (fail closed) and is refused at load everywhere else. */
static char *jwt_any[] = {"*"};
static const or_strlist jwt_list = {jwt_any, 1}, no_list = {NULL, 0};

static void compile_source(or_rbac_builder *b, const or_rbac_source *s, or_rbac_entry *out)
{
    const or_rbac_written_field written[] = {
        STRINGS(OR_RBAC_FIELD_PRINCIPALS, false, s->principals),
        STRINGS(OR_RBAC_FIELD_PRINCIPALS, true, s->not_principals),
        STRINGS(OR_RBAC_FIELD_NAMESPACES, false, s->namespaces),
        STRINGS(OR_RBAC_FIELD_NAMESPACES, true, s->not_namespaces),
        BLOCKS(OR_RBAC_FIELD_IP_BLOCKS, false, s->ip_blocks),
        BLOCKS(OR_RBAC_FIELD_IP_BLOCKS, true, s->not_ip_blocks),
        BLOCKS(OR_RBAC_FIELD_REMOTE_IP_BLOCKS, false, s->remote_ip_blocks),
        BLOCKS(OR_RBAC_FIELD_REMOTE_IP_BLOCKS, true, s->not_remote_ip_blocks),
        {OR_RBAC_FIELD_REQUEST_AUTH, false, s->request_principals ? &jwt_list : &no_list,
         NULL, NULL},
        {OR_RBAC_FIELD_REQUEST_AUTH, true, s->not_request_principals ? &jwt_list : &no_list,
         NULL, NULL},
    };
    compile_entry(b, written, sizeof(written) / sizeof(written[0]), &s->pos, out);
}

static void compile_operation(or_rbac_builder *b, const or_rbac_operation *o, or_rbac_entry *out)
{
    const or_rbac_written_field written[] = {
        STRINGS(OR_RBAC_FIELD_METHODS, false, o->methods),
        STRINGS(OR_RBAC_FIELD_METHODS, true, o->not_methods),
        STRINGS(OR_RBAC_FIELD_PATHS, false, o->paths),
        STRINGS(OR_RBAC_FIELD_PATHS, true, o->not_paths),
        PORTS(OR_RBAC_FIELD_PORTS, false, o->ports),
        PORTS(OR_RBAC_FIELD_PORTS, true, o->not_ports),
        STRINGS(OR_RBAC_FIELD_HOSTS, false, o->hosts),
        STRINGS(OR_RBAC_FIELD_HOSTS, true, o->not_hosts),
    };
    compile_entry(b, written, sizeof(written) / sizeof(written[0]), &o->pos, out);
}

static void compile_condition(or_rbac_builder *b, const or_rbac_condition *c, or_rbac_entry *out)
{
    static const or_rbac_field_kind kinds[] = {
        [OR_RBAC_WHEN_HEADER] = OR_RBAC_FIELD_VALUES,
        [OR_RBAC_WHEN_SOURCE_IP] = OR_RBAC_FIELD_IP_BLOCKS,
        [OR_RBAC_WHEN_NAMESPACE] = OR_RBAC_FIELD_NAMESPACES,
        [OR_RBAC_WHEN_PRINCIPAL] = OR_RBAC_FIELD_PRINCIPALS,
        [OR_RBAC_WHEN_PORT] = OR_RBAC_FIELD_PORTS,
        [OR_RBAC_WHEN_SNI] = OR_RBAC_FIELD_SNI,
        [OR_RBAC_WHEN_REQUEST_AUTH] = OR_RBAC_FIELD_REQUEST_AUTH,
    };
    or_rbac_field_kind kind = kinds[c->key];
    const or_rbac_written_field written[] = {
        STRINGS(kind, false, c->values),       STRINGS(kind, true, c->not_values),
        BLOCKS(kind, false, c->ip_values),     BLOCKS(kind, true, c->not_ip_values),
        PORTS(kind, false, c->port_values),    PORTS(kind, true, c->not_port_values),
    };
    compile_entry(b, written, sizeof(written) / sizeof(written[0]), &c->pos, out);
    out->header = arena_strdup(b, c->header ? c->header : "", CASE_LOWER);
    out->header_len = out->header ? (uint32_t)strlen(out->header) : 0;
}

static void compile_rule(or_rbac_builder *b, const or_rbac_rule *r, or_rbac_compiled_rule *out)
{
    or_rbac_entry *from = arena_array(b, r->nfrom, sizeof(*from));
    or_rbac_entry *to = arena_array(b, r->nto, sizeof(*to));
    or_rbac_entry *when = arena_array(b, r->nwhen, sizeof(*when));
    out->line = r->pos.line;
    out->col = r->pos.col;
    if (b->failed)
        return;
    for (size_t i = 0; i < r->nfrom; i++)
        compile_source(b, &r->from[i], &from[i]);
    for (size_t i = 0; i < r->nto; i++)
        compile_operation(b, &r->to[i], &to[i]);
    for (size_t i = 0; i < r->nwhen; i++)
        compile_condition(b, &r->when[i], &when[i]);
    *out = (or_rbac_compiled_rule){from, to, when, (uint32_t)r->nfrom, (uint32_t)r->nto,
                                   (uint32_t)r->nwhen, r->pos.line, r->pos.col};
}

/* Name, scope and position; the rules too when it applies (miss == NULL). */
static void compile_policy(or_rbac_builder *b, const or_policy_config *p, const char *miss,
                           or_rbac_policy *out)
{
    if (p->pos.file != b->last_file_in) {
        b->last_file_in = p->pos.file;
        b->last_file_out = arena_strdup(b, p->pos.file, CASE_KEEP);
    }
    out->name = arena_strdup(b, p->name ? p->name : "", CASE_KEEP);
    out->miss = miss; /* a string literal of or_config_scope_miss */
    out->istio = p->origin == OR_POLICY_ISTIO;
    out->file = b->last_file_out;
    out->line = p->pos.line;
    out->col = p->pos.col;
    out->action = p->action;
    out->dry_run = p->dry_run;
    if (miss != NULL || p->nrules == 0)
        return;
    or_rbac_compiled_rule *rules = arena_array(b, p->nrules, sizeof(*rules));
    for (size_t i = 0; rules != NULL && i < p->nrules; i++)
        compile_rule(b, &p->rules[i], &rules[i]);
    out->rules = rules;
    out->nrules = (uint32_t)p->nrules;
}

/* Istio: a workload an Istio ALLOW policy applies to denies what no ALLOW
 * policy matches; one no ALLOW policy applies to allows, unless rbac.default
 * says otherwise. Outrider's own policies keep their rule: rbac.default
 * (deny unless written) decides what no policy matched. */
static void compile_defaults(const or_config *cfg, or_rbac *rbac)
{
    rbac->default_written = cfg->rbac.default_written;
    rbac->default_allow = cfg->rbac.default_written ? cfg->rbac.default_allow
                                                    : cfg->rbac.nistio > 0;
    for (size_t i = 0; i < rbac->npolicies; i++)
        rbac->has_allow = rbac->has_allow || (rbac->policies[i].action == OR_RBAC_ALLOW &&
                                              !rbac->policies[i].dry_run &&
                                              rbac->policies[i].istio);
}

or_rbac *or_rbac_compile(const or_config *cfg, or_diag *diag)
{
    or_rbac *rbac = calloc(1, sizeof(*rbac));
    or_rbac_builder b = {rbac, rbac == NULL, NULL, NULL};
    size_t napply = 0;
    for (size_t i = 0; rbac != NULL && i < cfg->rbac.npolicies; i++)
        napply += or_config_scope_miss(cfg, &cfg->rbac.policies[i].scope) == NULL;
    if (rbac != NULL) {
        or_rbac_policy *applied = arena_array(&b, napply, sizeof(*applied));
        or_rbac_policy *skipped =
            arena_array(&b, cfg->rbac.npolicies - napply, sizeof(*skipped));
        rbac->service = arena_strdup(&b, cfg->service ? cfg->service : "", CASE_KEEP);
        rbac->namespace = arena_strdup(&b, cfg->namespace ? cfg->namespace : "", CASE_KEEP);
        for (size_t i = 0; !b.failed && i < cfg->rbac.npolicies; i++) {
            const or_policy_config *p = &cfg->rbac.policies[i];
            const char *miss = or_config_scope_miss(cfg, &p->scope);
            compile_policy(&b, p, miss,
                           miss ? &skipped[rbac->nskipped++] : &applied[rbac->npolicies++]);
        }
        rbac->policies = applied;
        rbac->skipped = skipped;
        compile_defaults(cfg, rbac);
    }
    if (!b.failed)
        return rbac;
    or_diag_add(diag, OR_DIAG_ERROR, cfg->path, 0, 0, "rbac: out of memory compiling policies");
    or_rbac_free(rbac);
    return NULL;
}

void or_rbac_free(or_rbac *rbac)
{
    if (rbac == NULL)
        return;
    for (or_rbac_chunk *chunk = rbac->chunks, *next; chunk != NULL; chunk = next) {
        next = chunk->next;
        free(chunk);
    }
    free(rbac);
}

size_t or_rbac_policy_count(const or_rbac *rbac)
{
    return rbac ? rbac->npolicies : 0;
}

/* ---- matching ---- */

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool same_bytes(const char *text, const char *fixed, size_t len, bool fold_case)
{
    if (!fold_case)
        return memcmp(text, fixed, len) == 0;
    for (size_t i = 0; i < len; i++)
        if (ascii_lower(text[i]) != fixed[i])
            return false;
    return true;
}

static bool pattern_matches(const or_rbac_pattern *p, const char *text, size_t len, bool fold_case)
{
    switch (p->kind) {
    case OR_RBAC_EXACT:
        return len == p->fixed_len && same_bytes(text, p->fixed, len, fold_case);
    case OR_RBAC_PREFIX:
        return len >= p->fixed_len && same_bytes(text, p->fixed, p->fixed_len, fold_case);
    case OR_RBAC_SUFFIX:
        return len >= p->fixed_len &&
               same_bytes(text + len - p->fixed_len, p->fixed, p->fixed_len, fold_case);
    default:
        return len > 0;
    }
}

/* "host", "host:port", "[v6]" or "[v6]:port" to the bare host. */
static void strip_port(const char **host, size_t *len)
{
    const char *h = *host;
    size_t n = *len;
    if (n > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (close != NULL) {
            *host = h + 1;
            *len = (size_t)(close - h - 1);
        }
        return;
    }
    const char *colon = memchr(h, ':', n);
    if (colon == NULL || memchr(colon + 1, ':', n - (size_t)(colon - h) - 1) != NULL)
        return; /* no port, or a bare IPv6 address */
    for (const char *p = colon + 1; p < h + n; p++)
        if (*p < '0' || *p > '9')
            return;
    *len = (size_t)(colon - h);
}

void or_rbac_view_init(or_rbac_view *view, const or_rbac_request *req)
{
    or_spiffe_id id;
    const char *why;
    memset(view, 0, sizeof(*view));
    view->req = req;
    if (req->principal != NULL) {
        view->principal_len = strlen(req->principal);
        if (req->principal_ns) {
            view->ns = req->principal_ns;
            view->ns_len = req->principal_ns_len;
            view->has_ns = true;
        } else {
            view->has_ns =
                or_spiffe_id_parse(req->principal, view->principal_len, &id, &why) == 0 &&
                or_spiffe_id_namespace(&id, &view->ns, &view->ns_len);
        }
    }
    if (req->l4)
        return;
    view->path = req->path;
    view->path_len = req->path_len;
    if (view->path != NULL) {
        const char *query = memchr(view->path, '?', view->path_len);
        if (query != NULL)
            view->path_len = (size_t)(query - view->path);
    }
    view->host = req->host;
    view->host_len = req->host_len;
    if (view->host != NULL)
        strip_port(&view->host, &view->host_len);
}

bool or_rbac_field_is_http_only(const or_rbac_field *field)
{
    return field->kind == OR_RBAC_FIELD_METHODS || field->kind == OR_RBAC_FIELD_PATHS ||
           field->kind == OR_RBAC_FIELD_HOSTS || field->kind == OR_RBAC_FIELD_VALUES;
}

const char *or_rbac_field_name(const or_rbac_policy *policy, const or_rbac_field *field)
{
    static const char *const names[][4] = {
        [OR_RBAC_FIELD_PRINCIPALS] = {"principals", "not_principals", "principals",
                                      "notPrincipals"},
        [OR_RBAC_FIELD_NAMESPACES] = {"namespaces", "not_namespaces", "namespaces",
                                      "notNamespaces"},
        [OR_RBAC_FIELD_IP_BLOCKS] = {"ip_blocks", "not_ip_blocks", "ipBlocks", "notIpBlocks"},
        [OR_RBAC_FIELD_METHODS] = {"methods", "not_methods", "methods", "notMethods"},
        [OR_RBAC_FIELD_PATHS] = {"paths", "not_paths", "paths", "notPaths"},
        [OR_RBAC_FIELD_PORTS] = {"ports", "not_ports", "ports", "notPorts"},
        [OR_RBAC_FIELD_HOSTS] = {"hosts", "not_hosts", "hosts", "notHosts"},
        [OR_RBAC_FIELD_VALUES] = {"values", "not_values", "values", "notValues"},
        [OR_RBAC_FIELD_REMOTE_IP_BLOCKS] = {"remoteIpBlocks", "notRemoteIpBlocks",
                                            "remoteIpBlocks", "notRemoteIpBlocks"},
        [OR_RBAC_FIELD_SNI] = {"connection.sni", "connection.sni", "connection.sni",
                               "connection.sni"},
        [OR_RBAC_FIELD_REQUEST_AUTH] = {"requestPrincipals", "notRequestPrincipals",
                                        "requestPrincipals", "notRequestPrincipals"},
    };
    return names[field->kind][(policy && policy->istio ? 2 : 0) + field->negated];
}

static or_rbac_subject text_subject(const char *text, size_t len)
{
    or_rbac_subject s = {text != NULL, text, len, 0, NULL};
    return s;
}

static or_rbac_subject header_subject(const or_rbac_entry *entry, const or_rbac_view *view)
{
    const or_rbac_request *req = view->req;
    size_t len = 0;
    if (req->header == NULL || entry == NULL)
        return text_subject(NULL, 0);
    const char *value = req->header(req->header_ctx, entry->header, entry->header_len, &len);
    return text_subject(value, value ? len : 0);
}

or_rbac_subject or_rbac_field_subject(const or_rbac_field *field, const or_rbac_entry *entry,
                                      const or_rbac_view *view)
{
    const or_rbac_request *req = view->req;
    or_rbac_subject none = {false, NULL, 0, 0, NULL};
    switch ((or_rbac_field_kind)field->kind) {
    case OR_RBAC_FIELD_PRINCIPALS:
        return text_subject(req->principal, view->principal_len);
    case OR_RBAC_FIELD_NAMESPACES:
        return view->has_ns ? text_subject(view->ns, view->ns_len) : none;
    case OR_RBAC_FIELD_IP_BLOCKS:
    case OR_RBAC_FIELD_REMOTE_IP_BLOCKS:
        return (or_rbac_subject){req->source != NULL, NULL, 0, 0, req->source};
    case OR_RBAC_FIELD_SNI:
        return text_subject(req->sni, req->sni ? req->sni_len : 0);
    case OR_RBAC_FIELD_REQUEST_AUTH:
        return none;
    case OR_RBAC_FIELD_PORTS:
        return (or_rbac_subject){true, NULL, 0, req->port, NULL};
    case OR_RBAC_FIELD_METHODS:
        return req->l4 ? none : text_subject(req->method, req->method_len);
    case OR_RBAC_FIELD_PATHS:
        return text_subject(view->path, view->path_len);
    case OR_RBAC_FIELD_HOSTS:
        return text_subject(view->host, view->host_len);
    case OR_RBAC_FIELD_VALUES:
        return req->l4 ? none : header_subject(entry, view);
    }
    return none;
}

int or_rbac_field_first_match(const or_rbac_field *field, const or_rbac_subject *subject)
{
    if (!subject->present)
        return -1;
    bool fold_case = field->kind == OR_RBAC_FIELD_HOSTS || field->kind == OR_RBAC_FIELD_SNI;
    for (uint32_t i = 0; i < field->count; i++) {
        bool hit;
        if (field->kind == OR_RBAC_FIELD_IP_BLOCKS ||
            field->kind == OR_RBAC_FIELD_REMOTE_IP_BLOCKS)
            hit = or_cidr_match(&field->values.blocks[i], subject->addr);
        else if (field->kind == OR_RBAC_FIELD_PORTS)
            hit = field->values.ports[i] == subject->port;
        else
            hit = pattern_matches(&field->values.patterns[i], subject->text, subject->len,
                                  fold_case);
        if (hit)
            return (int)i;
    }
    return -1;
}

static or_rbac_field_outcome outcome_for(const or_rbac_field *field,
                                         const or_rbac_subject *subject)
{
    bool any = or_rbac_field_first_match(field, subject) >= 0;
    return any != field->negated ? OR_RBAC_FIELD_HELD : OR_RBAC_FIELD_FAILED;
}

static or_rbac_field_outcome l4_outcome(const or_rbac_policy *policy)
{
    return policy->action == OR_RBAC_DENY ? OR_RBAC_FIELD_L4_ALWAYS : OR_RBAC_FIELD_L4_NEVER;
}

or_rbac_field_outcome or_rbac_field_check(const or_rbac_policy *policy,
                                          const or_rbac_field *field, const or_rbac_entry *entry,
                                          const or_rbac_view *view)
{
    if (field->kind == OR_RBAC_FIELD_REQUEST_AUTH)
        return policy->action == OR_RBAC_DENY ? OR_RBAC_FIELD_NO_JWT : OR_RBAC_FIELD_FAILED;
    if (view->req->l4 && or_rbac_field_is_http_only(field))
        return l4_outcome(policy);
    or_rbac_subject subject = or_rbac_field_subject(field, entry, view);
    return outcome_for(field, &subject);
}

static bool outcome_holds(or_rbac_field_outcome outcome)
{
    return outcome == OR_RBAC_FIELD_HELD || outcome == OR_RBAC_FIELD_L4_ALWAYS ||
           outcome == OR_RBAC_FIELD_NO_JWT;
}

int or_rbac_entry_first_failure(const or_rbac_policy *policy, const or_rbac_entry *entry,
                                const or_rbac_view *view)
{
    or_rbac_subject header = {false, NULL, 0, 0, NULL};
    bool header_read = false;
    for (uint32_t i = 0; i < entry->nfields; i++) {
        const or_rbac_field *field = &entry->fields[i];
        or_rbac_field_outcome outcome;
        if (field->kind != OR_RBAC_FIELD_VALUES || view->req->l4) {
            outcome = or_rbac_field_check(policy, field, entry, view);
        } else {
            if (!header_read)
                header = header_subject(entry, view);
            header_read = true;
            outcome = outcome_for(field, &header);
        }
        if (!outcome_holds(outcome))
            return (int)i;
    }
    return -1;
}

static bool any_entry_matches(const or_rbac_policy *policy, const or_rbac_entry *entries,
                              uint32_t n, const or_rbac_view *view)
{
    if (n == 0)
        return true;
    for (uint32_t i = 0; i < n; i++)
        if (or_rbac_entry_first_failure(policy, &entries[i], view) < 0)
            return true;
    return false;
}

static bool rule_matches(const or_rbac_policy *policy, const or_rbac_compiled_rule *rule,
                         const or_rbac_view *view)
{
    if (!any_entry_matches(policy, rule->from, rule->nfrom, view) ||
        !any_entry_matches(policy, rule->to, rule->nto, view))
        return false;
    for (uint32_t i = 0; i < rule->nwhen; i++)
        if (or_rbac_entry_first_failure(policy, &rule->when[i], view) >= 0)
            return false;
    return true;
}

int or_rbac_policy_first_match(const or_rbac_policy *policy, const or_rbac_view *view)
{
    for (uint32_t i = 0; i < policy->nrules; i++)
        if (rule_matches(policy, &policy->rules[i], view))
            return (int)i;
    return -1;
}

/* ---- the decision ---- */

/* Whether a policy can still change the decision or the report. */
static bool still_wanted(const or_rbac_policy *p, const or_rbac_decision *out, bool denied,
                         bool allowed_by_policy)
{
    if (p->action == OR_RBAC_AUDIT)
        return out->audit_policy == NULL;
    if (p->dry_run)
        return out->dry_run_policy == NULL;
    if (p->action == OR_RBAC_DENY)
        return !denied;
    return !denied && !allowed_by_policy;
}

void or_rbac_evaluate(const or_rbac *rbac, const or_rbac_request *req, or_rbac_decision *out)
{
    or_rbac_view view;
    const or_rbac_policy *allow = NULL;
    int allow_rule = -1;
    bool denied = false;
    memset(out, 0, sizeof(*out));
    out->rule = -1;
    out->policy_index = out->dry_run_index = out->audit_index = -1;
    out->basis = OR_RBAC_BY_DEFAULT;
    if (rbac == NULL)
        return; /* nothing compiled: deny */
    or_rbac_view_init(&view, req);
    for (size_t i = 0; i < rbac->npolicies; i++) {
        const or_rbac_policy *p = &rbac->policies[i];
        if (!still_wanted(p, out, denied, allow != NULL))
            continue;
        int rule = or_rbac_policy_first_match(p, &view);
        if (rule < 0)
            continue;
        if (p->action == OR_RBAC_AUDIT) {
            out->audit_policy = p->name;
            out->audit_index = (int)i;
        } else if (p->dry_run) {
            out->dry_run_policy = p->name;
            out->dry_run_index = (int)i;
            out->dry_run_would_allow = p->action == OR_RBAC_ALLOW;
        } else if (p->action == OR_RBAC_DENY) {
            denied = true;
            out->basis = OR_RBAC_BY_POLICY;
            out->policy = p->name;
            out->policy_index = (int)i;
            out->rule = rule;
        } else {
            allow = p;
            allow_rule = rule;
        }
    }
    if (denied)
        return;
    out->basis = OR_RBAC_BY_POLICY;
    if (allow != NULL) {
        out->allowed = true;
        out->policy = allow->name;
        out->policy_index = (int)(allow - rbac->policies);
        out->rule = allow_rule;
    } else {
        out->basis = rbac->has_allow ? OR_RBAC_BY_NO_ALLOW_MATCH : OR_RBAC_BY_DEFAULT;
        out->allowed = !rbac->has_allow && rbac->default_allow;
    }
}

const char *or_rbac_policy_name(const or_rbac *rbac, size_t index)
{
    return index < rbac->npolicies ? rbac->policies[index].name : NULL;
}

void or_rbac_log_reported(const or_rbac_decision *d, const char *listener, const char *peer,
                          const char *principal, const char *method, const char *path,
                          size_t path_len)
{
    if (!d->dry_run_policy && !d->audit_policy)
        return;
    char shown[256]; /* the path, printable ASCII only: it comes from the network */
    size_t n = 0;
    for (size_t i = 0; path && i < path_len && n < sizeof shown - 1; i++)
        shown[n++] = path[i] > 0x20 && path[i] < 0x7f && path[i] != '"' ? path[i] : '?';
    shown[n] = '\0';
    const char *who = principal ? principal : "-";
    const char *what = method ? method : "-";
    if (d->dry_run_policy)
        or_log_info("rbac dry-run policy=%s would=%s listener=%s peer=%s peer_id=%s "
                    "request=\"%s %s\"",
                    d->dry_run_policy, d->dry_run_would_allow ? "allow" : "deny", listener, peer,
                    who, what, path ? shown : "-");
    if (d->audit_policy)
        or_log_info("rbac audit policy=%s decision=%s listener=%s peer=%s peer_id=%s "
                    "request=\"%s %s\"",
                    d->audit_policy, d->allowed ? "allow" : "deny", listener, peer, who, what,
                    path ? shown : "-");
}
