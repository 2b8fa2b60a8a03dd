/*
 * webhook.c — Herald's generic webhook channel.
 *
 * POSTs one JSON document per notification to an operator-configured URL. The document is
 * shaped like an Alertmanager v4 webhook (so receivers written for Alertmanager understand it)
 * plus a "herald" object with the incident details Alertmanager has no field for. With a
 * `secret` the request is signed the Standard Webhooks way (webhook-id, webhook-timestamp,
 * webhook-signature). See README.md for the payload and delivery semantics.
 *
 * Sans-I/O like every Herald plugin: `prepare` describes the request, `on_response` reads the
 * answer. Pure C11 + libc; the only exported symbol is herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o webhook.so Plugins/webhook/webhook.c
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_OPERATOR_HEADERS = 32, MAX_HEADER_NAME = 100, MAX_PROVIDER_ID = 200 };

/* The string views, the output buffer, config reading, response snippets and host-failure
 * reasons are hk_* from herald/plugin_kit.h. */

/* ---- small helpers --------------------------------------------------------------------------- */

/* RFC 9110 token characters, the only ones allowed in a header name. */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ---- time ------------------------------------------------------------------------------------ */

/* Days since 1970-01-01 -> proleptic Gregorian date (Howard Hinnant's algorithm), so no locale-
 * or TZ-dependent libc call is involved. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#define ZERO_TIME "0001-01-01T00:00:00Z" /* Alertmanager's "not ended" value */
#define MAX_RFC3339_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

/* Unix ms -> RFC 3339 UTC ("2024-05-01T12:00:00Z", with .mmm when non-zero). */
static void rfc3339(int64_t ms, char out[64]) {
    if (ms < 0 || ms > MAX_RFC3339_MS) {
        memcpy(out, ZERO_TIME, sizeof ZERO_TIME);
        return;
    }
    int64_t secs = ms / 1000, rem = secs % 86400, y;
    unsigned mo, d;
    civil_from_days(secs / 86400, &y, &mo, &d);
    unsigned hh = (unsigned)(rem / 3600), mi = (unsigned)(rem / 60 % 60), ss = (unsigned)(rem % 60);
    unsigned frac = (unsigned)(ms % 1000);
    int n = snprintf(out, 64, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, mo % 100, d % 100, hh % 100, mi % 100, ss % 100);
    if (frac) snprintf(out + n, (size_t)(64 - n), ".%03uZ", frac % 1000);
    else memcpy(out + n, "Z", 2);
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    herald_str name; /* points into instance.header_names */
    hk_ostr value;      /* owned; may be a token, so wiped on destroy */
} op_header;

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;
    hk_ostr receiver;      /* p == NULL: the default "herald" */
    uint8_t *key;       /* decoded whsec_ secret (owned, wiped on destroy); NULL = unsigned */
    size_t key_len;
    hk_ostr header_names;  /* config_keys("headers"): the names, each followed by NUL */
    op_header headers[MAX_OPERATOR_HEADERS];
    size_t header_count;
    int operator_user_agent; /* the operator set User-Agent, so ours is left out */
    uint32_t timeout_ms;     /* 0 = host default */
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 0);
    hk_ostr_free(&in->receiver, 0);
    hk_wipe(in->key, in->key_len);
    free(in->key);
    for (size_t i = 0; i < in->header_count; i++) hk_ostr_free(&in->headers[i].value, 1);
    hk_ostr_free(&in->header_names, 0);
    free(in);
}

/* Headers the plugin sets itself; letting the operator override them would break framing,
 * signing or idempotency. */
static const char *const reserved_headers[] = {
    "content-type", "content-length", "transfer-encoding", "host", "connection",
    "idempotency-key", "webhook-id", "webhook-timestamp", "webhook-signature",
};

