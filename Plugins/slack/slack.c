/*
 * slack.c — Herald's Slack incoming-webhook channel.
 *
 * POSTs one Block Kit message per notification to a Slack incoming webhook
 * (https://hooks.slack.com/services/T…/B…/…). The URL is the only credential; there is no
 * signing. The message has a fallback `text` (what notifications show), a header with a severity
 * emoji, a context line, the body in mrkdwn sections, the labels as fields, @mentions and an
 * actions block of link buttons that open Herald in the browser. Slack answers HTTP 200 with the
 * body `ok`; errors are other statuses with a bare error code (`no_service`, `invalid_token`...).
 * See README.md.
 *
 * ESCAPING. The core renders title and body for HERALD_FORMAT_SLACK_MRKDWN, so `& < >` arrive as
 * `&amp; &lt; &gt;`. mrkdwn text objects (the fallback text, sections, fields, context) take them
 * as they are. plain_text objects (the header, button labels) are not parsed by Slack, so there
 * the title is decoded back to the raw characters and link labels are used raw: an entity the
 * plugin put there would be shown literally or double-decoded. Text the plugin adds to mrkdwn
 * itself (label names and values, display names), which the core did not escape, is escaped
 * with the same three entities.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o slack.so Plugins/slack/slack.c
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

/* Block Kit limits, in characters, from Slack's block reference. */
enum {
    HEADER_MAX_CHARS = 150,   /* header block: plain_text */
    SECTION_MAX_CHARS = 3000, /* section block: text */
    FIELD_MAX_CHARS = 2000,   /* section block: each of the fields */
    FIELDS_PER_SECTION = 10,
    MAX_LABELS = 30,          /* three field sections; more are summarised in a line */
    BUTTON_TEXT_MAX_CHARS = 75,
    BUTTON_URL_MAX_CHARS = 3000,
    BUTTONS_MAX = 25,         /* elements of one actions block */
    /* Past roughly 13,000 characters of block text Slack answers msg_blocks_too_long, below the
     * documented per-block limits, so a body longer than this goes as a plain mrkdwn message. */
    BLOCKS_BODY_MAX_CHARS = 12000,
    /* Slack cuts message text after 40,000 characters: refuse rather than lose the end. */
    TEXT_MAX_CHARS = 40000,
    SNIPPET_BYTES = 200
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

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

/* Characters (Unicode scalar values; an invalid byte counts as one, as it becomes U+FFFD). */
static size_t char_count(const char *p, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)p + i, n - i);
        i += k ? k : 1;
        count++;
    }
    return count;
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

/* Appends a JSON string built in scratch buffer `t`, then empties `t` for the next one. */
static void buf_json_take(buf *b, const herald_host_api *h, buf *t) {
    if (t->failed) b->failed = t->failed;
    else buf_json(b, h, VIEW(t->p, t->len));
    t->len = 0;
}

/* ---- text for Slack -------------------------------------------------------------------------- */

/* Writes text for a plain_text object into `b` (or only counts it when `b` is NULL), stopping
 * before the character that would pass `limit`. With `decode` the three entities the core's
 * mrkdwn escaping produces (&amp; &lt; &gt;) become the raw characters again, in one pass, so
 * "&amp;lt;" becomes "&lt;" as it should; without it the text is taken raw (link labels, which
 * the core does not escape). Control characters become spaces and invalid UTF-8 U+FFFD.
 * Returns the characters written (or counted). */
static size_t emit_plain(buf *b, herald_str s, int decode, size_t limit) {
    const char *p = s.ptr ? s.ptr : "";
    size_t n = s.ptr ? s.len : 0, chars = 0;
    for (size_t i = 0; i < n && chars < limit; chars++) {
        unsigned char c = (unsigned char)p[i];
        const char *out = p + i;
        size_t k = 1, bytes = 1;
        if (decode && c == '&' && n - i >= 4 && (memcmp(p + i, "&lt;", 4) == 0 || memcmp(p + i, "&gt;", 4) == 0)) {
            out = p[i + 1] == 'l' ? "<" : ">";
            k = 4;
        } else if (decode && c == '&' && n - i >= 5 && memcmp(p + i, "&amp;", 5) == 0) {
            out = "&";
            k = 5;
        } else if (c < 0x20 || c == 0x7f) {
            out = " ";
        } else if ((k = utf8_seq((const unsigned char *)p + i, n - i)) == 0) {
            out = "\xef\xbf\xbd";
            k = 1;
            bytes = 3;
        } else {
            bytes = k;
        }
        if (b) buf_put(b, out, bytes);
        i += k;
    }
    return chars;
}

