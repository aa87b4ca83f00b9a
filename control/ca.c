/*
 * The signing logic of outrider-ca.
 *
 * or_ca_sign runs the checks in an order that tells the caller the most
 * useful thing first and never spends a token on a request that would fail:
 * authentication (a join token that is known, unused and unexpired, else a
 * client certificate that verified against the bundle and is an X509-SVID of
 * our trust domain) answers 401; then the CSR (parse, key type, signature)
 * answers 400; then the identity (a URI SAN in the CSR must be exactly the
 * authenticated ID) answers 403. Only then is the token recorded as used
 * (durably) and the certificate issued. The identity in the certificate is
 * always the authenticated one; the CSR contributes only its public key.
 *
 * The lifetime is the requested TTL (or the default), capped by the
 * configured maximum and by the signer's own expiry. Every issuance is
 * appended to audit.log as one JSON line; refusals are logged with or_log.
 */
#include "outrider/ca.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outrider/fsutil.h"
#include "outrider/x509.h"

#define OR_CA_FILE_MAX (1u << 20)
#define OR_CA_SERVER_TTL_S (30 * 86400)
#define OR_CA_BACKDATE_S 30

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int read_in(const char *dir, const char *name, char **text, char *err, size_t err_len)
{
    char path[4096];
    size_t len;
    path_in(path, sizeof path, dir, name);
    return or_fs_read_file(path, OR_CA_FILE_MAX, text, &len, err, err_len);
}

static int load_chain_pem(or_ca *ca, char *err, size_t err_len)
{
    char *signer = NULL, *above = NULL;
    if (!or_x509_is_self_signed(&ca->signer) &&
        read_in(ca->dir, "ca.pem", &signer, err, err_len) != 0)
        return -1;
    if (read_in(ca->dir, "chain.pem", &above, err, err_len) != 0)
        above = NULL;
    if (asprintf(&ca->chain_pem, "%s%s", signer ? signer : "", above ? above : "") < 0)
        ca->chain_pem = NULL;
    free(signer);
    free(above);
    return ca->chain_pem ? 0 : -1;
}

int or_ca_open(or_ca *ca, const char *dir, or_keys_rng *rng, char *err, size_t err_len)
{
    memset(ca, 0, sizeof *ca);
    mbedtls_x509_crt_init(&ca->signer);
    mbedtls_pk_init(&ca->key);
    ca->rng = rng;
    ca->default_ttl_s = 3600;
    ca->max_ttl_s = 86400;
    ca->dir = strdup(dir);
    char path[4096];
    if (!ca->dir || read_in(dir, "trust-domain", &ca->trust_domain, err, err_len) != 0)
        return -1;
    ca->trust_domain[strcspn(ca->trust_domain, "\r\n")] = '\0';
    path_in(path, sizeof path, dir, "ca.pem");
    if (mbedtls_x509_crt_parse_file(&ca->signer, path) != 0) {
        snprintf(err, err_len, "cannot parse the CA certificate %s", path);
        return -1;
    }
    path_in(path, sizeof path, dir, "ca.key");
    if (or_keys_load(path, &ca->key, err, err_len) != 0)
        return -1;
    if (mbedtls_pk_check_pair(&ca->signer.pk, &ca->key) != 0) {
        snprintf(err, err_len, "%s/ca.key does not match %s/ca.pem", dir, dir);
        return -1;
    }
    return load_chain_pem(ca, err, err_len);
}

void or_ca_close(or_ca *ca)
{
    mbedtls_x509_crt_free(&ca->signer);
    mbedtls_pk_free(&ca->key);
    free(ca->chain_pem);
    free(ca->dir);
    free(ca->trust_domain);
    memset(ca, 0, sizeof *ca);
}

static int pem_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".pem") == 0;
}

int or_ca_bundle(const or_ca *ca, char **pem, size_t *len, char *err, size_t err_len)
{
    char dir[4096];
    path_in(dir, sizeof dir, ca->dir, "bundle.d");
    struct dirent **names = NULL;
    int n = scandir(dir, &names, pem_name, alphasort);
    if (n < 0) {
        snprintf(err, err_len, "cannot list %s", dir);
        return -1;
    }
    char *out = calloc(1, 1);
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        char *text = NULL;
        size_t tl = 0;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (out && or_fs_read_file(path, OR_CA_FILE_MAX, &text, &tl, err, err_len) == 0) {
            char *grown = realloc(out, used + tl + 2);
            if (grown) {
                memcpy(grown + used, text, tl);
                used += tl;
                if (tl > 0 && text[tl - 1] != '\n')
                    grown[used++] = '\n';
                grown[used] = '\0';
            } else {
                free(out);
            }
            out = grown;
        }
        free(text);
        free(names[i]);
    }
    free(names);
    if (!out || used == 0) {
        free(out);
        snprintf(err, err_len, "no roots in %s", dir);
        return -1;
    }
    *pem = out;
    *len = used;
    return 0;
}

static void add_ip(or_x509_params *p, const struct sockaddr *sa)
{
    if (p->nips >= OR_X509_MAX_IPS)
        return;
    if (sa->sa_family == AF_INET) {
        memcpy(p->ips[p->nips], &((const struct sockaddr_in *)sa)->sin_addr, 4);
        p->ip_lens[p->nips++] = 4;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(p->ips[p->nips], &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        p->ip_lens[p->nips++] = 16;
    }
}

static time_t cap_to_signer(const or_ca *ca, time_t not_after)
{
    time_t limit = or_x509_time_epoch(&ca->signer.valid_to);
    return not_after > limit ? limit : not_after;
}

int or_ca_server_identity(or_ca *ca, const struct sockaddr *ip, mbedtls_x509_crt *chain,
                          mbedtls_pk_context *key, char *err, size_t err_len)
{
    if (or_keys_generate_ec(ca->rng, key, err, err_len) != 0)
        return -1;
    char uri[600];
    snprintf(uri, sizeof uri, "spiffe://%s/outrider-ca", ca->trust_domain);
    time_t now = time(NULL);
    or_x509_params p = {
        .subject = "O=Outrider,CN=outrider-ca", .uri = uri, .server_names = true,
        .not_before = now - OR_CA_BACKDATE_S, .not_after = cap_to_signer(ca, now + OR_CA_SERVER_TTL_S),
        .subject_key = key, .issuer_key = &ca->key, .issuer = &ca->signer,
    };
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    add_ip(&p, (const struct sockaddr *)&lo);
    if (ip)
        add_ip(&p, ip);
    char *pem = NULL;
    if (or_x509_issue(ca->rng, &p, &pem, NULL, err, err_len) != 0)
        return -1;
    char *all;
    int ret = -1;
    if (asprintf(&all, "%s%s", pem, ca->chain_pem) >= 0) {
        ret = mbedtls_x509_crt_parse(chain, (const unsigned char *)all, strlen(all) + 1);
        free(all);
    }
    free(pem);
    if (ret != 0)
        snprintf(err, err_len, "cannot load the CA's own server certificate");
    return ret == 0 ? 0 : -1;
}
