/*
 * outrider-ca init: creating a CA directory.
 *
 * Two modes. Without --ca-cert the CA makes its own root: an EC P-256 key
 * (ca.key, mode 0600) and a self-signed certificate (CA:TRUE, keyCertSign
 * and cRLSign, ten years), which is also the first root of bundle.d. With
 * --ca-cert/--ca-key it adopts an existing signing CA: a root (self-signed;
 * it becomes bundle.d/root.pem) or an intermediate signed by an offline root
 * (then --root names that root for the bundle, and --chain any further
 * intermediates that issued certificates must carry). The key must match the
 * certificate and the certificate must be a CA. An existing CA directory is
 * never overwritten.
 */
#include "outrider/ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#include "outrider/fsutil.h"
#include "outrider/x509.h"

#define OR_CA_ROOT_DAYS 3650
#define OR_CA_FILE_MAX (1u << 20)

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int write_text(const char *dir, const char *name, const char *text, mode_t mode,
                      char *err, size_t err_len)
{
    char path[4096];
    path_in(path, sizeof path, dir, name);
    return or_fs_write_atomic(path, text, strlen(text), mode, err, err_len);
}

static int make_root(const or_ca_init_opts *o, or_keys_rng *rng, char *err, size_t err_len)
{
    mbedtls_pk_context key;
    if (or_keys_generate_ec(rng, &key, err, err_len) != 0)
        return -1;
    char subject[512];
    snprintf(subject, sizeof subject, "O=Outrider,CN=Outrider root CA %s", o->trust_domain);
    time_t now = time(NULL);
    or_x509_params p = {
        .subject = subject, .is_ca = true, .not_before = now - 60,
        .not_after = now + (time_t)OR_CA_ROOT_DAYS * 86400,
        .subject_key = &key, .issuer_key = &key,
    };
    char *pem = NULL, path[4096];
    path_in(path, sizeof path, o->dir, "ca.key");
    int r = or_keys_write(path, &key, err, err_len);
    if (r == 0)
        r = or_x509_issue(rng, &p, &pem, NULL, err, err_len);
    if (r == 0)
        r = write_text(o->dir, "ca.pem", pem, 0644, err, err_len);
    if (r == 0)
        r = write_text(o->dir, "bundle.d/root.pem", pem, 0644, err, err_len);
    free(pem);
    mbedtls_pk_free(&key);
    return r;
}

static int copy_file(const char *from, const char *dir, const char *name, char *err,
                     size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    if (or_fs_read_file(from, OR_CA_FILE_MAX, &text, &len, err, err_len) != 0)
        return -1;
    int r = write_text(dir, name, text, 0644, err, err_len);
    free(text);
    return r;
}

static int check_signer(const or_ca_init_opts *o, mbedtls_x509_crt *crt, mbedtls_pk_context *key,
                        char *err, size_t err_len)
{
    if (mbedtls_x509_crt_parse_file(crt, o->ca_cert) != 0) {
        snprintf(err, err_len, "cannot parse the CA certificate %s", o->ca_cert);
        return -1;
    }
    if (!crt->ca_istrue || (crt->ext_types & MBEDTLS_X509_EXT_KEY_USAGE &&
                            !(crt->key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN))) {
        snprintf(err, err_len, "%s is not a CA certificate (needs CA:TRUE and keyCertSign)",
                 o->ca_cert);
        return -1;
    }
    if (or_keys_load(o->ca_key, key, err, err_len) != 0)
        return -1;
    if (mbedtls_pk_check_pair(&crt->pk, key) != 0) {
        snprintf(err, err_len, "key %s does not match certificate %s", o->ca_key, o->ca_cert);
        return -1;
    }
    if (!or_x509_is_self_signed(crt) && !o->root) {
        snprintf(err, err_len, "%s is an intermediate: give its root with --root FILE",
                 o->ca_cert);
        return -1;
    }
    return 0;
}

static int adopt_signer(const or_ca_init_opts *o, char *err, size_t err_len)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    int r = check_signer(o, &crt, &key, err, err_len);
    char *pem = r == 0 ? or_x509_crt_pem(&crt) : NULL;
    char path[4096];
    path_in(path, sizeof path, o->dir, "ca.key");
    if (r == 0 && !pem) {
        snprintf(err, err_len, "cannot encode %s", o->ca_cert);
        r = -1;
    }
    if (r == 0)
        r = or_keys_write(path, &key, err, err_len);
    if (r == 0)
        r = write_text(o->dir, "ca.pem", pem, 0644, err, err_len);
    if (r == 0)
        r = o->root ? copy_file(o->root, o->dir, "bundle.d/root.pem", err, err_len)
                    : write_text(o->dir, "bundle.d/root.pem", pem, 0644, err, err_len);
    if (r == 0 && o->chain)
        r = copy_file(o->chain, o->dir, "chain.pem", err, err_len);
    free(pem);
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&key);
    return r;
}

int or_ca_init(const or_ca_init_opts *o, or_keys_rng *rng, char *err, size_t err_len)
{
    const char *why = NULL;
    char probe[OR_SPIFFE_ID_MAX + 16];
    or_spiffe_id id;
    snprintf(probe, sizeof probe, "spiffe://%s", o->trust_domain);
    if (or_spiffe_id_parse(probe, strlen(probe), &id, &why) != 0) {
        snprintf(err, err_len, "invalid trust domain %s: %s", o->trust_domain, why);
        return -1;
    }
    if ((o->ca_cert == NULL) != (o->ca_key == NULL)) {
        snprintf(err, err_len, "--ca-cert and --ca-key go together");
        return -1;
    }
    char path[4096];
    path_in(path, sizeof path, o->dir, "ca.key");
    if (access(path, F_OK) == 0) {
        snprintf(err, err_len, "%s already holds a CA (ca.key exists); not overwriting", o->dir);
        return -1;
    }
    path_in(path, sizeof path, o->dir, "bundle.d");
    if (or_fs_mkdirs(o->dir, 0700, err, err_len) != 0 || chmod(o->dir, 0700) != 0 ||
        or_fs_mkdirs(path, 0755, err, err_len) != 0)
        return -1;
    char td[512];
    snprintf(td, sizeof td, "%s\n", o->trust_domain);
    if (write_text(o->dir, "trust-domain", td, 0644, err, err_len) != 0)
        return -1;
    return o->ca_cert ? adopt_signer(o, err, err_len) : make_root(o, rng, err, err_len);
}
