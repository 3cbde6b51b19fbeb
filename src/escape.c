/* SPDX-License-Identifier: MIT */
/*
 * escape.c: names from outside tierpool (pool names a program chose, process
 * names another user may set) made safe for each output: a terminal, JSON,
 * a Prometheus label value. And the truncation of a name that never splits
 * a UTF-8 character, and the joining of strings that start-up uses instead
 * of snprintf (whose code, faulted in at every process start, costs a small
 * program more resident memory than tierpool's own).
 *
 * A name is bytes. Well-formed UTF-8 of printable characters is copied; a
 * control character (C0, DEL, C1) and a byte that is not part of well-formed
 * UTF-8 are escaped, never dropped, so that two different names never print
 * the same and nothing reaches a terminal that it would act on:
 *
 *   character         text        JSON          Prometheus label
 *   \                 \\          \\            \\
 *   "                 "           \"            \"
 *   newline           \x0a        \n            \n
 *   other C0, DEL     \xNN        \u00NN        \xNN (as text: \\xNN)
 *   C1 (U+0080..9F)   \u00NN      \u00NN        \u00NN (as text: \\u00NN)
 *   a stray byte      \xNN        \xNN (\\xNN)  \xNN (\\xNN)
 *
 * So JSON round-trips every well-formed name, and the output of every style
 * is well-formed UTF-8 without control characters (but the newline JSON and
 * Prometheus write as the two characters \n).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool tpi_concat(char *out, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t len = 0;
    bool fits = true;
    for (const char *part; (part = va_arg(ap, const char *)) != NULL;) {
        size_t n = strlen(part);
        if (len + n >= cap) {
            n = cap - 1 - len;
            fits = false;
        }
        memcpy(out + len, part, n);
        len += n;
    }
    va_end(ap);
    out[len] = '\0';
    return fits;
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t tpi_utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min_second = 0x80, max_second = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) len = 3;
    else if (c >= 0xf0 && c <= 0xf4) len = 4;
    else return 0;
    if (c == 0xe0) min_second = 0xa0;      /* no overlong forms */
    else if (c == 0xed) max_second = 0x9f; /* no surrogates */
    else if (c == 0xf0) min_second = 0x90;
    else if (c == 0xf4) max_second = 0x8f; /* nothing above U+10FFFF */
    if (n < len || s[1] < min_second || s[1] > max_second) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

size_t tpi_utf8_prefix(const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strnlen(s, max + 1);
    if (n <= max) return n;
    /* Too long: cut at max, moved back to the lead byte of a character the
     * cut would split (u[max] is the first byte left out). */
    size_t cut = max;
    while (cut > 0 && max - cut < 3 && (u[cut] & 0xc0) == 0x80) cut--;
    if ((u[cut] & 0xc0) != 0xc0) cut = max; /* not well formed there anyway */
    return cut;
}

size_t tpi_escape(char *dst, size_t cap, const char *src, size_t len, tpi_escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t n = 0, i = 0;
    if (!cap) return 0;
    while (i < len && s[i]) {
        char piece[8];
        size_t seq = tpi_utf8_sequence(s + i, len - i);
        unsigned c = s[i];
        if (seq == 0) {
            snprintf(piece, sizeof piece, style == TPI_ESCAPE_TEXT ? "\\x%02x" : "\\\\x%02x", c);
            seq = 1;
        } else if (c == '\\') {
            snprintf(piece, sizeof piece, "\\\\");
        } else if (c == '"' && style != TPI_ESCAPE_TEXT) {
            snprintf(piece, sizeof piece, "\\\"");
        } else if (c == '\n' && style != TPI_ESCAPE_TEXT) {
            snprintf(piece, sizeof piece, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(piece, sizeof piece,
                     style == TPI_ESCAPE_JSON ? "\\u%04x" : style == TPI_ESCAPE_TEXT ? "\\x%02x" : "\\\\x%02x", c);
        } else if (c == 0xc2 && s[i + 1] < 0xa0) { /* C1 */
            snprintf(piece, sizeof piece, style == TPI_ESCAPE_PROMETHEUS ? "\\\\u%04x" : "\\u%04x", s[i + 1]);
        } else {
            memcpy(piece, s + i, seq);
            piece[seq] = '\0';
        }
        size_t plen = strlen(piece);
        if (n + plen >= cap) break; /* whole pieces only */
        memcpy(dst + n, piece, plen);
        n += plen;
        i += seq;
    }
    dst[n] = '\0';
    return n;
}
