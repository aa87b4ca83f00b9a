/*
 * Unit tests for units.c: durations, sizes, host:port parsing and address
 * formatting. Each rejection case also checks that a reason is given.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "outrider/units.h"

static void assert_duration(const char *text, uint64_t expected_ms)
{
    uint64_t ms = 0;
    const char *why = NULL;
    assert_int_equal(or_parse_duration_ms(text, &ms, &why), 0);
    assert_true(ms == expected_ms);
}

static void assert_bad_duration(const char *text, const char *expected_why)
{
    uint64_t ms = 12345;
    const char *why = NULL;
    assert_int_equal(or_parse_duration_ms(text, &ms, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, expected_why);
    assert_true(ms == 12345); /* untouched on failure */
}

static void test_durations(void **state)
{
    (void)state;
    assert_duration("500ms", 500);
    assert_duration("1ms", 1);
    assert_duration("10s", 10000);
    assert_duration("5m", 300000);
    assert_duration("1h", 3600000);
    assert_duration("0010s", 10000);
    assert_duration("18446744073709551615ms", UINT64_MAX);
}

static void test_bad_durations(void **state)
{
    (void)state;
    assert_bad_duration("", "empty value");
    assert_bad_duration(NULL, "empty value");
    assert_bad_duration("-5s", "must not be negative");
    assert_bad_duration("0s", "must be greater than zero");
    assert_bad_duration("0ms", "must be greater than zero");
    assert_bad_duration("10", "missing unit (use ms, s, m or h)");
    assert_bad_duration("10d", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("10S", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("10s ", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("10 s", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("10s5", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("1.5s", "unknown unit (use ms, s, m or h)");
    assert_bad_duration("s", "must start with a number");
    assert_bad_duration(" 5s", "must start with a number");
    assert_bad_duration("+5s", "must start with a number");
    assert_bad_duration("99999999999999999999ms", "number too large");
    assert_bad_duration("18446744073709551615s", "number too large");
    assert_bad_duration("5124095576030432h", "number too large");
}

static void assert_size(const char *text, uint64_t expected)
{
    uint64_t bytes = 0;
    const char *why = NULL;
    assert_int_equal(or_parse_size(text, &bytes, &why), 0);
    assert_true(bytes == expected);
}

static void assert_bad_size(const char *text, const char *expected_why)
{
    uint64_t bytes = 7;
    const char *why = NULL;
    assert_int_equal(or_parse_size(text, &bytes, &why), -1);
    assert_string_equal(why, expected_why);
    assert_true(bytes == 7);
}

static void test_sizes(void **state)
{
    (void)state;
    assert_size("512B", 512);
    assert_size("512", 512);
    assert_size("0", 0);
    assert_size("64KiB", 65536);
    assert_size("1MiB", 1048576);
    assert_size("1GiB", 1073741824ULL);
    assert_size("3GiB", 3ULL * 1073741824ULL);
    assert_size("18446744073709551615", UINT64_MAX);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    assert_bad_size("", "empty value");
    assert_bad_size("-1KiB", "must not be negative");
    assert_bad_size("KiB", "must start with a number");
    assert_bad_size("64KB", "unknown unit (use B, KiB, MiB or GiB)");
    assert_bad_size("64kib", "unknown unit (use B, KiB, MiB or GiB)");
    assert_bad_size("64 KiB", "unknown unit (use B, KiB, MiB or GiB)");
    assert_bad_size("1MiBx", "unknown unit (use B, KiB, MiB or GiB)");
    assert_bad_size("1TiB", "unknown unit (use B, KiB, MiB or GiB)");
    assert_bad_size("18446744073709551616", "number too large");
    assert_bad_size("17179869184GiB", "number too large");
}

static void test_hostport_ipv4(void **state)
{
    or_hostport hp;
    const char *why = NULL;
    (void)state;
    assert_int_equal(or_parse_hostport("127.0.0.1:15000", &hp, &why), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 15000);
    assert_true(hp.is_ip);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&hp.addr;
    assert_int_equal(v4->sin_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 15000);
    assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x7f000001);
}

static void test_hostport_ipv6(void **state)
{
    or_hostport hp;
    const char *why = NULL;
    (void)state;
    assert_int_equal(or_parse_hostport("[::1]:8443", &hp, &why), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 8443);
    assert_true(hp.is_ip);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&hp.addr;
    assert_int_equal(v6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(v6->sin6_port), 8443);
    assert_true(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));

    assert_int_equal(or_parse_hostport("[fd00::1:2]:65535", &hp, &why), 0);
    assert_string_equal(hp.host, "fd00::1:2");
    assert_int_equal(hp.port, 65535);
}

static void test_hostport_name(void **state)
{
    or_hostport hp;
    const char *why = NULL;
    (void)state;
    assert_int_equal(or_parse_hostport("orders.shop.svc:15006", &hp, &why), 0);
    assert_string_equal(hp.host, "orders.shop.svc");
    assert_int_equal(hp.port, 15006);
    assert_false(hp.is_ip);
    assert_int_equal(hp.addr.ss_family, 0);

    assert_int_equal(or_parse_hostport("localhost:1", &hp, &why), 0);
    assert_false(hp.is_ip);
    assert_int_equal(hp.port, 1);
}

static void assert_bad_hostport(const char *text, const char *expected_why)
{
    or_hostport hp;
    const char *why = NULL;
    assert_int_equal(or_parse_hostport(text, &hp, &why), -1);
    assert_string_equal(why, expected_why);
}

static void test_bad_hostports(void **state)
{
    char long_host[300];
    (void)state;
    assert_bad_hostport("", "empty value");
    assert_bad_hostport("127.0.0.1", "missing port");
    assert_bad_hostport("127.0.0.1:", "missing port");
    assert_bad_hostport("[::1]", "missing port");
    assert_bad_hostport(":80", "missing host");
    assert_bad_hostport("[]:80", "missing host");
    assert_bad_hostport("127.0.0.1:0", "port must be between 1 and 65535");
    assert_bad_hostport("127.0.0.1:65536", "port must be between 1 and 65535");
    assert_bad_hostport("127.0.0.1:99999999999999999999999", "port must be between 1 and 65535");
    assert_bad_hostport("127.0.0.1:-1", "port must be a number");
    assert_bad_hostport("127.0.0.1:80x", "port must be a number");
    assert_bad_hostport("127.0.0.1:http", "port must be a number");
    assert_bad_hostport("::1:80", "an IPv6 address must be written in brackets, as [::1]:80");
    assert_bad_hostport("[::1:80", "missing ']' after IPv6 address");
    assert_bad_hostport("[::1]80", "expected ':' after ']'");
    assert_bad_hostport("[1.2.3.4]:80", "invalid IPv6 address in brackets");
    assert_bad_hostport("[orders]:80", "invalid IPv6 address in brackets");
    assert_bad_hostport("256.1.1.1:80", "invalid IPv4 address");
    assert_bad_hostport("1.2.3:80", "invalid IPv4 address");
    assert_bad_hostport("bad host:80", "invalid host name");
    assert_bad_hostport("a/b:80", "invalid host name");
    memset(long_host, 'a', sizeof(long_host));
    memcpy(long_host + 280, ":80", 4);
    assert_bad_hostport(long_host, "host name too long");
}

static struct sockaddr_storage address(const char *text)
{
    or_hostport hp;
    const char *why;
    assert_int_equal(or_parse_hostport(text, &hp, &why), 0);
    return hp.addr;
}

static void test_loopback(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    a = address("127.0.0.1:1");
    assert_true(or_addr_is_loopback(&a));
    a = address("127.255.0.9:1");
    assert_true(or_addr_is_loopback(&a));
    a = address("[::1]:1");
    assert_true(or_addr_is_loopback(&a));
    a = address("[::ffff:127.0.0.1]:1");
    assert_true(or_addr_is_loopback(&a));
    a = address("0.0.0.0:1");
    assert_false(or_addr_is_loopback(&a));
    a = address("128.0.0.1:1");
    assert_false(or_addr_is_loopback(&a));
    a = address("10.0.0.1:1");
    assert_false(or_addr_is_loopback(&a));
    a = address("[::]:1");
    assert_false(or_addr_is_loopback(&a));
    a = address("[::2]:1");
    assert_false(or_addr_is_loopback(&a));
    memset(&a, 0, sizeof(a));
    assert_false(or_addr_is_loopback(&a));
}

static void test_format(void **state)
{
    char buf[64], small[6];
    (void)state;
    struct sockaddr_storage a = address("10.1.2.3:8080");
    assert_string_equal(or_addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "10.1.2.3:8080");
    a = address("[fd00::1]:443");
    assert_string_equal(or_addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "[fd00::1]:443");
    a = address("[::1]:1");
    assert_string_equal(or_addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "[::1]:1");
    /* Truncated, still terminated. */
    a = address("10.1.2.3:8080");
    assert_string_equal(or_addr_format((struct sockaddr *)&a, small, sizeof(small)), "10.1.");
    memset(&a, 0, sizeof(a));
    assert_string_equal(or_addr_format((struct sockaddr *)&a, buf, sizeof(buf)),
                        "<unknown address family 0>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),     cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_sizes),         cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_hostport_ipv4), cmocka_unit_test(test_hostport_ipv6),
        cmocka_unit_test(test_hostport_name), cmocka_unit_test(test_bad_hostports),
        cmocka_unit_test(test_loopback),      cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
