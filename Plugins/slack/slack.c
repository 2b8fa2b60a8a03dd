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
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

/* ---- small helpers --------------------------------------------------------------------------- */

/* The common helpers (string views, the output buffer, config reading, snippets, names) are hk_*
 * from herald/plugin_kit.h; these are Slack's own. */

/* Characters (Unicode scalar values; an invalid byte counts as one, as it becomes U+FFFD). */
static size_t char_count(const char *p, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        size_t k = hk_utf8_seq((const unsigned char *)p + i, n - i);
        i += k ? k : 1;
        count++;
    }
    return count;
}

/* Appends a JSON string built in scratch buffer `t`, then empties `t` for the next one. */
static void buf_json_take(hk_buf *b, const herald_host_api *h, hk_buf *t) {
    if (t->failed) b->failed = t->failed;
    else hk_buf_json(b, h, HK_VIEW(t->p, t->len));
    t->len = 0;
}

/* ---- text for Slack -------------------------------------------------------------------------- */

/* Writes text for a plain_text object into `b` (or only counts it when `b` is NULL), stopping
 * before the character that would pass `limit`. With `decode` the three entities the core's
 * mrkdwn escaping produces (&amp; &lt; &gt;) become the raw characters again, in one pass, so
 * "&amp;lt;" becomes "&lt;" as it should; without it the text is taken raw (link labels, which
 * the core does not escape). Control characters become spaces and invalid UTF-8 U+FFFD.
 * Returns the characters written (or counted). */
static size_t emit_plain(hk_buf *b, herald_str s, int decode, size_t limit) {
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
        } else if ((k = hk_utf8_seq((const unsigned char *)p + i, n - i)) == 0) {
            out = "\xef\xbf\xbd";
            k = 1;
            bytes = 3;
        } else {
            bytes = k;
        }
        if (b) hk_buf_put(b, out, bytes);
        i += k;
    }
    return chars;
}

/* At most `max` characters of plain_text (see emit_plain), "…" ending a cut. */
static size_t put_plain(hk_buf *b, herald_str s, int decode, size_t max) {
    if (max == 0) return 0;
    if (emit_plain(NULL, s, decode, SIZE_MAX) <= max) return emit_plain(b, s, decode, max);
    size_t chars = emit_plain(b, s, decode, max - 1);
    hk_buf_lit(b, "\xe2\x80\xa6");
    return chars + 1;
}

/* Writes raw text escaped for mrkdwn (& < > as entities) into `b` (or only counts it when `b`
 * is NULL), stopping before a character whose output would pass `limit` characters (an entity
 * counts as its length). Line breaks become spaces unless `multiline`; other control characters
 * always do; invalid UTF-8 becomes U+FFFD. Returns the characters written (or counted). */
static size_t emit_mrkdwn(hk_buf *b, herald_str s, size_t limit, int multiline) {
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
        else if ((k = hk_utf8_seq((const unsigned char *)p + i, n - i)) == 0) { out = "\xef\xbf\xbd"; k = 1; bytes = 3; }
        else bytes = k;
        if (chars + w > limit) break;
        if (b) hk_buf_put(b, out, bytes);
        chars += w;
        i += k;
    }
    return chars;
}

/* At most `max` characters of escaped mrkdwn (see emit_mrkdwn), "…" ending a cut. */
static size_t put_mrkdwn(hk_buf *b, herald_str s, size_t max, int multiline) {
    if (max == 0) return 0;
    if (emit_mrkdwn(NULL, s, SIZE_MAX, multiline) <= max) return emit_mrkdwn(b, s, max, multiline);
    size_t chars = emit_mrkdwn(b, s, max - 1, multiline);
    hk_buf_lit(b, "\xe2\x80\xa6");
    return chars + 1;
}

/* The byte offset where a chunk of at most `max` characters of mrkdwn text starting at `start`
 * should end: after a line break if there is one in the second half of the chunk, else after a
 * space, else anywhere; never inside a character, an entity (&amp;) or a <...> sequence (a
 * link or a mention), which would break it in two. */
