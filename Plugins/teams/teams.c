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
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_MESSAGE = 300,
    MAX_PROVIDER_ID = 200,
    /* Teams refuses messages over about 28 KB; the whole card counts. */
    CARD_LIMIT = 28 * 1024,
    /* What the host may render into the body: the card's scaffolding, labels and buttons need
     * the rest of the 28 KB. */
    BODY_LIMIT = 24 * 1024,
};

/* The small helpers (string views, the output buffer, the JSON reader, config reading, headers)
 * are hk_* from herald/plugin_kit.h. */

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;                    /* the Workflows URL; its sig= parameter is the credential */
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 1);
    free(in);
}

/* The URL's host, lower-cased, without user info or port ("" if it has none). Not hk_url_host,
 * which keeps user info and case: the connector check must not be dodged by "user@" or "HOST". */
static void url_host_lower(herald_str u, char *out, size_t cap) {
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
    for (const char *q = p; q < colon && n + 1 < cap; q++) out[n++] = (char)hk_lower((unsigned char)*q);
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
    int rc = -1, got;

    if (hk_check_known_settings(h, known_settings, sizeof known_settings / sizeof *known_settings, "teams", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required (the HTTP POST URL of the Teams workflow)");
        goto done;
    }
    herald_str u = HK_VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && hk_str_iprefix(u, "http://")) || (u.len > 8 && hk_str_iprefix(u, "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { hk_fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    char host[256];
    url_host_lower(u, host, sizeof host);
    if (ends_with(host, "webhook.office.com") || ends_with(host, "outlook.office.com") || ends_with(host, "outlook.office365.com")) {
        hk_fail(err, "setting 'webhook_url' is a retired Office 365 connector URL: make a Teams workflow from the template "
                  "'Post to a channel when a webhook request is received' and use its URL");
        goto done;
    }
    rc = 0;
done:
    return rc;
}

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(teams_create, instance, "teams", read_config, instance_free)

static void teams_destroy(void *inst) { instance_free(inst); }

/* ---- the Adaptive Card ----------------------------------------------------------------------- */

/* Lower case, unlike hk_status_name: the status line reads "Critical · triggered · #42". */
static const char *status_word(int32_t s) {
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

/* hk_link_default_label, except that the view button says "View incident" (not "View"). */
static const char *button_label(int32_t kind) {
    return kind == HERALD_LINK_VIEW ? "View incident" : hk_link_default_label(kind);
}

/* Appends `s` JSON-escaped, with the characters Adaptive Card markdown reads as formatting
 * backslash-escaped (labels arrive raw; the title and body arrive escaped by the host). */
static void buf_json_md(hk_buf *b, const herald_host_api *h, herald_str s) {
    hk_buf tmp = {0};
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!strchr("\\*_`[]~", s.ptr[i]) || s.ptr[i] == 0) continue;
        hk_buf_put(&tmp, s.ptr + start, i - start);
        hk_buf_put(&tmp, "\\", 1);
        hk_buf_put(&tmp, s.ptr + i, 1);
        start = i + 1;
    }
    hk_buf_put(&tmp, s.ptr + start, s.len - start);
    if (tmp.failed) b->failed = tmp.failed;
    else hk_buf_json(b, h, HK_VIEW(tmp.p, tmp.len));
    hk_buf_free(&tmp);
}

/* A mention's name as it goes between <at> and </at>: no angle brackets or line breaks,
 * at most 100 bytes, never cutting a character. Returns its length in out. */
static size_t at_text(herald_str s, char *out, size_t cap) {
    size_t n = 0, i = 0;
    while (i < s.len) {
        size_t k = hk_utf8_seq((const unsigned char *)s.ptr + i, s.len - i);
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
    if (x->id.len == 0 || x->id.len > 200 || !hk_is_visible(x->id)) return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (hk_str_eq(x->id_kind, kinds[i])) return 1;
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
static void put_body(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.adaptive\",\"contentUrl\":null,"
               "\"content\":{\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\",\"type\":\"AdaptiveCard\",\"version\":\"1.4\","
               "\"msteams\":{\"width\":\"Full\"");
    size_t mentions = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        if (!mention_ok(x)) continue;
        char name[100];
        size_t n = at_text(hk_mention_name(x), name, sizeof name);
        if (n == 0) n = at_text(x->id, name, sizeof name);
        hk_buf_lit(b, mentions == 0 ? ",\"entities\":[" : ",");
        hk_buf_lit(b, "{\"type\":\"mention\",\"text\":\"<at>");
        hk_buf_esc(b, h, HK_VIEW(name, n));
        hk_buf_lit(b, "</at>\",\"mentioned\":{\"id\":");
        hk_buf_json(b, h, x->id);
        hk_buf_lit(b, ",\"name\":");
        hk_buf_json(b, h, HK_VIEW(name, n));
        hk_buf_lit(b, "}}");
        mentions++;
    }
    if (mentions > 0) hk_buf_lit(b, "]");
    hk_buf_lit(b, "},\"body\":[{\"type\":\"TextBlock\",\"text\":");
    hk_buf_json(b, h, m->title);
    hk_buf_lit(b, ",\"size\":\"Large\",\"weight\":\"Bolder\",\"color\":\"");
    hk_buf_lit(b, severity_color(m));
    hk_buf_lit(b, "\",\"wrap\":true},{\"type\":\"TextBlock\",\"text\":\"");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 ");
    hk_buf_lit(b, status_word(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 #");
        hk_buf_u64(b, m->incident_number);
    }
    hk_buf_lit(b, "\",\"isSubtle\":true,\"spacing\":\"None\",\"wrap\":true}");
    if (m->body.len > 0) {
        hk_buf_lit(b, ",{\"type\":\"TextBlock\",\"text\":");
        hk_buf_json(b, h, m->body);
        hk_buf_lit(b, ",\"wrap\":true}");
    }
    size_t facts = 0;
    for (size_t i = 0; m->labels && i < m->label_count; i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, facts == 0 ? ",{\"type\":\"FactSet\",\"facts\":[" : ",");
        hk_buf_lit(b, "{\"title\":");
        buf_json_md(b, h, l->name);
        hk_buf_lit(b, ",\"value\":");
        buf_json_md(b, h, l->value);
        hk_buf_lit(b, "}");
        facts++;
    }
    if (facts > 0) hk_buf_lit(b, "]}");
    if (mentions > 0) {
        hk_buf_lit(b, ",{\"type\":\"TextBlock\",\"wrap\":true,\"text\":\"");
        size_t done = 0;
        for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
            const herald_mention *x = &m->mentions[i];
            if (!mention_ok(x)) continue;
            char name[100];
            size_t n = at_text(hk_mention_name(x), name, sizeof name);
            if (n == 0) n = at_text(x->id, name, sizeof name);
            hk_buf_lit(b, done++ ? " <at>" : "<at>");
            hk_buf_esc(b, h, HK_VIEW(name, n));
            hk_buf_lit(b, "</at>");
        }
        hk_buf_lit(b, "\"}");
    }
    hk_buf_lit(b, "]");
    size_t actions = 0;
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (l->url.len == 0 || !(hk_str_iprefix(l->url, "https://") || hk_str_iprefix(l->url, "http://"))) continue;
        hk_buf_lit(b, actions == 0 ? ",\"actions\":[" : ",");
        hk_buf_lit(b, "{\"type\":\"Action.OpenUrl\",\"title\":");
        if (l->label.len > 0) hk_buf_json(b, h, l->label);
        else hk_buf_json(b, h, HK_VIEW(button_label(l->kind), strlen(button_label(l->kind))));
        hk_buf_lit(b, ",\"url\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
        actions++;
    }
    if (actions > 0) hk_buf_lit(b, "]");
    hk_buf_lit(b, "}}]}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

static int32_t teams_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    hk_buf b = {0};
    put_body(&b, h, m);
    if (b.failed) {
        int32_t f = b.failed;
        hk_buf_free(&b);
        return hk_host_failure(h, ex, f, "building the JSON body");
    }
    if (b.len > CARD_LIMIT) {
        char msg[200];
        snprintf(msg, sizeof msg, "the card is %zu bytes and Teams accepts about %d: shorten the integration's template or the labels", b.len, CARD_LIMIT);
        hk_buf_free(&b);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_FAILED;
    }
    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json")},
        {HK_SV("User-Agent"), HK_SV("Herald-Teams/1.0")},
    };
    return hk_post(h, ex, HK_VIEW(in->url.p, in->url.len), headers, sizeof headers / sizeof *headers, &b);
}

