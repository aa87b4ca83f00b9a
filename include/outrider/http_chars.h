/*
 * http_chars: the character classes of HTTP (RFC 9110 5.6.2) and URIs
 * (RFC 3986 2) that the head checks, the chunked scanner, the target
 * normaliser and the HTTP/2 field checks share. Pure functions only.
 */
#ifndef OUTRIDER_HTTP_CHARS_H
#define OUTRIDER_HTTP_CHARS_H

#include <stdbool.h>
#include <stdint.h>

/* Bit c of a 128-bit set of ASCII bytes. */
static inline bool or_http_char_in(const uint64_t set[2], unsigned char c)
{
    return c < 128 && (set[c >> 6] >> (c & 63) & 1) != 0;
}

/* tchar: the bytes of a token (a method, a header or trailer name):
 * ALPHA, DIGIT and !#$%&'*+-.^_`|~. */
static inline bool or_http_is_tchar(unsigned char c)
{
    static const uint64_t tchar[2] = {0x03ff6cfa00000000, 0x57ffffffc7fffffe};
    return or_http_char_in(tchar, c);
}

/* A tchar that is not an upper-case letter: what an HTTP/2 field name
 * holds (RFC 9113 8.2.1). */
static inline bool or_http_is_tchar_lower(unsigned char c)
{
    static const uint64_t lower[2] = {0x03ff6cfa00000000, 0x57ffffffc0000000};
    return or_http_char_in(lower, c);
}

/* The value of a hex digit, or -1. */
static inline int or_http_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
