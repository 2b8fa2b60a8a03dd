/*
 * tencent_common.h — what Herald's tencent-sms and tencent-voice plugins share: a bounded JSON
 * reader for Tencent Cloud API 3.0 answers, phone numbers (E.164 normalisation and masking),
 * template parameters mapped from message fields, the error-code rules, the signed request, the
 * clock offset learnt from Tencent, and per-delivery progress in the host's key-value store.
 *
 * Not a plugin (no manifest.json here); included by both. Everything is `static inline`.
 * Phone numbers and secrets never reach a log line or a reason in full: tc_mask_* below.
 */
#ifndef HERALD_TENCENT_COMMON_H
#define HERALD_TENCENT_COMMON_H

#include "tc3.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a bounded JSON reader ------------------------------------------------------------------- */
/* Tencent's answers nest (Response.Error.Code, Response.SendStatusSet[i].Code), which the kit's
 * top-level reader does not walk. Every function checks bounds; malformed input is "not found". */

typedef struct {
    const char *p, *end;
} tc_js;

static inline const char *tc_j_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/** The end of the JSON value at `p` (after whitespace), or NULL when malformed or too deep. */
static inline const char *tc_j_skip(const char *p, const char *e, int depth) {
    p = tc_j_ws(p, e);
    if (p >= e || depth > 40) return NULL;
    if (*p == '"') {
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
    if (*p == '{' || *p == '[') {
        char open = *p, close = open == '{' ? '}' : ']';
        p = tc_j_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (open == '{') {
                p = tc_j_ws(p, e);
                if (p >= e || *p != '"' || !(p = tc_j_skip(p, e, depth + 1))) return NULL;
                p = tc_j_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            if (!(p = tc_j_skip(p, e, depth + 1))) return NULL;
            p = tc_j_ws(p, e);
            if (p >= e) return NULL;
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    const char *s = p;
    while (p < e && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '+' || *p == '.' || *p == 'E')) p++;
    return p > s ? p : NULL;
}

/** The whole body as one value (surrounding whitespace allowed), or an empty span. */
static inline tc_js tc_j_root(herald_str body) {
    tc_js none = {NULL, NULL};
    if (!body.ptr || body.len == 0) return none;
    const char *e = body.ptr + body.len, *p = tc_j_ws(body.ptr, e), *end = tc_j_skip(p, e, 0);
    if (!end || tc_j_ws(end, e) != e) return none;
    return (tc_js){p, end};
}

/** Member `key` of object `o` (keys compared byte-wise): 1 and `*out`, or 0. */
static inline int tc_j_get(tc_js o, const char *key, tc_js *out) {
    if (!o.p || o.p >= o.end || *o.p != '{') return 0;
    size_t klen = strlen(key);
    const char *p = tc_j_ws(o.p + 1, o.end), *e = o.end;
    while (p < e && *p == '"') {
        const char *kend = tc_j_skip(p, e, 1);
        if (!kend) return 0;
        int match = (size_t)(kend - p) == klen + 2 && memcmp(p + 1, key, klen) == 0;
        p = tc_j_ws(kend, e);
        if (p >= e || *p != ':') return 0;
        const char *v = tc_j_ws(p + 1, e), *vend = tc_j_skip(v, e, 1);
        if (!vend) return 0;
        if (match) {
            *out = (tc_js){v, vend};
            return 1;
        }
        p = tc_j_ws(vend, e);
        if (p >= e || *p != ',') return 0;
        p = tc_j_ws(p + 1, e);
    }
    return 0;
}

/** Walks array `a`: `*cursor` starts NULL; 1 with the next element in `*out`, 0 at the end. */
static inline int tc_j_next(tc_js a, const char **cursor, tc_js *out) {
    if (!a.p || a.p >= a.end || *a.p != '[') return 0;
    const char *p = *cursor ? *cursor : a.p + 1, *e = a.end;
    p = tc_j_ws(p, e);
    if (*cursor && p < e && *p == ',') p = tc_j_ws(p + 1, e);
    if (p >= e || *p == ']') return 0;
    const char *vend = tc_j_skip(p, e, 1);
    if (!vend) return 0;
    *out = (tc_js){p, vend};
    *cursor = vend;
    return 1;
}

/** Decodes string `v` into caller-owned `out` (NUL-terminated, controls as spaces); 0 if not a string. */
static inline int tc_j_str(tc_js v, char *out, size_t cap) {
    if (cap > 0) out[0] = 0;
    if (!v.p || v.end - v.p < 2 || *v.p != '"') return 0;
    hk_jval text = {'s', v.p + 1, (size_t)(v.end - v.p - 2)};
    return hk_json_text(&text, out, cap);
}

/** A string member, or a number member as its text (Tencent sends some codes as numbers). */
static inline int tc_j_text(tc_js o, const char *key, char *out, size_t cap) {
    tc_js v;
    if (cap > 0) out[0] = 0;
    if (!tc_j_get(o, key, &v)) return 0;
    if (*v.p == '"') return tc_j_str(v, out, cap);
    size_t n = (size_t)(v.end - v.p);
    if (n == 0 || n >= cap || !((*v.p >= '0' && *v.p <= '9') || *v.p == '-')) return 0;
    memcpy(out, v.p, n);
    out[n] = 0;
    return 1;
}

/* ---- masking --------------------------------------------------------------------------------- */

/**
 * Copies `s` into caller-owned `out` (NUL-terminated, cut to fit) with every run of 7 or more
 * digits masked: the run's last 4 digits stay, and the first max(3, n - 8) for runs of 11 or
 * more (2 otherwise), so "+8613812345678" becomes "+86138****5678". Used on every phone number
 * and every provider message a reason or a log line quotes. Borrows `s`.
 */
static inline void tc_mask_digits(herald_str s, char *out, size_t cap) {
    size_t o = 0, i = 0;
    if (cap == 0) return;
    while (i < s.len && o + 1 < cap) {
        if (s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            size_t j = i;
            while (j < s.len && s.ptr[j] >= '0' && s.ptr[j] <= '9') j++;
            size_t n = j - i;
            if (n >= 7) {
                size_t head = n >= 11 ? (n - 8 > 3 ? n - 8 : 3) : 2, tail = n >= 11 ? 4 : 2;
                for (size_t k = 0; k < head && o + 1 < cap; k++) out[o++] = s.ptr[i + k];
                for (int k = 0; k < 4 && o + 1 < cap; k++) out[o++] = '*';
                for (size_t k = n - tail; k < n && o + 1 < cap; k++) out[o++] = s.ptr[i + k];
            } else {
                for (size_t k = i; k < j && o + 1 < cap; k++) out[o++] = s.ptr[k];
            }
            i = j;
            continue;
        }
        out[o++] = s.ptr[i++];
    }
    out[o] = 0;
}

/** A C string masked like tc_mask_digits, into `out`. */
static inline void tc_mask(const char *s, char *out, size_t cap) { tc_mask_digits(HK_VIEW(s, strlen(s)), out, cap); }

/* ---- phone numbers --------------------------------------------------------------------------- */

enum { TC_PHONE_BYTES = 20, TC_MAX_NUMBERS = 200 };

typedef struct {
    char e164[TC_PHONE_BYTES]; /* "+8613812345678" */
} tc_phone;

/**
 * Normalises one phone number to E.164: "+<country><number>" with 8-15 digits; "00" for "+";
 * spaces, '-', '.', '(' and ')' dropped; a bare 11-digit mainland mobile ("138...") or "86138..."
 * gets "+86". A +86 number must be an 11-digit mobile starting with 1. 1 and `out`, or 0.
 */
static inline int tc_phone_normalize(herald_str s, tc_phone *out) {
    char d[32];
    size_t n = 0;
    int plus = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') continue;
        if (c == '+' && n == 0 && !plus) {
            plus = 1;
            continue;
        }
        if (c < '0' || c > '9' || n >= sizeof d - 1) return 0;
        d[n++] = c;
    }
    d[n] = 0;
    const char *digits = d;
    if (!plus && n > 2 && d[0] == '0' && d[1] == '0') {
        digits = d + 2;
        n -= 2;
        plus = 1;
    }
    char full[32];
    if (plus) snprintf(full, sizeof full, "%s", digits);
    else if (n == 11 && d[0] == '1') snprintf(full, sizeof full, "86%s", d);
    else if (n == 13 && d[0] == '8' && d[1] == '6' && d[2] == '1') snprintf(full, sizeof full, "%s", d);
    else return 0;
    size_t len = strlen(full);
    if (len < 8 || len > 15 || full[0] == '0') return 0;
    if (full[0] == '8' && full[1] == '6' && (len != 13 || full[2] != '1')) return 0;
    snprintf(out->e164, sizeof out->e164, "+%s", full);
    return 1;
}

static inline int tc_phone_mainland(const tc_phone *p) { return strncmp(p->e164, "+86", 3) == 0; }

/** The masked form of a normalised number ("+86138****5678") into caller-owned `out`. */
static inline void tc_phone_masked(const tc_phone *p, char *out, size_t cap) { tc_mask(p->e164, out, cap); }

/**
 * Parses the message's recipient: one number or several separated by ',' or ';'. Fills `out`
 * (room for `max`), dropping duplicates. Returns the count, or -1 with a sentence in `why`
 * (caller's, `why_cap`) naming the bad item by position and masked.
 */
static inline int tc_parse_recipients(herald_str r, tc_phone *out, size_t max, char *why, size_t why_cap) {
    size_t count = 0, item = 0, start = 0;
    for (size_t i = 0; i <= r.len; i++) {
        if (i < r.len && r.ptr[i] != ',' && r.ptr[i] != ';') continue;
        herald_str part = HK_VIEW(r.ptr + start, i - start);
        start = i + 1;
        while (part.len > 0 && part.ptr[0] == ' ') part.ptr++, part.len--;
        while (part.len > 0 && part.ptr[part.len - 1] == ' ') part.len--;
        if (part.len == 0) continue;
        item++;
        tc_phone p;
        if (!tc_phone_normalize(part, &p)) {
            char masked[64];
            tc_mask_digits(HK_VIEW(part.ptr, part.len > 40 ? 40 : part.len), masked, sizeof masked);
            snprintf(why, why_cap,
                     "recipient %zu of the message ('%s') is not a phone number Tencent Cloud accepts: give E.164 numbers such as "
                     "+8613812345678 (a bare 11-digit mainland mobile is taken as +86)",
                     item, masked);
            return -1;
        }
        size_t k = 0;
        while (k < count && strcmp(out[k].e164, p.e164) != 0) k++;
        if (k < count) continue;
        if (count >= max) {
            snprintf(why, why_cap, "the message names more than %zu phone numbers, the most one request may carry", max);
            return -1;
        }
        out[count++] = p;
    }
    if (count == 0) snprintf(why, why_cap, "the message's recipient holds no phone number");
    return count == 0 ? -1 : (int)count;
}

/* ---- template parameters --------------------------------------------------------------------- */

enum tc_field { TCF_TITLE = 1, TCF_BODY, TCF_SEVERITY, TCF_STATUS, TCF_NUMBER, TCF_INCIDENT_ID, TCF_EVENT, TCF_ALERTS, TCF_LABEL };
enum { TC_MAX_PARAMS = 16, TC_LABEL_BYTES = 64 };

typedef struct {
    int field;
    char label[TC_LABEL_BYTES]; /* TCF_LABEL: the label's name */
} tc_param;

/** The schema of the `template_params` item (a JSON Schema fragment). */
#define TC_PARAM_ITEM_SCHEMA                                                                                                 \
    "{\"type\":\"string\",\"pattern\":\"^(title|body|severity|status|incident_number|incident_id|event|alert_count|label:[^\\\\s]{1,63})$\"}"

/** Parses one template_params item ("title", "label:host"...): 1, or 0 when unknown. */
static inline int tc_param_parse(const char *s, tc_param *out) {
    static const char *const names[] = {"title", "body", "severity", "status", "incident_number", "incident_id", "event", "alert_count"};
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 8; i++) {
        if (strcmp(s, names[i]) == 0) {
            out->field = i + 1;
            return 1;
        }
    }
    size_t n = strlen(s);
    if (n > 6 && n - 6 < TC_LABEL_BYTES && strncmp(s, "label:", 6) == 0) {
        out->field = TCF_LABEL;
        memcpy(out->label, s + 6, n - 5);
        return 1;
    }
    return 0;
}

