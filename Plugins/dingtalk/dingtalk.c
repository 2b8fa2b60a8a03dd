/*
 * dingtalk.c — Herald's DingTalk (钉钉) custom robot channel.
 *
 * POSTs one message per notification to a group's custom robot
 * (https://oapi.dingtalk.com/robot/send?access_token=<token>). By default the message is an
 * actionCard: the rendered Markdown (severity marker, body, status, labels) with one button per
 * link (view, acknowledge, snooze, close) opening Herald's signed URLs. `msg_type` selects
 * `markdown` (links inline) or `text`. @mentions go into `at.atMobiles` / `at.atUserIds` with the
 * matching "@..." in the text, as DingTalk requires; because DingTalk only notifies mentioned
 * people for text and markdown messages, an actionCard with mentions is sent as markdown. With a
 * `secret` ("加签") each request carries `timestamp` and `sign` query parameters.
 * See README.md for the payloads and what each answer means.
 *
 * DingTalk answers errors with HTTP 200 and an `errcode` in the body, so on_response reads the
 * body's `errcode` and never reports a body it does not understand as sent.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o dingtalk.so Plugins/dingtalk/dingtalk.c
 */
#include "herald/plugin.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIT(literal) {literal, sizeof(literal) - 1}
#define SV(literal) ((herald_str)LIT(literal))
#define VIEW(p, n) ((herald_str){(p), (n)})

enum {
    /* DingTalk refuses bodies over 20000 bytes (errcode 460101 "message too long, exceed 20000 bytes"). */
    MAX_BODY_BYTES = 20000,
    /* Longest provider message quoted in a reason. */
    QUOTE_BYTES = 200,
    MAX_SECRET_BYTES = 256,
    MAX_MENTION_ID = 64,
};

/* DingTalk throttles a robot for 10 minutes once it exceeds 20 messages a minute. */
#define THROTTLE_MS UINT64_C(600000)

/* ---- small helpers --------------------------------------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

/* ASCII case-insensitive equality of a view and a C string. */
static int str_ieq(herald_str a, const char *b) {
    size_t n = strlen(b);
    if (a.len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b[i])) return 0;
    }
    return 1;
}

