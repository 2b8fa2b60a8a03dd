/*
 * tc3.h — TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, for Herald's
 * tencent-sms and tencent-voice plugins.
 *
 * This folder has no manifest.json, so scripts/build-plugins.sh does not build it as a plugin;
 * each plugin includes it ("../tencent-common/tc3.h"). Everything is `static inline`: nothing is
 * exported and a helper a plugin does not call costs nothing.
 *
 * The steps (Tencent's "签名方法 v3", as tencentcloud/common/abstract_client.py implements them):
 *
 *   CanonicalRequest = "POST\n/\n\n" + "content-type:<ct>\nhost:<host>\n" [+ "x-tc-action:<action>\n"]
 *                      + "\n" + SignedHeaders + "\n" + hex(SHA256(payload))
 *   CredentialScope  = <UTC date of the timestamp, YYYY-MM-DD> + "/" + service + "/tc3_request"
 *   StringToSign     = "TC3-HMAC-SHA256\n" + timestamp + "\n" + CredentialScope + "\n"
 *                      + hex(SHA256(CanonicalRequest))
 *   kDate = HMAC("TC3" + SecretKey, date); kService = HMAC(kDate, service);
 *   kSigning = HMAC(kService, "tc3_request"); Signature = hex(HMAC(kSigning, StringToSign))
 *   Authorization    = "TC3-HMAC-SHA256 Credential=<SecretId>/<CredentialScope>, "
 *                      "SignedHeaders=<list>, Signature=<hex>"
 *
 * The host value is the Host header exactly as sent: lower case, with ":port" when the port is
 * not the scheme's default (libcurl, like the SDK, omits a default port). The plugins sign
 * `content-type;host`, as the SDK does; `x-tc-action` (value lower-cased) is supported for the
 * published test vectors of the newer documentation.
 *
 * Crypto comes from the host API table (sha256, hmac_sha256); no libc crypto.
 */
#ifndef HERALD_TENCENT_TC3_H
#define HERALD_TENCENT_TC3_H

#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/** What one signature covers. Every view is borrowed for the call. */
typedef struct tc3_input {
    herald_str secret_id;
    herald_str secret_key;
    herald_str service;      /**< "sms", "vms", "cvm": the credential scope's service */
    herald_str host;         /**< the Host header as sent: "sms.tencentcloudapi.com", "127.0.0.1:8080" */
    herald_str content_type; /**< the Content-Type header as sent */
    herald_str payload;      /**< the exact body bytes */
    int64_t timestamp;       /**< X-TC-Timestamp, Unix seconds */
    herald_str action;       /**< empty: sign content-type;host (the SDK); else also x-tc-action */
} tc3_input;

/** Longest Authorization value tc3_authorization writes (SecretIds are ~36 characters). */
#define TC3_AUTH_BYTES 512

static const char tc3_hex_digits[] = "0123456789abcdef";

/** Writes the 64 lower-case hex digits of 32 bytes `d` to caller-owned `out` (65 bytes, NUL). */
static inline void tc3_hex32(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++) {
        out[2 * i] = tc3_hex_digits[d[i] >> 4];
        out[2 * i + 1] = tc3_hex_digits[d[i] & 15];
    }
    out[64] = 0;
}

/** The proleptic Gregorian civil date of day `z` since 1970-01-01 (Howard Hinnant's algorithm). */
static inline void tc3_civil(int64_t z, int *year, int *month, int *day) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

/** Days since 1970-01-01 of a civil date (the inverse of tc3_civil). */
static inline int64_t tc3_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/** "YYYY-MM-DD" (UTC) of Unix seconds `t` into caller-owned `out` (11 bytes, NUL-terminated). */
static inline void tc3_date(int64_t t, char out[11]) {
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int y, m, d;
    tc3_civil(days, &y, &m, &d);
    if (y < 0 || y > 9999) y = 1970;
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
}