/* At most `max` characters of plain_text (see emit_plain), "…" ending a cut. */
static size_t put_plain(buf *b, herald_str s, int decode, size_t max) {
    if (max == 0) return 0;
    if (emit_plain(NULL, s, decode, SIZE_MAX) <= max) return emit_plain(b, s, decode, max);
    size_t chars = emit_plain(b, s, decode, max - 1);
    buf_lit(b, "\xe2\x80\xa6");
    return chars + 1;
}

/* Writes raw text escaped for mrkdwn (& < > as entities) into `b` (or only counts it when `b`
 * is NULL), stopping before a character whose output would pass `limit` characters (an entity
 * counts as its length). Line breaks become spaces unless `multiline`; other control characters
 * always do; invalid UTF-8 becomes U+FFFD. Returns the characters written (or counted). */
static size_t emit_mrkdwn(buf *b, herald_str s, size_t limit, int multiline) {
    const char *p = s.ptr ? s.ptr : "";
    size_t n = s.ptr ? s.len : 0, chars = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        const char *out = p + i;
        size_t k = 1, bytes = 1, w = 1;
        if (c == '&') { out = "&amp;"; bytes = w = 5; }
        else if (c == '<') { out = "&lt;"; bytes = w = 4; }
        else if (c == '>') { out = "&gt;"; bytes = w = 4; }
        else if (c == '\n' && multiline) out = "\n";
        else if (c < 0x20 || c == 0x7f) out = " ";
        else if ((k = utf8_seq((const unsigned char *)p + i, n - i)) == 0) { out = "\xef\xbf\xbd"; k = 1; bytes = 3; }
        else bytes = k;
        if (chars + w > limit) break;
        if (b) buf_put(b, out, bytes);
        chars += w;
        i += k;
    }
    return chars;
}

/* At most `max` characters of escaped mrkdwn (see emit_mrkdwn), "…" ending a cut. */
static size_t put_mrkdwn(buf *b, herald_str s, size_t max, int multiline) {
    if (max == 0) return 0;
    if (emit_mrkdwn(NULL, s, SIZE_MAX, multiline) <= max) return emit_mrkdwn(b, s, max, multiline);
    size_t chars = emit_mrkdwn(b, s, max - 1, multiline);
    buf_lit(b, "\xe2\x80\xa6");
    return chars + 1;
}

/* The byte offset where a chunk of at most `max` characters of mrkdwn text starting at `start`
 * should end: after a line break if there is one in the second half of the chunk, else after a
 * space, else anywhere; never inside a character, an entity (&amp;) or a <...> sequence (a
 * link or a mention), which would break it in two. */
static size_t chunk_end(const char *p, size_t n, size_t start, size_t max) {
    size_t i = start, chars = 0;
    while (i < n && chars < max) {
        size_t k = utf8_seq((const unsigned char *)p + i, n - i);
        i += k ? k : 1;
        chars++;
    }
    if (i >= n) return n;
    size_t cut = i, half = start + (i - start) / 2;
    for (size_t j = i; j > half; j--) {
        if (p[j - 1] == '\n') { cut = j; goto safe; }
    }
    for (size_t j = i; j > half; j--) {
        if (p[j - 1] == ' ') { cut = j; goto safe; }
    }
safe:;
    /* An unclosed '<' or a recent unclosed '&' before the cut moves the cut in front of it. */
    size_t open_lt = SIZE_MAX, open_amp = SIZE_MAX;
    for (size_t j = start; j < cut; j++) {
        if (p[j] == '<') open_lt = j;
        else if (p[j] == '>') open_lt = SIZE_MAX;
        else if (p[j] == '&') open_amp = j;
        else if (p[j] == ';' || p[j] == ' ' || p[j] == '\n') open_amp = SIZE_MAX;
    }
    if (open_lt != SIZE_MAX && open_lt > start) cut = open_lt;
    else if (open_amp != SIZE_MAX && open_amp > start && cut - open_amp < 10) cut = open_amp;
    return cut;
}

