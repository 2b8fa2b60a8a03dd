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
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* DingTalk refuses bodies over 20000 bytes (errcode 460101 "message too long, exceed 20000 bytes"). */
    MAX_BODY_BYTES = 20000,
    MAX_SECRET_BYTES = 256,
    MAX_MENTION_ID = 64,
};

/* DingTalk throttles a robot for 10 minutes once it exceeds 20 messages a minute. */
#define THROTTLE_MS UINT64_C(600000)

/* The small helpers (string views, the output buffer, the JSON reader, config reading, names)
 * are hk_* from herald/plugin_kit.h. */

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef enum { MSG_ACTION_CARD = 0, MSG_MARKDOWN = 1, MSG_TEXT = 2 } msg_kind;

static const char *const msg_kind_names[] = {"actionCard", "markdown", "text"};

/* Read-only after instance_create, so hooks may run concurrently. */
typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;
    hk_ostr secret; /* p == NULL: the robot does not use 加签 */
    msg_kind kind;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 0);
    hk_ostr_free(&in->secret, 1);
    free(in);
}

/* True when the URL's query has a parameter `name` (e.g. "access_token") with a non-empty value. */
static int query_has(const hk_ostr *url, const char *name, int need_value) {
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
    hk_ostr names = {0}, kind = {0};
    int rc = -1, got;

    int32_t st = hk_cfg_read(h, 1, "", &names);
    if (st == HERALD_ERR_INVALID_ARGUMENT) { hk_fail(err, "the configuration must be a JSON object"); goto done; }
    if (st != HERALD_OK) {
        if (st == HK_NO_MEMORY) hk_fail(err, "out of memory while reading the configuration");
        else hk_fail(err, "the host could not list the configuration's settings (status %d)", (int)st);
        goto done;
    }
    if (hk_check_setting_names(names.p, names.len, known, sizeof known / sizeof *known, "dingtalk", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required: paste the robot's webhook address");
        goto done;
    }
    int url_ok = (in->url.len > 7 && hk_str_ieq(HK_VIEW(in->url.p, 7), "http://")) ||
                 (in->url.len > 8 && hk_str_ieq(HK_VIEW(in->url.p, 8), "https://"));
    if (!url_ok || !hk_is_token_text(&in->url) || hk_url_host(&in->url).len == 0 || strchr(in->url.p, '#')) {
        hk_fail(err, "setting 'webhook_url' must be the robot's https:// webhook address, without spaces or '#'");
        goto done;
    }
    if (!query_has(&in->url, "access_token", 1)) {
        hk_fail(err, "setting 'webhook_url' must contain the robot's access_token (https://oapi.dingtalk.com/robot/send?access_token=...)");
        goto done;
    }
    if (query_has(&in->url, "timestamp", 0) || query_has(&in->url, "sign", 0)) {
        hk_fail(err, "setting 'webhook_url' must not contain timestamp or sign: put the robot's secret in 'secret' and the plugin signs each request");
        goto done;
    }
    herald_str host = hk_url_host(&in->url);
    int loopback = hk_str_ieq(host, "localhost") || (host.len >= 4 && memcmp(host.ptr, "127.", 4) == 0);
    if (!loopback && !hk_str_ieq(host, "oapi.dingtalk.com")) {
        char line[240];
        snprintf(line, sizeof line, "setting 'webhook_url' points at %.*s, not oapi.dingtalk.com; "
                 "Herald sends there only if the integration's egress.allow lists it", (int)(host.len > 100 ? 100 : host.len), host.ptr);
        h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
    }

    if ((got = hk_read_opt(h, "secret", &in->secret, err)) < 0) goto done;
    if (got == 1 && (in->secret.len == 0 || in->secret.len > MAX_SECRET_BYTES || !hk_is_token_text(&in->secret))) {
        hk_fail(err, "setting 'secret' must be the robot's signing secret (SEC...): 1 to 256 printable characters without spaces");
        goto done;
    }
    if (got == 1 && (in->secret.len < 3 || memcmp(in->secret.p, "SEC", 3) != 0))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'secret' does not start with SEC, as DingTalk's signing secrets do; check it is the 加签 secret"));

    if ((got = hk_read_opt(h, "msg_type", &kind, err)) < 0) goto done;
    in->kind = MSG_ACTION_CARD;
    if (got == 1) {
        size_t i = 0;
        while (i < 3 && strcmp(kind.p, msg_kind_names[i]) != 0) i++;
        if (i == 3) { hk_fail(err, "setting 'msg_type' must be \"actionCard\", \"markdown\" or \"text\""); goto done; }
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
HK_INSTANCE_CREATE(dingtalk_create, instance, "dingtalk", read_config, instance_free)

static void dingtalk_destroy(void *inst) { instance_free(inst); }

/* ---- message pieces -------------------------------------------------------------------------- */

static size_t shown_links(const herald_message *m) {
    size_t n = 0;
    for (size_t i = 0; i < hk_count_links(m); i++) n += hk_link_ok(&m->links[i]);
    return n;
}

/* How a mention is written: a mobile number goes to at.atMobiles, a DingTalk userid to
 * at.atUserIds, each with "@<id>" in the text; "all" sets at.isAtAll. */
typedef enum { AT_NONE, AT_MOBILE, AT_USERID, AT_ALL } at_kind;

static at_kind mention_kind(const herald_mention *x) {
    if (hk_str_eq(x->id_kind, "all")) return AT_ALL;
    herald_str id = x->id;
    if (id.len == 0 || id.len > MAX_MENTION_ID || id.ptr == NULL) return AT_NONE;
    int mobile = hk_str_eq(x->id_kind, "mobile"), user = hk_str_eq(x->id_kind, "user_id");
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
    for (size_t i = 0; i < hk_count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i]) != AT_NONE) return 1;
    }
    return 0;
}

