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
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MARKDOWN_MAX_BYTES = 4096, /* WeCom: markdown.content at most 4096 bytes of UTF-8 */
    TEXT_MAX_BYTES = 2048,     /* WeCom: text.content at most 2048 bytes of UTF-8 */
    MAX_LABELS = 30,           /* more would only crowd out the body */
    MAX_LINK_LABEL = 64,       /* bytes of a link's label that are shown */
    MAX_URL_BYTES = 2048,      /* a longer link is left out */
    SNIPPET_BYTES = 200,       /* how much of a provider message goes into a reason */
    RATE_LIMIT_RETRY_MS = 60000 /* 45009: WeCom counts 20 messages per rolling minute */
};

/* The string views, the output buffer, config reading, host-failure reasons and the severity
 * and link names are hk_* from herald/plugin_kit.h. */

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;                    /* the bot's webhook URL, key included: a credential */
    int text_mode;               /* msg_type "text" instead of "markdown" */
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 1); /* the URL carries the bot key: wiped before it is freed */
    free(in);
}

/* True when the query of `url` has a non-empty `key` parameter: the bot's credential. */
static int url_has_key(const hk_ostr *url) {
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

/* The host validated the config against config_schema before instance_create; these checks keep
 * the plugin safe if a host does not, and name the setting in every sentence. */
static int read_config(instance *in, char *err) {
    static const char *const known[] = {"webhook_url", "msg_type"};
    const herald_host_api *h = in->host;
    hk_ostr type = {0};
    int rc = -1, got;

    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "wecom", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required: paste the bot's webhook address from WeCom");
        goto done;
    }
    herald_str u = HK_VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && hk_str_ieq(HK_VIEW(u.ptr, 7), "http://")) || (u.len > 8 && hk_str_ieq(HK_VIEW(u.ptr, 8), "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { hk_fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    if (!url_has_key(&in->url)) {
        hk_fail(err, "setting 'webhook_url' has no '?key=...' part: paste the bot's full webhook address, key included");
        goto done;
    }

    if ((got = hk_read_opt(h, "msg_type", &type, err)) < 0) goto done;
    if (got == 1) {
        if (strcmp(type.p, "text") == 0) in->text_mode = 1;
        else if (strcmp(type.p, "markdown") != 0) { hk_fail(err, "setting 'msg_type' must be \"markdown\" or \"text\""); goto done; }
    }
    if (hk_plain_http_to_remote_host(&in->url))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'webhook_url' uses plain http: the bot key travels unencrypted"));
    rc = 0;
done:
    hk_ostr_free(&type, 0);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(wecom_create, instance, "wecom", read_config, instance_free)

static void wecom_destroy(void *inst) { instance_free(inst); }

/* ---- building the message -------------------------------------------------------------------- */

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

/* Text the plugin adds itself (labels, link labels, display names) is not escaped by the core,
 * which escapes only title and body. Line breaks and control characters become spaces, invalid
 * UTF-8 becomes U+FFFD, and in markdown the characters WeCom interprets as markup that could
 * inject a mention, a font tag or a link (< > [ ]) become their full-width forms. At most
 * `max` bytes of input are used; a character is never cut in half. */
static void put_plain(hk_buf *b, herald_str s, int markdown, size_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? s.len : 0;
    if (n > max) n = max;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7f) { hk_buf_put(b, " ", 1); i++; continue; }
        if (markdown && (c == '<' || c == '>' || c == '[' || c == ']')) {
            /* U+FF1C U+FF1E U+FF3B U+FF3D */
            const char *full = c == '<' ? "\xef\xbc\x9c" : c == '>' ? "\xef\xbc\x9e" : c == '[' ? "\xef\xbc\xbb" : "\xef\xbc\xbd";
            hk_buf_put(b, full, 3);
            i++;
            continue;
        }
        size_t k = hk_utf8_seq(p + i, s.len - i);
        if (k == 0) { hk_buf_lit(b, "\xef\xbf\xbd"); i++; continue; }
        if (i + k > n) break;
        hk_buf_put(b, p + i, k);
        i += k;
    }
}

/* Title and body arrive rendered and escaped for markdown (the descriptor's text format). In
 * text mode nothing renders markdown, so the CommonMark escapes (a backslash before ASCII
 * punctuation) are undone; everything else is kept as it is. */
