/*
 * aliyun_openapi.h — what Herald's two Alibaba Cloud plugins (aliyun-sms, aliyun-voice) share:
 * the RPC-style OpenAPI request signing (V3 "ACS3-HMAC-SHA256", the default, and the legacy V2
 * HMAC-SHA1 signature), the common settings (AccessKey, endpoint, signature version), reading
 * Alibaba's answers and sorting their error codes into retry-later and permanent, masking phone
 * numbers and keys for reasons and logs, template variables filled from message fields, and the
 * `explain-signature` admin action.
 *
 * This folder has no manifest.json, so scripts/build-plugins.sh does not build it as a plugin;
 * each plugin includes it with `#include "../aliyun-common/aliyun_openapi.h"`. Everything here is
 * `static inline`: nothing is exported, and an unused helper costs nothing.
 *
 * Signing follows /work/shared/reference/providers-sms-voice-email.md §1.6 (V2) and §1.7 (V3).
 * Crypto, clock and randomness come from the host API table; this file needs only libc.
 */
#ifndef HERALD_ALIYUN_OPENAPI_H
#define HERALD_ALIYUN_OPENAPI_H

#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    AA_MAX_PARAMS = 40,          /* business + common parameters of one request */
    AA_SNIPPET = 200,            /* bytes of a provider message quoted in a reason */
    AA_THROTTLE_RETRY_MS = 30000, /* gateway flow control without a hint */
    AA_MINUTE_LIMIT_RETRY_MS = 60000,
    AA_HOUR_LIMIT_RETRY_MS = 3600000,
    AA_TAG_FIRST = 1,            /* herald_request.tag of the first attempt */
    AA_TAG_RESIGNED = 2          /* ... of the one re-signed attempt after a clock/nonce refusal */
};

/* ---- parameters ------------------------------------------------------------------------------ */

/** One request parameter. `name` is ASCII [A-Za-z0-9.] (so its encoded form is itself); the
 *  value is any UTF-8. Both borrowed. */
typedef struct {
    const char *name;
    herald_str value;
} aa_param;

typedef struct {
    aa_param p[AA_MAX_PARAMS];
    size_t n;
} aa_params;

/** Adds a parameter (dropped silently past AA_MAX_PARAMS; callers stay far below). Borrows both. */
/* The KV key remembering a message Alibaba accepted (neither API takes an idempotency key, so a
 * retry must not send it again): "sent:<idempotency key>". */
static inline size_t aa_sent_key(const herald_message *m, char *out, size_t cap) {
    int n = snprintf(out, cap, "sent:%.*s", (int)(m->idempotency_key.len > 200 ? 200 : m->idempotency_key.len),
                     m->idempotency_key.ptr ? m->idempotency_key.ptr : "");
    return n > 0 ? (size_t)n : 0;
}

static inline void aa_add(aa_params *ps, const char *name, herald_str value) {
    if (ps->n < AA_MAX_PARAMS) ps->p[ps->n++] = (aa_param){name, value};
}

static inline void aa_add_c(aa_params *ps, const char *name, const char *value) {
    aa_add(ps, name, HK_VIEW(value, strlen(value)));
}

/** Sorts by name in byte order (the canonical order of both signature versions). */
static inline void aa_sort(aa_params *ps) {
    for (size_t i = 1; i < ps->n; i++) {
        aa_param x = ps->p[i];
        size_t j = i;
        while (j > 0 && strcmp(ps->p[j - 1].name, x.name) > 0) {
            ps->p[j] = ps->p[j - 1];
            j--;
        }
        ps->p[j] = x;
    }
}

/** Appends `s` percent-encoded as Alibaba signs it (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay;
 *  space is %20, `*` is %2A, upper-case hex). Borrows `s`. */
static inline void aa_pct(hk_buf *b, herald_str s) {
    static const char hex[] = "0123456789ABCDEF";
    if (!s.ptr || s.len == 0 || hk_buf_reserve(b, s.len * 3) != 0) return;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~') {
            b->p[b->len++] = (char)c;
        } else {
            b->p[b->len++] = '%';
            b->p[b->len++] = hex[c >> 4];
            b->p[b->len++] = hex[c & 15];
        }
    }
}

/** The canonical query string of sorted `ps`: name=pct(value) joined by '&'. */
static inline void aa_canonical_query(hk_buf *b, const aa_params *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        if (i) hk_buf_put(b, "&", 1);
        hk_buf_lit(b, ps->p[i].name);
        hk_buf_put(b, "=", 1);
        aa_pct(b, ps->p[i].value);
    }
}

static inline void aa_hex(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* ---- time ------------------------------------------------------------------------------------ */

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static inline int64_t aa_days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/** Unix milliseconds as "yyyy-MM-ddTHH:mm:ssZ" (UTC) into `out` (at least 21 bytes). */
static inline void aa_iso8601(int64_t ms, char *out) {
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    if (rem < 0) { rem += 86400; days--; }
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    int v[6] = {(int)y, (int)m, (int)d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60)};
    static const char seps[] = "--T::Z";
    size_t o = 0;
    for (int i = 0; i < 6; i++) {
        if (i == 0) {
            out[o++] = (char)('0' + v[0] / 1000);
            out[o++] = (char)('0' + v[0] / 100 % 10);
        }
        out[o++] = (char)('0' + v[i] / 10 % 10);
        out[o++] = (char)('0' + v[i] % 10);
        out[o++] = seps[i];
    }
    out[o] = 0;
}

/** Parses an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") into Unix ms: 1, or 0 if it is not one. */
static inline int aa_parse_http_date(herald_str s, int64_t *ms) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char t[40];
    if (!s.ptr || s.len < 29 || s.len >= sizeof t) return 0;
    memcpy(t, s.ptr, s.len);
    t[s.len] = 0;
    const char *p = strchr(t, ',');
    if (!p) return 0;
    int d, y, hh, mm, ss;
    char mon[4];
    if (sscanf(p + 1, " %2d %3s %4d %2d:%2d:%2d", &d, mon, &y, &hh, &mm, &ss) != 6) return 0;
    const char *at = strstr(months, mon);
    if (!at || strlen(mon) != 3 || (at - months) % 3 != 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return 0;
    int64_t days = aa_days_from_civil(y, (at - months) / 3 + 1, d);
    *ms = ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
    return 1;
}

/* ---- the client: common settings ------------------------------------------------------------- */

typedef struct {
    hk_ostr key_id;   /* AccessKey ID: masked in every log line */
    hk_ostr secret;   /* AccessKey secret: never logged, wiped on free */
    hk_ostr endpoint; /* "https://host[:port]", no path */
    char host[256];   /* the Host header libcurl sends for `endpoint` (port only when not default) */
    int v2;           /* signature_version "v2": legacy HMAC-SHA1 RPC signature */
    const char *api_version; /* "2017-05-25" */
    const char *product;     /* "SMS" or "voice", for sentences */
} aa_client;

