/*
 * herald/plugin_kit.h — optional helpers for channel plugins written in C.
 *
 * plugin.h is the whole ABI; this header is NOT part of it. It collects the small helpers most C
 * plugins otherwise re-implement: string-view comparisons, a growable output buffer that writes
 * JSON through `host->json_escape`, a bounded reader for the top level of a provider's JSON
 * answer, printable quotes of response bodies for reasons, handing the host a POST, config
 * reading through `host->config_get` / `config_keys` (and refusing unknown settings), and the
 * English names of severities, statuses and links;
 * plus the boilerplate every plugin repeats: the `instance_create` hook (HK_INSTANCE_CREATE) and
 * the entry point's negotiation (HK_NEGOTIATE).
 *
 *     #include "herald/plugin.h"
 *     #include "herald/plugin_kit.h"
 *
 * It is C11 only (compound literals), needs nothing but libc, and builds warning-free with
 * -Wall -Wextra -Werror -pedantic under gcc and clang. Every function is `static inline`: it
 * exports nothing (the plugin's only symbol stays herald_plugin_entry_v1), and a helper the
 * plugin does not call costs nothing and draws no unused-function warning.
 *
 * NAMING. Functions and types are `hk_*`, macros `HK_*`.
 *
 * MEMORY. The rules of plugin.h apply. In addition: an `hk_buf` and an `hk_ostr` own their bytes
 * (malloc'd) and are freed by the plugin with `hk_buf_free` / `hk_ostr_free`; every `herald_str`
 * a helper takes is borrowed for the call; a `herald_str` or `hk_jval` a helper returns points
 * into the memory it was given and lives as long as that memory.
 *
 * ERRORS. Helpers that can fail for lack of memory report HK_NO_MEMORY (1), which is never a
 * `herald_status` (those are all <= 0), so one `int32_t` can carry either.
 */
#ifndef HERALD_PLUGIN_KIT_H
#define HERALD_PLUGIN_KIT_H

#include "herald/plugin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define HK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HK_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------------------------------------
 * Views and constants
 * ------------------------------------------------------------------------------------------- */

/** Initializer for a view of a string literal (static storage): `herald_str s = HK_LIT("x");`. */
#define HK_LIT(literal) {literal, sizeof(literal) - 1}
/** A view of a string literal as an expression; the literal's static storage backs it. */
#define HK_SV(literal) ((herald_str)HK_LIT(literal))
/** A view of `n` bytes at `p`; borrows `p`, which must outlive the view. */
#define HK_VIEW(p, n) ((herald_str){(p), (n)})

/** Not a herald_status (those are <= 0): a helper ran out of memory. */
#define HK_NO_MEMORY 1

/** Size of the error sentence buffer `hk_fail` and `hk_read_opt` write (the plugin's `err`). */
#define HK_ERR_BYTES 200

/** Longest provider text `hk_quote_string` and `hk_snippet` quote, in bytes (before "…"). */
#ifndef HK_QUOTE_BYTES
#define HK_QUOTE_BYTES 200
#endif

/** True when the host's message has every ABI 1.0 field; borrows nothing. */
#define HK_MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

/** ASCII lower case of `c`; other bytes unchanged. No memory involved. */
static inline int hk_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

/** 1 when view `a` equals C string `b` byte for byte; borrows both for the call. */
static inline int hk_str_eq(herald_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

/** 1 when view `a` equals C string `b` ignoring ASCII case; borrows both for the call. */
static inline int hk_str_ieq(herald_str a, const char *b) {
    size_t n = strlen(b);
    if (a.len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (hk_lower((unsigned char)a.ptr[i]) != hk_lower((unsigned char)b[i])) return 0;
    }
    return 1;
}

/** 1 when view `a` starts with C string `prefix` ignoring ASCII case; borrows both for the call. */
static inline int hk_str_iprefix(herald_str a, const char *prefix) {
    size_t n = strlen(prefix);
    return a.len >= n && hk_str_ieq(HK_VIEW(a.ptr, n), prefix);
}

/** 1 when every byte of `s` is visible ASCII (0x21-0x7e; the empty view too); borrows `s`. */
static inline int hk_is_visible(herald_str s) {
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x21 || c > 0x7e) return 0;
    }
    return 1;
}

