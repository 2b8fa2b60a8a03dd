/*
 * wecom.c — Herald's WeCom (企业微信) group bot channel.
 *
 * POSTs one message per notification to a WeCom group bot ("消息推送", formerly 群机器人)
 * webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<key>. The key in the URL is the
 * only credential; there is no signing. The message is `markdown` by default (title, severity in
 * colour, body, labels, links, <@userid> mentions) or `text` when `msg_type` says so
 * (mentioned_list / mentioned_mobile_list). WeCom answers HTTP 200 with `errcode` in the body:
 * 0 is success, anything else (or nothing) is not. See README.md.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o wecom.so Plugins/wecom/wecom.c
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
    MARKDOWN_MAX_BYTES = 4096, /* WeCom: markdown.content at most 4096 bytes of UTF-8 */
    TEXT_MAX_BYTES = 2048,     /* WeCom: text.content at most 2048 bytes of UTF-8 */
    MAX_LABELS = 30,           /* more would only crowd out the body */
    MAX_LINK_LABEL = 64,       /* bytes of a link's label that are shown */
    MAX_URL_BYTES = 2048,      /* a longer link is left out */
    SNIPPET_BYTES = 200,       /* how much of a provider message goes into a reason */
    RATE_LIMIT_RETRY_MS = 60000 /* 45009: WeCom counts 20 messages per rolling minute */
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

/* Length of the valid UTF-8 sequence at p (n bytes available), or 0 if it is not valid UTF-8. */
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

/* Formats the set_error sentence into err (200 bytes) and returns -1. */
static int fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 200, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- growable output buffer ------------------------------------------------------------------ */

/* Failures are sticky so a builder can append blindly and check once at the end. */
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
static void buf_str(buf *b, herald_str s) { if (s.ptr) buf_put(b, s.ptr, s.len); }

static void buf_u64(buf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    if (n > 0) buf_put(b, tmp, (size_t)n);
}

/* Appends `s` as a quoted JSON string, escaped by the host (at most 6x the input: one call). */
static void buf_json(buf *b, const herald_host_api *h, herald_str s) {
    buf_put(b, "\"", 1);
    if (s.len > 0 && s.ptr != NULL) {
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
    buf_put(b, "\"", 1);
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    char *p; /* owned, NUL-terminated */
    size_t len;
} ostr;

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    ostr url;                    /* the bot's webhook URL, key included: a credential */
    int text_mode;               /* msg_type "text" instead of "markdown" */
} instance;

static void ostr_free(ostr *s) {
    /* The URL carries the bot key: wipe it before freeing. */
    volatile char *v = s->p;
    for (size_t i = 0; v && i < s->len; i++) v[i] = 0;
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

static void instance_free(instance *in) {
    if (!in) return;
    ostr_free(&in->url);
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

static int read_fail(char *err, const char *path, int32_t st) {
    if (st == NO_MEMORY) return fail(err, "out of memory while reading setting '%s'", path);
    return fail(err, "the host could not read setting '%s' (status %d)", path, (int)st);
}

/* Reads an optional setting: 1 when present, 0 when absent, -1 (with err) on failure. */
static int read_opt(const herald_host_api *h, const char *path, ostr *out, char *err) {
    int32_t st = cfg_read(h, 0, path, out);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    return st == HERALD_OK ? 1 : read_fail(err, path, st);
}

/* True when the query of `url` has a non-empty `key` parameter: the bot's credential. */
static int url_has_key(const ostr *url) {
    const char *q = strchr(url->p, '?');
    if (!q) return 0;
    const char *end = strchr(q, '#');
    if (!end) end = url->p + url->len;
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop - p > 4 && memcmp(p, "key=", 4) == 0) return 1;
        p = stop + 1;
    }
    return 0;
}

/* True for an http:// URL whose host is not loopback (the mock in tests is the one place plain
 * http is normal; the real endpoint is https). */
static int plain_http_to_remote_host(const ostr *url) {
    if (url->len < 7 || !str_ieq(VIEW(url->p, 7), "http://")) return 0;
    const char *host = url->p + 7;
    size_t n = host[0] == '[' ? strcspn(host, "]") + (strchr(host, ']') ? 1 : 0) : strcspn(host, ":/?#");
    if (str_ieq(VIEW(host, n), "localhost") || str_eq(VIEW(host, n), "[::1]")) return 0;
    return !(n >= 4 && memcmp(host, "127.", 4) == 0);
}