static inline void aa_client_free(aa_client *c) {
    hk_ostr_free(&c->key_id, 0);
    hk_ostr_free(&c->secret, 1);
    hk_ostr_free(&c->endpoint, 0);
}

/** "LTAI****abcd": the first 4 and last 4 characters of an id; "****" when it is short. Writes a
 *  NUL-terminated string into `out` (at least 16 bytes). */
static inline void aa_mask_id(const char *id, size_t n, char *out, size_t cap) {
    if (n < 12) snprintf(out, cap, "****");
    else snprintf(out, cap, "%.4s****%.4s", id, id + n - 4);
}

/** "138****5678": a phone number with its middle hidden (first 3 and last 4 digits kept; a
 *  short number shows only its last 2). Writes a NUL-terminated string into `out`. */
static inline void aa_mask_phone(herald_str s, char *out, size_t cap) {
    size_t n = s.ptr ? s.len : 0;
    if (n >= 9) snprintf(out, cap, "%.3s****%.4s", s.ptr, s.ptr + n - 4);
    else if (n >= 3) snprintf(out, cap, "****%.2s", s.ptr + n - 2);
    else snprintf(out, cap, "****");
}

/** Rewrites every run of 7 or more digits in the NUL-terminated `text` as "138****5678", in
 *  place (the result is never longer), so provider messages quoted in reasons never carry a
 *  full phone number. */
static inline void aa_scrub_digits(char *text) {
    size_t r = 0, w = 0;
    while (text[r]) {
        size_t run = 0;
        while (text[r + run] >= '0' && text[r + run] <= '9') run++;
        if (run >= 7) {
            char masked[16];
            aa_mask_phone(HK_VIEW(text + r, run), masked, sizeof masked);
            size_t m = strlen(masked);
            memmove(text + w, masked, m);
            w += m;
            r += run;
        } else if (run > 0) {
            memmove(text + w, text + r, run);
            w += run;
            r += run;
        } else {
            text[w++] = text[r++];
        }
    }
    text[w] = 0;
}

/** Reads access_key_id, access_key_secret, endpoint (default `https://<default_host>`) and
 *  signature_version. 0, or -1 with a sentence in `err`. */
