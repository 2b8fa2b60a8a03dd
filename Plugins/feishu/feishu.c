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
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* Feishu refuses request bodies over 20 KB (custom bot guide, "limits"). */
    MAX_BODY_BYTES = 20 * 1024,
    MAX_SECRET_BYTES = 256,
    MAX_MENTION_ID = 128,
};

/* The small helpers (string views, the output buffer, the JSON reader, config reading, names)
 * are hk_* from herald/plugin_kit.h. */

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef enum { MSG_INTERACTIVE = 0, MSG_POST = 1, MSG_TEXT = 2 } msg_kind;

static const char *const msg_kind_names[] = {"interactive", "post", "text"};

/* Read-only after instance_create, so hooks may run concurrently. */
typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;
    hk_ostr secret; /* p == NULL: the bot has no signature check */
    msg_kind kind;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 0);
    hk_ostr_free(&in->secret, 1);
    free(in);
}

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"webhook_url", "secret", "msg_type"};
    const herald_host_api *h = in->host;
    hk_ostr names = {0}, kind = {0};
    int rc = -1, got;

    int32_t st = hk_cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { hk_fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) {
        if (st == HK_NO_MEMORY) hk_fail(err, "out of memory while reading the configuration");
        else hk_fail(err, "the host could not list the configuration's settings (status %d)", (int)st);
        goto done;
    }
    if (hk_check_setting_names(names.p, names.len, known, sizeof known / sizeof *known, "feishu", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required: paste the custom bot's webhook address");
        goto done;
    }
    int url_ok = (in->url.len > 7 && hk_str_ieq(HK_VIEW(in->url.p, 7), "http://")) ||
                 (in->url.len > 8 && hk_str_ieq(HK_VIEW(in->url.p, 8), "https://"));
    if (!url_ok || !hk_is_token_text(&in->url) || hk_url_host(&in->url).len == 0) {
        hk_fail(err, "setting 'webhook_url' must be the bot's https:// webhook address, without spaces");
        goto done;
    }
    herald_str host = hk_url_host(&in->url);
    int loopback = hk_str_ieq(host, "localhost") || (host.len >= 4 && memcmp(host.ptr, "127.", 4) == 0);
    if (!loopback && !hk_str_ieq(host, "open.feishu.cn") && !hk_str_ieq(host, "open.larksuite.com")) {
        char line[240];
        snprintf(line, sizeof line, "setting 'webhook_url' points at %.*s, not open.feishu.cn or open.larksuite.com; "
                 "Herald sends there only if the integration's egress.allow lists it", (int)(host.len > 100 ? 100 : host.len), host.ptr);
        h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
    }

    if ((got = hk_read_opt(h, "secret", &in->secret, err)) < 0) goto done;
    if (got == 1 && (in->secret.len == 0 || in->secret.len > MAX_SECRET_BYTES || !hk_is_token_text(&in->secret))) {
        hk_fail(err, "setting 'secret' must be the bot's signing secret: 1 to 256 printable characters without spaces");
        goto done;
    }

    if ((got = hk_read_opt(h, "msg_type", &kind, err)) < 0) goto done;
    in->kind = MSG_INTERACTIVE;
    if (got == 1) {
        size_t i = 0;
        while (i < 3 && strcmp(kind.p, msg_kind_names[i]) != 0) i++;
        if (i == 3) { hk_fail(err, "setting 'msg_type' must be \"interactive\", \"post\" or \"text\""); goto done; }
        in->kind = (msg_kind)i;
    }
    rc = 0;
done:
    hk_ostr_free(&names, 0);
    hk_ostr_free(&kind, 0);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(feishu_create, instance, "feishu", read_config, instance_free)

static void feishu_destroy(void *inst) { instance_free(inst); }

/* ---- message pieces -------------------------------------------------------------------------- */

/* Header template colour: red / orange / blue by severity; green once the incident is over. */
static const char *header_colour(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "green";
    static const char *const colours[] = {"red", "orange", "blue"};
    return m->severity >= 1 && m->severity <= 3 ? colours[m->severity - 1] : "grey";
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
    if (hk_str_eq(x->id_kind, "all")) return AT_ALL;
    if ((hk_str_eq(x->id_kind, "open_id") || hk_str_eq(x->id_kind, "user_id")) && id_chars_ok(x->id, 0))
        return hk_str_eq(x->id, "all") ? AT_ALL : AT_ID;
    if (card && hk_str_eq(x->id_kind, "email") && id_chars_ok(x->id, 1) && memchr(x->id.ptr, '@', x->id.len)) return AT_EMAIL;
    return AT_NONE;
}

/* "Severity: Critical · Status: Triggered · Incident #12" (escaped, no quotes). */
static void put_summary(hk_buf *b, const herald_message *m) {
    hk_buf_lit(b, "Severity: ");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 Status: ");
    hk_buf_lit(b, hk_status_name(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 Incident #");
        hk_buf_u64(b, m->incident_number);
    }
}

/* "name: value" of a label, escaped, no quotes. */
static void put_label_text(hk_buf *b, const herald_host_api *h, const herald_pair *l) {
    hk_buf_esc(b, h, l->name);
    hk_buf_lit(b, ": ");
    hk_buf_esc(b, h, l->value);
}

/* ---- the three message types ----------------------------------------------------------------- */

/* Card JSON 1.0 (rendered by every Feishu/Lark client; 2.0 needs client 7.20+). */
static void put_card(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "\"msg_type\":\"interactive\",\"card\":{\"config\":{\"wide_screen_mode\":true,\"enable_forward\":true},"
               "\"header\":{\"template\":\"");
    hk_buf_lit(b, header_colour(m));
    hk_buf_lit(b, "\",\"title\":{\"tag\":\"plain_text\",\"content\":");
    hk_buf_json(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    hk_buf_lit(b, "}},\"elements\":[");

    /* The body, as the template rendered it (Markdown). */
    const char *sep = "";
    if (m->body.len > 0) {
        hk_buf_lit(b, "{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\",\"content\":");
        hk_buf_json(b, h, m->body);
        hk_buf_lit(b, "}}");
        sep = ",";
    }

    /* Fields: severity, status, incident number, then the labels (plain text: no escaping
     * questions for raw label values). */
    hk_buf_lit(b, sep);
    hk_buf_lit(b, "{\"tag\":\"div\",\"fields\":[{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Severity**\\n");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, "\"}},{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Status**\\n");
    hk_buf_lit(b, hk_status_name(m->status));
    hk_buf_lit(b, "\"}}");
    if (m->incident_number > 0) {
        hk_buf_lit(b, ",{\"is_short\":true,\"text\":{\"tag\":\"lark_md\",\"content\":\"**Incident**\\n#");
        hk_buf_u64(b, m->incident_number);
        hk_buf_lit(b, "\"}}");
    }
    for (size_t i = 0; i < hk_count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, ",{\"is_short\":true,\"text\":{\"tag\":\"plain_text\",\"content\":\"");
        put_label_text(b, h, l);
        hk_buf_lit(b, "\"}}");
    }
    hk_buf_lit(b, "]}");

    /* Mentions: <at id=…></at> in lark_md; names Feishu cannot resolve as plain text. */
    size_t resolved = 0, unresolved = 0;
    for (size_t i = 0; i < hk_count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i], 1) == AT_NONE) unresolved++;
        else resolved++;
    }
    if (resolved > 0) {
        hk_buf_lit(b, ",{\"tag\":\"div\",\"text\":{\"tag\":\"lark_md\",\"content\":\"");
        const char *space = "";
        for (size_t i = 0; i < hk_count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 1);
            if (k == AT_NONE) continue;
            hk_buf_lit(b, space);
            space = " ";
            if (k == AT_ALL) hk_buf_lit(b, "<at id=all></at>");
            else {
                hk_buf_lit(b, k == AT_EMAIL ? "<at email=" : "<at id=");
                hk_buf_esc(b, h, x->id);
                hk_buf_lit(b, "></at>");
            }
        }
        hk_buf_lit(b, "\"}}");
    }
    if (unresolved > 0) {
        hk_buf_lit(b, ",{\"tag\":\"div\",\"text\":{\"tag\":\"plain_text\",\"content\":\"");
        const char *space = "";
        for (size_t i = 0; i < hk_count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            if (mention_kind(x, 1) != AT_NONE) continue;
            hk_buf_lit(b, space);
            space = " ";
            hk_buf_lit(b, "@");
            hk_buf_esc(b, h, hk_mention_name(x));
        }
        hk_buf_lit(b, "\"}}");
    }

    /* Link buttons: a custom bot gets no callbacks, so every button opens its URL. */
    size_t shown = 0;
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!hk_link_ok(l)) continue;
        hk_buf_lit(b, shown == 0 ? ",{\"tag\":\"action\",\"actions\":[" : ",");
        hk_buf_lit(b, "{\"tag\":\"button\",\"text\":{\"tag\":\"plain_text\",\"content\":");
        hk_buf_json(b, h, hk_link_label(l));
        hk_buf_lit(b, "},\"type\":\"");
        hk_buf_lit(b, l->kind == HERALD_LINK_VIEW || l->kind == HERALD_LINK_ACKNOWLEDGE ? "primary"
                   : l->kind == HERALD_LINK_CLOSE ? "danger" : "default");
        hk_buf_lit(b, "\",\"url\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
        shown++;
    }
    if (shown > 0) hk_buf_lit(b, "]}");
    hk_buf_lit(b, "]}");
}