/** 1 when ASCII `needle` occurs in the `n` bytes at `hay`, ignoring case; borrows both. */
static inline int hk_contains_ci(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        size_t j = 0;
        while (j < m && hk_lower((unsigned char)hay[i + j]) == hk_lower((unsigned char)needle[j])) j++;
        if (j == m) return 1;
    }
    return 0;
}

/** Length of the valid UTF-8 sequence at `p` (`n` >= 1 bytes readable), 0 if invalid; borrows. */
static inline size_t hk_utf8_seq(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/** Zeroes `n` bytes of secret material at `p` (NULL allowed) so the optimiser keeps it; no free. */
static inline void hk_wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (p && n--) *v++ = 0;
}

/** Formats a sentence into `err` (HK_ERR_BYTES, caller-owned) and returns -1, for `set_error`. */
static inline HK_PRINTF(2, 3) int hk_fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, HK_ERR_BYTES, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * A growable output buffer
 * ------------------------------------------------------------------------------------------- */

/**
 * Bytes appended blindly: failures are sticky, so a body builder appends and checks `failed`
 * once at the end. Start from `hk_buf b = {0};`. Not NUL-terminated.
 * OWNERSHIP: the buffer owns `p` (malloc'd); free with hk_buf_free.
 */
typedef struct hk_buf {
    char *p;
    size_t len, cap;
    int32_t failed; /**< 0, HK_NO_MEMORY, or a negative herald_status from a host function */
} hk_buf;