/**
 * Reads setting `template_params` (an ordered list) into `out`; returns the count or -1 with a
 * sentence in `err` (HK_ERR_BYTES). Absent means none (a template without variables).
 */
static inline int tc_read_params(const herald_host_api *h, tc_param *out, char *err) {
    int count = 0;
    for (size_t i = 0;; i++) {
        char path[40];
        hk_ostr v = {0};
        snprintf(path, sizeof path, "template_params.%zu", i);
        int got = hk_read_opt(h, path, &v, err);
        if (got < 0) return -1;
        if (got == 0) break;
        if (i >= TC_MAX_PARAMS) {
            hk_ostr_free(&v, 0);
            return hk_fail(err, "setting 'template_params' has more than %d items", TC_MAX_PARAMS);
        }
        int ok = tc_param_parse(v.p, &out[i]);
        hk_ostr_free(&v, 0);
        if (!ok)
            return hk_fail(err, "setting 'template_params' item %zu must be one of title, body, severity, status, incident_number, "
                                "incident_id, event, alert_count or label:<name>", i);
        count++;
    }
    return count;
}

static inline const char *tc_event_word(int32_t e) {
    static const char *const names[] = {"fire", "refire", "acknowledged", "snoozed", "resolved", "closed", "test"};
    return e >= 1 && e <= 7 ? names[e - 1] : "unknown";
}