static int read_headers(instance *in, char *err) {
    const herald_host_api *h = in->host;
    int32_t st = hk_cfg_read(h, 1, "headers", &in->header_names);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    if (st == HERALD_ERR_INVALID_ARGUMENT) return hk_fail(err, "setting 'headers' must be an object of header names to string values");
    if (st != HERALD_OK) return hk_read_fail(err, "headers", st);
    const char *names = in->header_names.p, *end = names + in->header_names.len;
    for (const char *name = names; name < end; name += strlen(name) + 1) {
        herald_str n = HK_VIEW(name, strlen(name));
        int ok = n.len > 0 && n.len <= MAX_HEADER_NAME;
        for (size_t i = 0; i < n.len; i++) ok &= is_tchar((unsigned char)name[i]);
        if (!ok) return hk_fail(err, "setting 'headers' contains a name that is not a valid HTTP header name");
        /* config_get paths split at '.', so such a name could not be read back. */
        if (memchr(name, '.', n.len)) return hk_fail(err, "setting 'headers' may not set '%s': header names with '.' are not supported", name);
        for (size_t i = 0; i < sizeof reserved_headers / sizeof *reserved_headers; i++) {
            if (hk_str_ieq(n, reserved_headers[i])) return hk_fail(err, "setting 'headers' may not set '%s': the webhook plugin sets it itself", name);
        }
        for (size_t i = 0; i < in->header_count; i++) {
            if (hk_str_ieq(n, in->headers[i].name.ptr)) return hk_fail(err, "setting 'headers' sets '%s' twice (header names are case-insensitive)", name);
        }
        if (in->header_count == MAX_OPERATOR_HEADERS) return hk_fail(err, "setting 'headers' has more than 32 headers");
        char path[sizeof "headers." + MAX_HEADER_NAME];
        snprintf(path, sizeof path, "headers.%s", name);
        op_header *hd = &in->headers[in->header_count];
        if ((st = hk_cfg_read(h, 0, path, &hd->value)) != HERALD_OK) return hk_read_fail(err, path, st);
        hd->name = n;
        in->header_count++;
        const char *v = hd->value.p;
        size_t vlen = hd->value.len;
        if (memchr(v, '\r', vlen) || memchr(v, '\n', vlen) || memchr(v, 0, vlen))
            return hk_fail(err, "setting '%s' contains a line break or NUL character", path);
        if (hk_str_ieq(n, "user-agent")) in->operator_user_agent = 1;
    }
    return 0;
}

/* Decodes "whsec_<base64>" into the HMAC key. The key is never logged or echoed. */
static int read_secret(instance *in, const hk_ostr *secret, char *err) {
    const herald_host_api *h = in->host;
    static const char prefix[] = "whsec_";
    const size_t plen = sizeof prefix - 1;
    if (secret->len <= plen || memcmp(secret->p, prefix, plen) != 0)
        return hk_fail(err, "setting 'secret' must be a Standard Webhooks secret: 'whsec_' followed by base64");
    herald_str text = HK_VIEW(secret->p + plen, secret->len - plen);
    size_t need = 0, got = 0;
    int32_t rc = h->base64_decode(text, NULL, 0, &need);
    if (rc == HERALD_OK && need == 0) return hk_fail(err, "setting 'secret' decodes to an empty key");
    if (rc != HERALD_ERR_BUFFER_TOO_SMALL || need == 0 || need > text.len)
        return hk_fail(err, "setting 'secret' is not valid base64 after the 'whsec_' prefix");
    if (!(in->key = malloc(need))) return hk_fail(err, "out of memory while decoding setting 'secret'");
    rc = h->base64_decode(text, in->key, need, &got);
    in->key_len = got <= need ? got : need;
    if (rc != HERALD_OK || got == 0 || got > need)
        return hk_fail(err, "setting 'secret' is not valid base64 after the 'whsec_' prefix");
    if (got < 24) h->log(HERALD_LOG_WARNING, HK_SV("setting 'secret' is shorter than the 24 bytes Standard Webhooks recommends"));
    return 0;
}

/* The host validated the config against config_schema before instance_create, so types and
 * ranges already hold; the checks below keep the plugin safe if a host does not, and name the
 * setting in every sentence. On failure `err` holds the sentence for set_error. */