/* One post paragraph holding one text run. */
static void post_text_line(hk_buf *b, const herald_host_api *h, const char **sep, herald_str text) {
    hk_buf_lit(b, *sep);
    *sep = ",";
    hk_buf_lit(b, "[{\"tag\":\"text\",\"text\":");
    hk_buf_json(b, h, text);
    hk_buf_lit(b, "}]");
}

/* Rich text: {"post":{"zh_cn":{"title":…,"content":[[tags…],…]}}}, one paragraph per line. */
static void put_post(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "\"msg_type\":\"post\",\"content\":{\"post\":{\"zh_cn\":{\"title\":\"");
    hk_buf_esc_c(b, h, hk_severity_emoji(m));
    hk_buf_lit(b, " ");
    hk_buf_esc(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    hk_buf_lit(b, "\",\"content\":[");
    const char *sep = "";

    /* The body, split into paragraphs at line breaks ("\r\n" counts as one). */
    const char *p = m->body.ptr;
    size_t n = p ? m->body.len : 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '\n') continue;
        size_t end = i;
        if (end > start && p[end - 1] == '\r') end--;
        if (!(i == n && start == n)) post_text_line(b, h, &sep, HK_VIEW(p + start, end - start));
        start = i + 1;
    }

    hk_buf_lit(b, sep);
    sep = ",";
    hk_buf_lit(b, "[{\"tag\":\"text\",\"text\":\"");
    put_summary(b, m);
    hk_buf_lit(b, "\"}]");

    for (size_t i = 0; i < hk_count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, ",[{\"tag\":\"text\",\"text\":\"");
        put_label_text(b, h, l);
        hk_buf_lit(b, "\"}]");
    }

    size_t shown = 0;
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!hk_link_ok(l)) continue;
        hk_buf_lit(b, shown == 0 ? ",[" : ",{\"tag\":\"text\",\"text\":\" | \"},");
        hk_buf_lit(b, "{\"tag\":\"a\",\"text\":");
        hk_buf_json(b, h, hk_link_label(l));
        hk_buf_lit(b, ",\"href\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
        shown++;
    }
    if (shown > 0) hk_buf_lit(b, "]");

    if (hk_count_mentions(m) > 0) {
        hk_buf_lit(b, ",[");
        for (size_t i = 0; i < hk_count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 0);
            if (i > 0) hk_buf_lit(b, ",{\"tag\":\"text\",\"text\":\" \"},");
            if (k == AT_ALL) hk_buf_lit(b, "{\"tag\":\"at\",\"user_id\":\"all\"}");
            else if (k == AT_ID) {
                hk_buf_lit(b, "{\"tag\":\"at\",\"user_id\":");
                hk_buf_json(b, h, x->id);
                hk_buf_lit(b, "}");
            } else {
                hk_buf_lit(b, "{\"tag\":\"text\",\"text\":\"@");
                hk_buf_esc(b, h, hk_mention_name(x));
                hk_buf_lit(b, "\"}");
            }
        }
        hk_buf_lit(b, "]");
    }
    hk_buf_lit(b, "]}}}");
}