/**
 * Appends the value of `p` for message `m` as a JSON string to `b`: plain text on one line
 * (controls and runs of spaces as one space), cut to `max_chars` Unicode characters when
 * `max_chars` > 0, and "-" when empty (an empty template variable is refused by the platform).
 * `*chars` grows by the characters written.
 */
static inline void tc_put_param(hk_buf *b, const herald_host_api *h, const herald_message *m, const tc_param *p, uint32_t max_chars,
                                size_t *chars) {
    char num[24];
    herald_str v = HK_SV("");
    switch (p->field) {
    case TCF_TITLE: v = m->title; break;
    case TCF_BODY: v = m->body; break;
    case TCF_SEVERITY: {
        static const char *const s[] = {"critical", "warning", "info"};
        const char *w = m->severity >= 1 && m->severity <= 3 ? s[m->severity - 1] : "unknown";
        v = HK_VIEW(w, strlen(w));
        break;
    }
    case TCF_STATUS: {
        static const char *const s[] = {"triggered", "acknowledged", "resolved", "closed"};
        const char *w = m->status >= 1 && m->status <= 4 ? s[m->status - 1] : "unknown";
        v = HK_VIEW(w, strlen(w));
        break;
    }
    case TCF_NUMBER:
        if (m->incident_number > 0) {
            snprintf(num, sizeof num, "%llu", (unsigned long long)m->incident_number);
            v = HK_VIEW(num, strlen(num));
        }
        break;
    case TCF_INCIDENT_ID: v = m->incident_id; break;
    case TCF_EVENT: v = HK_VIEW(tc_event_word(m->event), strlen(tc_event_word(m->event))); break;
    case TCF_ALERTS:
        snprintf(num, sizeof num, "%u", (unsigned)m->alert_count);
        v = HK_VIEW(num, strlen(num));
        break;
    case TCF_LABEL:
        for (size_t i = 0; m->labels && i < m->label_count; i++) {
            if (hk_str_eq(m->labels[i].name, p->label)) {
                v = m->labels[i].value;
                break;
            }
        }
        break;
    default: break;
    }
    /* One line, trimmed, cut on a character boundary. */
    hk_buf t = {0};
    size_t n = 0, i = 0;
    int space = 1;
    while (v.ptr && i < v.len && (max_chars == 0 || n < max_chars)) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space) {
                hk_buf_put(&t, " ", 1);
                n++;
                space = 1;
            }
            i++;
            continue;
        }
        size_t k = hk_utf8_seq((const unsigned char *)v.ptr + i, v.len - i);
        if (k == 0) k = 1; /* json_escape turns it into U+FFFD */
        hk_buf_put(&t, v.ptr + i, k);
        i += k;
        n++;
        space = 0;
    }
    while (t.len > 0 && t.p[t.len - 1] == ' ') t.len--, n--;
    if (t.failed) b->failed = t.failed;
    if (t.len == 0) {
        hk_buf_lit(b, "\"-\"");
        n = 1;
    } else {
        hk_buf_json(b, h, HK_VIEW(t.p, t.len));
    }
    *chars += n;
    hk_buf_free(&t);
}

