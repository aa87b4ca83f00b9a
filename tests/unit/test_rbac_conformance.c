/*
 * The Istio conformance table of docs/rbac.md ("## Istio conformance"),
 * checked row by row.
 *
 * Each row names a file of Istio resources under tests/data/istio/
 * (OUTRIDER_TEST_DATA), a request in the spec of istio_fixture.h, Istio's
 * documented decision and Outrider's. For every row the file is loaded as
 * the only policies of the workload orders (namespace shop, labels
 * app=orders, version=v1, a tcp listener when the request is `tcp`, an
 * http one otherwise, no rbac.default), the request is evaluated, and the
 * test fails when Outrider's decision differs from the "Outrider" column or
 * that column from the "Istio" one. It also fails when the section or the
 * table is missing, when its header is not `case | policies | request |
 * Istio | Outrider`, or when it has no rows. The path of the document comes
 * from tests/CMakeLists.txt (OUTRIDER_RBAC_DOC).
 */
#include "istio_fixture.h"

#ifndef OUTRIDER_RBAC_DOC
#error "OUTRIDER_RBAC_DOC (the path of docs/rbac.md) is set by tests/CMakeLists.txt"
#endif

#define SECTION "## Istio conformance"
#define MAX_CELLS 8

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_rbac_conformance");
}

/* The whole file as a string; the caller frees it. */
static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(fp);
    if (text == NULL)
        text = calloc(1, 1);
    text[len] = '\0';
    return text;
}

/* Splits a table line "| a | `b` | c |" in place into trimmed cells, a
 * cell that is one code span without its backticks; returns how many. */
static size_t split_row(char *line, char **cells)
{
    size_t n = 0;
    char *p = line;
    if (*p != '|')
        return 0;
    p++;
    while (*p != '\0' && n < MAX_CELLS) {
        char *end = strchr(p, '|');
        if (end == NULL)
            break;
        *end = '\0';
        while (*p == ' ')
            p++;
        char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        *last = '\0';
        if (last - p >= 2 && p[0] == '`' && last[-1] == '`' &&
            memchr(p + 1, '`', (size_t)(last - p - 2)) == NULL) { /* one code span */
            p++;
            last[-1] = '\0';
        }
        cells[n++] = p;
        p = end + 1;
    }
    return n;
}

static bool parse_decision(const char *text, bool *allowed)
{
    if (strcmp(text, "allow") == 0)
        *allowed = true;
    else if (strcmp(text, "deny") == 0)
        *allowed = false;
    else
        return false;
    return true;
}

/* Loads `file` of tests/data/istio as the workload's policies. */
static policy_set load_row(const char *file, bool tcp)
{
    static char config[PATH_MAX + 1024];
    const char *data = getenv("OUTRIDER_TEST_DATA");
    if (data == NULL)
        fail_msg("OUTRIDER_TEST_DATA is not set (ctest sets it)");
    if (strchr(file, '/') != NULL || strstr(file, ".yaml") == NULL)
        fail_msg("policies: expected a file name of tests/data/istio, got \"%s\"", file);
    char policies[PATH_MAX];
    snprintf(policies, sizeof(policies), "%s/istio/%s", data, file);
    snprintf(config, sizeof(config),
             "service: orders\n"
             "trust_domain: cluster.local\n"
             "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"
             "namespace: shop\n"
             "labels: {app: orders, version: v1}\n"
             "%s"
             "rbac:\n"
             "  policies: %s\n",
             tcp ? "listeners:\n  - {name: db, mode: inbound, protocol: tcp, "
                   "listen: 127.0.0.1:15432, upstream: 127.0.0.1:5432}\n"
                 : "listeners:\n  - {name: inbound, mode: inbound, protocol: http, "
                   "listen: 127.0.0.1:15006, upstream: 127.0.0.1:8080}\n",
             policies);
    return load_set(config);
}

static void test_conformance_table(void **state)
{
    (void)state;
    char *doc = read_all(OUTRIDER_RBAC_DOC);
    char *section = strstr(doc, "\n" SECTION "\n");
    if (section == NULL)
        fail_msg("%s has no section \"%s\"", OUTRIDER_RBAC_DOC, SECTION);
    section += 1 + strlen(SECTION);
    char *next = strstr(section, "\n## ");
    if (next != NULL)
        next[1] = '\0'; /* the section ends where the next one starts */

    size_t rows = 0, failures = 0;
    bool in_table = false, header_seen = false;
    for (char *line = section, *eol; line != NULL; line = eol ? eol + 1 : NULL) {
        char *cells[MAX_CELLS];
        if ((eol = strchr(line, '\n')) != NULL)
            *eol = '\0';
        if (line[0] != '|') {
            if (in_table)
                break; /* the first table of the section only */
            continue;
        }
        size_t n = split_row(line, cells);
        if (!header_seen) {
            if (n != 5 || strcmp(cells[0], "case") != 0 || strcmp(cells[1], "policies") != 0 ||
                strcmp(cells[2], "request") != 0 || strcmp(cells[3], "Istio") != 0 ||
                strcmp(cells[4], "Outrider") != 0)
                fail_msg("the table's header is not | case | policies | request | Istio | "
                         "Outrider |");
            header_seen = in_table = true;
            continue;
        }
        if (n > 0 && strspn(cells[0], "-:") == strlen(cells[0]) && cells[0][0] != '\0')
            continue; /* the |---| line */
        if (n != 5)
            fail_msg("a row of the conformance table has %zu cells, not 5: %s", n, cells[0]);
        bool istio = false, outrider = false;
        if (!parse_decision(cells[3], &istio) || !parse_decision(cells[4], &outrider))
            fail_msg("row \"%s\": the decisions must be allow or deny, got \"%s\" and \"%s\"",
                     cells[0], cells[3], cells[4]);
        rows++;
        spec_request r;
        spec_parse(&r, cells[2]);
        policy_set s = load_row(cells[1], r.t.req.l4);
        or_rbac_decision d = decide(&s, &r.t);
        const char *why = NULL;
        if (d.allowed != outrider)
            why = "Outrider decides otherwise than its column says";
        else if (istio != outrider)
            why = "the Outrider column differs from the Istio column";
        if (why != NULL) {
            failures++;
            print_message("row %zu \"%s\" (%s, %s): %s: Istio %s, Outrider column %s, "
                          "evaluated %s by %s\n", rows, cells[0], cells[1], cells[2], why,
                          cells[3], cells[4], d.allowed ? "allow" : "deny",
                          d.policy ? d.policy
                          : d.basis == OR_RBAC_BY_NO_ALLOW_MATCH ? "(no ALLOW matched)"
                                                                 : "(default)");
        } else {
            print_message("ok %zu - %s: %s\n", rows, cells[0], cells[4]);
        }
        free_set(&s);
    }
    free(doc);
    if (!header_seen)
        fail_msg("the section \"%s\" of %s has no table", SECTION, OUTRIDER_RBAC_DOC);
    if (rows == 0)
        fail_msg("the conformance table has no rows");
    if (failures > 0)
        fail_msg("%zu of %zu conformance rows failed", failures, rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_table),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
