/*
 * POST /v1/sign: authenticate, check the CSR, issue, audit.
 *
 * See ca.h for the order of the checks. The response is the PEM of the new
 * leaf followed by the intermediates (chain.pem, and ca.pem when the signer
 * is not a root), or a JSON object {"error": "..."} with the status:
 * 401 no or bad credentials, 400 a bad CSR, 403 an identity that is not the
 * caller's, 500 a CA-side failure (store or signer).
 */
#include "outrider/ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/x509.h>

#include "outrider/fsutil.h"
#include "outrider/log.h"
#include "outrider/token.h"
#include "outrider/x509.h"

#define OR_CA_BACKDATE_S 30

typedef struct {
    char id[OR_SPIFFE_ID_MAX + 1];
    const char *method;       /* "token" or "mtls" */
} or_ca_auth;

static void json_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

void or_ca_error(or_ca_response *resp, int status, const char *msg)
{
    char esc[1024];
    json_escape(msg, esc, sizeof esc);
    resp->status = status;
    resp->content_type = "application/json";
    size_t cap = strlen(esc) + 32;
    resp->body = malloc(cap);
    resp->body_len = resp->body ? (size_t)snprintf(resp->body, cap, "{\"error\":\"%s\"}\n", esc) : 0;
}

static int auth_token(or_ca *ca, const or_ca_sign_req *req, or_ca_auth *auth,
                      or_ca_response *resp)
{
    char err[256] = "";
    or_token_status st = or_token_check(ca->dir, req->bearer, auth->id, err, sizeof err);
    if (st == OR_TOKEN_ERROR) {
        or_log_error("token store: %s", err);
        or_ca_error(resp, 500, "token store unavailable");
        return -1;
    }
    if (st != OR_TOKEN_OK) {
        or_log_warn("sign refused for %s: %s", req->peer_addr, or_token_status_str(st));
        or_ca_error(resp, 401, or_token_status_str(st));
        return -1;
    }
    auth->method = "token";
    return 0;
}

static int auth_peer(or_ca *ca, const or_ca_sign_req *req, or_ca_auth *auth,
                     or_ca_response *resp)
{
    char msg[512];
    if (req->peer_flags != 0) {
        char info[256];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", req->peer_flags);
        info[strcspn(info, "\n")] = '\0';
        snprintf(msg, sizeof msg, "client certificate refused: %s", info);
    } else {
        or_svid_result r = or_svid_check_leaf(req->peer_cert, ca->trust_domain, NULL, auth->id,
                                              sizeof auth->id, NULL);
        if (r == OR_SVID_OK) {
            auth->method = "mtls";
            return 0;
        }
        snprintf(msg, sizeof msg, "client certificate is not an X509-SVID of %s: %s",
                 ca->trust_domain, or_svid_result_str(r));
    }
    or_log_warn("sign refused for %s: %s", req->peer_addr, msg);
    or_ca_error(resp, 401, msg);
    return -1;
}

static int authenticate(or_ca *ca, const or_ca_sign_req *req, or_ca_auth *auth,
                        or_ca_response *resp)
{
    if (req->bearer)
        return auth_token(ca, req, auth, resp);
    if (req->peer_cert)
        return auth_peer(ca, req, auth, resp);
    or_log_warn("sign refused for %s: no credentials", req->peer_addr);
    or_ca_error(resp, 401, "authentication required: a join token "
                           "(Authorization: Bearer) or a valid mesh client certificate");
    return -1;
}

static int check_csr(const or_ca_sign_req *req, const or_ca_auth *auth, or_x509_csr_info *csr,
                     or_ca_response *resp)
{
    char err[512] = "";
    or_x509_csr_status st = or_x509_csr_inspect(req->body, req->body_len, csr, err, sizeof err);
    if (st != OR_X509_CSR_OK) {
        or_log_warn("sign refused for %s (%s): %s", req->peer_addr, auth->id, err);
        or_ca_error(resp, 400, err);
        return -1;
    }
    if (csr->uri_count > 1 || (csr->uri_count == 1 && strcmp(csr->uri, auth->id) != 0)) {
        char msg[OR_SPIFFE_ID_MAX * 2 + 128];
        snprintf(msg, sizeof msg, "CSR asks for %s%s but the caller is %s",
                 csr->uri_count > 1 ? "several URI SANs, first " : "", csr->uri, auth->id);
        or_log_warn("sign refused for %s: %s", req->peer_addr, msg);
        or_ca_error(resp, 403, msg);
        return -1;
    }
    return 0;
}