static void put_unescaped(hk_buf *b, herald_str s) {
    const char *p = s.ptr;
    size_t n = s.ptr ? s.len : 0, start = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)p[i + 1];
        if (p[i] == '\\' && c > 0x20 && c < 0x7f && !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
            hk_buf_put(b, p + start, i - start);
            start = i + 1; /* keep the punctuation, drop the backslash */
            i++;
        }
    }
    hk_buf_put(b, p + start, n - start);
}

/* The title on one line (a line break would end the bold run); "Herald incident" when empty. */
static void put_title(hk_buf *b, herald_str title, int unescape) {
    if (title.ptr == NULL || title.len == 0) {
        hk_buf_lit(b, "Herald incident");
        return;
    }
    size_t from = b->len;
    if (unescape) put_unescaped(b, title);
    else hk_buf_str(b, title);
    for (size_t i = from; !b->failed && i < b->len; i++) {
        if (b->p[i] == '\n' || b->p[i] == '\r') b->p[i] = ' ';
    }
}

/* A link URL as it may stand in markdown `[label](url)` or on a text line: only http(s) links (a
 * javascript: or data: URL is never a Herald link) of sane length; bytes that would end or break
 * the link (space, parentheses, angle brackets, quotes, control and non-ASCII bytes) are
 * percent-encoded, which leaves the URL's meaning unchanged. Returns 0 when the link is left out. */
static int put_url(hk_buf *b, herald_str url) {
    if (url.ptr == NULL || url.len == 0 || url.len > MAX_URL_BYTES) return 0;
    if (!(url.len > 7 && hk_str_ieq(HK_VIEW(url.ptr, 7), "http://")) && !(url.len > 8 && hk_str_ieq(HK_VIEW(url.ptr, 8), "https://"))) return 0;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == '"' || c == '\\' || c == '[' || c == ']' || c == '`') {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            hk_buf_put(b, enc, 3);
        } else {
            hk_buf_put(b, &url.ptr[i], 1);
        }
    }
    return 1;
}

