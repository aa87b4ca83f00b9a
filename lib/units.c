/*
 * units: the small grammars the configuration is written in.
 *
 * Each parser reads the whole string or fails: a number is a run of decimal
 * digits (no sign, no spaces), followed by exactly one unit from a fixed
 * table, and nothing after it. Arithmetic is checked for overflow before it
 * happens, so "99999999999999999999h" is an error rather than a wrapped
 * value. Failures return -1 with a static explanation in *why, which the
 * config loader puts after the key and the offending text.
 *
 * Addresses are "host:port" or "[ipv6]:port". The host is kept as text; when
 * it is a literal address (inet_pton accepts it) the sockaddr is filled in
 * too, so listeners can bind without a resolver and upstream names are left
 * for resolution at connect time. A bare IPv6 address without brackets is
 * refused because its last group cannot be told apart from a port.
 */
#include "outrider/units.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    uint64_t factor;
} unit_entry;

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

static const unit_entry duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
};

static const unit_entry size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024},
};

/* Reads a run of digits. Returns the number of digits read (0 if none) or -1
 * on overflow. */
static int read_digits(const char *text, uint64_t *value, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    while (text[i] >= '0' && text[i] <= '9') {
        unsigned digit = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) {
            *used = i;
            return -1;
        }
        v = v * 10 + digit;
        i++;
    }
    *value = v;
    *used = i;
    return i > 0 ? 1 : 0;
}

static const unit_entry *find_unit(const unit_entry *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* The shared shape of durations and sizes: digits, then a unit from table. */
static int parse_scaled(const char *text, const unit_entry *table, size_t n, uint64_t *out,
                        const char **why, const char *unit_help)
{
    uint64_t value;
    size_t used;
    if (text == NULL || text[0] == '\0')
        return fail(why, "empty value");
    if (text[0] == '-')
        return fail(why, "must not be negative");
    int r = read_digits(text, &value, &used);
    if (r < 0)
        return fail(why, "number too large");
    if (r == 0)
        return fail(why, "must start with a number");
    const unit_entry *unit = find_unit(table, n, text + used);
    if (unit == NULL)
        return fail(why, unit_help);
    if (value > UINT64_MAX / unit->factor)
        return fail(why, "number too large");
    *out = value * unit->factor;
    return 0;
}

int or_parse_duration_ms(const char *text, uint64_t *ms, const char **why)
{
    uint64_t value;
    const char *help = text && text[0] != '\0' && strspn(text, "0123456789") == strlen(text)
                           ? "missing unit (use ms, s, m or h)"
                           : "unknown unit (use ms, s, m or h)";
    if (parse_scaled(text, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
                     &value, why, help) != 0)
        return -1;
    if (value == 0)
        return fail(why, "must be greater than zero");
    *ms = value;
    return 0;
}

int or_parse_size(const char *text, uint64_t *bytes, const char **why)
{
    return parse_scaled(text, size_units, sizeof(size_units) / sizeof(size_units[0]), bytes, why,
                        "unknown unit (use B, KiB, MiB or GiB)");
}

static int parse_port(const char *text, uint16_t *port, const char **why)
{
    uint64_t value = 0;
    size_t used = 0;
    if (text[0] == '\0')
        return fail(why, "missing port");
    int r = read_digits(text, &value, &used);
    if (r < 0)
        return fail(why, "port must be between 1 and 65535");
    if (r == 0 || text[used] != '\0')
        return fail(why, "port must be a number");
    if (value == 0 || value > 65535)
        return fail(why, "port must be between 1 and 65535");
    *port = (uint16_t)value;
    return 0;
}

/* Host names: letters, digits, '-', '_' and '.', as DNS and /etc/hosts use. */
static bool is_host_name(const char *host)
{
    return host[0] != '\0' &&
           strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
               strlen(host);
}

/* Fills out->addr from out->host when the host is a literal address. */
static int fill_address(or_hostport *out, bool bracketed, const char **why)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;

    memset(&out->addr, 0, sizeof(out->addr));
    if (bracketed) {
        if (inet_pton(AF_INET6, out->host, &v6->sin6_addr) != 1)
            return fail(why, "invalid IPv6 address in brackets");
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(out->port);
        out->is_ip = true;
        return 0;
    }
    if (inet_pton(AF_INET, out->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(out->port);
        out->is_ip = true;
        return 0;
    }
    if (strchr(out->host, ':') != NULL)
        return fail(why, "an IPv6 address must be written in brackets, as [::1]:80");
    if (strspn(out->host, "0123456789.") == strlen(out->host)) /* looks like IPv4 */
        return fail(why, "invalid IPv4 address");
    if (!is_host_name(out->host))
        return fail(why, "invalid host name");
    out->is_ip = false;
    return 0;
}

/* Splits text into host and port text; host is copied into out->host. */
static int split_hostport(const char *text, or_hostport *out, const char **port_text,
                          bool *bracketed, const char **why)
{
    const char *host = text, *host_end, *colon;
    *bracketed = text[0] == '[';
    if (*bracketed) {
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return fail(why, "missing ']' after IPv6 address");
        if (host_end[1] != ':')
            return fail(why, host_end[1] == '\0' ? "missing port" : "expected ':' after ']'");
        colon = host_end + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return fail(why, "missing port");
        host_end = colon;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0)
        return fail(why, "missing host");
    if (host_len >= sizeof(out->host))
        return fail(why, "host name too long");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    *port_text = colon + 1;
    return 0;
}

int or_parse_hostport(const char *text, or_hostport *out, const char **why)
{
    const char *port_text;
    bool bracketed;
    if (text == NULL || text[0] == '\0')
        return fail(why, "empty value");
    memset(out, 0, sizeof(*out));
    if (split_hostport(text, out, &port_text, &bracketed, why) != 0 ||
        parse_port(port_text, &out->port, why) != 0 || fill_address(out, bracketed, why) != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

bool or_addr_is_loopback(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return true;
        /* ::ffff:127.x.y.z is the IPv4 loopback seen through a v6 socket. */
        return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

const char *or_addr_format(const struct sockaddr *addr, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0)
        return buf;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(v4->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(v6->sin6_port));
    } else {
        snprintf(buf, len, "<unknown address family %d>", (int)addr->sa_family);
    }
    return buf;
}