/** Releases the buffer's bytes and empties it (it may be reused). OWNERSHIP: frees `b->p`. */
static inline void hk_buf_free(hk_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

/** Makes room for `extra` more bytes; 0 or -1 (then `failed` is set). The buffer owns the growth. */
static inline int hk_buf_reserve(hk_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 4 - b->len) {
        b->failed = HK_NO_MEMORY;
        return -1;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 2048;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = HK_NO_MEMORY;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/** Appends `n` raw bytes from `data`; copies them (the caller keeps `data`). */
static inline void hk_buf_put(hk_buf *b, const void *data, size_t n) {
    if (n == 0 || hk_buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/** Appends view `s` raw; a NULL view appends nothing. Copies the bytes (borrows `s`). */
static inline void hk_buf_str(hk_buf *b, herald_str s) {
    if (s.ptr) hk_buf_put(b, s.ptr, s.len);
}

/** Appends C string `s` unescaped (JSON syntax, trusted text); copies it. */
static inline void hk_buf_lit(hk_buf *b, const char *s) { hk_buf_put(b, s, strlen(s)); }

/** Appends `v` in decimal. No memory beyond the buffer's own. */
static inline void hk_buf_u64(hk_buf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    if (n > 0) hk_buf_put(b, tmp, (size_t)n);
}

/** Appends `s` JSON-escaped by `h->json_escape`, without quotes (one call); borrows `s`. */
static inline void hk_buf_esc(hk_buf *b, const herald_host_api *h, herald_str s) {
    if (s.len == 0 || s.ptr == NULL) return;
    size_t got = 0;
    if (s.len > SIZE_MAX / 4 / 6) {
        b->failed = HK_NO_MEMORY;
        return;
    }
    if (hk_buf_reserve(b, s.len * 6) != 0) return;
    int32_t rc = h->json_escape(s, (uint8_t *)b->p + b->len, b->cap - b->len, &got);
    if (rc != HERALD_OK || got > b->cap - b->len) {
        b->failed = rc != HERALD_OK ? rc : HERALD_ERR_INTERNAL;
        return;
    }
    b->len += got;
}

/** Appends C string `s` JSON-escaped, without quotes; borrows `s`. */
static inline void hk_buf_esc_c(hk_buf *b, const herald_host_api *h, const char *s) {
    hk_buf_esc(b, h, HK_VIEW(s, strlen(s)));
}

/** Appends `s` as a quoted JSON string; borrows `s`. */
static inline void hk_buf_json(hk_buf *b, const herald_host_api *h, herald_str s) {
    hk_buf_put(b, "\"", 1);
    hk_buf_esc(b, h, s);
    hk_buf_put(b, "\"", 1);
}

/* ---------------------------------------------------------------------------------------------
 * A bounded reader for the top level of a JSON response
 *
 * Provider answers are small flat objects ({"code":0,"msg":"ok"}). The reader walks the
 * top-level members only, skipping nested values (at most 32 deep), and never reads past the
 * body's length. It validates structure, not every literal.
 * ------------------------------------------------------------------------------------------- */

/** A member's value. OWNERSHIP: `p` points into the body given to hk_json_member (borrowed). */
typedef struct hk_jval {
    char type;     /**< 's' string, 'n' number, 'o' object, 'a' array, 'l' literal; 0 = absent */
    const char *p; /**< strings: the raw text between the quotes; others: the value's text */
    size_t n;
} hk_jval;

/** Index of the first non-whitespace byte at or after `i` in `s[0..n)`; borrows `s`. */
static inline size_t hk_j_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/** Skips the string at `s[*i] == '"'`; `*i` ends after the closing quote. 0 or -1; borrows. */
static inline int hk_j_string(const char *s, size_t n, size_t *i) {
    size_t k = *i + 1;
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        k += c == '\\' ? 2 : 1;
    }
    return -1;
}

/** Skips one JSON value at or after `*i` (nesting bounded by `depth`). 0 or -1; borrows. */
static inline int hk_j_value(const char *s, size_t n, size_t *i, int depth) {
    if (depth > 32) return -1;
    size_t k = hk_j_ws(s, n, *i);
    if (k >= n) return -1;
    char c = s[k];
    if (c == '"') {
        *i = k;
        return hk_j_string(s, n, i);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        k = hk_j_ws(s, n, k + 1);
        if (k < n && s[k] == close) {
            *i = k + 1;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                if (k >= n || s[k] != '"' || hk_j_string(s, n, &k) != 0) return -1;
                k = hk_j_ws(s, n, k);
                if (k >= n || s[k] != ':') return -1;
                k++;
            }
            if (hk_j_value(s, n, &k, depth + 1) != 0) return -1;
            k = hk_j_ws(s, n, k);
            if (k >= n) return -1;
            if (s[k] == close) {
                *i = k + 1;
                return 0;
            }
            if (s[k] != ',') return -1;
            k = hk_j_ws(s, n, k + 1);
        }
    }
    size_t start = k;
    while (k < n && (strchr("+-.eE", s[k]) || (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'z'))) k++;
    if (k == start) return -1;
    *i = k;
    return 0;
}

/** Finds top-level member `key` of the object in `body`: 1 found, 0 absent, -1 not an object.
 *  OWNERSHIP: `*out` points into `body` (borrowed) and lives as long as it. */
static inline int hk_json_member(herald_str body, const char *key, hk_jval *out) {
    const char *s = body.ptr;
    size_t n = body.ptr ? body.len : 0, klen = strlen(key);
    size_t i = hk_j_ws(s, n, 0);
    int found = 0;
    memset(out, 0, sizeof *out);
    if (i >= n || s[i] != '{') return -1;
    i = hk_j_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return hk_j_ws(s, n, i + 1) == n ? 0 : -1;
    for (;;) {
        if (i >= n || s[i] != '"') return -1;
        size_t kstart = i + 1;
        if (hk_j_string(s, n, &i) != 0) return -1;
        size_t kend = i - 1;
        i = hk_j_ws(s, n, i);
        if (i >= n || s[i] != ':') return -1;
        size_t vstart = hk_j_ws(s, n, i + 1);
        i = vstart;
        if (hk_j_value(s, n, &i, 1) != 0) return -1;
        if (!found && kend - kstart == klen && memcmp(s + kstart, key, klen) == 0) {
            char c = s[vstart];
            found = 1;
            out->type = c == '"' ? 's' : c == '{' ? 'o' : c == '[' ? 'a' : (c == '-' || (c >= '0' && c <= '9')) ? 'n' : 'l';
            out->p = s + vstart + (c == '"');
            out->n = i - vstart - (c == '"' ? 2 : 0);
        }
        i = hk_j_ws(s, n, i);
        if (i < n && s[i] == '}') return hk_j_ws(s, n, i + 1) == n ? found : -1;
        if (i >= n || s[i] != ',') return -1;
        i = hk_j_ws(s, n, i + 1);
    }
}

/** 1 and `*out` when `v` is a plain JSON integer (no fraction/exponent) within int64; borrows. */
static inline int hk_json_int(const hk_jval *v, int64_t *out) {
    if (v->type != 'n' || v->n == 0 || v->n > 20) return 0;
    size_t i = v->p[0] == '-';
    if (i == v->n) return 0;
    int64_t x = 0;
    for (; i < v->n; i++) {
        char c = v->p[i];
        if (c < '0' || c > '9' || x > (INT64_MAX - 9) / 10) return 0;
        x = x * 10 + (c - '0');
    }
    *out = v->p[0] == '-' ? -x : x;
    return 1;
}

/** Writes code point `cp` as UTF-8 at `out + *o` (room for 4 bytes: the caller's) and advances. */
static inline void hk_put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) out[(*o)++] = (char)cp;
    else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xe0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/** Parses 4 hex digits at `p` into `*out`: 0, or -1 if one is not hex; borrows `p`. */
static inline int hk_hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/** Decodes string `v` into caller-owned `out` (cap >= 8, NUL-terminated) as printable UTF-8 for
 *  a reason: escapes resolved, controls as one space, bad UTF-8 as '?', cut near HK_QUOTE_BYTES
 *  with "…". Returns the length. */
static inline size_t hk_quote_string(const hk_jval *v, char *out, size_t cap) {
    size_t o = 0, i = 0;
    const char *s = v->p;
    while (i < v->n && o + 8 < cap && o < HK_QUOTE_BYTES) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        if (c == '\\' && i + 1 < v->n) {
            char e = s[i + 1];
            i += 2;
            if (e == 'u' && i + 4 <= v->n && hk_hex4(s + i, &cp) == 0) {
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= v->n && s[i] == '\\' && s[i + 1] == 'u') {
                    uint32_t lo;
                    if (hk_hex4(s + i + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        i += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff) cp = '?';
            } else {
                cp = e == 'n' || e == 'r' || e == 't' || e == 'b' || e == 'f' ? ' ' : (unsigned char)e;
            }
            if (cp < 0x20 || cp == 0x7f) cp = ' ';
            if (cp == ' ' && o > 0 && out[o - 1] == ' ') continue;
            hk_put_utf8(out, &o, cp);
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
            i++;
            continue;
        }
        size_t k = hk_utf8_seq((const unsigned char *)s + i, v->n - i);
        if (k == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    if (i < v->n && o + 4 <= cap) {
        memcpy(out + o, "\xe2\x80\xa6", 3);
        o += 3;
    }
    out[o] = 0;
    return o;
}

/** Writes `cp` as UTF-8 at `out + *o` only if it fits before the last byte of caller-owned `out`
 *  (`cap` bytes), else drops it; advances `*o`. */
static inline void hk_put_utf8_fit(char *out, size_t cap, size_t *o, uint32_t cp) {
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (*o + n < cap) hk_put_utf8(out, o, cp);
}

/** Decodes string `v` whole into caller-owned `out` (NUL-terminated, cut at `cap` - 1 on a
 *  character boundary, no "…"): escapes resolved, controls as spaces, bad text as U+FFFD. Unlike
 *  hk_quote_string it keeps provider words past HK_QUOTE_BYTES. 1, or 0 if `v` is not a string or
 *  has a bad \u escape (`out` then holds what was decoded so far). Borrows `v`. */
static inline int hk_json_text(const hk_jval *v, char *out, size_t cap) {
    if (cap == 0) return 0;
    out[0] = 0;
    if (v->type != 's') return 0;
    const char *p = v->p, *e = v->p + v->n;
    size_t o = 0;
    while (p < e) {
        uint32_t cp;
        if (*p == '\\') {
            if (++p >= e) break;
            char c = *p++;
            switch (c) {
            case 'n': case 'r': case 't': case 'b': case 'f': cp = ' '; break;
            case 'u':
                if (e - p < 4 || hk_hex4(p, &cp) != 0) return 0;
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (e - p >= 6 && p[0] == '\\' && p[1] == 'u' && hk_hex4(p + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    } else {
                        cp = 0xfffd;
                    }
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    cp = 0xfffd;
                }
                if (cp < 0x20 || cp == 0x7f) cp = ' ';
                break;
            default: cp = (unsigned char)c; break;
            }
            hk_put_utf8_fit(out, cap, &o, cp);
        } else {
            size_t k = hk_utf8_seq((const unsigned char *)p, (size_t)(e - p));
            if (k == 0) { hk_put_utf8_fit(out, cap, &o, 0xfffd); p++; continue; }
            if ((unsigned char)*p < 0x20 || *p == 0x7f) { hk_put_utf8_fit(out, cap, &o, ' '); p++; continue; }
            if (o + k >= cap) break;
            memcpy(out + o, p, k);
            o += k;
            p += k;
        }
        if (o + 1 >= cap) break;
    }
    out[o] = 0;
    return 1;
}

/** Up to HK_QUOTE_BYTES of a non-JSON body into caller-owned `out` (cap >= 8, NUL-terminated),
 *  printable: controls as one space, bad UTF-8 as '?', whole characters, "…" if cut. */
static inline size_t hk_snippet(herald_str body, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)body.ptr;
    size_t n = body.ptr ? body.len : 0, i = 0, o = 0, budget = n < HK_QUOTE_BYTES ? n : HK_QUOTE_BYTES;
    while (i < budget && o + 8 < cap) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
            i++;
            continue;
        }
        size_t k = hk_utf8_seq(p + i, n - i);
        if (k == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (i + k > budget) break;
        memcpy(out + o, p + i, k);
        o += k;
        i += k;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    if (i < n && o + 4 <= cap) {
        memcpy(out + o, "\xe2\x80\xa6", 3);
        o += 3;
    }
    out[o] = 0;
    return o;
}

/* ---------------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------------- */

/** First header named `name` (case-insensitive), or an empty view. Borrows from `r`. */
static inline herald_str hk_find_header(const herald_response *r, const char *name) {
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        if (hk_str_ieq(r->headers[i].name, name)) return r->headers[i].value;
    }
    return HK_SV("");
}

/** 1 when any header named `name` (case-insensitive) has a non-empty value; borrows `r`. */
static inline int hk_has_header(const herald_response *r, const char *name) {
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        if (hk_str_ieq(r->headers[i].name, name) && r->headers[i].value.len > 0) return 1;
    }
    return 0;
}