static int url_usable(herald_str url) {
    if (url.ptr == NULL || url.len == 0 || url.len > MAX_URL_BYTES) return 0;
    return (url.len > 7 && hk_str_ieq(HK_VIEW(url.ptr, 7), "http://")) || (url.len > 8 && hk_str_ieq(HK_VIEW(url.ptr, 8), "https://"));
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
    if (hk_str_eq(x->id_kind, "user_id") || hk_str_eq(x->id_kind, "userid")) {
        return id_charset(x->id, "_-.@", 64) ? MENTION_USERID : MENTION_NONE;
    }
    if (hk_str_eq(x->id_kind, "mobile")) {
        if (hk_str_eq(x->id, "@all")) return MENTION_MOBILE;
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
static void put_unmentioned(hk_buf *b, const herald_mention *x, int markdown) {
    hk_buf_lit(b, "@");
    put_plain(b, x->display_name.len ? x->display_name : x->id, markdown, 64);
}

/* The message content as WeCom shows it (before JSON escaping). With `labels` 0 the labels are
 * left out: the first thing to give up when the content would exceed WeCom's limit. In text
 * mode a body longer than `body_cap` bytes is cut there (never inside a character) and ends
 * with "…"; `*body_bytes` gets the bytes the body took. Returns the number of mentions that
 * could not become real @mentions (for the log). */
static size_t put_content(hk_buf *b, const herald_message *m, int text_mode, int labels, size_t body_cap, size_t *body_bytes) {
    size_t unmentioned = 0;
    int md = !text_mode;
    /* Title line: bold in markdown, "[Severity] title" in text. */
    if (md) hk_buf_lit(b, "**");
    else {
        hk_buf_lit(b, "[");
        hk_buf_lit(b, hk_severity_name(m->severity));
        hk_buf_lit(b, "] ");
    }
    put_title(b, m->title, text_mode);
    if (md) hk_buf_lit(b, "**");
    hk_buf_lit(b, "\n");
    /* Severity (in colour), state and number. */
    if (md) {
        hk_buf_lit(b, "><font color=\"");
        hk_buf_lit(b, severity_colour(m->severity));
        hk_buf_lit(b, "\">");
        hk_buf_lit(b, hk_severity_name(m->severity));
        hk_buf_lit(b, "</font> · ");
        if (is_ended(m)) hk_buf_lit(b, "<font color=\"info\">");
        hk_buf_lit(b, state_word(m));
        if (is_ended(m)) hk_buf_lit(b, "</font>");
    } else {
        hk_buf_lit(b, state_word(m));
    }
    if (m->incident_number > 0) {
        hk_buf_lit(b, " · #");
        hk_buf_u64(b, m->incident_number);
    }
    if (m->event == HERALD_EVENT_TEST) hk_buf_lit(b, " · test message");
    hk_buf_lit(b, "\n");
    /* Body. */
    *body_bytes = 0;
    if (m->body.len > 0 && m->body.ptr) {
        hk_buf_lit(b, "\n");
        size_t from = b->len;
        if (md) hk_buf_str(b, m->body);
        else put_unescaped(b, m->body);
        if (!md && !b->failed && b->len - from > body_cap) {
            size_t cut = from + body_cap;
            while (cut > from && ((unsigned char)b->p[cut] & 0xc0) == 0x80) cut--;
            b->len = cut;
            hk_buf_lit(b, "\xe2\x80\xa6");
        }
        if (!b->failed) *body_bytes = b->len - from;
        hk_buf_lit(b, "\n");
    }
    /* Labels. */
    size_t count = labels && m->labels ? m->label_count : 0;
    if (count > MAX_LABELS) count = MAX_LABELS;
    if (count > 0) hk_buf_lit(b, "\n");
    for (size_t i = 0; i < count; i++) {
        const herald_pair *l = &m->labels[i];
        if (md) hk_buf_lit(b, ">");
        put_plain(b, l->name, md, 128);
        hk_buf_lit(b, md ? ": <font color=\"comment\">" : ": ");
        put_plain(b, l->value, md, 512);
        hk_buf_lit(b, md ? "</font>\n" : "\n");
    }
    /* Links: markdown links, or "Label: url" lines in text. */
    int first = 1;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        herald_str label = l->label.len ? l->label : hk_link_label(l);
        if (first) hk_buf_lit(b, "\n");
        if (md) {
            if (!first) hk_buf_lit(b, " · ");
            hk_buf_lit(b, "[");
            put_plain(b, label, 1, MAX_LINK_LABEL);
            hk_buf_lit(b, "](");
            put_url(b, l->url);
            hk_buf_lit(b, ")");
        } else {
            put_plain(b, label, 0, MAX_LINK_LABEL);
            hk_buf_lit(b, ": ");
            put_url(b, l->url); /* encoded too, so clients still see one clickable link */
            hk_buf_lit(b, "\n");
        }
        first = 0;
    }
    if (md && !first) hk_buf_lit(b, "\n");
    /* Mentions: in markdown <@userid> inside the content. Markdown cannot mention by mobile
     * number, so those people are named as "@Name" text (no notification). In text mode the
     * mentions travel in mentioned_list / mentioned_mobile_list, and WeCom appends them. */
    if (md) {
        int any = 0;
        for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
            const herald_mention *x = &m->mentions[i];
            if (x->id.len == 0 && x->display_name.len == 0) continue;
            hk_buf_lit(b, any ? " " : "\n");
            any = 1;
            if (mention_kind(x) == MENTION_USERID && !hk_str_eq(x->id, "@all")) {
                hk_buf_lit(b, "<@");
                hk_buf_str(b, x->id);
                hk_buf_lit(b, ">");
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
            hk_buf_lit(b, any ? " " : "\n");
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
static void put_mention_list(hk_buf *b, const herald_host_api *h, const herald_message *m, enum mention_kind kind, const char *name) {
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
        hk_buf_lit(b, any ? "," : ",\"");
        if (!any) {
            hk_buf_lit(b, name);
            hk_buf_lit(b, "\":[");
        }
        any = 1;
        hk_buf_json(b, h, x->id);
    }
    if (any) hk_buf_lit(b, "]");
}

static size_t wecom_snippet(herald_str text, int json, char *out, size_t cap);

static int32_t wecom_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        /* A group bot has exactly one destination: its group. Never post elsewhere's message here. */
        char who[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 160];
        wecom_snippet(m->recipient, 0, who, sizeof who);
        snprintf(reason, sizeof reason, "a WeCom group bot posts only to its own group, so it cannot send to recipient '%s'", who);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    const size_t limit = in->text_mode ? TEXT_MAX_BYTES : MARKDOWN_MAX_BYTES;

    /* The content, with labels; without them when that is what it takes to fit. */
    hk_buf content = {0};
    size_t body_bytes = 0;
    size_t unmentioned = put_content(&content, m, in->text_mode, 1, SIZE_MAX, &body_bytes);
    if (!content.failed && content.len > limit && m->label_count > 0) {
        content.len = 0;
        unmentioned = put_content(&content, m, in->text_mode, 0, SIZE_MAX, &body_bytes);
        if (!content.failed && content.len <= limit)
            h->log(HERALD_LOG_INFO, HK_SV("left the labels out of a WeCom message so it fits WeCom's size limit"));
    }
    /* Text mode holds 2048 bytes, but the descriptor's size limit is one per plugin (3072, for
     * markdown), so the core may hand over a body that cannot fit a text message. Plain text has
     * no markup to break, so the body is cut here rather than the notification lost. */
    if (!content.failed && content.len > limit && in->text_mode && body_bytes > content.len - limit + 3) {
        size_t cap = body_bytes - (content.len - limit) - 3;
        content.len = 0;
        unmentioned = put_content(&content, m, in->text_mode, 0, cap, &body_bytes);
        if (!content.failed && content.len <= limit)
            h->log(HERALD_LOG_INFO, HK_SV("cut the body of a WeCom text message to fit WeCom's 2048-byte limit"));
    }
    if (content.failed) {
        hk_buf_free(&content);
        return hk_host_failure(h, ex, content.failed, "building the message");
    }
    if (content.len > limit) {
        char reason[300];
        snprintf(reason, sizeof reason,
                 "the %s message is %zu bytes, over the %zu bytes WeCom accepts (the body alone is %zu bytes); "
                 "shorten the integration's template or the incident text",
                 in->text_mode ? "text" : "markdown", content.len, limit, m->body.len);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        hk_buf_free(&content);
        return HERALD_OUTCOME_FAILED;
    }
    if (unmentioned > 0) {
        char line[200];
        snprintf(line, sizeof line, "%zu mention(s) could not be WeCom @mentions (%s) and are shown as plain names",
                 unmentioned, in->text_mode ? "WeCom text mentions need id_kind user_id or mobile" : "WeCom markdown mentions need id_kind user_id; mobile numbers need msg_type text");
        h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
    }

    hk_buf b = {0};
    if (in->text_mode) {
        hk_buf_lit(&b, "{\"msgtype\":\"text\",\"text\":{\"content\":");
        hk_buf_json(&b, h, HK_VIEW(content.p, content.len));
        put_mention_list(&b, h, m, MENTION_USERID, "mentioned_list");
        put_mention_list(&b, h, m, MENTION_MOBILE, "mentioned_mobile_list");
        hk_buf_lit(&b, "}}");
    } else {
        hk_buf_lit(&b, "{\"msgtype\":\"markdown\",\"markdown\":{\"content\":");
        hk_buf_json(&b, h, HK_VIEW(content.p, content.len));
        hk_buf_lit(&b, "}}");
    }
    hk_buf_free(&content);
    if (b.failed) {
        int32_t failed = b.failed; /* hk_buf_free resets it */
        hk_buf_free(&b);
        return hk_host_failure(h, ex, failed, "building the JSON body");
    }

    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json; charset=utf-8")},
        {HK_SV("User-Agent"), HK_SV("Herald-WeCom/1.0")},
    };
    return hk_post(h, ex, HK_VIEW(in->url.p, in->url.len), headers, sizeof headers / sizeof *headers, &b);
}

/* ---- reading the answer ---------------------------------------------------------------------- */

/* A tiny JSON reader: just enough to find members of the top-level object without trusting
 * the input. Every function stops at `end` and fails on anything malformed.
 *
 * Kept local rather than hk_json_member / hk_json_int / hk_quote_string / hk_snippet, because
 * those answer differently here and outcomes or reasons would change: this reader ignores bytes
 * after the top-level object, takes only the letters of true/false/null in a literal, nests one
 * level deeper, and wecom_parse_int accepts at most 10 digits; wecom_snippet collapses every run
 * of spaces (literal ones too), caps its decoded output (not its input) at SNIPPET_BYTES, and
 * shows a lone surrogate as U+FFFD and a non-ASCII escaped byte as '?'. */
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
            if (raw) *raw = HK_VIEW(start, (size_t)(s->p - start));
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
static int wecom_json_member(herald_str body, const char *name, herald_str *value) {
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
        if (!found && hk_str_eq(key, name)) {
            *value = HK_VIEW(vstart, (size_t)(s.p - vstart));
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
static int wecom_parse_int(herald_str v, long *out) {
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

/* Up to SNIPPET_BYTES of text, safe in a log line and a reason: `json` != 0 decodes the escapes
 * of a raw JSON string first; control characters become spaces (runs collapse), invalid UTF-8
 * becomes '?', a character is never cut in half, and "…" marks a cut. */
static size_t wecom_snippet(herald_str text, int json, char *out, size_t cap) {
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
            if (e == 'u' && i + 6 <= n && hk_hex4(p + i + 2, &cp) == 0) {
                used = 6;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 12 <= n && p[i + 6] == '\\' && p[i + 7] == 'u') {
                    uint32_t lo;
                    if (hk_hex4(p + i + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        used = 12;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
                if (cp < 0x20 || cp == 0x7f) tmp[t++] = ' ';
                else hk_put_utf8(tmp, &t, cp);
            } else {
                tmp[t++] = e == 'n' || e == 't' || e == 'r' || e == 'b' || e == 'f' || (unsigned char)e < 0x20 ? ' '
                         : (unsigned char)e >= 0x7f ? '?' : e;
            }
        } else if (c < 0x20 || c == 0x7f) {
            tmp[t++] = ' ';
        } else {
            size_t k = hk_utf8_seq((const unsigned char *)p + i, n - i);
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
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    char snip[SNIPPET_BYTES + 8], reason[SNIPPET_BYTES + 400];
    int32_t status = r->status;

    if (status < 200 || status > 299) {
        size_t snip_len = wecom_snippet(r->body, 0, snip, sizeof snip);
        if (status < 100 || status > 599)
            snprintf(reason, sizeof reason, "WeCom answered with an invalid HTTP status %d", (int)status);
        else
            snprintf(reason, sizeof reason, "WeCom answered HTTP %d%s%s", (int)status, snip_len ? ": " : " with an empty body", snip);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        /* No set_retry_after: the host honours a Retry-After header itself. */
        if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return HERALD_OUTCOME_RETRY;
        return HERALD_OUTCOME_FAILED;
    }

    /* HTTP 2xx says nothing: WeCom answers 200 for errors too. Only errcode 0 is success. */
    herald_str v = {0}, msg = {0};
    int has_code = wecom_json_member(r->body, "errcode", &v);
    long code = 0;
    if (has_code != 1 || wecom_parse_int(v, &code) != 0) {
        size_t snip_len = wecom_snippet(r->body, 0, snip, sizeof snip);
        snprintf(reason, sizeof reason, "WeCom answered HTTP %d without a readable errcode%s%s%s", (int)status,
                 r->body_truncated ? " (the body was cut at the host's size cap)" : "",
                 snip_len ? ": " : " (empty body)", snip);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    if (code == 0) return HERALD_OUTCOME_DELIVERED; /* the group bot API returns no message id */

    int has_msg = wecom_json_member(r->body, "errmsg", &msg) == 1 && msg.len >= 2 && msg.ptr[0] == '"';
    if (has_msg) wecom_snippet(HK_VIEW(msg.ptr + 1, msg.len - 2), 1, snip, sizeof snip);
    else snprintf(snip, sizeof snip, "no errmsg");
    const errcode_info *info = NULL;
    for (size_t i = 0; i < sizeof known_errcodes / sizeof *known_errcodes; i++) {
        if (known_errcodes[i].code == code) info = &known_errcodes[i];
    }
    if (info) snprintf(reason, sizeof reason, "WeCom refused the message with errcode %ld (%s): %s", code, snip, info->meaning);
    else snprintf(reason, sizeof reason, "WeCom refused the message with errcode %ld: %s", code, snip);
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
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

static const herald_str egress_hosts[] = {HK_LIT("qyapi.weixin.qq.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("wecom"),
    .name = HK_LIT("WeCom group bot"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
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
    .default_template = HK_LIT("{{description}}"),
    .instance_create = wecom_create,
    .instance_destroy = wecom_destroy,
    .prepare = wecom_prepare,
    .on_response = wecom_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "wecom");
}