/* Appends raw text (a label, a name) to Markdown: ASCII punctuation DingTalk's Markdown acts on
 * gets a backslash, and line breaks become spaces so a value cannot start a new block. */
static void buf_md(hk_buf *b, const herald_host_api *h, herald_str s) {
    static const char special[] = "\\`*_[]<>#~|";
    size_t run = 0;
    for (size_t i = 0; i <= s.len; i++) {
        char c = i < s.len ? s.ptr[i] : 0;
        int sp = i < s.len && c != 0 && strchr(special, c) != NULL;
        int ctl = i < s.len && ((unsigned char)c < 0x20 || c == 0x7f);
        if (i < s.len && !sp && !ctl) continue;
        hk_buf_esc(b, h, HK_VIEW(s.ptr + run, i - run));
        if (sp) {
            hk_buf_lit(b, "\\\\");
            hk_buf_esc(b, h, HK_VIEW(s.ptr + i, 1));
        } else if (ctl) {
            hk_buf_lit(b, " ");
        }
        run = i + 1;
    }
}

/* A URL inside a Markdown link target: parentheses percent-encoded so they cannot end it. */
static void buf_md_url(hk_buf *b, const herald_host_api *h, herald_str url) {
    size_t run = 0;
    for (size_t i = 0; i <= url.len; i++) {
        if (i < url.len && url.ptr[i] != '(' && url.ptr[i] != ')') continue;
        hk_buf_esc(b, h, HK_VIEW(url.ptr + run, i - run));
        if (i < url.len) hk_buf_lit(b, url.ptr[i] == '(' ? "%28" : "%29");
        run = i + 1;
    }
}

/* The mention line: "@<id>" for each resolvable mention (DingTalk needs it in the text to show
 * and notify), "@Name" for the others (shown, not notified). */
static void put_mention_text(hk_buf *b, const herald_host_api *h, const herald_message *m, int markdown) {
    const char *space = "";
    for (size_t i = 0; i < hk_count_mentions(m); i++) {
        const herald_mention *x = &m->mentions[i];
        at_kind k = mention_kind(x);
        if (k == AT_ALL) continue; /* isAtAll needs no text */
        hk_buf_lit(b, space);
        space = " ";
        hk_buf_lit(b, "@");
        if (k != AT_NONE) hk_buf_esc(b, h, x->id);
        else if (markdown) buf_md(b, h, hk_mention_name(x));
        else hk_buf_esc(b, h, hk_mention_name(x));
    }
}

static int has_mention_text(const herald_message *m) {
    for (size_t i = 0; i < hk_count_mentions(m); i++) {
        if (mention_kind(&m->mentions[i]) != AT_ALL) return 1;
    }
    return 0;
}