static void format_rfc3339(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int audit(or_ca *ca, const or_ca_sign_req *req, const or_ca_auth *auth,
                 const char *serial, time_t not_after)
{
    char now[32], until[32], id[OR_SPIFFE_ID_MAX * 2], peer[128], line[OR_SPIFFE_ID_MAX * 2 + 512];
    char err[256], path[4096];
    format_rfc3339(time(NULL), now);
    format_rfc3339(not_after, until);
    json_escape(auth->id, id, sizeof id);
    json_escape(req->peer_addr, peer, sizeof peer);
    int n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"spiffe_id\":\"%s\",\"serial\":\"%s\",\"not_after\":\"%s\","
                     "\"auth\":\"%s\",\"peer\":\"%s\"}\n",
                     now, id, serial, until, auth->method, peer);
    snprintf(path, sizeof path, "%s/audit.log", ca->dir);
    if (or_fs_append_sync(path, line, (size_t)n, 0600, err, sizeof err) != 0) {
        or_log_error("audit log: %s", err);
        return -1;
    }
    return 0;
}

static time_t lifetime_end(const or_ca *ca, const or_ca_sign_req *req, time_t now)
{
    uint64_t ttl = req->ttl_s ? req->ttl_s : ca->default_ttl_s;
    if (ttl > ca->max_ttl_s)
        ttl = ca->max_ttl_s;
    time_t end = now + (time_t)ttl;
    time_t limit = or_x509_time_epoch(&ca->signer.valid_to);
    return end > limit ? limit : end;
}

static void issue(or_ca *ca, const or_ca_sign_req *req, const or_ca_auth *auth,
                  or_x509_csr_info *csr, or_ca_response *resp)
{
    time_t now = time(NULL);
    or_x509_params p = {
        .subject = "O=Outrider,CN=SVID", .uri = auth->id,
        .not_before = now - OR_CA_BACKDATE_S, .not_after = lifetime_end(ca, req, now),
        .subject_key = &csr->csr.pk, .issuer_key = &ca->key, .issuer = &ca->signer,
    };
    char *pem = NULL, serial[33] = "", err[256] = "";
    if (or_x509_issue(ca->rng, &p, &pem, serial, err, sizeof err) != 0 ||
        audit(ca, req, auth, serial, p.not_after) != 0) {
        or_log_error("cannot issue for %s: %s", auth->id, err[0] ? err : "audit log failed");
        free(pem);
        or_ca_error(resp, 500, "cannot issue the certificate");
        return;
    }
    int n = asprintf(&resp->body, "%s%s", pem, ca->chain_pem);
    free(pem);
    if (n < 0) {
        or_ca_error(resp, 500, "out of memory");
        return;
    }
    resp->body_len = (size_t)n;
    resp->status = 200;
    resp->content_type = "application/x-pem-file";
    or_log_info("issued %s serial %s until %lld (auth %s, peer %s)", auth->id, serial,
                (long long)p.not_after, auth->method, req->peer_addr);
}

void or_ca_sign(or_ca *ca, const or_ca_sign_req *req, or_ca_response *resp)
{
    memset(resp, 0, sizeof *resp);
    or_ca_auth auth = {0};
    if (authenticate(ca, req, &auth, resp) != 0)
        return;
    or_x509_csr_info csr;
    if (check_csr(req, &auth, &csr, resp) != 0) {
        or_x509_csr_free(&csr);
        return;
    }
    char err[256];
    if (strcmp(auth.method, "token") == 0 &&
        or_token_consume(ca->dir, req->bearer, err, sizeof err) != OR_TOKEN_OK) {
        or_log_error("token store: %s", err);
        or_ca_error(resp, 500, "token store unavailable");
    } else {
        issue(ca, req, &auth, &csr, resp);
    }
    or_x509_csr_free(&csr);
}
