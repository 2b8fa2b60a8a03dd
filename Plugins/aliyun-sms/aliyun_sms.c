/*
 * aliyun_sms.c — Herald's Alibaba Cloud SMS channel (Dysmsapi 2017-05-25, SendSms).
 *
 * One SendSms call per notification: PhoneNumbers (the message's recipient or the configured
 * default), SignName, TemplateCode and TemplateParam, a JSON object whose string values come
 * from message fields as `template_params` maps them (cleaned and cut to the per-variable
 * limit). The request is an RPC call, POST https://dysmsapi.aliyuncs.com/?<params> with an empty
 * body, signed with ACS3-HMAC-SHA256 (V3) by default or the legacy HMAC-SHA1 (V2). `Code: "OK"`
 * is success and `BizId` the provider id; other codes are sorted into retry-later and permanent
 * (aliyun_openapi.h). Phone numbers and keys appear in reasons and logs only masked.
 *
 * Sans-I/O like every Herald plugin; pure C11 + libc; the only exported symbol is
 * herald_plugin_entry_v1. See README.md.
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include "../aliyun-common/aliyun_openapi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEFAULT_PARAM_CHARS = 35,   /* Alibaba's per-variable limit for ordinary ("其他") variables */
    MAX_PARAM_CHARS = 500,
    SENT_TTL_MS = 86400000      /* how long a delivered idempotency key is remembered */
};

