/*
 * tencent_voice.c — Herald's Tencent Cloud voice channel (VMS API 3.0 `SendTtsVoice`, version
 * 2020-09-02), with "press 1 to acknowledge".
 *
 * Each number of a delivery gets one text-to-speech call: an approved voice template filled from
 * message fields (`template_params`), played `play_times` times. Several numbers are called one
 * after another within the delivery (request tag = the number's index); progress is kept in the
 * host's key-value store, so a retry never calls a number twice. For every call placed, the
 * CallId is stored with the incident id and the called number, because Tencent's callbacks carry
 * only the call id and the number.
 *
 * Callbacks: the VMS console posts JSON events to https://<herald>/callbacks/<integration>/<token>.
 * The last path segment must equal `callback_token` (compared in constant time). Events:
 *   voicekey_callback       keypress "1" -> ACKNOWLEDGE (actor mobile:+<nationcode><mobile>,
 *                           via "voice (key 1)"); another key -> NOTE
 *   voiceprompt_callback    result 1 (not answered) or 2 (call error) -> NOTE
 *   voice_failure_callback  NOTE with the failure reason
 * Each (call id, event) is acted on once; replays and unknown call ids get the reply Tencent
 * expects, {"result":0,"errmsg":"OK"}, and nothing else. See README.md.
 *
 * Sans-I/O like every Herald plugin. Pure C11 + libc; the only exported symbol is
 * herald_plugin_entry_v1. Phone numbers and keys never appear in full in reasons or logs.
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include "../tencent-common/tencent_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_CALLS = 6,      /* Herald performs at most 8 requests per delivery: 6 calls + a re-sign */
    TEXT_LIMIT = 350,   /* VMS: the whole spoken message, characters */
};

#define TAG_RESIGNED UINT64_C(1) /* bit 0: signed again after a clock resync; bits 1+: the index */
#define PROGRESS_PREFIX "voice"
#define CALL_TTL_MS (UINT64_C(2) * 24 * 3600 * 1000)

typedef struct {
    const herald_host_api *host; /* borrowed until instance_destroy */
    tc_api api;
    hk_ostr app_id, template_id, token;
    tc_param params[TC_MAX_PARAMS];
    int param_count;
    uint32_t param_chars, play_times;
    tc_phone phones[MAX_CALLS];
    int phone_count;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    tc_api_free(&in->api);
    hk_ostr_free(&in->app_id, 0);
    hk_ostr_free(&in->template_id, 0);
    hk_ostr_free(&in->token, 1);
    free(in);
}

static const char *const known_settings[] = {"secret_id", "secret_key", "voice_sdk_app_id", "template_id", "template_params", "param_max_chars",
                                             "play_times", "phone_numbers", "callback_token", "endpoint", "region", "language"};

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    int got;
    in->api.host = h;
    in->api.service = "vms";
    in->api.action = "SendTtsVoice";
    in->api.version = "2020-09-02";
    if (hk_check_known_settings(h, known_settings, sizeof known_settings / sizeof *known_settings, "tencent-voice", err) != 0) return -1;
    if (tc_api_read(&in->api, "https://vms.tencentcloudapi.com", err) != 0) return -1;
    if (tc_read_digits(h, "voice_sdk_app_id", "voice application's SdkAppid, e.g. 1400000000", &in->app_id, err) != 0) return -1;
    if (tc_read_digits(h, "template_id", "approved voice template's ID", &in->template_id, err) != 0) return -1;
    if ((in->param_count = tc_read_params(h, in->params, err)) < 0) return -1;
    in->param_chars = 0;
    if (tc_read_uint(h, "param_max_chars", 1, TEXT_LIMIT, &in->param_chars, err) != 0) return -1;
    in->play_times = 2;
    if (tc_read_uint(h, "play_times", 1, 3, &in->play_times, err) != 0) return -1;
    if ((in->phone_count = tc_read_phones(h, in->phones, MAX_CALLS, err)) < 0) return -1;
    if ((got = hk_read_opt(h, "callback_token", &in->token, err)) < 0) return -1;
    if (got == 1) {
        int ok = in->token.len >= 16 && in->token.len <= 128;
        for (size_t i = 0; ok && i < in->token.len; i++) {
            char c = in->token.p[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        }
        if (!ok) return hk_fail(err, "setting 'callback_token' must be 16-128 letters, digits, '-' or '_' (e.g. from: openssl rand -hex 24)");
    }
    return 0;
}

