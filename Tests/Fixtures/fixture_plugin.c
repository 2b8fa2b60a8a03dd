/*
 * One fixture plugin, many variants. Tests compile this file with -D flags to produce each kind
 * of plugin the loader must refuse, plus a well-behaved one that exercises every host function.
 *
 *   (no flag)               a good plugin: id "fixture"
 *   FIXTURE_NO_ENTRY        exports no herald_plugin_entry_v1
 *   FIXTURE_WRONG_MAJOR     exports herald_plugin_entry_v2 only
 *   FIXTURE_REFUSE          the entry declines the host
 *   FIXTURE_NULL_HOOK       `prepare` is NULL
 *   FIXTURE_SMALL_STRUCT    struct_size from an "older header" that lacks fields
 *   FIXTURE_BAD_VERSION     version is not semver
 *   FIXTURE_BAD_SCHEMA      config schema uses an unsupported keyword
 *   FIXTURE_BAD_CAPS        claims inbound callbacks but has no parse_callback
 *   FIXTURE_CREATE_FAILS    instance_create fails with a message
 *   FIXTURE_NEWER_MINOR     built against "minor 7" with a larger descriptor
 *   FIXTURE_CONCURRENT      declares HERALD_CAP_CONCURRENT_CALLS
 *   FIXTURE_NEEDS_LIB       calls a function from libfixturedep.so (tests delete it)
 *   FIXTURE_ID=\"name\"     overrides the id (for duplicate/mismatch tests)
 */
#define _POSIX_C_SOURCE 200809L
#include "herald/plugin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FIXTURE_ID
#define FIXTURE_ID "fixture"
#endif
#ifdef FIXTURE_BAD_VERSION
#define FIXTURE_VERSION "1.0"
#else
#define FIXTURE_VERSION "1.2.3"
#endif

#define S(literal) ((herald_str){literal, sizeof(literal) - 1})

typedef struct {
    const herald_host_api *host;
    char url[512];
    char token[128];
} instance;

static atomic_int inside_prepare;
static atomic_int max_inside_prepare;

/* ---- tiny helpers ---------------------------------------------------------------------------- */

static herald_str cstr(const char *s) { return (herald_str){s, strlen(s)}; }

static int str_eq(herald_str a, const char *b) { return a.len == strlen(b) && (a.len == 0 || memcmp(a.ptr, b, a.len) == 0); }

/* Finds "key":"value" in flat JSON text (the fixture controls its own config). */
static void json_field(herald_str json, const char *key, char *out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    out[0] = 0;
    char *text = calloc(1, json.len + 1);
    if (json.len) memcpy(text, json.ptr, json.len);
    char *at = strstr(text, pattern);
    if (at) {
        at += strlen(pattern);
        size_t n = 0;
        while (at[n] && at[n] != '"' && n + 1 < cap) { out[n] = at[n]; n++; }
        out[n] = 0;
    }
    free(text);
}

static void hex(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) { out[2 * i] = digits[in[i] >> 4]; out[2 * i + 1] = digits[in[i] & 15]; }
    out[2 * n] = 0;
}

/* A GET of the configured URL, as the next step of a flow. */
static int32_t get(const instance *self, herald_exchange *ex, uint64_t tag) {
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = S("GET");
    req.url = cstr(self->url);
    req.tag = tag;
    self->host->set_request(ex, &req);
    return HERALD_OUTCOME_REQUEST;
}

/* ---- hooks ------------------------------------------------------------------------------------ */

static int32_t create(const herald_host_api *host, herald_str config, void **out) {
#ifdef FIXTURE_CREATE_FAILS
    (void)config; (void)out; (void)json_field;
    host->set_error(S("setting 'url' points at a host the fixture refuses"));
    return 7;
#else
    instance *self = calloc(1, sizeof *self);
    if (!self) return 1;
    self->host = host;
    json_field(config, "url", self->url, sizeof self->url);
    json_field(config, "token", self->token, sizeof self->token);
    host->log(HERALD_LOG_DEBUG, S("fixture instance created"));
    *out = self;
    return 0;
#endif
}