static int all_space(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t') return 0;
    }
    return 1;
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    char *p; /* owned, NUL-terminated */
    size_t len;
} ostr;

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    ostr url;                    /* the webhook URL: a credential */
} instance;

static void ostr_free(ostr *s) {
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

static int plain_http_to_remote_host(const ostr *url) {
    if (url->len < 7 || !str_ieq(VIEW(url->p, 7), "http://")) return 0;
    const char *host = url->p + 7;
    size_t n = host[0] == '[' ? strcspn(host, "]") + (strchr(host, ']') ? 1 : 0) : strcspn(host, ":/?#");
    if (str_ieq(VIEW(host, n), "localhost") || str_eq(VIEW(host, n), "[::1]")) return 0;
    return !(n >= 4 && memcmp(host, "127.", 4) == 0);
}

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    ostr names = {0};
    int rc = -1;

    int32_t st = cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) { read_fail(err, "", st); goto done; }
    for (const char *name = names.p; name < names.p + names.len; name += strlen(name) + 1) {
        if (strcmp(name, "webhook_url") == 0) continue;
        int printable = strlen(name) <= 64;
        for (const char *c = name; printable && *c; c++) printable = (unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f;
        if (printable) fail(err, "setting '%s' is not a setting of the slack plugin", name);
        else fail(err, "the configuration has a setting the slack plugin does not know");
        goto done;
    }

    st = cfg_read(h, 0, "webhook_url", &in->url);
    if (st == HERALD_ERR_NOT_FOUND) { fail(err, "setting 'webhook_url' is required: paste the incoming webhook's URL from Slack"); goto done; }
    if (st != HERALD_OK) { read_fail(err, "webhook_url", st); goto done; }
    herald_str u = VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && str_ieq(VIEW(u.ptr, 7), "http://")) || (u.len > 8 && str_ieq(VIEW(u.ptr, 8), "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    if (!strstr(in->url.p, "/services/"))
        h->log(HERALD_LOG_WARNING, SV("setting 'webhook_url' has no /services/ path: Slack incoming webhooks look like https://hooks.slack.com/services/T.../B.../..."));
    if (plain_http_to_remote_host(&in->url))
        h->log(HERALD_LOG_WARNING, SV("setting 'webhook_url' uses plain http: the webhook's secret path travels unencrypted"));
    rc = 0;
done:
    ostr_free(&names);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

static int32_t slack_create(const herald_host_api *host, herald_str config_json, void **out_instance) {
    (void)config_json; /* read setting by setting with config_get instead */
    if (host == NULL || out_instance == NULL) return -1;
    *out_instance = NULL;
    if (!HERALD_HAS_FIELD(herald_host_api, config_keys, host->struct_size)) {
        if (HERALD_HAS_FIELD(herald_host_api, set_error, host->struct_size))
            host->set_error(SV("the host's function table lacks config_get/config_keys, which the slack plugin needs"));
        return -1;
    }
    instance *in = calloc(1, sizeof *in);
    if (!in) {
        host->set_error(SV("out of memory while creating the slack instance"));
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

static void slack_destroy(void *inst) { instance_free(inst); }

/* ---- building the message -------------------------------------------------------------------- */

static const char *severity_word(int32_t s) {
    static const char *const names[] = {"Critical", "Warning", "Info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "Unknown";
}

static int is_ended(const herald_message *m) {
    return m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED;
}

/* Slack has no colour for blocks; the emoji carries the severity (a check mark once it is over). */
static const char *severity_emoji(const herald_message *m) {
    if (is_ended(m)) return ":white_check_mark:";
    return m->severity == HERALD_SEVERITY_CRITICAL ? ":rotating_light:" : m->severity == HERALD_SEVERITY_WARNING ? ":warning:" : ":information_source:";
}

static const char *state_word(const herald_message *m) {
    if (m->event == HERALD_EVENT_SNOOZED) return "Snoozed";
    static const char *const names[] = {"Triggered", "Acknowledged", "Resolved", "Closed"};
    return m->status >= 1 && m->status <= 4 ? names[m->status - 1] : "Open";
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

/* Writes a link URL for Slack: spaces, control and non-ASCII bytes percent-encoded (the
 * standard mapping of an IRI to a URI, so the link means the same), and in mrkdwn <url|label>
 * also the bytes that would end or split the link, with '&' as the entity every mrkdwn text
 * needs (Slack decodes it back, so the query keeps its meaning). Returns the characters written. */
static size_t put_url(buf *b, herald_str url, int mrkdwn) {
    static const char hex[] = "0123456789ABCDEF";
    size_t chars = 0;
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        if (mrkdwn && c == '&') {
            if (b) buf_lit(b, "&amp;");
            chars += 5;
        } else if (c <= 0x20 || c >= 0x7f || (mrkdwn && (c == '|' || c == '<' || c == '>'))) {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (b) buf_put(b, enc, 3);
            chars += 3;
        } else {
            if (b) buf_put(b, &url.ptr[i], 1);
            chars++;
        }
    }
    return chars;
}

/* Only http(s) links, of a length Slack accepts for a button URL once encoded. */
static int url_usable(herald_str url) {
    if (url.ptr == NULL || url.len == 0 || put_url(NULL, url, 0) > BUTTON_URL_MAX_CHARS) return 0;
    return (url.len > 7 && str_ieq(VIEW(url.ptr, 7), "http://")) || (url.len > 8 && str_ieq(VIEW(url.ptr, 8), "https://"));
}

/* How a mention is written: <@U123> for a member id, <!subteam^S123> for a user group. */
enum mention_kind { MENTION_NONE, MENTION_USER, MENTION_GROUP };

static enum mention_kind mention_kind(const herald_mention *x) {
    int user = str_eq(x->id_kind, "user_id"), group = str_eq(x->id_kind, "user_group_id");
    if (!user && !group) return MENTION_NONE;
    if (x->id.ptr == NULL || x->id.len == 0 || x->id.len > 32) return MENTION_NONE;
    for (size_t i = 0; i < x->id.len; i++) {
        char c = x->id.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return MENTION_NONE;
    }
    return user ? MENTION_USER : MENTION_GROUP;
}

/* The mentions as mrkdwn: real mentions where Slack can notify, escaped names otherwise.
 * Returns how many people could not be mentioned. */
static size_t put_mentions(buf *b, const herald_message *m, const char *lead) {
    size_t unmentioned = 0;
    int any = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        enum mention_kind kind = mention_kind(x);
        if (kind == MENTION_NONE && x->display_name.len == 0 && x->id.len == 0) continue;
        buf_lit(b, any ? " " : lead);
        any = 1;
        if (kind != MENTION_NONE) {
            buf_lit(b, kind == MENTION_USER ? "<@" : "<!subteam^");
            buf_str(b, x->id);
            buf_lit(b, ">");
        } else {
            buf_lit(b, "@");
            put_mrkdwn(b, x->display_name.len ? x->display_name : x->id, 80, 0);
            unmentioned++;
        }
    }
    return unmentioned;
}

static int has_mentions(const herald_message *m) {
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        if (m->mentions[i].display_name.len || m->mentions[i].id.len) return 1;
    }
    return 0;
}

/* "*Critical* · Triggered · #12 · test message" */
static void put_status_line(buf *b, const herald_message *m) {
    buf_lit(b, "*");
    buf_lit(b, severity_word(m->severity));
    buf_lit(b, "* · ");
    buf_lit(b, state_word(m));
    if (m->incident_number > 0) {
        buf_lit(b, " · #");
        buf_u64(b, m->incident_number);
    }
    if (m->event == HERALD_EVENT_TEST) buf_lit(b, " · test message");
}

/* The title as mrkdwn, as the core escaped it, on one line and within `max` characters. */
static void put_title_mrkdwn(buf *b, herald_str title, size_t max) {
    if (title.ptr == NULL || title.len == 0) {
        buf_lit(b, "Herald incident");
        return;
    }
    size_t end = chunk_end(title.ptr, title.len, 0, max);
    size_t from = b->len;
    buf_put(b, title.ptr, end);
    if (end < title.len) buf_lit(b, "\xe2\x80\xa6");
    for (size_t i = from; !b->failed && i < b->len; i++) {
        if (b->p[i] == '\n' || b->p[i] == '\r') b->p[i] = ' ';
    }
}

/* The fallback text: what notifications and clients without Block Kit show. */
static size_t put_fallback(buf *b, const herald_message *m) {
    buf_lit(b, severity_emoji(m));
    buf_lit(b, " [");
    buf_lit(b, severity_word(m->severity));
    buf_lit(b, "] ");
    put_title_mrkdwn(b, m->title, 2000);
    return put_mentions(b, m, " ");
}

/* Block Kit layout: header, context, body sections, label fields, mentions, link buttons. */
static size_t put_blocks_message(buf *b, const herald_host_api *h, const herald_message *m) {
    buf t = {0}; /* scratch for one text at a time, JSON-escaped into `b` */
    buf_lit(b, "{\"text\":");
    size_t unmentioned = put_fallback(&t, m);
    buf_json_take(b, h, &t);
    buf_lit(b, ",\"blocks\":[");

    /* Header: plain_text, so the title decoded; a title too long for it goes in a section. */
    buf_lit(&t, severity_emoji(m));
    buf_lit(&t, " ");
    size_t emoji_chars = t.len;
    herald_str title = m->title.len ? m->title : SV("Herald incident");
    size_t title_chars = emit_plain(NULL, title, 1, SIZE_MAX);
    if (emoji_chars + title_chars <= HEADER_MAX_CHARS) {
        put_plain(&t, title, 1, HEADER_MAX_CHARS - emoji_chars);
        buf_lit(b, "{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"emoji\":true,\"text\":");
    } else {
        t.len = 0;
        buf_lit(&t, severity_emoji(m));
        buf_lit(&t, " *");
        put_title_mrkdwn(&t, m->title, SECTION_MAX_CHARS - 40);
        buf_lit(&t, "*");
        buf_lit(b, "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
    }
    buf_json_take(b, h, &t);
    buf_lit(b, "}}");

    /* Context: severity, state, number. */
    put_status_line(&t, m);
    buf_lit(b, ",{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":");
    buf_json_take(b, h, &t);
    buf_lit(b, "}]}");

    /* Body: mrkdwn as the core escaped it, in sections of at most 3000 characters. */
    const char *p = m->body.ptr;
    size_t n = p ? m->body.len : 0;
    for (size_t start = 0; start < n;) {
        size_t end = chunk_end(p, n, start, SECTION_MAX_CHARS);
        if (end <= start) end = n; /* cannot happen; never loop forever */
        if (!all_space(p + start, end - start)) {
            buf_lit(b, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
            buf_json(b, h, VIEW(p + start, end - start));
            buf_lit(b, "}}");
        }
        start = end;
    }

    /* Labels: fields, ten to a section. Names and values are raw, so escaped here. */
    size_t labels = m->labels ? m->label_count : 0, shown = labels > MAX_LABELS ? MAX_LABELS : labels;
    for (size_t i = 0; i < shown; i++) {
        const herald_pair *l = &m->labels[i];
        buf_lit(b, i % FIELDS_PER_SECTION == 0 ? ",{\"type\":\"section\",\"fields\":[" : ",");
        buf_lit(&t, "*");
        size_t used = put_mrkdwn(&t, l->name, 200, 0) + 3;
        buf_lit(&t, "*\n");
        put_mrkdwn(&t, l->value, FIELD_MAX_CHARS - used, 1);
        buf_lit(b, "{\"type\":\"mrkdwn\",\"text\":");
        buf_json_take(b, h, &t);
        buf_lit(b, "}");
        if (i % FIELDS_PER_SECTION == FIELDS_PER_SECTION - 1 || i + 1 == shown) buf_lit(b, "]}");
    }
    if (labels > shown) {
        buf_lit(b, ",{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":\"");
        buf_u64(b, labels - shown);
        buf_lit(b, " more labels not shown\"}]}");
    }

    /* Mentions. */
    if (has_mentions(m)) {
        put_mentions(&t, m, ":bell: ");
        buf_lit(b, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
        buf_json_take(b, h, &t);
        buf_lit(b, "}}");
    }

    /* Link buttons: url buttons open Herald's signed links in the browser. */
    size_t buttons = 0;
    for (size_t i = 0; m->links && i < m->link_count && buttons < BUTTONS_MAX; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        buf_lit(b, buttons == 0 ? ",{\"type\":\"actions\",\"elements\":[" : ",");
        buf_lit(b, "{\"type\":\"button\",\"action_id\":\"herald-link-");
        buf_u64(b, i);
        buf_lit(b, "\",\"text\":{\"type\":\"plain_text\",\"emoji\":true,\"text\":");
        put_plain(&t, l->label.len ? l->label : default_link_label(l->kind), 0, BUTTON_TEXT_MAX_CHARS);
        if (all_space(t.p, t.len)) {
            t.len = 0;
            buf_str(&t, default_link_label(l->kind));
        }
        buf_json_take(b, h, &t);
        buf_lit(b, "},\"url\":");
        put_url(&t, l->url, 0);
        buf_json_take(b, h, &t);
        if (l->kind == HERALD_LINK_ACKNOWLEDGE) buf_lit(b, ",\"style\":\"primary\"");
        buf_lit(b, "}");
        buttons++;
    }
    if (buttons > 0) buf_lit(b, "]}");

    buf_lit(b, "],\"unfurl_links\":false,\"unfurl_media\":false}");
    if (t.failed && !b->failed) b->failed = t.failed;
    free(t.p);
    return unmentioned;
}

/* A body too long for blocks: one mrkdwn text with everything, which Slack takes up to 40,000
 * characters. Returns the unmentioned count; *chars gets the text's length in characters. */
static size_t put_text_message(buf *b, const herald_host_api *h, const herald_message *m, size_t *chars) {
    buf t = {0};
    buf_lit(&t, severity_emoji(m));
    buf_lit(&t, " *");
    put_title_mrkdwn(&t, m->title, 2000);
    buf_lit(&t, "*\n");
    put_status_line(&t, m);
    buf_lit(&t, "\n\n");
    buf_str(&t, m->body);
    size_t labels = m->labels ? m->label_count : 0;
    if (labels > MAX_LABELS) labels = MAX_LABELS;
    if (labels > 0) buf_lit(&t, "\n");
    for (size_t i = 0; i < labels; i++) {
        buf_lit(&t, "\n*");
        put_mrkdwn(&t, m->labels[i].name, 200, 0);
        buf_lit(&t, "*: ");
        put_mrkdwn(&t, m->labels[i].value, 1000, 0);
    }
    int first = 1;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        buf_lit(&t, first ? "\n\n<" : " · <");
        first = 0;
        put_url(&t, l->url, 1);
        buf_lit(&t, "|");
        put_mrkdwn(&t, l->label.len ? l->label : default_link_label(l->kind), BUTTON_TEXT_MAX_CHARS, 0);
        buf_lit(&t, ">");
    }
    size_t unmentioned = put_mentions(&t, m, "\n\n:bell: ");
    *chars = t.failed ? 0 : char_count(t.p, t.len);
    buf_lit(b, "{\"text\":");
    buf_json_take(b, h, &t);
    buf_lit(b, ",\"unfurl_links\":false,\"unfurl_media\":false}");
    free(t.p);
    return unmentioned;
}

static int32_t host_failure(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *what) {
    char msg[160];
    if (status == NO_MEMORY) snprintf(msg, sizeof msg, "out of memory while %s", what);
    else snprintf(msg, sizeof msg, "the host failed while %s (status %d)", what, (int)status);
    h->set_reason(ex, VIEW(msg, strlen(msg)));
    return status == NO_MEMORY || status == HERALD_ERR_INTERNAL ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

static size_t snippet(herald_str body, char *out, size_t cap);

#define MESSAGE_OK(m) ((m) != NULL && HERALD_HAS_FIELD(herald_message, extra_json, (m)->struct_size))

static int32_t slack_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m)) {
        h->set_reason(ex, SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        /* An incoming webhook has exactly one destination: its channel. Never post elsewhere's message here. */
        char who[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 160];
        snippet(m->recipient, who, sizeof who);
        snprintf(reason, sizeof reason, "a Slack incoming webhook posts only to its own channel, so it cannot send to recipient '%s'", who);
        h->set_reason(ex, VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    size_t body_chars = m->body.ptr ? char_count(m->body.ptr, m->body.len) : 0;
    buf b = {0};
    size_t unmentioned;
    if (body_chars <= BLOCKS_BODY_MAX_CHARS) {
        unmentioned = put_blocks_message(&b, h, m);
    } else {
        size_t chars = 0;
        unmentioned = put_text_message(&b, h, m, &chars);
        if (!b.failed && chars > TEXT_MAX_CHARS) {
            char reason[300];
            snprintf(reason, sizeof reason,
                     "the message is %zu characters, over the 40000 Slack shows (the body alone is %zu); "
                     "shorten the integration's template or the incident text", chars, body_chars);
            h->set_reason(ex, VIEW(reason, strlen(reason)));
            free(b.p);
            return HERALD_OUTCOME_FAILED;
        }
        if (!b.failed) h->log(HERALD_LOG_INFO, SV("the body is too long for Block Kit, so the Slack message is plain mrkdwn text"));
    }
    if (b.failed) {
        free(b.p);
        return host_failure(h, ex, b.failed, "building the JSON body");
    }
    if (unmentioned > 0) {
        char line[200];
        snprintf(line, sizeof line, "%zu mention(s) are shown as plain names: Slack incoming webhooks mention only id_kind user_id or user_group_id", unmentioned);
        h->log(HERALD_LOG_WARNING, VIEW(line, strlen(line)));
    }

    herald_pair headers[] = {
        {SV("Content-Type"), SV("application/json; charset=utf-8")},
        {SV("User-Agent"), SV("Herald-Slack/1.0")},
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

/* Up to SNIPPET_BYTES of the body, safe in a log line: control characters become spaces (runs
 * collapse), invalid UTF-8 becomes '?', a character is never cut in half, "…" marks a cut. */
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

/* The body without surrounding whitespace. */
static herald_str trimmed(herald_str s) {
    const char *p = s.ptr;
    size_t n = p ? s.len : 0;
    while (n > 0 && (p[0] == ' ' || p[0] == '\n' || p[0] == '\r' || p[0] == '\t')) { p++; n--; }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t')) n--;
    return VIEW(p, n);
}

/* Slack's error bodies are a bare code: lower-case letters and underscores. */
static int is_error_code(herald_str s) {
    if (s.len == 0 || s.len > 64) return 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!((s.ptr[i] >= 'a' && s.ptr[i] <= 'z') || s.ptr[i] == '_' || (s.ptr[i] >= '0' && s.ptr[i] <= '9'))) return 0;
    }
    return 1;
}

typedef struct {
    const char *code;
    const char *meaning;
} error_info;

static const error_info known_errors[] = {
    {"invalid_payload", "Slack could not read the message (a plugin bug; please report it)"},
    {"no_text", "the message had no text (a plugin bug; please report it)"},
    {"invalid_blocks", "Slack rejected the message's blocks; shorten the integration's template, or report a plugin bug"},
    {"invalid_blocks_format", "Slack rejected the message's blocks (a plugin bug; please report it)"},
    {"msg_blocks_too_long", "the message is too long for Slack's blocks; shorten the integration's template or the incident text"},
    {"too_many_attachments", "the message has too many attachments (a plugin bug; please report it)"},
    {"invalid_token", "the webhook's token is invalid or was revoked; create a new incoming webhook and update setting 'webhook_url'"},
    {"no_service", "the webhook was removed or disabled; create a new incoming webhook and update setting 'webhook_url'"},
    {"no_service_id", "the webhook URL is incomplete; copy it again into setting 'webhook_url'"},
    {"no_active_hooks", "the webhook is disabled; enable it in the Slack app's settings or create a new one"},
    {"no_team", "the webhook URL names no Slack workspace; copy it again into setting 'webhook_url'"},
    {"team_disabled", "the Slack workspace is disabled"},
    {"channel_not_found", "the webhook's channel no longer exists; create a new incoming webhook and update setting 'webhook_url'"},
    {"channel_is_archived", "the webhook's channel is archived; unarchive it or create a new incoming webhook"},
    {"action_prohibited", "a workspace admin has restricted posting to the webhook's channel"},
    {"posting_to_general_channel_denied", "only admins may post in the workspace's general channel; point the webhook at another channel"},
    {"user_not_found", "the webhook's user no longer exists; create a new incoming webhook"},
};

static int32_t slack_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    herald_str body = trimmed(r->body);
    /* Success is exactly HTTP 200 with the body "ok" (Slack sends no message id). */
    if (status == 200 && str_eq(body, "ok") && !r->body_truncated) return HERALD_OUTCOME_DELIVERED;

    char snip[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 400];
    size_t snip_len = snippet(body, snip, sizeof snip);
    const char *meaning = NULL;
    if (is_error_code(body)) {
        for (size_t i = 0; i < sizeof known_errors / sizeof *known_errors; i++) {
            if (str_eq(body, known_errors[i].code)) meaning = known_errors[i].meaning;
        }
    }
    if (status < 100 || status > 599) {
        snprintf(reason, sizeof reason, "Slack answered with an invalid HTTP status %d", (int)status);
    } else if (status >= 200 && status <= 299) {
        snprintf(reason, sizeof reason, "Slack answered HTTP %d without \"ok\"%s%s", (int)status, snip_len ? ": " : " (empty body)", snip);
    } else if (status == 429) {
        snprintf(reason, sizeof reason, "Slack is rate limiting the webhook (HTTP 429%s%s); it takes about one message per second", snip_len ? " " : "", snip);
    } else if (meaning) {
        snprintf(reason, sizeof reason, "Slack refused the message (HTTP %d %s): %s", (int)status, snip, meaning);
    } else {
        snprintf(reason, sizeof reason, "Slack answered HTTP %d%s%s", (int)status, snip_len ? ": " : " with an empty body", snip);
    }
    h->set_reason(ex, VIEW(reason, strlen(reason)));
    /* No set_retry_after: for 429 the host honours Slack's Retry-After header itself. */
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return HERALD_OUTCOME_RETRY;
    return HERALD_OUTCOME_FAILED; /* 2xx without ok, 1xx, 3xx, other 4xx: the same request fails again */
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"webhook_url\"],\"properties\":{"
    "\"webhook_url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\",\"writeOnly\":true,"
    "\"title\":\"Webhook URL\",\"description\":\"The incoming webhook's URL from the Slack app's settings "
    "(https://hooks.slack.com/services/T.../B.../...). The URL is the webhook's only credential.\","
    "\"examples\":[\"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\"]}"
    "}}";

static const herald_str egress_hosts[] = {LIT("hooks.slack.com"), LIT("hooks.slack-gov.com")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = LIT("slack"),
    .name = LIT("Slack incoming webhook"),
    .version = LIT("1.0.0"),
    .license = LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_SLACK_MRKDWN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    /* Block Kit holds about 13,000 characters of text per message (msg_blocks_too_long past
     * that); 12,000 for the body leaves room for the header, fields and buttons. */
    .size_limit = BLOCKS_BODY_MAX_CHARS,
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = LIT("{{description}}"),
    .instance_create = slack_create,
    .instance_destroy = slack_destroy,
    .prepare = slack_prepare,
    .on_response = slack_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    if (negotiate == NULL || !HERALD_HAS_FIELD(herald_negotiate, refusal, negotiate->struct_size)) return NULL;
    if (negotiate->host_abi_major != HERALD_ABI_MAJOR) {
        negotiate->refusal = SV("the slack plugin speaks Herald plugin ABI 1 only");
        return NULL;
    }
    if (!str_eq(negotiate->product, "herald")) {
        negotiate->refusal = SV("the slack plugin loads only into Herald (product \"herald\")");
        return NULL;
    }
    descriptor.abi_minor = negotiate->plugin_abi_minor = herald_negotiated_minor(negotiate);
    return &descriptor;
}