static int str_eq(herald_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

/* Case-insensitive search for ASCII `needle` in `hay`. */
static int contains_ci(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        size_t j = 0;
        while (j < m && lower((unsigned char)hay[i + j]) == lower((unsigned char)needle[j])) j++;
        if (j == m) return 1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes available), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
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

/* Zeroes secret material in a way the optimiser may not drop. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (p && n--) *v++ = 0;
}

/* Formats the set_error sentence into err (200 bytes) and returns -1. */
static int fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 200, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- growable output buffer ------------------------------------------------------------------ */

/* Failures are sticky so the body builder can append blindly and check once at the end. */
typedef struct {
    char *p; /* owned; freed by the caller with free() */
    size_t len, cap;
    int32_t failed; /* 0, NO_MEMORY, or a negative herald_status from a host function */
} buf;

#define NO_MEMORY 1 /* never a herald_status, which are all <= 0 */

static int buf_reserve(buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 4 - b->len) {
        b->failed = NO_MEMORY;
        return -1;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 2048;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = NO_MEMORY;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_put(buf *b, const void *data, size_t n) {
    if (n == 0 || buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_lit(buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_u64(buf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    if (n > 0) buf_put(b, tmp, (size_t)n);
}

/* Appends `s` JSON-escaped by the host, without quotes (at most 6x the input: one call). */
static void buf_esc(buf *b, const herald_host_api *h, herald_str s) {
    if (s.len == 0 || s.ptr == NULL) return;
    size_t got = 0;
    if (s.len > SIZE_MAX / 4 / 6) {
        b->failed = NO_MEMORY;
        return;
    }
    if (buf_reserve(b, s.len * 6) != 0) return;
    int32_t rc = h->json_escape(s, (uint8_t *)b->p + b->len, b->cap - b->len, &got);
    if (rc != HERALD_OK || got > b->cap - b->len) {
        b->failed = rc != HERALD_OK ? rc : HERALD_ERR_INTERNAL;
        return;
    }
    b->len += got;
}

static void buf_esc_c(buf *b, const herald_host_api *h, const char *s) { buf_esc(b, h, VIEW(s, strlen(s))); }

/* Appends `s` as a quoted JSON string. */
static void buf_json(buf *b, const herald_host_api *h, herald_str s) {
    buf_put(b, "\"", 1);
    buf_esc(b, h, s);
    buf_put(b, "\"", 1);
}

/* ---- a tiny reader for the top level of a JSON response -------------------------------------- */

/* DingTalk's answers are small flat objects ({"errcode":0,"errmsg":"ok"}). The reader
 * walks the top-level members only, skipping nested values, and never reads past `n`. */
typedef struct {
    char type; /* 's' string, 'n' number, 'o' object, 'a' array, 'l' literal; 0 = absent */
    const char *p; /* strings: the raw text between the quotes; others: the value's text */
    size_t n;
} jval;

static size_t j_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Skips a string starting at s[*i] == '"'; *i ends after the closing quote. */
static int j_string(const char *s, size_t n, size_t *i) {
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

static int j_value(const char *s, size_t n, size_t *i, int depth) {
    if (depth > 32) return -1;
    size_t k = j_ws(s, n, *i);
    if (k >= n) return -1;
    char c = s[k];
    if (c == '"') {
        *i = k;
        return j_string(s, n, i);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        k = j_ws(s, n, k + 1);
        if (k < n && s[k] == close) {
            *i = k + 1;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                if (k >= n || s[k] != '"' || j_string(s, n, &k) != 0) return -1;
                k = j_ws(s, n, k);
                if (k >= n || s[k] != ':') return -1;
                k++;
            }
            if (j_value(s, n, &k, depth + 1) != 0) return -1;
            k = j_ws(s, n, k);
            if (k >= n) return -1;
            if (s[k] == close) {
                *i = k + 1;
                return 0;
            }
            if (s[k] != ',') return -1;
            k = j_ws(s, n, k + 1);
        }
    }
    size_t start = k;
    while (k < n && (strchr("+-.eE", s[k]) || (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'z'))) k++;
    if (k == start) return -1;
    *i = k;
    return 0;
}

/* Finds top-level member `key` of the JSON object in `body`. Returns 1 and fills *out when
 * found, 0 when absent, -1 when the body is not a well-formed JSON object. */
static int json_member(herald_str body, const char *key, jval *out) {
    const char *s = body.ptr;
    size_t n = body.ptr ? body.len : 0, klen = strlen(key);
    size_t i = j_ws(s, n, 0);
    int found = 0;
    memset(out, 0, sizeof *out);
    if (i >= n || s[i] != '{') return -1;
    i = j_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return j_ws(s, n, i + 1) == n ? 0 : -1;
    for (;;) {
        if (i >= n || s[i] != '"') return -1;
        size_t kstart = i + 1;
        if (j_string(s, n, &i) != 0) return -1;
        size_t kend = i - 1;
        i = j_ws(s, n, i);
        if (i >= n || s[i] != ':') return -1;
        size_t vstart = j_ws(s, n, i + 1);
        i = vstart;
        if (j_value(s, n, &i, 1) != 0) return -1;
        if (!found && kend - kstart == klen && memcmp(s + kstart, key, klen) == 0) {
            char c = s[vstart];
            found = 1;
            out->type = c == '"' ? 's' : c == '{' ? 'o' : c == '[' ? 'a' : (c == '-' || (c >= '0' && c <= '9')) ? 'n' : 'l';
            out->p = s + vstart + (c == '"');
            out->n = i - vstart - (c == '"' ? 2 : 0);
        }
        i = j_ws(s, n, i);
        if (i < n && s[i] == '}') return j_ws(s, n, i + 1) == n ? found : -1;
        if (i >= n || s[i] != ',') return -1;
        i = j_ws(s, n, i + 1);
    }
}

/* A JSON number that is a plain integer (no fraction or exponent) within int64. */
static int json_int(const jval *v, int64_t *out) {
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

static void put_utf8(char *out, size_t *o, uint32_t cp) {
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

static int hex4(const char *p, uint32_t *out) {
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

/* Decodes a JSON string value into `out` (cap >= 8) as printable UTF-8 for a reason sentence:
 * escapes resolved, control characters as spaces (runs collapsed), invalid UTF-8 as '?', cut at
 * about QUOTE_BYTES on a character boundary with "…". Returns the length. */
static size_t quote_string(const jval *v, char *out, size_t cap) {
    size_t o = 0, i = 0;
    const char *s = v->p;
    while (i < v->n && o + 8 < cap && o < QUOTE_BYTES) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        if (c == '\\' && i + 1 < v->n) {
            char e = s[i + 1];
            i += 2;
            if (e == 'u' && i + 4 <= v->n && hex4(s + i, &cp) == 0) {
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= v->n && s[i] == '\\' && s[i + 1] == 'u') {
                    uint32_t lo;
                    if (hex4(s + i + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
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
            put_utf8(out, &o, cp);
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
            i++;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)s + i, v->n - i);
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

/* Up to QUOTE_BYTES of a non-JSON body, printable: control characters as spaces (runs
 * collapsed), invalid UTF-8 as '?', never a character cut in half. */
static size_t snippet(herald_str body, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)body.ptr;
    size_t n = body.ptr ? body.len : 0, i = 0, o = 0, budget = n < QUOTE_BYTES ? n : QUOTE_BYTES;
    while (i < budget && o + 8 < cap) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
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

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    char *p; /* owned, NUL-terminated */
    size_t len;
} ostr;

typedef enum { MSG_ACTION_CARD = 0, MSG_MARKDOWN = 1, MSG_TEXT = 2 } msg_kind;

static const char *const msg_kind_names[] = {"actionCard", "markdown", "text"};

/* Read-only after instance_create, so hooks may run concurrently. */
typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    ostr url;
    ostr secret; /* p == NULL: the robot does not use 加签 */
    msg_kind kind;
} instance;

static void ostr_free(ostr *s, int secret) {
    if (secret) wipe(s->p, s->len);
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

static void instance_free(instance *in) {
    if (!in) return;
    ostr_free(&in->url, 0);
    ostr_free(&in->secret, 1);
    free(in);
}

/* Reads config_get(path) (keys == 0) or config_keys(path) (keys == 1) into a fresh ostr.
 * Returns HERALD_OK, a host status (HERALD_ERR_NOT_FOUND when absent) or NO_MEMORY. */
static int32_t cfg_read(const herald_host_api *h, int keys, const char *path, ostr *out) {
    herald_str p = VIEW(path, strlen(path));
    size_t need = 0, got = 0;
    int32_t st = keys ? h->config_keys(p, NULL, 0, &need) : h->config_get(p, NULL, 0, &need);
    if (st == HERALD_OK) need = 0;
    else if (st != HERALD_ERR_BUFFER_TOO_SMALL) return st;
    char *text = malloc(need + 1);
    if (!text) return NO_MEMORY;
    if (need > 0) {
        st = keys ? h->config_keys(p, (uint8_t *)text, need, &got) : h->config_get(p, (uint8_t *)text, need, &got);
        if (st != HERALD_OK || got > need) {
            free(text);
            return st == HERALD_OK || st == HERALD_ERR_BUFFER_TOO_SMALL ? HERALD_ERR_INTERNAL : st;
        }
    }
    text[got] = 0;
    *out = (ostr){text, got};
    return HERALD_OK;
}

/* Reads an optional setting: 1 when present, 0 when absent, -1 (with err) on failure. */
static int read_opt(const herald_host_api *h, const char *path, ostr *out, char *err) {
    int32_t st = cfg_read(h, 0, path, out);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    if (st == HERALD_OK) return 1;
    if (st == NO_MEMORY) return fail(err, "out of memory while reading setting '%s'", path);
    return fail(err, "the host could not read setting '%s' (status %d)", path, (int)st);
}

/* Printable ASCII without spaces: what a URL and a secret may contain. */
static int is_token_text(const ostr *s) {
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c <= 0x20 || c >= 0x7f) return 0;
    }
    return 1;
}

/* The host part of an http(s) URL. */
static herald_str url_host(const ostr *url) {
    const char *p = url->p;
    size_t skip = str_ieq(VIEW(p, url->len < 8 ? url->len : 8), "https://") ? 8 : 7;
    if (url->len < skip) return SV("");
    const char *host = p + skip;
    return VIEW(host, strcspn(host, ":/?#"));
}

/* True when the URL's query has a parameter `name` (e.g. "access_token") with a non-empty value. */
static int query_has(const ostr *url, const char *name, int need_value) {
    const char *q = strchr(url->p, '?');
    size_t n = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=' && (!need_value || (q[n + 1] && q[n + 1] != '&'))) return 1;
        q = strchr(q, '&');
    }
    return 0;
}

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"webhook_url", "secret", "msg_type"};
    const herald_host_api *h = in->host;
    ostr names = {0}, kind = {0};
    int rc = -1, got;

    int32_t st = cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) {
        if (st == NO_MEMORY) fail(err, "out of memory while reading the configuration");
        else fail(err, "the host could not list the configuration's settings (status %d)", (int)st);
        goto done;
    }
    for (const char *name = names.p; name < names.p + names.len; name += strlen(name) + 1) {
        size_t i = 0;
        while (i < sizeof known / sizeof *known && strcmp(name, known[i]) != 0) i++;
        if (i < sizeof known / sizeof *known) continue;
        ostr n = {(char *)name, strlen(name)};
        if (n.len <= 64 && is_token_text(&n)) fail(err, "setting '%s' is not a setting of the dingtalk plugin", name);
        else fail(err, "the configuration has a setting the dingtalk plugin does not know");
        goto done;
    }

    if ((got = read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) fail(err, "setting 'webhook_url' is required: paste the robot's webhook address");
        goto done;
    }
    int url_ok = (in->url.len > 7 && str_ieq(VIEW(in->url.p, 7), "http://")) ||
                 (in->url.len > 8 && str_ieq(VIEW(in->url.p, 8), "https://"));
    if (!url_ok || !is_token_text(&in->url) || url_host(&in->url).len == 0 || strchr(in->url.p, '#')) {
        fail(err, "setting 'webhook_url' must be the robot's https:// webhook address, without spaces or '#'");
        goto done;
    }
    if (!query_has(&in->url, "access_token", 1)) {
        fail(err, "setting 'webhook_url' must contain the robot's access_token (https://oapi.dingtalk.com/robot/send?access_token=...)");
        goto done;
    }
    if (query_has(&in->url, "timestamp", 0) || query_has(&in->url, "sign", 0)) {
        fail(err, "setting 'webhook_url' must not contain timestamp or sign: put the robot's secret in 'secret' and the plugin signs each request");
        goto done;
    }
    herald_str host = url_host(&in->url);
    int loopback = str_ieq(host, "localhost") || (host.len >= 4 && memcmp(host.ptr, "127.", 4) == 0);
    if (!loopback && !str_ieq(host, "oapi.dingtalk.com")) {
        char line[240];
        snprintf(line, sizeof line, "setting 'webhook_url' points at %.*s, not oapi.dingtalk.com; "
                 "Herald sends there only if the integration's egress.allow lists it", (int)(host.len > 100 ? 100 : host.len), host.ptr);
        h->log(HERALD_LOG_WARNING, VIEW(line, strlen(line)));
    }

    if ((got = read_opt(h, "secret", &in->secret, err)) < 0) goto done;
    if (got == 1 && (in->secret.len == 0 || in->secret.len > MAX_SECRET_BYTES || !is_token_text(&in->secret))) {
        fail(err, "setting 'secret' must be the robot's signing secret (SEC...): 1 to 256 printable characters without spaces");
        goto done;
    }
    if (got == 1 && (in->secret.len < 3 || memcmp(in->secret.p, "SEC", 3) != 0))
        h->log(HERALD_LOG_WARNING, SV("setting 'secret' does not start with SEC, as DingTalk's signing secrets do; check it is the 加签 secret"));

    if ((got = read_opt(h, "msg_type", &kind, err)) < 0) goto done;
    in->kind = MSG_ACTION_CARD;
    if (got == 1) {
        size_t i = 0;
        while (i < 3 && strcmp(kind.p, msg_kind_names[i]) != 0) i++;
        if (i == 3) { fail(err, "setting 'msg_type' must be \"actionCard\", \"markdown\" or \"text\""); goto done; }
        in->kind = (msg_kind)i;
    }
    rc = 0;
done:
    ostr_free(&names, 0);
    ostr_free(&kind, 0);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

static int32_t dingtalk_create(const herald_host_api *host, herald_str config_json, void **out_instance) {
    (void)config_json; /* read setting by setting with config_get instead */
    if (host == NULL || out_instance == NULL) return -1;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size))
            host->set_error(SV("the host's function table lacks config_get/config_keys, which the dingtalk plugin needs"));
        return -1;
    }
    instance *in = calloc(1, sizeof *in);
    if (!in) {
        host->set_error(SV("out of memory while creating the dingtalk instance"));
        return -1;
    }
    in->host = host;
    char err[200] = "";
    if (read_config(in, err) != 0) {
        if (!err[0]) snprintf(err, sizeof err, "the configuration could not be read");
        host->set_error(VIEW(err, strlen(err)));
        instance_free(in);
        return -1;
    }
    *out_instance = in;
    return 0;
}

static void dingtalk_destroy(void *inst) { instance_free(inst); }

/* ---- message pieces -------------------------------------------------------------------------- */

static const char *severity_name(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

/* DingTalk messages have no colour, so severity is an emoji: 🔴 🟠 🔵, ✅ once it is over. */
static const char *severity_emoji(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "\xe2\x9c\x85";
    static const char *const marks[] = {"\xf0\x9f\x94\xb4", "\xf0\x9f\x9f\xa0", "\xf0\x9f\x94\xb5"};
    return m->severity >= 1 && m->severity <= 3 ? marks[m->severity - 1] : "\xe2\x9a\xaa";
}

static const char *status_name(int32_t s) {
    static const char *const names[] = {"Triggered", "Acknowledged", "Resolved", "Closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "Unknown";
}

static const char *link_default_label(int32_t k) {
    static const char *const names[] = {"View", "Acknowledge", "Snooze", "Close", "Open"};
    return k >= 1 && k <= 5 ? names[k - 1] : "Open";
}

static herald_str link_label(const herald_link *l) {
    return l->label.len > 0 && l->label.ptr ? l->label : VIEW(link_default_label(l->kind), strlen(link_default_label(l->kind)));
}

/* A link is shown when its URL is a plausible http(s) URL (Herald signs them; still checked). */
static int link_ok(const herald_link *l) {
    herald_str u = l->url;
    if (u.len < 8 || u.ptr == NULL) return 0;
    if (!str_ieq(VIEW(u.ptr, 7), "http://") && !str_ieq(VIEW(u.ptr, 8), "https://")) return 0;
    for (size_t i = 0; i < u.len; i++) {
        unsigned char c = (unsigned char)u.ptr[i];
        if (c <= 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static size_t count_mentions(const herald_message *m) { return m->mentions ? m->mention_count : 0; }
static size_t count_links(const herald_message *m) { return m->links ? m->link_count : 0; }
static size_t count_labels(const herald_message *m) { return m->labels ? m->label_count : 0; }

static size_t shown_links(const herald_message *m) {
    size_t n = 0;
    for (size_t i = 0; i < count_links(m); i++) n += link_ok(&m->links[i]);
    return n;
}

/* How a mention is written: a mobile number goes to at.atMobiles, a DingTalk userid to
 * at.atUserIds, each with "@<id>" in the text; "all" sets at.isAtAll. */
typedef enum { AT_NONE, AT_MOBILE, AT_USERID, AT_ALL } at_kind;

static at_kind mention_kind(const herald_mention *x) {
    if (str_eq(x->id_kind, "all")) return AT_ALL;
    herald_str id = x->id;
    if (id.len == 0 || id.len > MAX_MENTION_ID || id.ptr == NULL) return AT_NONE;
    int mobile = str_eq(x->id_kind, "mobile"), user = str_eq(x->id_kind, "user_id");
    if (!mobile && !user) return AT_NONE;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.ptr[i];
        int digit = c >= '0' && c <= '9';
        int ok = mobile ? digit || (c == '+' && i == 0) || (c == '-' && i > 0)
                        : digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '.' || c == ':' || c == '$';
        if (!ok) return AT_NONE;
    }
    return mobile ? AT_MOBILE : AT_USERID;
}

static int has_real_mentions(const herald_message *m) {
    for (size_t i = 0; i < count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i]) != AT_NONE) return 1;
    }
    return 0;
}

static herald_str mention_name(const herald_mention *x) {
    return x->display_name.len > 0 && x->display_name.ptr ? x->display_name : x->id;
}

/* Appends raw text (a label, a name) to Markdown: ASCII punctuation DingTalk's Markdown acts on
 * gets a backslash, and line breaks become spaces so a value cannot start a new block. */
static void buf_md(buf *b, const herald_host_api *h, herald_str s) {
    static const char special[] = "\\`*_[]<>#~|";
    size_t run = 0;
    for (size_t i = 0; i <= s.len; i++) {
        char c = i < s.len ? s.ptr[i] : 0;
        int sp = i < s.len && c != 0 && strchr(special, c) != NULL;
        int ctl = i < s.len && ((unsigned char)c < 0x20 || c == 0x7f);
        if (i < s.len && !sp && !ctl) continue;
        buf_esc(b, h, VIEW(s.ptr + run, i - run));
        if (sp) {
            buf_lit(b, "\\\\");
            buf_esc(b, h, VIEW(s.ptr + i, 1));
        } else if (ctl) {
            buf_lit(b, " ");
        }
        run = i + 1;
    }
}

/* A URL inside a Markdown link target: parentheses percent-encoded so they cannot end it. */
static void buf_md_url(buf *b, const herald_host_api *h, herald_str url) {
    size_t run = 0;
    for (size_t i = 0; i <= url.len; i++) {
        if (i < url.len && url.ptr[i] != '(' && url.ptr[i] != ')') continue;
        buf_esc(b, h, VIEW(url.ptr + run, i - run));
        if (i < url.len) buf_lit(b, url.ptr[i] == '(' ? "%28" : "%29");
        run = i + 1;
    }
}

/* The mention line: "@<id>" for each resolvable mention (DingTalk needs it in the text to show
 * and notify), "@Name" for the others (shown, not notified). */
static void put_mention_text(buf *b, const herald_host_api *h, const herald_message *m, int markdown) {
    const char *space = "";
    for (size_t i = 0; i < count_mentions(m); i++) {
        const herald_mention *x = &m->mentions[i];
        at_kind k = mention_kind(x);
        if (k == AT_ALL) continue; /* isAtAll needs no text */
        buf_lit(b, space);
        space = " ";
        buf_lit(b, "@");
        if (k != AT_NONE) buf_esc(b, h, x->id);
        else if (markdown) buf_md(b, h, mention_name(x));
        else buf_esc(b, h, mention_name(x));
    }
}

static int has_mention_text(const herald_message *m) {
    for (size_t i = 0; i < count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i]) != AT_ALL) return 1;
    }
    return 0;
}