static void destroy(void *p) { free(p); }

static int32_t prepare(void *p, const herald_message *m, herald_exchange *ex) {
    instance *self = p;
    const herald_host_api *h = self->host;
    int now = atomic_fetch_add(&inside_prepare, 1) + 1;
    int seen = atomic_load(&max_inside_prepare);
    while (now > seen && !atomic_compare_exchange_weak(&max_inside_prepare, &seen, now)) {}
    if (str_eq(m->title, "slow")) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    atomic_fetch_sub(&inside_prepare, 1);

    if (str_eq(m->title, "fail")) {
        h->set_reason(ex, S("the title says fail"));
        return HERALD_OUTCOME_FAILED;
    }
    if (str_eq(m->title, "bogus")) return 42;
    if (str_eq(m->title, "no-request")) return HERALD_OUTCOME_REQUEST;

    /* body = the title, JSON-escaped, in a JSON object */
    uint8_t escaped[4096];
    size_t elen = 0;
    if (h->json_escape(m->title, escaped, sizeof escaped, &elen) != HERALD_OK) return HERALD_OUTCOME_FAILED;
    char body[5000];
    int blen = snprintf(body, sizeof body, "{\"title\":\"%.*s\",\"labels\":%zu,\"links\":%zu}", (int)elen, (const char *)escaped,
                        m->label_count, m->link_count);
    uint8_t mac[32];
    h->hmac_sha256(S("fixture-key"), (herald_str){body, (size_t)blen}, mac);
    char mac_hex[65];
    hex(mac, 32, mac_hex);

    herald_pair headers[3] = {
        {S("Content-Type"), S("application/json")},
        {S("X-Signature"), cstr(mac_hex)},
        {S("X-Idempotency-Key"), m->idempotency_key},
    };
    if (str_eq(m->title, "header-injection")) headers[1].value = S("a\r\nX-Evil: 1");
    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_HTTP;
    req.method = S("POST");
    req.url = cstr(self->url);
    req.headers = headers;
    req.header_count = 3;
    req.body = (herald_str){body, (size_t)blen};
    req.tag = 1;
    if (h->set_request(ex, &req) != HERALD_OK) {
        /* The fixture still claims a request, so the host must report the plugin bug. */
    }
    return HERALD_OUTCOME_REQUEST;
}

static int32_t on_response(void *p, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *self = p;
    const herald_host_api *h = self->host;
    (void)m;
    if (r->status == 401 && r->tag == 1) {
        /* token refresh, then the real request again */
        return get(self, ex, 2);
    }
    if (r->status >= 200 && r->status < 300) {
        h->set_provider_id(ex, r->body.len ? r->body : S("no-id"));
        return HERALD_OUTCOME_DELIVERED;
    }
    if (r->status == 429) {
        h->set_retry_after(ex, 1500);
        h->set_reason(ex, S("rate limited"));
        return HERALD_OUTCOME_RETRY;
    }
    if (r->status >= 500) {
        h->set_reason(ex, S("server error"));
        return HERALD_OUTCOME_RETRY;
    }
    h->set_reason(ex, S("rejected"));
    return HERALD_OUTCOME_FAILED;
}

static int32_t parse_callback(void *p, const herald_inbound *in, herald_exchange *ex) {
    instance *self = p;
    const herald_host_api *h = self->host;
    int authentic = 0;
    for (size_t i = 0; i < in->header_count; i++)
        if (str_eq(in->headers[i].name, "X-Token") && str_eq(in->headers[i].value, self->token)) authentic = 1;
    if (!authentic) {
        h->set_reason(ex, S("X-Token does not match"));
        return HERALD_OUTCOME_FAILED;
    }
    if (in->body.len > 4 && memcmp(in->body.ptr, "ack:", 4) == 0) {
        herald_action a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.kind = HERALD_ACTION_ACKNOWLEDGE;
        a.incident_id = (herald_str){in->body.ptr + 4, in->body.len - 4};
        a.actor = S("mobile:+8613800000000");
        a.via = S("voice (key 1)");
        h->add_action(ex, &a);
    }
    h->set_reply(ex, 200, S("application/json"), S("{\"result\":0}"));
    return HERALD_OUTCOME_DELIVERED;
}