/* ---- error codes ----------------------------------------------------------------------------- */

enum tc_class { TC_RETRY = 1, TC_CLOCK, TC_PERMANENT, TC_NUMBER_RETRY, TC_NUMBER_FAILED };

typedef struct {
    const char *code; /* exact, or a prefix when it ends with '*' */
    int cls;
    const char *hint; /* what the operator should do; may be NULL */
} tc_rule;

/* Codes every Tencent Cloud API 3.0 product answers (common error codes page, product 1388/114322). */
static const tc_rule tc_common_rules[] = {
    {"AuthFailure.SignatureExpire", TC_CLOCK, "the request's timestamp is more than 5 minutes off Tencent's clock: check NTP on the Herald host"},
    {"AuthFailure.SignatureFailure", TC_PERMANENT, "check secret_key (and that it belongs to secret_id)"},
    {"AuthFailure.SecretIdNotFound", TC_PERMANENT, "check secret_id: the key may have been deleted or disabled in CAM"},
    {"AuthFailure.InvalidSecretId", TC_PERMANENT, "check secret_id"},
    {"AuthFailure.TokenFailure", TC_PERMANENT, "the temporary token is invalid"},
    {"AuthFailure.UnauthorizedOperation", TC_PERMANENT, "grant the CAM sub-user permission for this API (see the plugin's README)"},
    {"AuthFailure.MFAFailure", TC_PERMANENT, NULL},
    {"AuthFailure*", TC_PERMANENT, "check secret_id and secret_key"},
    {"UnauthorizedOperation*", TC_PERMANENT, NULL},
    {"RequestLimitExceeded*", TC_RETRY, NULL},
    {"InternalError.RequestTimeException", TC_CLOCK, "the request's timestamp is too far off Tencent's clock: check NTP on the Herald host"},
    {"InternalError.SigVerificationFail", TC_PERMANENT, "check secret_key"},
    {"InternalError.SigFieldMissing", TC_PERMANENT, NULL},
    {"InternalError.RestApiInterfaceNotExist", TC_PERMANENT, "check endpoint"},
    {"InternalError*", TC_RETRY, NULL},
    {"ResourceUnavailable.ServiceUnavailable", TC_RETRY, NULL},
    {"InvalidAction", TC_PERMANENT, "check endpoint: this host does not serve the API"},
    {"InvalidParameter*", TC_PERMANENT, NULL},
    {"MissingParameter*", TC_PERMANENT, NULL},
    {"UnsupportedOperation*", TC_PERMANENT, NULL},
    {"UnsupportedRegion", TC_PERMANENT, "check region"},
    {"NoSuchVersion", TC_PERMANENT, NULL},
};

