/*
 * zoom.c — Herald's Zoom Team Chat channel (the "Incoming Webhook" app).
 *
 * POSTs each notification to the channel's incoming-webhook endpoint with `format=full`: a
 * chatbot message card whose head is the title (coloured by severity), with the body text, the
 * labels as fields, one link line per button and the @mentions. The verification token goes in
 * the Authorization header as is (no scheme). Zoom's own documentation of this endpoint is thin;
 * README.md lists every assumption.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o zoom.so Plugins/zoom/zoom.c
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_MESSAGE = 300, MAX_PROVIDER_ID = 200, TEXT_LIMIT = 4096 };

/* The small helpers (string views, the output buffer, the JSON reader, config reading) are hk_*
 * from herald/plugin_kit.h. */

/* Appends `s` with the characters that would break Zoom's mention syntax <!jid|name> removed,
 * at most 200 bytes, never cutting a character in half. */
static void buf_json_name(hk_buf *b, const herald_host_api *h, herald_str s) {
    char tmp[200];
    size_t n = 0, i = 0;
    while (i < s.len) {
        size_t k = hk_utf8_seq((const unsigned char *)s.ptr + i, s.len - i);
        if (k == 0) k = 1; /* json_escape turns it into U+FFFD */
        char c = s.ptr[i];
        if (k == 1 && (c == '<' || c == '>' || c == '|' || (unsigned char)c < 0x20)) { i++; continue; }
        if (n + k > sizeof tmp) break;
        memcpy(tmp + n, s.ptr + i, k);
        n += k;
        i += k;
    }
    hk_buf_esc(b, h, HK_VIEW(tmp, n));
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;                    /* the endpoint with format=full; its path identifies the connection */
    hk_ostr token;                  /* secret: wiped on destroy */
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 1); /* the endpoint id is a credential too */
    hk_ostr_free(&in->token, 1);
    free(in);
}

/* The endpoint as the operator pasted it, with its query's `format` replaced by format=full
 * (Zoom's sample cURL carries ?format=message or none). Other parameters are kept. */
static int build_url(const hk_ostr *pasted, hk_ostr *out) {
    const char *q = memchr(pasted->p, '?', pasted->len);
    const char *frag = memchr(pasted->p, '#', pasted->len);
    size_t end = frag ? (size_t)(frag - pasted->p) : pasted->len;
    size_t base = q && q < pasted->p + end ? (size_t)(q - pasted->p) : end;
    char *url = malloc(pasted->len + sizeof "?format=full");
    if (!url) return -1;
    size_t n = 0;
    memcpy(url, pasted->p, base);
    n = base;
    char sep = '?';
    if (base < end) {
        const char *p = pasted->p + base + 1, *stop = pasted->p + end;
        while (p < stop) {
            const char *amp = memchr(p, '&', (size_t)(stop - p));
            const char *next = amp ? amp : stop;
            size_t len = (size_t)(next - p);
            if (len > 0 && !(len >= 7 && memcmp(p, "format=", 7) == 0) && !(len == 6 && memcmp(p, "format", 6) == 0)) {
                url[n++] = sep;
                sep = '&';
                memcpy(url + n, p, len);
                n += len;
            }
            p = amp ? amp + 1 : stop;
        }
    }
    url[n++] = sep;
    memcpy(url + n, "format=full", sizeof "format=full");
    n += sizeof "format=full" - 1;
    *out = (hk_ostr){url, n};
    return 0;
}

