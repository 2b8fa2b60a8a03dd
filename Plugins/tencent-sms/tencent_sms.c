/*
 * tencent_sms.c — Herald's Tencent Cloud SMS channel (API 3.0 `SendSms`, version 2021-01-11).
 *
 * One SendSms request carries every number of a delivery (at most 200, all mainland China or all
 * international, as Tencent requires). The template's variables are filled from message fields
 * in the order `template_params` lists them. Tencent answers per number (SendStatusSet): the
 * delivery is delivered only when every number got "Ok"; numbers refused for good are named
 * (masked) with their code; numbers that failed for a passing reason (system error, throttling)
 * are sent again on Herald's retry, and only they: progress is kept in the host's key-value store
 * under the message's idempotency key. Requests are signed with TC3-HMAC-SHA256
 * (../tencent-common/tc3.h); after AuthFailure.SignatureExpire the plugin reads Tencent's clock
 * from the answer's Date header and signs again once. See README.md.
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
    DEFAULT_PARAM_CHARS = 6, /* accounts opened after 2024-01-25: 6 characters per variable */
    BODY_LIMIT = 500,        /* characters of a (long) SMS */
};

#define TAG_RESIGNED UINT64_C(1) /* the request was signed again after a clock resync */
#define PROGRESS_PREFIX "sms"

typedef struct {
    const herald_host_api *host; /* borrowed until instance_destroy */
    tc_api api;
    hk_ostr app_id, template_id, sign_name, sender_id;
    tc_param params[TC_MAX_PARAMS];
    int param_count;
    uint32_t param_chars;
    tc_phone phones[TC_MAX_NUMBERS];
    int phone_count;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    tc_api_free(&in->api);
    hk_ostr_free(&in->app_id, 0);
    hk_ostr_free(&in->template_id, 0);
    hk_ostr_free(&in->sign_name, 0);
    hk_ostr_free(&in->sender_id, 0);
    free(in);
}

static const char *const known_settings[] = {"secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id", "template_params",
                                             "param_max_chars", "phone_numbers", "sender_id", "endpoint", "region", "language"};

/* 1 when the numbers mix mainland China and other countries (Tencent refuses that). */
static int mixed(const tc_phone *p, int n) {
    for (int i = 1; i < n; i++) {
        if (tc_phone_mainland(&p[i]) != tc_phone_mainland(&p[0])) return 1;
    }
    return 0;
}

static int read_config(instance *in, char *err) {
    const herald_host_api *h = in->host;
    int got;
    in->api.host = h;
    in->api.service = "sms";
    in->api.action = "SendSms";
    in->api.version = "2021-01-11";
    if (hk_check_known_settings(h, known_settings, sizeof known_settings / sizeof *known_settings, "tencent-sms", err) != 0) return -1;
    if (tc_api_read(&in->api, "https://sms.tencentcloudapi.com", err) != 0) return -1;
    if (tc_read_digits(h, "sdk_app_id", "SMS application's SDK AppID, e.g. 1400006666", &in->app_id, err) != 0) return -1;
    if (tc_read_digits(h, "template_id", "approved template's ID", &in->template_id, err) != 0) return -1;
    if ((got = hk_read_opt(h, "sign_name", &in->sign_name, err)) < 0) return -1;
    if (got == 1 && (in->sign_name.len == 0 || in->sign_name.len > 120 || strpbrk(in->sign_name.p, "\r\n\t")))
        return hk_fail(err, "setting 'sign_name' must be the approved signature's text (not its ID), on one line");
    if ((got = hk_read_opt(h, "sender_id", &in->sender_id, err)) < 0) return -1;
    if (got == 1 && (in->sender_id.len == 0 || in->sender_id.len > 64 || !hk_is_token_text(&in->sender_id)))
        return hk_fail(err, "setting 'sender_id' must be the Sender ID Tencent approved for international SMS");
    if ((in->param_count = tc_read_params(h, in->params, err)) < 0) return -1;
    in->param_chars = DEFAULT_PARAM_CHARS;
    if (tc_read_uint(h, "param_max_chars", 1, 500, &in->param_chars, err) != 0) return -1;
    if ((in->phone_count = tc_read_phones(h, in->phones, TC_MAX_NUMBERS, err)) < 0) return -1;
    if (mixed(in->phones, in->phone_count))
        return hk_fail(err, "setting 'phone_numbers' mixes mainland China (+86) and other numbers, which one SendSms request cannot carry "
                            "(and one template cannot serve): use two integrations");
    if (in->phone_count > 0 && tc_phone_mainland(&in->phones[0]) && in->sign_name.len == 0)
        return hk_fail(err, "setting 'sign_name' is required for mainland China numbers");
    return 0;
}

