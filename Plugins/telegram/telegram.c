/*
 * telegram.c — Herald's Telegram channel (Bot API `sendMessage`).
 *
 * Sends each notification as an HTML-formatted message with URL buttons to one or more chats.
 * Several chat ids make one request per chat, chained through HERALD_OUTCOME_REQUEST with the
 * chat's index as the request tag; the delivery counts as delivered only when every chat got
 * the message. Progress is kept in the host's key-value store under the message's idempotency
 * key, so a retry never sends twice to a chat that already has the message. The admin action
 * `discover-chats` reads `getUpdates` and lists the chats the bot has seen. See README.md.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o telegram.so Plugins/telegram/telegram.c
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* The schema's maxItems. Herald performs at most 8 requests per delivery and (as of this
     * writing) fails a delivery whose 8th request was needed, so 7 chats is the most one
     * integration can serve. See README ("Several chats"). */
    MAX_CHATS = 7,
    MAX_CHAT_ID = 64,         /* "-1001234567890" or "@channelname" */
    TEXT_LIMIT = 4096,        /* Telegram: 1-4096 characters after entity parsing */
    BODY_LIMIT = 3584,        /* what the descriptor declares for the rendered body */
    MAX_DESCRIPTION = 300,
    JSON_MAX_DEPTH = 64,
    MAX_DISCOVERED = 200,
};

/* Request tags: 0..MAX_CHATS-1 are chat indexes; these two are the other steps. */
#define TAG_CONFIRM (UINT64_C(1) << 32) /* getMe after a retry found every chat done */
#define TAG_ACTION (UINT64_C(2) << 32)  /* getUpdates for discover-chats */

/* Progress entries live three days: longer than any retry schedule, short enough not to pile up. */
#define PROGRESS_TTL_MS (UINT64_C(3) * 24 * 3600 * 1000)

static const char DEFAULT_API_BASE[] = "https://api.telegram.org";

/* ---- small helpers --------------------------------------------------------------------------- */

/* The common helpers (string views, the output buffer, config reading, snippets, names) are hk_*
 * from herald/plugin_kit.h; these are Telegram's own. */

static int is_digits(herald_str s) {
    if (s.len == 0) return 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return 0;
    }
    return 1;
}

/* Appends `s` escaped for Telegram HTML: & < > always, and " too (safe in attributes). Invalid
 * UTF-8 passes through; json_escape turns it into U+FFFD later. */
static void buf_html(hk_buf *b, herald_str s) {
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        const char *rep = NULL;
        switch (s.ptr[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        default: continue;
        }
        hk_buf_put(b, s.ptr + start, i - start);
        hk_buf_lit(b, rep);
        start = i + 1;
    }
    hk_buf_put(b, s.ptr + start, s.len - start);
}

/* ---- a small, careful JSON reader ------------------------------------------------------------ */
/* Enough to read Telegram's answers: find members of objects, walk arrays, decode strings and
 * integers. Every function checks bounds; malformed input yields "not found", never a crash.
 * Kept local rather than hk_json_member: Telegram's answers need nested objects (result.message_id,
 * parameters.retry_after, the getUpdates list) and arrays, which the kit's top-level reader does
 * not walk, and j_str decodes whole strings (U+FFFD for bad input, no "…" cut) for chat titles. */

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
    /* number, true, false, null */
    const char *s = p;
    while (p < e && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '+' || *p == '.' || *p == 'E')) p++;
    return p > s ? p : NULL;
}

/* The whole body as one value (trailing whitespace allowed), or an empty span. */
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

/* Iterates an array: *cursor starts NULL; returns 1 with the next element in *out. */
static int j_next(jspan arr, const char **cursor, jspan *out) {
    if (!arr.p || arr.p >= arr.end || *arr.p != '[') return 0;
    const char *p = *cursor ? *cursor : arr.p + 1, *e = arr.end;
    p = j_ws(p, e);
    if (p < e && *p == ',' && *cursor) p = j_ws(p + 1, e);
    if (p >= e || *p == ']') return 0;
    const char *vend = j_skip(p, e, 1);
    if (!vend) return 0;
    *out = (jspan){p, vend};
    *cursor = vend;
    return 1;
}

static int j_is(jspan v, const char *literal) {
    size_t n = strlen(literal);
    return v.p && (size_t)(v.end - v.p) == n && memcmp(v.p, literal, n) == 0;
}

/* A JSON integer (no fraction or exponent) that fits int64. */
static int j_int(jspan v, int64_t *out) {
    if (!v.p || v.p >= v.end) return 0;
    const char *p = v.p;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    if (p >= v.end || (size_t)(v.end - p) > 19) return 0;
    int64_t n = 0;
    for (; p < v.end; p++) {
        if (*p < '0' || *p > '9') return 0;
        if (n > (INT64_MAX - (*p - '0')) / 10) return 0;
        n = n * 10 + (*p - '0');
    }
    *out = neg ? -n : n;
    return 1;
}

/* Decodes a JSON string into out (NUL-terminated, cut at cap-1 on a character boundary).
 * Control characters become spaces, so the text is safe in a one-line reason. */