HK_INSTANCE_CREATE(voice_create, instance, "tencent-voice", read_config, instance_free)

static void voice_destroy(void *inst) { instance_free(inst); }

/* vms/v20200902/errorcodes.py, classified as the reference's table says. */
static const tc_rule vms_rules[] = {
    {"FailedOperation.AccessUpstreamTimeout", TC_RETRY, NULL},
    {"InternalError.AccessUpstreamTimeout", TC_RETRY, NULL},
    {"InternalError.SsoSendRecvFail", TC_RETRY, NULL},
    {"InternalError.UpstreamError", TC_RETRY, NULL},
    {"LimitExceeded.DeliveryFrequencyLimit", TC_NUMBER_FAILED, "the number's call frequency cap is reached (VMS console, frequency limits)"},
    {"InvalidParameterValue.CalledNumberVerifyFail", TC_NUMBER_FAILED, "Tencent does not accept this number"},
    {"FailedOperation.TemplateIncorrectOrUnapproved", TC_PERMANENT, "check template_id: the voice template must be approved"},
    {"FailedOperation.InsufficientBalanceInVoicePackage", TC_PERMANENT, "the voice package is used up: buy more"},
    {"FailedOperation.ContainSensitiveWord", TC_PERMANENT, "the text contains a word Tencent refuses"},
    {"FailedOperation.PhoneNumberUnappliedOrExpired", TC_PERMANENT, "the application has no valid calling number: apply for one in the VMS console"},
    {"InvalidParameterValue.ContentLengthLimit", TC_PERMANENT, "the spoken text is too long: shorten the variables (param_max_chars)"},
    {"InvalidParameterValue.SdkAppidNotExist", TC_PERMANENT, "check voice_sdk_app_id"},
    {"InvalidParameterValue.TemplateParameterFormatError", TC_PERMANENT, NULL},
    {"UnauthorizedOperation.VoiceSdkAppidVerifyFail", TC_PERMANENT, "check voice_sdk_app_id: it must belong to the key's account"},
    {"UnauthorizedOperation.SdkAppidIsDisabled", TC_PERMANENT, "the voice application is disabled"},
    {"UnauthorizedOperation.ServiceSuspendDueToArrears", TC_PERMANENT, "the account is in arrears"},
};
#define VMS_RULES (sizeof vms_rules / sizeof *vms_rules)

/* ---- delivery -------------------------------------------------------------------------------- */

static int delivery_numbers(const instance *in, const herald_message *m, tc_phone *out, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    char why[400];
    if (m->recipient.len > 0) {
        int n = tc_parse_recipients(m->recipient, out, MAX_CALLS, why, sizeof why);
        if (n < 0) h->set_reason(ex, HK_VIEW(why, strlen(why)));
        return n;
    }
    if (in->phone_count == 0) {
        h->set_reason(ex, HK_SV("the message names no recipient and setting 'phone_numbers' is empty: nobody to call"));
        return -1;
    }
    memcpy(out, in->phones, (size_t)in->phone_count * sizeof *out);
    return in->phone_count;
}