static inline int aa_client_read(const herald_host_api *h, aa_client *c, const char *default_host, char *err) {
    int got;
    hk_ostr version = {0};
    if ((got = hk_read_opt(h, "access_key_id", &c->key_id, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'access_key_id' is required: the AccessKey ID of a RAM user allowed to call %s", c->product);
        return -1;
    }
    if (c->key_id.len < 4 || c->key_id.len > 128 || !hk_is_token_text(&c->key_id))
        return hk_fail(err, "setting 'access_key_id' must be 4 to 128 visible ASCII characters");
    if ((got = hk_read_opt(h, "access_key_secret", &c->secret, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'access_key_secret' is required: the AccessKey secret shown once when the key was created");
        return -1;
    }
    if (c->secret.len < 4 || c->secret.len > 256 || !hk_is_token_text(&c->secret))
        return hk_fail(err, "setting 'access_key_secret' must be 4 to 256 visible ASCII characters");
    if ((got = hk_read_opt(h, "endpoint", &c->endpoint, err)) < 0) return -1;
    if (got == 0) {
        char url[300];
        snprintf(url, sizeof url, "https://%s", default_host);
        c->endpoint.p = malloc(strlen(url) + 1);
        if (!c->endpoint.p) return hk_fail(err, "out of memory while reading setting 'endpoint'");
        memcpy(c->endpoint.p, url, strlen(url) + 1);
        c->endpoint.len = strlen(url);
    }
    /* "https://host[:port]" with an optional trailing slash; no path, query or user info. */
    hk_ostr *e = &c->endpoint;
    while (e->len > 0 && e->p[e->len - 1] == '/') e->p[--e->len] = 0;
    int https = e->len > 8 && hk_str_ieq(HK_VIEW(e->p, 8), "https://");
    int http = !https && e->len > 7 && hk_str_ieq(HK_VIEW(e->p, 7), "http://");
    const char *auth = e->p + (https ? 8 : 7);
    if ((!https && !http) || !hk_is_token_text(e) || strpbrk(auth, "/?#@") != NULL || strlen(auth) >= sizeof c->host || auth[0] == ':')
        return hk_fail(err, "setting 'endpoint' must be https://host or https://host:port (no path), e.g. https://%s", default_host);
    snprintf(c->host, sizeof c->host, "%s", auth);
    for (char *p = c->host; *p; p++) *p = (char)hk_lower((unsigned char)*p);
    size_t hl = strlen(c->host);
    /* libcurl leaves the scheme's default port out of the Host header; so does the signature. */
    if (https && hl > 4 && strcmp(c->host + hl - 4, ":443") == 0) c->host[hl - 4] = 0;
    if (http && hl > 3 && strcmp(c->host + hl - 3, ":80") == 0) c->host[hl - 3] = 0;
    if (hk_plain_http_to_remote_host(e))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'endpoint' uses plain http to a remote host: requests and answers travel unencrypted"));
    if ((got = hk_read_opt(h, "signature_version", &version, err)) < 0) return -1;
    if (got == 1 && strcmp(version.p, "v2") == 0) c->v2 = 1;
    else if (got == 1 && strcmp(version.p, "v3") != 0) {
        hk_ostr_free(&version, 0);
        return hk_fail(err, "setting 'signature_version' must be \"v3\" (ACS3-HMAC-SHA256, default) or \"v2\" (legacy HMAC-SHA1)");
    }
    hk_ostr_free(&version, 0);
    return 0;
}

/* ---- signing --------------------------------------------------------------------------------- */

/** What one signing produced. `query` is the URL query to send; `canonical` the V3 canonical
 *  request or the V2 string-to-sign; `hashed` the V3 hashed canonical request (empty for V2);
 *  `signature` hex (V3) or base64 (V2); `authorization` the V3 header value. All owned. */
typedef struct {
    hk_buf query, canonical;
    char hashed[65];
    char signature[96];
    hk_buf authorization;
} aa_signed;

static inline void aa_signed_free(aa_signed *s) {
    hk_buf_free(&s->query);
    hk_buf_free(&s->canonical);
    hk_buf_free(&s->authorization);
}

/**
 * V3 (ACS3-HMAC-SHA256, §1.7). `ps` are the query parameters (sorted here). Signed headers, in
 * name order: content-type (when `content_type` is non-empty), host, x-acs-action, x-acs-content-sha256,
 * x-acs-date, x-acs-signature-nonce, x-acs-version. `body_sha` is the hex SHA-256 of the body.
 * Returns HERALD_OK, or a host status / HK_NO_MEMORY.
 */
static inline int32_t aa_sign_v3(const herald_host_api *h, const char *method, const char *host, aa_params *ps,
                                 const char *content_type, const char *action, const char *version, const char *date,
                                 const char *nonce, const char *body_sha, herald_str key_id, herald_str secret, aa_signed *out) {
    aa_sort(ps);
    aa_canonical_query(&out->query, ps);
    hk_buf *c = &out->canonical;
    hk_buf_lit(c, method);
    hk_buf_lit(c, "\n/\n");
    hk_buf_str(c, HK_VIEW(out->query.p, out->query.len));
    hk_buf_lit(c, "\n");
    int ct = content_type && content_type[0];
    const char *lines[][2] = {{"content-type", ct ? content_type : NULL}, {"host", host}, {"x-acs-action", action},
                              {"x-acs-content-sha256", body_sha}, {"x-acs-date", date}, {"x-acs-signature-nonce", nonce},
                              {"x-acs-version", version}};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        if (!lines[i][1]) continue;
        hk_buf_lit(c, lines[i][0]);
        hk_buf_lit(c, ":");
        hk_buf_lit(c, lines[i][1]);
        hk_buf_lit(c, "\n");
    }
    const char *signed_headers = ct ? "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
                                    : "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    hk_buf_lit(c, "\n");
    hk_buf_lit(c, signed_headers);
    hk_buf_lit(c, "\n");
    hk_buf_lit(c, body_sha);
    if (out->query.failed || c->failed) return out->query.failed ? out->query.failed : c->failed;
    uint8_t digest[32];
    int32_t rc = h->sha256(HK_VIEW(c->p, c->len), digest);
    if (rc != HERALD_OK) return rc;
    aa_hex(digest, 32, out->hashed);
    char sts[128];
    int n = snprintf(sts, sizeof sts, "ACS3-HMAC-SHA256\n%s", out->hashed);
    rc = h->hmac_sha256(secret, HK_VIEW(sts, (size_t)n), digest);
    if (rc != HERALD_OK) return rc;
    aa_hex(digest, 32, out->signature);
    hk_buf *a = &out->authorization;
    hk_buf_lit(a, "ACS3-HMAC-SHA256 Credential=");
    hk_buf_str(a, key_id);
    hk_buf_lit(a, ",SignedHeaders=");
    hk_buf_lit(a, signed_headers);
    hk_buf_lit(a, ",Signature=");
    hk_buf_lit(a, out->signature);
    return a->failed;
}

/**
 * V2 (HMAC-SHA1 RPC, §1.6). `ps` holds every parameter, common ones included (sorted here).
 * `out->query` gets the canonical query plus "&Signature=<pct(signature)>".
 */
static inline int32_t aa_sign_v2(const herald_host_api *h, const char *method, aa_params *ps, herald_str secret, aa_signed *out) {
    aa_sort(ps);
    hk_buf cq = {0};
    aa_canonical_query(&cq, ps);
    hk_buf_lit(&out->canonical, method);
    hk_buf_lit(&out->canonical, "&%2F&");
    aa_pct(&out->canonical, HK_VIEW(cq.p, cq.len));
    if (cq.failed || out->canonical.failed) {
        int32_t f = cq.failed ? cq.failed : out->canonical.failed;
        hk_buf_free(&cq);
        return f;
    }
    hk_buf key = {0};
    hk_buf_str(&key, secret);
    hk_buf_put(&key, "&", 1);
    uint8_t mac[20];
    int32_t rc = key.failed ? key.failed : h->hmac_sha1(HK_VIEW(key.p, key.len), HK_VIEW(out->canonical.p, out->canonical.len), mac);
    hk_wipe(key.p, key.len);
    hk_buf_free(&key);
    size_t got = 0;
    if (rc == HERALD_OK) rc = h->base64_encode(HK_VIEW((const char *)mac, 20), (uint8_t *)out->signature, sizeof out->signature - 1, &got);
    if (rc != HERALD_OK) {
        hk_buf_free(&cq);
        return rc;
    }
    out->signature[got] = 0;
    out->hashed[0] = 0;
    hk_buf_str(&out->query, HK_VIEW(cq.p, cq.len));
    hk_buf_lit(&out->query, "&Signature=");
    aa_pct(&out->query, HK_VIEW(out->signature, got));
    hk_buf_free(&cq);
    return out->query.failed;
}

/** A fresh signature nonce: 32 lower-case hex digits from the host's random source. */
static inline int32_t aa_nonce(const herald_host_api *h, char out[33]) {
    uint8_t r[16];
    int32_t rc = h->random_bytes(r, sizeof r);
    if (rc != HERALD_OK) return rc;
    aa_hex(r, 16, out);
    return HERALD_OK;
}

/** The KV key under which the offset between Alibaba's clock and ours is kept. */
#define AA_CLOCK_KEY "aliyun:clock_offset_ms"

/** Now, on Alibaba's clock as far as we learned it (see aa_learn_clock). */
static inline int64_t aa_now(const herald_host_api *h) {
    int64_t now = h->now_unix_ms();
    char text[32];
    size_t got = 0;
    if (h->kv_get(HK_SV(AA_CLOCK_KEY), (uint8_t *)text, sizeof text - 1, &got) == HERALD_OK) {
        text[got] = 0;
        now += strtoll(text, NULL, 10);
    }
    return now;
}

/** Remembers (for a day) how far the server's Date header is from our clock. 1 when learned. */
static inline int aa_learn_clock(const herald_host_api *h, const herald_response *r) {
    int64_t server;
    if (!aa_parse_http_date(hk_find_header(r, "Date"), &server)) return 0;
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", (long long)(server - h->now_unix_ms()));
    h->kv_set(HK_SV(AA_CLOCK_KEY), HK_VIEW(text, (size_t)n), 86400000ull);
    return 1;
}

/**
 * Signs `action` with business parameters `ps` for client `c` and hands the host the request:
 * POST <endpoint>/?<query> with an empty body, as the current Alibaba SDKs send RPC calls.
 * Returns HERALD_OUTCOME_REQUEST, or hk_host_failure's outcome.
 */
static inline int32_t aa_request(const herald_host_api *h, herald_exchange *ex, const aa_client *c, const char *action,
                                 aa_params *ps, uint64_t tag) {
    char date[24], nonce[33];
    aa_iso8601(aa_now(h), date);
    int32_t rc = aa_nonce(h, nonce);
    if (rc != HERALD_OK) return hk_host_failure(h, ex, rc, "drawing a signature nonce");
    aa_signed s;
    memset(&s, 0, sizeof s);
    /* An empty POST: libcurl labels it a form, so the content type is stated and signed. */
    static const char form[] = "application/x-www-form-urlencoded";
    static const char empty_sha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    herald_str key_id = HK_VIEW(c->key_id.p, c->key_id.len), secret = HK_VIEW(c->secret.p, c->secret.len);
    if (c->v2) {
        aa_add_c(ps, "AccessKeyId", c->key_id.p);
        aa_add_c(ps, "Action", action);
        aa_add_c(ps, "Format", "JSON");
        aa_add_c(ps, "SignatureMethod", "HMAC-SHA1");
        aa_add_c(ps, "SignatureNonce", nonce);
        aa_add_c(ps, "SignatureVersion", "1.0");
        aa_add_c(ps, "Timestamp", date);
        aa_add_c(ps, "Version", c->api_version);
        rc = aa_sign_v2(h, "POST", ps, secret, &s);
    } else {
        rc = aa_sign_v3(h, "POST", c->host, ps, form, action, c->api_version, date, nonce, empty_sha, key_id, secret, &s);
    }
    hk_buf url = {0};
    hk_buf_str(&url, HK_VIEW(c->endpoint.p, c->endpoint.len));
    hk_buf_lit(&url, "/?");
    hk_buf_str(&url, HK_VIEW(s.query.p, s.query.len));
    if (rc == HERALD_OK && url.failed) rc = url.failed;
    if (rc != HERALD_OK) {
        aa_signed_free(&s);
        hk_buf_free(&url);
        return hk_host_failure(h, ex, rc, "signing the request");
    }
    herald_pair v3_headers[] = {
        {HK_SV("Content-Type"), HK_SV(form)},
        {HK_SV("Accept"), HK_SV("application/json")},
        {HK_SV("User-Agent"), HK_SV("Herald-Aliyun/1.0")},
        {HK_SV("x-acs-action"), HK_VIEW(action, strlen(action))},
        {HK_SV("x-acs-version"), HK_VIEW(c->api_version, strlen(c->api_version))},
        {HK_SV("x-acs-date"), HK_VIEW(date, strlen(date))},
        {HK_SV("x-acs-signature-nonce"), HK_VIEW(nonce, strlen(nonce))},
        {HK_SV("x-acs-content-sha256"), HK_SV(empty_sha)},
        {HK_SV("Authorization"), HK_VIEW(s.authorization.p, s.authorization.len)},
    };
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = HK_SV("POST");
    req.url = HK_VIEW(url.p, url.len);
    req.headers = v3_headers;
    req.header_count = c->v2 ? 3 : sizeof v3_headers / sizeof *v3_headers;
    req.tag = tag;
    rc = h->set_request(ex, &req);
    aa_signed_free(&s);
    hk_buf_free(&url);
    if (rc != HERALD_OK) return hk_host_failure(h, ex, rc, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* ---- answers --------------------------------------------------------------------------------- */

/** What Alibaba's answer says and what Herald should do about it. */
typedef enum {
    AA_OK = 0,
    AA_RETRY,    /* transient: try again later (set_retry_after when `retry_ms`) */
    AA_RESIGN,   /* clock or nonce refused: sign afresh and send once more now */
    AA_FAILED    /* permanent */
} aa_verdict;

typedef struct {
    const char *code; /* exact code, or a prefix ending in '*' */
    aa_verdict verdict;
    const char *meaning;
} aa_code_info;

/* The error table of §1.4 (gateway and SMS codes); the voice plugin uses it too, as the voice API
 * shares the gateway and answers with the same isv./isp. families. */
static const aa_code_info aa_codes[] = {
    {"Throttling*", AA_RETRY, "Alibaba Cloud's API flow control: too many calls per second for this account or API"},
    {"InternalError", AA_RETRY, "an internal error at Alibaba Cloud"},
    {"UnknownError", AA_RETRY, "an unknown error at Alibaba Cloud"},
    {"ServiceUnavailable", AA_RETRY, "the service is temporarily unavailable"},
    {"isp.SYSTEM_ERROR", AA_RETRY, "a system error at Alibaba Cloud (\"please retry\")"},
    {"isp.GATEWAY_ERROR", AA_RETRY, "a gateway error at Alibaba Cloud (\"please retry\")"},
    {"InvalidTimeStamp.Expired", AA_RESIGN, "the request's timestamp is more than 15 minutes from Alibaba Cloud's clock; check this host's clock (NTP)"},
    {"SignatureNonceUsed", AA_RESIGN, "the signature nonce was already used"},
    {"SignatureDoesNotMatch", AA_FAILED, "the signature does not match: check setting 'access_key_secret' (and that no proxy rewrites the request)"},
    {"IncompleteSignature", AA_FAILED, "the signature parameters are malformed (a plugin bug; please report it)"},
    {"InvalidAccessKeyId*", AA_FAILED, "the AccessKey ID does not exist or is disabled: check setting 'access_key_id'"},
    {"InvalidTimeStamp.Format", AA_FAILED, "the timestamp format was refused (a plugin bug; please report it)"},
    {"Forbidden*", AA_FAILED, "the RAM user lacks permission for this API: grant it the policy in the plugin's README"},
    {"isp.RAM_PERMISSION_DENY", AA_FAILED, "the RAM user lacks permission for this API: grant it the policy in the plugin's README"},
    {"Missing*", AA_FAILED, "a required parameter is missing (check the integration's settings)"},
    {"InvalidParameter*", AA_FAILED, "a parameter was refused (check the integration's settings)"},
    {"isv.DAY_LIMIT_CONTROL", AA_FAILED, "the account's daily quota set in the console is used up"},
    {"isv.MONTH_LIMIT_CONTROL", AA_FAILED, "the account's monthly quota set in the console is used up"},
    {"isv.MOBILE_NUMBER_ILLEGAL", AA_FAILED, "the phone number is not valid"},
    {"isv.MOBILE_COUNT_OVER_LIMIT", AA_FAILED, "too many phone numbers in one request (a plugin bug; please report it)"},
    {"isv.TEMPLATE_PARAMS_ILLEGAL", AA_FAILED, "a template variable's value was refused (check template_params)"},
    {"isv.TEMPLATE_MISSING_PARAMETERS", AA_FAILED, "the template has a variable that template_params does not fill"},
    {"isv.INVALID_JSON_PARAM", AA_FAILED, "the template parameters are not a JSON object of strings (a plugin bug; please report it)"},
    {"isv.PARAM_LENGTH_LIMIT", AA_FAILED, "a template variable is too long: lower setting 'param_max_chars'"},
    {"isv.PARAM_NOT_SUPPORT_URL", AA_FAILED, "a template variable holds a URL, which this template does not allow: remove the link from template_params"},
    {"isv.BLACK_KEY_CONTROL_LIMIT", AA_FAILED, "a template variable holds a blocked word"},
    {"isv.SMS_TEMPLATE_ILLEGAL", AA_FAILED, "the template code is unknown, not approved, or not this account's: check setting 'template_code'"},
    {"isv.SMS_SIGNATURE_ILLEGAL", AA_FAILED, "the sign name is unknown or not approved: check setting 'sign_name'"},
    {"isv.SMS_SIGNATURE_SCENE_ILLEGAL", AA_FAILED, "the sign name is not approved for this template's scene"},
    {"isv.SIGN_STATE_ILLEGAL", AA_FAILED, "the sign name is not approved (yet)"},
    {"isv.AMOUNT_NOT_ENOUGH", AA_FAILED, "the Alibaba Cloud account has no balance left"},
    {"isv.OUT_OF_SERVICE", AA_FAILED, "the service is suspended (the account is in arrears)"},
    {"isv.PRODUCT_UN_SUBSCRIPT", AA_FAILED, "the account has not activated this product"},
    {"isv.PRODUCT_UNSUBSCRIBE", AA_FAILED, "the account has not activated this product"},
    {"isv.ACCOUNT_NOT_EXISTS", AA_FAILED, "the account does not exist"},
    {"isv.ACCOUNT_ABNORMAL", AA_FAILED, "the account is abnormal (suspended by Alibaba Cloud)"},
    {"isv.DENY_IP_RANGE", AA_FAILED, "this source IP may not send (mainland messages must come from mainland IPs)"},
};

static inline const aa_code_info *aa_lookup(const char *code) {
    for (size_t i = 0; i < sizeof aa_codes / sizeof *aa_codes; i++) {
        const char *k = aa_codes[i].code;
        size_t n = strlen(k);
        if (k[n - 1] == '*' ? strncmp(code, k, n - 1) == 0 : strcmp(code, k) == 0) return &aa_codes[i];
    }
    return NULL;
}

/** The decoded answer: Code, Message (digit runs masked, Alibaba's echoed string-to-sign cut
 *  off), and up to one id member (BizId / CallId). */
typedef struct {
    int has_code;
    char code[96];
    char message[AA_SNIPPET + 8];
    char id[160];
    char request_id[80];
} aa_answer;

/** Reads the JSON answer `r`. `id_member` names the id to keep (may be NULL). */
static inline void aa_read_answer(const herald_response *r, const char *id_member, aa_answer *a) {
    hk_jval v;
    memset(a, 0, sizeof *a);
    if (hk_json_member(r->body, "Code", &v) == 1 && v.type == 's' && v.n > 0 && v.n < sizeof a->code) {
        hk_json_text(&v, a->code, sizeof a->code);
        a->has_code = hk_is_visible(HK_VIEW(a->code, strlen(a->code))) && a->code[0];
    }
    if (hk_json_member(r->body, "Message", &v) == 1 && v.type == 's') {
        hk_quote_string(&v, a->message, sizeof a->message);
        /* SignatureDoesNotMatch echoes the server's string-to-sign: key id and phone numbers. */
        char *sts = strstr(a->message, "server string to sign is");
        if (sts) {
            *sts = 0;
            size_t n = strlen(a->message);
            while (n > 0 && (a->message[n - 1] == ' ' || a->message[n - 1] == '.')) a->message[--n] = 0;
        }
        aa_scrub_digits(a->message);
    }
    if (id_member && hk_json_member(r->body, id_member, &v) == 1 && v.type == 's' && v.n < sizeof a->id) hk_json_text(&v, a->id, sizeof a->id);
    if (hk_json_member(r->body, "RequestId", &v) == 1 && v.type == 's' && v.n < sizeof a->request_id) hk_json_text(&v, a->request_id, sizeof a->request_id);
}

/**
 * Classifies a non-OK answer: sets the reason (naming the code, Alibaba's message and what it
 * means) and returns the verdict; `*retry_ms` gets a retry hint (0 = none).
 */
static inline aa_verdict aa_classify(const herald_host_api *h, herald_exchange *ex, const aa_client *c, const herald_response *r,
                                     const aa_answer *a, uint64_t *retry_ms) {
    char reason[AA_SNIPPET + 600];
    *retry_ms = 0;
    int status = r->status;
    const char *product = c->product;
    if (!a->has_code) {
        char snip[AA_SNIPPET + 8];
        hk_snippet(r->body, snip, sizeof snip);
        aa_scrub_digits(snip);
        if (status < 100 || status > 599) snprintf(reason, sizeof reason, "Alibaba Cloud %s answered with an invalid HTTP status %d", product, status);
        else snprintf(reason, sizeof reason, "Alibaba Cloud %s answered HTTP %d without a readable Code%s%s%s", product, status,
                      r->body_truncated ? " (the body was cut at the host's size cap)" : "", snip[0] ? ": " : " (empty body)", snip);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return status == 408 || status == 429 || (status >= 500 && status <= 599) ? AA_RETRY : AA_FAILED;
    }
    const aa_code_info *info = aa_lookup(a->code);
    aa_verdict verdict = info ? info->verdict : AA_FAILED;
    const char *meaning = info ? info->meaning : NULL;
    if (strcmp(a->code, "isv.BUSINESS_LIMIT_CONTROL") == 0) {
        /* Per-number flow control. Alibaba's message names the window ("触发分钟级流控",
         * "触发小时级流控", "触发天级流控"): wait out a minute or an hour; a daily limit will not
         * clear soon, so the delivery fails and escalation can use another channel. */
        if (strstr(a->message, "\xe5\x88\x86\xe9\x92\x9f")) { /* 分钟 */
            verdict = AA_RETRY;
            *retry_ms = AA_MINUTE_LIMIT_RETRY_MS;
            meaning = "the per-number minute limit was hit; retrying in a minute";
        } else if (strstr(a->message, "\xe5\xb0\x8f\xe6\x97\xb6")) { /* 小时 */
            verdict = AA_RETRY;
            *retry_ms = AA_HOUR_LIMIT_RETRY_MS;
            meaning = "the per-number hourly limit was hit; retrying in an hour";
        } else {
            verdict = AA_FAILED;
            meaning = "the per-number daily limit (or an unnamed one) was hit: use another channel for this person, or raise the limit in the console";
        }
    } else if (!info && status >= 500 && status <= 599) {
        verdict = AA_RETRY;
    }
    if (verdict == AA_RETRY && *retry_ms == 0 && hk_str_iprefix(HK_VIEW(a->code, strlen(a->code)), "Throttling")) {
        herald_str hint = hk_find_header(r, "x-acs-retry-after");
        long long ms = 0;
        for (size_t i = 0; hint.ptr && i < hint.len && i < 12 && hint.ptr[i] >= '0' && hint.ptr[i] <= '9'; i++) ms = ms * 10 + (hint.ptr[i] - '0');
        *retry_ms = ms > 0 ? (uint64_t)ms : AA_THROTTLE_RETRY_MS;
    }
    int n = snprintf(reason, sizeof reason, "Alibaba Cloud %s refused the request with %s%s (HTTP %d%s%s)", product,
                     info || strcmp(a->code, "isv.BUSINESS_LIMIT_CONTROL") == 0 ? "" : "unknown code ", a->code, status,
                     a->message[0] ? ", " : "", a->message);
    if (meaning && n > 0 && (size_t)n < sizeof reason) snprintf(reason + n, sizeof reason - (size_t)n, ": %s", meaning);
    h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
    return verdict;
}

/* ---- template variables ---------------------------------------------------------------------- */

enum { AA_MAX_VARS = 16, AA_VAR_NAME = 48, AA_FIELD_NAME = 80 };

/** One template variable and the message field that fills it. */
typedef struct {
    char name[AA_VAR_NAME];
    char field[AA_FIELD_NAME]; /* title, body, severity, ..., or "label:<name>" */
} aa_var;

typedef struct {
    aa_var v[AA_MAX_VARS];
    size_t n;
    long max_chars;
} aa_vars;

static inline int aa_field_known(const char *f, int allow_links) {
    static const char *const plain[] = {"title", "body", "severity", "status", "event", "incident_number", "incident_id", "alert_count"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (strcmp(f, plain[i]) == 0) return 1;
    if (allow_links && (strcmp(f, "view_link") == 0 || strcmp(f, "ack_link") == 0)) return 1;
    return strncmp(f, "label:", 6) == 0 && f[6] != 0;
}

/** Reads `template_params` (variable name -> field) and `param_max_chars`. 0 or -1 (`err`). */
static inline int aa_vars_read(const herald_host_api *h, aa_vars *vars, int allow_links, long default_max, long max_max, char *err) {
    hk_ostr names = {0}, max = {0};
    int rc = -1, got;
    vars->max_chars = default_max;
    if ((got = hk_read_opt(h, "param_max_chars", &max, err)) < 0) return -1;
    if (got == 1) {
        char *end;
        long v = strtol(max.p, &end, 10);
        hk_ostr_free(&max, 0);
        if (*end || v < 1 || v > max_max) return hk_fail(err, "setting 'param_max_chars' must be an integer from 1 to %ld", max_max);
        vars->max_chars = v;
    }
    int32_t st = hk_cfg_read(h, 1, "template_params", &names);
    if (st == HERALD_ERR_NOT_FOUND) return 0;
    if (st == HERALD_ERR_INVALID_ARGUMENT) return hk_fail(err, "setting 'template_params' must be an object: {template variable: message field}");
    if (st != HERALD_OK) return hk_read_fail(err, "template_params", st);
    for (const char *name = names.p; name < names.p + names.len; name += strlen(name) + 1) {
        size_t n = strlen(name);
        if (vars->n >= AA_MAX_VARS) { hk_fail(err, "setting 'template_params' has more than %d variables", AA_MAX_VARS); goto done; }
        int ok = n > 0 && n < AA_VAR_NAME;
        for (size_t i = 0; ok && i < n; i++) {
            char c = name[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        }
        if (!ok) { hk_fail(err, "setting 'template_params': variable names are 1 to %d letters, digits or '_' (as in ${name})", AA_VAR_NAME - 1); goto done; }
        char path[AA_VAR_NAME + 20];
        snprintf(path, sizeof path, "template_params.%s", name);
        hk_ostr field = {0};
        if ((got = hk_read_opt(h, path, &field, err)) <= 0) goto done;
        if (field.len >= AA_FIELD_NAME || !aa_field_known(field.p, allow_links)) {
            hk_fail(err, "setting 'template_params.%s' must name a message field: title, body, severity, status, event, incident_number, incident_id, alert_count%s or label:<name>",
                    name, allow_links ? ", view_link, ack_link" : "");
            hk_ostr_free(&field, 0);
            goto done;
        }
        snprintf(vars->v[vars->n].name, AA_VAR_NAME, "%s", name);
        snprintf(vars->v[vars->n].field, AA_FIELD_NAME, "%s", field.p);
        vars->n++;
        hk_ostr_free(&field, 0);
    }
    rc = 0;
done:
    hk_ostr_free(&names, 0);
    return rc;
}

static inline const char *aa_state_word(const herald_message *m) {
    if (m->event == HERALD_EVENT_SNOOZED) return "Snoozed";
    if (m->event == HERALD_EVENT_TEST) return "Test";
    return hk_status_name(m->status);
}

static inline const char *aa_event_word(int32_t e) {
    static const char *const names[] = {"Fired", "Refired", "Acknowledged", "Snoozed", "Resolved", "Closed", "Test"};
    return e >= 1 && e <= 7 ? names[e - 1] : "Update";
}

/** The raw text of message field `field` (before cleaning); `num` is scratch for numbers. */
static inline herald_str aa_field_value(const herald_message *m, const char *field, char *num, size_t cap) {
    if (strcmp(field, "title") == 0) return m->title;
    if (strcmp(field, "body") == 0) return m->body;
    if (strcmp(field, "severity") == 0) return HK_VIEW(hk_severity_name(m->severity), strlen(hk_severity_name(m->severity)));
    if (strcmp(field, "status") == 0) return HK_VIEW(aa_state_word(m), strlen(aa_state_word(m)));
    if (strcmp(field, "event") == 0) return HK_VIEW(aa_event_word(m->event), strlen(aa_event_word(m->event)));
    if (strcmp(field, "incident_id") == 0) return m->incident_id;
    if (strcmp(field, "incident_number") == 0 || strcmp(field, "alert_count") == 0) {
        unsigned long long v = field[0] == 'i' ? (unsigned long long)m->incident_number : (unsigned long long)m->alert_count;
        if (v == 0) return HK_SV("");
        snprintf(num, cap, "%llu", v);
        return HK_VIEW(num, strlen(num));
    }
    if (strcmp(field, "view_link") == 0 || strcmp(field, "ack_link") == 0) {
        int32_t kind = field[0] == 'v' ? HERALD_LINK_VIEW : HERALD_LINK_ACKNOWLEDGE;
        for (size_t i = 0; i < hk_count_links(m); i++)
            if (m->links[i].kind == kind && hk_link_ok(&m->links[i])) return m->links[i].url;
        return HK_SV("");
    }
    if (strncmp(field, "label:", 6) == 0) {
        for (size_t i = 0; i < hk_count_labels(m); i++)
            if (hk_str_eq(m->labels[i].name, field + 6)) return m->labels[i].value;
    }
    return HK_SV("");
}

/** Appends `s` cleaned for a template variable: control characters and line breaks become one
 *  space (runs collapse), leading/trailing spaces go, invalid UTF-8 becomes U+FFFD, and at most
 *  `max` characters remain (the last one "…" when cut). An empty result becomes "-", since an
 *  empty variable counts as missing. Returns the characters written. */
static inline size_t aa_put_clean(hk_buf *b, herald_str s, long max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? s.len : 0, chars = 0, start = b->len;
    int space = 0;
    size_t total = 0; /* characters in the cleaned text, to know whether it is cut */
    for (size_t i = 0; i < n;) {
        size_t k = hk_utf8_seq(p + i, n - i);
        int ws = k <= 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == ' ');
        if (k == 0) k = 1;
        if (ws) { space = total > 0; i += k; continue; }
        if (space) { total++; space = 0; }
        total++;
        i += k;
    }
    space = 0;
    for (size_t i = 0; i < n && chars < (size_t)max;) {
        size_t k = hk_utf8_seq(p + i, n - i);
        int ws = k <= 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == ' ');
        if (ws) { space = chars > 0; i += k ? k : 1; continue; }
        if (space) {
            if (total > (size_t)max && chars + 1 >= (size_t)max) break;
            hk_buf_put(b, " ", 1);
            chars++;
            space = 0;
        }
        if (total > (size_t)max && chars + 1 >= (size_t)max) break;
        if (k == 0) hk_buf_lit(b, "\xef\xbf\xbd");
        else hk_buf_put(b, p + i, k);
        chars++;
        i += k ? k : 1;
    }
    if (total > (size_t)max) {
        hk_buf_lit(b, "\xe2\x80\xa6");
        chars++;
    }
    if (b->len == start) {
        hk_buf_put(b, "-", 1);
        chars = 1;
    }
    return chars;
}

/** Builds the JSON object of template variables: {"name":"value",...}, every value a string of
 *  at most `max` characters (see aa_put_clean). Borrows `m`. */
static inline void aa_vars_json(hk_buf *out, const herald_host_api *h, const aa_vars *vars, const herald_message *m, long max) {
    hk_buf_lit(out, "{");
    for (size_t i = 0; i < vars->n; i++) {
        char num[24];
        hk_buf clean = {0};
        aa_put_clean(&clean, aa_field_value(m, vars->v[i].field, num, sizeof num), max);
        if (i) hk_buf_lit(out, ",");
        hk_buf_json(out, h, HK_VIEW(vars->v[i].name, strlen(vars->v[i].name)));
        hk_buf_lit(out, ":");
        if (clean.failed) out->failed = clean.failed;
        hk_buf_json(out, h, HK_VIEW(clean.p, clean.len));
        hk_buf_free(&clean);
    }
    hk_buf_lit(out, "}");
}

/* ---- phone numbers --------------------------------------------------------------------------- */

/** Copies `s` without spaces, dashes and parentheses into `out` (NUL-terminated). 1 when the
 *  rest is an optional leading '+' and 5 to 20 digits; 0 otherwise. */
static inline int aa_clean_number(herald_str s, char *out, size_t cap) {
    size_t o = 0, digits = 0;
    for (size_t i = 0; s.ptr && i < s.len; i++) {
        char c = s.ptr[i];
        if (c == ' ' || c == '-' || c == '(' || c == ')') continue;
        if (c == '+' && o == 0) { out[o++] = c; continue; }
        if (c < '0' || c > '9' || o + 1 >= cap) return 0;
        out[o++] = c;
        digits++;
    }
    out[o] = 0;
    return digits >= 5 && digits <= 20;
}

/** Writes a printable, digit-masked quote of a bad recipient (at most 40 bytes of it) into
 *  `out` (at least 64 bytes), for a reason: "call 138****5678 now". */
static inline void aa_quote_recipient(herald_str r, char *out, size_t cap) {
    char snip[AA_SNIPPET + 8];
    hk_snippet(HK_VIEW(r.ptr, r.len > 40 ? 40 : r.len), snip, sizeof snip);
    aa_scrub_digits(snip);
    size_t n = strlen(snip);
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(out, snip, n);
    out[n] = 0;
}

/* ---- inbound JSON arrays --------------------------------------------------------------------- */

/** Steps through the elements of the JSON array in `body`: start with `*pos` = 0; each call
 *  gives the next element's text in `*elem` and returns 1, 0 at the end, -1 if malformed. */
static inline int aa_array_next(herald_str body, size_t *pos, herald_str *elem) {
    const char *s = body.ptr;
    size_t n = s ? body.len : 0, i = *pos;
    if (i == 0) {
        i = hk_j_ws(s, n, 0);
        if (i >= n || s[i] != '[') return -1;
        i = hk_j_ws(s, n, i + 1);
        if (i < n && s[i] == ']') { *pos = n; return hk_j_ws(s, n, i + 1) == n ? 0 : -1; }
    } else {
        if (i >= n) return 0;
        i = hk_j_ws(s, n, i);
        if (i < n && s[i] == ']') { *pos = n; return hk_j_ws(s, n, i + 1) == n ? 0 : -1; }
        if (i >= n || s[i] != ',') return -1;
        i = hk_j_ws(s, n, i + 1);
    }
    size_t start = i;
    if (hk_j_value(s, n, &i, 1) != 0) return -1;
    *elem = HK_VIEW(s + start, i - start);
    *pos = i;
    return 1;
}

/** Steps through the members of the JSON object in `obj` (same protocol as aa_array_next):
 *  `key` gets the raw (still escaped) name. */
static inline int aa_object_next(herald_str obj, size_t *pos, herald_str *key, hk_jval *val) {
    const char *s = obj.ptr;
    size_t n = s ? obj.len : 0, i = *pos;
    if (i == 0) {
        i = hk_j_ws(s, n, 0);
        if (i >= n || s[i] != '{') return -1;
        i = hk_j_ws(s, n, i + 1);
        if (i < n && s[i] == '}') { *pos = n; return 0; }
    } else {
        if (i >= n) return 0;
        i = hk_j_ws(s, n, i);
        if (i < n && s[i] == '}') { *pos = n; return 0; }
        if (i >= n || s[i] != ',') return -1;
        i = hk_j_ws(s, n, i + 1);
    }
    if (i >= n || s[i] != '"') return -1;
    size_t kstart = i + 1;
    if (hk_j_string(s, n, &i) != 0) return -1;
    *key = HK_VIEW(s + kstart, i - 1 - kstart);
    i = hk_j_ws(s, n, i);
    if (i >= n || s[i] != ':') return -1;
    size_t vstart = hk_j_ws(s, n, i + 1);
    i = vstart;
    if (hk_j_value(s, n, &i, 1) != 0) return -1;
    char c = s[vstart];
    val->type = c == '"' ? 's' : c == '{' ? 'o' : c == '[' ? 'a' : (c == '-' || (c >= '0' && c <= '9')) ? 'n' : 'l';
    val->p = s + vstart + (c == '"');
    val->n = i - vstart - (c == '"' ? 2 : 0);
    *pos = i;
    return 1;
}

/** A string member of `obj` decoded into `out` (NUL-terminated); numbers are taken as text
 *  too (some receipts send status codes unquoted). 1 found, 0 absent or another type. */
static inline int aa_member_text(herald_str obj, const char *key, char *out, size_t cap) {
    hk_jval v;
    out[0] = 0;
    if (hk_json_member(obj, key, &v) != 1) return 0;
    if (v.type == 'n' && v.n < cap) {
        memcpy(out, v.p, v.n);
        out[v.n] = 0;
        return 1;
    }
    return v.type == 's' && hk_json_text(&v, out, cap);
}

/* ---- the explain-signature admin action ------------------------------------------------------ */

/**
 * `explain-signature`: signs a request described in `input` with the AccessKey given IN THE
 * INPUT (never the integration's own) and returns the canonical request / string-to-sign, the
 * hashed canonical request and the signature. For checking the published test vectors and for
 * comparing with the string-to-sign Alibaba quotes in a SignatureDoesNotMatch answer.
 *
 * input: {"signature_version":"v3"|"v2", "method":"POST", "host":"...", "action":"...",
 *         "version":"...", "date":"...", "nonce":"...", "content_type":"...",
 *         "params":{"Name":"value",...}, "access_key_id":"...", "access_key_secret":"..."}
 * V2 takes every parameter (common ones included) from "params".
 */
static inline int32_t aa_explain_signature(const herald_host_api *h, herald_str input, herald_exchange *ex) {
    enum { F = 512 };
    char version[8] = "v3", method[16] = "POST", host[256] = "", action[F] = "", api[F] = "", date[F] = "", nonce[F] = "", ctype[F] = "";
    char key_id[F] = "", secret[F] = "";
    struct { const char *k; char *out; size_t cap; } fields[] = {
        {"signature_version", version, sizeof version}, {"method", method, sizeof method}, {"host", host, sizeof host},
        {"action", action, sizeof action}, {"version", api, sizeof api}, {"date", date, sizeof date}, {"nonce", nonce, sizeof nonce},
        {"content_type", ctype, sizeof ctype}, {"access_key_id", key_id, sizeof key_id}, {"access_key_secret", secret, sizeof secret},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        hk_jval v;
        int found = hk_json_member(input, fields[i].k, &v);
        if (found < 0) { h->set_reason(ex, HK_SV("explain-signature: the input must be a JSON object")); return HERALD_OUTCOME_FAILED; }
        if (found == 1 && !hk_json_text(&v, fields[i].out, fields[i].cap)) {
            char msg[120];
            snprintf(msg, sizeof msg, "explain-signature: '%s' must be a string", fields[i].k);
            h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
            return HERALD_OUTCOME_FAILED;
        }
    }
    int v2 = strcmp(version, "v2") == 0;
    if (!secret[0] || (!v2 && (!host[0] || !action[0] || !api[0] || !date[0] || !nonce[0] || !key_id[0]))) {
        h->set_reason(ex, HK_SV("explain-signature needs access_key_secret, and for v3 also access_key_id, host, action, version, date and nonce"));
        return HERALD_OUTCOME_FAILED;
    }
    /* Decoded parameter values live in one buffer; the views point into it once it stops growing. */
    hk_jval pv;
    aa_params ps;
    ps.n = 0;
    char names[AA_MAX_PARAMS][64];
    size_t offs[AA_MAX_PARAMS], lens[AA_MAX_PARAMS];
    hk_buf values = {0};
    int32_t outcome = HERALD_OUTCOME_FAILED;
    if (hk_json_member(input, "params", &pv) == 1 && pv.type == 'o') {
        herald_str obj = HK_VIEW(pv.p, pv.n), key;
        size_t pos = 0;
        hk_jval val;
        int r;
        while ((r = aa_object_next(obj, &pos, &key, &val)) == 1) {
            hk_jval kv = {'s', key.ptr, key.len};
            char text[4096];
            if (ps.n >= AA_MAX_PARAMS || !hk_json_text(&kv, names[ps.n], sizeof names[ps.n]) || !hk_json_text(&val, text, sizeof text)) {
                h->set_reason(ex, HK_SV("explain-signature: 'params' must map names to strings (at most 40)"));
                goto done;
            }
            offs[ps.n] = values.len;
            lens[ps.n] = strlen(text);
            hk_buf_put(&values, text, lens[ps.n]);
            ps.p[ps.n].name = names[ps.n];
            ps.n++;
        }
        if (r < 0) { h->set_reason(ex, HK_SV("explain-signature: 'params' is malformed")); goto done; }
    }
    for (size_t i = 0; i < ps.n; i++) ps.p[i].value = HK_VIEW(values.p ? values.p + offs[i] : "", lens[i]);
    aa_signed s;
    memset(&s, 0, sizeof s);
    int32_t rc;
    herald_str sec = HK_VIEW(secret, strlen(secret));
    if (v2) {
        rc = aa_sign_v2(h, method, &ps, sec, &s);
    } else {
        uint8_t digest[32];
        char body_sha[65];
        rc = h->sha256(HK_SV(""), digest);
        aa_hex(digest, 32, body_sha);
        if (rc == HERALD_OK)
            rc = aa_sign_v3(h, method, host, &ps, ctype, action, api, date, nonce, body_sha, HK_VIEW(key_id, strlen(key_id)), sec, &s);
    }
    hk_buf out = {0};
    hk_buf_lit(&out, "{\"signature_version\":");
    hk_buf_json(&out, h, HK_VIEW(v2 ? "v2" : "v3", 2));
    hk_buf_lit(&out, v2 ? ",\"string_to_sign\":" : ",\"canonical_request\":");
    hk_buf_json(&out, h, HK_VIEW(s.canonical.p, s.canonical.len));
    hk_buf_lit(&out, ",\"hashed_canonical_request\":");
    hk_buf_json(&out, h, HK_VIEW(s.hashed, strlen(s.hashed)));
    hk_buf_lit(&out, ",\"signature\":");
    hk_buf_json(&out, h, HK_VIEW(s.signature, strlen(s.signature)));
    hk_buf_lit(&out, ",\"authorization\":");
    hk_buf_json(&out, h, HK_VIEW(s.authorization.p, s.authorization.len));
    hk_buf_lit(&out, ",\"query\":");
    hk_buf_json(&out, h, HK_VIEW(s.query.p, s.query.len));
    hk_buf_lit(&out, "}");
    if (rc != HERALD_OK || out.failed) {
        outcome = hk_host_failure(h, ex, rc != HERALD_OK ? rc : out.failed, "signing");
    } else {
        h->set_output(ex, HK_VIEW(out.p, out.len));
        outcome = HERALD_OUTCOME_DELIVERED;
    }
    hk_buf_free(&out);
    aa_signed_free(&s);
done:
    hk_wipe(secret, sizeof secret);
    hk_buf_free(&values);
    return outcome;
}

#endif /* HERALD_ALIYUN_OPENAPI_H */