/* The host validated the config against config_schema before instance_create; these checks keep
 * the plugin safe if a host does not, and name the setting in every sentence. */
static int read_config(instance *in, char *err) {
    static const char *const known[] = {"webhook_url", "msg_type"};
    const herald_host_api *h = in->host;
    ostr names = {0}, type = {0};
    int rc = -1, got;

    int32_t st = cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) { read_fail(err, "", st); goto done; }
    for (const char *name = names.p; name < names.p + names.len; name += strlen(name) + 1) {
        size_t i = 0;
        while (i < sizeof known / sizeof *known && strcmp(name, known[i]) != 0) i++;
        if (i < sizeof known / sizeof *known) continue;
        int printable = strlen(name) <= 64;
        for (const char *c = name; printable && *c; c++) printable = (unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f;
        if (printable) fail(err, "setting '%s' is not a setting of the wecom plugin", name);
        else fail(err, "the configuration has a setting the wecom plugin does not know");
        goto done;
    }

    if ((got = read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) fail(err, "setting 'webhook_url' is required: paste the bot's webhook address from WeCom");
        goto done;
    }
    herald_str u = VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && str_ieq(VIEW(u.ptr, 7), "http://")) || (u.len > 8 && str_ieq(VIEW(u.ptr, 8), "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    if (!url_has_key(&in->url)) {
        fail(err, "setting 'webhook_url' has no '?key=...' part: paste the bot's full webhook address, key included");
        goto done;
    }

    if ((got = read_opt(h, "msg_type", &type, err)) < 0) goto done;
    if (got == 1) {
        if (strcmp(type.p, "text") == 0) in->text_mode = 1;
        else if (strcmp(type.p, "markdown") != 0) { fail(err, "setting 'msg_type' must be \"markdown\" or \"text\""); goto done; }
    }
    if (plain_http_to_remote_host(&in->url))
        h->log(HERALD_LOG_WARNING, SV("setting 'webhook_url' uses plain http: the bot key travels unencrypted"));
    rc = 0;
done:
    ostr_free(&names);
    ostr_free(&type);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

static int32_t wecom_create(const herald_host_api *host, herald_str config_json, void **out_instance) {
    (void)config_json; /* read setting by setting with config_get instead */
    if (host == NULL || out_instance == NULL) return -1;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size))
            host->set_error(SV("the host's function table lacks config_get/config_keys, which the wecom plugin needs"));
        return -1;
    }
    instance *in = calloc(1, sizeof *in);
    if (!in) {
        host->set_error(SV("out of memory while creating the wecom instance"));
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

static void wecom_destroy(void *inst) { instance_free(inst); }

/* ---- building the message -------------------------------------------------------------------- */

static const char *severity_word(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

/* WeCom markdown has three font colours: warning (orange-red), comment (grey), info (green). */
static const char *severity_colour(int32_t s) {
    return s == HERALD_SEVERITY_CRITICAL ? "warning" : s == HERALD_SEVERITY_WARNING ? "comment" : "info";
}

/* The word for the incident's state; a snooze is an event, not a status, so it wins. */
static const char *state_word(const herald_message *m) {
    if (m->event == HERALD_EVENT_SNOOZED) return "Snoozed";
    static const char *const names[] = {"Triggered", "Acknowledged", "Resolved", "Closed"};
    return m->status >= 1 && m->status <= 4 ? names[m->status - 1] : "Open";
}

static int is_ended(const herald_message *m) {
    return m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED;
}

static herald_str default_link_label(int32_t kind) {
    switch (kind) {
    case HERALD_LINK_VIEW: return SV("View");
    case HERALD_LINK_ACKNOWLEDGE: return SV("Acknowledge");
    case HERALD_LINK_SNOOZE: return SV("Snooze");
    case HERALD_LINK_CLOSE: return SV("Close");
    default: return SV("Open");
    }
}

/* Text the plugin adds itself (labels, link labels, display names) is not escaped by the core,
 * which escapes only title and body. Line breaks and control characters become spaces, invalid
 * UTF-8 becomes U+FFFD, and in markdown the characters WeCom interprets as markup that could
 * inject a mention, a font tag or a link (< > [ ]) become their full-width forms. At most
 * `max` bytes of input are used; a character is never cut in half. */
static void put_plain(buf *b, herald_str s, int markdown, size_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? s.len : 0;
    if (n > max) n = max;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7f) { buf_put(b, " ", 1); i++; continue; }
        if (markdown && (c == '<' || c == '>' || c == '[' || c == ']')) {
            /* U+FF1C U+FF1E U+FF3B U+FF3D */
            const char *full = c == '<' ? "\xef\xbc\x9c" : c == '>' ? "\xef\xbc\x9e" : c == '[' ? "\xef\xbc\xbb" : "\xef\xbc\xbd";
            buf_put(b, full, 3);
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, s.len - i);
        if (k == 0) { buf_lit(b, "\xef\xbf\xbd"); i++; continue; }
        if (i + k > n) break;
        buf_put(b, p + i, k);
        i += k;
    }
}