static int32_t call(const instance *in, const herald_message *m, const tc_phone *num, int index, herald_exchange *ex, uint64_t resigned) {
    const herald_host_api *h = in->host;
    hk_buf b = {0};
    hk_buf_lit(&b, "{\"TemplateId\":");
    hk_buf_json(&b, h, HK_VIEW(in->template_id.p, in->template_id.len));
    hk_buf_lit(&b, ",\"TemplateParamSet\":[");
    size_t chars = 0;
    for (int i = 0; i < in->param_count; i++) {
        if (i) hk_buf_lit(&b, ",");
        /* Each variable within param_max_chars, all of them within the spoken-text limit. */
        uint32_t left = chars >= TEXT_LIMIT ? 1 : (uint32_t)(TEXT_LIMIT - chars);
        uint32_t max = in->param_chars && in->param_chars < left ? in->param_chars : left;
        tc_put_param(&b, h, m, &in->params[i], max, &chars);
    }
    hk_buf_lit(&b, "],\"CalledNumber\":");
    hk_buf_json(&b, h, HK_VIEW(num->e164, strlen(num->e164)));
    hk_buf_lit(&b, ",\"VoiceSdkAppid\":");
    hk_buf_json(&b, h, HK_VIEW(in->app_id.p, in->app_id.len));
    hk_buf_lit(&b, ",\"PlayTimes\":");
    hk_buf_u64(&b, in->play_times);
    hk_buf_lit(&b, ",\"SessionContext\":");
    hk_buf_json(&b, h, m->idempotency_key);
    hk_buf_lit(&b, "}");
    return tc_send(&in->api, ex, &b, ((uint64_t)index << 1) | resigned);
}

/* The next number without progress, or DELIVERED / FAILED when every number is done. */
static int32_t next_or_finish(const instance *in, const herald_message *m, const tc_phone *nums, int n, const tc_progress *pg,
                              herald_exchange *ex) {
    const herald_host_api *h = in->host;
    for (int i = 0; i < n; i++) {
        if (!tc_progress_find(pg, nums[i].e164, NULL, 0)) return call(in, m, &nums[i], i, ex, 0);
    }
    char ids[1024] = "", refused[3000] = "", msg[3400];
    size_t il = 0, rl = 0;
    int ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        char val[320], masked[40];
        char state = tc_progress_find(pg, nums[i].e164, val, sizeof val);
        tc_phone_masked(&nums[i], masked, sizeof masked);
        int w;
        if (state == 'o') {
            w = snprintf(ids + il, sizeof ids - il, "%s%s", ok ? "," : "", val);
            if (w > 0 && (size_t)w < sizeof ids - il) il += (size_t)w;
            ok++;
        } else {
            w = snprintf(refused + rl, sizeof refused - rl, "%s%s (%s)", failed ? "; " : "", masked, val);
            if (w > 0 && (size_t)w < sizeof refused - rl) rl += (size_t)w;
            failed++;
        }
    }
    if (failed == 0) {
        h->set_provider_id(ex, HK_VIEW(ids, il));
        return HERALD_OUTCOME_DELIVERED;
    }
    if (ok > 0) snprintf(msg, sizeof msg, "Tencent Cloud could not call %d of %d numbers: %s; the other %d %s called", failed, n, refused, ok, ok == 1 ? "was" : "were");
    else snprintf(msg, sizeof msg, "Tencent Cloud could not call %s", refused);
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return HERALD_OUTCOME_FAILED;
}

static int32_t voice_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!tc_message_ok(h, m, ex)) return HERALD_OUTCOME_FAILED;
    tc_phone nums[MAX_CALLS];
    int n = delivery_numbers(in, m, nums, ex);
    if (n < 0) return HERALD_OUTCOME_FAILED;
    tc_progress *pg = malloc(sizeof *pg);
    if (!pg) return hk_host_failure(h, ex, HK_NO_MEMORY, "preparing the call");
    tc_progress_load(h, PROGRESS_PREFIX, m, pg);
    int32_t out = next_or_finish(in, m, nums, n, pg, ex);
    free(pg);
    return out;
}

/* Remembers call `callid` -> "<incident id>\t<+number>" for the callbacks. */
static void remember_call(const instance *in, const herald_message *m, const char *callid, const tc_phone *num) {
    const herald_host_api *h = in->host;
    char key[200], val[400];
    int kn = snprintf(key, sizeof key, "call:%s", callid);
    int vn = snprintf(val, sizeof val, "%.*s\t%s", (int)(m->incident_id.len > 300 ? 300 : m->incident_id.len),
                      m->incident_id.ptr ? m->incident_id.ptr : "", num->e164);
    if (kn <= 0 || (size_t)kn >= sizeof key || vn <= 0 || (size_t)vn >= sizeof val ||
        h->kv_set(HK_VIEW(key, (size_t)kn), HK_VIEW(val, (size_t)vn), CALL_TTL_MS) != HERALD_OK)
        h->log(HERALD_LOG_WARNING, HK_SV("could not store the call id: a key press on this call will not reach the incident"));
}