static size_t chunk_end(const char *p, size_t n, size_t start, size_t max) {
    size_t i = start, chars = 0;
    while (i < n && chars < max) {
        size_t k = hk_utf8_seq((const unsigned char *)p + i, n - i);
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
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;                 /* the webhook URL: a credential */
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 1);
    free(in);
}

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"webhook_url"};
    const herald_host_api *h = in->host;
    int rc = -1, got;

    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "slack", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required: paste the incoming webhook's URL from Slack");
        goto done;
    }
    herald_str u = HK_VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && hk_str_ieq(HK_VIEW(u.ptr, 7), "http://")) || (u.len > 8 && hk_str_ieq(HK_VIEW(u.ptr, 8), "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { hk_fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    if (!strstr(in->url.p, "/services/"))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'webhook_url' has no /services/ path: Slack incoming webhooks look like https://hooks.slack.com/services/T.../B.../..."));
    if (hk_plain_http_to_remote_host(&in->url))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'webhook_url' uses plain http: the webhook's secret path travels unencrypted"));
    rc = 0;
done:
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(slack_create, instance, "slack", read_config, instance_free)

static void slack_destroy(void *inst) { instance_free(inst); }

/* ---- building the message -------------------------------------------------------------------- */

static int is_ended(const herald_message *m) {
    return m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED;
}

/* Slack has no colour for blocks; the emoji carries the severity (a check mark once it is over).
 * Kept local, not hk_severity_emoji: Slack takes its :shortcode: names, and unknown is :information_source:. */
static const char *severity_shortcode(const herald_message *m) {
    if (is_ended(m)) return ":white_check_mark:";
    return m->severity == HERALD_SEVERITY_CRITICAL ? ":rotating_light:" : m->severity == HERALD_SEVERITY_WARNING ? ":warning:" : ":information_source:";
}

/* hk_status_name, except "Snoozed" for a snooze and "Open" (not "Unknown") for an unknown status. */
static const char *state_word(const herald_message *m) {
    if (m->event == HERALD_EVENT_SNOOZED) return "Snoozed";
    return m->status >= 1 && m->status <= 4 ? hk_status_name(m->status) : "Open";
}

static herald_str default_link_label(int32_t kind) {
    const char *label = hk_link_default_label(kind);
    return HK_VIEW(label, strlen(label));
}

/* Writes a link URL for Slack: spaces, control and non-ASCII bytes percent-encoded (the
 * standard mapping of an IRI to a URI, so the link means the same), and in mrkdwn <url|label>
 * also the bytes that would end or split the link, with '&' as the entity every mrkdwn text
 * needs (Slack decodes it back, so the query keeps its meaning). Returns the characters written. */
static size_t put_url(hk_buf *b, herald_str url, int mrkdwn) {
    static const char hex[] = "0123456789ABCDEF";
    size_t chars = 0;
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        if (mrkdwn && c == '&') {
            if (b) hk_buf_lit(b, "&amp;");
            chars += 5;
        } else if (c <= 0x20 || c >= 0x7f || (mrkdwn && (c == '|' || c == '<' || c == '>'))) {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (b) hk_buf_put(b, enc, 3);
            chars += 3;
        } else {
            if (b) hk_buf_put(b, &url.ptr[i], 1);
            chars++;
        }
    }
    return chars;
}

/* Only http(s) links, of a length Slack accepts for a button URL once encoded. */
static int url_usable(herald_str url) {
    if (url.ptr == NULL || url.len == 0 || put_url(NULL, url, 0) > BUTTON_URL_MAX_CHARS) return 0;
    return (url.len > 7 && hk_str_ieq(HK_VIEW(url.ptr, 7), "http://")) || (url.len > 8 && hk_str_ieq(HK_VIEW(url.ptr, 8), "https://"));
}

/* How a mention is written: <@U123> for a member id, <!subteam^S123> for a user group. */
enum mention_kind { MENTION_NONE, MENTION_USER, MENTION_GROUP };

