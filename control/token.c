/*
 * Join tokens: creation, lookup and one-time use.
 *
 * The store is two append-only text files in the CA directory, both mode
 * 0600. Tokens are looked up by the hex SHA-256 of the presented text, so
 * the files never hold a usable secret. Lookup reads both files in full
 * (they hold one short line per token ever created) and refuses a token
 * that is unknown, expired, or already listed as used. Consumption appends
 * to the used list with an fsync; the caller issues only after it succeeded.
 */
#include "outrider/token.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/sha256.h>

#include "outrider/fsutil.h"

#define OR_TOKEN_STORE_MAX (64u << 20)

const char *or_token_status_str(or_token_status s)
{
    switch (s) {
    case OR_TOKEN_OK: return "ok";
    case OR_TOKEN_UNKNOWN: return "unknown token";
    case OR_TOKEN_USED: return "token already used";
    case OR_TOKEN_EXPIRED: return "token expired";
    default: return "token store error";
    }
}

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void token_hash(const char *token, char hex[65])
{
    unsigned char sum[32];
    mbedtls_sha256_ret((const unsigned char *)token, strlen(token), sum, 0);
    for (size_t i = 0; i < sizeof sum; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

int or_token_create(const char *dir, const char *spiffe_id, uint64_t ttl_s, or_keys_rng *rng,
                    char token[OR_TOKEN_LEN + 1], char *err, size_t err_len)
{
    unsigned char raw[OR_TOKEN_LEN / 2];
    if (or_keys_random(rng, raw, sizeof raw) != 0) {
        snprintf(err, err_len, "cannot draw random bytes for the token");
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    char hash[65], path[4096], line[OR_SPIFFE_ID_MAX + 128];
    token_hash(token, hash);
    int n = snprintf(line, sizeof line, "%s %s %" PRIu64 "\n", hash, spiffe_id,
                     (uint64_t)time(NULL) + ttl_s);
    path_in(path, sizeof path, dir, "tokens");
    return or_fs_append_sync(path, line, (size_t)n, 0600, err, err_len);
}

/* Finds the line starting with hash in the file; returns it or NULL. */
static const char *find_line(const char *text, const char *hash)
{
    size_t hl = strlen(hash);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, hash, hl) == 0 && p[hl] == ' ')
            return p;
    return NULL;
}

static or_token_status read_store(const char *dir, const char *name, char **text, char *err,
                                  size_t err_len)
{
    char path[4096];
    size_t len;
    path_in(path, sizeof path, dir, name);
    if (or_fs_read_file(path, OR_TOKEN_STORE_MAX, text, &len, err, err_len) == 0)
        return OR_TOKEN_OK;
    if (errno == ENOENT) {
        *text = strdup("");
        return *text ? OR_TOKEN_OK : OR_TOKEN_ERROR;
    }
    return OR_TOKEN_ERROR;
}

static or_token_status parse_entry(const char *line, char id[OR_SPIFFE_ID_MAX + 1])
{
    const char *sp = strchr(line, ' ');
    const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (!sp2 || (size_t)(sp2 - sp - 1) > OR_SPIFFE_ID_MAX)
        return OR_TOKEN_ERROR;
    memcpy(id, sp + 1, (size_t)(sp2 - sp - 1));
    id[sp2 - sp - 1] = '\0';
    uint64_t expires = strtoull(sp2 + 1, NULL, 10);
    return (uint64_t)time(NULL) >= expires ? OR_TOKEN_EXPIRED : OR_TOKEN_OK;
}

or_token_status or_token_check(const char *dir, const char *token,
                               char id[OR_SPIFFE_ID_MAX + 1], char *err, size_t err_len)
{
    if (strlen(token) != OR_TOKEN_LEN || strspn(token, "0123456789abcdef") != OR_TOKEN_LEN)
        return OR_TOKEN_UNKNOWN;
    char hash[65];
    token_hash(token, hash);
    char *tokens = NULL, *used = NULL;
    or_token_status st = read_store(dir, "tokens", &tokens, err, err_len);
    if (st == OR_TOKEN_OK)
        st = read_store(dir, "tokens.used", &used, err, err_len);
    if (st == OR_TOKEN_OK) {
        const char *line = find_line(tokens, hash);
        if (!line)
            st = OR_TOKEN_UNKNOWN;
        else if (find_line(used, hash))
            st = OR_TOKEN_USED;
        else
            st = parse_entry(line, id);
    }
    free(tokens);
    free(used);
    return st;
}

or_token_status or_token_consume(const char *dir, const char *token, char *err, size_t err_len)
{
    char hash[65], path[4096], line[128];
    token_hash(token, hash);
    int n = snprintf(line, sizeof line, "%s %lld\n", hash, (long long)time(NULL));
    path_in(path, sizeof path, dir, "tokens.used");
    if (or_fs_append_sync(path, line, (size_t)n, 0600, err, err_len) != 0)
        return OR_TOKEN_ERROR;
    return OR_TOKEN_OK;
}