HK_INSTANCE_CREATE(sms_create, instance, "tencent-sms", read_config, instance_free)

static void sms_destroy(void *inst) { instance_free(inst); }

/* ---- error rules ----------------------------------------------------------------------------- */

/* sms/v20210111/errorcodes.py, classified as the reference's table says. */
static const tc_rule sms_rules[] = {
    {"LimitExceeded.PhoneNumberThirtySecondLimit", TC_NUMBER_RETRY, "Tencent sends one SMS per 30 s to a number"},
    {"LimitExceeded.PhoneNumberOneHourLimit", TC_NUMBER_FAILED, "the number's hourly SMS cap is reached (SMS console, frequency limits)"},
    {"LimitExceeded.PhoneNumberDailyLimit", TC_NUMBER_FAILED, "the number's daily SMS cap is reached (SMS console, frequency limits)"},
    {"LimitExceeded.PhoneNumberSameContentDailyLimit", TC_NUMBER_FAILED, "the number got this same text too often today"},
    {"LimitExceeded.DeliveryFrequencyLimit", TC_NUMBER_FAILED, "the number's frequency cap is reached"},
    {"FailedOperation.PhoneNumberInBlacklist", TC_NUMBER_FAILED, "the number unsubscribed from SMS or is blacklisted"},
    {"InvalidParameterValue.IncorrectPhoneNumber", TC_NUMBER_FAILED, "Tencent does not accept this number"},
    {"LimitExceeded.PhoneNumberCountLimit", TC_PERMANENT, "at most 200 numbers per request"},
    {"LimitExceeded.AppDailyLimit", TC_PERMANENT, "the application's daily quota is used up"},
    {"LimitExceeded.AppMainlandChinaDailyLimit", TC_PERMANENT, "the application's daily mainland quota is used up"},
    {"LimitExceeded.AppGlobalDailyLimit", TC_PERMANENT, "the application's daily international quota is used up"},
    {"LimitExceeded.DailyLimit", TC_PERMANENT, "the daily quota is used up"},
    {"LimitExceeded*", TC_PERMANENT, NULL},
    {"FailedOperation.SignatureIncorrectOrUnapproved", TC_PERMANENT, "check sign_name: it must be the text of an approved signature"},
    {"FailedOperation.TemplateIncorrectOrUnapproved", TC_PERMANENT, "check template_id: the template must be approved"},
    {"FailedOperation.TemplateParamSetNotMatchApprovedTemplate", TC_PERMANENT,
     "template_params must list exactly as many fields as the template has variables"},
    {"FailedOperation.InsufficientBalanceInSmsPackage", TC_PERMANENT, "the SMS package is used up: buy more"},
    {"FailedOperation.ContainSensitiveWord", TC_PERMANENT, "the text contains a word Tencent refuses"},
    {"FailedOperation.JsonParseFail", TC_PERMANENT, NULL},
    {"FailedOperation.FailResolvePacket", TC_PERMANENT, NULL},
    {"InvalidParameterValue.TemplateParameterFormatError", TC_PERMANENT,
     "verification-code templates take only 0-6 digits: use a notification template"},
    {"InvalidParameterValue.TemplateParameterLengthLimit", TC_PERMANENT,
     "a variable is longer than the account allows: lower param_max_chars"},
    {"InvalidParameterValue.ProhibitedUseUrlInTemplateParameter", TC_PERMANENT, "a variable holds a URL, which Tencent refuses"},
    {"InvalidParameterValue.SdkAppIdNotExist", TC_PERMANENT, "check sdk_app_id"},
    {"UnauthorizedOperation.SmsSdkAppIdVerifyFail", TC_PERMANENT, "check sdk_app_id: it must belong to the key's account"},
    {"UnauthorizedOperation.ServiceSuspendDueToArrears", TC_PERMANENT, "the account is in arrears"},
    {"UnauthorizedOperation.RequestIpNotInWhitelist", TC_PERMANENT, "add Herald's egress IP to the application's IP whitelist"},
    {"UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", TC_PERMANENT, NULL},
    {"UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone", TC_PERMANENT, "use an international template for non-+86 numbers"},
    {"UnsupportedOperation.GlobalTemplateToChineseMainlandPhone", TC_PERMANENT, "use a mainland template for +86 numbers"},
    {"FailedOperation.MissingSignatureToModify", TC_PERMANENT, NULL},
};
#define SMS_RULES (sizeof sms_rules / sizeof *sms_rules)

