/*
 * feishu.c — Herald's Feishu / Lark custom group bot channel.
 *
 * POSTs one message per notification to a custom bot's webhook
 * (https://open.feishu.cn/open-apis/bot/v2/hook/<id>, or open.larksuite.com for Lark). By default
 * the message is an interactive card (JSON 1.0): a header coloured by severity, the rendered body
 * as Markdown, the incident's labels as fields, @mentions, and link buttons (view, acknowledge,
 * snooze, close) that open Herald's signed URLs in the browser. `msg_type` selects the plainer
 * `post` (rich text) or `text` messages instead. With a `secret` the body carries the bot's
 * `timestamp` + `sign`. See README.md for the payloads and what each answer means.
 *
 * Feishu answers most errors with HTTP 200 and a `code` in the body, so on_response reads the
 * body's `code` (legacy `StatusCode`) and never reports a body it does not understand as sent.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o feishu.so Plugins/feishu/feishu.c
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
    /* Feishu refuses request bodies over 20 KB (custom bot guide, "limits"). */
    MAX_BODY_BYTES = 20 * 1024,
    /* Longest provider message quoted in a reason. */
    QUOTE_BYTES = 200,
    MAX_SECRET_BYTES = 256,
    MAX_MENTION_ID = 128,
};

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

/* Feishu's answers are small flat objects ({"code":0,"msg":"success","data":{}}). The reader
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

typedef enum { MSG_INTERACTIVE = 0, MSG_POST = 1, MSG_TEXT = 2 } msg_kind;

static const char *const msg_kind_names[] = {"interactive", "post", "text"};

/* Read-only after instance_create, so hooks may run concurrently. */
typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    ostr url;
    ostr secret; /* p == NULL: the bot has no signature check */
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

/* The host part of an http(s) URL (no userinfo handling needed: Feishu URLs have none). */
static herald_str url_host(const ostr *url) {
    const char *p = url->p;
    size_t skip = str_ieq(VIEW(p, url->len < 8 ? url->len : 8), "https://") ? 8 : 7;
    if (url->len < skip) return SV("");
    const char *host = p + skip;
    return VIEW(host, strcspn(host, ":/?#"));
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
        if (n.len <= 64 && is_token_text(&n)) fail(err, "setting '%s' is not a setting of the feishu plugin", name);
        else fail(err, "the configuration has a setting the feishu plugin does not know");
        goto done;
    }

    if ((got = read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) fail(err, "setting 'webhook_url' is required: paste the custom bot's webhook address");
        goto done;
    }
    int url_ok = (in->url.len > 7 && str_ieq(VIEW(in->url.p, 7), "http://")) ||
                 (in->url.len > 8 && str_ieq(VIEW(in->url.p, 8), "https://"));
    if (!url_ok || !is_token_text(&in->url) || url_host(&in->url).len == 0) {
        fail(err, "setting 'webhook_url' must be the bot's https:// webhook address, without spaces");
        goto done;
    }
    herald_str host = url_host(&in->url);
    int loopback = str_ieq(host, "localhost") || (host.len >= 4 && memcmp(host.ptr, "127.", 4) == 0);
    if (!loopback && !str_ieq(host, "open.feishu.cn") && !str_ieq(host, "open.larksuite.com")) {
        char line[240];
        snprintf(line, sizeof line, "setting 'webhook_url' points at %.*s, not open.feishu.cn or open.larksuite.com; "
                 "Herald sends there only if the integration's egress.allow lists it", (int)(host.len > 100 ? 100 : host.len), host.ptr);
        h->log(HERALD_LOG_WARNING, VIEW(line, strlen(line)));
    }

    if ((got = read_opt(h, "secret", &in->secret, err)) < 0) goto done;
    if (got == 1 && (in->secret.len == 0 || in->secret.len > MAX_SECRET_BYTES || !is_token_text(&in->secret))) {
        fail(err, "setting 'secret' must be the bot's signing secret: 1 to 256 printable characters without spaces");
        goto done;
    }

    if ((got = read_opt(h, "msg_type", &kind, err)) < 0) goto done;
    in->kind = MSG_INTERACTIVE;
    if (got == 1) {
        size_t i = 0;
        while (i < 3 && strcmp(kind.p, msg_kind_names[i]) != 0) i++;
        if (i == 3) { fail(err, "setting 'msg_type' must be \"interactive\", \"post\" or \"text\""); goto done; }
        in->kind = (msg_kind)i;
    }
    rc = 0;