static int read_config(instance *in, char *err) {
    static const char *const known[] = {"url", "secret", "headers", "receiver", "timeout_ms"};
    const herald_host_api *h = in->host;
    hk_ostr secret = {0}, timeout = {0};
    int rc = -1, got;

    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "webhook", err) != 0) goto done;

    if ((got = hk_read_opt(h, "url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'url' is required");
        goto done;
    }
    herald_str u = HK_VIEW(in->url.p, in->url.len);
    int url_ok = (u.len > 7 && hk_str_ieq(HK_VIEW(u.ptr, 7), "http://")) || (u.len > 8 && hk_str_ieq(HK_VIEW(u.ptr, 8), "https://"));
    for (size_t i = 0; url_ok && i < u.len; i++) url_ok = (unsigned char)u.ptr[i] > 0x20 && u.ptr[i] != 0x7f;
    if (!url_ok) { hk_fail(err, "setting 'url' must be an http:// or https:// URL without spaces or control characters"); goto done; }

    if ((got = hk_read_opt(h, "secret", &secret, err)) < 0 || (got == 1 && read_secret(in, &secret, err) != 0)) goto done;
    if (hk_read_opt(h, "receiver", &in->receiver, err) < 0) goto done;
    if ((got = hk_read_opt(h, "timeout_ms", &timeout, err)) < 0) goto done;
    if (got == 1) {
        /* A number comes back as compact JSON text; only a plain integer in range is accepted. */
        uint32_t v = 0;
        int ok = timeout.len > 0 && timeout.len <= 5;
        for (size_t i = 0; ok && i < timeout.len; i++) {
            ok = timeout.p[i] >= '0' && timeout.p[i] <= '9';
            v = v * 10 + (uint32_t)(timeout.p[i] - '0');
        }
        if (!ok || v < 100 || v > 60000) { hk_fail(err, "setting 'timeout_ms' must be an integer from 100 to 60000"); goto done; }
        in->timeout_ms = v;
    }
    if (read_headers(in, err) != 0) goto done;

    if (hk_plain_http_to_remote_host(&in->url))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'url' uses plain http: payloads and headers travel unencrypted"));
    rc = 0;
done:
    hk_ostr_free(&secret, 1);
    hk_ostr_free(&timeout, 0);
    return rc;
}

/* ---- hooks: instances ------------------------------------------------------------------------ */

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(webhook_create, instance, "webhook", read_config, instance_free)

static void webhook_destroy(void *inst) { instance_free(inst); }

/* ---- hooks: delivery ------------------------------------------------------------------------- */

static const char *event_name(int32_t e) {
    static const char *const names[] = {"fire", "refire", "acknowledged", "snoozed", "resolved", "closed", "test"};
    return e >= 1 && e <= 7 ? names[e - 1] : "unknown"; /* newer hosts may add events */
}

/* Kept local: the payload carries lower-case wire names ("critical", "triggered", "view"/"other"),
 * not the kit's English display names (hk_severity_name, hk_status_name, hk_link_default_label). */
static const char *wire_severity(int32_t s) {
    static const char *const names[] = {"critical", "warning", "info"};
    return s >= 1 && s <= 3 ? names[s - 1] : "unknown";
}

static const char *wire_status(int32_t s) {
    static const char *const names[] = {"triggered", "acknowledged", "resolved", "closed"};
    return s >= 1 && s <= 4 ? names[s - 1] : "unknown";
}

static const char *wire_link_kind(int32_t k) {
    static const char *const names[] = {"view", "acknowledge", "snooze", "close", "other"};
    return k >= 1 && k <= 5 ? names[k - 1] : "other";
}

/* Appends C string `s` as a quoted JSON string. */
static void put_json_c(hk_buf *b, const herald_host_api *h, const char *s) { hk_buf_json(b, h, HK_VIEW(s, strlen(s))); }

/* herald_link and herald_mention are frozen (arrays of them have a fixed stride), so their
 * fields are read without a struct_size check. */
static herald_str view_url(const herald_message *m) {
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        if (m->links[i].kind == HERALD_LINK_VIEW && m->links[i].url.len > 0) return m->links[i].url;
    }
    return HK_SV("");
}

static int has_label(const herald_message *m, size_t before, herald_str name) {
    for (size_t i = 0; i < before; i++) {
        herald_str n = m->labels[i].name;
        if (n.len == name.len && (n.len == 0 || memcmp(n.ptr, name.ptr, n.len) == 0)) return 1;
    }
    return 0;
}