/* Title and body arrive rendered and escaped for markdown (the descriptor's text format). In
 * text mode nothing renders markdown, so the CommonMark escapes (a backslash before ASCII
 * punctuation) are undone; everything else is kept as it is. */
static void put_unescaped(buf *b, herald_str s) {
    const char *p = s.ptr;
    size_t n = s.ptr ? s.len : 0, start = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)p[i + 1];
        if (p[i] == '\\' && c > 0x20 && c < 0x7f && !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
            buf_put(b, p + start, i - start);
            start = i + 1; /* keep the punctuation, drop the backslash */
            i++;
        }
    }
    buf_put(b, p + start, n - start);
}

/* The title on one line (a line break would end the bold run); "Herald incident" when empty. */
static void put_title(buf *b, herald_str title, int unescape) {
    if (title.ptr == NULL || title.len == 0) {
        buf_lit(b, "Herald incident");
        return;
    }
    size_t from = b->len;
    if (unescape) put_unescaped(b, title);
    else buf_str(b, title);
    for (size_t i = from; !b->failed && i < b->len; i++) {
        if (b->p[i] == '\n' || b->p[i] == '\r') b->p[i] = ' ';
    }
}

/* A link URL as it may stand in markdown `[label](url)` or on a text line: only http(s) links (a
 * javascript: or data: URL is never a Herald link) of sane length; bytes that would end or break
 * the link (space, parentheses, angle brackets, quotes, control and non-ASCII bytes) are
 * percent-encoded, which leaves the URL's meaning unchanged. Returns 0 when the link is left out. */
static int put_url(buf *b, herald_str url) {
    if (url.ptr == NULL || url.len == 0 || url.len > MAX_URL_BYTES) return 0;
    if (!(url.len > 7 && str_ieq(VIEW(url.ptr, 7), "http://")) && !(url.len > 8 && str_ieq(VIEW(url.ptr, 8), "https://"))) return 0;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == '"' || c == '\\' || c == '[' || c == ']' || c == '`') {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, enc, 3);
        } else {
            buf_put(b, &url.ptr[i], 1);
        }
    }
    return 1;
}

static int url_usable(herald_str url) {
    if (url.ptr == NULL || url.len == 0 || url.len > MAX_URL_BYTES) return 0;
    return (url.len > 7 && str_ieq(VIEW(url.ptr, 7), "http://")) || (url.len > 8 && str_ieq(VIEW(url.ptr, 8), "https://"));
}

/* How a mention can be rendered: a WeCom userid (letters, digits, _ - . @) or a mobile number. */
enum mention_kind { MENTION_NONE, MENTION_USERID, MENTION_MOBILE };

static int id_charset(herald_str id, const char *extra, size_t max) {
    if (id.ptr == NULL || id.len == 0 || id.len > max) return 0;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) continue;
        if (c == 0 || !strchr(extra, c)) return 0;
    }
    return 1;
}

static enum mention_kind mention_kind(const herald_mention *x) {
    if (str_eq(x->id_kind, "user_id") || str_eq(x->id_kind, "userid")) {
        return id_charset(x->id, "_-.@", 64) ? MENTION_USERID : MENTION_NONE;
    }
    if (str_eq(x->id_kind, "mobile")) {
        if (str_eq(x->id, "@all")) return MENTION_MOBILE;
        for (size_t i = 0; x->id.ptr && i < x->id.len; i++) {
            if (x->id.ptr[i] < '0' || x->id.ptr[i] > '9') {
                if (!(x->id.ptr[i] == '+' && i == 0) && x->id.ptr[i] != '-') return MENTION_NONE;
            }
        }
        return x->id.len >= 3 && x->id.len <= 32 ? MENTION_MOBILE : MENTION_NONE;
    }
    return MENTION_NONE;
}