typedef struct {
    const herald_host_api *host; /* borrowed until instance_destroy */
    aa_client client;
    hk_ostr sign_name, template_code, default_recipient, region_id;
    aa_vars vars;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    aa_client_free(&in->client);
    hk_ostr_free(&in->sign_name, 0);
    hk_ostr_free(&in->template_code, 0);
    hk_ostr_free(&in->default_recipient, 0);
    hk_ostr_free(&in->region_id, 0);
    free(in);
}

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"access_key_id", "access_key_secret", "endpoint", "signature_version", "sign_name",
                                        "template_code", "template_params", "param_max_chars", "default_recipient", "region_id"};
    const herald_host_api *h = in->host;
    int got;
    in->client.api_version = "2017-05-25";
    in->client.product = "SMS";
    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "aliyun-sms", err) != 0) return -1;
    if (aa_client_read(h, &in->client, "dysmsapi.aliyuncs.com", err) != 0) return -1;
    if ((got = hk_read_opt(h, "sign_name", &in->sign_name, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'sign_name' is required: the approved signature (签名) text, e.g. 阿里云短信测试");
        return -1;
    }
    if (in->sign_name.len == 0 || in->sign_name.len > 120) return hk_fail(err, "setting 'sign_name' must be 1 to 120 bytes");
    if ((got = hk_read_opt(h, "template_code", &in->template_code, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'template_code' is required: the approved template's code, e.g. SMS_123456789");
        return -1;
    }
    if (in->template_code.len < 5 || in->template_code.len > 64 || !hk_is_token_text(&in->template_code))
        return hk_fail(err, "setting 'template_code' must look like SMS_123456789");
    if ((got = hk_read_opt(h, "default_recipient", &in->default_recipient, err)) < 0) return -1;
    if (got == 1) {
        char clean[32];
        if (!aa_clean_number(HK_VIEW(in->default_recipient.p, in->default_recipient.len), clean, sizeof clean))
            return hk_fail(err, "setting 'default_recipient' must be a phone number: 11 digits for mainland China, or country code and number");
    }
    if ((got = hk_read_opt(h, "region_id", &in->region_id, err)) < 0) return -1;
    if (got == 1 && (in->region_id.len == 0 || in->region_id.len > 40 || !hk_is_token_text(&in->region_id)))
        return hk_fail(err, "setting 'region_id' must be a region id such as cn-hangzhou");
    if (aa_vars_read(h, &in->vars, 1, DEFAULT_PARAM_CHARS, MAX_PARAM_CHARS, err) != 0) return -1;
    return 0;
}

HK_INSTANCE_CREATE(sms_create, instance, "aliyun-sms", read_config, instance_free)

static void sms_destroy(void *inst) { instance_free(inst); }

/* The destination: the message's recipient, else the configured default; cleaned. */
static int recipient(const instance *in, const herald_message *m, char *out, size_t cap, herald_exchange *ex) {
    const herald_host_api *h = in->host;
    herald_str r = m->recipient.len ? m->recipient : HK_VIEW(in->default_recipient.p, in->default_recipient.len);
    if (!r.ptr || r.len == 0) {
        h->set_reason(ex, HK_SV("no phone number: the message names no recipient and setting 'default_recipient' is not set"));
        return 0;
    }
    if (!aa_clean_number(r, out, cap)) {
        char masked[64], reason[200];
        aa_quote_recipient(r, masked, sizeof masked);
        snprintf(reason, sizeof reason, "the recipient \"%s\" is not a phone number (an optional + and 5 to 20 digits)", masked);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return 0;
    }
    return 1;
}

static int32_t sms_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    /* SendSms has no idempotency key: a retry after a lost answer could send twice. A message
     * already accepted under this idempotency key is not sent again. */
    char key[256], biz[160];
    size_t got = 0;
    if (m->idempotency_key.len > 0 && h->kv_get(HK_VIEW(key, aa_sent_key(m, key, sizeof key)), (uint8_t *)biz, sizeof biz - 1, &got) == HERALD_OK) {
        h->set_provider_id(ex, HK_VIEW(biz, got));
        return HERALD_OUTCOME_DELIVERED;
    }
    char phone[32];
    if (!recipient(in, m, phone, sizeof phone, ex)) return HERALD_OUTCOME_FAILED;
    hk_buf params = {0};
    aa_vars_json(&params, h, &in->vars, m, in->vars.max_chars);
    if (params.failed) {
        int32_t f = params.failed;
        hk_buf_free(&params);
        return hk_host_failure(h, ex, f, "building TemplateParam");
    }
    aa_params ps;
    ps.n = 0;
    aa_add_c(&ps, "PhoneNumbers", phone);
    aa_add(&ps, "SignName", HK_VIEW(in->sign_name.p, in->sign_name.len));
    aa_add(&ps, "TemplateCode", HK_VIEW(in->template_code.p, in->template_code.len));
    if (in->vars.n > 0) aa_add(&ps, "TemplateParam", HK_VIEW(params.p, params.len));
    if (in->region_id.len) aa_add(&ps, "RegionId", HK_VIEW(in->region_id.p, in->region_id.len));
    int32_t rc = aa_request(h, ex, &in->client, "SendSms", &ps, AA_TAG_FIRST);
    hk_buf_free(&params);
    return rc;
}

static int32_t sms_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    aa_answer a;
    aa_read_answer(r, "BizId", &a);
    if (r->status >= 200 && r->status <= 299 && a.has_code && strcmp(a.code, "OK") == 0) {
        char key[256];
        const char *id = a.id[0] ? a.id : a.request_id;
        if (m->idempotency_key.len > 0) h->kv_set(HK_VIEW(key, aa_sent_key(m, key, sizeof key)), HK_VIEW(id, strlen(id)), SENT_TTL_MS);
        h->set_provider_id(ex, HK_VIEW(id, strlen(id)));
        return HERALD_OUTCOME_DELIVERED;
    }
    uint64_t retry_ms = 0;
    aa_verdict v = aa_classify(h, ex, &in->client, r, &a, &retry_ms);
    if (v == AA_RESIGN) {
        if (r->tag != AA_TAG_RESIGNED) {
            char line[160];
            int learned = strcmp(a.code, "InvalidTimeStamp.Expired") == 0 && aa_learn_clock(h, r);
            snprintf(line, sizeof line, "Alibaba Cloud refused the request with %s; signing it again%s", a.code,
                     learned ? " on Alibaba Cloud's clock (from its Date header)" : " with a new nonce");
            h->log(HERALD_LOG_WARNING, HK_VIEW(line, strlen(line)));
            char phone[32];
            if (!recipient(in, m, phone, sizeof phone, ex)) return HERALD_OUTCOME_FAILED;
            hk_buf params = {0};
            aa_vars_json(&params, h, &in->vars, m, in->vars.max_chars);
            aa_params ps;
            ps.n = 0;
            aa_add_c(&ps, "PhoneNumbers", phone);
            aa_add(&ps, "SignName", HK_VIEW(in->sign_name.p, in->sign_name.len));
            aa_add(&ps, "TemplateCode", HK_VIEW(in->template_code.p, in->template_code.len));
            if (in->vars.n > 0) aa_add(&ps, "TemplateParam", HK_VIEW(params.p, params.len));
            if (in->region_id.len) aa_add(&ps, "RegionId", HK_VIEW(in->region_id.p, in->region_id.len));
            int32_t rc = params.failed ? hk_host_failure(h, ex, params.failed, "building TemplateParam")
                                       : aa_request(h, ex, &in->client, "SendSms", &ps, AA_TAG_RESIGNED);
            hk_buf_free(&params);
            return rc;
        }
        v = AA_RETRY;
    }
    if (v == AA_RETRY) {
        if (retry_ms) h->set_retry_after(ex, retry_ms);
        return HERALD_OUTCOME_RETRY;
    }
    return HERALD_OUTCOME_FAILED;
}

static int32_t sms_invoke_action(void *inst, herald_str action, herald_str input, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    (void)r;
    if (hk_str_eq(action, "explain-signature")) return aa_explain_signature(in->host, input, ex);
    in->host->set_reason(ex, HK_SV("unknown action: the aliyun-sms plugin has only explain-signature"));
    return HERALD_OUTCOME_FAILED;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

#define FIELD_PATTERN "^(title|body|severity|status|event|incident_number|incident_id|alert_count|view_link|ack_link|label:.+)$"

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"access_key_id\",\"access_key_secret\",\"sign_name\",\"template_code\"],"
    "\"examples\":[{\"access_key_id\":\"LTAI5tExampleKeyId\",\"access_key_secret\":\"ExampleSecret\",\"sign_name\":\"Herald\","
    "\"template_code\":\"SMS_123456789\",\"template_params\":{\"title\":\"title\",\"sev\":\"severity\",\"no\":\"incident_number\"},"
    "\"default_recipient\":\"13800000000\"}],"
    "\"properties\":{"
    "\"access_key_id\":{\"type\":\"string\",\"minLength\":4,\"maxLength\":128,\"title\":\"AccessKey ID\","
    "\"description\":\"AccessKey ID of a RAM user allowed to call dysms:SendSms.\"},"
    "\"access_key_secret\":{\"type\":\"string\",\"minLength\":4,\"maxLength\":256,\"writeOnly\":true,\"title\":\"AccessKey secret\"},"
    "\"endpoint\":{\"type\":\"string\",\"format\":\"uri\",\"pattern\":\"^https?://[^/?#@]+/?$\",\"default\":\"https://dysmsapi.aliyuncs.com\","
    "\"title\":\"Endpoint\",\"description\":\"https://dysmsapi.aliyuncs.com (mainland), https://dysmsapi.ap-southeast-1.aliyuncs.com (international); tests point it at a local mock.\"},"
    "\"signature_version\":{\"type\":\"string\",\"enum\":[\"v3\",\"v2\"],\"default\":\"v3\","
    "\"description\":\"v3: ACS3-HMAC-SHA256 (what current SDKs send); v2: the legacy HMAC-SHA1 RPC signature.\"},"
    "\"sign_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":120,\"title\":\"Sign name\",\"description\":\"The approved signature (签名) text.\"},"
    "\"template_code\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_]{5,64}$\",\"title\":\"Template code\",\"description\":\"The approved template's code, e.g. SMS_123456789.\"},"
    "\"template_params\":{\"type\":\"object\",\"default\":{},\"title\":\"Template variables\","
    "\"description\":\"Template variable name -> message field: title, body, severity, status, event, incident_number, incident_id, alert_count, view_link, ack_link or label:<name>.\","
    "\"additionalProperties\":{\"type\":\"string\",\"pattern\":\"" FIELD_PATTERN "\"}},"
    "\"param_max_chars\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":500,\"default\":35,"
    "\"description\":\"Characters kept per variable value (longer ones are cut and end with …).\"},"
    "\"default_recipient\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9 ()-]{5,30}$\",\"description\":\"Phone number used when a message names no recipient.\"},"
    "\"region_id\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{1,40}$\",\"description\":\"Optional RegionId parameter, e.g. cn-hangzhou.\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("dysmsapi.aliyuncs.com"), HK_LIT("config:endpoint")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_SMS,
    .id = HK_LIT("aliyun-sms"),
    .name = HK_LIT("Alibaba Cloud SMS"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_CHARACTERS,
    /* No variable carries more than param_max_chars (at most 500); the plugin cuts each value. */
    .size_limit = 500,
    .capabilities = HERALD_CAP_ADMIN_ACTIONS | HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    .default_template = HK_LIT("{{description}}"),
    .instance_create = sms_create,
    .instance_destroy = sms_destroy,
    .prepare = sms_prepare,
    .on_response = sms_on_response,
    .parse_callback = NULL,
    .invoke_action = sms_invoke_action,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "aliyun-sms");
}