/** Sets a reason for a failed host call (or HK_NO_MEMORY) and returns RETRY for memory/internal
 *  errors, FAILED otherwise. `set_reason` copies the sentence. */
static inline int32_t hk_host_failure(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *what) {
    char msg[160];
    if (status == HK_NO_MEMORY) snprintf(msg, sizeof msg, "out of memory while %s", what);
    else snprintf(msg, sizeof msg, "the host failed while %s (status %d)", what, (int)status);
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return status == HK_NO_MEMORY || status == HERALD_ERR_INTERNAL ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

/** Hands the host a POST of `b` to `url` with `headers`: REQUEST, or hk_host_failure's outcome. OWNERSHIP: frees `b`; borrows the rest. */
static inline int32_t hk_post(const herald_host_api *h, herald_exchange *ex, herald_str url, const herald_pair *headers,
                              size_t header_count, hk_buf *b) {
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = HK_SV("POST");
    req.url = url;
    req.headers = headers;
    req.header_count = header_count;
    req.body = HK_VIEW(b->p, b->len);
    int32_t rc = h->set_request(ex, &req);
    hk_buf_free(b);
    if (rc != HERALD_OK) return hk_host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

/** An owned, NUL-terminated copy of a setting. OWNERSHIP: owns `p` (malloc'd); free with hk_ostr_free. */
typedef struct hk_ostr {
    char *p;
    size_t len;
} hk_ostr;

/** Frees `s->p` (wiping it first when `secret`) and empties `s`. OWNERSHIP: releases the bytes. */
static inline void hk_ostr_free(hk_ostr *s, int secret) {
    if (secret) hk_wipe(s->p, s->len);
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

/** Reads config_get(path) (keys 0) or config_keys(path) (keys 1) into a fresh `*out` the caller
 *  owns (hk_ostr_free). Returns HERALD_OK, a host status (NOT_FOUND when absent) or HK_NO_MEMORY. */
static inline int32_t hk_cfg_read(const herald_host_api *h, int keys, const char *path, hk_ostr *out) {
    herald_str p = HK_VIEW(path, strlen(path));
    size_t need = 0, got = 0;
    int32_t st = keys ? h->config_keys(p, NULL, 0, &need) : h->config_get(p, NULL, 0, &need);
    if (st == HERALD_OK) need = 0;
    else if (st != HERALD_ERR_BUFFER_TOO_SMALL) return st;
    char *text = malloc(need + 1);
    if (!text) return HK_NO_MEMORY;
    if (need > 0) {
        st = keys ? h->config_keys(p, (uint8_t *)text, need, &got) : h->config_get(p, (uint8_t *)text, need, &got);
        if (st != HERALD_OK || got > need) {
            free(text);
            return st == HERALD_OK || st == HERALD_ERR_BUFFER_TOO_SMALL ? HERALD_ERR_INTERNAL : st;
        }
    }
    text[got] = 0;
    *out = (hk_ostr){text, got};
    return HERALD_OK;
}

/** Writes hk_read_opt's sentence for failed read `st` (a host status or HK_NO_MEMORY) of setting
 *  `path` into caller-owned `err` (HK_ERR_BYTES) and returns -1; for reads that are not optional. */
static inline int hk_read_fail(char *err, const char *path, int32_t st) {
    if (st == HK_NO_MEMORY) return hk_fail(err, "out of memory while reading setting '%s'", path);
    return hk_fail(err, "the host could not read setting '%s' (status %d)", path, (int)st);
}

/** Reads an optional setting into `*out` (caller frees with hk_ostr_free): 1 present, 0 absent,
 *  -1 with a sentence in `err` (HK_ERR_BYTES) on failure. */
static inline int hk_read_opt(const herald_host_api *h, const char *path, hk_ostr *out, char *err) {
    int32_t st = hk_cfg_read(h, 0, path, out);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    if (st == HERALD_OK) return 1;
    return hk_read_fail(err, path, st);
}

/** 0, or -1 with a sentence in `err` (caller's, HK_ERR_BYTES) for the first of config_keys' `names` not in `known`; borrows all. */
static inline int hk_check_setting_names(const char *names, size_t len, const char *const *known, size_t count,
                                         const char *plugin, char *err) {
    for (const char *name = names; name && name < names + len; name += strlen(name) + 1) {
        size_t i = 0, n = strlen(name);
        while (i < count && strcmp(name, known[i]) != 0) i++;
        if (i < count) continue;
        if (n <= 64 && hk_is_visible(HK_VIEW(name, n)))
            return hk_fail(err, "setting '%s' is not a setting of the %s plugin", name, plugin);
        return hk_fail(err, "the configuration has a setting the %s plugin does not know", plugin);
    }
    return 0;
}

/** Lists config_keys("") and refuses a non-object config, a failed read or an unknown name: 0 or -1 (sentence in `err`); borrows all, frees its list. */
static inline int hk_check_known_settings(const herald_host_api *host, const char *const *known, size_t count,
                                          const char *plugin, char *err) {
    hk_ostr names = {0};
    int32_t st = hk_cfg_read(host, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) return hk_fail(err, "the configuration must be a JSON object");
    if (st != HERALD_OK) return hk_read_fail(err, "", st);
    int rc = hk_check_setting_names(names.p, names.len, known, count, plugin, err);
    hk_ostr_free(&names, 0);
    return rc;
}

/** 1 when `s` is printable ASCII without spaces (what a URL or secret may hold); borrows `s`. */
static inline int hk_is_token_text(const hk_ostr *s) {
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c <= 0x20 || c >= 0x7f) return 0;
    }
    return 1;
}

/** The host part of NUL-terminated http(s) `url` (no userinfo handling). Points into `url`. */
static inline herald_str hk_url_host(const hk_ostr *url) {
    const char *p = url->p;
    size_t skip = hk_str_ieq(HK_VIEW(p, url->len < 8 ? url->len : 8), "https://") ? 8 : 7;
    if (url->len < skip) return HK_SV("");
    const char *host = p + skip;
    return HK_VIEW(host, strcspn(host, ":/?#"));
}

/** 1 for a plain http:// `url` whose host is not loopback (localhost, 127.x, [::1]): worth a
 *  warning, since a local receiver is the one place plain http is normal. `url` must be
 *  NUL-terminated and NUL-free (as hk_cfg_read gives, once checked); borrowed. */
static inline int hk_plain_http_to_remote_host(const hk_ostr *url) {
    if (url->len < 7 || !hk_str_ieq(HK_VIEW(url->p, 7), "http://")) return 0;
    const char *host = url->p + 7;
    size_t n = host[0] == '[' ? strcspn(host, "]") + (strchr(host, ']') ? 1 : 0) : strcspn(host, ":/?#");
    if (hk_str_ieq(HK_VIEW(host, n), "localhost") || hk_str_eq(HK_VIEW(host, n), "[::1]")) return 0;
    return !(n >= 4 && memcmp(host, "127.", 4) == 0);
}

/* ---------------------------------------------------------------------------------------------
 * The instance_create hook and the entry point
 * ------------------------------------------------------------------------------------------- */

/** instance_create's opening: clears `*out_instance`, checks the host table reaches config_keys
 *  (ABI 1.0) and callocs `size` bytes. Returns the zeroed block, which the caller owns, or NULL
 *  after `set_error` (when the table has it). `plugin` names the plugin in the sentences. */
static inline void *hk_create_alloc(const herald_host_api *host, void **out_instance, size_t size, const char *plugin) {
    char msg[HK_ERR_BYTES];
    if (host == NULL || out_instance == NULL) return NULL;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size)) {
            snprintf(msg, sizeof msg, "the host's function table lacks config_get/config_keys, which the %s plugin needs", plugin);
            host->set_error(HK_VIEW(msg, strlen(msg)));
        }
        return NULL;
    }
    void *in = calloc(1, size);
    if (!in) {
        snprintf(msg, sizeof msg, "out of memory while creating the %s instance", plugin);
        host->set_error(HK_VIEW(msg, strlen(msg)));
    }
    return in;
}