static enum mention_kind mention_kind(const herald_mention *x) {
    int user = hk_str_eq(x->id_kind, "user_id"), group = hk_str_eq(x->id_kind, "user_group_id");
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
static size_t put_mentions(hk_buf *b, const herald_message *m, const char *lead) {
    size_t unmentioned = 0;
    int any = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        enum mention_kind kind = mention_kind(x);
        if (kind == MENTION_NONE && x->display_name.len == 0 && x->id.len == 0) continue;
        hk_buf_lit(b, any ? " " : lead);
        any = 1;
        if (kind != MENTION_NONE) {
            hk_buf_lit(b, kind == MENTION_USER ? "<@" : "<!subteam^");
            hk_buf_str(b, x->id);
            hk_buf_lit(b, ">");
        } else {
            hk_buf_lit(b, "@");
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
static void put_status_line(hk_buf *b, const herald_message *m) {
    hk_buf_lit(b, "*");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, "* · ");
    hk_buf_lit(b, state_word(m));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " · #");
        hk_buf_u64(b, m->incident_number);
    }
    if (m->event == HERALD_EVENT_TEST) hk_buf_lit(b, " · test message");
}

/* The title as mrkdwn, as the core escaped it, on one line and within `max` characters. */
static void put_title_mrkdwn(hk_buf *b, herald_str title, size_t max) {
    if (title.ptr == NULL || title.len == 0) {
        hk_buf_lit(b, "Herald incident");
        return;
    }
    size_t end = chunk_end(title.ptr, title.len, 0, max);
    size_t from = b->len;
    hk_buf_put(b, title.ptr, end);
    if (end < title.len) hk_buf_lit(b, "\xe2\x80\xa6");
    for (size_t i = from; !b->failed && i < b->len; i++) {
        if (b->p[i] == '\n' || b->p[i] == '\r') b->p[i] = ' ';
    }
}

/* The fallback text: what notifications and clients without Block Kit show. */
static size_t put_fallback(hk_buf *b, const herald_message *m) {
    hk_buf_lit(b, severity_shortcode(m));
    hk_buf_lit(b, " [");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, "] ");
    put_title_mrkdwn(b, m->title, 2000);
    return put_mentions(b, m, " ");
}