/* The incident's labels, plus "severity" and "alertname" when the labels lack them: receivers
 * written for Alertmanager route and display on those two. Duplicate names keep the first. */
static void put_labels(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    size_t count = m->labels ? m->label_count : 0;
    const char *sep = "{";
    for (size_t i = 0; i < count; i++) {
        const herald_pair *l = &m->labels[i];
        if (l->name.len == 0 || has_label(m, i, l->name)) continue;
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_json(b, h, l->name);
        hk_buf_lit(b, ":");
        hk_buf_json(b, h, l->value);
    }
    if (!has_label(m, count, HK_SV("severity"))) {
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_lit(b, "\"severity\":");
        put_json_c(b, h, wire_severity(m->severity));
    }
    if (!has_label(m, count, HK_SV("alertname"))) {
        hk_buf_lit(b, sep);
        hk_buf_lit(b, "\"alertname\":");
        hk_buf_json(b, h, m->title);
    }
    hk_buf_lit(b, "}");
}

static void put_annotations(hk_buf *b, const herald_host_api *h, const herald_message *m) {
    hk_buf_lit(b, "{\"summary\":");
    hk_buf_json(b, h, m->title);
    hk_buf_lit(b, ",\"description\":");
    hk_buf_json(b, h, m->body);
    hk_buf_lit(b, "}");
}

/* The Alertmanager-v4-like document; README.md documents every field. */
static void put_body(hk_buf *b, const instance *in, const herald_message *m, int64_t now_ms) {
    const herald_host_api *h = in->host;
    int ended = m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED;
    const char *am_status = ended ? "resolved" : "firing";
    herald_str view = view_url(m);
    char starts[64], ends[64];
    rfc3339(m->started_at_ms > 0 ? m->started_at_ms : now_ms, starts);
    if (m->closed_at_ms > 0) rfc3339(m->closed_at_ms, ends);
    else if (ended) rfc3339(now_ms, ends); /* resolved without a recorded time: "now" is closest */
    else memcpy(ends, ZERO_TIME, sizeof ZERO_TIME);

    hk_buf_lit(b, "{\"version\":\"4\",\"groupKey\":");
    hk_buf_json(b, h, m->incident_id);
    hk_buf_lit(b, ",\"truncatedAlerts\":0,\"status\":\"");
    hk_buf_lit(b, am_status);
    hk_buf_lit(b, "\",\"receiver\":");
    hk_buf_json(b, h, in->receiver.p ? HK_VIEW(in->receiver.p, in->receiver.len) : HK_SV("herald"));
    hk_buf_lit(b, ",\"groupLabels\":{},\"commonLabels\":");
    put_labels(b, h, m);
    hk_buf_lit(b, ",\"commonAnnotations\":");
    put_annotations(b, h, m);
    hk_buf_lit(b, ",\"externalURL\":");
    hk_buf_json(b, h, view);

    hk_buf_lit(b, ",\"alerts\":[{\"status\":\"");
    hk_buf_lit(b, am_status);
    hk_buf_lit(b, "\",\"labels\":");
    put_labels(b, h, m);
    hk_buf_lit(b, ",\"annotations\":");
    put_annotations(b, h, m);
    hk_buf_lit(b, ",\"startsAt\":\"");
    hk_buf_lit(b, starts);
    hk_buf_lit(b, "\",\"endsAt\":\"");
    hk_buf_lit(b, ends);
    hk_buf_lit(b, "\",\"generatorURL\":");
    hk_buf_json(b, h, view);
    hk_buf_lit(b, ",\"fingerprint\":");
    hk_buf_json(b, h, m->incident_id);
    hk_buf_lit(b, "}]");

    hk_buf_lit(b, ",\"herald\":{\"incident_id\":");
    hk_buf_json(b, h, m->incident_id);
    hk_buf_lit(b, ",\"incident_number\":");
    hk_buf_u64(b, m->incident_number);
    hk_buf_lit(b, ",\"event\":");
    put_json_c(b, h, event_name(m->event));
    hk_buf_lit(b, ",\"severity\":");
    put_json_c(b, h, wire_severity(m->severity));
    hk_buf_lit(b, ",\"status\":");
    put_json_c(b, h, wire_status(m->status));
    hk_buf_lit(b, ",\"alert_count\":");
    hk_buf_u64(b, m->alert_count);
    hk_buf_lit(b, ",\"links\":[");
    const char *sep = "";
    for (size_t i = 0; m->links && i < m->link_count; i++) {
        const herald_link *l = &m->links[i];
        if (l->url.len == 0) continue;
        /* callback_token is left out: it is for interactive apps, and a webhook has no callbacks. */
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_lit(b, "{\"kind\":");
        put_json_c(b, h, wire_link_kind(l->kind));
        hk_buf_lit(b, ",\"label\":");
        hk_buf_json(b, h, l->label);
        hk_buf_lit(b, ",\"url\":");
        hk_buf_json(b, h, l->url);
        hk_buf_lit(b, "}");
    }
    hk_buf_lit(b, "],\"mentions\":[");
    sep = "";
    for (size_t i = 0; m->mentions && i < m->mention_count; i++) {
        const herald_mention *x = &m->mentions[i];
        hk_buf_lit(b, sep);
        sep = ",";
        hk_buf_lit(b, "{\"display_name\":");
        hk_buf_json(b, h, x->display_name);
        hk_buf_lit(b, ",\"id\":");
        hk_buf_json(b, h, x->id);
        hk_buf_lit(b, ",\"id_kind\":");
        hk_buf_json(b, h, x->id_kind);
        hk_buf_lit(b, "}");
    }
    hk_buf_lit(b, "]}}");
}