/** Passes sentence `err` (caller-owned; a default when empty) to `set_error`, which copies it. */
static inline void hk_create_refuse(const herald_host_api *host, const char *err) {
    if (!err[0]) err = "the configuration could not be read";
    host->set_error(HK_VIEW(err, strlen(err)));
}

/**
 * Defines `static int32_t fn(host, config_json, out_instance)`, the usual instance_create hook:
 * hk_create_alloc a `type` (which must have a `const herald_host_api *host` member, set before
 * the read), then `int read_config(type *, char *err)` (0, or non-zero with a sentence in `err`,
 * HK_ERR_BYTES); on failure hk_create_refuse and `free_fn(type *)`. `plugin` is a C string naming
 * the plugin. OWNERSHIP: on success `*out_instance` owns the instance (freed by instance_destroy);
 * `config_json` is unused (settings are read one by one with config_get).
 */
#define HK_INSTANCE_CREATE(fn, type, plugin, read_config, free_fn)                                 \
    static int32_t fn(const herald_host_api *host, herald_str config_json, void **out_instance) {  \
        (void)config_json;                                                                          \
        type *in = hk_create_alloc(host, out_instance, sizeof(type), (plugin));                    \
        if (!in) return -1;                                                                         \
        in->host = host;                                                                            \
        char err[HK_ERR_BYTES] = "";                                                                \
        if (read_config(in, err) != 0) {                                                            \
            hk_create_refuse(host, err);                                                            \
            free_fn(in);                                                                            \
            return -1;                                                                              \
        }                                                                                           \
        *out_instance = in;                                                                         \
        return 0;                                                                                   \
    }