done:
    ostr_free(&names, 0);
    ostr_free(&kind, 0);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

static int32_t feishu_create(const herald_host_api *host, herald_str config_json, void **out_instance) {
    (void)config_json; /* read setting by setting with config_get instead */
    if (host == NULL || out_instance == NULL) return -1;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size))
            host->set_error(SV("the host's function table lacks config_get/config_keys, which the feishu plugin needs"));
        return -1;
    }
    instance *in = calloc(1, sizeof *in);
    if (!in) {
        host->set_error(SV("out of memory while creating the feishu instance"));
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

static void feishu_destroy(void *inst) { instance_free(inst); }

/* ---- message pieces -------------------------------------------------------------------------- */

static const char *severity_name(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

/* Header template colour: red / orange / blue by severity; green once the incident is over. */
static const char *header_colour(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "green";
    static const char *const colours[] = {"red", "orange", "blue"};
    return m->severity >= 1 && m->severity <= 3 ? colours[m->severity - 1] : "grey";
}

/* The severity marker for formats without colour. */
static const char *severity_emoji(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "\xe2\x9c\x85"; /* ✅ */
    static const char *const marks[] = {"\xf0\x9f\x94\xb4", "\xf0\x9f\x9f\xa0", "\xf0\x9f\x94\xb5"}; /* 🔴 🟠 🔵 */
    return m->severity >= 1 && m->severity <= 3 ? marks[m->severity - 1] : "\xe2\x9a\xaa"; /* ⚪ */
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

/* How a mention is written. Feishu identifies people by open_id / user_id (text, post, card)
 * and, in cards only, by email; "all" mentions everyone. */
typedef enum { AT_NONE, AT_ID, AT_EMAIL, AT_ALL } at_kind;

static int id_chars_ok(herald_str id, int email) {
    if (id.len == 0 || id.len > MAX_MENTION_ID || id.ptr == NULL) return 0;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.ptr[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (email && (c == '@' || c == '+')) ok = 1;
        if (!ok) return 0;
    }
    return 1;
}

static at_kind mention_kind(const herald_mention *x, int card) {
    if (str_eq(x->id_kind, "all")) return AT_ALL;
    if ((str_eq(x->id_kind, "open_id") || str_eq(x->id_kind, "user_id")) && id_chars_ok(x->id, 0))
        return str_eq(x->id, "all") ? AT_ALL : AT_ID;
    if (card && str_eq(x->id_kind, "email") && id_chars_ok(x->id, 1) && memchr(x->id.ptr, '@', x->id.len)) return AT_EMAIL;
    return AT_NONE;
}

/* The name shown for a mention Feishu cannot resolve: "@Name" (or the raw id). */
static herald_str mention_name(const herald_mention *x) {
    return x->display_name.len > 0 && x->display_name.ptr ? x->display_name : x->id;
}

static size_t count_mentions(const herald_message *m) { return m->mentions ? m->mention_count : 0; }
static size_t count_links(const herald_message *m) { return m->links ? m->link_count : 0; }
static size_t count_labels(const herald_message *m) { return m->labels ? m->label_count : 0; }

/* "Severity: Critical · Status: Triggered · Incident #12" (escaped, no quotes). */
static void put_summary(buf *b, const herald_message *m) {
    buf_lit(b, "Severity: ");
    buf_lit(b, severity_name(m->severity));
    buf_lit(b, " \xc2\xb7 Status: ");
    buf_lit(b, status_name(m->status));
    if (m->incident_number > 0) {
        buf_lit(b, " \xc2\xb7 Incident #");
        buf_u64(b, m->incident_number);
    }
}

/* "name: value" of a label, escaped, no quotes. */
static void put_label_text(buf *b, const herald_host_api *h, const herald_pair *l) {
    buf_esc(b, h, l->name);
    buf_lit(b, ": ");
    buf_esc(b, h, l->value);
}

/* ---- the three message types ----------------------------------------------------------------- */

/* Card JSON 1.0 (rendered by every Feishu/Lark client; 2.0 needs client 7.20+). */
static void put_card(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "\"msg_type\":\"interactive\",\"card\":{\"config\":{\"wide_screen_mode\":true,\"enable_forward\":true},"
               "\"header\":{\"template\":\"");
    buf_lit(b, header_colour(m));
    buf_lit(b, "\",\"title\":{\"tag\":\"plain_text\",\"content\":");
    buf_json(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    buf_lit(b, "}},\"elements\":[");

    /* The body, as the template rendered it (Markdown). */
    const char *sep = "";
    if (m->body.len > 0) {
        buf_lit(b, "{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\",\"content\":");
        buf_json(b, h, m->body);
        buf_lit(b, "}}");
        sep = ",";
    }

    /* Fields: severity, status, incident number, then the labels (plain text: no escaping
     * questions for raw label values). */
    buf_lit(b, sep);
    buf_lit(b, "{\"tag\":\"div\",\"fields\":[{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Severity**\\n");
    buf_lit(b, severity_name(m->severity));
    buf_lit(b, "\"}},{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Status**\\n");
    buf_lit(b, status_name(m->status));
    buf_lit(b, "\"}}");
    if (m->incident_number > 0) {
        buf_lit(b, ",{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Incident**\\n#");
        buf_u64(b, m->incident_number);
        buf_lit(b, "\"}}");
    }
    for (size_t i = 0; i < count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, ",{\"is_short\":true,\"text\":{\"tag\":\"plain_text\",\"content\":\"");
        put_label_text(b, h, l);
        buf_lit(b, "\"}}");
    }
    buf_lit(b, "]}");

    /* Mentions: <at id=…></at> in lark_md; names Feishu cannot resolve as plain text. */
    size_t resolved = 0, unresolved = 0;
    for (size_t i = 0; i < count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i], 1) == AT_NONE) unresolved++;
        else resolved++;
    }
    if (resolved > 0) {
        buf_lit(b, ",{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\",\"content\":\"");
        const char *space = "";
        for (size_t i = 0; i < count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 1);
            if (k == AT_NONE) continue;
            buf_lit(b, space);
            space = " ";
            if (k == AT_ALL) buf_lit(b, "<at id=all></at>");
            else {
                buf_lit(b, k == AT_EMAIL ? "<at email=" : "<at id=");
                buf_esc(b, h, x->id);
                buf_lit(b, "></at>");
            }
        }
        buf_lit(b, "\"}}");
    }
    if (unresolved > 0) {
        buf_lit(b, ",{\"tag\":\"div\",\"text\":{\"tag\":\"plain_text\",\"content\":\"");
        const char *space = "";
        for (size_t i = 0; i < count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            if (mention_kind(x, 1) != AT_NONE) continue;
            buf_lit(b, space);
            space = " ";
            buf_lit(b, "@");
            buf_esc(b, h, mention_name(x));
        }
        buf_lit(b, "\"}}");
    }

    /* Link buttons: a custom bot gets no callbacks, so every button opens its URL. */
    size_t shown = 0;
    for (size_t i = 0; i < count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_ok(l)) continue;
        buf_lit(b, shown == 0 ? ",{\"tag\":\"action\",\"actions\":[" : ",");
        buf_lit(b, "{\"tag\":\"button\",\"text\":{\"tag\":\"plain_text\",\"content\":");
        buf_json(b, h, link_label(l));
        buf_lit(b, "},\"type\":\"");
        buf_lit(b, l->kind == HERALD_LINK_VIEW || l->kind == HERALD_LINK_ACKNOWLEDGE ? "primary"
                   : l->kind == HERALD_LINK_CLOSE ? "danger" : "default");
        buf_lit(b, "\",\"url\":");
        buf_json(b, h, l->url);
        buf_lit(b, "}");
        shown++;
    }
    if (shown > 0) buf_lit(b, "]}");
    buf_lit(b, "]}");
}