/* Block Kit layout: header, context, body sections, label fields, mentions, link buttons. */
static size_t put_blocks_message(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf t = {0}; /* scratch for one text at a time, JSON-escaped into `b` */
    hk_buf_lit(b, "{\"text\":");
    size_t unmentioned = put_fallback(&t, m);
    buf_json_take(b, h, &t);
    hk_buf_lit(b, ",\"blocks\":[");

    /* Header: plain_text, so the title decoded; a title too long for it goes in a section. */
    hk_buf_lit(&t, severity_shortcode(m));
    hk_buf_lit(&t, " ");
    size_t emoji_chars = t.len;
    herald_str title = m->title.len ? m->title : HK_SV("Herald incident");
    size_t title_chars = emit_plain(NULL, title, 1, SIZE_MAX);
    if (emoji_chars + title_chars <= HEADER_MAX_CHARS) {
        put_plain(&t, title, 1, HEADER_MAX_CHARS - emoji_chars);
        hk_buf_lit(b, "{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"emoji\":true,\"text\":");
    } else {
        t.len = 0;
        hk_buf_lit(&t, severity_shortcode(m));
        hk_buf_lit(&t, " *");
        put_title_mrkdwn(&t, m->title, SECTION_MAX_CHARS - 40);
        hk_buf_lit(&t, "*");
        hk_buf_lit(b, "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
    }
    buf_json_take(b, h, &t);
    hk_buf_lit(b, "}}");

    /* Context: severity, state, number. */
    put_status_line(&t, m);
    hk_buf_lit(b, ",{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":");
    buf_json_take(b, h, &t);
    hk_buf_lit(b, "}]}");

    /* Body: mrkdwn as the core escaped it, in sections of at most 3000 characters. */
    const char *p = m->body.ptr;
    size_t n = p ? m->body.len : 0;
    for (size_t start = 0; start < n;) {
        size_t end = chunk_end(p, n, start, SECTION_MAX_CHARS);
        if (end <= start) end = n; /* cannot happen; never loop forever */
        if (!all_space(p + start, end - start)) {
            hk_buf_lit(b, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
            hk_buf_json(b, h, HK_VIEW(p + start, end - start));
            hk_buf_lit(b, "}}");
        }
        start = end;
    }

    /* Labels: fields, ten to a section. Names and values are raw, so escaped here. */
    size_t labels = m->labels ? m->label_count : 0, shown = labels > MAX_LABELS ? MAX_LABELS : labels;
    for (size_t i = 0; i < shown; i++) {
        const herald_pair *l = &m->labels[i];
        hk_buf_lit(b, i % FIELDS_PER_SECTION == 0 ? ",{\"type\":\"section\",\"fields\":[" : ",");
        hk_buf_lit(&t, "*");
        size_t used = put_mrkdwn(&t, l->name, 200, 0) + 3;
        hk_buf_lit(&t, "*\n");
        put_mrkdwn(&t, l->value, FIELD_MAX_CHARS - used, 1);
        hk_buf_lit(b, "{\"type\":\"mrkdwn\",\"text\":");
        buf_json_take(b, h, &t);
        hk_buf_lit(b, "}");
        if (i % FIELDS_PER_SECTION == FIELDS_PER_SECTION - 1 || i + 1 == shown) hk_buf_lit(b, "]}");
    }
    if (labels > shown) {
        hk_buf_lit(b, ",{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":\"");
        hk_buf_u64(b, labels - shown);
        hk_buf_lit(b, " more labels not shown\"}]}");
    }

    /* Mentions. */
    if (has_mentions(m)) {
        put_mentions(&t, m, ":bell: ");
        hk_buf_lit(b, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
        buf_json_take(b, h, &t);
        hk_buf_lit(b, "}}");
    }

    /* Link buttons: url buttons open Herald's signed links in the browser. */
    size_t buttons = 0;
    for (size_t i = 0; m->links && i < m->link_count && buttons < BUTTONS_MAX; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        hk_buf_lit(b, buttons == 0 ? ",{\"type\":\"actions\",\"elements\":[" : ",");
        hk_buf_lit(b, "{\"type\":\"button\",\"action_id\":\"herald-link-");
        hk_buf_u64(b, i);
        hk_buf_lit(b, "\",\"text\":{\"type\":\"plain_text\",\"emoji\":true,\"text\":");
        put_plain(&t, l->label.len ? l->label : default_link_label(l->kind), 0, BUTTON_TEXT_MAX_CHARS);
        if (all_space(t.p, t.len)) {
            t.len = 0;
            hk_buf_str(&t, default_link_label(l->kind));
        }
        buf_json_take(b, h, &t);
        hk_buf_lit(b, "},\"url\":");
        put_url(&t, l->url, 0);
        buf_json_take(b, h, &t);
        if (l->kind == HERALD_LINK_ACKNOWLEDGE) hk_buf_lit(b, ",\"style\":\"primary\"");
        hk_buf_lit(b, "}");
        buttons++;
    }
    if (buttons > 0) hk_buf_lit(b, "]}");

    hk_buf_lit(b, "],\"unfurl_links\":false,\"unfurl_media\":false}");
    if (t.failed && !b->failed) b->failed = t.failed;
    hk_buf_free(&t);
    return unmentioned;
}

/* A body too long for blocks: one mrkdwn text with everything, which Slack takes up to 40,000
 * characters. Returns the unmentioned count; *chars gets the text's length in characters. */
static size_t put_text_message(hk_buf *b, const herald_host_api *h, const herald_message *m, size_t *chars) {
    hk_buf t = {0};
    hk_buf_lit(&t, severity_shortcode(m));
    hk_buf_lit(&t, " *");
    put_title_mrkdwn(&t, m->title, 2000);
    hk_buf_lit(&t, "*\n");
    put_status_line(&t, m);
    hk_buf_lit(&t, "\n\n");
    hk_buf_str(&t, m->body);
    size_t labels = m->labels ? m->label_count : 0;
    if (labels > MAX_LABELS) labels = MAX_LABELS;
    if (labels > 0) hk_buf_lit(&t, "\n");
    for (size_t i = 0; i < labels; i++) {
        hk_buf_lit(&t, "\n*");
        put_mrkdwn(&t, m->labels[i].name, 200, 0);
        hk_buf_lit(&t, "*: ");
        put_mrkdwn(&t, m->labels[i].value, 1000, 0);
    }
    int first = 1;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (!url_usable(l->url)) continue;
        hk_buf_lit(&t, first ? "\n\n<" : " · <");
        first = 0;
        put_url(&t, l->url, 1);
        hk_buf_lit(&t, "|");
        put_mrkdwn(&t, l->label.len ? l->label : default_link_label(l->kind), BUTTON_TEXT_MAX_CHARS, 0);
        hk_buf_lit(&t, ">");
    }
    size_t unmentioned = put_mentions(&t, m, "\n\n:bell: ");
    *chars = t.failed ? 0 : char_count(t.p, t.len);
    hk_buf_lit(b, "{\"text\":");
    buf_json_take(b, h, &t);
    hk_buf_lit(b, ",\"unfurl_links\":false,\"unfurl_media\":false}");
    hk_buf_free(&t);
    return unmentioned;
}

static int32_t slack_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        /* An incoming webhook has exactly one destination: its channel. Never post elsewhere's message here. */
        char who[HK_QUOTE_BYTES + 8], reason[HK_QUOTE_BYTES + 160];
        hk_snippet(m->recipient, who, sizeof who);
        snprintf(reason, sizeof reason, "a Slack incoming webhook posts only to its own channel, so it cannot send to recipient '%s'", who);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    size_t body_chars = m->body.ptr ? char_count(m->body.ptr, m->body.len) : 0;
    hk_buf b = {0};
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
            h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
            hk_buf_free(&b);
            return HERALD_OUTCOME_FAILED;
        }
        if (!b.failed) h->log(HERALD_LOG_INFO, HK_SV("the body is too long for Block Kit, so the Slack message is plain mrkdwn text"));
    }
    if (b.failed) {
        int32_t f = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, f, "building the JSON body");
    }
    if (unmentioned > 0) {
        char line[200];
        snprintf(line, sizeof line, "%zu mention(s) are shown as plain names: Slack incoming webhooks mention only id_kind user_id or user_group_id", unmentioned);
        h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
    }

    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json; charset=utf-8")},
        {HK_SV("User-Agent"), HK_SV("Herald-Slack/1.0")},
    };
    return hk_post(h, ex, HK_VIEW(in->url.p, in->url.len), headers, sizeof headers / sizeof *headers, &b);
}