static int32_t voice_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!tc_message_ok(h, m, ex)) return HERALD_OUTCOME_FAILED;
    if (r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    tc_phone nums[MAX_CALLS];
    int n = delivery_numbers(in, m, nums, ex);
    if (n < 0) return HERALD_OUTCOME_FAILED;
    uint64_t index = r->tag >> 1;
    if (index >= (uint64_t)n) {
        h->set_reason(ex, HK_SV("the host answered a request the tencent-voice plugin did not make (unknown tag)"));
        return HERALD_OUTCOME_FAILED;
    }
    const tc_phone *num = &nums[index];
    char masked[40], msg[1000];
    tc_phone_masked(num, masked, sizeof masked);
    tc_answer a;
    tc_read_answer(r, &a);
    if (!a.ok) return tc_not_an_answer(h, r, ex);

    tc_progress *pg = malloc(sizeof *pg);
    if (!pg) return hk_host_failure(h, ex, HK_NO_MEMORY, "reading Tencent's answer");
    tc_progress_load(h, PROGRESS_PREFIX, m, pg);
    int32_t out;
    if (!a.has_error) {
        tc_js status;
        char callid[100];
        if (!tc_j_get(a.response, "SendStatus", &status) || !tc_j_text(status, "CallId", callid, sizeof callid) || !callid[0] ||
            strpbrk(callid, "\t\n")) {
            free(pg);
            return tc_not_an_answer(h, r, ex);
        }
        remember_call(in, m, callid, num);
        tc_progress_add(pg, num->e164, 'o', callid);
        tc_progress_save(h, PROGRESS_PREFIX, m, pg);
        out = next_or_finish(in, m, nums, n, pg, ex);
        free(pg);
        return out;
    }
    const tc_rule *rule = tc_find_rule(vms_rules, VMS_RULES, a.code);
    const char *words = a.message[0] ? a.message : "no message";
    int cls = rule ? rule->cls : 0;
    if (cls == TC_CLOCK && !(r->tag & TAG_RESIGNED) && tc_learn_clock(h, r)) {
        out = call(in, m, num, (int)index, ex, TAG_RESIGNED);
    } else if (cls == TC_CLOCK || cls == TC_RETRY || cls == TC_NUMBER_RETRY) {
        snprintf(msg, sizeof msg, "Tencent Cloud could not call %s yet (%s: %s%s%s); Herald retries later%s", masked, a.code, words,
                 rule && rule->hint ? " - " : "", rule && rule->hint ? rule->hint : "",
                 n > 1 ? ", calling only the numbers not called yet" : "");
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        out = HERALD_OUTCOME_RETRY;
    } else if (cls == TC_NUMBER_FAILED) {
        /* This number only: note it and go on with the others. */
        snprintf(msg, sizeof msg, "%s: %.150s%s%s", a.code, words, rule->hint ? " - " : "", rule->hint ? rule->hint : "");
        tc_progress_add(pg, num->e164, 'f', msg);
        tc_progress_save(h, PROGRESS_PREFIX, m, pg);
        out = next_or_finish(in, m, nums, n, pg, ex);
    } else {
        if (rule)
            snprintf(msg, sizeof msg, "Tencent Cloud refused the call to %s (%s: %s)%s%s", masked, a.code, words, rule->hint ? ": " : "",
                     rule->hint ? rule->hint : "");
        else
            snprintf(msg, sizeof msg, "Tencent Cloud answered error code %s (%s, RequestId %s) for the call to %s, which the tencent-voice plugin "
                                      "does not know: not called", a.code, words, a.request_id[0] ? a.request_id : "none", masked);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        out = HERALD_OUTCOME_FAILED;
    }
    free(pg);
    return out;
}

/* ---- callbacks ------------------------------------------------------------------------------- */

static void reply_ok(const herald_host_api *h, herald_exchange *ex) {
    h->set_reply(ex, 200, HK_SV("application/json"), HK_SV("{\"result\":0,\"errmsg\":\"OK\"}"));
}