/* "at":{"atMobiles":[…],"atUserIds":[…],"isAtAll":…} (escaped, a leading comma). */
static void put_at(buf *b, const herald_host_api *h, const herald_message *m) {
    int all = 0;
    buf_lit(b, ",\"at\":{\"atMobiles\":[");
    for (int pass = 0; pass < 2; pass++) {
        const char *sep = "";
        for (size_t i = 0; i < count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x);
            if (k == AT_ALL) all = 1;
            if (k != (pass == 0 ? AT_MOBILE : AT_USERID)) continue;
            buf_lit(b, sep);
            sep = ",";
            buf_json(b, h, x->id);
        }
        buf_lit(b, pass == 0 ? "],\"atUserIds\":[" : "]");
    }
    buf_lit(b, all ? ",\"isAtAll\":true}" : ",\"isAtAll\":false}");
}

/* "<emoji> <title>": the notification preview (markdown.title / actionCard.title). */
static void put_preview_title(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_put(b, "\"", 1);
    buf_esc_c(b, h, severity_emoji(m));
    buf_lit(b, " ");
    buf_esc(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    buf_put(b, "\"", 1);
}

/* The Markdown text of markdown and actionCard messages (escaped, no quotes):
 *   #### 🔴 <title>
 *   <body>
 *   **Severity:** Critical · **Status:** Triggered · **Incident:** #118
 *   - name: value          (one line per label)
 *   [View](…) · [Acknowledge](…)   (markdown only: an actionCard has buttons)
 *   @13800000000 @userid */
static void put_markdown_text(buf *b, const herald_host_api *h, const herald_message *m, int inline_links) {
    buf_lit(b, "#### ");
    buf_esc_c(b, h, severity_emoji(m));
    buf_lit(b, " ");
    buf_esc(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    if (m->body.len > 0) {
        buf_lit(b, "\\n\\n");
        buf_esc(b, h, m->body);
    }
    buf_lit(b, "\\n\\n**Severity:** ");
    buf_lit(b, severity_name(m->severity));
    buf_lit(b, " \xc2\xb7 **Status:** ");
    buf_lit(b, status_name(m->status));
    if (m->incident_number > 0) {
        buf_lit(b, " \xc2\xb7 **Incident:** #");
        buf_u64(b, m->incident_number);
    }
    const char *sep = "\\n\\n";
    for (size_t i = 0; i < count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, sep);
        sep = "\\n";
        buf_lit(b, "- ");
        buf_md(b, h, l->name);
        buf_lit(b, ": ");
        buf_md(b, h, l->value);
    }
    if (inline_links) {
        sep = "\\n\\n";
        for (size_t i = 0; i < count_links(m); i++) {
            const herald_link *l = &m->links[i];
            if (!link_ok(l)) continue;
            buf_lit(b, sep);
            sep = " \xc2\xb7 ";
            buf_lit(b, "[");
            buf_md(b, h, link_label(l));
            buf_lit(b, "](");
            buf_md_url(b, h, l->url);
            buf_lit(b, ")");
        }
    }
    if (has_mention_text(m)) {
        buf_lit(b, "\\n\\n");
        put_mention_text(b, h, m, 1);
    }
}

/* ---- the three message types ----------------------------------------------------------------- */

static void put_action_card(buf *b, const herald_host_api *h, const herald_message *m) {
    size_t n = shown_links(m);
    buf_lit(b, "{\"msgtype\":\"actionCard\",\"actionCard\":{\"title\":");
    put_preview_title(b, h, m);
    buf_lit(b, ",\"text\":\"");
    put_markdown_text(b, h, m, 0);
    /* "1" lays two buttons side by side; more read better stacked ("0"). */
    buf_lit(b, n <= 2 ? "\",\"btnOrientation\":\"1\",\"btns\":[" : "\",\"btnOrientation\":\"0\",\"btns\":[");
    const char *sep = "";
    for (size_t i = 0; i < count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_ok(l)) continue;
        buf_lit(b, sep);
        sep = ",";
        buf_lit(b, "{\"title\":");
        buf_json(b, h, link_label(l));
        buf_lit(b, ",\"actionURL\":");
        buf_json(b, h, l->url);
        buf_lit(b, "}");
    }
    buf_lit(b, "]}}");
}