/* One post paragraph holding one text run. */
static void post_text_line(buf *b, const herald_host_api *h, const char **sep, herald_str text) {
    buf_lit(b, *sep);
    *sep = ",";
    buf_lit(b, "[{\"tag\":\"text\",\"text\":");
    buf_json(b, h, text);
    buf_lit(b, "}]");
}

/* Rich text: {"post":{"zh_cn":{"title":…,"content":[[tags…],…]}}}, one paragraph per line. */
static void put_post(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "\"msg_type\":\"post\",\"content\":{\"post\":{\"zh_cn\":{\"title\":\"");
    buf_esc_c(b, h, severity_emoji(m));
    buf_lit(b, " ");
    buf_esc(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    buf_lit(b, "\",\"content\":[");
    const char *sep = "";

    /* The body, split into paragraphs at line breaks ("\r\n" counts as one). */
    const char *p = m->body.ptr;
    size_t n = p ? m->body.len : 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '\n') continue;
        size_t end = i;
        if (end > start && p[end - 1] == '\r') end--;
        if (!(i == n && start == n)) post_text_line(b, h, &sep, VIEW(p + start, end - start));
        start = i + 1;
    }

    buf_lit(b, sep);
    sep = ",";
    buf_lit(b, "[{\"tag\":\"text\",\"text\":\"");
    put_summary(b, m);
    buf_lit(b, "\"}]");

    for (size_t i = 0; i < count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, ",[{\"tag\":\"text\",\"text\":\"");
        put_label_text(b, h, l);
        buf_lit(b, "\"}]");
    }

    size_t shown = 0;
    for (size_t i = 0; i < count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_ok(l)) continue;
        buf_lit(b, shown == 0 ? ",[" : ",{\"tag\":\"text\",\"text\":\" | \"},");
        buf_lit(b, "{\"tag\":\"a\",\"text\":");
        buf_json(b, h, link_label(l));
        buf_lit(b, ",\"href\":");
        buf_json(b, h, l->url);
        buf_lit(b, "}");
        shown++;
    }
    if (shown > 0) buf_lit(b, "]");

    if (count_mentions(m) > 0) {
        buf_lit(b, ",[");
        for (size_t i = 0; i < count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 0);
            if (i > 0) buf_lit(b, ",{\"tag\":\"text\",\"text\":\" \"},");
            if (k == AT_ALL) buf_lit(b, "{\"tag\":\"at\",\"user_id\":\"all\"}");
            else if (k == AT_ID) {
                buf_lit(b, "{\"tag\":\"at\",\"user_id\":");
                buf_json(b, h, x->id);
                buf_lit(b, "}");
            } else {
                buf_lit(b, "{\"tag\":\"text\",\"text\":\"@");
                buf_esc(b, h, mention_name(x));
                buf_lit(b, "\"}");
            }
        }
        buf_lit(b, "]");
    }
    buf_lit(b, "]}}}");
}

