/*
 * The renewal loop of outrider-agent.
 *
 * One timer drives everything: when it fires, an attempt starts, made of
 * two HTTPS requests in sequence (POST /v1/sign, then GET /v1/bundle). The
 * attempt owns its TLS configuration, trust anchors, the current
 * credentials (for mTLS) and the new key; all are released when it ends,
 * after the last connection has closed. Success installs the files and
 * schedules the next renewal at half of the remaining lifetime; failure
 * keeps the files and schedules a retry with backoff. Both write the status
 * file and log one line.
 */
#include "outrider/agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outrider/http_client.h"
#include "outrider/log.h"
#include "outrider/x509.h"

#define OR_AGENT_HTTP_BODY_MAX (256 * 1024)
#define OR_AGENT_HTTP_TIMEOUT_MS 15000

#define OR_AGENT_BACKOFF_MIN_MS 1000
#define OR_AGENT_BACKOFF_MAX_MS 60000
#define OR_AGENT_RETRY_FLOOR_MS 250

static void start_attempt(or_agent *a);

/* A factor in [1 - spread, 1 + spread]. */
static double jitter(or_agent *a, double spread)
{
    uint32_t r = 0;
    (void)or_keys_random(a->rng, &r, sizeof r);
    return 1.0 - spread + 2.0 * spread * ((double)r / (double)UINT32_MAX);
}

static void on_timer(uv_timer_t *t) { start_attempt(t->data); }

static void write_status(or_agent *a)
{
    char err[256];
    if (a->o.status_file &&
        or_agent_status_write(a->o.status_file, a->o.spiffe_id, &a->status, err, sizeof err) != 0)
        or_log_warn("status file: %s", err);
}

static void end_attempt(or_agent *a)
{
    mbedtls_ssl_config_free(&a->conf);
    mbedtls_x509_crt_free(&a->trust);
    mbedtls_pk_free(&a->key);
    or_tls_creds_unref(a->creds);
    a->creds = NULL;
    free(a->csr_pem);
    free(a->chain_pem);
    a->csr_pem = a->chain_pem = NULL;
    a->attempt_active = false;
    if (a->stopping || a->o.once) {
        a->stopping = true;
        uv_close((uv_handle_t *)&a->timer, NULL);
        or_stream_loop_close(&a->sl);
    }
}

static void schedule(or_agent *a, uint64_t delay_ms)
{
    a->status.next_attempt = time(NULL) + (time_t)((delay_ms + 999) / 1000);
    if (!a->o.once && !a->stopping)
        uv_timer_start(&a->timer, on_timer, delay_ms, 0);
}

/* The backoff, but never more than a quarter of the time the current
 * certificate has left: as expiry nears, attempts come closer together, so a
 * CA that returns before the certificate expires is found in time. */
static uint64_t retry_delay(or_agent *a)
{
    uint64_t delay = (uint64_t)((double)a->backoff_ms * jitter(a, 0.2));
    time_t now = time(NULL);
    if (a->status.not_after > now) {
        uint64_t quarter_left = (uint64_t)(a->status.not_after - now) * 1000 / 4;
        if (quarter_left < OR_AGENT_RETRY_FLOOR_MS)
            quarter_left = OR_AGENT_RETRY_FLOOR_MS;
        if (delay > quarter_left)
            delay = quarter_left;
    }
    return delay;
}

static void fail(or_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(or_agent *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->status.last_error, sizeof a->status.last_error, fmt, ap);
    va_end(ap);
    a->status.failures++;
    a->status.total_failures++;
    a->status.state = "retrying";
    a->exit_status = 1;
    uint64_t delay = retry_delay(a);
    a->backoff_ms = a->backoff_ms * 2 > OR_AGENT_BACKOFF_MAX_MS ? OR_AGENT_BACKOFF_MAX_MS
                                                                 : a->backoff_ms * 2;
    schedule(a, delay);
    if (a->o.once)
        or_log_error("%s: %s", a->o.spiffe_id, a->status.last_error);
    else
        or_log_warn("%s: renewal failed (%llu in a row): %s; retrying in %llu ms",
                    a->o.spiffe_id, (unsigned long long)a->status.failures,
                    a->status.last_error, (unsigned long long)delay);
    write_status(a);
    end_attempt(a);
}