/* "@Name" (or the id when there is no name) for a person WeCom cannot @mention here. */
static void put_unmentioned(buf *b, const herald_mention *x, int markdown) {
    buf_lit(b, "@");
    put_plain(b, x->display_name.len ? x->display_name : x->id, markdown, 64);
}

/* The message content as WeCom shows it (before JSON escaping). With `labels` 0 the labels are
 * left out: the first thing to give up when the content would exceed WeCom's limit. In text
 * mode a body longer than `body_cap` bytes is cut there (never inside a character) and ends
 * with "…"; `*body_bytes` gets the bytes the body took. Returns the number of mentions that
 * could not become real @mentions (for the log). */
static size_t put_content(buf *b, const herald_message *m, int text_mode, int labels, size_t body_cap, size_t *body_bytes) {
    size_t unmentioned = 0;
    int md = !text_mode;
    /* Title line: bold in markdown, "[Severity] title" in text. */
    if (md) buf_lit(b, "**");
    else {
        buf_lit(b, "[");
        buf_lit(b, severity_word(m->severity));
        buf_lit(b, "] ");
    }
    put_title(b, m->title, text_mode);
    if (md) buf_lit(b, "**");
    buf_lit(b, "\n");
    /* Severity (in colour), state and number. */
    if (md) {
        buf_lit(b, "><font color=\"");
        buf_lit(b, severity_colour(m->severity));
        buf_lit(b, "\">");
        buf_lit(b, severity_word(m->severity));
        buf_lit(b, "</font> · ");
        if (is_ended(m)) buf_lit(b, "<font color=\"info\">");
        buf_lit(b, state_word(m));
        if (is_ended(m)) buf_lit(b, "</font>");
    } else {
        buf_lit(b, state_word(m));
    }
    if (m->incident_number > 0) {
        buf_lit(b, " · #");
        buf_u64(b, m->incident_number);
    }
    if (m->event == HERALD_EVENT_TEST) buf_lit(b, " · test message");
    buf_lit(b, "\n");
    /* Body. */
    *body_bytes = 0;
    if (m->body.len > 0 && m->body.ptr) {
        buf_lit(b, "\n");
        size_t from = b->len;
        if (md) buf_str(b, m->body);
        else put_unescaped(b, m->body);
        if (!md && !b->failed && b->len - from > body_cap) {
            size_t cut = from + body_cap;
            while (cut > from && ((unsigned char)b->p[cut] & 0xc0) == 0x80) cut--;
            b->len = cut;
            buf_lit(b, "\xe2\x80\xa6");
        }
        if (!b->failed) *body_bytes = b->len - from;
        buf_lit(b, "\n");
    }
    /* Labels. */
    size_t count = labels && m->labels ? m->label_count : 0;
    if (count > MAX_LABELS) count = MAX_LABELS;
    if (count > 0) buf_lit(b, "\n");
    for (size_t i = 0; i < count; i++) {
        const herald_pair *l = &m->labels[i];
        if (md) buf_lit(b, ">");
        put_plain(b, l->name, md, 128);
        buf_lit(b, md ? ": <font color=\"comment\">" : ": ");
        put_plain(b, l->value, md, 512);
        buf_lit(b, md ? "</font>\n" : "\n");
    }
    /* Links: markdown links, or "Label: url" lines in text. */
    int first = 1;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        herald_str label = l->label.len ? l->label : default_link_label(l->kind);
        if (first) buf_lit(b, "\n");
        if (md) {
            if (!first) buf_lit(b, " · ");
            buf_lit(b, "[");
            put_plain(b, label, 1, MAX_LINK_LABEL);
            buf_lit(b, "](");
            put_url(b, l->url);
            buf_lit(b, ")");
        } else {
            put_plain(b, label, 0, MAX_LINK_LABEL);
            buf_lit(b, ": ");
            put_url(b, l->url); /* encoded too, so clients still see one clickable link */
            buf_lit(b, "\n");
        }
        first = 0;
    }
    if (md && !first) buf_lit(b, "\n");
    /* Mentions: in markdown <@userid> inside the content. Markdown cannot mention by mobile
     * number, so those people are named as "@Name" text (no notification). In text mode the
     * mentions travel in mentioned_list / mentioned_mobile_list, and WeCom appends them. */
    if (md) {
        int any = 0;
        for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
            const herald_mention *x = &m->mentions[i];
            if (x->id.len == 0 && x->display_name.len == 0) continue;
            buf_lit(b, any ? " " : "\n");
            any = 1;
            if (mention_kind(x) == MENTION_USERID && !str_eq(x->id, "@all")) {
                buf_lit(b, "<@");
                buf_str(b, x->id);
                buf_lit(b, ">");
            } else {
                put_unmentioned(b, x, 1);
                unmentioned++;
            }
        }
    } else {
        int any = 0;
        for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
            const herald_mention *x = &m->mentions[i];
            if (mention_kind(x) != MENTION_NONE || (x->id.len == 0 && x->display_name.len == 0)) continue;
            buf_lit(b, any ? " " : "\n");
            any = 1;
            put_unmentioned(b, x, 0);
            unmentioned++;
        }
    }
    /* No trailing line breaks: WeCom shows them as empty space. */
    while (b->len > 0 && !b->failed && b->p[b->len - 1] == '\n') b->len--;
    return unmentioned;
}