/* Plain text: title, body, summary, labels, "Label: URL" lines, then <at user_id="…"></at>. */
static void put_text(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "\"msg_type\":\"text\",\"content\":{\"text\":\"");
    buf_esc_c(b, h, severity_emoji(m));
    buf_lit(b, " ");
    buf_esc(b, h, m->title.len > 0 ? m->title : SV("Herald incident"));
    if (m->body.len > 0) {
        buf_lit(b, "\\n");
        buf_esc(b, h, m->body);
    }
    buf_lit(b, "\\n\\n");
    put_summary(b, m);
    for (size_t i = 0; i < count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, "\\n");
        put_label_text(b, h, l);
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
    if (count_mentions(m) > 0) {
        buf_lit(b, "\\n");
        for (size_t i = 0; i < count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 0);
            if (i > 0) buf_lit(b, " ");
            if (k == AT_ALL) buf_lit(b, "<at user_id=\\\"all\\\"></at>");
            else if (k == AT_ID) {
                buf_lit(b, "<at user_id=\\\"");
                buf_esc(b, h, x->id);
                buf_lit(b, "\\\"></at>");
            } else {
                buf_lit(b, "@");
                buf_esc(b, h, mention_name(x));
            }
        }
    }
    buf_lit(b, "\"}");
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