/** The rule for `code`: `product` first, then the common table; NULL when none matches. */
static inline const tc_rule *tc_find_rule(const tc_rule *product, size_t count, const char *code) {
    const tc_rule *tables[2] = {product, tc_common_rules};
    size_t counts[2] = {count, sizeof tc_common_rules / sizeof *tc_common_rules};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < counts[t]; i++) {
            const char *c = tables[t][i].code;
            size_t n = strlen(c);
            if (n > 0 && c[n - 1] == '*' ? strncmp(code, c, n - 1) == 0 : strcmp(code, c) == 0) return &tables[t][i];
        }
    }
    return NULL;
}

/* ---- Tencent's answer ------------------------------------------------------------------------ */

typedef struct {
    int ok;            /* the body is {"Response":{...}} */
    tc_js response;
    int has_error;
    char code[96];
    char message[400];  /* masked */
    char request_id[80];
} tc_answer;

static inline void tc_read_answer(const herald_response *r, tc_answer *a) {
    memset(a, 0, sizeof *a);
    if (r->body_truncated) return;
    tc_js root = tc_j_root(r->body), err;
    if (!root.p || !tc_j_get(root, "Response", &a->response) || *a->response.p != '{') return;
    a->ok = 1;
    tc_j_text(a->response, "RequestId", a->request_id, sizeof a->request_id);
    if (tc_j_get(a->response, "Error", &err)) {
        char raw[400];
        a->has_error = 1;
        if (!tc_j_text(err, "Code", a->code, sizeof a->code) || !a->code[0]) snprintf(a->code, sizeof a->code, "(no code)");
        tc_j_text(err, "Message", raw, sizeof raw);
        tc_mask(raw, a->message, sizeof a->message);
    }
}

/* ---- the API client -------------------------------------------------------------------------- */

typedef struct {
    const herald_host_api *host;
    hk_ostr secret_id, secret_key; /* secret_key wiped on free */
    hk_ostr endpoint;              /* "https://sms.tencentcloudapi.com" */
    hk_ostr region, language;
    char canon_host[256];
    const char *service, *action, *version;
} tc_api;

static inline void tc_api_free(tc_api *a) {
    hk_ostr_free(&a->secret_id, 0);
    hk_ostr_free(&a->secret_key, 1);
    hk_ostr_free(&a->endpoint, 0);
    hk_ostr_free(&a->region, 0);
    hk_ostr_free(&a->language, 0);
}

/** Reads an optional string setting with a default; 0 or -1 (sentence in `err`). */
static inline int tc_read_default(const herald_host_api *h, const char *path, const char *def, hk_ostr *out, char *err) {
    int got = hk_read_opt(h, path, out, err);
    if (got < 0) return -1;
    if (got == 0) {
        size_t n = strlen(def);
        out->p = malloc(n + 1);
        if (!out->p) return hk_fail(err, "out of memory while reading setting '%s'", path);
        memcpy(out->p, def, n + 1);
        out->len = n;
    }
    return 0;
}