/* "at":{"atMobiles":[…],"atUserIds":[…],"isAtAll":…} (escaped, a leading comma). */
static void put_at(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    int all = 0;
    hk_buf_lit(b, ",\"at\":{\"atMobiles\":[");
    for (int pass = 0; pass < 2; pass++) {
        const char *sep = "";
        for (size_t i = 0; i < hk_count_mentions(m); i++) {
            const herald_mention *x = &m->mentions[i];
            at_kind k = mention_kind(x);
            if (k == AT_ALL) all = 1;
            if (k != (pass == 0 ? AT_MOBILE : AT_USERID)) continue;
            hk_buf_lit(b, sep);
            sep = ",";
            hk_buf_json(b, h, x->id);
        }
        hk_buf_lit(b, pass == 0 ? "],\"atUserIds\":[" : "]");
    }
    hk_buf_lit(b, all ? ",\"isAtAll\":true}" : ",\"isAtAll\":false}");
}

/* "<emoji> <title>": the notification preview (markdown.title / actionCard.title). */
static void put_preview_title(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_put(b, "\"", 1);
    hk_buf_esc_c(b, h, hk_severity_emoji(m));
    hk_buf_lit(b, " ");
    hk_buf_esc(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    hk_buf_put(b, "\"", 1);
}

/* The Markdown text of markdown and actionCard messages (escaped, no quotes):
 *   #### 🔴 <title>
 *   <body>
 *   **Severity:** Critical · **Status:** Triggered · **Incident:** #118
 *   - name: value          (one line per label)
 *   [View](…) · [Acknowledge](…)   (markdown only: an actionCard has buttons)
 *   @13800000000 @userid */
static void put_markdown_text(hk_buf *b, const herald_host_api *h, const herald_message *m, int inline_links) {
    hk_buf_lit(b, "#### ");
    hk_buf_esc_c(b, h, hk_severity_emoji(m));
    hk_buf_lit(b, " ");
    hk_buf_esc(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    if (m->body.len > 0) {
        hk_buf_lit(b, "\\n\\n");
        hk_buf_esc(b, h, m->body);
    }
    hk_buf_lit(b, "\\n\\n**Severity:** ");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 **Status:** ");
    hk_buf_lit(b, hk_status_name(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 **Incident:** #");
        hk_buf_u64(b, m->incident_number);
    }
    const char *sep = "\\n\\n";
    for (size_t i = 0; i < hk_count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, sep);
        sep = "\\n";
        hk_buf_lit(b, "- ");
        buf_md(b, h, l->name);
        hk_buf_lit(b, ": ");
        buf_md(b, h, l->value);
    }
    if (inline_links) {
        sep = "\\n\\n";
        for (size_t i = 0; i < hk_count_links(m); i++) {
            const herald_link *l = &m->links[i];
            if (!hk_link_ok(l)) continue;
            hk_buf_lit(b, sep);
            sep = " \xc2\xb7 ";
            hk_buf_lit(b, "[");
            buf_md(b, h, hk_link_label(l));
            hk_buf_lit(b, "](");
            buf_md_url(b, h, l->url);
            hk_buf_lit(b, ")");
        }
    }
    if (has_mention_text(m)) {
        hk_buf_lit(b, "\\n\\n");
        put_mention_text(b, h, m, 1);
    }
}

/* ---- the three message types ----------------------------------------------------------------- */

static void put_action_card(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    size_t n = shown_links(m);
    hk_buf_lit(b, "{\"msgtype\":\"actionCard\",\"actionCard\":{\"title\":");
    put_preview_title(b, h, m);
    hk_buf_lit(b, ",\"text\":\"");
    put_markdown_text(b, h, m, 0);
    /* "1" lays two buttons side by side; more read better stacked ("0"). */
    hk_buf_lit(b, n <= 2 ? "\",\"btnOrientation\":\"1\",\"btns\":[" : "\",\"btnOrientation\":\"0\",\"btns\":[");
    const char *sep = "";
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!hk_link_ok(l)) continue;
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_lit(b, "{\"title\":");
        hk_buf_json(b, h, hk_link_label(l));
        hk_buf_lit(b, ",\"actionURL\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
    }
    hk_buf_lit(b, "]}}");
}

static void put_markdown(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "{\"msgtype\":\"markdown\",\"markdown\":{\"title\":");
    put_preview_title(b, h, m);
    hk_buf_lit(b, ",\"text\":\"");
    put_markdown_text(b, h, m, 1);
    hk_buf_lit(b, "\"}");
    put_at(b, h, m);
    hk_buf_lit(b, "}");
}