struct thread_args { const herald_host_api *host; int32_t status; };

static void *from_thread(void *arg) {
    struct thread_args *t = arg;
    t->host->log(HERALD_LOG_INFO, S("hello from a plugin thread"));
    t->status = t->host->kv_set(S("thread"), S("was here"), 0);
    return NULL;
}

static int32_t invoke_action(void *p, herald_str action, herald_str input, const herald_response *r, herald_exchange *ex) {
    instance *self = p;
    const herald_host_api *h = self->host;
    char out[8192];
    if (str_eq(action, "echo")) {
        h->set_output(ex, input);
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "fetch")) {
        if (!r) {
            return get(self, ex, 9);
        }
        int n = snprintf(out, sizeof out, "{\"status\":%d,\"tag\":%llu}", r->status, (unsigned long long)r->tag);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "kv")) {
        /* set, read back with a too-small buffer, then a right-sized one; delete twice */
        int32_t set = h->kv_set(S("k"), input, 0);
        uint8_t tiny[1];
        size_t need = 0;
        int32_t small = h->kv_get(S("k"), tiny, 0, &need);
        uint8_t buf[1024];
        size_t got = 0;
        int32_t get = h->kv_get(S("k"), buf, sizeof buf, &got);
        int32_t del1 = h->kv_delete(S("k"));
        int32_t del2 = h->kv_delete(S("k"));
        int32_t missing = h->kv_get(S("k"), buf, sizeof buf, &got);
        int32_t ttl = h->kv_set(S("short"), S("lived"), 1000);
        int n = snprintf(out, sizeof out,
                         "{\"set\":%d,\"small\":%d,\"need\":%zu,\"get\":%d,\"value\":\"%.*s\",\"del1\":%d,\"del2\":%d,\"missing\":%d,\"ttl\":%d}",
                         set, small, need, get, (int)input.len, (const char *)buf, del1, del2, missing, ttl);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "kv-read")) {
        uint8_t buf[1024];
        size_t got = 0;
        int32_t st = h->kv_get(input, buf, sizeof buf, &got);
        int n = snprintf(out, sizeof out, "{\"status\":%d,\"value\":\"%.*s\"}", st, st == 0 ? (int)got : 0, (const char *)buf);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "crypto")) {
        uint8_t sha1[20], mac[32], digest[32], rnd[16];
        char sha1_hex[41], mac_hex[65], digest_hex[65];
        h->hmac_sha1(S("key"), S("The quick brown fox jumps over the lazy dog"), sha1);
        h->hmac_sha256(S("key"), S("The quick brown fox jumps over the lazy dog"), mac);
        h->sha256(S("abc"), digest);
        int32_t rs = h->random_bytes(rnd, sizeof rnd);
        hex(sha1, 20, sha1_hex);
        hex(mac, 32, mac_hex);
        hex(digest, 32, digest_hex);
        uint8_t b64[64], dec[64], pct[64];
        size_t b64n = 0, decn = 0, pctn = 0;
        h->base64_encode(S("hello?"), b64, sizeof b64, &b64n);
        int32_t badb64 = h->base64_decode(S("!!!"), dec, sizeof dec, &decn);
        h->base64_decode(S("aGVsbG8_"), dec, sizeof dec, &decn); /* URL-safe alphabet: refused */
        int32_t okdec = h->base64_decode(S("aGVsbG8"), dec, sizeof dec, &decn);
        h->percent_encode(S("a b&c=d/é"), pct, sizeof pct, &pctn);
        int64_t now = h->now_unix_ms();
        int n = snprintf(out, sizeof out,
                         "{\"hmac_sha1\":\"%s\",\"hmac_sha256\":\"%s\",\"sha256\":\"%s\",\"random\":%d,\"base64\":\"%.*s\","
                         "\"bad_base64\":%d,\"decoded\":%d,\"decoded_text\":\"%.*s\",\"percent\":\"%.*s\",\"now\":%lld}",
                         sha1_hex, mac_hex, digest_hex, rs, (int)b64n, (const char *)b64, badb64, okdec, (int)decn,
                         (const char *)dec, (int)pctn, (const char *)pct, (long long)now);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "aes")) {
        /* input = key(32) | iv(16) | ciphertext, base64-encoded */
        uint8_t raw[4096], plain[4096];
        size_t rawn = 0, plainn = 0;
        if (h->base64_decode(input, raw, sizeof raw, &rawn) != HERALD_OK || rawn < 64) return HERALD_OUTCOME_FAILED;
        int32_t st = h->aes256_cbc_decrypt((herald_str){(const char *)raw, 32}, (herald_str){(const char *)raw + 32, 16},
                                           (herald_str){(const char *)raw + 48, rawn - 48}, 1, plain, sizeof plain, &plainn);
        int n = snprintf(out, sizeof out, "{\"status\":%d,\"plain\":\"%.*s\"}", st, st == 0 ? (int)plainn : 0, (const char *)plain);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "thread")) {
        struct thread_args t = {h, -99};
        pthread_t thread;
        pthread_create(&thread, NULL, from_thread, &t);
        pthread_join(thread, NULL);
        int n = snprintf(out, sizeof out, "{\"kv_set\":%d}", t.status);
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "config")) {
        uint8_t value[512], escaped[3072];
        size_t n = 0, en = 0;
        int32_t st = h->config_get(input, value, sizeof value, &n);
        if (st != HERALD_OK) n = 0;
        h->json_escape((herald_str){(const char *)value, n}, escaped, sizeof escaped, &en);
        int len = snprintf(out, sizeof out, "{\"status\":%d,\"value\":\"%.*s\"}", st, (int)en, (const char *)escaped);
        h->set_output(ex, (herald_str){out, (size_t)len});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "config-keys")) {
        uint8_t names[512];
        size_t n = 0;
        int32_t st = h->config_keys(input, names, sizeof names, &n);
        for (size_t i = 0; st == HERALD_OK && i < n; i++)
            if (names[i] == 0) names[i] = ',';
        int len = snprintf(out, sizeof out, "{\"status\":%d,\"keys\":\"%.*s\"}", st, st == 0 ? (int)n : 0, (const char *)names);
        h->set_output(ex, (herald_str){out, (size_t)len});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "max-concurrency")) {
        int n = snprintf(out, sizeof out, "{\"max\":%d}", atomic_exchange(&max_inside_prepare, 0));
        h->set_output(ex, (herald_str){out, (size_t)n});
        return HERALD_OUTCOME_DELIVERED;
    }
    if (str_eq(action, "stale-exchange")) {
        static herald_exchange *kept;
        if (kept) {
            int32_t st = h->set_reason(kept, S("late"));
            int n = snprintf(out, sizeof out, "{\"stale\":%d}", st);
            h->set_output(ex, (herald_str){out, (size_t)n});
        } else {
            kept = ex;
            h->set_output(ex, S("{\"kept\":true}"));
        }
        return HERALD_OUTCOME_DELIVERED;
    }
    h->set_reason(ex, S("unknown action"));
    return HERALD_OUTCOME_FAILED;
}