/* The JSON array of mention ids of one kind, for text mode: ,"name":["a","b"] or nothing. */
static void put_mention_list(buf *b, const herald_host_api *h, const herald_message *m, enum mention_kind kind, const char *name) {
    int any = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        if (mention_kind(x) != kind) continue;
        /* Skip duplicates: WeCom would @ the same person twice. */
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            const herald_mention *y = &m->mentions[j];
            dup = mention_kind(y) == kind && y->id.len == x->id.len && memcmp(y->id.ptr, x->id.ptr, x->id.len) == 0;
        }
        if (dup) continue;
        buf_lit(b, any ? "," : ",\"");
        if (!any) {
            buf_lit(b, name);
            buf_lit(b, "\":[");
        }
        any = 1;
        buf_json(b, h, x->id);
    }
    if (any) buf_lit(b, "]");
}

/* Turns a host-function failure into an outcome: internal errors may pass, others will not. */
static int32_t host_failure(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *what) {
    char msg[160];
    if (status == NO_MEMORY) snprintf(msg, sizeof msg, "out of memory while %s", what);
    else snprintf(msg, sizeof msg, "the host failed while %s (status %d)", what, (int)status);
    h->set_reason(ex, VIEW(msg, strlen(msg)));
    return status == NO_MEMORY || status == HERALD_ERR_INTERNAL ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

static size_t snippet(herald_str text, int json, char *out, size_t cap);

#define MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

static int32_t wecom_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m)) {
        h->set_reason(ex, SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        /* A group bot has exactly one destination: its group. Never post elsewhere's message here. */
        char who[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 160];
        snippet(m->recipient, 0, who, sizeof who);
        snprintf(reason, sizeof reason, "a WeCom group bot posts only to its own group, so it cannot send to recipient '%s'", who);
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    const size_t limit = in->text_mode ? TEXT_MAX_BYTES : MARKDOWN_MAX_BYTES;

    /* The content, with labels; without them when that is what it takes to fit. */
    buf content = {0};
    size_t body_bytes = 0;
    size_t unmentioned = put_content(&content, m, in->text_mode, 1, SIZE_MAX, &body_bytes);
    if (!content.failed && content.len > limit && m->label_count > 0) {
        content.len = 0;
        unmentioned = put_content(&content, m, in->text_mode, 0, SIZE_MAX, &body_bytes);
        if (!content.failed && content.len <= limit)
            h->log(HERALD_LOG_INFO, SV("left the labels out of a WeCom message so it fits WeCom's size limit"));
    }
    /* Text mode holds 2048 bytes, but the descriptor's size limit is one per plugin (3072, for
     * markdown), so the core may hand over a body that cannot fit a text message. Plain text has
     * no markup to break, so the body is cut here rather than the notification lost. */
    if (!content.failed && content.len > limit && in->text_mode && body_bytes > content.len - limit + 3) {
        size_t cap = body_bytes - (content.len - limit) - 3;
        content.len = 0;
        unmentioned = put_content(&content, m, in->text_mode, 0, cap, &body_bytes);
        if (!content.failed && content.len <= limit)
            h->log(HERALD_LOG_INFO, SV("cut the body of a WeCom text message to fit WeCom's 2048-byte limit"));
    }
    if (content.failed) {
        free(content.p);
        return host_failure(h, ex, content.failed, "building the message");
    }
    if (content.len > limit) {
        char reason[300];
        snprintf(reason, sizeof reason,
                 "the %s message is %zu bytes, over the %zu bytes WeCom accepts (the body alone is %zu bytes); "
                 "shorten the integration's template or the incident text",
                 in->text_mode ? "text" : "markdown", content.len, limit, m->body.len);
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        free(content.p);
        return HERALD_OUTCOME_FAILED;
    }
    if (unmentioned > 0) {
        char line[200];
        snprintf(line, sizeof line, "%zu mention(s) could not be WeCom @mentions (%s) and are shown as plain names",
                 unmentioned, in->text_mode ? "WeCom text mentions need id_kind user_id or mobile" : "WeCom markdown mentions need id_kind user_id; mobile numbers need msg_type text");
        h->log(HERALD_LOG_WARNING, VIEW(line, strlen(line)));
    }

    buf b = {0};
    if (in->text_mode) {
        buf_lit(&b, "{\"msgtype\":\"text\",\"text\":{\"content\":");
        buf_json(&b, h, VIEW(content.p, content.len));
        put_mention_list(&b, h, m, MENTION_USERID, "mentioned_list");
        put_mention_list(&b, h, m, MENTION_MOBILE, "mentioned_mobile_list");
        buf_lit(&b, "}}");
    } else {
        buf_lit(&b, "{\"msgtype\":\"markdown\",\"markdown\":{\"content\":");
        buf_json(&b, h, VIEW(content.p, content.len));
        buf_lit(&b, "}}");
    }
    free(content.p);
    if (b.failed) {
        free(b.p);
        return host_failure(h, ex, b.failed, "building the JSON body");
    }

    herald_pair headers[] = {
        {SV("Content-Type"), SV("application/json; charset=utf-8")},
        {SV("User-Agent"), SV("Herald-WeCom/1.0")},
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

/* ---- reading the answer ---------------------------------------------------------------------- */

/* A tiny JSON reader: just enough to find members of the top-level object without trusting
 * the input. Every function stops at `end` and fails on anything malformed. */
typedef struct {
    const char *p, *end;
} scan;

static void skip_ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Skips a string starting at the opening quote; on success `raw` is its content, still escaped. */
static int skip_string(scan *s, herald_str *raw) {
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *start = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            if (raw) *raw = VIEW(start, (size_t)(s->p - start));
            s->p++;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\' && s->end - s->p < 2) return -1;
        s->p += c == '\\' ? 2 : 1;
    }
    return -1;
}

static int skip_value(scan *s, int depth) {
    skip_ws(s);
    if (s->p >= s->end || depth > 32) return -1;
    char c = *s->p;
    if (c == '"') return skip_string(s, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) { s->p++; return 0; }
        for (;;) {
            if (c == '{') {
                skip_ws(s);
                if (skip_string(s, NULL) != 0) return -1;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':') return -1;
                s->p++;
            }
            if (skip_value(s, depth + 1) != 0) return -1;
            skip_ws(s);
            if (s->p >= s->end) return -1;
            if (*s->p == ',') { s->p++; continue; }
            if (*s->p == close) { s->p++; return 0; }
            return -1;
        }
    }
    /* number, true, false, null: a run of their characters */
    const char *start = s->p;
    while (s->p < s->end && *s->p && strchr("0123456789+-.eEtruefalsn", *s->p)) s->p++;
    return s->p > start ? 0 : -1;
}