/**
 * Parses an HTTP date in the IMF-fixdate form every current server sends
 * ("Sun, 06 Nov 1994 08:49:37 GMT") into Unix seconds: 1 and `*out`, or 0 when it is not one.
 * Used to learn Tencent's clock after AuthFailure.SignatureExpire. Borrows `s`.
 */
static inline int tc3_parse_http_date(herald_str s, int64_t *out) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char t[40];
    if (s.ptr == NULL || s.len < 29 || s.len >= sizeof t) return 0;
    memcpy(t, s.ptr, s.len);
    t[s.len] = 0;
    const char *p = strchr(t, ',');
    if (!p || p - t != 3 || p[1] != ' ') return 0;
    p += 2; /* "06 Nov 1994 08:49:37 GMT" */
    if (strlen(p) != 24 || p[2] != ' ' || p[6] != ' ' || p[11] != ' ' || p[14] != ':' || p[17] != ':' ||
        strcmp(p + 20, " GMT") != 0)
        return 0;
    int digits[] = {0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19};
    for (size_t i = 0; i < sizeof digits / sizeof *digits; i++) {
        if (p[digits[i]] < '0' || p[digits[i]] > '9') return 0;
    }
    int month = 0;
    for (int i = 0; i < 12; i++) {
        if (memcmp(p + 3, months + 3 * i, 3) == 0) month = i + 1;
    }
    if (month == 0) return 0;
    int day = (p[0] - '0') * 10 + (p[1] - '0');
    int year = (p[7] - '0') * 1000 + (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
    int hh = (p[12] - '0') * 10 + (p[13] - '0'), mm = (p[15] - '0') * 10 + (p[16] - '0');
    int ss = (p[18] - '0') * 10 + (p[19] - '0');
    if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return 0;
    *out = tc3_days(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 1;
}

/**
 * The canonical host of `url` (an http(s) URL, `len` bytes, borrowed): what libcurl sends as the
 * Host header, lower-cased, without userinfo and without a default port (:443 for https, :80 for
 * http). Writes it NUL-terminated into caller-owned `out`; 1, or 0 when it does not fit or the
 * URL has no host.
 */
static inline int tc3_canonical_host(const char *url, size_t len, char *out, size_t cap) {
    size_t skip;
    int https;
    if (len >= 8 && hk_str_ieq(HK_VIEW(url, 8), "https://")) skip = 8, https = 1;
    else if (len >= 7 && hk_str_ieq(HK_VIEW(url, 7), "http://")) skip = 7, https = 0;
    else return 0;
    const char *a = url + skip, *e = url + len;
    const char *end = a;
    while (end < e && *end != '/' && *end != '?' && *end != '#') end++;
    for (const char *q = a; q < end; q++) {
        if (*q == '@') a = q + 1;
    }
    size_t n = (size_t)(end - a);
    const char *colon = NULL;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close && close + 1 < end && close[1] == ':') colon = close + 1;
    } else {
        colon = memchr(a, ':', n);
    }
    if (colon) {
        herald_str port = HK_VIEW(colon + 1, (size_t)(end - colon - 1));
        if (port.len == 0 || hk_str_eq(port, https ? "443" : "80")) n = (size_t)(colon - a);
    }
    if (n == 0 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++) out[i] = (char)hk_lower((unsigned char)a[i]);
    out[n] = 0;
    return 1;
}

/**
 * Computes the Authorization header value for `in` into caller-owned `out` (TC3_AUTH_BYTES,
 * NUL-terminated). When `string_to_sign` is not NULL the StringToSign is also copied there
 * (cap `sts_cap`), for tests. Returns HERALD_OK, HK_NO_MEMORY, HERALD_ERR_INVALID_ARGUMENT when
 * the result would not fit, or a host status. Intermediate keys are wiped.
 */