/** Reads secret_id, secret_key, endpoint, region and language: 0, or -1 with a sentence in `err`. */
static inline int tc_api_read(tc_api *a, const char *default_endpoint, char *err) {
    const herald_host_api *h = a->host;
    int got;
    if ((got = hk_read_opt(h, "secret_id", &a->secret_id, err)) <= 0)
        return got == 0 ? hk_fail(err, "setting 'secret_id' is required (a CAM API key's SecretId, AKID...)") : -1;
    if (a->secret_id.len < 8 || a->secret_id.len > 128 || !hk_is_token_text(&a->secret_id))
        return hk_fail(err, "setting 'secret_id' must be a SecretId: 8-128 visible characters without spaces");
    if ((got = hk_read_opt(h, "secret_key", &a->secret_key, err)) <= 0)
        return got == 0 ? hk_fail(err, "setting 'secret_key' is required (the SecretKey of the CAM API key)") : -1;
    if (a->secret_key.len < 8 || a->secret_key.len > 128 || !hk_is_token_text(&a->secret_key))
        return hk_fail(err, "setting 'secret_key' must be a SecretKey: 8-128 visible characters without spaces");
    if (tc_read_default(h, "endpoint", default_endpoint, &a->endpoint, err) != 0) return -1;
    while (a->endpoint.len > 0 && a->endpoint.p[a->endpoint.len - 1] == '/') a->endpoint.p[--a->endpoint.len] = 0;
    if (!hk_is_token_text(&a->endpoint) || strpbrk(a->endpoint.p, "?#") ||
        !tc3_canonical_host(a->endpoint.p, a->endpoint.len, a->canon_host, sizeof a->canon_host) ||
        strchr(a->endpoint.p + (a->endpoint.p[4] == 's' ? 8 : 7), '/'))
        return hk_fail(err, "setting 'endpoint' must be an https:// (or http://) URL with a host and no path, e.g. %s", default_endpoint);
    if (tc_read_default(h, "region", "ap-guangzhou", &a->region, err) != 0) return -1;
    if (a->region.len == 0 || a->region.len > 40 || !hk_is_token_text(&a->region))
        return hk_fail(err, "setting 'region' must be a Tencent Cloud region such as ap-guangzhou");
    if ((got = hk_read_opt(h, "language", &a->language, err)) < 0) return -1;
    if (got == 1 && !hk_str_eq(HK_VIEW(a->language.p, a->language.len), "zh-CN") && !hk_str_eq(HK_VIEW(a->language.p, a->language.len), "en-US"))
        return hk_fail(err, "setting 'language' must be zh-CN or en-US");
    if (hk_plain_http_to_remote_host(&a->endpoint))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'endpoint' uses plain http:// to a remote host: the request would travel unencrypted"));
    return 0;
}

#define TC_CLOCK_KEY "tc3:clock-offset"
#define TC_CLOCK_TTL_MS (UINT64_C(24) * 3600 * 1000)

/** Tencent's clock minus ours, in seconds, as last learnt from a SignatureExpire answer (0 if none). */
static inline int64_t tc_clock_offset(const herald_host_api *h) {
    char text[24];
    size_t got = 0;
    if (h->kv_get(HK_SV(TC_CLOCK_KEY), (uint8_t *)text, sizeof text - 1, &got) != HERALD_OK || got >= sizeof text) return 0;
    text[got] = 0;
    return strtoll(text, NULL, 10);
}

/**
 * After AuthFailure.SignatureExpire: reads Tencent's clock from the answer's Date header and
 * stores the offset. 1 when the offset is large enough (> 60 s) that signing again can help.
 */
static inline int tc_learn_clock(const herald_host_api *h, const herald_response *r) {
    int64_t server;
    if (!tc3_parse_http_date(hk_find_header(r, "Date"), &server)) return 0;
    int64_t offset = server - h->now_unix_ms() / 1000;
    if (offset > -60 && offset < 60) return 0;
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)offset);
    if (h->kv_set(HK_SV(TC_CLOCK_KEY), HK_VIEW(text, strlen(text)), TC_CLOCK_TTL_MS) != HERALD_OK) return 0;
    snprintf(text, sizeof text, "%lld", (long long)offset);
    char line[160];
    snprintf(line, sizeof line, "Tencent Cloud's clock is %s s off this host's: signing with the corrected time (fix NTP here)", text);
    h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
    return 1;
}