/** The entry point's negotiation: refuses (NULL, `refusal` set to a static sentence) a host of
 *  another ABI major or product, else writes the negotiated minor into `negotiate` and
 *  `descriptor` and returns it. The sentences must be static storage (see HK_NEGOTIATE). */
static inline const herald_plugin *hk_negotiate(herald_negotiate *negotiate, herald_plugin *descriptor,
                                                herald_str wrong_abi, herald_str wrong_product) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = wrong_abi;
        return NULL;
    }
    if (!hk_str_eq(negotiate->product, "herald")) {
        negotiate->refusal = wrong_product;
        return NULL;
    }
    descriptor->abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return descriptor;
}

/** hk_negotiate with the usual refusals, "the <id> plugin speaks Herald plugin ABI 1 only" and
 *  "... loads only into Herald (product \"herald\")"; `id` is a string literal (static storage):
 *  `return HK_NEGOTIATE(negotiate, &descriptor, "slack");`. */
#define HK_NEGOTIATE(negotiate, descriptor, id)                                                    \
    hk_negotiate((negotiate), (descriptor), HK_SV("the " id " plugin speaks Herald plugin ABI 1 only"), \
                 HK_SV("the " id " plugin loads only into Herald (product \"herald\")"))

/* ---------------------------------------------------------------------------------------------
 * Message pieces
 * ------------------------------------------------------------------------------------------- */