/* sign = base64(HMAC-SHA256(key = "<timestamp>\n<secret>", message = "")): the string to sign
 * is the KEY and the message is empty (the reverse of DingTalk). Writes 44 base64 bytes. */
static int32_t feishu_sign(const instance *in, const char *ts, char *out, size_t cap, size_t *out_len) {
    const herald_host_api *h = in->host;
    size_t tlen = strlen(ts), klen = tlen + 1 + in->secret.len;
    char key[32 + MAX_SECRET_BYTES];
    if (klen > sizeof key) return HERALD_ERR_INVALID_ARGUMENT;
    memcpy(key, ts, tlen);
    key[tlen] = '\n';
    memcpy(key + tlen + 1, in->secret.p, in->secret.len);
    uint8_t mac[32];
    int32_t rc = h->hmac_sha256(VIEW(key, klen), SV(""), mac);
    wipe(key, sizeof key);
    if (rc == HERALD_OK) rc = h->base64_encode(VIEW((const char *)mac, sizeof mac), (uint8_t *)out, cap, out_len);
    wipe(mac, sizeof mac);
    return rc;
}

#define MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

static int32_t feishu_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m)) {
        h->set_reason(ex, SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        h->set_reason(ex, SV("a Feishu custom bot posts only to the group it was added to, so it cannot send to a recipient; "
                             "route this message to an integration for that chat instead"));
        return HERALD_OUTCOME_FAILED;
    }

    buf b = {0};
    buf_lit(&b, "{");
    if (in->secret.p) {
        /* Unix SECONDS; Feishu accepts one hour either side of its clock. */
        int64_t now_ms = h->now_unix_ms();
        char ts[24], sig[64];
        size_t sig_len = 0;
        snprintf(ts, sizeof ts, "%lld", (long long)(now_ms > 0 ? now_ms / 1000 : 0));
        int32_t rc = feishu_sign(in, ts, sig, sizeof sig, &sig_len);
        if (rc != HERALD_OK) {
            free(b.p);
            return host_failure(h, ex, rc, "signing the message");
        }
        buf_lit(&b, "\"timestamp\":\"");
        buf_lit(&b, ts);
        buf_lit(&b, "\",\"sign\":\"");
        buf_put(&b, sig, sig_len); /* base64: nothing to escape */
        buf_lit(&b, "\",");
    }
    switch (in->kind) {
    case MSG_POST: put_post(&b, h, m); break;
    case MSG_TEXT: put_text(&b, h, m); break;
    default: put_card(&b, h, m); break;
    }
    buf_lit(&b, "}");
    if (b.failed) {
        int32_t st = b.failed;
        free(b.p);
        return host_failure(h, ex, st, "building the JSON body");
    }
    if (b.len > MAX_BODY_BYTES) {
        char msg[220];
        snprintf(msg, sizeof msg, "the Feishu message would be %zu bytes, over the platform's 20 KB request limit; "
                 "shorten the template, the labels or the description", b.len);
        free(b.p);
        h->set_reason(ex, VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }

    herald_pair headers[] = {
        {SV("Content-Type"), SV("application/json; charset=utf-8")},
        {SV("User-Agent"), SV("Herald-Feishu/1.0")},
    };
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = SV("POST");
    req.url = VIEW(in->url.p, in->url.len);
    req.headers = headers;
    req.header_count = sizeof headers / sizeof *headers;
    req.body = VIEW(b.p, b.len);
    int32_t rc = h->set_request(ex, &req);
    free(b.p);
    if (rc != HERALD_OK) return host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* First header named `name` (case-insensitive), or an empty view. */
static herald_str find_header(const herald_response *r, const char *name) {
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        if (str_ieq(r->headers[i].name, name)) return r->headers[i].value;
    }
    return SV("");
}

/* A small non-negative decimal header value (seconds), or -1. */
static int64_t header_seconds(herald_str v) {
    size_t i = 0;
    while (i < v.len && v.ptr[i] == ' ') i++;
    if (i == v.len) return -1;
    int64_t x = 0;
    for (; i < v.len && v.ptr[i] != ' '; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9' || x > 86400) return -1;
        x = x * 10 + (v.ptr[i] - '0');
    }
    return x;
}

/* What a non-zero Feishu code means for the operator; NULL for codes not in the table. */
static const char *code_advice(int64_t code) {
    switch (code) {
    case 9499: return "Feishu found the request malformed or too large";
    case 19001: return "the webhook address is not valid any more: check 'webhook_url' (the bot may have been removed from the group)";
    case 19002: return "Feishu refused a parameter of the request";
    case 19021: return "check that 'secret' is the bot's current signing secret (or remove it if the bot does not sign) "
                       "and that this host's clock is right";
    case 19022: return "this host's IP address is not in the bot's IP allow-list: add Herald's egress address in the bot's security settings";
    case 19024: return "the message contains none of the bot's custom keywords: check the integration's keyword matches the bot's security settings";
    case 10208: return "Feishu does not support this message type for custom bots: try another 'msg_type'";
    default: return NULL;
    }
}

static int32_t feishu_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    char reason[QUOTE_BYTES + 400], said[QUOTE_BYTES + 16];
    said[0] = 0;

    /* Feishu's verdict is the body's code (legacy StatusCode), with msg (legacy StatusMessage). */
    jval code_v, msg_v;
    int64_t code = 0;
    int is_json = json_member(r->body, "code", &code_v) >= 0;
    int has_code = is_json && code_v.type && json_int(&code_v, &code);
    if (is_json && !code_v.type && json_member(r->body, "StatusCode", &code_v) == 1) has_code = json_int(&code_v, &code);
    if (is_json && (json_member(r->body, "msg", &msg_v) == 1 || json_member(r->body, "StatusMessage", &msg_v) == 1) && msg_v.type == 's')
        quote_string(&msg_v, said, sizeof said);
    if (!is_json) snippet(r->body, said, sizeof said);
    if (r->body_truncated) has_code = 0; /* a cut body proves nothing */

    if (status >= 200 && status <= 299 && has_code && code == 0) return HERALD_OUTCOME_DELIVERED;

    /* Throttling: 11232 (frequency limited), 9499 "too many request", HTTP 429. Feishu sends no
     * retry hint of its own; an x-ogw-ratelimit-reset or Retry-After header is honoured. */
    int throttled = status == 429 || (has_code && code == 11232) ||
                    (has_code && code == 9499 && contains_ci(said, strlen(said), "too many"));
    if (throttled || (status >= 500 && status <= 599) || status == 408) {
        if (has_code) snprintf(reason, sizeof reason, "Feishu answered HTTP %d with code %lld (\"%s\")%s", (int)status, (long long)code, said,
                               throttled ? ": the bot is rate-limited (100 messages a minute, 5 a second)" : "");
        else if (said[0]) snprintf(reason, sizeof reason, "Feishu answered HTTP %d%s: %s", (int)status, throttled ? " (rate-limited)" : "", said);
        else snprintf(reason, sizeof reason, "Feishu answered HTTP %d%s with an empty body", (int)status, throttled ? " (rate-limited)" : "");
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        int64_t secs = header_seconds(find_header(r, "x-ogw-ratelimit-reset"));
        if (secs > 0) h->set_retry_after(ex, (uint64_t)secs * 1000);
        return HERALD_OUTCOME_RETRY;
    }

    if (has_code && code != 0) {
        const char *advice = code_advice(code);
        if (advice) snprintf(reason, sizeof reason, "Feishu refused the message with code %lld (\"%s\"): %s", (long long)code, said, advice);
        else snprintf(reason, sizeof reason, "Feishu refused the message with code %lld (\"%s\"), a code the feishu plugin does not know", (long long)code, said);
    } else if (has_code) {
        snprintf(reason, sizeof reason, "Feishu answered HTTP %d with code 0, which is not a success the feishu plugin trusts", (int)status);
    } else if (status < 100 || status > 599) {
        snprintf(reason, sizeof reason, "Feishu answered with an invalid HTTP status %d", (int)status);
    } else if (status >= 200 && status <= 299) {
        snprintf(reason, sizeof reason, "Feishu answered HTTP %d without a result code the feishu plugin understands, so delivery is unconfirmed%s%s", (int)status,
                 said[0] ? ": " : "", said);
    } else {
        snprintf(reason, sizeof reason, "Feishu answered HTTP %d%s%s%s", (int)status,
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
    "\"title\":\"Webhook URL\",\"description\":\"The custom bot's webhook address, as Feishu or Lark shows it "
    "(https://open.feishu.cn/open-apis/bot/v2/hook/... or https://open.larksuite.com/open-apis/bot/v2/hook/...).\","
    "\"examples\":[\"https://open.feishu.cn/open-apis/bot/v2/hook/00000000-0000-0000-0000-000000000000\"]},"
    "\"secret\":{\"type\":\"string\",\"writeOnly\":true,\"minLength\":1,\"maxLength\":256,"
    "\"title\":\"Signing secret\",\"description\":\"The bot's signature-verification secret (security setting "
    "'Set signature verification'); leave out when the bot does not check signatures.\"},"
    "\"msg_type\":{\"type\":\"string\",\"enum\":[\"interactive\",\"post\",\"text\"],\"default\":\"interactive\","
    "\"title\":\"Message type\",\"description\":\"interactive: a card with a coloured header, fields and buttons; "
    "post: rich text with links; text: plain text.\"}"
    "}}";

static const herald_str egress_hosts[] = {LIT("open.feishu.cn"), LIT("open.larksuite.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = LIT("feishu"),
    .name = LIT("Feishu / Lark custom bot"),
    .version = LIT("1.0.0"),
    .license = LIT("Apache-2.0"),
    /* The card's body is lark_md, Feishu's Markdown. */
    .text_format = HERALD_FORMAT_MARKDOWN,
    .size_unit = HERALD_SIZE_BYTES,
    .size_limit = 4000,
    /* Instances are read-only after instance_create, so hooks may run in parallel. Keyword
     * security is a bot setting the core satisfies. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS | HERALD_CAP_REQUIRES_KEYWORD,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title is the card header and severity/status are fields, so the body is the text. */
    .default_template = LIT("{{description}}"),
    .instance_create = feishu_create,
    .instance_destroy = feishu_destroy,
    .prepare = feishu_prepare,
    .on_response = feishu_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = SV("the feishu plugin speaks Herald plugin ABI 1 only");
        return NULL;
    }
    if (!str_eq(negotiate->product, "herald")) {
        negotiate->refusal = SV("the feishu plugin loads only into Herald (product \"herald\")");
        return NULL;
    }
    descriptor.abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return &descriptor;
}