/* ---- recipients and requests ----------------------------------------------------------------- */

/* The numbers of this delivery: the message's recipient, else the configured list. -1: reason set. */
static int delivery_numbers(const instance *in, const herald_message *m, tc_phone *out, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    char why[400];
    int n;
    if (m->recipient.len > 0) {
        if ((n = tc_parse_recipients(m->recipient, out, TC_MAX_NUMBERS, why, sizeof why)) < 0) {
            h->set_reason(ex, HK_VIEW(why, strlen(why)));
            return -1;
        }
    } else {
        if (in->phone_count == 0) {
            h->set_reason(ex, HK_SV("the message names no recipient and setting 'phone_numbers' is empty: nobody to text"));
            return -1;
        }
        memcpy(out, in->phones, (size_t)in->phone_count * sizeof *out);
        n = in->phone_count;
    }
    if (mixed(out, n)) {
        h->set_reason(ex, HK_SV("the recipients mix mainland China (+86) and other numbers, which one SendSms request cannot carry: "
                                "use one integration per template"));
        return -1;
    }
    if (tc_phone_mainland(&out[0]) && in->sign_name.len == 0) {
        h->set_reason(ex, HK_SV("setting 'sign_name' is required to text mainland China (+86) numbers"));
        return -1;
    }
    return n;
}

/* Sends SendSms to every number without progress. */
static int32_t send_pending(const instance *in, const herald_message *m, const tc_phone *nums, int n, const tc_progress *pg,
                            herald_exchange *ex, uint64_t tag) {
    const herald_host_api *h = in->host;
    hk_buf b = {0};
    int first = 1;
    hk_buf_lit(&b, "{\"PhoneNumberSet\":[");
    for (int i = 0; i < n; i++) {
        if (tc_progress_find(pg, nums[i].e164, NULL, 0)) continue;
        if (!first) hk_buf_lit(&b, ",");
        hk_buf_json(&b, h, HK_VIEW(nums[i].e164, strlen(nums[i].e164)));
        first = 0;
    }
    hk_buf_lit(&b, "],\"SmsSdkAppId\":");
    hk_buf_json(&b, h, HK_VIEW(in->app_id.p, in->app_id.len));
    hk_buf_lit(&b, ",\"TemplateId\":");
    hk_buf_json(&b, h, HK_VIEW(in->template_id.p, in->template_id.len));
    if (in->sign_name.len > 0) {
        hk_buf_lit(&b, ",\"SignName\":");
        hk_buf_json(&b, h, HK_VIEW(in->sign_name.p, in->sign_name.len));
    }
    hk_buf_lit(&b, ",\"TemplateParamSet\":[");
    size_t chars = 0;
    for (int i = 0; i < in->param_count; i++) {
        if (i) hk_buf_lit(&b, ",");
        tc_put_param(&b, h, m, &in->params[i], in->param_chars, &chars);
    }
    hk_buf_lit(&b, "]");
    if (in->sender_id.len > 0) {
        hk_buf_lit(&b, ",\"SenderId\":");
        hk_buf_json(&b, h, HK_VIEW(in->sender_id.p, in->sender_id.len));
    }
    hk_buf_lit(&b, ",\"SessionContext\":");
    hk_buf_json(&b, h, m->idempotency_key);
    hk_buf_lit(&b, "}");
    return tc_send(&in->api, ex, &b, tag);
}

/* ---- finishing ------------------------------------------------------------------------------- */

/* Appends "; " (unless first) and a C string to a fixed buffer, cutting at the end. */
static void put(char *out, size_t cap, size_t *len, const char *s) {
    int w = snprintf(out + *len, cap - *len, "%s", s);
    if (w > 0) *len += (size_t)w < cap - *len ? (size_t)w : cap - *len - 1;
}

/* DELIVERED when every number is done and OK; FAILED naming the refused ones; RETRY naming the
 * ones still pending (`pending_codes[i]` holds their code, "" when not tried). */