static int j_str(jspan v, char *out, size_t cap) {
    if (cap > 0) out[0] = 0;
    if (!v.p || v.end - v.p < 2 || *v.p != '"') return 0;
    hk_jval text = {'s', v.p + 1, (size_t)(v.end - v.p - 2)};
    return hk_json_text(&text, out, cap);
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    char id[MAX_CHAT_ID + 1]; /* "-100123..." or "@name" */
    int numeric;              /* 1: emit as a JSON number */
} chat;

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr token;               /* secret: wiped on destroy */
    hk_ostr api_base;            /* no trailing slash */
    chat chats[MAX_CHATS];
    size_t chat_count;
    int disable_notification;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->token, 1);
    hk_ostr_free(&in->api_base, 0);
    free(in);
}

/* "123456:ABC-def_..." (what @BotFather hands out). */
static int token_ok(const hk_ostr *t) {
    size_t i = 0;
    while (i < t->len && t->p[i] >= '0' && t->p[i] <= '9') i++;
    if (i == 0 || i >= t->len || t->p[i] != ':' || i + 1 >= t->len) return 0;
    for (i++; i < t->len; i++) {
        char c = t->p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
    }
    return 1;
}

/* A chat id: an optionally negative integer, or "@" + a public username (channels). */
static int parse_chat(herald_str s, chat *out) {
    if (s.len == 0 || s.len > MAX_CHAT_ID) return 0;
    if (s.ptr[0] == '@') {
        if (s.len < 2) return 0;
        for (size_t i = 1; i < s.len; i++) {
            char c = s.ptr[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
        }
        out->numeric = 0;
    } else {
        herald_str digits = s.ptr[0] == '-' ? HK_VIEW(s.ptr + 1, s.len - 1) : s;
        if (!is_digits(digits) || digits.len > 18 || (digits.len > 1 && digits.ptr[0] == '0')) return 0;
        out->numeric = 1;
    }
    memcpy(out->id, s.ptr, s.len);
    out->id[s.len] = 0;
    return 1;
}

static const char *const known_settings[] = {"bot_token", "chat_ids", "api_base", "disable_notification"};

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    hk_ostr value = {0};
    int rc = -1, got;

    if (hk_check_known_settings(h, known_settings, sizeof known_settings / sizeof *known_settings, "telegram", err) != 0) goto done;

    if ((got = hk_read_opt(h, "bot_token", &in->token, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'bot_token' is required (the token @BotFather gave you)");
        goto done;
    }
    if (!token_ok(&in->token)) { hk_fail(err, "setting 'bot_token' must look like 123456789:AA... (digits, a colon, then letters, digits, '_' or '-')"); goto done; }

    for (size_t i = 0;; i++) {
        char path[32];
        snprintf(path, sizeof path, "chat_ids.%zu", i);
        if ((got = hk_read_opt(h, path, &value, err)) < 0) goto done;
        if (got == 0) break;
        if (i >= MAX_CHATS) { hk_fail(err, "setting 'chat_ids' has more than %d chats: use a second integration for the others", MAX_CHATS); goto done; }
        if (!parse_chat(HK_VIEW(value.p, value.len), &in->chats[i])) {
            hk_fail(err, "setting 'chat_ids' item %zu must be a chat id such as -1001234567890 or a channel's @username", i);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(in->chats[j].id, in->chats[i].id) == 0) { hk_fail(err, "setting 'chat_ids' lists chat %s twice", in->chats[i].id); goto done; }
        }
        in->chat_count = i + 1;
        hk_ostr_free(&value, 0);
    }
    if (in->chat_count == 0) { hk_fail(err, "setting 'chat_ids' must list at least one chat id (run the discover-chats action to find them)"); goto done; }

    if ((got = hk_read_opt(h, "api_base", &in->api_base, err)) < 0) goto done;
    if (got == 0) {
        in->api_base.p = malloc(sizeof DEFAULT_API_BASE);
        if (!in->api_base.p) { hk_fail(err, "out of memory while reading setting 'api_base'"); goto done; }
        memcpy(in->api_base.p, DEFAULT_API_BASE, sizeof DEFAULT_API_BASE);
        in->api_base.len = sizeof DEFAULT_API_BASE - 1;
    }
    while (in->api_base.len > 0 && in->api_base.p[in->api_base.len - 1] == '/') in->api_base.p[--in->api_base.len] = 0;
    herald_str u = HK_VIEW(in->api_base.p, in->api_base.len);
    int url_ok = (u.len > 7 && hk_str_iprefix(u, "http://")) || (u.len > 8 && hk_str_iprefix(u, "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f && u.ptr[i] != '?' && u.ptr[i] != '#';
    if (!url_ok) { hk_fail(err, "setting 'api_base' must be an http:// or https:// URL without a query, spaces or control characters"); goto done; }

    if ((got = hk_read_opt(h, "disable_notification", &value, err)) < 0) goto done;
    if (got == 1) {
        if (hk_str_eq(HK_VIEW(value.p, value.len), "true")) in->disable_notification = 1;
        else if (!hk_str_eq(HK_VIEW(value.p, value.len), "false")) { hk_fail(err, "setting 'disable_notification' must be true or false"); goto done; }
    }
    rc = 0;
done:
    hk_ostr_free(&value, 0);
    return rc;
}

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(telegram_create, instance, "telegram", read_config, instance_free)

static void telegram_destroy(void *inst) { instance_free(inst); }

/* ---- the message text (Telegram HTML) -------------------------------------------------------- */

/* Lower case, unlike hk_severity_name / hk_status_name ("Critical"): the status line reads
 * "critical · triggered · #42". */
static const char *severity_word(int32_t s) {
    static const char *const names[] = {"critical", "warning", "info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "unknown";
}

static const char *status_word(int32_t s) {
    static const char *const names[] = {"triggered", "acknowledged", "resolved", "closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "unknown";
}

/* 🔴 critical, 🟠 warning, 🔵 info; ✅ once resolved or closed, whatever the severity. Kept local:
 * hk_severity_emoji shows ⚪ for an unknown severity, where Telegram has always shown 🔵. */
static const char *severity_mark(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "\xe2\x9c\x85";
    switch (m->severity) {
    case HERALD_SEVERITY_CRITICAL: return "\xf0\x9f\x94\xb4";
    case HERALD_SEVERITY_WARNING: return "\xf0\x9f\x9f\xa0";
    default: return "\xf0\x9f\x94\xb5";
    }
}

/* A mention Telegram can render: a numeric user id (text mention) or a public @username. */
static int mention_kind(const herald_mention *x) {
    herald_str id = x->id;
    if (id.len == 0 || id.len > MAX_CHAT_ID) return 0;
    if (is_digits(id)) return 1;
    herald_str name = id.ptr[0] == '@' ? HK_VIEW(id.ptr + 1, id.len - 1) : id;
    if (id.ptr[0] != '@' && !hk_str_eq(x->id_kind, "username")) return 0;
    if (name.len < 4 || name.len > 32) return 0;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 2;
}

/*
 * The message text:
 *   🔴 <b>title</b>
 *   <i>critical · triggered · #42</i>
 *
 *   body
 *
 *   <b>label</b>: value          (with_labels)
 *
 *   <a href="tg://user?id=1">Ann</a> @bob
 * The title and body arrive already escaped for Telegram HTML; labels and names are escaped here.
 */
static void put_text(hk_buf *b, const herald_message *m, int with_labels) {
    hk_buf_lit(b, severity_mark(m));
    hk_buf_lit(b, " <b>");
    hk_buf_put(b, m->title.ptr, m->title.len);
    hk_buf_lit(b, "</b>\n<i>");
    hk_buf_lit(b, severity_word(m->severity));
    hk_buf_lit(b, " \xc2\xb7 ");
    hk_buf_lit(b, status_word(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 #");
        hk_buf_u64(b, m->incident_number);
    }
    hk_buf_lit(b, "</i>");
    if (m->body.len > 0) {
        hk_buf_lit(b, "\n\n");
        hk_buf_put(b, m->body.ptr, m->body.len);
    }
    if (with_labels && m->labels && m->label_count > 0) {
        const char *sep = "\n\n";
        for (size_t i = 0; i < m->label_count; i++) {
            const herald_pair *l = &m->labels[i];
            if (l->name.len == 0) continue;
            hk_buf_lit(b, sep);
            sep = "\n";
            hk_buf_lit(b, "<b>");
            buf_html(b, l->name);
            hk_buf_lit(b, "</b>: ");
            buf_html(b, l->value);
        }
    }
    const char *sep = "\n\n";
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        int kind = mention_kind(x);
        if (kind == 0) continue;
        hk_buf_lit(b, sep);
        sep = " ";
        if (kind == 1) {
            hk_buf_lit(b, "<a href=\"tg://user?id=");
            hk_buf_put(b, x->id.ptr, x->id.len);
            hk_buf_lit(b, "\">");
            if (x->display_name.len > 0) buf_html(b, x->display_name);
            else hk_buf_put(b, x->id.ptr, x->id.len);
            hk_buf_lit(b, "</a>");
        } else {
            if (x->id.ptr[0] != '@') hk_buf_lit(b, "@");
            hk_buf_put(b, x->id.ptr, x->id.len);
        }
    }
}

/* Characters Telegram counts: text outside tags, each entity (&amp; &#36; ...) as one. Unicode
 * scalar values, as the descriptor's HERALD_SIZE_CHARACTERS says. A stray '<' or '&' counts as
 * text (Telegram would refuse it anyway, with its own message). */
static size_t visible_length(const char *p, size_t n) {
    size_t count = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c == '<') {
            size_t j = i + 1;
            while (j < n && p[j] != '>' && p[j] != '<') j++;
            if (j < n && p[j] == '>') { i = j + 1; continue; }
        } else if (c == '&') {
            size_t j = i + 1;
            while (j < n && j - i <= 10 && p[j] != ';' && p[j] != '&' && p[j] != '<' && p[j] != ' ') j++;
            if (j < n && p[j] == ';') { count++; i = j + 1; continue; }
        }
        if ((c & 0xc0) != 0x80) count++;
        i++;
    }
    return count;
}

/* Builds the sendMessage body for chat `c`. Returns 0, or -1 when even the text without labels
 * is over Telegram's 4096 characters (the reason is then in `why`). */
static int put_send_body(hk_buf *b, const instance *in, const herald_message *m, const chat *c, char *why, size_t why_cap) {
    const herald_host_api *h = in->host;
    hk_buf text = {0};
    put_text(&text, m, 1);
    size_t chars = text.failed ? 0 : visible_length(text.p, text.len);
    if (!text.failed && chars > TEXT_LIMIT) {
        /* Labels are the first thing to go: the title, body and mentions matter more. */
        text.len = 0;
        put_text(&text, m, 0);
        chars = text.failed ? 0 : visible_length(text.p, text.len);
        if (!text.failed && chars > TEXT_LIMIT) {
            snprintf(why, why_cap, "the message has %zu characters and Telegram accepts at most %d: shorten the integration's template", chars, TEXT_LIMIT);
            hk_buf_free(&text);
            return -1;
        }
        h->log(HERALD_LOG_INFO, HK_SV("the labels were left out: with them the message would exceed Telegram's 4096 characters"));
    }
    if (text.failed) {
        b->failed = text.failed;
        hk_buf_free(&text);
        return 0;
    }

    hk_buf_lit(b, "{\"chat_id\":");
    if (c->numeric) hk_buf_lit(b, c->id);
    else hk_buf_json(b, h, HK_VIEW(c->id, strlen(c->id)));
    hk_buf_lit(b, ",\"text\":");
    hk_buf_json(b, h, HK_VIEW(text.p, text.len));
    hk_buf_free(&text);
    hk_buf_lit(b, ",\"parse_mode\":\"HTML\",\"link_preview_options\":{\"is_disabled\":true}");
    if (in->disable_notification) hk_buf_lit(b, ",\"disable_notification\":true");

    /* URL buttons, two per row. Telegram accepts only http(s) and tg:// URLs in them. */
    size_t buttons = 0;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (l->url.len == 0 || !(hk_str_iprefix(l->url, "https://") || hk_str_iprefix(l->url, "http://"))) continue;
        hk_buf_lit(b, buttons == 0 ? ",\"reply_markup\":{\"inline_keyboard\":[[" : buttons % 2 == 0 ? "],[" : ",");
        hk_buf_lit(b, "{\"text\":");
        if (l->label.len > 0) hk_buf_json(b, h, l->label);
        else hk_buf_json(b, h, HK_VIEW(hk_link_default_label(l->kind), strlen(hk_link_default_label(l->kind))));
        hk_buf_lit(b, ",\"url\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
        buttons++;
    }
    if (buttons > 0) hk_buf_lit(b, "]]}");
    hk_buf_lit(b, "}");
    return 0;
}

/* ---- delivery progress (several chats) ------------------------------------------------------- */
/* One line per chat that is done: "<chat id>\ts\t<message id>\n" (sent) or
 * "<chat id>\tf\t<reason>\n" (refused for good). Keyed by the idempotency key. */

typedef struct {
    char text[8192];
    size_t len;
} progress;

static void progress_key(const herald_message *m, char *key, size_t cap, size_t *len) {
    int n = snprintf(key, cap, "progress:%.*s", (int)(m->idempotency_key.len > 200 ? 200 : m->idempotency_key.len),
                     m->idempotency_key.ptr ? m->idempotency_key.ptr : "");
    *len = n > 0 ? (size_t)n : 0;
}

static void progress_load(const instance *in, const herald_message *m, progress *pg) {
    char key[256];
    size_t klen, got = 0;
    progress_key(m, key, sizeof key, &klen);
    pg->len = 0;
    int32_t st = in->host->kv_get(HK_VIEW(key, klen), (uint8_t *)pg->text, sizeof pg->text - 1, &got);
    if (st == HERALD_OK && got < sizeof pg->text) pg->len = got;
    else if (st != HERALD_ERR_NOT_FOUND)
        in->host->log(HERALD_LOG_WARNING, HK_SV("could not read the delivery progress: chats that already have this message may get it again"));
    pg->text[pg->len] = 0;
}

/* The entry for chat `id`: 's' or 'f' with its value in val (NUL-terminated), or 0. */
static char progress_find(const progress *pg, const char *id, char *val, size_t cap) {
    size_t idlen = strlen(id);
    const char *p = pg->text, *end = pg->text + pg->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        if ((size_t)(nl - p) > idlen + 2 && memcmp(p, id, idlen) == 0 && p[idlen] == '\t' && p[idlen + 2] == '\t') {
            const char *v = p + idlen + 3;
            size_t n = (size_t)(nl - v);
            if (val && cap > 0) {
                if (n >= cap) n = cap - 1;
                memcpy(val, v, n);
                val[n] = 0;
            }
            return p[idlen + 1];
        }
        p = nl + 1;
    }
    return 0;
}

/* The longest prefix of s, at most max bytes, that does not cut a UTF-8 character. */
static int utf8_prefix(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) max--;
    return (int)max;
}

static void progress_add(const instance *in, const herald_message *m, progress *pg, const char *id, char state, const char *val) {
    char line[MAX_CHAT_ID + 320];
    int n = snprintf(line, sizeof line, "%s\t%c\t%.*s\n", id, state, utf8_prefix(val, 300), val);
    if (n <= 0 || pg->len + (size_t)n >= sizeof pg->text) return;
    memcpy(pg->text + pg->len, line, (size_t)n);
    pg->len += (size_t)n;
    pg->text[pg->len] = 0;
    char key[256];
    size_t klen;
    progress_key(m, key, sizeof key, &klen);
    if (in->host->kv_set(HK_VIEW(key, klen), HK_VIEW(pg->text, pg->len), PROGRESS_TTL_MS) != HERALD_OK)
        in->host->log(HERALD_LOG_WARNING, HK_SV("could not store the delivery progress: a retry may send this message again to chats that already have it"));
}

/* The chats of this delivery: the message's recipient if it names one, else the configured list. */
static size_t delivery_chats(const instance *in, const herald_message *m, chat *out, int *bad_recipient) {
    *bad_recipient = 0;
    if (m->recipient.len > 0) {
        if (!parse_chat(m->recipient, &out[0])) {
            *bad_recipient = 1;
            return 0;
        }
        return 1;
    }
    memcpy(out, in->chats, in->chat_count * sizeof *out);
    return in->chat_count;
}

/* ---- requests -------------------------------------------------------------------------------- */

/* {api_base}/bot{token}/{method}[?query] */
static int method_url(const instance *in, const char *method, const char *query, char **out, size_t *len) {
    size_t n = in->api_base.len + 4 + in->token.len + 1 + strlen(method) + (query ? strlen(query) + 1 : 0) + 1;
    char *url = malloc(n);
    if (!url) return -1;
    int w = snprintf(url, n, "%s/bot%s/%s%s%s", in->api_base.p, in->token.p, method, query ? "?" : "", query ? query : "");
    if (w < 0 || (size_t)w >= n) {
        free(url);
        return -1;
    }
    *out = url;
    *len = (size_t)w;
    return 0;
}

static int32_t issue(const instance *in, herald_exchange *ex, const char *http_method, const char *method, const char *query,
                     const hk_buf *body, uint64_t tag) {
    const herald_host_api *h = in->host;
    char *url;
    size_t url_len;
    if (method_url(in, method, query, &url, &url_len) != 0) return hk_host_failure(h, ex, HK_NO_MEMORY, "building the request URL");
    herald_pair headers[2];
    size_t n = 0;
    if (body) headers[n++] = (herald_pair){HK_SV("Content-Type"), HK_SV("application/json")};
    headers[n++] = (herald_pair){HK_SV("User-Agent"), HK_SV("Herald-Telegram/1.0")};
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = HK_VIEW(http_method, strlen(http_method));
    req.url = HK_VIEW(url, url_len);
    req.headers = headers;
    req.header_count = n;
    if (body) req.body = HK_VIEW(body->p, body->len);
    req.tag = tag;
    int32_t rc = h->set_request(ex, &req);
    hk_wipe(url, url_len); /* it holds the token */
    free(url);
    if (rc != HERALD_OK) return hk_host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

static int32_t send_to(const instance *in, const herald_message *m, const chat *c, size_t index, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    hk_buf b = {0};
    char why[200];
    if (put_send_body(&b, in, m, c, why, sizeof why) != 0) {
        hk_buf_free(&b);
        h->set_reason(ex, HK_VIEW(why, strlen(why)));
        return HERALD_OUTCOME_FAILED;
    }
    if (b.failed) {
        int32_t f = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, f, "building the JSON body");
    }
    int32_t out = issue(in, ex, "POST", "sendMessage", NULL, &b, (uint64_t)index);
    hk_buf_free(&b);
    return out;
}

/* ---- finishing a delivery -------------------------------------------------------------------- */

/* DELIVERED with "chat:message_id,..." when every chat has it; FAILED listing the refusals. */
static int32_t finish(const instance *in, const herald_message *m, const chat *chats, size_t count, const progress *pg, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    char ids[MAX_CHATS * (MAX_CHAT_ID + 24)], reasons[2600];
    size_t ids_len = 0, reasons_len = 0, refused = 0;
    ids[0] = reasons[0] = 0;
    for (size_t i = 0; i < count; i++) {
        char val[320];
        char state = progress_find(pg, chats[i].id, val, sizeof val);
        if (state == 's') {
            int n = snprintf(ids + ids_len, sizeof ids - ids_len, "%s%s:%s", ids_len ? "," : "", chats[i].id, val);
            if (n > 0 && (size_t)n < sizeof ids - ids_len) ids_len += (size_t)n;
        } else {
            refused++;
            int n = snprintf(reasons + reasons_len, sizeof reasons - reasons_len, "%s%s", reasons_len ? "; " : "", state == 'f' ? val : "not sent");
            if (n > 0 && (size_t)n < sizeof reasons - reasons_len) reasons_len += (size_t)n;
        }
    }
    (void)m;
    if (refused == 0) {
        h->set_provider_id(ex, HK_VIEW(ids, ids_len));
        return HERALD_OUTCOME_DELIVERED;
    }
    char msg[2800];
    if (count == 1)
        snprintf(msg, sizeof msg, "%s", reasons);
    else
        snprintf(msg, sizeof msg, "Telegram refused %zu of %zu chats (%s)%s", refused, count, reasons,
                 refused < count ? "; the other chats got the message" : "");
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return HERALD_OUTCOME_FAILED;
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

static int32_t telegram_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    chat chats[MAX_CHATS];
    int bad;
    size_t count = delivery_chats(in, m, chats, &bad);
    if (bad) {
        h->set_reason(ex, HK_SV("the message's recipient is not a Telegram chat id (an integer such as -1001234567890, or @channelname)"));
        return HERALD_OUTCOME_FAILED;
    }
    progress pg;
    progress_load(in, m, &pg);
    for (size_t i = 0; i < count; i++) {
        if (!progress_find(&pg, chats[i].id, NULL, 0)) return send_to(in, m, &chats[i], i, ex);
    }
    /* A retry after every chat was done (the outcome was lost on the way): nothing to send. Any
     * finished chat that was refused makes this FAILED right away; otherwise a cheap getMe lets
     * on_response report DELIVERED, which prepare itself may not return. */
    int refused = 0;
    for (size_t i = 0; i < count; i++) refused |= progress_find(&pg, chats[i].id, NULL, 0) == 'f';
    if (refused) return finish(in, m, chats, count, &pg, ex);
    return issue(in, ex, "GET", "getMe", NULL, NULL, TAG_CONFIRM);
}

/* What Telegram answered, read from its JSON envelope. */
typedef struct {
    int json;               /* the body is one JSON object */
    int ok;                 /* "ok": true */
    int64_t error_code;     /* 0 when absent */
    int64_t message_id;     /* -1 when absent */
    int64_t retry_after;    /* -1 when absent */
    int has_migrate;
    int64_t migrate_to;
    char description[MAX_DESCRIPTION];
    jspan result;
} answer;

static void read_answer(const herald_response *r, answer *a) {
    memset(a, 0, sizeof *a);
    a->message_id = a->retry_after = -1;
    if (r->body_truncated) return;
    jspan root = j_root(r->body), v, params;
    if (!root.p || *root.p != '{') return;
    a->json = 1;
    a->ok = j_get(root, "ok", &v) && j_is(v, "true");
    if (j_get(root, "error_code", &v)) j_int(v, &a->error_code);
    if (j_get(root, "description", &v)) j_str(v, a->description, sizeof a->description);
    if (j_get(root, "result", &a->result) && j_get(a->result, "message_id", &v) && !j_int(v, &a->message_id)) a->message_id = -1;
    if (j_get(root, "parameters", &params)) {
        if (j_get(params, "retry_after", &v) && !j_int(v, &a->retry_after)) a->retry_after = -1;
        if (j_get(params, "migrate_to_chat_id", &v)) a->has_migrate = j_int(v, &a->migrate_to);
    }
}

/* "Telegram's own words" for a reason: the description, or a snippet of a non-JSON body. */
static void provider_words(const herald_response *r, const answer *a, char *out, size_t cap) {
    if (a->description[0]) {
        snprintf(out, cap, "%s", a->description);
        return;
    }
    char snip[HK_QUOTE_BYTES + 8];
    if (hk_snippet(r->body, snip, sizeof snip) > 0) snprintf(out, cap, "HTTP %d: %s", (int)r->status, snip);
    else snprintf(out, cap, "HTTP %d with an empty body", (int)r->status);
}

enum verdict { SENT, RETRY_LATER, REFUSED_CHAT, REFUSED_ALL };

/* Classifies one sendMessage answer. `reason` gets one sentence for the non-SENT cases. */
static enum verdict classify(const herald_response *r, const answer *a, const chat *c, char *reason, size_t cap, uint64_t *retry_ms) {
    char words[MAX_DESCRIPTION + 40];
    provider_words(r, a, words, sizeof words);
    int32_t status = r->status;
    int64_t code = a->error_code ? a->error_code : status;
    *retry_ms = 0;
    if (status >= 200 && status <= 299 && a->ok) return SENT;
    if (status == 429 || code == 429) {
        if (a->retry_after > 0 && a->retry_after <= 86400) *retry_ms = (uint64_t)a->retry_after * 1000;
        snprintf(reason, cap, "Telegram is rate-limiting the bot (%s)", words);
        return RETRY_LATER;
    }
    if (status >= 500 && status <= 599) {
        snprintf(reason, cap, "Telegram had a server error (%s)", words);
        return RETRY_LATER;
    }
    if (a->has_migrate) {
        snprintf(reason, cap, "chat %s was upgraded to a supergroup whose id is %lld: replace %s with %lld in chat_ids (Telegram: %s)",
                 c->id, (long long)a->migrate_to, c->id, (long long)a->migrate_to, words);
        return REFUSED_CHAT;
    }
    if (status == 401 || code == 401) {
        snprintf(reason, cap, "Telegram rejected the bot token (%s): check bot_token, or get a new one from @BotFather", words);
        return REFUSED_ALL;
    }
    if (status == 404 || code == 404) {
        snprintf(reason, cap, "Telegram does not know this bot or method (%s): check bot_token and api_base", words);
        return REFUSED_ALL;
    }
    if (status == 403 || code == 403) {
        snprintf(reason, cap, "chat %s does not accept the bot's messages (%s): add the bot back to the chat, or remove the id from chat_ids", c->id, words);
        return REFUSED_CHAT;
    }
    const char *d = a->description;
    size_t dn = strlen(d);
    if ((status == 400 || code == 400) && (hk_contains_ci(d, dn, "chat not found") || hk_contains_ci(d, dn, "chat_write_forbidden") ||
                                           hk_contains_ci(d, dn, "not enough rights") || hk_contains_ci(d, dn, "have no rights") ||
                                           hk_contains_ci(d, dn, "chat was deactivated") || hk_contains_ci(d, dn, "need administrator rights"))) {
        snprintf(reason, cap, "Telegram cannot post to chat %s (%s): check the id (run the discover-chats action) and that the bot is a member allowed to post", c->id, words);
        return REFUSED_CHAT;
    }
    if (status == 400 || code == 400) {
        snprintf(reason, cap, "Telegram refused the message (%s)", words);
        return REFUSED_ALL;
    }
    if (status >= 200 && status <= 299) {
        snprintf(reason, cap, "Telegram answered HTTP %d without \"ok\":true, so the message may not have arrived (%s)", (int)status, words);
        return REFUSED_ALL;
    }
    if (status >= 300 && status <= 399) {
        snprintf(reason, cap, "Telegram answered with a redirect (HTTP %d): check api_base", (int)status);
        return REFUSED_ALL;
    }
    snprintf(reason, cap, "Telegram refused the message (%s)", words);
    return REFUSED_ALL;
}

static int32_t telegram_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    chat chats[MAX_CHATS];
    int bad;
    size_t count = delivery_chats(in, m, chats, &bad);
    progress pg;
    progress_load(in, m, &pg);

    if (r->tag == TAG_CONFIRM) {
        /* Every chat already had the message before this retry; getMe was only a vehicle. */
        return finish(in, m, chats, count, &pg, ex);
    }
    if (bad || r->tag >= count) {
        h->set_reason(ex, HK_SV("the host answered a request the telegram plugin did not make (unknown tag)"));
        return HERALD_OUTCOME_FAILED;
    }
    size_t index = (size_t)r->tag;
    const chat *c = &chats[index];

    answer a;
    read_answer(r, &a);
    char reason[700];
    uint64_t retry_ms = 0;
    switch (classify(r, &a, c, reason, sizeof reason, &retry_ms)) {
    case SENT: {
        char mid[24] = "?";
        if (a.message_id >= 0) snprintf(mid, sizeof mid, "%lld", (long long)a.message_id);
        progress_add(in, m, &pg, c->id, 's', mid);
        break;
    }
    case RETRY_LATER:
        if (count > 1) {
            size_t len = strlen(reason);
            snprintf(reason + len, sizeof reason - len, " while sending to chat %s; a retry continues with the chats that do not have the message yet", c->id);
        }
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        if (retry_ms) h->set_retry_after(ex, retry_ms);
        return HERALD_OUTCOME_RETRY;
    case REFUSED_CHAT:
        progress_add(in, m, &pg, c->id, 'f', reason);
        if (count == 1) {
            h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
            return HERALD_OUTCOME_FAILED;
        }
        break;
    case REFUSED_ALL:
        /* The same answer would come for every chat: stop here. */
        if (count > 1) {
            size_t len = strlen(reason), sent = 0;
            for (size_t i = 0; i < count; i++) sent += progress_find(&pg, chats[i].id, NULL, 0) == 's';
            if (sent > 0) snprintf(reason + len, sizeof reason - len, " (%zu of %zu chats had already got the message)", sent, count);
        }
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }
    for (size_t i = 0; i < count; i++) {
        if (!progress_find(&pg, chats[i].id, NULL, 0)) return send_to(in, m, &chats[i], i, ex);
    }
    return finish(in, m, chats, count, &pg, ex);
}

