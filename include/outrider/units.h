/*
 * units: the duration, size and address syntax of the configuration.
 *
 * Contract: pure functions, no allocation. Durations are a positive integer
 * followed by one unit: ms, s, m, h ("500ms", "10s", "5m", "1h"). Sizes are a
 * non-negative integer with an optional unit B, KiB, MiB, GiB ("64KiB").
 * Addresses are "host:port", "[v6]:port"; host may be a name (kept as text
 * for later resolution) or a literal IP. On failure the functions return -1
 * and set *why to a static string that says what is wrong.
 */
#ifndef OUTRIDER_UNITS_H
#define OUTRIDER_UNITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

int or_parse_duration_ms(const char *text, uint64_t *ms, const char **why);
int or_parse_size(const char *text, uint64_t *bytes, const char **why);

typedef struct {
    char host[256];          /* without brackets */
    uint16_t port;
    bool is_ip;              /* host is a literal IPv4/IPv6 address */
    struct sockaddr_storage addr; /* valid when is_ip */
} or_hostport;

int or_parse_hostport(const char *text, or_hostport *out, const char **why);
/* True for 127.0.0.0/8 and ::1. */
bool or_addr_is_loopback(const struct sockaddr_storage *addr);
/* "1.2.3.4:80" or "[::1]:80" into buf; returns buf. */
const char *or_addr_format(const struct sockaddr *addr, char *buf, size_t len);

#endif