static int32_t webhook_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    /* The ABI promises 1..128 bytes of [A-Za-z0-9._:-]; checked anyway, as it goes into headers. */
    herald_str key = m->idempotency_key;
    if (key.len == 0 || key.ptr == NULL || key.len > 256 || !hk_is_visible(key)) {
        h->set_reason(ex, HK_SV("the message's idempotency key is missing or not visible ASCII, so it cannot be the Idempotency-Key and webhook-id headers"));
        return HERALD_OUTCOME_FAILED;
    }

    int64_t now_ms = h->now_unix_ms();
    char ts[24];
    int ts_len = snprintf(ts, sizeof ts, "%lld", (long long)(now_ms > 0 ? now_ms / 1000 : 0));

    /* With a secret the buffer starts with "<id>.<timestamp>." so the signed content is one
     * contiguous run; the body view then starts after that prefix. */
    hk_buf b = {0};
    size_t prefix = 0;
    if (in->key) {
        hk_buf_put(&b, key.ptr, key.len);
        hk_buf_put(&b, ".", 1);
        hk_buf_put(&b, ts, (size_t)ts_len);
        hk_buf_put(&b, ".", 1);
        prefix = b.len;
    }
    put_body(&b, in, m, now_ms);
    if (b.failed) {
        int32_t failed = b.failed; /* hk_buf_free resets it */
        hk_buf_free(&b);
        return hk_host_failure(h, ex, failed, "building the JSON body");
    }

    char sig[64] = "v1,";
    size_t sig_len = 0;
    if (in->key) {
        uint8_t mac[32];
        size_t b64_len = 0;
        int32_t rc = h->hmac_sha256(HK_VIEW((const char *)in->key, in->key_len), HK_VIEW(b.p, b.len), mac);
        if (rc == HERALD_OK) rc = h->base64_encode(HK_VIEW((const char *)mac, sizeof mac), (uint8_t *)sig + 3, sizeof sig - 3, &b64_len);
        if (rc != HERALD_OK) {
            hk_buf_free(&b);
            return hk_host_failure(h, ex, rc, "signing the body");
        }
        sig_len = 3 + b64_len;
    }

    /* Views below borrow from the instance, the message, the stack and `b`; set_request copies
     * them all before returning, so `b` is freed right after. */
    herald_pair headers[MAX_OPERATOR_HEADERS + 8];
    size_t n = 0;
    headers[n++] = (herald_pair){HK_SV("Content-Type"), HK_SV("application/json")};
    if (!in->operator_user_agent) headers[n++] = (herald_pair){HK_SV("User-Agent"), HK_SV("Herald-Webhook/1.0")};
    for (size_t i = 0; i < in->header_count; i++)
        headers[n++] = (herald_pair){in->headers[i].name, HK_VIEW(in->headers[i].value.p, in->headers[i].value.len)};
    headers[n++] = (herald_pair){HK_SV("Idempotency-Key"), key};
    if (in->key) {
        headers[n++] = (herald_pair){HK_SV("webhook-id"), key};
        headers[n++] = (herald_pair){HK_SV("webhook-timestamp"), HK_VIEW(ts, (size_t)ts_len)};
        headers[n++] = (herald_pair){HK_SV("webhook-signature"), HK_VIEW(sig, sig_len)};
    }

    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = HK_SV("POST");
    req.url = HK_VIEW(in->url.p, in->url.len);
    req.headers = headers;
    req.header_count = n;
    req.body = HK_VIEW(b.p + prefix, b.len - prefix);
    req.timeout_ms = in->timeout_ms;
    int32_t rc = h->set_request(ex, &req);
    hk_buf_free(&b);
    if (rc != HERALD_OK) return hk_host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

