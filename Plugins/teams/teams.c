/*
 * teams.c — Herald's Microsoft Teams channel (a Power Automate "Workflows" webhook).
 *
 * POSTs each notification to the Workflows URL of the template "Post to a channel when a webhook
 * request is received" as an Adaptive Card 1.4: the title coloured by severity, a status line,
 * the body, the labels as a FactSet, @mentions, and Action.OpenUrl buttons for the links. The
 * flow answers 202 Accepted and runs later, so card problems show in the flow's run history,
 * not in the answer. Legacy Office 365 connector URLs are refused. See README.md.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o teams.so Plugins/teams/teams.c
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
    SNIPPET_BYTES = 200,
    MAX_MESSAGE = 300,
    JSON_MAX_DEPTH = 64,
    MAX_PROVIDER_ID = 200,
    /* Teams refuses messages over about 28 KB; the whole card counts. */
    CARD_LIMIT = 28 * 1024,
    /* What the host may render into the body: the card's scaffolding, labels and buttons need
     * the rest of the 28 KB. */
    BODY_LIMIT = 24 * 1024,
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

static int str_eq(herald_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

static int str_ieq_prefix(herald_str a, const char *prefix) {
    size_t n = strlen(prefix);
    if (a.len < n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)prefix[i])) return 0;
    }
    return 1;
}

static int is_visible_ascii(herald_str s) {
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x21 || c > 0x7e) return 0;
    }
    return 1;
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

static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (p && n--) *v++ = 0;
}

static int fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 200, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- growable output buffer ------------------------------------------------------------------ */

typedef struct {
    char *p; /* owned; freed by the caller with free() */
    size_t len, cap;
    int32_t failed; /* 0, NO_MEMORY, or a negative herald_status from a host function */
} buf;

#define NO_MEMORY 1