#ifdef FIXTURE_NEEDS_LIB
int fixture_dependency(void);
int fixture_uses_dependency(void) { return fixture_dependency(); }
#endif

/* ---- descriptor ------------------------------------------------------------------------------- */

static const herald_str egress[] = {{"fixture.example.com", 19}, {"config:url", 10}};

#ifdef FIXTURE_BAD_SCHEMA
#define SCHEMA "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\",\"oneOf\":[]}}}"
#else
#define SCHEMA                                                                                                   \
    "{\"type\":\"object\",\"required\":[\"url\"],\"additionalProperties\":false,\"properties\":{"                \
    "\"url\":{\"type\":\"string\",\"format\":\"uri\"},"                                                          \
    "\"token\":{\"type\":\"string\",\"minLength\":4,\"writeOnly\":true},"                                        \
    "\"mode\":{\"enum\":[\"fast\",\"safe\"]},"                                                                  \
    "\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5}}}"
#endif

#ifdef FIXTURE_NEWER_MINOR
/* What a plugin built against a future header looks like: more fields appended. */
typedef struct {
    herald_plugin base;
    void *future_hook;
    uint64_t future_flags;
} future_plugin;
static future_plugin descriptor_storage;
#define DESCRIPTOR (descriptor_storage.base)
#define PLUGIN_MINOR 7u
#else
static herald_plugin descriptor_storage;
#define DESCRIPTOR descriptor_storage
#define PLUGIN_MINOR HERALD_ABI_MINOR
#endif