/* Plain text: title, body, summary, labels, "Label: URL" lines, then the @mentions. */
static void put_text(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "{\"msgtype\":\"text\",\"text\":{\"content\":\"");
    hk_buf_esc_c(b, h, hk_severity_emoji(m));
    hk_buf_lit(b, " ");
    hk_buf_esc(b, h, m->title.len > 0 ? m->title : HK_SV("Herald incident"));
    if (m->body.len > 0) {
        hk_buf_lit(b, "\\n");
        hk_buf_esc(b, h, m->body);
    }
    hk_buf_lit(b, "\\n\\nSeverity: ");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 Status: ");
    hk_buf_lit(b, hk_status_name(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 Incident #");
        hk_buf_u64(b, m->incident_number);
    }
    for (size_t i = 0; i < hk_count_labels(m); i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, "\\n");
        hk_buf_esc(b, h, l->name);
        hk_buf_lit(b, ": ");
        hk_buf_esc(b, h, l->value);
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
    if (has_mention_text(m)) {
        hk_buf_lit(b, "\\n");
        put_mention_text(b, h, m, 0);
    }
    hk_buf_lit(b, "\"}");
    put_at(b, h, m);
    hk_buf_lit(b, "}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

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
    int32_t rc = h->hmac_sha256(HK_VIEW(in->secret.p, in->secret.len), HK_VIEW(msg, mlen), mac);
    hk_wipe(msg, sizeof msg);
    if (rc == HERALD_OK) rc = h->base64_encode(HK_VIEW((const char *)mac, sizeof mac), (uint8_t *)b64, sizeof b64, &b64_len);
    hk_wipe(mac, sizeof mac);
    /* Encoded exactly once: '+', '/' and '=' become %2B, %2F and %3D. */
    if (rc == HERALD_OK) rc = h->percent_encode(HK_VIEW(b64, b64_len), (uint8_t *)out, cap, out_len);
    return rc;
}

static int32_t dingtalk_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (m->recipient.len > 0) {
        h->set_reason(ex, HK_SV("a DingTalk custom robot posts only to the group it was added to, so it cannot send to a recipient; "
                             "route this message to an integration for that group instead"));
        return HERALD_OUTCOME_FAILED;
    }

    /* An actionCard needs a button, and DingTalk notifies @mentioned people only for text and
     * markdown messages: without links, or with people to notify, the card becomes markdown. */
    msg_kind kind = in->kind;
    if (kind == MSG_ACTION_CARD && (shown_links(m) == 0 || has_real_mentions(m))) kind = MSG_MARKDOWN;

    hk_buf b = {0};
    switch (kind) {
    case MSG_MARKDOWN: put_markdown(&b, h, m); break;
    case MSG_TEXT: put_text(&b, h, m); break;
    default: put_action_card(&b, h, m); break;
    }
    if (b.failed) {
        int32_t st = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, st, "building the JSON body");
    }
    if (b.len > MAX_BODY_BYTES) {
        char msg[220];
        snprintf(msg, sizeof msg, "the DingTalk message would be %zu bytes, over the platform's 20000-byte limit; "
                 "shorten the template, the labels or the description", b.len);
        hk_buf_free(&b);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }

    /* With 加签: <webhook_url>&timestamp=<Unix ms>&sign=<urlencoded signature>. */
    char url_buf[2048 + 160];
    herald_str url = HK_VIEW(in->url.p, in->url.len);
    if (in->secret.p) {
        int64_t now_ms = h->now_unix_ms();
        char ts[24], sig[160];
        size_t sig_len = 0;
        snprintf(ts, sizeof ts, "%lld", (long long)(now_ms > 0 ? now_ms : 0));
        int32_t rc = dingtalk_sign(in, ts, sig, sizeof sig, &sig_len);
        if (rc != HERALD_OK) {
            hk_buf_free(&b);
            return hk_host_failure(h, ex, rc, "signing the request");
        }
        int n = snprintf(url_buf, sizeof url_buf, "%s&timestamp=%s&sign=%.*s", in->url.p, ts, (int)sig_len, sig);
        if (n < 0 || (size_t)n >= sizeof url_buf) {
            hk_buf_free(&b);
            h->set_reason(ex, HK_SV("setting 'webhook_url' is too long to sign (more than 2048 bytes)"));
            return HERALD_OUTCOME_FAILED;
        }
        url = HK_VIEW(url_buf, (size_t)n);
    }

    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json; charset=utf-8")},
        {HK_SV("User-Agent"), HK_SV("Herald-DingTalk/1.0")},
    };
    return hk_post(h, ex, url, headers, sizeof headers / sizeof *headers, &b);
}