static void succeed(or_agent *a, const char *serial, time_t not_after)
{
    time_t now = time(NULL);
    a->status.renewals++;
    a->status.failures = 0;
    a->status.last_error[0] = '\0';
    a->status.last_renewal = now;
    a->status.not_after = not_after;
    a->status.state = "ok";
    snprintf(a->status.serial, sizeof a->status.serial, "%s", serial);
    a->backoff_ms = OR_AGENT_BACKOFF_MIN_MS;
    a->exit_status = 0;
    double remaining_ms = not_after > now ? (double)(not_after - now) * 1000.0 : 1000.0;
    uint64_t delay = (uint64_t)(remaining_ms / 2 * jitter(a, 0.1));
    schedule(a, delay);
    or_log_info("%s: renewed (auth %s): serial %s, valid until %lld, next renewal in %llu ms",
                a->o.spiffe_id, a->auth_method, serial, (long long)not_after,
                (unsigned long long)delay);
    write_status(a);
    end_attempt(a);
}

static void serial_hex(const mbedtls_x509_crt *crt, char out[33])
{
    size_t n = crt->serial.len > 16 ? 16 : crt->serial.len;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", crt->serial.p[crt->serial.len - n + i]);
    out[2 * n] = '\0';
}

/* Checks the issued chain against the new key and bundle, then installs. */
static void install(or_agent *a, const char *bundle, size_t bundle_len)
{
    mbedtls_x509_crt chain, roots;
    mbedtls_x509_crt_init(&chain);
    mbedtls_x509_crt_init(&roots);
    uint32_t flags = 0;
    char id[OR_SPIFFE_ID_MAX + 1], serial[33] = "", err[512] = "";
    const char *problem = NULL;
    if (mbedtls_x509_crt_parse(&chain, (const unsigned char *)a->chain_pem,
                               strlen(a->chain_pem) + 1) != 0)
        problem = "the CA's answer is not a certificate chain";
    else if (mbedtls_x509_crt_parse(&roots, (const unsigned char *)bundle, bundle_len + 1) != 0)
        problem = "the CA's bundle does not parse";
    else if (mbedtls_pk_check_pair(&chain.pk, &a->key) != 0)
        problem = "the issued certificate is not for our key";
    else if (mbedtls_x509_crt_verify(&chain, &roots, NULL, NULL, &flags, NULL, NULL) != 0)
        problem = "the issued chain does not verify against the bundle";
    else if (or_svid_check_leaf(&chain, a->trust_domain, a->o.spiffe_id, id, sizeof id, NULL) !=
             OR_SVID_OK)
        problem = "the issued certificate is not an X509-SVID for our ID";
    time_t not_after = or_x509_time_epoch(&chain.valid_to);
    if (!problem)
        serial_hex(&chain, serial);
    mbedtls_x509_crt_free(&chain);
    mbedtls_x509_crt_free(&roots);
    if (problem) {
        fail(a, "%s", problem);
        return;
    }
    if (or_agent_files_install(a->o.outdir, serial, a->chain_pem, &a->key, bundle, err,
                               sizeof err) != 0) {
        fail(a, "cannot write the identity files: %s", err);
        return;
    }
    succeed(a, serial, not_after);
}

static void on_bundle(void *ctx, int status, const char *body, size_t len, const char *err)
{
    or_agent *a = ctx;
    if (status != 200)
        fail(a, "GET /v1/bundle: %s%.*s", err ? err : "CA answered: ",
             err ? 0 : (int)(len > 200 ? 200 : len), body);
    else
        install(a, body, len);
}

static int request(or_agent *a, const char *method, const char *path, const char *bearer,
                   const char *body, or_http_client_cb cb)
{
    char headers[300] = "User-Agent: outrider-agent\r\n";
    if (bearer)
        snprintf(headers, sizeof headers,
                 "User-Agent: outrider-agent\r\nAuthorization: Bearer %s\r\n", bearer);
    or_http_client_req req = {
        .sl = &a->sl, .conf = &a->conf, .trust_domain = a->trust_domain,
        .expected_id = a->ca_id, .addr = (const struct sockaddr *)&a->o.ca_addr,
        .peer_name = "the CA", .host = a->o.ca_host, .method = method, .path = path,
        .headers = headers, .content_type = "application/pkcs10",
        .body = body, .body_len = body ? strlen(body) : 0,
        .body_max = OR_AGENT_HTTP_BODY_MAX, .timeout_ms = OR_AGENT_HTTP_TIMEOUT_MS,
    };
    return or_http_client_start(&req, cb, a);
}

static void on_sign(void *ctx, int status, const char *body, size_t len, const char *err)
{
    or_agent *a = ctx;
    if (status != 200) {
        fail(a, "POST /v1/sign: %s%.*s", err ? err : "CA answered: ",
             err ? 0 : (int)(len > 200 ? 200 : len), body);
        return;
    }
    a->chain_pem = strndup(body, len);
    if (!a->chain_pem || request(a, "GET", "/v1/bundle", NULL, NULL, on_bundle) != 0)
        fail(a, "out of memory");
}