/** "Critical", "Warning", "Info" or "Unknown" for a herald_severity; static storage. */
static inline const char *hk_severity_name(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

/** "Triggered", "Acknowledged", "Resolved", "Closed" or "Unknown"; static storage. */
static inline const char *hk_status_name(int32_t s) {
    static const char *const names[] = {"Triggered", "Acknowledged", "Resolved", "Closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "Unknown";
}

/** Severity marker 🔴 🟠 🔵 (⚪ unknown), or ✅ once resolved/closed; static UTF-8 storage. */
static inline const char *hk_severity_emoji(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "\xe2\x9c\x85";
    static const char *const marks[] = {"\xf0\x9f\x94\xb4", "\xf0\x9f\x9f\xa0", "\xf0\x9f\x94\xb5"};
    return m->severity >= 1 && m->severity <= 3 ? marks[m->severity - 1] : "\xe2\x9a\xaa";
}

/** Button text for a herald_link_kind: "View", "Acknowledge", "Snooze", "Close", "Open"; static. */
static inline const char *hk_link_default_label(int32_t k) {
    static const char *const names[] = {"View", "Acknowledge", "Snooze", "Close", "Open"};
    return k >= 1 && k <= 5 ? names[k - 1] : "Open";
}

/** The link's label, or its kind's default; borrows from `l` or static storage. */
static inline herald_str hk_link_label(const herald_link *l) {
    return l->label.len > 0 && l->label.ptr ? l->label : HK_VIEW(hk_link_default_label(l->kind), strlen(hk_link_default_label(l->kind)));
}

/** 1 when the link's URL is a plausible http(s) URL (no spaces or controls); borrows `l`. */
static inline int hk_link_ok(const herald_link *l) {
    herald_str u = l->url;
    if (u.len < 8 || u.ptr == NULL) return 0;
    if (!hk_str_ieq(HK_VIEW(u.ptr, 7), "http://") && !hk_str_ieq(HK_VIEW(u.ptr, 8), "https://")) return 0;
    for (size_t i = 0; i < u.len; i++) {
        unsigned char c = (unsigned char)u.ptr[i];
        if (c <= 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

/** The mention's display name, or its id when it has none; borrows from `x`. */
static inline herald_str hk_mention_name(const herald_mention *x) {
    return x->display_name.len > 0 && x->display_name.ptr ? x->display_name : x->id;
}

/** Number of mentions (0 when the array is NULL). No memory involved. */
static inline size_t hk_count_mentions(const herald_message *m) { return m->mentions ? m->mention_count : 0; }
/** Number of links (0 when the array is NULL). No memory involved. */
static inline size_t hk_count_links(const herald_message *m) { return m->links ? m->link_count : 0; }
/** Number of labels (0 when the array is NULL). No memory involved. */
static inline size_t hk_count_labels(const herald_message *m) { return m->labels ? m->label_count : 0; }

#endif /* HERALD_PLUGIN_KIT_H */