/* ---- admin action: discover-chats ------------------------------------------------------------ */

typedef struct {
    char id[24];
    char title[260];
    char type[24];
} found_chat;

/* Adds (or refreshes) the chat object `c` in the list. */
static void add_found(found_chat *list, size_t *n, jspan c) {
    jspan v;
    int64_t id;
    if (!j_get(c, "id", &v) || !j_int(v, &id)) return;
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    size_t i = 0;
    while (i < *n && strcmp(list[i].id, idtext) != 0) i++;
    if (i == *n) {
        if (*n >= MAX_DISCOVERED) return;
        (*n)++;
    }
    found_chat *f = &list[i];
    memcpy(f->id, idtext, sizeof idtext);
    f->title[0] = f->type[0] = 0;
    if (j_get(c, "type", &v)) j_str(v, f->type, sizeof f->type);
    if (j_get(c, "title", &v)) {
        j_str(v, f->title, sizeof f->title);
    } else {
        /* Private chats have no title: the person's name, or @username. */
        char first[120] = "", last[120] = "", user[64] = "";
        if (j_get(c, "first_name", &v)) j_str(v, first, sizeof first);
        if (j_get(c, "last_name", &v)) j_str(v, last, sizeof last);
        if (j_get(c, "username", &v)) j_str(v, user, sizeof user);
        if (first[0]) snprintf(f->title, sizeof f->title, "%s%s%s", first, last[0] ? " " : "", last);
        else if (user[0]) snprintf(f->title, sizeof f->title, "@%s", user);
    }
}

