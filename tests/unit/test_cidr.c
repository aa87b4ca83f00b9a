/*
 * Unit tests for cidr.c: parsing blocks, refusing malformed ones and
 * matching IPv4, IPv6 and IPv4-mapped IPv6 addresses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "outrider/cidr.h"

static or_cidr parse_ok(const char *text)
{
    or_cidr block;
    const char *why = NULL;
    assert_int_equal(or_cidr_parse(text, &block, &why), 0);
    return block;
}

static void assert_bad(const char *text, const char *expected_why)
{
    or_cidr block;
    const char *why = NULL;
    assert_int_equal(or_cidr_parse(text, &block, &why), -1);
    assert_string_equal(why, expected_why);
}

static struct sockaddr_storage ip(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
    }
    return ss;
}

static bool matches(const char *block_text, const char *addr_text)
{
    or_cidr block = parse_ok(block_text);
    struct sockaddr_storage ss = ip(addr_text);
    return or_cidr_match(&block, (const struct sockaddr *)&ss);
}

static void test_parse(void **state)
{
    (void)state;
    or_cidr b = parse_ok("10.0.0.0/8");
    assert_int_equal(b.family, AF_INET);
    assert_int_equal(b.prefix_len, 8);
    assert_int_equal(b.addr[0], 10);
    assert_int_equal(b.addr[1], 0);

    b = parse_ok("1.2.3.4");
    assert_int_equal(b.family, AF_INET);
    assert_int_equal(b.prefix_len, 32);
    assert_memory_equal(b.addr, "\x01\x02\x03\x04", 4);

    b = parse_ok("0.0.0.0/0");
    assert_int_equal(b.prefix_len, 0);

    b = parse_ok("fd00::/8");
    assert_int_equal(b.family, AF_INET6);
    assert_int_equal(b.prefix_len, 8);
    assert_int_equal(b.addr[0], 0xfd);

    b = parse_ok("::1");
    assert_int_equal(b.family, AF_INET6);
    assert_int_equal(b.prefix_len, 128);
    assert_int_equal(b.addr[15], 1);

    b = parse_ok("192.168.1.128/25");
    assert_int_equal(b.prefix_len, 25);
    b = parse_ok("2001:db8::/32");
    assert_int_equal(b.prefix_len, 32);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *host_bits =
        "host bits are set below the prefix length (write the network address of the block)";
    assert_bad("", "empty value");
    assert_bad(NULL, "empty value");
    assert_bad("/8", "missing address before '/'");
    assert_bad("10.0.0.0/", "missing prefix length after '/'");
    assert_bad("10.0.0.0/33", "prefix length must be at most 32 for IPv4");
    assert_bad("fd00::/129", "prefix length must be at most 128 for IPv6");
    assert_bad("10.0.0.0/-1", "prefix length must be a number");
    assert_bad("10.0.0.0/8x", "prefix length must be a number");
    assert_bad("10.0.0.0/0008", "prefix length must be a number");
    assert_bad("10.0.0.0/8/8", "prefix length must be a number");
    assert_bad("10.0.0/8", "not an IP address");
    assert_bad("example.com/8", "not an IP address");
    assert_bad("10.0.0.0 /8", "not an IP address");
    assert_bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8",
               "not an IP address");
    assert_bad("10.1.2.3/8", host_bits);
    assert_bad("192.168.1.129/25", host_bits);
    assert_bad("fd00::1/8", host_bits);
    assert_bad("0.0.0.1/0", host_bits);
}

static void test_match_ipv4(void **state)
{
    (void)state;
    assert_true(matches("10.0.0.0/8", "10.255.1.2"));
    assert_false(matches("10.0.0.0/8", "11.0.0.1"));
    assert_true(matches("192.168.1.128/25", "192.168.1.200"));
    assert_false(matches("192.168.1.128/25", "192.168.1.127"));
    assert_true(matches("1.2.3.4", "1.2.3.4"));
    assert_false(matches("1.2.3.4", "1.2.3.5"));
    assert_true(matches("0.0.0.0/0", "203.0.113.9"));
    assert_false(matches("0.0.0.0/0", "::1"));
}

static void test_match_ipv6(void **state)
{
    (void)state;
    assert_true(matches("fd00::/8", "fd12:3456::1"));
    assert_false(matches("fd00::/8", "fe80::1"));
    assert_true(matches("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(matches("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(matches("::/0", "::1"));
    assert_false(matches("::/0", "10.0.0.1"));
    assert_false(matches("fd00::/8", "10.0.0.1"));
}

static void test_match_mapped(void **state)
{
    (void)state;
    assert_true(matches("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(matches("10.0.0.0/8", "::ffff:11.1.2.3"));
    assert_true(matches("0.0.0.0/0", "::ffff:1.1.1.1"));
    /* Not mapped: an IPv6 address whose low bytes look like 10.x. */
    assert_false(matches("10.0.0.0/8", "::10.1.2.3"));
    assert_false(matches("10.0.0.0/8", "64:ff9b::10.1.2.3"));
}

static void test_match_unknown_family(void **state)
{
    (void)state;
    or_cidr block = parse_ok("0.0.0.0/0");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_false(or_cidr_match(&block, (const struct sockaddr *)&ss));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_match_ipv4),   cmocka_unit_test(test_match_ipv6),
        cmocka_unit_test(test_match_mapped), cmocka_unit_test(test_match_unknown_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
