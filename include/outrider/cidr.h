/*
 * cidr: IPv4 and IPv6 address blocks ("10.0.0.0/8", "fd00::/8", "1.2.3.4").
 *
 * Contract: pure functions, no allocation. A bare address is a /32 or /128.
 * Host bits set below the prefix are an error (the operator likely meant a
 * different block). An IPv4 block never matches an IPv6 address, except that
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 blocks.
 */
#ifndef OUTRIDER_CIDR_H
#define OUTRIDER_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t prefix_len;
    uint8_t addr[16];    /* network order; first 4 bytes for AF_INET */
} or_cidr;

int or_cidr_parse(const char *text, or_cidr *out, const char **why);
bool or_cidr_match(const or_cidr *block, const struct sockaddr *addr);

#endif