/* The flow's own words: Power Automate / Logic Apps errors are {"error":{"code":..,"message":..}}. */
static void flow_words(const herald_response *r, char *out, size_t cap) {
    hk_jval err, v;
    char code[80] = "", message[MAX_MESSAGE] = "";
    if (!r->body_truncated && hk_json_member(r->body, "error", &err) == 1) {
        herald_str obj = err.type == 'o' ? HK_VIEW(err.p, err.n) : HK_SV("");
        if (hk_json_member(obj, "code", &v) == 1) hk_json_text(&v, code, sizeof code);
        if (hk_json_member(obj, "message", &v) == 1) hk_json_text(&v, message, sizeof message);
        if (!message[0]) hk_json_text(&err, message, sizeof message); /* {"error":"..."} */
    } else if (!r->body_truncated && hk_json_member(r->body, "message", &v) == 1) {
        hk_json_text(&v, message, sizeof message);
    }
    if (code[0] || message[0]) {
        snprintf(out, cap, "%s%s%s", code, code[0] && message[0] ? ": " : "", message);
        return;
    }
    char snip[HK_QUOTE_BYTES + 8];
    if (hk_snippet(r->body, snip, sizeof snip) > 0) snprintf(out, cap, "%s", snip);
    else snprintf(out, cap, "an empty body");
}

static int32_t teams_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    if (status >= 200 && status <= 299) {
        /* 202 Accepted is the usual answer; the flow then runs on its own. Its run id names it. */
        herald_str id = hk_find_header(r, "x-ms-workflow-run-id");
        if (id.len == 0) id = hk_find_header(r, "x-ms-tracking-id");
        if (id.len > 0 && id.len <= MAX_PROVIDER_ID && hk_is_visible(id)) h->set_provider_id(ex, id);
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
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
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

static const herald_str egress_hosts[] = {HK_LIT("*.logic.azure.com"), HK_LIT("*.environment.api.powerplatform.com")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("teams"),
    .name = HK_LIT("Microsoft Teams (Workflows)"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_MARKDOWN,
    .size_unit = HERALD_SIZE_BYTES,
    .size_limit = BODY_LIMIT,
    /* Instances are read-only after instance_create, so hooks may run in parallel. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, status, number and labels are laid out by the plugin. */
    .default_template = HK_LIT("{{description}}"),
    .instance_create = teams_create,
    .instance_destroy = teams_destroy,
    .prepare = teams_prepare,
    .on_response = teams_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "teams");
}