static int32_t webhook_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int32_t status = r->status;
    if (status >= 200 && status <= 299) {
        /* The receiver's own request id is more useful for cross-referencing, when it gives one. */
        herald_str id = hk_find_header(r, "X-Request-Id");
        if (id.len == 0 || id.len > MAX_PROVIDER_ID || !hk_is_visible(id)) id = m->idempotency_key;
        h->set_provider_id(ex, id);
        return HERALD_OUTCOME_DELIVERED;
    }

    char snip[HK_QUOTE_BYTES + 8], reason[HK_QUOTE_BYTES + 160];
    size_t snip_len = hk_snippet(r->body, snip, sizeof snip);
    const char *hint = "";
    if (status >= 300 && status <= 399) hint = " (a redirect: set 'url' to the final address)";
    else if (status == 401 || status == 403) hint = " (check the 'headers' and 'secret' settings)";
    if (status < 100 || status > 599)
        snprintf(reason, sizeof reason, "receiver answered with an invalid HTTP status %d", (int)status);
    else if (snip_len == 0)
        snprintf(reason, sizeof reason, "receiver answered %d%s with an empty body", (int)status, hint);
    else
        snprintf(reason, sizeof reason, "receiver answered %d%s: %s", (int)status, hint, snip);
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));

    /* No set_retry_after: the host honours the response's Retry-After itself (capped at an hour). */
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return HERALD_OUTCOME_RETRY;
    return HERALD_OUTCOME_FAILED; /* 1xx, 3xx, other 4xx: the same request will fail again */
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"url\"],\"properties\":{"
    "\"url\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://\","
    "\"title\":\"Receiver URL\",\"description\":\"Where each notification is POSTed.\"},"
    "\"secret\":{\"type\":\"string\",\"writeOnly\":true,\"pattern\":\"^whsec_[A-Za-z0-9+/=]+$\","
    "\"title\":\"Signing secret\",\"description\":\"Standard Webhooks secret (whsec_ + base64); "
    "when set, requests carry webhook-id, webhook-timestamp and webhook-signature.\"},"
    "\"headers\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"
    "\"title\":\"Extra headers\",\"description\":\"Sent with every request, e.g. Authorization.\"},"
    "\"receiver\":{\"type\":\"string\",\"default\":\"herald\",\"title\":\"Receiver name\","
    "\"description\":\"The Alertmanager 'receiver' field of the payload.\"},"
    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":60000,"
    "\"title\":\"Timeout\",\"description\":\"Request timeout in milliseconds; the host default when absent.\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("config:url")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_WEBHOOK,
    .id = HK_LIT("webhook"),
    .name = HK_LIT("Generic webhook"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_BYTES,
    .size_limit = 0,
    /* Instances are read-only after instance_create, so hooks may run in parallel. */
    .capabilities = HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title travels separately (annotations.summary), so the body is the description only. */
    .default_template = HK_LIT("{{description}}"),
    .instance_create = webhook_create,
    .instance_destroy = webhook_destroy,
    .prepare = webhook_prepare,
    .on_response = webhook_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "webhook");
}