/* Plain text: title, body, summary, labels, "Label: URL" lines, then <at user_id="…"></at>. */
static void put_text(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "\"msg_type\":\"text\",\"content\":{\"text\":\"");
    hk_buf_esc_c(b, h, hk_severity_emoji(m));
    hk_buf_lit(b, " ");
    hk_buf_esc(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    if (m->body.len > 0) {
        hk_buf_lit(b, "\\n");
        hk_buf_esc(b, h, m->body);
    }
    hk_buf_lit(b, "\\n\\n");
    put_summary(b, m);
    for (size_t i = 0; i < hk_count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, "\\n");
        put_label_text(b, h, l);
    }
    const char *gap = "\\n";
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!hk_link_ok(l)) continue;
        hk_buf_lit(b, gap);
        gap = "";
        hk_buf_lit(b, "\\n");
        hk_buf_esc(b, h, hk_link_label(l));
        hk_buf_lit(b, ": ");
        hk_buf_esc(b, h, l->url);
    }
    if (hk_count_mentions(m) > 0) {
        hk_buf_lit(b, "\\n");
        for (size_t i = 0; i < hk_count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x, 0);
            if (i > 0) hk_buf_lit(b, " ");
            if (k == AT_ALL) hk_buf_lit(b, "<at user_id=\\\"all\\\"></at>");
            else if (k == AT_ID) {
                hk_buf_lit(b, "<at user_id=\\\"");
                hk_buf_esc(b, h, x->id);
                hk_buf_lit(b, "\\\"></at>");
            } else {
                hk_buf_lit(b, "@");
                hk_buf_esc(b, h, hk_mention_name(x));
            }
        }
    }
    hk_buf_lit(b, "\"}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

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
    int32_t rc = h->hmac_sha256(HK_VIEW(key, klen), HK_SV(""), mac);
    hk_wipe(key, sizeof key);
    if (rc == HERALD_OK) rc = h->base64_encode(HK_VIEW((const char *)mac, sizeof mac), (uint8_t *)out, cap, out_len);
    hk_wipe(mac, sizeof mac);
    return rc;
}