static void put_markdown(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "{\"msgtype\":\"markdown\",\"markdown\":{\"title\":");
    put_preview_title(b, h, m);
    buf_lit(b, ",\"text\":\"");
    put_markdown_text(b, h, m, 1);
    buf_lit(b, "\"}");
    put_at(b, h, m);
    buf_lit(b, "}");
}

/* Plain text: title, body, summary, labels, "Label: URL" lines, then the @mentions. */
static void put_text(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "{\"msgtype\":\"text\",\"text\":{\"content\":\"");
    buf_esc_c(b, h, severity_emoji(m));
    buf_lit(b, " ");
    buf_esc(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    if (m->body.len > 0) {
        buf_lit(b, "\\n");
        buf_esc(b, h, m->body);
    }
    buf_lit(b, "\\n\\nSeverity: ");
    buf_lit(b, severity_name(m->severity));
    buf_lit(b, " \xc2\xb7 Status: ");
    buf_lit(b, status_name(m->status));
    if (m->incident_number > 0) {
        buf_lit(b, " \xc2\xb7 Incident #");
        buf_u64(b, m->incident_number);
    }
    for (size_t i = 0; i < count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, "\\n");
        buf_esc(b, h, l->name);
        buf_lit(b, ": ");
        buf_esc(b, h, l->value);
    }
    const char *gap = "\\n";
    for (size_t i = 0; i < count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_ok(l)) continue;
        buf_lit(b, gap);
        gap = "";
        buf_lit(b, "\\n");
        buf_esc(b, h, link_label(l));
        buf_lit(b, ": ");
        buf_esc(b, h, l->url);
    }
    if (has_mention_text(m)) {
        buf_lit(b, "\\n");
        put_mention_text(b, h, m, 0);
    }
    buf_lit(b, "\"}");
    put_at(b, h, m);
    buf_lit(b, "}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

/* Turns a host-function failure into an outcome: internal errors may pass, others will not. */
static int32_t host_failure(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *what) {
    char msg[160];
    if (status == NO_MEMORY) snprintf(msg, sizeof msg, "out of memory while %s", what);
    else snprintf(msg, sizeof msg, "the host failed while %s (status %d)", what, (int)status);
    h->set_reason(ex, VIEW(msg, strlen(msg)));
    return status == NO_MEMORY || status == HERALD_ERR_INTERNAL ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

/* sign = urlencode(base64(HMAC-SHA256(key = secret, message = "<timestamp>\n<secret>"))): the
 * secret is the KEY (the reverse of Feishu). Writes the percent-encoded value. */
static int32_t dingtalk_sign(const instance *in, const char *ts, char *out, size_t cap, size_t *out_len) {
    const herald_host_api *h = in->host;
    size_t tlen = strlen(ts), mlen = tlen + 1 + in->secret.len;
    char msg[32 + MAX_SECRET_BYTES], b64[64];
    if (mlen > sizeof msg) return HERALD_ERR_INVALID_ARGUMENT;
    memcpy(msg, ts, tlen);
    msg[tlen] = '\n';
    memcpy(msg + tlen + 1, in->secret.p, in->secret.len);
    uint8_t mac[32];
    size_t b64_len = 0;
    int32_t rc = h->hmac_sha256(VIEW(in->secret.p, in->secret.len), VIEW(msg, mlen), mac);
    wipe(msg, sizeof msg);
    if (rc == HERALD_OK) rc = h->base64_encode(VIEW((const char *)mac, sizeof mac), (uint8_t *)b64, sizeof b64, &b64_len);
    wipe(mac, sizeof mac);
    /* Encoded exactly once: '+', '/' and '=' become %2B, %2F and %3D. */
    if (rc == HERALD_OK) rc = h->percent_encode(VIEW(b64, b64_len), (uint8_t *)out, cap, out_len);
    return rc;
}

#define MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

static int32_t dingtalk_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m)) {
        h->set_reason(ex, SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        h->set_reason(ex, SV("a DingTalk custom robot posts only to the group it was added to, so it cannot send to a recipient; "
                             "route this message to an integration for that group instead"));
        return HERALD_OUTCOME_FAILED;
    }

    /* An actionCard needs a button, and DingTalk notifies @mentioned people only for text and
     * markdown messages: without links, or with people to notify, the card becomes markdown. */
    msg_kind kind = in->kind;
    if (kind == MSG_ACTION_CARD && (shown_links(m) == 0 || has_real_mentions(m))) kind = MSG_MARKDOWN;

    buf b = {0};
    switch (kind) {
    case MSG_MARKDOWN: put_markdown(&b, h, m); break;
    case MSG_TEXT: put_text(&b, h, m); break;
    default: put_action_card(&b, h, m); break;
    }
    if (b.failed) {
        int32_t st = b.failed;
        free(b.p);
        return host_failure(h, ex, st, "building the JSON body");
    }
    if (b.len > MAX_BODY_BYTES) {
        char msg[220];
        snprintf(msg, sizeof msg, "the DingTalk message would be %zu bytes, over the platform's 20000-byte limit; "
                 "shorten the template, the labels or the description", b.len);
        free(b.p);
        h->set_reason(ex, VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }

    /* With 加签: <webhook_url>&timestamp=<Unix ms>&sign=<urlencoded signature>. */
    char url_buf[2048 + 160];
    herald_str url = VIEW(in->url.p, in->url.len);
    if (in->secret.p) {
        int64_t now_ms = h->now_unix_ms();
        char ts[24], sig[160];
        size_t sig_len = 0;
        snprintf(ts, sizeof ts, "%lld", (long long)(now_ms > 0 ? now_ms : 0));
        int32_t rc = dingtalk_sign(in, ts, sig, sizeof sig, &sig_len);
        if (rc != HERALD_OK) {
            free(b.p);
            return host_failure(h, ex, rc, "signing the request");
        }
        int n = snprintf(url_buf, sizeof url_buf, "%s&timestamp=%s&sign=%.*s", in->url.p, ts, (int)sig_len, sig);
        if (n < 0 || (size_t)n >= sizeof url_buf) {
            free(b.p);
            h->set_reason(ex, SV("setting 'webhook_url' is too long to sign (more than 2048 bytes)"));
            return HERALD_OUTCOME_FAILED;
        }
        url = VIEW(url_buf, (size_t)n);
    }

    herald_pair headers[] = {
        {SV("Content-Type"), SV("application/json; charset=utf-8")},
        {SV("User-Agent"), SV("Herald-DingTalk/1.0")},
    };
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = SV("POST");
    req.url = url;
    req.headers = headers;
    req.header_count = sizeof headers / sizeof *headers;
    req.body = VIEW(b.p, b.len);
    int32_t rc = h->set_request(ex, &req);
    free(b.p);
    if (rc != HERALD_OK) return host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* True when the response has a non-empty header `name` (case-insensitive). */
static int has_header(const herald_response *r, const char *name) {
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        if (str_ieq(r->headers[i].name, name) && r->headers[i].value.len > 0) return 1;
    }
    return 0;
}

/* What a DingTalk errcode means for the operator; NULL for codes not in the table. `msg` is
 * the errmsg, which tells the four 310000 cases apart. */
static const char *code_advice(int64_t code, const char *msg) {
    size_t n = strlen(msg);
    switch (code) {
    case 310000:
        if (contains_ci(msg, n, "keyword")) return "the message contains none of the robot's custom keywords: check the integration's keyword matches the robot's security settings";
        if (contains_ci(msg, n, "timestamp")) return "the signature's timestamp was refused: check this host's clock (DingTalk allows one hour)";
        if (contains_ci(msg, n, "sign")) return "the signature did not match: check that 'secret' is the robot's current 加签 secret (or remove it if the robot does not sign)";
        if (contains_ci(msg, n, "ip") || contains_ci(msg, n, "whitelist")) return "this host's IP address is not in the robot's IP allow-list: add Herald's egress address in the robot's security settings";
        return "DingTalk's security check failed: check the robot's keyword, signing and IP settings";
    case 300005: case 400101: case 40035:
        if (code == 40035 && !contains_ci(msg, n, "access_token")) return "DingTalk found a required field missing";
        return "the access_token is not valid: check 'webhook_url' (the robot may have been removed from the group)";
    case 300001: return "check 'webhook_url' and the robot's settings";
    case 400102: return "the robot has been stopped: re-enable it in the group's robot settings";
    case 400106: return "the robot does not exist any more: create a new one and update 'webhook_url'";
    case 400013: return "the group has been dissolved or the robot stopped: check the group and update 'webhook_url'";
    case 400105: return "DingTalk does not support this message type: try another 'msg_type'";
    case 43002: return "DingTalk wants a POST request";
    case 43004: return "DingTalk refused the Content-Type";
    case 430101: case 430102: case 430103: case 430104: return "DingTalk found the content non-compliant: check the template and the incident's text";
    case 460101: case 101002: return "the message is too long: shorten the template, the labels or the description";
    default: return NULL;
    }
}

static int32_t dingtalk_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    char reason[QUOTE_BYTES + 400], said[QUOTE_BYTES + 16];
    said[0] = 0;

    /* DingTalk's verdict is the body's errcode, with errmsg. */
    jval code_v, msg_v;
    int64_t code = 0;
    int is_json = json_member(r->body, "errcode", &code_v) >= 0;
    int has_code = is_json && code_v.type && json_int(&code_v, &code);
    if (is_json && json_member(r->body, "errmsg", &msg_v) == 1 && msg_v.type == 's') quote_string(&msg_v, said, sizeof said);
    if (!is_json) snippet(r->body, said, sizeof said);
    if (r->body_truncated) has_code = 0; /* a cut body proves nothing */

    if (status >= 200 && status <= 299 && has_code && code == 0) return HERALD_OUTCOME_DELIVERED;

    /* Throttling: 130101 / 660026 / 410100 (DingTalk has used all three), any errmsg saying
     * "too fast" / "too many", HTTP 429. After 20 messages a minute DingTalk blocks the robot
     * for 10 minutes, so that is the hint. -1 "system busy" and 5xx retry with the host's backoff. */
    size_t said_len = strlen(said);
    int throttled = status == 429 || (has_code && (code == 130101 || code == 660026 || code == 410100)) ||
                    (has_code && code != 0 && (contains_ci(said, said_len, "too fast") || contains_ci(said, said_len, "too many")));
    int busy = (has_code && code == -1) || (status >= 500 && status <= 599) || status == 408;
    if (throttled || busy) {
        if (has_code) snprintf(reason, sizeof reason, "DingTalk answered HTTP %d with errcode %lld (\"%s\")%s", (int)status, (long long)code, said,
                               throttled ? ": the robot is rate-limited (20 messages a minute, then blocked for 10 minutes)" : "");
        else if (said[0]) snprintf(reason, sizeof reason, "DingTalk answered HTTP %d%s: %s", (int)status, throttled ? " (rate-limited)" : "", said);
        else snprintf(reason, sizeof reason, "DingTalk answered HTTP %d%s with an empty body", (int)status, throttled ? " (rate-limited)" : "");
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        /* A 429's own Retry-After (which the host reads when no hint is set) beats the default. */
        if (throttled && (status != 429 || !has_header(r, "Retry-After"))) h->set_retry_after(ex, THROTTLE_MS);
        return HERALD_OUTCOME_RETRY;
    }

    if (has_code && code != 0) {
        const char *advice = code_advice(code, said);
        if (advice) snprintf(reason, sizeof reason, "DingTalk refused the message with errcode %lld (\"%s\"): %s", (long long)code, said, advice);
        else snprintf(reason, sizeof reason, "DingTalk refused the message with errcode %lld (\"%s\"), a code the dingtalk plugin does not know", (long long)code, said);
    } else if (has_code) {
        snprintf(reason, sizeof reason, "DingTalk answered HTTP %d with errcode 0, which is not a success the dingtalk plugin trusts", (int)status);
    } else if (status < 100 || status > 599) {
        snprintf(reason, sizeof reason, "DingTalk answered with an invalid HTTP status %d", (int)status);
    } else if (status >= 200 && status <= 299) {
        snprintf(reason, sizeof reason, "DingTalk answered HTTP %d without an errcode the dingtalk plugin understands, so delivery is unconfirmed%s%s",
                 (int)status, said[0] ? ": " : "", said);
    } else {
        snprintf(reason, sizeof reason, "DingTalk answered HTTP %d%s%s%s", (int)status,
                 status >= 300 && status <= 399 ? " (a redirect: check 'webhook_url')" : status == 404 ? " (check 'webhook_url')" : "",
                 said[0] ? ": " : " with an empty body", said);
    }
    h->set_reason(ex, VIEW(reason, strlen(reason)));
    return HERALD_OUTCOME_FAILED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"webhook_url\"],\"properties\":{"
    "\"webhook_url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\","
    "\"title\":\"Webhook URL\",\"description\":\"The custom robot's webhook address, as DingTalk shows it "
    "(https://oapi.dingtalk.com/robot/send?access_token=...).\","
    "\"examples\":[\"https://oapi.dingtalk.com/robot/send?access_token=0000000000000000000000000000000000000000000000000000000000000000\"]},"
    "\"secret\":{\"type\":\"string\",\"writeOnly\":true,\"minLength\":1,\"maxLength\":256,"
    "\"title\":\"Signing secret\",\"description\":\"The robot's 加签 (additional signature) secret, SEC...; "
    "leave out when the robot does not use signing.\"},"
    "\"msg_type\":{\"type\":\"string\",\"enum\":[\"actionCard\",\"markdown\",\"text\"],\"default\":\"actionCard\","
    "\"title\":\"Message type\",\"description\":\"actionCard: Markdown with a button per link (sent as markdown when it "
    "@mentions someone); markdown: links inline; text: plain text.\"}"
    "}}";

static const herald_str egress_hosts[] = {LIT("oapi.dingtalk.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = LIT("dingtalk"),
    .name = LIT("DingTalk custom robot"),
    .version = LIT("1.0.0"),
    .license = LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_MARKDOWN,
    .size_unit = HERALD_SIZE_BYTES,
    .size_limit = 4000,
    /* Instances are read-only after instance_create, so hooks may run in parallel. Keyword
     * security is a robot setting the core satisfies. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS | HERALD_CAP_REQUIRES_KEYWORD,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title is the heading and severity/status/labels follow, so the body is the text. */
    .default_template = LIT("{{description}}"),
    .instance_create = dingtalk_create,
    .instance_destroy = dingtalk_destroy,
    .prepare = dingtalk_prepare,
    .on_response = dingtalk_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = SV("the dingtalk plugin speaks Herald plugin ABI 1 only");
        return NULL;
    }
    if (!str_eq(negotiate->product, "herald")) {
        negotiate->refusal = SV("the dingtalk plugin loads only into Herald (product \"herald\")");
        return NULL;
    }
    descriptor.abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return &descriptor;
}