/** Signs `body` (JSON) for the API and hands the host the POST, tagged `tag`. Frees `body`. */
static inline int32_t tc_send(const tc_api *a, herald_exchange *ex, hk_buf *body, uint64_t tag) {
    const herald_host_api *h = a->host;
    if (body->failed) {
        int32_t f = body->failed;
        hk_buf_free(body);
        return hk_host_failure(h, ex, f, "building the JSON body");
    }
    int64_t ts = h->now_unix_ms() / 1000 + tc_clock_offset(h);
    char auth[TC3_AUTH_BYTES], tstext[24];
    snprintf(tstext, sizeof tstext, "%lld", (long long)ts);
    tc3_input in = {
        .secret_id = HK_VIEW(a->secret_id.p, a->secret_id.len),
        .secret_key = HK_VIEW(a->secret_key.p, a->secret_key.len),
        .service = HK_VIEW(a->service, strlen(a->service)),
        .host = HK_VIEW(a->canon_host, strlen(a->canon_host)),
        .content_type = HK_SV("application/json"),
        .payload = HK_VIEW(body->p, body->len),
        .timestamp = ts,
        .action = HK_SV(""),
    };
    int32_t st = tc3_authorization(h, &in, auth, NULL, 0);
    if (st != HERALD_OK) {
        hk_buf_free(body);
        return hk_host_failure(h, ex, st, "signing the request (TC3-HMAC-SHA256)");
    }
    herald_pair headers[8];
    size_t n = 0;
    headers[n++] = (herald_pair){HK_SV("Content-Type"), HK_SV("application/json")};
    headers[n++] = (herald_pair){HK_SV("X-TC-Action"), HK_VIEW(a->action, strlen(a->action))};
    headers[n++] = (herald_pair){HK_SV("X-TC-Version"), HK_VIEW(a->version, strlen(a->version))};
    headers[n++] = (herald_pair){HK_SV("X-TC-Timestamp"), HK_VIEW(tstext, strlen(tstext))};
    headers[n++] = (herald_pair){HK_SV("X-TC-Region"), HK_VIEW(a->region.p, a->region.len)};
    if (a->language.len > 0) headers[n++] = (herald_pair){HK_SV("X-TC-Language"), HK_VIEW(a->language.p, a->language.len)};
    headers[n++] = (herald_pair){HK_SV("Authorization"), HK_VIEW(auth, strlen(auth))};
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = HK_SV("POST");
    req.url = HK_VIEW(a->endpoint.p, a->endpoint.len);
    req.headers = headers;
    req.header_count = n;
    req.body = HK_VIEW(body->p, body->len);
    req.tag = tag;
    st = h->set_request(ex, &req);
    hk_buf_free(body);
    if (st != HERALD_OK) return hk_host_failure(h, ex, st, "handing the request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* ---- delivery progress ----------------------------------------------------------------------- */
/* One line per number that is done: "<+number>\t<state>\t<value>\n", keyed by the message's
 * idempotency key, so a retry never sends twice to a number that already got the message. */

#define TC_PROGRESS_TTL_MS (UINT64_C(3) * 24 * 3600 * 1000)

typedef struct {
    char text[16384];
    size_t len;
} tc_progress;

static inline void tc_progress_key(const char *prefix, const herald_message *m, char *key, size_t cap, size_t *len) {
    int n = snprintf(key, cap, "%s:%.*s", prefix, (int)(m->idempotency_key.len > 200 ? 200 : m->idempotency_key.len),
                     m->idempotency_key.ptr ? m->idempotency_key.ptr : "");
    *len = n > 0 ? (size_t)n : 0;
}

static inline void tc_progress_load(const herald_host_api *h, const char *prefix, const herald_message *m, tc_progress *pg) {
    char key[256];
    size_t klen, got = 0;
    tc_progress_key(prefix, m, key, sizeof key, &klen);
    pg->len = 0;
    int32_t st = h->kv_get(HK_VIEW(key, klen), (uint8_t *)pg->text, sizeof pg->text - 1, &got);
    if (st == HERALD_OK && got < sizeof pg->text) pg->len = got;
    else if (st != HERALD_ERR_NOT_FOUND)
        h->log(HERALD_LOG_WARNING, HK_SV("could not read the delivery progress: numbers that already got this message may get it again"));
    pg->text[pg->len] = 0;
}

/** The state of number `num` ('o' done, 'f' refused for good) with its value in `val`, or 0. */
static inline char tc_progress_find(const tc_progress *pg, const char *num, char *val, size_t cap) {
    size_t nl = strlen(num);
    const char *p = pg->text, *end = pg->text + pg->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl + 2 && memcmp(p, num, nl) == 0 && p[nl] == '\t' && p[nl + 2] == '\t') {
            if (val && cap > 0) {
                size_t n = (size_t)(eol - (p + nl + 3));
                if (n >= cap) n = cap - 1;
                memcpy(val, p + nl + 3, n);
                val[n] = 0;
            }
            return p[nl + 1];
        }
        p = eol + 1;
    }
    return 0;
}

/** Adds a line in memory (call tc_progress_save once after a batch). `val` has no tab/newline. */
static inline void tc_progress_add(tc_progress *pg, const char *num, char state, const char *val) {
    char line[400], clean[304];
    snprintf(clean, sizeof clean, "%.300s", val);
    for (char *c = clean; *c; c++) {
        if (*c == '\t' || *c == '\n') *c = ' ';
    }
    int n = snprintf(line, sizeof line, "%s\t%c\t%s\n", num, state, clean);
    if (n <= 0 || (size_t)n >= sizeof line || pg->len + (size_t)n >= sizeof pg->text) return;
    memcpy(pg->text + pg->len, line, (size_t)n);
    pg->len += (size_t)n;
    pg->text[pg->len] = 0;
}

static inline void tc_progress_save(const herald_host_api *h, const char *prefix, const herald_message *m, const tc_progress *pg) {
    char key[256];
    size_t klen;
    tc_progress_key(prefix, m, key, sizeof key, &klen);
    if (h->kv_set(HK_VIEW(key, klen), HK_VIEW(pg->text, pg->len), TC_PROGRESS_TTL_MS) != HERALD_OK)
        h->log(HERALD_LOG_WARNING, HK_SV("could not store the delivery progress: a retry may send this message again to numbers that already got it"));
}