static const char *const update_kinds[] = {
    "message", "edited_message", "channel_post", "edited_channel_post", "my_chat_member", "chat_member", "chat_join_request",
};

static int32_t discover_chats(instance *in, const herald_response *r, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    if (r == NULL) return issue(in, ex, "GET", "getUpdates", "limit=100&timeout=0", NULL, TAG_ACTION);

    answer a;
    read_answer(r, &a);
    char words[MAX_DESCRIPTION + 40], msg[600];
    provider_words(r, &a, words, sizeof words);
    if (!(r->status >= 200 && r->status <= 299 && a.ok)) {
        if (r->status == 409 || a.error_code == 409)
            snprintf(msg, sizeof msg, "getUpdates is unavailable while the bot has a webhook (%s): call deleteWebhook, or find the chat id another way", words);
        else if (r->status == 401 || a.error_code == 401 || r->status == 404)
            snprintf(msg, sizeof msg, "Telegram rejected the bot token (%s): check bot_token", words);
        else
            snprintf(msg, sizeof msg, "Telegram's getUpdates failed (%s)", words);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        return r->status == 429 || r->status >= 500 ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
    }
    if (!a.result.p || *a.result.p != '[') {
        h->set_reason(ex, HK_SV("Telegram's getUpdates answer has no list of updates"));
        return HERALD_OUTCOME_FAILED;
    }
    found_chat *list = calloc(MAX_DISCOVERED, sizeof *list);
    if (!list) return hk_host_failure(h, ex, HK_NO_MEMORY, "reading getUpdates");
    size_t n = 0;
    const char *cur = NULL;
    jspan update;
    while (j_next(a.result, &cur, &update)) {
        for (size_t k = 0; k < sizeof update_kinds / sizeof *update_kinds; k++) {
            jspan inner, c;
            if (j_get(update, update_kinds[k], &inner) && j_get(inner, "chat", &c)) add_found(list, &n, c);
        }
        jspan cq, cmsg, c;
        if (j_get(update, "callback_query", &cq) && j_get(cq, "message", &cmsg) && j_get(cmsg, "chat", &c)) add_found(list, &n, c);
    }
    hk_buf b = {0};
    hk_buf_lit(&b, "{\"chats\":[");
    for (size_t i = 0; i < n; i++) {
        hk_buf_lit(&b, i ? ",{\"id\":" : "{\"id\":");
        hk_buf_lit(&b, list[i].id);
        hk_buf_lit(&b, ",\"title\":");
        hk_buf_json(&b, h, HK_VIEW(list[i].title, strlen(list[i].title)));
        hk_buf_lit(&b, ",\"type\":");
        hk_buf_json(&b, h, HK_VIEW(list[i].type, strlen(list[i].type)));
        hk_buf_lit(&b, "}");
    }
    hk_buf_lit(&b, "]");
    if (n == 0)
        hk_buf_lit(&b, ",\"hint\":\"No chats yet: add the bot to the group (or make it a channel admin), send a message there "
                    "mentioning the bot (or post in the channel), then run discover-chats again within 24 hours.\"");
    hk_buf_lit(&b, "}");
    free(list);
    if (b.failed) {
        int32_t f = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, f, "writing the chat list");
    }
    h->set_output(ex, HK_VIEW(b.p, b.len));
    hk_buf_free(&b);
    return HERALD_OUTCOME_DELIVERED;
}

