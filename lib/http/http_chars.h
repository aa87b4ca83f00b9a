/*
 * http_chars: the character classes of HTTP/1 (RFC 9110 5.6.2) and URIs
 * (RFC 3986 2) that the head checks, the chunked scanner and the target
 * normaliser share. Private to proxy/; nothing but pure functions.
 */
#ifndef OUTRIDER_HTTP_CHARS_H
#define OUTRIDER_HTTP_CHARS_H

#include <stdbool.h>
#include <string.h>

/* tchar: the bytes of a token (a method, a header or trailer name). */
static inline bool or_http_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
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