static int32_t refuse(const herald_host_api *h, herald_exchange *ex, int32_t status, const char *why) {
    h->set_reason(ex, HK_VIEW(why, strlen(why)));
    h->set_reply(ex, status, HK_SV("application/json"), HK_SV("{\"result\":1,\"errmsg\":\"refused\"}"));
    return HERALD_OUTCOME_FAILED;
}

/* The last non-empty segment of the request path. */
static herald_str last_segment(herald_str path) {
    size_t end = path.ptr ? path.len : 0;
    while (end > 0 && path.ptr[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && path.ptr[start - 1] != '/') start--;
    return HK_VIEW(path.ptr + start, end - start);
}

static int digits_only(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    return 1;
}

/* Handles one event object of kind `kind` ("voicekey_callback"...). */
static void handle_event(const instance *in, const char *kind, tc_js ev, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    char callid[100], mobile[40], nation[12], line[400];
    if (!tc_j_text(ev, "callid", callid, sizeof callid) || !callid[0] || strlen(callid) > 80 || !hk_is_visible(HK_VIEW(callid, strlen(callid)))) {
        h->log(HERALD_LOG_WARNING, HK_SV("a Tencent voice callback without a usable callid was ignored"));
        return;
    }
    tc_j_text(ev, "mobile", mobile, sizeof mobile);
    tc_j_text(ev, "nationcode", nation, sizeof nation);

    /* Which incident and number the call was for. */
    char key[128], val[400];
    size_t got = 0;
    int kn = snprintf(key, sizeof key, "call:%s", callid);
    if (h->kv_get(HK_VIEW(key, (size_t)kn), (uint8_t *)val, sizeof val - 1, &got) != HERALD_OK || got >= sizeof val) {
        snprintf(line, sizeof line, "Tencent voice %s for call %s, which this integration did not place (or placed over 2 days ago): ignored", kind, callid);
        h->log(HERALD_LOG_INFO, HK_VIEW(line, strlen(line)));
        return;
    }
    val[got] = 0;
    char *tab = strchr(val, '\t');
    if (!tab) return;
    *tab = 0;
    const char *incident = val, *called = tab + 1;

    /* The event's identity, for idempotency: a key press is one event per key. */
    char event[40], detail[480] = "";
    int kind_key = strcmp(kind, "voicekey_callback") == 0, kind_prompt = strcmp(kind, "voiceprompt_callback") == 0;
    char keypress[16] = "", result[16] = "";
    if (kind_key) {
        tc_j_text(ev, "keypress", keypress, sizeof keypress);
        if (!keypress[0] || strlen(keypress) > 8 || !hk_is_visible(HK_VIEW(keypress, strlen(keypress)))) snprintf(keypress, sizeof keypress, "?");
        snprintf(event, sizeof event, "key:%s", keypress);
    } else if (kind_prompt) {
        tc_j_text(ev, "result", result, sizeof result);
        if (strcmp(result, "0") == 0) return; /* answered: nothing to record */
        snprintf(event, sizeof event, "prompt");
    } else {
        snprintf(event, sizeof event, "failure");
    }
    char seen[200];
    int sn = snprintf(seen, sizeof seen, "seen:%s:%s", callid, event);
    if (h->kv_get(HK_VIEW(seen, (size_t)sn), NULL, 0, &got) != HERALD_ERR_NOT_FOUND) {
        snprintf(line, sizeof line, "Tencent voice %s for call %s (%s) was already handled: replay ignored", kind, callid, event);
        h->log(HERALD_LOG_INFO, HK_VIEW(line, strlen(line)));
        return;
    }

    /* Who: the number in the callback, else the number called. */
    char actor_num[TC_PHONE_BYTES + 4];
    tc_phone p;
    if (mobile[0] == '+' && tc_phone_normalize(HK_VIEW(mobile, strlen(mobile)), &p)) snprintf(actor_num, sizeof actor_num, "%s", p.e164);
    else if (digits_only(mobile, 15) && digits_only(nation, 4)) {
        char full[40];
        snprintf(full, sizeof full, "+%s%s", nation, mobile);
        snprintf(actor_num, sizeof actor_num, "%s", tc_phone_normalize(HK_VIEW(full, strlen(full)), &p) ? p.e164 : called);
    } else snprintf(actor_num, sizeof actor_num, "%s", called);
    if (strcmp(actor_num, called) != 0) h->log(HERALD_LOG_WARNING, HK_SV("a Tencent voice callback names another number than the one called"));
    char masked[40], actor[48];
    tc_mask(actor_num, masked, sizeof masked);
    snprintf(actor, sizeof actor, "mobile:%s", actor_num);

    herald_action a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.incident_id = HK_VIEW(incident, strlen(incident));
    a.actor = HK_VIEW(actor, strlen(actor));
    char via[40];
    if (kind_key && strcmp(keypress, "1") == 0) {
        a.kind = HERALD_ACTION_ACKNOWLEDGE;
        a.via = HK_SV("voice (key 1)");
    } else {
        a.kind = HERALD_ACTION_NOTE;
        if (kind_key) {
            snprintf(via, sizeof via, "voice (key %s)", keypress);
            snprintf(detail, sizeof detail, "%s pressed key %s on the voice call (only 1 acknowledges)", masked, keypress);
        } else if (kind_prompt) {
            snprintf(via, sizeof via, "voice");
            snprintf(detail, sizeof detail, "the voice call to %s %s", masked,
                     strcmp(result, "1") == 0 ? "was not answered" : strcmp(result, "2") == 0 ? "failed (call error)" : "ended without an answer");
        } else {
            char reason[160], code[24], clean[200];
            tc_j_text(ev, "failure_reason", reason, sizeof reason);
            tc_j_text(ev, "failure_code", code, sizeof code);
            tc_mask(reason, clean, sizeof clean);
            snprintf(via, sizeof via, "voice");
            snprintf(detail, sizeof detail, "the voice call to %s failed: %s%s%s%s", masked, clean[0] ? clean : "no reason given",
                     code[0] ? " (code " : "", code, code[0] ? ")" : "");
        }
        a.via = HK_VIEW(via, strlen(via));
        a.note = HK_VIEW(detail, strlen(detail));
    }
    if (h->add_action(ex, &a) != HERALD_OK) {
        h->log(HERALD_LOG_WARNING, HK_SV("the host refused an action from a Tencent voice callback"));
        return;
    }
    if (h->kv_set(HK_VIEW(seen, (size_t)sn), HK_SV("1"), CALL_TTL_MS) != HERALD_OK)
        h->log(HERALD_LOG_WARNING, HK_SV("could not record a handled voice callback: a replay of it would act again"));
}

static int32_t voice_parse_callback(void *inst, const herald_inbound *req, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (req == NULL || !HERALD_HAS_FIELD(herald_inbound, remote_address, req->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed an inbound request smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (in->token.len == 0) return refuse(h, ex, 404, "this integration takes no callbacks: set callback_token to enable them");
    if (!tc_ct_equal(last_segment(req->path), HK_VIEW(in->token.p, in->token.len)))
        return refuse(h, ex, 403, "the callback URL does not end with this integration's callback_token");
    if (!hk_str_ieq(req->method, "POST")) return refuse(h, ex, 405, "Tencent voice callbacks are POST requests");
    tc_js root = tc_j_root(req->body);
    if (!root.p || *root.p != '{') return refuse(h, ex, 400, "the callback body is not a JSON object");

    static const char *const kinds[] = {"voicekey_callback", "voiceprompt_callback", "voice_failure_callback"};
    int known = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        tc_js v, item;
        if (!tc_j_get(root, kinds[k], &v)) continue;
        known = 1;
        if (*v.p == '{') {
            handle_event(in, kinds[k], v, ex);
        } else if (*v.p == '[') {
            const char *cur = NULL;
            for (int i = 0; i < 16 && tc_j_next(v, &cur, &item); i++) {
                if (*item.p == '{') handle_event(in, kinds[k], item, ex);
            }
        }
    }
    if (!known) h->log(HERALD_LOG_INFO, HK_SV("a Tencent voice callback of a kind the plugin does not act on was acknowledged"));
    reply_ok(h, ex);
    return HERALD_OUTCOME_DELIVERED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"secret_id\",\"secret_key\",\"voice_sdk_app_id\",\"template_id\"],"
    "\"examples\":[{\"secret_id\":\"AKIDexampleexampleexample\",\"secret_key\":\"exampleSecretKeyexampleSecretKey\",\"voice_sdk_app_id\":\"1400000000\","
    "\"template_id\":\"1234\",\"template_params\":[\"title\",\"incident_number\"],\"phone_numbers\":[\"+8613800000000\"],"
    "\"callback_token\":\"0123456789abcdef0123456789abcdef\"}],"
    "\"properties\":{"
    "\"secret_id\":{\"type\":\"string\",\"minLength\":8,\"maxLength\":128,\"pattern\":\"^[!-~]+$\",\"title\":\"SecretId\","
    "\"description\":\"SecretId of a CAM API key allowed to call vms:SendTtsVoice.\",\"examples\":[\"AKIDexampleexampleexample\"]},"
    "\"secret_key\":{\"type\":\"string\",\"minLength\":8,\"maxLength\":128,\"pattern\":\"^[!-~]+$\",\"writeOnly\":true,\"title\":\"SecretKey\","
    "\"description\":\"SecretKey of the same API key.\",\"examples\":[\"exampleSecretKeyexampleSecretKey\"]},"
    "\"voice_sdk_app_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{1,20}$\",\"title\":\"Voice SdkAppid\","
    "\"description\":\"The voice application's SdkAppid (VoiceSdkAppid).\",\"examples\":[\"1400000000\"]},"
    "\"template_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{1,20}$\",\"title\":\"Template ID\","
    "\"description\":\"The approved voice notification template's ID.\",\"examples\":[\"1234\"]},"
    "\"template_params\":{\"type\":\"array\",\"maxItems\":16,\"items\":" TC_PARAM_ITEM_SCHEMA ","
    "\"title\":\"Template variables\",\"description\":\"The message field for each template variable {1}, {2}..., in order: title, body, "
    "severity, status, incident_number, incident_id, event, alert_count or label:<name>.\","
    "\"examples\":[[\"title\",\"severity\"]]},"
    "\"param_max_chars\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":350,\"title\":\"Characters per variable\","
    "\"description\":\"Cut each variable to this many characters (all variables together stay within 350).\"},"
    "\"play_times\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3,\"default\":2,\"title\":\"Play times\","
    "\"description\":\"How many times the message is played in the call.\"},"
    "\"phone_numbers\":{\"type\":\"array\",\"maxItems\":6,\"items\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9 ()-]{7,24}$\"},"
    "\"title\":\"Default numbers\",\"description\":\"E.164 numbers called when the message names no recipient, one after another.\","
    "\"examples\":[[\"+8613800000000\"]]},"
    "\"callback_token\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-]{16,128}$\",\"writeOnly\":true,\"title\":\"Callback token\","
    "\"description\":\"The last segment of the callback URL set in the VMS console: https://<herald>/callbacks/<integration>/<token>.\","
    "\"examples\":[\"0123456789abcdef0123456789abcdef\"]},"
    "\"endpoint\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://[^/?#]+/?$\",\"default\":\"https://vms.tencentcloudapi.com\","
    "\"title\":\"API endpoint\",\"description\":\"The VMS API host, or a test double.\"},"
    "\"region\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{1,40}$\",\"default\":\"ap-guangzhou\",\"title\":\"Region\","
    "\"description\":\"X-TC-Region.\"},"
    "\"language\":{\"type\":\"string\",\"enum\":[\"zh-CN\",\"en-US\"],\"title\":\"Error message language\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("vms.tencentcloudapi.com"), HK_LIT("*.tencentcloudapi.com"), HK_LIT("config:endpoint")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_VOICE,
    .id = HK_LIT("tencent-voice"),
    .name = HK_LIT("Tencent Cloud voice call"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    .size_limit = TEXT_LIMIT,
    .capabilities = HERALD_CAP_INBOUND_CALLBACKS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = HK_LIT("{{description}}"),
    .instance_create = voice_create,
    .instance_destroy = voice_destroy,
    .prepare = voice_prepare,
    .on_response = voice_on_response,
    .parse_callback = voice_parse_callback,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "tencent-voice");
}