static const char *const known_settings[] = {"verification_token", "webhook_url"};

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    hk_ostr pasted = {0};
    int rc = -1, got;

    if (hk_check_known_settings(h, known_settings, sizeof known_settings / sizeof *known_settings, "zoom", err) != 0) goto done;

    if ((got = hk_read_opt(h, "webhook_url", &pasted, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'webhook_url' is required (the endpoint Zoom sent after /inc connect)");
        goto done;
    }
    herald_str u = HK_VIEW(pasted.p, pasted.len);
    int url_ok = (u.len > 7 && hk_str_iprefix(u, "http://")) || (u.len > 8 && hk_str_iprefix(u, "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { hk_fail(err, "setting 'webhook_url' must be an http:// or https:// URL without spaces or control characters"); goto done; }
    if (build_url(&pasted, &in->url) != 0) { hk_fail(err, "out of memory while reading setting 'webhook_url'"); goto done; }

    if ((got = hk_read_opt(h, "verification_token", &in->token, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'verification_token' is required (the token Zoom sent with the endpoint)");
        goto done;
    }
    if (in->token.len > 7 && hk_str_iprefix(HK_VIEW(in->token.p, in->token.len), "bearer ")) {
        hk_fail(err, "setting 'verification_token' must be the bare token: Zoom wants it without a 'Bearer' prefix");
        goto done;
    }
    int token_ok = in->token.len > 0;
    for (size_t i = 0; token_ok && i < in->token.len; i++) token_ok = (unsigned char)in->token.p[i] > 0x20 && in->token.p[i] != 0x7f;
    if (!token_ok) { hk_fail(err, "setting 'verification_token' must be the token as Zoom sent it, without spaces or line breaks"); goto done; }
    rc = 0;
done:
    hk_ostr_free(&pasted, 1);
    return rc;
}

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(zoom_create, instance, "zoom", read_config, instance_free)

static void zoom_destroy(void *inst) { instance_free(inst); }

/* ---- the message card ------------------------------------------------------------------------ */

/* Lower case, unlike hk_status_name: the sub-head reads "Critical · triggered · #42". */
static const char *status_word(int32_t s) {
    static const char *const names[] = {"triggered", "acknowledged", "resolved", "closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "unknown";
}

/* Red, amber, blue; green once resolved or closed. */
static const char *severity_color(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "#188038";
    switch (m->severity) {
    case HERALD_SEVERITY_CRITICAL: return "#D93025";
    case HERALD_SEVERITY_WARNING: return "#E37400";
    default: return "#1A73E8";
    }
}

/* hk_link_default_label, except that the view button says "View incident" (not "View"). */
static const char *button_label(int32_t kind) {
    return kind == HERALD_LINK_VIEW ? "View incident" : hk_link_default_label(kind);
}

/* A JID Zoom's <!jid|name> syntax can carry: visible ASCII without | < >. */
static int jid_ok(herald_str id) {
    if (id.len == 0 || id.len > 200 || !hk_is_visible(id)) return 0;
    for (size_t i = 0; i < id.len; i++) {
        if (id.ptr[i] == '|' || id.ptr[i] == '<' || id.ptr[i] == '>') return 0;
    }
    return 1;
}

/*
 * {"content":{"settings":{"default_sidebar_color":C},
 *   "head":{"text":title,"style":{"color":C,"bold":true},"sub_head":{"text":"Critical · triggered · #42"}},
 *   "body":[{"type":"message","text":body},
 *           {"type":"fields","items":[{"key":k,"value":v},...]},
 *           {"type":"message","text":"View incident","link":url}, ...,
 *           {"type":"message","is_markdown_support":true,"text":"<!jid|Ann> <!jid|Bob>"}]}}
 * Only the mention line is markdown: the rest is plain text, shown as written.
 */
static void put_body(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    const char *color = severity_color(m);
    hk_buf_lit(b, "{\"content\":{\"settings\":{\"default_sidebar_color\":\"");
    hk_buf_lit(b, color);
    hk_buf_lit(b, "\"},\"head\":{\"text\":");
    hk_buf_json(b, h, m->title);
    hk_buf_lit(b, ",\"style\":{\"color\":\"");
    hk_buf_lit(b, color);
    hk_buf_lit(b, "\",\"bold\":true},\"sub_head\":{\"text\":\"");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 ");
    hk_buf_lit(b, status_word(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 #");
        hk_buf_u64(b, m->incident_number);
    }
    hk_buf_lit(b, "\"}},\"body\":[");
    const char *sep = "";
    if (m->body.len > 0) {
        hk_buf_lit(b, "{\"type\":\"message\",\"text\":");
        hk_buf_json(b, h, m->body);
        hk_buf_lit(b, "}");
        sep = ",";
    }
    size_t fields = 0;
    for (size_t i = 0; m->labels && i < m->label_count; i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0) continue;
        hk_buf_lit(b, fields == 0 ? sep : ",");
        if (fields == 0) hk_buf_lit(b, "{\"type\":\"fields\",\"items\":[");
        hk_buf_lit(b, "{\"key\":");
        hk_buf_json(b, h, l->name);
        hk_buf_lit(b, ",\"value\":");
        hk_buf_json(b, h, l->value.len > 0 ? l->value : HK_SV("-"));
        hk_buf_lit(b, "}");
        fields++;
    }
    if (fields > 0) {
        hk_buf_lit(b, "]}");
        sep = ",";
    }
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (l->url.len == 0 || !(hk_str_iprefix(l->url, "https://") || hk_str_iprefix(l->url, "http://"))) continue;
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_lit(b, "{\"type\":\"message\",\"text\":");
        if (l->label.len > 0) hk_buf_json(b, h, l->label);
        else hk_buf_json(b, h, HK_VIEW(button_label(l->kind), strlen(button_label(l->kind))));
        hk_buf_lit(b, ",\"link\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
    }
    size_t mentions = 0;
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        if (!hk_str_eq(x->id_kind, "jid") || !jid_ok(x->id)) continue;
        if (mentions == 0) {
            hk_buf_lit(b, sep);
            sep = ",";
            hk_buf_lit(b, "{\"type\":\"message\",\"is_markdown_support\":true,\"text\":\"");
        } else {
            hk_buf_lit(b, " ");
        }
        hk_buf_lit(b, "<!");
        hk_buf_esc(b, h, x->id);
        hk_buf_lit(b, "|");
        buf_json_name(b, h, hk_mention_name(x));
        hk_buf_lit(b, ">");
        mentions++;
    }
    if (mentions > 0) hk_buf_lit(b, "\"}");
    hk_buf_lit(b, "]}}");
}

/* ---- hooks: delivery ------------------------------------------------------------------------- */

static int32_t zoom_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
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
    herald_pair headers[] = {
        {HK_SV("Content-Type"), HK_SV("application/json")},
        {HK_SV("Authorization"), HK_VIEW(in->token.p, in->token.len)},
        {HK_SV("User-Agent"), HK_SV("Herald-Zoom/1.0")},
    };
    return hk_post(h, ex, HK_VIEW(in->url.p, in->url.len), headers, sizeof headers / sizeof *headers, &b);
}

/* Zoom's own words: a JSON body's "message" (or "error"), else a snippet of the body. */
static void zoom_words(const herald_response *r, char *out, size_t cap) {
    hk_jval v;
    char text[MAX_MESSAGE] = "";
    if (!r->body_truncated && ((hk_json_member(r->body, "message", &v) == 1 && hk_json_text(&v, text, sizeof text)) ||
                               (hk_json_member(r->body, "error", &v) == 1 && hk_json_text(&v, text, sizeof text))) && text[0]) {
        snprintf(out, cap, "%s", text);
        return;
    }
    char snip[HK_QUOTE_BYTES + 8];
    if (hk_snippet(r->body, snip, sizeof snip) > 0) snprintf(out, cap, "%s", snip);
    else snprintf(out, cap, "an empty body");
}

/* A message id, if Zoom's success body carries one ({"message_id": "..."} or {"id": "..."}). */
static void provider_id(const herald_host_api *h, const herald_response *r, herald_exchange *ex) {
    hk_jval v;
    char id[MAX_PROVIDER_ID + 1] = "";
    if (r->body_truncated) return;
    if (!((hk_json_member(r->body, "message_id", &v) == 1 && hk_json_text(&v, id, sizeof id)) ||
          (hk_json_member(r->body, "id", &v) == 1 && hk_json_text(&v, id, sizeof id)))) return;
    if (id[0] && hk_is_visible(HK_VIEW(id, strlen(id)))) h->set_provider_id(ex, HK_VIEW(id, strlen(id)));
}

static int32_t zoom_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    if (status >= 200 && status <= 299) {
        provider_id(h, r, ex);
        return HERALD_OUTCOME_DELIVERED;
    }
    char words[MAX_MESSAGE + 20], reason[MAX_MESSAGE + 300];
    zoom_words(r, words, sizeof words);
    int32_t outcome = HERALD_OUTCOME_FAILED;
    if (status == 401 || status == 403)
        snprintf(reason, sizeof reason, "Zoom rejected the verification token (HTTP %d: %s): check verification_token, the token Zoom sent with this endpoint (without 'Bearer')", (int)status, words);
    else if (status == 404 || status == 410)
        snprintf(reason, sizeof reason, "Zoom does not know this webhook endpoint (HTTP %d: %s): the connection may have been removed; run /inc connect again and update webhook_url", (int)status, words);
    else if (status == 413)
        snprintf(reason, sizeof reason, "Zoom refused the message as too large (HTTP 413: %s): shorten the integration's template", words);
    else if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
        snprintf(reason, sizeof reason, "Zoom is %s (HTTP %d: %s)", status == 429 ? "rate-limiting this webhook" : "temporarily unavailable", (int)status, words);
        outcome = HERALD_OUTCOME_RETRY; /* the host honours a Retry-After header itself */
    } else if (status == 400)
        snprintf(reason, sizeof reason, "Zoom refused the message (HTTP 400: %s)", words);
    else if (status >= 300 && status <= 399)
        snprintf(reason, sizeof reason, "Zoom answered with a redirect (HTTP %d): set webhook_url to the endpoint Zoom sent", (int)status);
    else if (status < 100 || status > 599)
        snprintf(reason, sizeof reason, "Zoom answered with an invalid HTTP status %d", (int)status);
    else
        snprintf(reason, sizeof reason, "Zoom refused the message (HTTP %d: %s)", (int)status, words);
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
    return outcome;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"webhook_url\",\"verification_token\"],\"properties\":{"
    "\"webhook_url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\","
    "\"title\":\"Endpoint\",\"description\":\"The incoming-webhook endpoint Zoom sent after /inc connect, e.g. "
    "https://integrations.zoom.us/chat/webhooks/incomingwebhook/<id>. Any format= parameter is replaced by format=full.\","
    "\"examples\":[\"https://integrations.zoom.us/chat/webhooks/incomingwebhook/AbCdEfGhIjKlMnOpQrStUv\"]},"
    "\"verification_token\":{\"type\":\"string\",\"writeOnly\":true,\"minLength\":1,"
    "\"title\":\"Verification token\",\"description\":\"The token Zoom sent with the endpoint; sent as the Authorization header, without 'Bearer'.\","
    "\"examples\":[\"aBcDeFgHiJkLmNoPqRsTuV\"]}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("integrations.zoom.us"), HK_LIT("inbots.zoom.us")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_GROUP_BOT,
    .id = HK_LIT("zoom"),
    .name = HK_LIT("Zoom Team Chat"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    .size_limit = TEXT_LIMIT,
    /* Instances are read-only after instance_create, so hooks may run in parallel. */
    .capabilities = HERALD_CAP_MENTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, status, number and labels are laid out by the plugin. */
    .default_template = HK_LIT("{{description}}"),
    .instance_create = zoom_create,
    .instance_destroy = zoom_destroy,
    .prepare = zoom_prepare,
    .on_response = zoom_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "zoom");
}