/* ---- phone lists from the config ------------------------------------------------------------- */

/** Reads setting `phone_numbers` (optional list) into `out` (room for `max`): count, or -1 (`err`). */
static inline int tc_read_phones(const herald_host_api *h, tc_phone *out, size_t max, char *err) {
    size_t count = 0;
    for (size_t i = 0;; i++) {
        char path[40];
        hk_ostr v = {0};
        snprintf(path, sizeof path, "phone_numbers.%zu", i);
        int got = hk_read_opt(h, path, &v, err);
        if (got < 0) return -1;
        if (got == 0) break;
        tc_phone p;
        int ok = tc_phone_normalize(HK_VIEW(v.p, v.len), &p);
        char masked[64];
        tc_mask_digits(HK_VIEW(v.p, v.len > 40 ? 40 : v.len), masked, sizeof masked);
        hk_ostr_free(&v, 0);
        if (!ok) return hk_fail(err, "setting 'phone_numbers' item %zu ('%s') is not an E.164 phone number such as +8613812345678", i, masked);
        size_t k = 0;
        while (k < count && strcmp(out[k].e164, p.e164) != 0) k++;
        if (k < count) return hk_fail(err, "setting 'phone_numbers' lists %s twice", masked);
        if (count >= max) return hk_fail(err, "setting 'phone_numbers' has more than %zu numbers", max);
        out[count++] = p;
    }
    return (int)count;
}

/** Reads an optional integer setting within [lo, hi] into `*out` (kept when absent): 0 or -1. */
static inline int tc_read_uint(const herald_host_api *h, const char *path, uint32_t lo, uint32_t hi, uint32_t *out, char *err) {
    hk_ostr v = {0};
    int got = hk_read_opt(h, path, &v, err);
    if (got <= 0) return got;
    char *end = NULL;
    long long x = strtoll(v.p, &end, 10);
    int ok = v.len > 0 && end && *end == 0 && x >= (long long)lo && x <= (long long)hi;
    hk_ostr_free(&v, 0);
    if (!ok) return hk_fail(err, "setting '%s' must be an integer from %u to %u", path, (unsigned)lo, (unsigned)hi);
    *out = (uint32_t)x;
    return 0;
}

/** Reads a required setting of digits (an app or template id) into `out`: 0 or -1. */
static inline int tc_read_digits(const herald_host_api *h, const char *path, const char *what, hk_ostr *out, char *err) {
    int got = hk_read_opt(h, path, out, err);
    if (got < 0) return -1;
    if (got == 0) return hk_fail(err, "setting '%s' is required (%s)", path, what);
    int ok = out->len > 0 && out->len <= 20;
    for (size_t i = 0; ok && i < out->len; i++) ok = out->p[i] >= '0' && out->p[i] <= '9';
    if (!ok) return hk_fail(err, "setting '%s' must be the numeric %s", path, what);
    return 0;
}

/** 1 when the message checks out against ABI 1.0; else sets a reason. */
static inline int tc_message_ok(const herald_host_api *h, const herald_message *m, herald_exchange *ex) {
    if (HK_MESSAGE_OK(m)) return 1;
    h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
    return 0;
}

/** A sentence for an HTTP answer that is not Tencent's JSON: RETRY for 429/5xx, FAILED else. */
static inline int32_t tc_not_an_answer(const herald_host_api *h, const herald_response *r, herald_exchange *ex) {
    char snip[HK_QUOTE_BYTES + 8], masked[HK_QUOTE_BYTES + 40], msg[400];
    hk_snippet(r->body, snip, sizeof snip);
    tc_mask(snip, masked, sizeof masked);
    int retry = r->status == 429 || (r->status >= 500 && r->status <= 599);
    if (r->status >= 200 && r->status <= 299)
        snprintf(msg, sizeof msg, "Tencent Cloud answered HTTP %d without an API 3.0 {\"Response\":...} body, so the message may not have been sent (%s)",
                 (int)r->status, masked[0] ? masked : "empty body");
    else
        snprintf(msg, sizeof msg, "Tencent Cloud answered HTTP %d%s (%s)", (int)r->status,
                 retry ? ", a temporary failure" : "", masked[0] ? masked : "empty body");
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return retry ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
}

/** Constant-time equality of two byte strings (the time depends only on the lengths). */
static inline int tc_ct_equal(herald_str a, herald_str b) {
    size_t n = a.len > b.len ? a.len : b.len;
    unsigned diff = (unsigned)(a.len ^ b.len);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < a.len ? (unsigned char)a.ptr[i] : 0, y = i < b.len ? (unsigned char)b.ptr[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0 && a.len > 0;
}

#endif /* HERALD_TENCENT_COMMON_H */