static int32_t feishu_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        h->set_reason(ex, HK_SV("a Feishu custom bot posts only to the group it was added to, so it cannot send to a recipient; "
                             "route this message to an integration for that chat instead"));
        return HERALD_OUTCOME_FAILED;
    }

    hk_buf b = {0};
    hk_buf_lit(&b, "{");
    if (in->secret.p) {
        /* Unix SECONDS; Feishu accepts one hour either side of its clock. */
        int64_t now_ms = h->now_unix_ms();
        char ts[24], sig[64];
        size_t sig_len = 0;
        snprintf(ts, sizeof ts, "%lld", (long long)(now_ms > 0 ? now_ms / 1000 : 0));
        int32_t rc = feishu_sign(in, ts, sig, sizeof sig, &sig_len);
        if (rc != HERALD_OK) {
            hk_buf_free(&b);
            return hk_host_failure(h, ex, rc, "signing the message");
        }
        hk_buf_lit(&b, "\"timestamp\":\"");
        hk_buf_lit(&b, ts);
        hk_buf_lit(&b, "\",\"sign\":\"");
        hk_buf_put(&b, sig, sig_len); /* base64: nothing to escape */
        hk_buf_lit(&b, "\",");
    }
    switch (in->kind) {
    case MSG_POST: put_post(&b, h, m); break;
    case MSG_TEXT: put_text(&b, h, m); break;
    default: put_card(&b, h, m); break;
    }
    hk_buf_lit(&b, "}");
    if (b.failed) {
        int32_t st = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, st, "building the JSON body");
    }
    if (b.len > MAX_BODY_BYTES) {
        char msg[220];
        snprintf(msg, sizeof msg, "the Feishu message would be %zu bytes, over the platform's 20 KB request limit; "
                 "shorten the template, the labels or the description", b.len);
        hk_buf_free(&b);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }

    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json; charset=utf-8")},
        {HK_SV("User-Agent"), HK_SV("Herald-Feishu/1.0")},
    };
    return hk_post(h, ex, HK_VIEW(in->url.p, in->url.len), headers, sizeof headers / sizeof *headers, &b);
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
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    char reason[HK_QUOTE_BYTES + 400], said[HK_QUOTE_BYTES + 16];
    said[0] = 0;

    /* Feishu's verdict is the body's code (legacy StatusCode), with msg (legacy StatusMessage). */
    hk_jval code_v, msg_v;
    int64_t code = 0;
    int is_json = hk_json_member(r->body, "code", &code_v) >= 0;
    int has_code = is_json && code_v.type && hk_json_int(&code_v, &code);
    if (is_json && !code_v.type && hk_json_member(r->body, "StatusCode", &code_v) == 1) has_code = hk_json_int(&code_v, &code);
    if (is_json && (hk_json_member(r->body, "msg", &msg_v) == 1 || hk_json_member(r->body, "StatusMessage", &msg_v) == 1) && msg_v.type == 's')
        hk_quote_string(&msg_v, said, sizeof said);
    if (!is_json) hk_snippet(r->body, said, sizeof said);
    if (r->body_truncated) has_code = 0; /* a cut body proves nothing */

    if (status >= 200 && status <= 299 && has_code && code == 0) return HERALD_OUTCOME_DELIVERED;

    /* Throttling: 11232 (frequency limited), 9499 "too many request", HTTP 429. Feishu sends no
     * retry hint of its own; an x-ogw-ratelimit-reset or Retry-After header is honoured. */
    int throttled = status == 429 || (has_code && code == 11232) ||
                    (has_code && code == 9499 && hk_contains_ci(said, strlen(said), "too many"));
    if (throttled || (status >= 500 && status <= 599) || status == 408) {
        if (has_code) snprintf(reason, sizeof reason, "Feishu answered HTTP %d with code %lld (\"%s\")%s", (int)status, (long long)code, said,
                               throttled ? ": the bot is rate-limited (100 messages a minute, 5 a second)" : "");
        else if (said[0]) snprintf(reason, sizeof reason, "Feishu answered HTTP %d%s: %s", (int)status, throttled ? " (rate-limited)" : "", said);
        else snprintf(reason, sizeof reason, "Feishu answered HTTP %d%s with an empty body", (int)status, throttled ? " (rate-limited)" : "");
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        int64_t secs = header_seconds(hk_find_header(r, "x-ogw-ratelimit-reset"));
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
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
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

static const herald_str egress_hosts[] = {HK_LIT("open.feishu.cn"), HK_LIT("open.larksuite.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("feishu"),
    .name = HK_LIT("Feishu / Lark custom bot"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
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
    .default_template = HK_LIT("{{description}}"),
    .instance_create = feishu_create,
    .instance_destroy = feishu_destroy,
    .prepare = feishu_prepare,
    .on_response = feishu_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "feishu");
}