static inline int32_t tc3_authorization(const herald_host_api *h, const tc3_input *in, char *out, char *string_to_sign,
                                        size_t sts_cap) {
    uint8_t digest[32], k1[32], k2[32];
    char payload_hex[65], request_hex[65], date[11];
    int32_t st;
    out[0] = 0;
    if ((st = h->sha256(in->payload, digest)) != HERALD_OK) return st;
    tc3_hex32(digest, payload_hex);

    /* The canonical request. */
    hk_buf cr = {0};
    hk_buf_lit(&cr, "POST\n/\n\ncontent-type:");
    for (size_t i = 0; i < in->content_type.len; i++) {
        char c = (char)hk_lower((unsigned char)in->content_type.ptr[i]);
        hk_buf_put(&cr, &c, 1);
    }
    hk_buf_lit(&cr, "\nhost:");
    hk_buf_str(&cr, in->host);
    hk_buf_lit(&cr, "\n");
    int with_action = in->action.len > 0;
    if (with_action) {
        hk_buf_lit(&cr, "x-tc-action:");
        for (size_t i = 0; i < in->action.len; i++) {
            char c = (char)hk_lower((unsigned char)in->action.ptr[i]);
            hk_buf_put(&cr, &c, 1);
        }
        hk_buf_lit(&cr, "\n");
    }
    const char *signed_headers = with_action ? "content-type;host;x-tc-action" : "content-type;host";
    hk_buf_lit(&cr, "\n");
    hk_buf_lit(&cr, signed_headers);
    hk_buf_lit(&cr, "\n");
    hk_buf_put(&cr, payload_hex, 64);
    if (cr.failed) {
        st = cr.failed;
        hk_buf_free(&cr);
        return st;
    }
    st = h->sha256(HK_VIEW(cr.p, cr.len), digest);
    hk_buf_free(&cr);
    if (st != HERALD_OK) return st;
    tc3_hex32(digest, request_hex);

    /* The string to sign. */
    tc3_date(in->timestamp, date);
    char sts[256];
    int n = snprintf(sts, sizeof sts, "TC3-HMAC-SHA256\n%lld\n%s/%.*s/tc3_request\n%s", (long long)in->timestamp, date,
                     (int)in->service.len, in->service.ptr ? in->service.ptr : "", request_hex);
    if (n < 0 || (size_t)n >= sizeof sts) return HERALD_ERR_INVALID_ARGUMENT;
    if (string_to_sign && sts_cap > (size_t)n) memcpy(string_to_sign, sts, (size_t)n + 1);

    /* The signing key chain. */
    hk_buf key = {0};
    hk_buf_lit(&key, "TC3");
    hk_buf_str(&key, in->secret_key);
    if (key.failed) {
        hk_buf_free(&key);
        return HK_NO_MEMORY;
    }
    st = h->hmac_sha256(HK_VIEW(key.p, key.len), HK_VIEW(date, 10), k1);
    hk_wipe(key.p, key.len);
    hk_buf_free(&key);
    if (st == HERALD_OK) st = h->hmac_sha256(HK_VIEW((const char *)k1, 32), in->service, k2);
    if (st == HERALD_OK) st = h->hmac_sha256(HK_VIEW((const char *)k2, 32), HK_SV("tc3_request"), k1);
    if (st == HERALD_OK) st = h->hmac_sha256(HK_VIEW((const char *)k1, 32), HK_VIEW(sts, (size_t)n), digest);
    hk_wipe(k1, sizeof k1);
    hk_wipe(k2, sizeof k2);
    if (st != HERALD_OK) return st;
    char signature[65];
    tc3_hex32(digest, signature);

    n = snprintf(out, TC3_AUTH_BYTES, "TC3-HMAC-SHA256 Credential=%.*s/%s/%.*s/tc3_request, SignedHeaders=%s, Signature=%s",
                 (int)in->secret_id.len, in->secret_id.ptr ? in->secret_id.ptr : "", date, (int)in->service.len,
                 in->service.ptr ? in->service.ptr : "", signed_headers, signature);
    if (n < 0 || n >= TC3_AUTH_BYTES) {
        out[0] = 0;
        return HERALD_ERR_INVALID_ARGUMENT;
    }
    return HERALD_OK;
}

#endif /* HERALD_TENCENT_TC3_H */
