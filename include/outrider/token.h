/*
 * token: one-time join tokens of outrider-ca.
 *
 * Contract: a token is 256 random bits printed as 64 hex digits, bound to
 * one SPIFFE ID and an expiry. Only its SHA-256 is stored, one line per
 * token in DIR/tokens ("<sha256-hex> <spiffe-id> <expires-unix>"). Using a
 * token appends "<sha256-hex> <used-unix>" to DIR/tokens.used and fsyncs it
 * before the certificate is issued, so a token is never honoured twice, even
 * across a restart or a crash right after issuance. Both files are read on
 * every check, so tokens created while the CA runs are seen at once.
 */
#ifndef OUTRIDER_TOKEN_H
#define OUTRIDER_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "outrider/keys.h"
#include "outrider/spiffe.h"

#define OR_TOKEN_LEN 64

typedef enum {
    OR_TOKEN_OK = 0,
    OR_TOKEN_UNKNOWN,
    OR_TOKEN_USED,
    OR_TOKEN_EXPIRED,
    OR_TOKEN_ERROR,     /* the store could not be read or written */
} or_token_status;

const char *or_token_status_str(or_token_status s);

int or_token_create(const char *dir, const char *spiffe_id, uint64_t ttl_s, or_keys_rng *rng,
                    char token[OR_TOKEN_LEN + 1], char *err, size_t err_len);
/* Looks the token up without using it; on OK copies its SPIFFE ID. */
or_token_status or_token_check(const char *dir, const char *token,
                               char id[OR_SPIFFE_ID_MAX + 1], char *err, size_t err_len);
/* Records the token as used (durably). Call after a successful check. */
or_token_status or_token_consume(const char *dir, const char *token, char *err, size_t err_len);

#endif