static void fill(herald_plugin *d) {
    d->struct_size = sizeof(herald_plugin);
#ifdef FIXTURE_NEWER_MINOR
    d->struct_size = sizeof(future_plugin);
#endif
#ifdef FIXTURE_SMALL_STRUCT
    d->struct_size = (uint32_t)offsetof(herald_plugin, prepare);
#endif
    d->abi_major = HERALD_ABI_MAJOR;
    d->channel_kind = HERALD_CHANNEL_WEBHOOK;
    d->id = S(FIXTURE_ID);
    d->name = S("Fixture plugin");
    d->version = S(FIXTURE_VERSION);
    d->license = S("Apache-2.0");
    d->text_format = HERALD_FORMAT_PLAIN;
    d->size_unit = HERALD_SIZE_BYTES;
    d->size_limit = 4000;
    d->capabilities = HERALD_CAP_INBOUND_CALLBACKS | HERALD_CAP_ADMIN_ACTIONS;
#ifdef FIXTURE_CONCURRENT
    d->capabilities |= HERALD_CAP_CONCURRENT_CALLS;
#endif
    d->config_schema_json = S(SCHEMA);
    d->egress_hosts = egress;
    d->egress_host_count = 2;
    d->default_template = S("{{title}}");
    d->instance_create = create;
    d->instance_destroy = destroy;
    d->prepare = prepare;
#ifdef FIXTURE_NULL_HOOK
    d->prepare = NULL;
#endif
    d->on_response = on_response;
    d->parse_callback = parse_callback;
#ifdef FIXTURE_BAD_CAPS
    d->parse_callback = NULL;
#endif
    d->invoke_action = invoke_action;
}

static const herald_plugin *entry(herald_negotiate *n) {
    if (n->host_abi_major != HERALD_ABI_MAJOR) {
        n->refusal = S("this plugin speaks ABI 1 only");
        return NULL;
    }
#ifdef FIXTURE_REFUSE
    n->refusal = S("the fixture needs host ABI minor 99 or later");
    return NULL;
#endif
    uint32_t minor = PLUGIN_MINOR < n->host_abi_minor ? PLUGIN_MINOR : n->host_abi_minor;
    n->plugin_abi_minor = minor;
    fill(&DESCRIPTOR);
    DESCRIPTOR.abi_minor = minor;
    return &DESCRIPTOR;
}

#if defined(FIXTURE_NO_ENTRY)
HERALD_EXPORT const herald_plugin *fixture_entry(herald_negotiate *n) { return entry(n); }
#elif defined(FIXTURE_WRONG_MAJOR)
HERALD_EXPORT const herald_plugin *herald_plugin_entry_v2(herald_negotiate *n) { return entry(n); }
#else
HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *n) { return entry(n); }
#endif