static int buf_reserve(buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 4 - b->len) {
        b->failed = NO_MEMORY;
        return -1;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
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

/* Appends `s` escaped for a JSON string (no quotes), by the host: at most 6x the input. */
static void buf_json_raw(buf *b, const herald_host_api *h, herald_str s) {
    if (s.len == 0 || s.ptr == NULL) return;
    size_t got = 0;
    if (s.len > SIZE_MAX / 4 / 6) b->failed = NO_MEMORY;
    if (buf_reserve(b, s.len * 6) != 0) return;
    int32_t rc = h->json_escape(s, (uint8_t *)b->p + b->len, b->cap - b->len, &got);
    if (rc != HERALD_OK || got > b->cap - b->len) {
        b->failed = rc != HERALD_OK ? rc : HERALD_ERR_INTERNAL;
        return;
    }
    b->len += got;
}

static void buf_json(buf *b, const herald_host_api *h, herald_str s) {
    buf_put(b, "\"", 1);
    buf_json_raw(b, h, s);
    buf_put(b, "\"", 1);
}

static void buf_json_c(buf *b, const herald_host_api *h, const char *s) { buf_json(b, h, VIEW(s, strlen(s))); }

/* ---- a small, careful JSON reader (for the error bodies) ---------------------------------- */

typedef struct {
    const char *p, *end;
} jspan;

static const char *j_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Returns the end of the JSON value starting at p (after leading whitespace), or NULL. */
static const char *j_skip(const char *p, const char *e, int depth) {
    p = j_ws(p, e);
    if (p >= e || depth > JSON_MAX_DEPTH) return NULL;
    char c = *p;
    if (c == '"') {
        for (p++; p < e; p++) {
            if (*p == '\\') {
                if (++p >= e) return NULL;
            } else if (*p == '"') {
                return p + 1;
            } else if ((unsigned char)*p < 0x20) {
                return NULL;
            }
        }
        return NULL;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p = j_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (c == '{') {
                p = j_ws(p, e);
                if (p >= e || *p != '"') return NULL;
                if (!(p = j_skip(p, e, depth + 1))) return NULL;
                p = j_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            if (!(p = j_skip(p, e, depth + 1))) return NULL;
            p = j_ws(p, e);
            if (p >= e) return NULL;
            if (*p == ',') { p++; continue; }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    const char *s = p;
    while (p < e && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '+' || *p == '.' || *p == 'E')) p++;
    return p > s ? p : NULL;
}

static jspan j_root(herald_str body) {
    jspan none = {NULL, NULL};
    if (body.ptr == NULL || body.len == 0) return none;
    const char *e = body.ptr + body.len, *p = j_ws(body.ptr, e);
    const char *end = j_skip(p, e, 0);
    if (!end || j_ws(end, e) != e) return none;
    return (jspan){p, end};
}

/* Member `key` of object `obj` (keys compared byte-wise, escapes not decoded). */
static int j_get(jspan obj, const char *key, jspan *out) {
    if (!obj.p || obj.p >= obj.end || *obj.p != '{') return 0;
    size_t klen = strlen(key);
    const char *p = j_ws(obj.p + 1, obj.end), *e = obj.end;
    if (p < e && *p == '}') return 0;
    while (p < e && *p == '"') {
        const char *kend = j_skip(p, e, 1);
        if (!kend) return 0;
        int match = (size_t)(kend - p) == klen + 2 && memcmp(p + 1, key, klen) == 0;
        p = j_ws(kend, e);
        if (p >= e || *p != ':') return 0;
        const char *v = j_ws(p + 1, e);
        const char *vend = j_skip(v, e, 1);
        if (!vend) return 0;
        if (match) {
            *out = (jspan){v, vend};
            return 1;
        }
        p = j_ws(vend, e);
        if (p >= e || *p != ',') return 0;
        p = j_ws(p + 1, e);
    }
    return 0;
}

static void put_utf8(char *out, size_t cap, size_t *o, uint32_t cp) {
    char tmp[4];
    size_t n;
    if (cp < 0x80) { tmp[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { tmp[0] = (char)(0xc0 | (cp >> 6)); tmp[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) { tmp[0] = (char)(0xe0 | (cp >> 12)); tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); tmp[2] = (char)(0x80 | (cp & 0x3f)); n = 3; }
    else { tmp[0] = (char)(0xf0 | (cp >> 18)); tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f)); tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); tmp[3] = (char)(0x80 | (cp & 0x3f)); n = 4; }
    if (*o + n < cap) {
        memcpy(out + *o, tmp, n);
        *o += n;
    }
}

static int hex4(const char *p, const char *e, uint32_t *out) {
    if (e - p < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Decodes a JSON string into out (NUL-terminated; control characters become spaces). */
static int j_str(jspan v, char *out, size_t cap) {
    if (cap == 0) return 0;
    out[0] = 0;
    if (!v.p || v.end - v.p < 2 || *v.p != '"') return 0;
    const char *p = v.p + 1, *e = v.end - 1;
    size_t o = 0;
    while (p < e) {
        uint32_t cp;
        if (*p == '\\') {
            if (++p >= e) break;
            char c = *p++;
            switch (c) {
            case 'n': case 'r': case 't': case 'b': case 'f': cp = ' '; break;
            case 'u':
                if (!hex4(p, e, &cp)) return 0;
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (e - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, e, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
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
            put_utf8(out, cap, &o, cp);
        } else {
            size_t k = utf8_seq((const unsigned char *)p, (size_t)(e - p));
            if (k == 0) { put_utf8(out, cap, &o, 0xfffd); p++; continue; }
            if ((unsigned char)*p < 0x20 || *p == 0x7f) { put_utf8(out, cap, &o, ' '); p++; continue; }
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

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    char *p; /* owned, NUL-terminated */
    size_t len;
} ostr;

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    ostr url;                    /* the Workflows URL; its sig= parameter is the credential */
} instance;

static void ostr_free(ostr *s, int secret) {
    if (secret) wipe(s->p, s->len);
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

static void instance_free(instance *in) {
    if (!in) return;
    ostr_free(&in->url, 1);
    free(in);
}

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

static int read_fail(char *err, const char *path, int32_t st) {
    if (st == NO_MEMORY) return fail(err, "out of memory while reading setting '%s'", path);
    return fail(err, "the host could not read setting '%s' (status %d)", path, (int)st);
}

static int read_opt(const herald_host_api *h, const char *path, ostr *out, char *err) {
    int32_t st = cfg_read(h, 0, path, out);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    return st == HERALD_OK ? 1 : read_fail(err, path, st);
}

/* The URL's host, lower-cased, without user info or port ("" if it has none). */
static void url_host(herald_str u, char *out, size_t cap) {
    out[0] = 0;
    const char *p = u.ptr, *e = u.ptr + u.len;
    const char *scheme = NULL;
    for (const char *q = p; q + 2 < e; q++) {
        if (q[0] == ':' && q[1] == '/' && q[2] == '/') { scheme = q; break; }
        if (*q == '/' || *q == '?') break;
    }
    if (!scheme) return;
    p = scheme + 3;
    const char *end = p;
    while (end < e && *end != '/' && *end != '?' && *end != '#') end++;
    const char *at = NULL;
    for (const char *q = p; q < end; q++) if (*q == '@') at = q;
    if (at) p = at + 1;
    const char *colon = end;
    for (const char *q = p; q < end; q++) if (*q == ':') colon = q;
    size_t n = 0;
    for (const char *q = p; q < colon && n + 1 < cap; q++) out[n++] = (char)lower((unsigned char)*q);
    while (n > 0 && out[n - 1] == '.') n--;
    out[n] = 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0 && (n == k || s[n - k - 1] == '.');
}

static const char *const known_settings[] = {"webhook_url"};

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    ostr names = {0};
    int rc = -1, got;

    int32_t st = cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) { read_fail(err, "", st); goto done; }
    for (const char *name = names.p; name < names.p + names.len; name += strlen(name) + 1) {
        size_t i = 0;
        while (i < sizeof known_settings / sizeof *known_settings && strcmp(name, known_settings[i]) != 0) i++;
        if (i < sizeof known_settings / sizeof *known_settings) continue;
        if (strlen(name) <= 64 && is_visible_ascii(VIEW(name, strlen(name))))
            fail(err, "setting '%s' is not a setting of the teams plugin", name);
        else
            fail(err, "the configuration has a setting the teams plugin does not know");
        goto done;
    }

    if ((got = read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) fail(err, "setting 'webhook_url' is required (the HTTP POST URL of the Teams workflow)");
        goto done;
    }
    herald_str u = VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && str_ieq_prefix(u, "http://")) || (u.len > 8 && str_ieq_prefix(u, "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    char host[256];
    url_host(u, host, sizeof host);
    if (ends_with(host, "webhook.office.com") || ends_with(host, "outlook.office.com") || ends_with(host, "outlook.office365.com")) {
        fail(err, "setting 'webhook_url' is a retired Office 365 connector URL: make a Teams workflow from the template "
                  "'Post to a channel when a webhook request is received' and use its URL");
        goto done;
    }
    rc = 0;
done:
    ostr_free(&names, 0);
    return rc;
}

static int32_t teams_create(const herald_host_api *host, herald_str config_json, void **out_instance) {
    (void)config_json; /* read setting by setting with config_get instead */
    if (host == NULL || out_instance == NULL) return -1;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size))
            host->set_error(SV("the host's function table lacks config_get/config_keys, which the teams plugin needs"));
        return -1;
    }
    instance *in = calloc(1, sizeof *in);
    if (!in) {
        host->set_error(SV("out of memory while creating the teams instance"));
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

static void teams_destroy(void *inst) { instance_free(inst); }

/* ---- the Adaptive Card ----------------------------------------------------------------------- */

static const char *severity_label(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

static const char *status_label(int32_t s) {
    static const char *const names[] = {"triggered", "acknowledged", "resolved", "closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "unknown";
}

/* Adaptive Card text colours: red, amber, blue; green once resolved or closed. */
static const char *severity_color(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "Good";
    switch (m->severity) {
    case HERALD_SEVERITY_CRITICAL: return "Attention";
    case HERALD_SEVERITY_WARNING: return "Warning";
    default: return "Accent";
    }
}

static const char *link_default_label(int32_t kind) {
    static const char *const names[] = {"View incident", "Acknowledge", "Snooze", "Close", "Open"};
    return kind >= 1 && kind <= 5 ? names[kind - 1] : "Open";
}

/* Appends `s` JSON-escaped, with the characters Adaptive Card markdown reads as formatting
 * backslash-escaped (labels arrive raw; the title and body arrive escaped by the host). */
static void buf_json_md(buf *b, const herald_host_api *h, herald_str s) {
    buf tmp = {0};
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!strchr("\\*_`[]~", s.ptr[i]) || s.ptr[i] == 0) continue;
        buf_put(&tmp, s.ptr + start, i - start);
        buf_put(&tmp, "\\", 1);
        buf_put(&tmp, s.ptr + i, 1);
        start = i + 1;
    }
    buf_put(&tmp, s.ptr + start, s.len - start);
    if (tmp.failed) b->failed = tmp.failed;
    else buf_json(b, h, VIEW(tmp.p, tmp.len));
    free(tmp.p);
}

/* A mention's display name as it goes between <at> and </at>: no angle brackets or line breaks,
 * at most 100 bytes, never cutting a character. Returns its length in out. */
static size_t mention_name(herald_str s, char *out, size_t cap) {
    size_t n = 0, i = 0;
    while (i < s.len) {
        size_t k = utf8_seq((const unsigned char *)s.ptr + i, s.len - i);
        if (k == 0) { i++; continue; }
        char c = s.ptr[i];
        if (k == 1 && (c == '<' || c == '>' || (unsigned char)c < 0x20)) { i++; continue; }
        if (n + k > cap) break;
        memcpy(out + n, s.ptr + i, k);
        n += k;
        i += k;
    }
    return n;
}

/* Identities Teams resolves in a mention: a UPN (usually the e-mail address) or an Entra object id. */
static int mention_ok(const herald_mention *x) {
    static const char *const kinds[] = {"email", "upn", "aad_object_id", "entra_object_id", "object_id"};
    if (x->id.len == 0 || x->id.len > 200 || !is_visible_ascii(x->id)) return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (str_eq(x->id_kind, kinds[i])) return 1;
    }
    return 0;
}

/*
 * {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,
 *   "content":{"$schema":...,"type":"AdaptiveCard","version":"1.4",
 *     "msteams":{"width":"Full","entities":[{"type":"mention","text":"<at>Ann</at>","mentioned":{"id":...,"name":"Ann"}}]},
 *     "body":[{"type":"TextBlock","text":title,"size":"Large","weight":"Bolder","color":C,"wrap":true},
 *             {"type":"TextBlock","text":"Critical · triggered · #42","isSubtle":true,"spacing":"None","wrap":true},
 *             {"type":"TextBlock","text":body,"wrap":true},
 *             {"type":"FactSet","facts":[{"title":k,"value":v}]},
 *             {"type":"TextBlock","text":"<at>Ann</at> <at>Bob</at>","wrap":true}],
 *     "actions":[{"type":"Action.OpenUrl","title":"View incident","url":...}]}}]}
 */
static void put_body(buf *b, const herald_host_api *h, const herald_message *m) {
    buf_lit(b, "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.adaptive\",\"contentUrl\":null,"
               "\"content\":{\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\",\"type\":\"AdaptiveCard\",\"version\":\"1.4\","
               "\"msteams\":{\"width\":\"Full\"");
    size_t mentions = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        if (!mention_ok(x)) continue;
        char name[100];
        size_t n = mention_name(x->display_name.len > 0 ? x->display_name : x->id, name, sizeof name);
        if (n == 0) n = mention_name(x->id, name, sizeof name);
        buf_lit(b, mentions == 0 ? ",\"entities\":[" : ",");
        buf_lit(b, "{\"type\":\"mention\",\"text\":\"<at>");
        buf_json_raw(b, h, VIEW(name, n));
        buf_lit(b, "</at>\",\"mentioned\":{\"id\":");
        buf_json(b, h, x->id);
        buf_lit(b, ",\"name\":");
        buf_json(b, h, VIEW(name, n));
        buf_lit(b, "}}");
        mentions++;
    }
    if (mentions > 0) buf_lit(b, "]");
    buf_lit(b, "},\"body\":[{\"type\":\"TextBlock\",\"text\":");
    buf_json(b, h, m->title);
    buf_lit(b, ",\"size\":\"Large\",\"weight\":\"Bolder\",\"color\":\"");
    buf_lit(b, severity_color(m));
    buf_lit(b, "\",\"wrap\":true},{\"type\":\"TextBlock\",\"text\":\"");
    buf_lit(b, severity_label(m->severity));
    buf_lit(b, " \xc2\xb7 ");
    buf_lit(b, status_label(m->status));
    if (m->incident_number > 0) {
        buf_lit(b, " \xc2\xb7 #");
        buf_u64(b, m->incident_number);
    }
    buf_lit(b, "\",\"isSubtle\":true,\"spacing\":\"None\",\"wrap\":true}");
    if (m->body.len > 0) {
        buf_lit(b, ",{\"type\":\"TextBlock\",\"text\":");
        buf_json(b, h, m->body);
        buf_lit(b, ",\"wrap\":true}");
    }
    size_t facts = 0;
    for (size_t i = 0; m->labels && i < m->label_count; i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        buf_lit(b, facts == 0 ? ",{\"type\":\"FactSet\",\"facts\":[" : ",");
        buf_lit(b, "{\"title\":");
        buf_json_md(b, h, l->name);
        buf_lit(b, ",\"value\":");
        buf_json_md(b, h, l->value);
        buf_lit(b, "}");
        facts++;
    }
    if (facts > 0) buf_lit(b, "]}");
    if (mentions > 0) {
        buf_lit(b, ",{\"type\":\"TextBlock\",\"wrap\":true,\"text\":\"");
        size_t done = 0;
        for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
            const herald_mention *x = &m->mentions[i];
            if (!mention_ok(x)) continue;
            char name[100];
            size_t n = mention_name(x->display_name.len > 0 ? x->display_name : x->id, name, sizeof name);
            if (n == 0) n = mention_name(x->id, name, sizeof name);
            buf_lit(b, done++ ? " <at>" : "<at>");
            buf_json_raw(b, h, VIEW(name, n));
            buf_lit(b, "</at>");
        }
        buf_lit(b, "\"}");
    }
    buf_lit(b, "]");
    size_t actions = 0;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (l->url.len == 0 || !(str_ieq_prefix(l->url, "https://") || str_ieq_prefix(l->url, "http://"))) continue;
        buf_lit(b, actions == 0 ? ",\"actions\":[" : ",");
        buf_lit(b, "{\"type\":\"Action.OpenUrl\",\"title\":");
        if (l->label.len > 0) buf_json(b, h, l->label);
        else buf_json_c(b, h, link_default_label(l->kind));
        buf_lit(b, ",\"url\":");
        buf_json(b, h, l->url);
        buf_lit(b, "}");
        actions++;
    }
    if (actions > 0) buf_lit(b, "]");
    buf_lit(b, "}}]}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

static int32_t host_failure(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *what) {
    char msg[160];
    if (status == NO_MEMORY) snprintf(msg, sizeof msg, "out of memory while %s", what);
    else snprintf(msg, sizeof msg, "the host failed while %s (status %d)", what, (int)status);
    h->set_reason(ex, VIEW(msg, strlen(msg)));
    return status == NO_MEMORY || status == HERALD_ERR_INTERNAL ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

#define MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

static int32_t teams_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m)) {
        h->set_reason(ex, SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    buf b = {0};
    put_body(&b, h, m);
    if (b.failed) {
        int32_t f = b.failed;
        free(b.p);
        return host_failure(h, ex, f, "building the JSON body");
    }
    if (b.len > CARD_LIMIT) {
        char msg[200];
        snprintf(msg, sizeof msg, "the card is %zu bytes and Teams accepts about %d: shorten the integration's template or the labels", b.len, CARD_LIMIT);
        free(b.p);
        h->set_reason(ex, VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }
    herald_pair headers[] = {
        {SV("Content-Type"), SV("application/json")},
        {SV("User-Agent"), SV("Herald-Teams/1.0")},
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

/* Up to SNIPPET_BYTES of the body, safe in a reason: control characters become spaces. */
static size_t snippet(herald_str body, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)body.ptr;
    size_t n = body.ptr ? body.len : 0, i = 0, o = 0, budget = n < SNIPPET_BYTES ? n : SNIPPET_BYTES;
    while (i < budget && o + 4 < cap) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) { out[o++] = '?'; i++; continue; }
        if (i + k > budget) break;
        memcpy(out + o, p + i, k);
        o += k;
        i += k;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    if (i < n && o + 3 < cap) { memcpy(out + o, "\xe2\x80\xa6", 3); o += 3; }
    out[o] = 0;
    return o;
}

/* The flow's own words: Power Automate / Logic Apps errors are {"error":{"code":..,"message":..}}. */
static void flow_words(const herald_response *r, char *out, size_t cap) {
    jspan root = r->body_truncated ? (jspan){NULL, NULL} : j_root(r->body), err, v;
    char code[80] = "", message[MAX_MESSAGE] = "";
    if (root.p && *root.p == '{' && j_get(root, "error", &err)) {
        if (j_get(err, "code", &v)) j_str(v, code, sizeof code);
        if (j_get(err, "message", &v)) j_str(v, message, sizeof message);
        if (!message[0]) j_str(err, message, sizeof message); /* {"error":"..."} */
    } else if (root.p && *root.p == '{' && j_get(root, "message", &v)) {
        j_str(v, message, sizeof message);
    }
    if (code[0] || message[0]) {
        snprintf(out, cap, "%s%s%s", code, code[0] && message[0] ? ": " : "", message);
        return;
    }
    char snip[SNIPPET_BYTES + 8];
    if (snippet(r->body, snip, sizeof snip) > 0) snprintf(out, cap, "%s", snip);
    else snprintf(out, cap, "an empty body");
}

/* First header named `name` (case-insensitive), or an empty view. */
static herald_str find_header(const herald_response *r, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        herald_str k = r->headers[i].name;
        if (k.len == n && str_ieq_prefix(k, name)) return r->headers[i].value;
    }
    return SV("");
}

static int32_t teams_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    if (status >= 200 && status <= 299) {
        /* 202 Accepted is the usual answer; the flow then runs on its own. Its run id names it. */
        herald_str id = find_header(r, "x-ms-workflow-run-id");
        if (id.len == 0) id = find_header(r, "x-ms-tracking-id");
        if (id.len > 0 && id.len <= MAX_PROVIDER_ID && is_visible_ascii(id)) h->set_provider_id(ex, id);
        return HERALD_OUTCOME_DELIVERED;
    }
    char words[MAX_MESSAGE + 100], reason[MAX_MESSAGE + 400];
    flow_words(r, words, sizeof words);
    int32_t outcome = HERALD_OUTCOME_FAILED;
    if (status == 401 || status == 403)
        snprintf(reason, sizeof reason, "the workflow refused the request (HTTP %d, %s): the URL's sig= part is wrong or was regenerated; copy the workflow's HTTP POST URL into webhook_url again", (int)status, words);
    else if (status == 404)
        snprintf(reason, sizeof reason, "the workflow does not exist (HTTP 404, %s): it may have been deleted or its owner removed; check webhook_url", words);
    else if (status == 413)
        snprintf(reason, sizeof reason, "Teams refused the card as too large (HTTP 413, %s): shorten the integration's template", words);
    else if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
        snprintf(reason, sizeof reason, "the workflow is %s (HTTP %d, %s)", status == 429 ? "throttling requests" : "temporarily unavailable", (int)status, words);
        outcome = HERALD_OUTCOME_RETRY; /* the host honours a Retry-After header itself */
    } else if (status == 400)
        snprintf(reason, sizeof reason, "the workflow refused the request (HTTP 400, %s): check that webhook_url is a 'Post to a channel when a webhook request is received' workflow", words);
    else if (status >= 300 && status <= 399)
        snprintf(reason, sizeof reason, "the workflow answered with a redirect (HTTP %d): set webhook_url to the workflow's HTTP POST URL", (int)status);
    else if (status < 100 || status > 599)
        snprintf(reason, sizeof reason, "the workflow answered with an invalid HTTP status %d", (int)status);
    else
        snprintf(reason, sizeof reason, "the workflow refused the request (HTTP %d, %s)", (int)status, words);
    h->set_reason(ex, VIEW(reason, strlen(reason)));
    return outcome;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"webhook_url\"],\"properties\":{"
    "\"webhook_url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\",\"writeOnly\":true,"
    "\"title\":\"Workflow URL\",\"description\":\"The HTTP POST URL of a Teams workflow made from the template "
    "'Post to a channel when a webhook request is received'. Its sig= parameter is the credential.\","
    "\"examples\":[\"https://prod-00.westeurope.logic.azure.com:443/workflows/0123456789abcdef0123456789abcdef/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg\"]}"
    "}}";

static const herald_str egress_hosts[] = {LIT("*.logic.azure.com"), LIT("*.environment.api.powerplatform.com")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = LIT("teams"),
    .name = LIT("Microsoft Teams (Workflows)"),
    .version = LIT("1.0.0"),
    .license = LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_MARKDOWN,
    .size_unit = HERALD_SIZE_BYTES,
    .size_limit = BODY_LIMIT,
    /* Instances are read-only after instance_create, so hooks may run in parallel. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, status, number and labels are laid out by the plugin. */
    .default_template = LIT("{{description}}"),
    .instance_create = teams_create,
    .instance_destroy = teams_destroy,
    .prepare = teams_prepare,
    .on_response = teams_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = SV("the teams plugin speaks Herald plugin ABI 1 only");
        return NULL;
    }
    if (!str_eq(negotiate->product, "herald")) {
        negotiate->refusal = SV("the teams plugin loads only into Herald (product \"herald\")");
        return NULL;
    }
    descriptor.abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return &descriptor;
}
