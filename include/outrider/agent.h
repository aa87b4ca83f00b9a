/*
 * agent: outrider-agent keeps one workload's identity files fresh.
 *
 * Contract: or_agent_start runs on a libuv loop. Each attempt generates a
 * new EC P-256 key in memory (it never leaves the process except into
 * OUTDIR), sends a CSR for the configured SPIFFE ID to the CA (with the
 * current certificate over mTLS when a valid one is in OUTDIR, else with the
 * join token), fetches the trust bundle, checks the answer (key matches,
 * chain verifies against the new bundle, X509-SVID with our ID) and installs
 * the set with or_agent_files_install. The next attempt is at half of the
 * remaining lifetime (±10% jitter); after a failure it is retried with
 * exponential backoff (1s doubling to 60s, ±20% jitter) while the old files
 * stay in place. State goes to the status file (JSON, atomic) after every
 * attempt. With once, the agent stops after the first attempt, and
 * exit_status says whether it succeeded.
 *
 * or_agent_files_install (agent_files.c) is the file contract:
 *   OUTDIR/gen-<serial>/{cert,key,bundle}.pem  one complete set per
 *       issuance, each file written atomically (temp + fsync + rename), the
 *       key with mode 0600, the directory fsynced
 *   OUTDIR/current -> gen-<serial>   swapped with one atomic rename
 *   OUTDIR/{cert,key,bundle}.pem -> current/{cert,key,bundle}.pem
 * so a reader that opens the three paths sees one complete set, except when
 * the swap falls between its opens (then the proxy's key/cert match check
 * refuses the mixed set and it reads again); the previous generation is kept
 * so a file opened just before the swap is still readable.
 */
#ifndef OUTRIDER_AGENT_H
#define OUTRIDER_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <uv.h>

#include "outrider/keys.h"
#include "outrider/spiffe.h"
#include "outrider/stream.h"
#include "outrider/tls.h"

typedef struct {
    const char *ca_host;               /* for the Host header and logs */
    struct sockaddr_storage ca_addr;
    const char *ca_bundle;             /* bootstrap trust for the CA */
    const char *spiffe_id;
    const char *token;                 /* NULL when none */
    const char *outdir;
    const char *status_file;           /* NULL: none */
    bool once;
} or_agent_opts;

typedef struct {
    uint64_t renewals, failures, total_failures;
    time_t last_renewal, not_after, next_attempt;
    char serial[33];
    char last_error[256];
    const char *state;                 /* "starting", "ok", "retrying" */
} or_agent_status;

typedef struct {
    or_agent_opts o;
    char trust_domain[256];
    char ca_id[320];
    uv_loop_t *loop;
    or_stream_loop sl;
    or_keys_rng *rng;
    uv_timer_t timer;
    bool attempt_active, stopping;
    uint64_t backoff_ms;
    /* the attempt in progress */
    mbedtls_ssl_config conf;
    mbedtls_x509_crt trust;
    or_tls_creds *creds;
    mbedtls_pk_context key;
    char *csr_pem, *chain_pem;
    const char *auth_method;
    or_agent_status status;
    int exit_status;
} or_agent;

int or_agent_start(or_agent *a, const or_agent_opts *o, uv_loop_t *loop, or_keys_rng *rng,
                   char *err, size_t err_len);
/* Stops timers; the loop ends once an attempt in flight has finished. */
void or_agent_stop(or_agent *a);

int or_agent_files_install(const char *outdir, const char *serial, const char *cert_pem,
                           mbedtls_pk_context *key, const char *bundle_pem, char *err,
                           size_t err_len);
int or_agent_status_write(const char *path, const char *spiffe_id, const or_agent_status *s,
                          char *err, size_t err_len);

#endif