static int32_t finish(const instance *in, const tc_phone *nums, int n, const tc_progress *pg, char (*pending_codes)[120], uint64_t retry_ms,
                      herald_exchange *ex) {
    const herald_host_api *h = in->host;
    char ids[4096] = "", refused[3000] = "", waiting[3000] = "", msg[6400];
    size_t ids_len = 0, refused_len = 0, waiting_len = 0;
    int ok = 0, failed = 0, pending = 0;
    for (int i = 0; i < n; i++) {
        char val[320], masked[40], line[420];
        char state = tc_progress_find(pg, nums[i].e164, val, sizeof val);
        tc_phone_masked(&nums[i], masked, sizeof masked);
        if (state == 'o') {
            ok++;
            if (ids_len) put(ids, sizeof ids, &ids_len, ",");
            put(ids, sizeof ids, &ids_len, val);
        } else if (state == 'f') {
            snprintf(line, sizeof line, "%s%s (%s)", failed ? "; " : "", masked, val);
            put(refused, sizeof refused, &refused_len, line);
            failed++;
        } else {
            snprintf(line, sizeof line, "%s%s (%s)", pending ? "; " : "", masked,
                     pending_codes && pending_codes[i][0] ? pending_codes[i] : "not sent yet");
            put(waiting, sizeof waiting, &waiting_len, line);
            pending++;
        }
    }
    if (pending > 0) {
        snprintf(msg, sizeof msg, "Tencent Cloud could not text %d of %d number%s yet: %s; a retry texts only those%s%s", pending, n,
                 n == 1 ? "" : "s", waiting, failed ? ". Refused for good: " : "", failed ? refused : "");
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        if (retry_ms) h->set_retry_after(ex, retry_ms);
        return HERALD_OUTCOME_RETRY;
    }
    if (failed == 0) {
        h->set_provider_id(ex, HK_VIEW(ids, ids_len));
        return HERALD_OUTCOME_DELIVERED;
    }
    if (ok > 0)
        snprintf(msg, sizeof msg, "Tencent Cloud refused %d of %d numbers: %s; the other %d got the SMS", failed, n, refused, ok);
    else if (n == 1)
        snprintf(msg, sizeof msg, "Tencent Cloud refused the SMS to %s", refused);
    else
        snprintf(msg, sizeof msg, "Tencent Cloud refused all %d numbers: %s", n, refused);
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return HERALD_OUTCOME_FAILED;
}

/* ---- hooks ----------------------------------------------------------------------------------- */

static int32_t sms_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!tc_message_ok(h, m, ex)) return HERALD_OUTCOME_FAILED;
    tc_phone *nums = malloc(TC_MAX_NUMBERS * sizeof *nums);
    tc_progress *pg = malloc(sizeof *pg);
    int32_t out;
    if (!nums || !pg) {
        out = hk_host_failure(h, ex, HK_NO_MEMORY, "preparing the SMS");
        goto done;
    }
    int n = delivery_numbers(in, m, nums, ex);
    if (n < 0) {
        out = HERALD_OUTCOME_FAILED;
        goto done;
    }
    tc_progress_load(h, PROGRESS_PREFIX, m, pg);
    int pending = 0;
    for (int i = 0; i < n; i++) pending += !tc_progress_find(pg, nums[i].e164, NULL, 0);
    /* A retry after every number was done (the outcome got lost): report, send nothing. */
    out = pending ? send_pending(in, m, nums, n, pg, ex, 0) : finish(in, nums, n, pg, NULL, 0, ex);
done:
    free(nums);
    free(pg);
    return out;
}

/* A request-level Error: classify the code. */
static int32_t request_error(const instance *in, const herald_message *m, const herald_response *r, const tc_answer *a, const tc_phone *nums,
                             int n, const tc_progress *pg, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    const tc_rule *rule = tc_find_rule(sms_rules, SMS_RULES, a->code);
    char msg[1000];
    const char *words = a->message[0] ? a->message : "no message";
    if (rule && rule->cls == TC_CLOCK) {
        if (!(r->tag & TAG_RESIGNED) && tc_learn_clock(h, r)) return send_pending(in, m, nums, n, pg, ex, TAG_RESIGNED);
        snprintf(msg, sizeof msg, "Tencent Cloud refused the request's time (%s: %s): %s; Herald retries later", a->code, words, rule->hint);
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        return HERALD_OUTCOME_RETRY;
    }
    if (rule && (rule->cls == TC_RETRY || rule->cls == TC_NUMBER_RETRY)) {
        snprintf(msg, sizeof msg, "Tencent Cloud is busy or throttling (%s: %s, RequestId %s); Herald retries later", a->code, words,
                 a->request_id[0] ? a->request_id : "none");
        h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
        if (rule->cls == TC_NUMBER_RETRY) h->set_retry_after(ex, 30000);
        return HERALD_OUTCOME_RETRY;
    }
    if (rule)
        snprintf(msg, sizeof msg, "Tencent Cloud refused the SMS (%s: %s)%s%s", a->code, words, rule->hint ? ": " : "", rule->hint ? rule->hint : "");
    else
        snprintf(msg, sizeof msg, "Tencent Cloud answered error code %s (%s, RequestId %s), which the tencent-sms plugin does not know: not sent",
                 a->code, words, a->request_id[0] ? a->request_id : "none");
    h->set_reason(ex, HK_VIEW(msg, strlen(msg)));
    return HERALD_OUTCOME_FAILED;
}