static int32_t telegram_invoke_action(void *inst, herald_str action, herald_str input, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    (void)input;
    if (hk_str_eq(action, "discover-chats")) {
        if (r != NULL && (!HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size) || r->tag != TAG_ACTION)) {
            h->set_reason(ex, HK_SV("the host answered a request the telegram plugin did not make"));
            return HERALD_OUTCOME_FAILED;
        }
        return discover_chats(in, r, ex);
    }
    char msg[200];
    if (action.len == 0 || action.len > 80 || !hk_is_visible(action))
        snprintf(msg, sizeof msg, "the telegram plugin has no such action (it has: discover-chats)");
    else
        snprintf(msg, sizeof msg, "the telegram plugin has no action '%.*s' (it has: discover-chats)", (int)action.len, action.ptr);
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return HERALD_OUTCOME_FAILED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"bot_token\",\"chat_ids\"],\"properties\":{"
    "\"bot_token\":{\"type\":\"string\",\"writeOnly\":true,\"pattern\":\"^[0-9]+:[A-Za-z0-9_-]+$\","
    "\"title\":\"Bot token\",\"description\":\"The token @BotFather gave when the bot was created.\","
    "\"examples\":[\"123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\"]},"
    "\"chat_ids\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":7,"
    "\"items\":{\"type\":[\"string\",\"integer\"],\"pattern\":\"^(-?[1-9][0-9]{0,17}|@[A-Za-z0-9_]{1,63})$\"},"
    "\"title\":\"Chat ids\",\"description\":\"Where to post: chat ids (groups are negative, supergroups and channels -100...) "
    "or a public channel's @username. The discover-chats action lists the chats the bot has seen.\","
    "\"examples\":[[-1001234567890]]},"
    "\"api_base\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\",\"default\":\"https://api.telegram.org\","
    "\"title\":\"Bot API base URL\",\"description\":\"For a self-hosted Bot API server (or a test double).\"},"
    "\"disable_notification\":{\"type\":\"boolean\",\"default\":false,"
    "\"title\":\"Silent\",\"description\":\"Deliver without a notification sound.\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("api.telegram.org"), HK_LIT("config:api_base")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("telegram"),
    .name = HK_LIT("Telegram"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_TELEGRAM_HTML,
    .size_unit = HERALD_SIZE_CHARACTERS,
    /* The body's share of the 4096 characters: the title, links and mentions need the rest, and
       the core truncates bodies to this, so a body at the limit still fits. */
    .size_limit = BODY_LIMIT,
    /* Instances are read-only after create (progress lives in the host's store), so hooks may
     * run in parallel. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS | HERALD_CAP_ADMIN_ACTIONS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, status, number and labels are laid out by the plugin. */
    .default_template = HK_LIT("{{description}}"),
    .instance_create = telegram_create,
    .instance_destroy = telegram_destroy,
    .prepare = telegram_prepare,
    .on_response = telegram_on_response,
    .parse_callback = NULL,
    .invoke_action = telegram_invoke_action,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "telegram");
}