/* What a DingTalk errcode means for the operator; NULL for codes not in the table. `msg` is
 * the errmsg, which tells the four 310000 cases apart. */
static const char *code_advice(int64_t code, const char *msg) {
    size_t n = strlen(msg);
    switch (code) {
    case 310000:
        if (hk_contains_ci(msg, n, "keyword")) return "the message contains none of the robot's custom keywords: check the integration's keyword matches the robot's security settings";
        if (hk_contains_ci(msg, n, "timestamp")) return "the signature's timestamp was refused: check this host's clock (DingTalk allows one hour)";
        if (hk_contains_ci(msg, n, "sign")) return "the signature did not match: check that 'secret' is the robot's current 加签 secret (or remove it if the robot does not sign)";
        if (hk_contains_ci(msg, n, "ip") || hk_contains_ci(msg, n, "whitelist")) return "this host's IP address is not in the robot's IP allow-list: add Herald's egress address in the robot's security settings";
        return "DingTalk's security check failed: check the robot's keyword, signing and IP settings";
    case 300005: case 400101: case 40035:
        if (code == 40035 && !hk_contains_ci(msg, n, "access_token")) return "DingTalk found a required field missing";
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
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    char reason[HK_QUOTE_BYTES + 400], said[HK_QUOTE_BYTES + 16];
    said[0] = 0;

    /* DingTalk's verdict is the body's errcode, with errmsg. */
    hk_jval code_v, msg_v;
    int64_t code = 0;
    int is_json = hk_json_member(r->body, "errcode", &code_v) >= 0;
    int has_code = is_json && code_v.type && hk_json_int(&code_v, &code);
    if (is_json && hk_json_member(r->body, "errmsg", &msg_v) == 1 && msg_v.type == 's') hk_quote_string(&msg_v, said, sizeof said);
    if (!is_json) hk_snippet(r->body, said, sizeof said);
    if (r->body_truncated) has_code = 0; /* a cut body proves nothing */

    if (status >= 200 && status <= 299 && has_code && code == 0) return HERALD_OUTCOME_DELIVERED;

    /* Throttling: 130101 / 660026 / 410100 (DingTalk has used all three), any errmsg saying
     * "too fast" / "too many", HTTP 429. After 20 messages a minute DingTalk blocks the robot
     * for 10 minutes, so that is the hint. -1 "system busy" and 5xx retry with the host's backoff. */
    size_t said_len = strlen(said);
    int throttled = status == 429 || (has_code && (code == 130101 || code == 660026 || code == 410100)) ||
                    (has_code && code != 0 && (hk_contains_ci(said, said_len, "too fast") || hk_contains_ci(said, said_len, "too many")));
    int busy = (has_code && code == -1) || (status >= 500 && status <= 599) || status == 408;
    if (throttled || busy) {
        if (has_code) snprintf(reason, sizeof reason, "DingTalk answered HTTP %d with errcode %lld (\"%s\")%s", (int)status, (long long)code, said,
                               throttled ? ": the robot is rate-limited (20 messages a minute, then blocked for 10 minutes)" : "");
        else if (said[0]) snprintf(reason, sizeof reason, "DingTalk answered HTTP %d%s: %s", (int)status, throttled ? " (rate-limited)" : "", said);
        else snprintf(reason, sizeof reason, "DingTalk answered HTTP %d%s with an empty body", (int)status, throttled ? " (rate-limited)" : "");
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        /* A 429's own Retry-After (which the host reads when no hint is set) beats the default. */
        if (throttled && (status != 429 || !hk_has_header(r, "Retry-After"))) h->set_retry_after(ex, THROTTLE_MS);
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
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
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

static const herald_str egress_hosts[] = {HK_LIT("oapi.dingtalk.com")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("dingtalk"),
    .name = HK_LIT("DingTalk custom robot"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
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
    .default_template = HK_LIT("{{description}}"),
    .instance_create = dingtalk_create,
    .instance_destroy = dingtalk_destroy,
    .prepare = dingtalk_prepare,
    .on_response = dingtalk_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "dingtalk");
}