/* ---- reading the answer ---------------------------------------------------------------------- */

/* The body without surrounding whitespace. */
static herald_str trimmed(herald_str s) {
    const char *p = s.ptr;
    size_t n = p ? s.len : 0;
    while (n > 0 && (p[0] == ' ' || p[0] == '\n' || p[0] == '\r' || p[0] == '\t')) { p++; n--; }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t')) n--;
    return HK_VIEW(p, n);
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
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    herald_str body = trimmed(r->body);
    /* Success is exactly HTTP 200 with the body "ok" (Slack sends no message id). */
    if (status == 200 && hk_str_eq(body, "ok") && !r->body_truncated) return HERALD_OUTCOME_DELIVERED;

    char snip[HK_QUOTE_BYTES + 8], reason[HK_QUOTE_BYTES + 400];
    size_t snip_len = hk_snippet(body, snip, sizeof snip);
    const char *meaning = NULL;
    if (is_error_code(body)) {
        for (size_t i = 0; i < sizeof known_errors / sizeof *known_errors; i++) {
            if (hk_str_eq(body, known_errors[i].code)) meaning = known_errors[i].meaning;
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
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
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

static const herald_str egress_hosts[] = {HK_LIT("hooks.slack.com"), HK_LIT("hooks.slack-gov.com")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("slack"),
    .name = HK_LIT("Slack incoming webhook"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_SLACK_MRKDWN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    /* Block Kit holds about 13,000 characters of text per message (msg_blocks_too_long past
     * that); 12,000 for the body leaves room for the header, fields and buttons. */
    .size_limit = BLOCKS_BODY_MAX_CHARS,
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = HK_LIT("{{description}}"),
    .instance_create = slack_create,
    .instance_destroy = slack_destroy,
    .prepare = slack_prepare,
    .on_response = slack_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "slack");
}
