/*
 * cidr: address blocks for RBAC ip_blocks.
 *
 * A block is stored as its family, prefix length and the network address in
 * network byte order, so matching is a byte-wise compare of the first
 * prefix_len bits with no allocation and no byte swapping. Parsing is
 * strict: the address part must be a literal inet_pton accepts, the prefix
 * is plain decimal within the family's width, and the address must have no
 * bits set below the prefix. "10.1.2.3/8" is refused rather than silently
 * widened to 10.0.0.0/8, because a policy author who wrote it most likely
 * meant a narrower block.
 *
 * IPv4 blocks also match IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), which
 * is how IPv4 peers appear on a dual-stack listener.
 */
#include "outrider/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

static int parse_prefix_len(const char *text, unsigned max, uint8_t *out, const char **why)
{
    unsigned value = 0;
    size_t n = strlen(text);
    if (n == 0)
        return fail(why, "missing prefix length after '/'");
    if (n > 3 || strspn(text, "0123456789") != n)
        return fail(why, "prefix length must be a number");
    for (size_t i = 0; i < n; i++)
        value = value * 10 + (unsigned)(text[i] - '0');
    if (value > max)
        return fail(why, max == 32 ? "prefix length must be at most 32 for IPv4"
                                   : "prefix length must be at most 128 for IPv6");
    *out = (uint8_t)value;
    return 0;
}

/* True when any bit at or after `prefix_len` is set in addr. */
static bool has_host_bits(const uint8_t *addr, unsigned addr_len, unsigned prefix_len)
{
    for (unsigned bit = prefix_len; bit < addr_len * 8; bit++)
        if (addr[bit / 8] & (0x80u >> (bit % 8)))
            return true;
    return false;
}

int or_cidr_parse(const char *text, or_cidr *out, const char **why)
{
    char addr_text[INET6_ADDRSTRLEN + 8];
    or_cidr block = {0};

    if (text == NULL || text[0] == '\0')
        return fail(why, "empty value");
    const char *slash = strchr(text, '/');
    size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
    if (addr_len == 0)
        return fail(why, "missing address before '/'");
    if (addr_len >= sizeof(addr_text))
        return fail(why, "not an IP address");
    memcpy(addr_text, text, addr_len);
    addr_text[addr_len] = '\0';

    if (inet_pton(AF_INET, addr_text, block.addr) == 1)
        block.family = AF_INET;
    else if (inet_pton(AF_INET6, addr_text, block.addr) == 1)
        block.family = AF_INET6;
    else
        return fail(why, "not an IP address");

    unsigned width = block.family == AF_INET ? 32 : 128;
    block.prefix_len = (uint8_t)width;
    if (slash != NULL && parse_prefix_len(slash + 1, width, &block.prefix_len, why) != 0)
        return -1;
    if (has_host_bits(block.addr, width / 8, block.prefix_len))
        return fail(why, "host bits are set below the prefix length "
                         "(write the network address of the block)");
    *out = block;
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix_len)
{
    unsigned full = prefix_len / 8, rest = prefix_len % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool or_cidr_match(const or_cidr *block, const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        return block->family == AF_INET &&
               prefix_equal(block->addr, (const uint8_t *)&v4->sin_addr, block->prefix_len);
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        const uint8_t *bytes = v6->sin6_addr.s6_addr;
        if (block->family == AF_INET6)
            return prefix_equal(block->addr, bytes, block->prefix_len);
        return block->family == AF_INET && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) &&
               prefix_equal(block->addr, bytes + 12, block->prefix_len);
    }
    return false;
}
