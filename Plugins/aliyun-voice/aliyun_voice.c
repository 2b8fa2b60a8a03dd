/*
 * aliyun_voice.c — Herald's Alibaba Cloud voice channel (Dyvmsapi 2017-05-25, IvrCall).
 *
 * One IvrCall per notification: the callee hears the StartCode TTS template filled with the
 * alert (StartTtsParams from `template_params`), and pressing 1 plays `ack_code`
 * (MenuKeyMap.1) and acknowledges the incident. Each call gets an OutId; OutId and the CallId
 * Alibaba returns are stored in the host's key-value store (with a TTL) next to the incident id
 * and the called number, so the receipts can be matched.
 *
 * Receipts come by Alibaba's "HTTP batch push" (VoiceCallReport and VoiceReport JSON arrays) to
 * https://<herald>/callbacks/<integration>/<callback_token>: the last path segment must equal
 * `callback_token` (compared in constant time; Alibaba signs no push). A key press "1" becomes
 * HERALD_ACTION_ACKNOWLEDGE; other keys, busy, no answer, hang-up become HERALD_ACTION_NOTE.
 * Duplicate pushes do nothing the second time (KV on call_id + status_code + dtmf).
 *
 * Signing, error classes and masking are shared with aliyun-sms (aliyun_openapi.h). Sans-I/O;
 * pure C11 + libc; the only exported symbol is herald_plugin_entry_v1. See README.md.
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include "../aliyun-common/aliyun_openapi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEFAULT_PARAM_CHARS = 35,
    MAX_PARAM_CHARS = 240,
    TTS_TOTAL_CHARS = 240,        /* Alibaba: the TTS variables together < 250 characters */
    DEFAULT_RECORD_HOURS = 48,
    MAX_ITEMS = 200,              /* receipts looked at per push */
    MAX_ACTIONS = 16              /* host limit per callback */
};

typedef struct {
    const herald_host_api *host; /* borrowed until instance_destroy */
    aa_client client;
    hk_ostr show_number, start_code, ack_code, bye_code, default_recipient, token;
    long play_times, timeout_ms;
    uint64_t record_ttl_ms;
    aa_vars vars;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    aa_client_free(&in->client);
    hk_ostr_free(&in->show_number, 0);
    hk_ostr_free(&in->start_code, 0);
    hk_ostr_free(&in->ack_code, 0);
    hk_ostr_free(&in->bye_code, 0);
    hk_ostr_free(&in->default_recipient, 0);
    hk_ostr_free(&in->token, 1);
    free(in);
}

/* An optional integer setting within [lo, hi]: 1 read, 0 absent, -1 (err). */
static int read_int(const herald_host_api *h, const char *name, long lo, long hi, long *out, char *err) {
    hk_ostr s = {0};
    int got = hk_read_opt(h, name, &s, err);
    if (got <= 0) return got;
    char *end;
    long v = strtol(s.p, &end, 10);
    int bad = *end != 0 || s.len == 0 || v < lo || v > hi;
    hk_ostr_free(&s, 0);
    if (bad) return hk_fail(err, "setting '%s' must be an integer from %ld to %ld", name, lo, hi);
    *out = v;
    return 1;
}