static int32_t sms_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!tc_message_ok(h, m, ex)) return HERALD_OUTCOME_FAILED;
    if (r == NULL || !HERALD_HAS_FIELD(herald_response, body_truncated, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    if (r->tag > TAG_RESIGNED) {
        h->set_reason(ex, HK_SV("the host answered a request the tencent-sms plugin did not make (unknown tag)"));
        return HERALD_OUTCOME_FAILED;
    }
    tc_answer a;
    tc_read_answer(r, &a);
    if (!a.ok) return tc_not_an_answer(h, r, ex);

    tc_phone *nums = malloc(TC_MAX_NUMBERS * sizeof *nums);
    tc_progress *pg = malloc(sizeof *pg);
    char (*codes)[120] = calloc(TC_MAX_NUMBERS, sizeof *codes);
    int32_t out;
    if (!nums || !pg || !codes) {
        out = hk_host_failure(h, ex, HK_NO_MEMORY, "reading Tencent's answer");
        goto done;
    }
    int n = delivery_numbers(in, m, nums, ex);
    if (n < 0) {
        out = HERALD_OUTCOME_FAILED;
        goto done;
    }
    tc_progress_load(h, PROGRESS_PREFIX, m, pg);
    if (a.has_error) {
        out = request_error(in, m, r, &a, nums, n, pg, ex);
        goto done;
    }
    tc_js set;
    if (!tc_j_get(a.response, "SendStatusSet", &set) || *set.p != '[') {
        out = tc_not_an_answer(h, r, ex);
        goto done;
    }
    /* Match each number that was sent to its entry. */
    uint64_t retry_ms = 0;
    for (int i = 0; i < n; i++) {
        if (tc_progress_find(pg, nums[i].e164, NULL, 0)) continue;
        const char *cur = NULL;
        tc_js item;
        int found = 0;
        while (!found && tc_j_next(set, &cur, &item)) {
            char phone[40];
            if (!tc_j_text(item, "PhoneNumber", phone, sizeof phone)) continue;
            tc_phone p;
            if (!tc_phone_normalize(HK_VIEW(phone, strlen(phone)), &p) || strcmp(p.e164, nums[i].e164) != 0) continue;
            found = 1;
            char code[96], raw[300], words[300], serial[100];
            tc_j_text(item, "Code", code, sizeof code);
            if (strcmp(code, "Ok") == 0) {
                if (!tc_j_text(item, "SerialNo", serial, sizeof serial) || !serial[0]) snprintf(serial, sizeof serial, "%s", a.request_id);
                tc_progress_add(pg, nums[i].e164, 'o', serial);
                continue;
            }
            tc_j_text(item, "Message", raw, sizeof raw);
            tc_mask(raw, words, sizeof words);
            const tc_rule *rule = tc_find_rule(sms_rules, SMS_RULES, code);
            int cls = rule ? rule->cls : 0;
            char val[420];
            if (cls == TC_RETRY || cls == TC_NUMBER_RETRY || cls == TC_CLOCK) {
                snprintf(codes[i], sizeof codes[i], "%.80s", code[0] ? code : "no code");
                if (cls == TC_NUMBER_RETRY) retry_ms = 30000;
                continue;
            }
            if (rule)
                snprintf(val, sizeof val, "%s: %.120s%s%s", code, words[0] ? words : "no message", rule->hint ? " - " : "", rule->hint ? rule->hint : "");
            else
                snprintf(val, sizeof val, "%s: %.120s - a code the plugin does not know", code[0] ? code : "no code", words[0] ? words : "no message");
            tc_progress_add(pg, nums[i].e164, 'f', val);
        }
        if (!found) tc_progress_add(pg, nums[i].e164, 'f', "Tencent's answer has no result for this number");
    }
    tc_progress_save(h, PROGRESS_PREFIX, m, pg);
    out = finish(in, nums, n, pg, codes, retry_ms, ex);
done:
    free(nums);
    free(pg);
    free(codes);
    return out;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"secret_id\",\"secret_key\",\"sdk_app_id\",\"template_id\"],"
    "\"examples\":[{\"secret_id\":\"AKIDexampleexampleexample\",\"secret_key\":\"exampleSecretKeyexampleSecretKey\",\"sdk_app_id\":\"1400006666\","
    "\"sign_name\":\"Herald\",\"template_id\":\"449739\",\"template_params\":[\"title\",\"severity\",\"incident_number\"],"
    "\"phone_numbers\":[\"+8613800000000\"]}],"
    "\"properties\":{"
    "\"secret_id\":{\"type\":\"string\",\"minLength\":8,\"maxLength\":128,\"pattern\":\"^[!-~]+$\",\"title\":\"SecretId\","
    "\"description\":\"SecretId of a CAM API key allowed to call sms:SendSms.\",\"examples\":[\"AKIDexampleexampleexample\"]},"
    "\"secret_key\":{\"type\":\"string\",\"minLength\":8,\"maxLength\":128,\"pattern\":\"^[!-~]+$\",\"writeOnly\":true,\"title\":\"SecretKey\","
    "\"description\":\"SecretKey of the same API key.\",\"examples\":[\"exampleSecretKeyexampleSecretKey\"]},"
    "\"sdk_app_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{1,20}$\",\"title\":\"SDK AppID\","
    "\"description\":\"The SMS application's SDK AppID (SmsSdkAppId).\",\"examples\":[\"1400006666\"]},"
    "\"sign_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":120,\"title\":\"Signature\","
    "\"description\":\"The approved signature's text (SignName); required for mainland China numbers.\",\"examples\":[\"Herald\"]},"
    "\"template_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{1,20}$\",\"title\":\"Template ID\","
    "\"description\":\"The approved body template's ID.\",\"examples\":[\"449739\"]},"
    "\"template_params\":{\"type\":\"array\",\"maxItems\":16,\"items\":" TC_PARAM_ITEM_SCHEMA ","
    "\"title\":\"Template variables\",\"description\":\"The message field for each template variable {1}, {2}..., in order: title, body, "
    "severity, status, incident_number, incident_id, event, alert_count or label:<name>.\","
    "\"examples\":[[\"title\",\"severity\",\"incident_number\"]]},"
    "\"param_max_chars\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":500,\"default\":6,\"title\":\"Characters per variable\","
    "\"description\":\"Each variable is cut to this many characters (Tencent's default limit for new accounts is 6).\"},"
    "\"phone_numbers\":{\"type\":\"array\",\"maxItems\":200,\"items\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9 ()-]{7,24}$\"},"
    "\"title\":\"Default numbers\",\"description\":\"E.164 numbers texted when the message names no recipient (all +86, or none).\","
    "\"examples\":[[\"+8613800000000\"]]},"
    "\"sender_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"title\":\"Sender ID\","
    "\"description\":\"International SMS only: an approved Sender ID.\"},"
    "\"endpoint\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://[^/?#]+/?$\",\"default\":\"https://sms.tencentcloudapi.com\","
    "\"title\":\"API endpoint\",\"description\":\"e.g. https://sms.ap-guangzhou.tencentcloudapi.com, or a test double.\"},"
    "\"region\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{1,40}$\",\"default\":\"ap-guangzhou\",\"title\":\"Region\","
    "\"description\":\"X-TC-Region: ap-guangzhou, ap-beijing, ap-nanjing (mainland) or ap-singapore... (international).\"},"
    "\"language\":{\"type\":\"string\",\"enum\":[\"zh-CN\",\"en-US\"],\"title\":\"Error message language\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("sms.tencentcloudapi.com"), HK_LIT("*.tencentcloudapi.com"), HK_LIT("config:endpoint")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_SMS,
    .id = HK_LIT("tencent-sms"),
    .name = HK_LIT("Tencent Cloud SMS"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    .size_limit = BODY_LIMIT,
    /* The instance is read-only after create; progress lives in the host's store. */
    .capabilities = HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = HK_LIT("{{description}}"),
    .instance_create = sms_create,
    .instance_destroy = sms_destroy,
    .prepare = sms_prepare,
    .on_response = sms_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "tencent-sms");
}