/* Loads the current set from OUTDIR when it is complete and still valid. */
static void load_current(or_agent *a)
{
    char cert[4200], key[4200], bundle[4200], err[512];
    snprintf(cert, sizeof cert, "%s/cert.pem", a->o.outdir);
    snprintf(key, sizeof key, "%s/key.pem", a->o.outdir);
    snprintf(bundle, sizeof bundle, "%s/bundle.pem", a->o.outdir);
    if (access(cert, F_OK) != 0)
        return;
    a->creds = or_tls_creds_load(cert, key, bundle, a->trust_domain, err, sizeof err);
    if (!a->creds)
        or_log_warn("%s: current files not usable for renewal: %s", a->o.spiffe_id, err);
    else if (strcmp(a->creds->spiffe_id, a->o.spiffe_id) != 0) {
        or_log_warn("%s: current certificate is for %s; not using it", a->o.spiffe_id,
                    a->creds->spiffe_id);
        or_tls_creds_unref(a->creds);
        a->creds = NULL;
    }
    if (a->creds)
        a->status.not_after = a->creds->not_after;
}

static int build_conf(or_agent *a, char *err, size_t err_len)
{
    char bundle[4200];
    snprintf(bundle, sizeof bundle, "%s/bundle.pem", a->o.outdir);
    int ret = mbedtls_x509_crt_parse_file(&a->trust, a->o.ca_bundle);
    if (ret < 0) {
        snprintf(err, err_len, "cannot load --ca-bundle %s", a->o.ca_bundle);
        return -1;
    }
    (void)mbedtls_x509_crt_parse_file(&a->trust, bundle); /* roots learnt from the CA */
    ret = or_tls_conf_build(&a->conf, &(or_tls_conf_opts){
                                          .endpoint = MBEDTLS_SSL_IS_CLIENT,
                                          .drbg = &a->rng->drbg,
                                          .trust = &a->trust,
                                          .chain = a->creds ? &a->creds->chain : NULL,
                                          .key = a->creds ? &a->creds->key : NULL});
    if (ret != 0) {
        snprintf(err, err_len, "cannot configure TLS (-0x%04x)", (unsigned)-ret);
        return -1;
    }
    return 0;
}

static void start_attempt(or_agent *a)
{
    if (a->attempt_active || a->stopping)
        return;
    a->attempt_active = true;
    mbedtls_ssl_config_init(&a->conf);
    mbedtls_x509_crt_init(&a->trust);
    mbedtls_pk_init(&a->key);
    char err[512];
    load_current(a);
    if (!a->creds && !a->o.token) {
        fail(a, "no valid certificate in %s and no --token to get one", a->o.outdir);
        return;
    }
    a->auth_method = a->creds ? "mtls" : "token";
    if (build_conf(a, err, sizeof err) != 0 ||
        or_keys_generate_ec(a->rng, &a->key, err, sizeof err) != 0 ||
        or_x509_make_csr(a->rng, &a->key, a->o.spiffe_id, &a->csr_pem, err, sizeof err) != 0) {
        fail(a, "%s", err);
        return;
    }
    if (request(a, "POST", "/v1/sign", a->creds ? NULL : a->o.token, a->csr_pem, on_sign) != 0)
        fail(a, "cannot start a request to the CA");
}

int or_agent_start(or_agent *a, const or_agent_opts *o, uv_loop_t *loop, or_keys_rng *rng,
                   char *err, size_t err_len)
{
    memset(a, 0, sizeof *a);
    a->o = *o;
    a->loop = loop;
    a->rng = rng;
    a->backoff_ms = OR_AGENT_BACKOFF_MIN_MS;
    a->status.state = "starting";
    const char *why = NULL;
    or_spiffe_id id;
    if (or_spiffe_id_parse(o->spiffe_id, strlen(o->spiffe_id), &id, &why) != 0 ||
        id.trust_domain_len >= sizeof a->trust_domain) {
        snprintf(err, err_len, "bad --spiffe-id %s: %s", o->spiffe_id, why ? why : "too long");
        return -1;
    }
    memcpy(a->trust_domain, id.trust_domain, id.trust_domain_len);
    a->trust_domain[id.trust_domain_len] = '\0';
    snprintf(a->ca_id, sizeof a->ca_id, "spiffe://%s/outrider-ca", a->trust_domain);
    if (or_stream_loop_init(&a->sl, loop) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_timer, 0, 0);
    return 0;
}

void or_agent_stop(or_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    uv_timer_stop(&a->timer);
    if (!a->attempt_active) {
        uv_close((uv_handle_t *)&a->timer, NULL);
        or_stream_loop_close(&a->sl);
    }
}