static int code_ok(const hk_ostr *s) { return s->len >= 3 && s->len <= 128 && hk_is_token_text(s); }

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"access_key_id", "access_key_secret", "endpoint", "signature_version", "called_show_number",
                                        "start_code", "template_params", "param_max_chars", "ack_code", "bye_code", "play_times",
                                        "timeout_ms", "default_recipient", "callback_token", "record_ttl_hours"};
    const herald_host_api *h = in->host;
    int got;
    char clean[32];
    in->client.api_version = "2017-05-25";
    in->client.product = "voice";
    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "aliyun-voice", err) != 0) return -1;
    if (aa_client_read(h, &in->client, "dyvmsapi.aliyuncs.com", err) != 0) return -1;
    if ((got = hk_read_opt(h, "called_show_number", &in->show_number, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'called_show_number' is required: the number you bought in the voice console, shown to the callee");
        return -1;
    }
    if (!aa_clean_number(HK_VIEW(in->show_number.p, in->show_number.len), clean, sizeof clean))
        return hk_fail(err, "setting 'called_show_number' must be a phone number");
    if ((got = hk_read_opt(h, "start_code", &in->start_code, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'start_code' is required: the approved TTS template (TTS_...) or voice file id played when the call is answered");
        return -1;
    }
    if (!code_ok(&in->start_code)) return hk_fail(err, "setting 'start_code' must be a TTS template code (TTS_123456789) or a voice file id");
    if ((got = hk_read_opt(h, "ack_code", &in->ack_code, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'ack_code' is required: the TTS template or voice file played after the callee presses 1");
        return -1;
    }
    if (!code_ok(&in->ack_code)) return hk_fail(err, "setting 'ack_code' must be a TTS template code or a voice file id");
    if ((got = hk_read_opt(h, "bye_code", &in->bye_code, err)) < 0) return -1;
    if (got == 1 && !code_ok(&in->bye_code)) return hk_fail(err, "setting 'bye_code' must be a TTS template code or a voice file id");
    if (read_int(h, "play_times", 1, 3, &in->play_times, err) < 0) return -1;
    if (read_int(h, "timeout_ms", 1000, 60000, &in->timeout_ms, err) < 0) return -1;
    long hours = DEFAULT_RECORD_HOURS;
    if (read_int(h, "record_ttl_hours", 1, 720, &hours, err) < 0) return -1;
    in->record_ttl_ms = (uint64_t)hours * 3600000u;
    if ((got = hk_read_opt(h, "default_recipient", &in->default_recipient, err)) < 0) return -1;
    if (got == 1 && !aa_clean_number(HK_VIEW(in->default_recipient.p, in->default_recipient.len), clean, sizeof clean))
        return hk_fail(err, "setting 'default_recipient' must be a mainland China phone number");
    if ((got = hk_read_opt(h, "callback_token", &in->token, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'callback_token' is required: a random secret of 16 to 128 letters, digits, '-' or '_' that ends the receipt URL");
        return -1;
    }
    int tok_ok = in->token.len >= 16 && in->token.len <= 128;
    for (size_t i = 0; tok_ok && i < in->token.len; i++) {
        char c = in->token.p[i];
        tok_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    }
    if (!tok_ok) return hk_fail(err, "setting 'callback_token' must be 16 to 128 letters, digits, '-' or '_'");
    if (aa_vars_read(h, &in->vars, 0, DEFAULT_PARAM_CHARS, MAX_PARAM_CHARS, err) != 0) return -1;
    return 0;
}

HK_INSTANCE_CREATE(voice_create, instance, "aliyun-voice", read_config, instance_free)

static void voice_destroy(void *inst) { instance_free(inst); }

/* ---- calling --------------------------------------------------------------------------------- */

/* The callee as IvrCall wants it: a mainland number without country code (+86 / 0086 / 86
 * dropped). 1, or 0 after set_reason. */
static int callee(const instance *in, const herald_message *m, char *out, size_t cap, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    herald_str r = m->recipient.len ? m->recipient : HK_VIEW(in->default_recipient.p, in->default_recipient.len);
    char masked[64], reason[240], clean[32];
    if (!r.ptr || r.len == 0) {
        h->set_reason(ex, HK_SV("no phone number: the message names no recipient and setting 'default_recipient' is not set"));
        return 0;
    }
    if (!aa_clean_number(r, clean, sizeof clean)) {
        aa_quote_recipient(r, masked, sizeof masked);
        snprintf(reason, sizeof reason, "the recipient \"%s\" is not a phone number", masked);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return 0;
    }
    aa_mask_phone(HK_VIEW(clean, strlen(clean)), masked, sizeof masked);
    const char *p = clean;
    if (strncmp(p, "+86", 3) == 0) p += 3;
    else if (strncmp(p, "0086", 4) == 0) p += 4;
    else if (strncmp(p, "86", 2) == 0 && strlen(p) == 13) p += 2;
    else if (p[0] == '+') {
        snprintf(reason, sizeof reason, "the recipient %s is outside mainland China: Alibaba Cloud IvrCall calls mainland numbers only", masked);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return 0;
    }
    snprintf(out, cap, "%s", p);
    return 1;
}

/* OutId (at most 15 bytes): "h" + 14 hex digits of SHA-256 over the idempotency key, so every
 * attempt of one delivery carries the same OutId. */
static int out_id(const herald_host_api *h, const herald_message *m, char out[16]) {
    uint8_t digest[32], rnd[16];
    herald_str basis = m->idempotency_key;
    if (basis.len == 0) {
        if (h->random_bytes(rnd, sizeof rnd) != HERALD_OK) return 0;
        basis = HK_VIEW((const char *)rnd, sizeof rnd);
    }
    if (h->sha256(basis, digest) != HERALD_OK) return 0;
    char hex[65];
    aa_hex(digest, 32, hex);
    out[0] = 'h';
    memcpy(out + 1, hex, 14);
    out[15] = 0;
    return 1;
}

/* The correlation record: "<called number>\n<incident id>". */
static void put_record(const instance *in, const char *prefix, const char *id, const char *number, herald_str incident) {
    char key[220];
    int n = snprintf(key, sizeof key, "%s%s", prefix, id);
    hk_buf v = {0};
    hk_buf_lit(&v, number);
    hk_buf_lit(&v, "\n");
    hk_buf_str(&v, incident);
    if (!v.failed && n > 0) in->host->kv_set(HK_VIEW(key, (size_t)n), HK_VIEW(v.p, v.len), in->record_ttl_ms);
    hk_buf_free(&v);
}

/* Builds, signs and hands over the IvrCall for `m`; stores the OutId record. */
static int32_t call(instance *in, const herald_message *m, herald_exchange *ex, uint64_t tag) {
    const herald_host_api *h = in->host;
    char number[32], oid[16], play[8], timeout[16];
    if (!callee(in, m, number, sizeof number, ex)) return HERALD_OUTCOME_FAILED;
    if (!out_id(h, m, oid)) return hk_host_failure(h, ex, HERALD_ERR_INTERNAL, "making the OutId");
    put_record(in, "out:", oid, number, m->incident_id);
    /* Each variable gets its share of the TTS limit (the values together stay under 250). */
    long max = in->vars.max_chars;
    if (in->vars.n > 0 && max > (long)(TTS_TOTAL_CHARS / in->vars.n)) max = (long)(TTS_TOTAL_CHARS / in->vars.n);
    hk_buf params = {0};
    aa_vars_json(&params, h, &in->vars, m, max);
    if (params.failed) {
        int32_t f = params.failed;
        hk_buf_free(&params);
        return hk_host_failure(h, ex, f, "building StartTtsParams");
    }
    aa_params ps;
    ps.n = 0;
    aa_add_c(&ps, "CalledNumber", number);
    aa_add(&ps, "CalledShowNumber", HK_VIEW(in->show_number.p, in->show_number.len));
    aa_add(&ps, "StartCode", HK_VIEW(in->start_code.p, in->start_code.len));
    if (in->vars.n > 0) aa_add(&ps, "StartTtsParams", HK_VIEW(params.p, params.len));
    aa_add_c(&ps, "MenuKeyMap.1.Key", "1");
    aa_add(&ps, "MenuKeyMap.1.Code", HK_VIEW(in->ack_code.p, in->ack_code.len));
    if (in->bye_code.len) aa_add(&ps, "ByeCode", HK_VIEW(in->bye_code.p, in->bye_code.len));
    if (in->play_times) {
        snprintf(play, sizeof play, "%ld", in->play_times);
        aa_add_c(&ps, "PlayTimes", play);
    }
    if (in->timeout_ms) {
        snprintf(timeout, sizeof timeout, "%ld", in->timeout_ms);
        aa_add_c(&ps, "Timeout", timeout);
    }
    aa_add_c(&ps, "OutId", oid);
    int32_t rc = aa_request(h, ex, &in->client, "IvrCall", &ps, tag);
    hk_buf_free(&params);
    return rc;
}

static int32_t voice_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    /* A call placed for this delivery already is not placed again on a retry. */
    char key[256], id[160];
    size_t got = 0;
    if (m->idempotency_key.len > 0 && h->kv_get(HK_VIEW(key, aa_sent_key(m, key, sizeof key)), (uint8_t *)id, sizeof id - 1, &got) == HERALD_OK) {
        h->set_provider_id(ex, HK_VIEW(id, got));
        return HERALD_OUTCOME_DELIVERED;
    }
    return call(in, m, ex, AA_TAG_FIRST);
}

static int32_t voice_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    aa_answer a;
    aa_read_answer(r, "CallId", &a);
    if (r->status >= 200 && r->status <= 299 && a.has_code && strcmp(a.code, "OK") == 0) {
        char number[32], key[256];
        const char *id = a.id[0] ? a.id : a.request_id;
        if (a.id[0] && strlen(a.id) <= 160 && callee(in, m, number, sizeof number, ex)) put_record(in, "call:", a.id, number, m->incident_id);
        if (m->idempotency_key.len > 0) h->kv_set(HK_VIEW(key, aa_sent_key(m, key, sizeof key)), HK_VIEW(id, strlen(id)), in->record_ttl_ms);
        h->set_provider_id(ex, HK_VIEW(id, strlen(id)));
        return HERALD_OUTCOME_DELIVERED;
    }
    uint64_t retry_ms = 0;
    aa_verdict v = aa_classify(h, ex, &in->client, r, &a, &retry_ms);
    if (v == AA_RESIGN) {
        if (r->tag != AA_TAG_RESIGNED) {
            char line[160];
            int learned = strcmp(a.code, "InvalidTimeStamp.Expired") == 0 && aa_learn_clock(h, r);
            snprintf(line, sizeof line, "Alibaba Cloud refused the call with %s; signing it again%s", a.code,
                     learned ? " on Alibaba Cloud's clock (from its Date header)" : " with a new nonce");
            h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
            return call(in, m, ex, AA_TAG_RESIGNED);
        }
        v = AA_RETRY;
    }
    if (v == AA_RETRY) {
        if (retry_ms) h->set_retry_after(ex, retry_ms);
        return HERALD_OUTCOME_RETRY;
    }
    return HERALD_OUTCOME_FAILED;
}

/* ---- receipts -------------------------------------------------------------------------------- */

/* What a final call status code means (Alibaba's operator receipt codes). */
static const char *status_meaning(const char *code) {
    static const struct { const char *code, *text; } table[] = {
        {"200000", "listened to the whole message without pressing 1"},
        {"200001", "hung up before the message ended"},
        {"200002", "the line was busy"},
        {"200003", "nobody answered"},
        {"200004", "the number does not exist"},
        {"200005", "the call could not be put through or was rejected"},
        {"200006", "the audio could not be played"},
        {"200007", "the phone is out of the service area"},
        {"200008", "no key was pressed in time"},
        {"200010", "the phone is switched off"},
        {"200011", "the number is suspended"},
        {"200117", "the caller id was refused"},
        {"200118", "the supplier blocked calls in this time window"},
        {"200121", "too many concurrent calls"},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(code, table[i].code) == 0) return table[i].text;
    return NULL;
}

/* 1 when the last non-empty segment of `path` (query and fragment ignored) equals the token;
 * the comparison takes the same time wherever the first difference is. */
static int token_matches(const instance *in, herald_str path) {
    const char *p = path.ptr ? path.ptr : "";
    size_t n = path.ptr ? path.len : 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '?' || p[i] == '#') { n = i; break; }
    while (n > 0 && p[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && p[start - 1] != '/') start--;
    const char *seg = p + start;
    size_t len = n - start, tlen = in->token.len;
    unsigned diff = (unsigned)(len ^ tlen);
    for (size_t i = 0; i < tlen; i++) diff |= (unsigned char)in->token.p[i] ^ (unsigned char)(i < len ? seg[i] : 0);
    return diff == 0 && tlen > 0;
}

static void reply(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *body) {
    h->set_reply(ex, status, HK_SV("application/json; charset=utf-8"), HK_VIEW(body, strlen(body)));
}

/* "mobile:+8613800000000" for a mainland mobile number, else "mobile:<number as called>". */
static void actor_of(const char *number, char *out, size_t cap) {
    size_t n = strlen(number);
    if (n == 11 && number[0] == '1') snprintf(out, cap, "mobile:+86%s", number);
    else snprintf(out, cap, "mobile:%.32s", number);
}

static int kv_has(const herald_host_api *h, const char *key) {
    uint8_t tmp[1];
    size_t got = 0;
    int32_t st = h->kv_get(HK_VIEW(key, strlen(key)), tmp, 0, &got);
    return st == HERALD_OK || st == HERALD_ERR_BUFFER_TOO_SMALL;
}

static int item_id_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* Looks at one receipt and adds its action, if any. Returns 1 to go on, 0 to stop (action cap). */
static int receipt(instance *in, herald_exchange *ex, herald_str elem, size_t *actions) {
    const herald_host_api *h = in->host;
    char call_id[160], status[16], dtmf[64], oid[32], record[512], key[300], masked[24], line[400];
    aa_member_text(elem, "call_id", call_id, sizeof call_id);
    aa_member_text(elem, "status_code", status, sizeof status);
    aa_member_text(elem, "dtmf", dtmf, sizeof dtmf);
    aa_member_text(elem, "out_id", oid, sizeof oid);
    if (!item_id_ok(call_id) || !hk_is_visible(HK_VIEW(status, strlen(status))) || !hk_is_visible(HK_VIEW(dtmf, strlen(dtmf)))) return 1;
    /* Pushes may repeat: the same call, status and keys are looked at once. */
    snprintf(key, sizeof key, "seen:%s:%s:%s", call_id, status, dtmf);
    if (kv_has(h, key)) return 1;
    h->kv_set(HK_VIEW(key, strlen(key)), HK_SV("1"), in->record_ttl_ms);
    size_t got = 0;
    int found = 0;
    if (item_id_ok(oid)) {
        snprintf(key, sizeof key, "out:%s", oid);
        found = h->kv_get(HK_VIEW(key, strlen(key)), (uint8_t *)record, sizeof record - 1, &got) == HERALD_OK;
    }
    if (!found) {
        snprintf(key, sizeof key, "call:%s", call_id);
        found = h->kv_get(HK_VIEW(key, strlen(key)), (uint8_t *)record, sizeof record - 1, &got) == HERALD_OK;
    }
    if (!found) {
        snprintf(line, sizeof line, "voice receipt for an unknown call (status %s): no record of its out_id or call_id, or it expired", status);
        h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
        return 1;
    }
    record[got] = 0;
    char *nl = strchr(record, '\n');
    if (!nl) return 1;
    *nl = 0;
    const char *number = record, *incident = nl + 1;
    if (incident[0] == 0) return 1; /* a test call: no incident to act on */
    aa_mask_phone(HK_VIEW(number, strlen(number)), masked, sizeof masked);
    char acked_key[200];
    snprintf(acked_key, sizeof acked_key, "acked:%s", call_id);
    int acked = kv_has(h, acked_key);
    herald_action act;
    memset(&act, 0, sizeof act);
    act.struct_size = sizeof act;
    act.incident_id = HK_VIEW(incident, strlen(incident));
    char actor[64];
    actor_of(number, actor, sizeof actor);
    act.actor = HK_VIEW(actor, strlen(actor));
    act.via = HK_SV("voice");
    if (strchr(dtmf, '1')) {
        if (acked) return 1;
        act.kind = HERALD_ACTION_ACKNOWLEDGE;
        act.via = HK_SV("voice (key 1)");
    } else if (dtmf[0]) {
        act.kind = HERALD_ACTION_NOTE;
        snprintf(line, sizeof line, "Voice call to %s: key %s pressed; only key 1 acknowledges", masked, dtmf);
        act.note = HK_VIEW(line, strlen(line));
    } else if (strlen(status) == 6 && status[0] == '2') {
        if (acked) return 1;
        const char *meaning = status_meaning(status);
        act.kind = HERALD_ACTION_NOTE;
        snprintf(line, sizeof line, "Voice call to %s ended without acknowledgement: %s (status %s)", masked,
                 meaning ? meaning : "unrecognised call status", status);
        act.note = HK_VIEW(line, strlen(line));
    } else {
        return 1; /* an intermediate state (ringing, answered...): nothing to record */
    }
    if (*actions >= MAX_ACTIONS) {
        h->log(HERALD_LOG_WARNING, HK_SV("more than 16 actions in one voice receipt push; the rest were dropped"));
        return 0;
    }
    if (h->add_action(ex, &act) == HERALD_OK) {
        (*actions)++;
        if (act.kind == HERALD_ACTION_ACKNOWLEDGE) h->kv_set(HK_VIEW(acked_key, strlen(acked_key)), HK_SV("1"), in->record_ttl_ms);
    }
    return 1;
}

static int32_t voice_parse_callback(void *inst, const herald_inbound *req, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (req == NULL || !HERALD_HAS_FIELD(herald_inbound, body, req->struct_size) || !token_matches(in, req->path)) {
        h->set_reason(ex, HK_SV("the receipt URL does not end in the integration's callback_token"));
        if (req) reply(h, ex, 401, "{\"code\":401,\"msg\":\"unauthorized\"}");
        return HERALD_OUTCOME_FAILED;
    }
    if (!hk_str_ieq(req->method, "POST")) {
        h->set_reason(ex, HK_SV("receipts arrive as POST"));
        reply(h, ex, 405, "{\"code\":405,\"msg\":\"POST only\"}");
        return HERALD_OUTCOME_FAILED;
    }
    herald_str body = req->body, elem;
    size_t lead = hk_j_ws(body.ptr, body.ptr ? body.len : 0, 0), pos = 0, items = 0, actions = 0;
    int r = 0;
    hk_jval probe;
    if (body.ptr && lead < body.len && body.ptr[lead] == '{') {
        /* A single receipt object is taken as a batch of one. */
        if (hk_json_member(body, "call_id", &probe) < 0) r = -1;
        else receipt(in, ex, body, &actions);
    } else {
        while ((r = aa_array_next(body, &pos, &elem)) == 1 && ++items <= MAX_ITEMS)
            if (!receipt(in, ex, elem, &actions)) break;
    }
    if (r < 0) {
        h->set_reason(ex, HK_SV("the receipt body is not a JSON array of receipts"));
        reply(h, ex, 400, "{\"code\":400,\"msg\":\"bad request\"}");
        return HERALD_OUTCOME_FAILED;
    }
    /* What Alibaba's HTTP batch push expects back (the SMS receipt contract; see README). */
    reply(h, ex, 200, "{\"code\":0,\"msg\":\"\xe6\x8e\xa5\xe6\x94\xb6\xe6\x88\x90\xe5\x8a\x9f\"}");
    return HERALD_OUTCOME_DELIVERED;
}

static int32_t voice_invoke_action(void *inst, herald_str action, herald_str input, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    (void)r;
    if (hk_str_eq(action, "explain-signature")) return aa_explain_signature(in->host, input, ex);
    in->host->set_reason(ex, HK_SV("unknown action: the aliyun-voice plugin has only explain-signature"));
    return HERALD_OUTCOME_FAILED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

#define FIELD_PATTERN "^(title|body|severity|status|event|incident_number|incident_id|alert_count|label:.+)$"
#define CODE_PATTERN "^[A-Za-z0-9_.-]{3,128}$"

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"access_key_id\",\"access_key_secret\",\"called_show_number\",\"start_code\",\"ack_code\",\"callback_token\"],"
    "\"examples\":[{\"access_key_id\":\"LTAI5tExampleKeyId\",\"access_key_secret\":\"ExampleSecret\",\"called_show_number\":\"057100000000\","
    "\"start_code\":\"TTS_123456789\",\"ack_code\":\"TTS_123456790\",\"template_params\":{\"title\":\"title\",\"sev\":\"severity\"},"
    "\"default_recipient\":\"13800000000\",\"callback_token\":\"change-me-to-a-long-random-token\"}],"
    "\"properties\":{"
    "\"access_key_id\":{\"type\":\"string\",\"minLength\":4,\"maxLength\":128,\"title\":\"AccessKey ID\","
    "\"description\":\"AccessKey ID of a RAM user allowed to call dyvms:IvrCall.\"},"
    "\"access_key_secret\":{\"type\":\"string\",\"minLength\":4,\"maxLength\":256,\"writeOnly\":true,\"title\":\"AccessKey secret\"},"
    "\"endpoint\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://[^/?#@]+/?$\",\"default\":\"https://dyvmsapi.aliyuncs.com\","
    "\"title\":\"Endpoint\",\"description\":\"https://dyvmsapi.aliyuncs.com; tests point it at a local mock.\"},"
    "\"signature_version\":{\"type\":\"string\",\"enum\":[\"v3\",\"v2\"],\"default\":\"v3\","
    "\"description\":\"v3: ACS3-HMAC-SHA256 (what current SDKs send); v2: the legacy HMAC-SHA1 RPC signature.\"},"
    "\"called_show_number\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9 ()-]{5,30}$\",\"title\":\"Caller number\","
    "\"description\":\"A number bought in the voice console; the callee sees it.\"},"
    "\"start_code\":{\"type\":\"string\",\"pattern\":\"" CODE_PATTERN "\",\"title\":\"Start prompt\","
    "\"description\":\"Approved TTS template (TTS_...) or voice file id played on answer; say 'press 1 to acknowledge' in it.\"},"
    "\"template_params\":{\"type\":\"object\",\"default\":{},\"title\":\"TTS variables\","
    "\"description\":\"Variable of start_code -> message field: title, body, severity, status, event, incident_number, incident_id, alert_count or label:<name> (no links: calls cannot read URLs).\","
    "\"additionalProperties\":{\"type\":\"string\",\"pattern\":\"" FIELD_PATTERN "\"}},"
    "\"param_max_chars\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":240,\"default\":35,"
    "\"description\":\"Characters kept per variable; all variables together stay under 250.\"},"
    "\"ack_code\":{\"type\":\"string\",\"pattern\":\"" CODE_PATTERN "\",\"title\":\"Key 1 prompt\","
    "\"description\":\"TTS template or voice file played after the callee presses 1 (acknowledged).\"},"
    "\"bye_code\":{\"type\":\"string\",\"pattern\":\"" CODE_PATTERN "\",\"description\":\"Optional closing prompt, the same kind (TTS or file) as start_code.\"},"
    "\"play_times\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3,\"description\":\"How often the start prompt is played (1-3).\"},"
    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1000,\"maximum\":60000,\"description\":\"How long to wait for a key, in milliseconds.\"},"
    "\"default_recipient\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9 ()-]{5,30}$\",\"description\":\"Mainland number called when a message names no recipient.\"},"
    "\"callback_token\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-]{16,128}$\",\"writeOnly\":true,\"title\":\"Receipt URL token\","
    "\"description\":\"Secret last segment of the receipt URL: https://<herald>/callbacks/<integration>/<callback_token>.\"},"
    "\"record_ttl_hours\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":720,\"default\":48,"
    "\"description\":\"How long a call is remembered for matching its receipts.\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("dyvmsapi.aliyuncs.com"), HK_LIT("config:endpoint")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_VOICE,
    .id = HK_LIT("aliyun-voice"),
    .name = HK_LIT("Alibaba Cloud voice call"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    /* The TTS variables together must stay under 250 characters. */
    .size_limit = 240,
    .capabilities = HERALD_CAP_INBOUND_CALLBACKS | HERALD_CAP_ADMIN_ACTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = HK_LIT("{{description}}"),
    .instance_create = voice_create,
    .instance_destroy = voice_destroy,
    .prepare = voice_prepare,
    .on_response = voice_on_response,
    .parse_callback = voice_parse_callback,
    .invoke_action = voice_invoke_action,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "aliyun-voice");
}