/* Finds member `name` (compared unescaped-as-raw) of the top-level object. 1 found (with the
 * value's raw text in `value`), 0 absent, -1 not a JSON object. */
static int json_member(herald_str body, const char *name, herald_str *value) {
    scan s = {body.ptr, body.ptr ? body.ptr + body.len : NULL};
    if (!body.ptr) return -1;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') return 0;
    int found = 0;
    for (;;) {
        herald_str key;
        skip_ws(&s);
        if (skip_string(&s, &key) != 0) return -1;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':') return -1;
        s.p++;
        skip_ws(&s);
        const char *vstart = s.p;
        if (skip_value(&s, 0) != 0) return -1;
        if (!found && str_eq(key, name)) {
            *value = VIEW(vstart, (size_t)(s.p - vstart));
            found = 1;
        }
        skip_ws(&s);
        if (s.p >= s.end) return -1;
        if (*s.p == ',') { s.p++; continue; }
        if (*s.p == '}') return found;
        return -1;
    }
}

/* A JSON integer (no fraction or exponent) that fits in a long. */
static int parse_int(herald_str v, long *out) {
    size_t i = 0;
    int neg = 0;
    if (v.len > 0 && v.ptr[0] == '-') { neg = 1; i = 1; }
    if (i >= v.len || v.len - i > 10) return -1;
    long n = 0;
    for (; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return -1;
        n = n * 10 + (v.ptr[i] - '0');
    }
    *out = neg ? -n : n;
    return 0;
}

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) out[(*o)++] = (char)cp;
    else if (cp < 0x800) { out[(*o)++] = (char)(0xc0 | (cp >> 6)); out[(*o)++] = (char)(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) {
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

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = (*v << 4) | (uint32_t)d;
    }
    return 0;
}

