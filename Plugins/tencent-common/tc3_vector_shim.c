/*
 * tc3_vector_shim.c — a test-only plugin around tc3.h, so Tests/HeraldCoreTests/
 * TencentSignatureVectorTests.swift can run Tencent's published TC3 test vectors through the
 * plugins' own signing code and the host's crypto. Not shipped: this folder has no manifest.json,
 * and the test compiles this file itself.
 *
 * Config: secret_id, secret_key, service, host, content_type, timestamp (string), action
 * (optional: also sign x-tc-action). Admin action "sign" with the payload as its input answers
 * {"authorization": "...", "string_to_sign": "..."}.
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include "tc3.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const herald_host_api *host;
} shim;

static int read_nothing(shim *s, char *err) {
    (void)s;
    (void)err;
    return 0;
}

static void shim_free(shim *s) { free(s); }

HK_INSTANCE_CREATE(shim_create, shim, "tc3-vector-shim", read_nothing, shim_free)

static void shim_destroy(void *p) { free(p); }

static int32_t shim_prepare(void *p, const herald_message *m, herald_exchange *ex) {
    shim *s = p;
    (void)m;
    s->host->set_reason(ex, HK_SV("the tc3 vector shim sends nothing"));
    return HERALD_OUTCOME_FAILED;
}

static int32_t shim_on_response(void *p, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    (void)r;
    return shim_prepare(p, m, ex);
}

static int32_t shim_action(void *p, herald_str action, herald_str input, const herald_response *r, herald_exchange *ex) {
    shim *s = p;
    const herald_host_api *h = s->host;
    (void)r;
    if (!hk_str_eq(action, "sign")) {
        h->set_reason(ex, HK_SV("only the sign action"));
        return HERALD_OUTCOME_FAILED;
    }
    hk_ostr id = {0}, key = {0}, service = {0}, host = {0}, ct = {0}, ts = {0}, act = {0};
    char err[HK_ERR_BYTES];
    hk_read_opt(h, "secret_id", &id, err);
    hk_read_opt(h, "secret_key", &key, err);
    hk_read_opt(h, "service", &service, err);
    hk_read_opt(h, "host", &host, err);
    hk_read_opt(h, "content_type", &ct, err);
    hk_read_opt(h, "timestamp", &ts, err);
    hk_read_opt(h, "action", &act, err);
    tc3_input in = {
        .secret_id = HK_VIEW(id.p, id.len),
        .secret_key = HK_VIEW(key.p, key.len),
        .service = HK_VIEW(service.p, service.len),
        .host = HK_VIEW(host.p, host.len),
        .content_type = HK_VIEW(ct.p, ct.len),
        .payload = input,
        .timestamp = ts.p ? strtoll(ts.p, NULL, 10) : 0,
        .action = HK_VIEW(act.p, act.len),
    };
    char auth[TC3_AUTH_BYTES], sts[256] = "";
    int32_t st = tc3_authorization(h, &in, auth, sts, sizeof sts);
    hk_ostr_free(&id, 0);
    hk_ostr_free(&key, 1);
    hk_ostr_free(&service, 0);
    hk_ostr_free(&host, 0);
    hk_ostr_free(&ct, 0);
    hk_ostr_free(&ts, 0);
    hk_ostr_free(&act, 0);
    if (st != HERALD_OK) return hk_host_failure(h, ex, st, "signing");
    hk_buf b = {0};
    hk_buf_lit(&b, "{\"authorization\":");
    hk_buf_json(&b, h, HK_VIEW(auth, strlen(auth)));
    hk_buf_lit(&b, ",\"string_to_sign\":");
    hk_buf_json(&b, h, HK_VIEW(sts, strlen(sts)));
    hk_buf_lit(&b, "}");
    h->set_output(ex, HK_VIEW(b.p, b.len));
    hk_buf_free(&b);
    return HERALD_OUTCOME_DELIVERED;
}

static const char schema[] = "{\"type\":\"object\"}";
static const herald_str egress[] = {HK_LIT("invalid.invalid")};

static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_WEBHOOK,
    .id = HK_LIT("tc3-vector-shim"),
    .name = HK_LIT("TC3 vector shim"),
    .version = HK_LIT("0.0.1"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_PLAIN,
    .size_unit = HERALD_SIZE_BYTES,
    .capabilities = HERALD_CAP_ADMIN_ACTIONS,
    .config_schema_json = {schema, sizeof schema - 1},
    .egress_hosts = egress,
    .egress_host_count = 1,
    .instance_create = shim_create,
    .instance_destroy = shim_destroy,
    .prepare = shim_prepare,
    .on_response = shim_on_response,
    .invoke_action = shim_action,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "tc3-vector-shim");
}