/* Up to SNIPPET_BYTES of text, safe in a log line and a reason: `json` != 0 decodes the escapes
 * of a raw JSON string first; control characters become spaces (runs collapse), invalid UTF-8
 * becomes '?', a character is never cut in half, and "…" marks a cut. */
static size_t snippet(herald_str text, int json, char *out, size_t cap) {
    const char *p = text.ptr ? text.ptr : "";
    size_t n = text.ptr ? text.len : 0, i = 0, o = 0;
    int cut = 0;
    while (i < n) {
        char tmp[8];
        size_t t = 0, used = 1;
        unsigned char c = (unsigned char)p[i];
        if (json && c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            used = 2;
            uint32_t cp;
            if (e == 'u' && i + 6 <= n && hex4(p + i + 2, &cp) == 0) {
                used = 6;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 12 <= n && p[i + 6] == '\\' && p[i + 7] == 'u') {
                    uint32_t lo;
                    if (hex4(p + i + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        used = 12;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
                if (cp < 0x20 || cp == 0x7f) tmp[t++] = ' ';
                else put_utf8(tmp, &t, cp);
            } else {
                tmp[t++] = e == 'n' || e == 't' || e == 'r' || e == 'b' || e == 'f' || (unsigned char)e < 0x20 ? ' '
                         : (unsigned char)e >= 0x7f ? '?' : e;
            }
        } else if (c < 0x20 || c == 0x7f) {
            tmp[t++] = ' ';
        } else {
            size_t k = utf8_seq((const unsigned char *)p + i, n - i);
            if (k == 0) tmp[t++] = '?';
            else { memcpy(tmp, p + i, k); t = k; used = k; }
        }
        if (t == 1 && tmp[0] == ' ' && (o == 0 || out[o - 1] == ' ')) { i += used; continue; }
        if (o + t > SNIPPET_BYTES || o + t + 4 > cap) { cut = 1; break; }
        memcpy(out + o, tmp, t);
        o += t;
        i += used;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    if (cut && o + 4 <= cap) { memcpy(out + o, "\xe2\x80\xa6", 3); o += 3; }
    out[o] = 0;
    return o;
}

/* What an errcode means for the operator, and whether a retry can help. */
typedef struct {
    long code;
    int retry;
    const char *meaning;
} errcode_info;

static const errcode_info known_errcodes[] = {
    {-1, 1, "WeCom is busy"},
    {45009, 1, "the bot is over WeCom's limit of 20 messages per minute"},
    {45033, 1, "too many concurrent calls to WeCom"},
    {93000, 0, "the webhook key is invalid: the bot was removed or its address changed; copy the bot's webhook address again into setting 'webhook_url'"},
    {40008, 0, "WeCom does not accept the message type (a plugin bug; please report it)"},
    {40035, 0, "WeCom rejected a parameter of the message (a plugin bug; please report it)"},
    {44004, 0, "the message content is empty"},
    {45002, 0, "the message content is longer than WeCom accepts; shorten the integration's template"},
    {40003, 0, "a mentioned userid does not exist in this WeCom organisation (check the mapping table)"},
    {46004, 0, "a mentioned user does not exist in this WeCom organisation (check the mapping table)"},
};

static int32_t wecom_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    char snip[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 400];
    int32_t status = r->status;

    if (status < 200 || status > 299) {
        size_t snip_len = snippet(r->body, 0, snip, sizeof snip);
        if (status < 100 || status > 599)
            snprintf(reason, sizeof reason, "WeCom answered with an invalid HTTP status %d", (int)status);
        else
            snprintf(reason, sizeof reason, "WeCom answered HTTP %d%s%s", (int)status, snip_len ? ": " : " with an empty body", snip);
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        /* No set_retry_after: the host honours a Retry-After header itself. */
        if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return HERALD_OUTCOME_RETRY;
        return HERALD_OUTCOME_FAILED;
    }

    /* HTTP 2xx says nothing: WeCom answers 200 for errors too. Only errcode 0 is success. */
    herald_str v = {0}, msg = {0};
    int has_code = json_member(r->body, "errcode", &v);
    long code = 0;
    if (has_code != 1 || parse_int(v, &code) != 0) {
        size_t snip_len = snippet(r->body, 0, snip, sizeof snip);
        snprintf(reason, sizeof reason, "WeCom answered HTTP %d without a readable errcode%s%s%s", (int)status,
                 r->body_truncated ? " (the body was cut at the host's size cap)" : "",
                 snip_len ? ": " : " (empty body)", snip);
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    if (code == 0) return HERALD_OUTCOME_DELIVERED; /* the group bot API returns no message id */

    int has_msg = json_member(r->body, "errmsg", &msg) == 1 && msg.len >= 2 && msg.ptr[0] == '"';
    if (has_msg) snippet(VIEW(msg.ptr + 1, msg.len - 2), 1, snip, sizeof snip);
    else snprintf(snip, sizeof snip, "no errmsg");
    const errcode_info *info = NULL;
    for (size_t i = 0; i < sizeof known_errcodes / sizeof *known_errcodes; i++) {
        if (known_errcodes[i].code == code) info = &known_errcodes[i];
    }
    if (info) snprintf(reason, sizeof reason, "WeCom refused the message with errcode %ld (%s): %s", code, snip, info->meaning);
    else snprintf(reason, sizeof reason, "WeCom refused the message with errcode %ld: %s", code, snip);
    h->set_reason(ex, VIEW(reason, strlen(reason)));
    if (info && info->retry) {
        if (code == 45009) h->set_retry_after(ex, RATE_LIMIT_RETRY_MS);
        return HERALD_OUTCOME_RETRY;
    }
    return HERALD_OUTCOME_FAILED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"webhook_url\"],\"properties\":{"
    "\"webhook_url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\",\"writeOnly\":true,"
    "\"title\":\"Webhook URL\",\"description\":\"The group bot's webhook address from WeCom, key included "
    "(https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...). The key is the bot's only credential.\","
    "\"examples\":[\"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=00000000-0000-0000-0000-000000000000\"]},"
    "\"msg_type\":{\"type\":\"string\",\"enum\":[\"markdown\",\"text\"],\"default\":\"markdown\","
    "\"title\":\"Message type\",\"description\":\"markdown (colours, links, <@userid> mentions; up to 4096 bytes) "
    "or text (plain, mentions by userid or mobile number; up to 2048 bytes).\"}"
    "}}";

static const herald_str egress_hosts[] = {LIT("qyapi.weixin.qq.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = LIT("wecom"),
    .name = LIT("WeCom group bot"),
    .version = LIT("1.0.0"),
    .license = LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_MARKDOWN,
    .size_unit = HERALD_SIZE_BYTES,
    /* WeCom caps the whole markdown content at 4096 bytes; the title, the severity line, the
     * links and the mentions share it with the body, so the body gets 3072 of them. */
    .size_limit = 3072,
    /* Instances are read-only after instance_create, so hooks may run in parallel. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, labels and links are laid out by the plugin around the body. */
    .default_template = LIT("{{description}}"),
    .instance_create = wecom_create,
    .instance_destroy = wecom_destroy,
    .prepare = wecom_prepare,
    .on_response = wecom_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = SV("the wecom plugin speaks Herald plugin ABI 1 only");
        return NULL;
    }
    if (!str_eq(negotiate->product, "herald")) {
        negotiate->refusal = SV("the wecom plugin loads only into Herald (product \"herald\")");
        return NULL;
    }
    descriptor.abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return &descriptor;
}
