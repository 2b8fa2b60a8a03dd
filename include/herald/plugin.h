/*
 * herald/plugin.h — the Herald channel-plugin ABI, major version 1.
 *
 * This header is the only contract between the Herald host and a channel plugin. A plugin is a
 * shared object that exports exactly one function, `herald_plugin_entry_v1`, and needs nothing but
 * this header and libc to build:
 *
 *     cc -std=c11 -shared -fPIC -fvisibility=hidden -I include -o myplugin.so myplugin.c
 *
 * THE MODEL: SANS-I/O. A plugin never opens a socket. For each delivery the host calls `prepare`,
 * and the plugin describes the request to make (HTTP or SMTP) by handing it to the host. The host
 * performs it and calls `on_response`; the plugin answers with one outcome: delivered, another
 * request, retry later, or permanent failure. Inbound callbacks (`parse_callback`) and admin
 * actions (`invoke_action`) follow the same shape. The host owns connections, TLS, proxies, the
 * egress policy, timeouts, retries and rate limits.
 *
 * NAMING. Types are `herald_*`; plugin hooks are fields of `herald_plugin`; host services are
 * fields of `herald_host_api`. Enum constants are `HERALD_<GROUP>_<VALUE>`.
 *
 * MEMORY. Four rules, repeated where they apply:
 *   1. A `herald_str` the host passes to a plugin is BORROWED: valid only until the hook returns.
 *      Copy what you keep.
 *   2. Whatever a plugin hands to the host (requests, outcomes, actions, replies, log lines) goes
 *      through a host function that COPIES it before returning; the plugin may pass stack memory.
 *   3. The descriptor returned by the entry point, and every view in it, is plugin-owned STATIC
 *      storage: valid for the life of the process (the host never unloads a plugin).
 *   4. Nothing is ever freed across the boundary: the plugin frees what it allocates, in
 *      `instance_destroy` at the latest. The host never calls `free` on plugin memory.
 *
 * STRINGS are UTF-8 `{ptr, len}` views; they are NOT NUL-terminated unless noted. Bodies are
 * `herald_str` too and may hold any bytes. A view with `len == 0` may have `ptr == NULL`.
 *
 * THREADS. The entry point is called once per process, on the loading thread. Hooks of one
 * instance are never called concurrently unless the descriptor sets `HERALD_CAP_CONCURRENT_CALLS`;
 * they may be called from different threads over time. Host functions may be called from any
 * thread while the instance is alive (between a successful `instance_create` and the return of
 * `instance_destroy`). No hook may block on the network (there is none to block on) or sleep.
 *
 * ERRORS never unwind across the boundary: C++ exceptions, Rust panics and Swift errors must be
 * caught inside the plugin and turned into an outcome.
 *
 * EVOLUTION. Every extensible struct starts with `uint32_t struct_size`. Fields are only ever
 * appended, never reordered, retyped or removed; enum values are only ever added. A reader checks
 * `struct_size` before reading a field (see HERALD_HAS_FIELD). Minor versions add fields and
 * hooks; a new major version gets a new entry symbol (`herald_plugin_entry_v2`). The layout of
 * every struct is pinned by a test in the Herald repository.
 */
#ifndef HERALD_PLUGIN_H
#define HERALD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__clang__)
/* Nullability tells Swift and other importers which hooks are optional. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-extension"
#pragma clang assume_nonnull begin
#define HERALD_NULLABLE _Nullable
#else
#define HERALD_NULLABLE
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */

/** The ABI major version. It is part of the entry symbol's name. */
#define HERALD_ABI_MAJOR 1
/** The ABI minor version this header describes. Minors only add. */
#define HERALD_ABI_MINOR 0

/** Mark the one exported symbol of a plugin built with -fvisibility=hidden. */
#if defined(_WIN32)
#define HERALD_EXPORT __declspec(dllexport)
#else
#define HERALD_EXPORT __attribute__((visibility("default")))
#endif

/** True when a struct of `size` bytes (its `struct_size`) contains `field` of `type`. */
#define HERALD_HAS_FIELD(type, field, size) \
    (offsetof(type, field) + sizeof(((type *)0)->field) <= (size_t)(size))

/* ---------------------------------------------------------------------------------------------
 * Basic types
 * ------------------------------------------------------------------------------------------- */

/**
 * A UTF-8 (or, for bodies, binary) string view: `len` bytes at `ptr`, not NUL-terminated.
 *
 * OWNERSHIP: never transfers. Who may keep it and for how long is stated where it appears.
 */
typedef struct herald_str {
    const char *HERALD_NULLABLE ptr;
    size_t len;
} herald_str;

/** Initializer for a view of a string literal: `herald_str s = HERALD_STR_LITERAL("POST");`. */
#define HERALD_STR_LITERAL(literal) {(literal), sizeof(literal) - 1}

/** A name/value pair: a label, an HTTP header, a URL query parameter. Views as above. */
typedef struct herald_pair {
    herald_str name;
    herald_str value;
} herald_pair;

/**
 * Status of a host function call. 0 is success; negative values are errors. Only ever added to.
 */
typedef enum herald_status {
    HERALD_OK = 0,
    /** An argument was malformed (bad length, invalid base64, unknown enum value...). */
    HERALD_ERR_INVALID_ARGUMENT = -1,
    /** The output buffer is too small; `*out_len` holds the size needed. Nothing was written. */
    HERALD_ERR_BUFFER_TOO_SMALL = -2,
    /** The key does not exist (or has expired). */
    HERALD_ERR_NOT_FOUND = -3,
    /** The host refused the call in this context (e.g. an outcome function outside a hook). */
    HERALD_ERR_STATE = -4,
    /** A limit was exceeded (key-value quota, too many actions, request too large). */
    HERALD_ERR_LIMIT = -5,
    /** The host failed internally; the call may succeed if retried. */
    HERALD_ERR_INTERNAL = -6
} herald_status;

/** Log levels for `herald_host_api.log`. */
typedef enum herald_log_level {
    HERALD_LOG_TRACE = 0,
    HERALD_LOG_DEBUG = 1,
    HERALD_LOG_INFO = 2,
    HERALD_LOG_WARNING = 3,
    HERALD_LOG_ERROR = 4
} herald_log_level;

/* ---------------------------------------------------------------------------------------------
 * Descriptor enums
 * ------------------------------------------------------------------------------------------- */

/** What kind of channel a plugin implements. */
typedef enum herald_channel_kind {
    HERALD_CHANNEL_WEBHOOK = 1,   /**< a generic HTTP receiver */
    HERALD_CHANNEL_GROUP_BOT = 2, /**< an IM group bot behind a webhook URL */
    HERALD_CHANNEL_APP = 3,       /**< an IM app: direct messages, interactive cards */
    HERALD_CHANNEL_SMS = 4,
    HERALD_CHANNEL_VOICE = 5,
    HERALD_CHANNEL_EMAIL = 6
} herald_channel_kind;

/**
 * The text format the plugin wants the host to render `herald_message.body` in. The host escapes
 * every template variable for this format before the plugin sees it.
 */
typedef enum herald_text_format {
    HERALD_FORMAT_PLAIN = 1,
    HERALD_FORMAT_MARKDOWN = 2,      /**< CommonMark-like (DingTalk, WeCom, Feishu post) */
    HERALD_FORMAT_SLACK_MRKDWN = 3,  /**< Slack mrkdwn: & < > escaped as entities */
    HERALD_FORMAT_TELEGRAM_HTML = 4, /**< Telegram's HTML subset */
    HERALD_FORMAT_HTML = 5,          /**< full HTML (email) */
    HERALD_FORMAT_JSON = 6           /**< the body is a JSON document; variables get JSON string escaping */
} herald_text_format;

/** Unit of `herald_plugin.size_limit`. */
typedef enum herald_size_unit {
    HERALD_SIZE_BYTES = 1,     /**< UTF-8 bytes */
    HERALD_SIZE_CHARACTERS = 2 /**< Unicode scalar values (Telegram counts these) */
} herald_size_unit;

/** Capability bits in `herald_plugin.capabilities`. Bits 0-31 are Herald's; 32-63 are free. */
#define HERALD_CAP_CARD_ACTIONS (UINT64_C(1) << 0)      /**< messages carry interactive buttons */
#define HERALD_CAP_MENTIONS (UINT64_C(1) << 1)          /**< the plugin renders `mentions` */
#define HERALD_CAP_INBOUND_CALLBACKS (UINT64_C(1) << 2) /**< implements `parse_callback` */
#define HERALD_CAP_MESSAGE_UPDATES (UINT64_C(1) << 3)   /**< can update a message it sent */
#define HERALD_CAP_REQUIRES_KEYWORD (UINT64_C(1) << 4)  /**< the platform may demand a keyword */
#define HERALD_CAP_CONCURRENT_CALLS (UINT64_C(1) << 5)  /**< hooks of one instance are reentrant */
#define HERALD_CAP_ADMIN_ACTIONS (UINT64_C(1) << 6)     /**< implements `invoke_action` */

/* ---------------------------------------------------------------------------------------------
 * Messages (host -> plugin, BORROWED for the duration of the hook)
 * ------------------------------------------------------------------------------------------- */

typedef enum herald_severity {
    HERALD_SEVERITY_CRITICAL = 1,
    HERALD_SEVERITY_WARNING = 2,
    HERALD_SEVERITY_INFO = 3
} herald_severity;

typedef enum herald_incident_status {
    HERALD_INCIDENT_TRIGGERED = 1,
    HERALD_INCIDENT_ACKNOWLEDGED = 2,
    HERALD_INCIDENT_RESOLVED = 3,
    HERALD_INCIDENT_CLOSED = 4
} herald_incident_status;

/** Why the message is sent. */
typedef enum herald_event {
    HERALD_EVENT_FIRE = 1,         /**< first notification of the incident at this level */
    HERALD_EVENT_REFIRE = 2,       /**< a loop repeat or an escalation */
    HERALD_EVENT_ACKNOWLEDGED = 3,
    HERALD_EVENT_SNOOZED = 4,
    HERALD_EVENT_RESOLVED = 5,
    HERALD_EVENT_CLOSED = 6,
    HERALD_EVENT_TEST = 7          /**< a test message (`herald send`, conformance checks) */
} herald_event;

/** What a link or button does. `HERALD_LINK_VIEW` opens the incident page. */
typedef enum herald_link_kind {
    HERALD_LINK_VIEW = 1,
    HERALD_LINK_ACKNOWLEDGE = 2,
    HERALD_LINK_SNOOZE = 3,
    HERALD_LINK_CLOSE = 4,
    HERALD_LINK_OTHER = 5
} herald_link_kind;

/**
 * A link to show as a button or a markup link. `url` is a signed browser link.
 * FROZEN: links come in an array, whose stride must never change, so this struct never grows;
 * a later minor adds a parallel array instead. `struct_size` is sizeof(herald_link).
 */
typedef struct herald_link {
    uint32_t struct_size;
    int32_t kind;   /**< herald_link_kind */
    herald_str label;
    herald_str url;
    /** Opaque token for an interactive card button (apps); the host resolves it in callbacks. */
    herald_str callback_token;
} herald_link;

/** A person to @mention, resolved by the host through mapping tables. FROZEN like herald_link. */
typedef struct herald_mention {
    uint32_t struct_size;
    int32_t reserved0;
    herald_str display_name;
    /** The platform identity (user id, open id, JID, mobile number...), as `id_kind` says. */
    herald_str id;
    /** "user_id", "open_id", "mobile", "email", "jid"... as the mapping table named it. */
    herald_str id_kind;
} herald_mention;

/**
 * One rendered message for one destination. Every view is BORROWED: valid until the hook that
 * received it returns. The same message is passed again to each `on_response` of the delivery.
 */
typedef struct herald_message {
    uint32_t struct_size;
    int32_t event;              /**< herald_event */
    /**
     * Stable per delivery; identical across retries. Use it as an idempotency key. At most 128
     * bytes of [A-Za-z0-9._:-], so it is safe in headers, URLs and signed strings.
     */
    herald_str idempotency_key;
    herald_str incident_id;
    uint64_t incident_number;
    int32_t severity;           /**< herald_severity */
    int32_t status;             /**< herald_incident_status */
    /** Rendered and escaped for the plugin's text format; within its size limit. */
    herald_str title;
    herald_str body;
    const herald_pair *HERALD_NULLABLE labels;
    size_t label_count;
    const herald_link *HERALD_NULLABLE links;
    size_t link_count;
    const herald_mention *HERALD_NULLABLE mentions;
    size_t mention_count;
    /** Destination within the integration (chat id, phone, email); empty = the configured one. */
    herald_str recipient;
    /** Unix milliseconds. 0 when unknown. */
    int64_t started_at_ms;
    int64_t acknowledged_at_ms;
    int64_t closed_at_ms;
    /** Alerts merged into the incident. */
    uint32_t alert_count;
    uint32_t reserved1;
    /** Anything channel-specific, as a JSON object (may be empty). */
    herald_str extra_json;
} herald_message;

/* ---------------------------------------------------------------------------------------------
 * Requests (plugin -> host, COPIED by `set_request`) and responses (host -> plugin, BORROWED)
 * ------------------------------------------------------------------------------------------- */

typedef enum herald_request_kind {
    HERALD_REQUEST_HTTP = 1,
    HERALD_REQUEST_SMTP = 2
} herald_request_kind;

/**
 * A request for the host to perform. Fill it on the stack and pass it to `set_request`, which
 * copies every view before returning.
 *
 * HTTP: `method`, `url`, `headers`, `body`. SMTP: `url` (smtp:// or smtps://), `mail_from`,
 * `recipients`, and `body` holding the RFC 5322 message. `timeout_ms` 0 means the host default.
 * The host refuses URLs outside the integration's egress policy; the delivery then fails
 * permanently without calling `on_response`.
 */
typedef struct herald_request {
    uint32_t struct_size;
    int32_t kind;               /**< herald_request_kind */
    herald_str method;          /**< HTTP only: "POST", "GET"... */
    herald_str url;
    const herald_pair *HERALD_NULLABLE headers;
    size_t header_count;
    herald_str body;
    uint32_t timeout_ms;
    uint32_t reserved0;
    herald_str mail_from;       /**< SMTP only */
    const herald_str *HERALD_NULLABLE recipients; /**< SMTP only */
    size_t recipient_count;
    /** Echoed back in `herald_response.tag`: lets a plugin tell the steps of a flow apart. */
    uint64_t tag;
    /*
     * Appended after ABI 1.0's `tag` (a host reads them only when `struct_size` covers them;
     * a plugin that leaves them zero gets the 1.0 behaviour). SMTP only; ignored for HTTP.
     */
    /** SMTP AUTH user name; empty = no AUTH. The host never logs it with the password. */
    herald_str smtp_username;
    /** SMTP AUTH password (with `smtp_username`). A secret: the host never logs or echoes it. */
    herald_str smtp_password;
    /** libcurl login options, e.g. "AUTH=PLAIN" or "AUTH=LOGIN"; empty = the best mechanism offered. */
    herald_str smtp_login_options;
    /** HERALD_REQUEST_SMTP_* bits. */
    uint32_t smtp_flags;
    uint32_t reserved1;
} herald_request;

/**
 * `herald_request.smtp_flags`: for an smtp:// URL, use STARTTLS when the server offers it but
 * send in clear text when it does not. Without it the host requires STARTTLS (smtps:// is always
 * TLS). Only for an operator who allowed plain text explicitly (a local relay).
 */
#define HERALD_REQUEST_SMTP_ALLOW_PLAINTEXT (UINT32_C(1) << 0)

/**
 * The response to a request. BORROWED for the duration of `on_response`. Transport failures
 * (DNS, connect, TLS, timeout) never reach the plugin: the host retries those itself.
 * SMTP: `status` is the verdict's reply code (250 once the message was accepted; the refusing
 * reply, e.g. 535 or 550, otherwise), `body` that reply line, and `headers` hold one pair per
 * envelope recipient that got an answer to its RCPT TO, in order: name = the recipient as the
 * request gave it, value = the server's reply line ("550 5.1.1 no such user"). The host keeps
 * going past refused recipients, so a 250 may come with some recipients refused.
 * Header names keep the case the server sent (compare them case-insensitively); a repeated
 * header arrives as separate pairs, in order. When the plugin returns HERALD_OUTCOME_RETRY
 * without calling `set_retry_after`, the host honours a `Retry-After` header itself.
 */
typedef struct herald_response {
    uint32_t struct_size;
    /** HTTP status code, or the final SMTP reply code (250...). */
    int32_t status;
    const herald_pair *HERALD_NULLABLE headers;
    size_t header_count;
    herald_str body;
    /** The `tag` of the request this answers. */
    uint64_t tag;
    /** 1 when the host cut the body at its response size cap. */
    uint32_t body_truncated;
    uint32_t reserved0;
} herald_response;

/* ---------------------------------------------------------------------------------------------
 * Outcomes: what `prepare`, `on_response` and `invoke_action` return
 * ------------------------------------------------------------------------------------------- */

typedef enum herald_outcome {
    /** A request was set with `set_request`; the host performs it and calls back. */
    HERALD_OUTCOME_REQUEST = 1,
    /** Done and delivered (or, for an action, done). `set_provider_id` may name the message. */
    HERALD_OUTCOME_DELIVERED = 2,
    /** Transient failure: try again later. `set_retry_after` gives the provider's hint. */
    HERALD_OUTCOME_RETRY = 3,
    /** Permanent failure: retrying cannot help. `set_reason` says why. */
    HERALD_OUTCOME_FAILED = 4
} herald_outcome;

/* ---------------------------------------------------------------------------------------------
 * Inbound callbacks (`parse_callback`)
 * ------------------------------------------------------------------------------------------- */

/** An inbound HTTP request addressed to this integration. BORROWED for the hook. */
typedef struct herald_inbound {
    uint32_t struct_size;
    int32_t reserved0;
    herald_str method;
    /** The path after the integration's callback prefix, e.g. "/voice" (may be empty). */
    herald_str path;
    /** The raw query string without '?'. */
    herald_str query;
    const herald_pair *HERALD_NULLABLE headers;
    size_t header_count;
    herald_str body;
    /** The peer address as text ("203.0.113.9"). */
    herald_str remote_address;
} herald_inbound;

typedef enum herald_action_kind {
    HERALD_ACTION_ACKNOWLEDGE = 1,
    HERALD_ACTION_SNOOZE = 2,
    HERALD_ACTION_CLOSE = 3,
    HERALD_ACTION_RESOLVE = 4,
    HERALD_ACTION_UNACKNOWLEDGE = 5,
    /** Nothing to change; record `note` on the timeline (a missed call, a wrong key...). */
    HERALD_ACTION_NOTE = 6
} herald_action_kind;

/** A verified action a callback asks for. COPIED by `add_action`. */
typedef struct herald_action {
    uint32_t struct_size;
    int32_t kind;               /**< herald_action_kind */
    /** The incident, or a `herald_link.callback_token` the host resolves. One must be set. */
    herald_str incident_id;
    herald_str callback_token;
    /** Who acted, as a platform identity the host maps to a member ("mobile:+86...", "email:..."). */
    herald_str actor;
    /** How it was done, for the timeline: "voice (key 1)", "card button"... */
    herald_str via;
    uint32_t snooze_minutes;    /**< for HERALD_ACTION_SNOOZE: 1..1440 */
    uint32_t reserved0;
    herald_str note;
} herald_action;

/* ---------------------------------------------------------------------------------------------
 * Host handles
 * ------------------------------------------------------------------------------------------- */

/**
 * One unit of work in progress: a delivery, a callback or an admin action. Opaque and host-owned.
 * OWNERSHIP: borrowed; valid only during the hook it is passed to. Never store it.
 */
typedef struct herald_exchange herald_exchange;

/* ---------------------------------------------------------------------------------------------
 * The host API (host -> plugin)
 * ------------------------------------------------------------------------------------------- */

/**
 * The services a plugin instance may call. The host builds one table per instance; every
 * function is already bound to that instance (key-value data, log lines and errors are scoped to
 * it), so none takes an instance argument.
 *
 * OWNERSHIP: host-owned. The pointer passed to `instance_create` stays valid until
 * `instance_destroy` returns; store it in your instance.
 * THREADS: every function may be called from any thread while the instance is alive.
 * PRESENCE: every function covered by `struct_size` is non-NULL.
 *
 * Functions that write into a caller buffer take `(out, cap, out_len)`: on success they write
 * `*out_len` bytes and return HERALD_OK; when `cap` is too small they write nothing, set
 * `*out_len` to the size needed and return HERALD_ERR_BUFFER_TOO_SMALL. They never
 * NUL-terminate.
 */
typedef struct herald_host_api {
    uint32_t struct_size;
    /** The negotiated minor version. */
    uint32_t abi_minor;

    /* -- diagnostics -------------------------------------------------------------------------- */

    /** Writes a log line attributed to this instance. Copies `message`. Never log secrets. */
    void (*log)(int32_t level, herald_str message);

    /**
     * Records why the current hook failed (`instance_create` returning non-zero, a config
     * problem...). Copies `message`; the last call wins. One sentence naming the field, please.
     */
    void (*set_error)(herald_str message);

    /* -- state ------------------------------------------------------------------------------- */

    /**
     * Reads a value this instance stored. HERALD_ERR_NOT_FOUND if absent or expired.
     * Copies into `out` (see buffer rules above).
     */
    int32_t (*kv_get)(herald_str key, uint8_t *HERALD_NULLABLE out, size_t cap, size_t *out_len);

    /**
     * Stores `value` under `key` for this instance, replacing any previous value. `ttl_ms` 0
     * means no expiry. Copies both. Keys up to 256 bytes, values up to 64 KiB
     * (HERALD_ERR_LIMIT otherwise). The store survives restarts when the host has a database.
     */
    int32_t (*kv_set)(herald_str key, herald_str value, uint64_t ttl_ms);

    /** Removes a key. HERALD_ERR_NOT_FOUND if it was absent. */
    int32_t (*kv_delete)(herald_str key);

    /* -- time and randomness ----------------------------------------------------------------- */

    /** Wall-clock time in Unix milliseconds, never negative (tests may control it). */
    int64_t (*now_unix_ms)(void);

    /** Fills `out` with `len` cryptographically secure random bytes. */
    int32_t (*random_bytes)(uint8_t *out, size_t len);

    /* -- crypto ------------------------------------------------------------------------------ */

    /** HMAC-SHA1 of `message` with `key`; writes 20 bytes to `out`. */
    int32_t (*hmac_sha1)(herald_str key, herald_str message, uint8_t *out);

    /** HMAC-SHA256 of `message` with `key`; writes 32 bytes to `out`. */
    int32_t (*hmac_sha256)(herald_str key, herald_str message, uint8_t *out);

    /** SHA-256 of `message`; writes 32 bytes to `out`. */
    int32_t (*sha256)(herald_str message, uint8_t *out);

    /**
     * AES-256-CBC decryption. `key` is 32 bytes, `iv` 16 bytes. With `strip_pkcs7` non-zero the
     * PKCS#7 padding is checked and removed (HERALD_ERR_INVALID_ARGUMENT if it is wrong);
     * with 0 the raw blocks are returned (WeCom pads to 32 bytes and must strip itself).
     */
    int32_t (*aes256_cbc_decrypt)(herald_str key, herald_str iv, herald_str ciphertext,
                                  int32_t strip_pkcs7, uint8_t *HERALD_NULLABLE out, size_t cap,
                                  size_t *out_len);

    /* -- encoding ---------------------------------------------------------------------------- */

    /** Standard base64 (RFC 4648 §4) with padding. */
    int32_t (*base64_encode)(herald_str data, uint8_t *HERALD_NULLABLE out, size_t cap,
                             size_t *out_len);

    /** Decodes standard base64 (padding optional, no whitespace). INVALID_ARGUMENT if malformed. */
    int32_t (*base64_decode)(herald_str text, uint8_t *HERALD_NULLABLE out, size_t cap,
                             size_t *out_len);

    /** Percent-encodes every byte outside RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~). */
    int32_t (*percent_encode)(herald_str text, uint8_t *HERALD_NULLABLE out, size_t cap,
                              size_t *out_len);

    /**
     * Escapes `text` for use inside a JSON string (without the surrounding quotes): quote,
     * backslash and control characters; `<`, `>` and `&` as \u escapes so the result is also
     * safe inside HTML. Invalid UTF-8 becomes U+FFFD. The output is at most 6 times the input
     * length, so a buffer of that size never needs a second call.
     */
    int32_t (*json_escape)(herald_str text, uint8_t *HERALD_NULLABLE out, size_t cap,
                           size_t *out_len);

    /* -- outcomes (valid only inside the hook that received `exchange`) ---------------------- */

    /** Sets the next request to perform. Copies everything. Use with HERALD_OUTCOME_REQUEST. */
    int32_t (*set_request)(herald_exchange *exchange, const herald_request *request);

    /** Names the delivered message (the provider's message id). Copies. */
    int32_t (*set_provider_id)(herald_exchange *exchange, herald_str provider_id);

    /** The provider's retry hint for HERALD_OUTCOME_RETRY (0 = let the host back off). */
    int32_t (*set_retry_after)(herald_exchange *exchange, uint64_t milliseconds);

    /** Why the exchange failed or retries: one sentence, with the provider's message. Copies. */
    int32_t (*set_reason)(herald_exchange *exchange, herald_str reason);

    /** Adds a verified action found in an inbound callback. Copies. At most 16 per callback. */
    int32_t (*add_action)(herald_exchange *exchange, const herald_action *action);

    /** Sets the HTTP reply to give the caller of an inbound callback. Copies. */
    int32_t (*set_reply)(herald_exchange *exchange, int32_t status, herald_str content_type,
                         herald_str body);

    /** Sets the JSON result of an admin action. Copies. */
    int32_t (*set_output)(herald_exchange *exchange, herald_str json);

    /* -- config ------------------------------------------------------------------------------ */

    /**
     * Reads one setting of this instance's config (already validated against the schema) by a
     * dotted path: "url", "headers.Authorization", "chat_ids.0". A string comes back as its raw
     * UTF-8 text (no quotes, no escapes); any other value as compact JSON text ("42", "true",
     * "{...}"); the empty path gives the whole config. HERALD_ERR_NOT_FOUND if absent.
     */
    int32_t (*config_get)(herald_str path, uint8_t *HERALD_NULLABLE out, size_t cap, size_t *out_len);

    /**
     * Lists the member names of the object at `path` ("" for the top level), in sorted order,
     * each followed by a NUL byte: "Authorization\0X-Team\0". An empty object gives 0 bytes.
     * HERALD_ERR_NOT_FOUND if absent, HERALD_ERR_INVALID_ARGUMENT if the value is not an object.
     * With `config_get`, enough to walk any config without parsing JSON.
     */
    int32_t (*config_keys)(herald_str path, uint8_t *HERALD_NULLABLE out, size_t cap, size_t *out_len);
} herald_host_api;

/* ---------------------------------------------------------------------------------------------
 * The plugin descriptor (plugin -> host, STATIC)
 * ------------------------------------------------------------------------------------------- */

/**
 * Everything the host needs to know about a plugin, and its hooks.
 *
 * OWNERSHIP: plugin-owned static storage. The struct and every view and array in it must stay
 * valid and unchanged for the life of the process.
 */
typedef struct herald_plugin {
    uint32_t struct_size;
    /** HERALD_ABI_MAJOR the plugin was built against. */
    uint32_t abi_major;
    /** The negotiated minor (see herald_negotiate). */
    uint32_t abi_minor;
    int32_t channel_kind;            /**< herald_channel_kind */

    /** Stable id, lower-case [a-z0-9-], e.g. "webhook"; matches the manifest. */
    herald_str id;
    /** Human name, e.g. "Generic webhook". */
    herald_str name;
    /** Semantic version of the plugin, e.g. "1.2.0"; matches the manifest. */
    herald_str version;
    /** SPDX license expression, e.g. "Apache-2.0". */
    herald_str license;

    int32_t text_format;             /**< herald_text_format */
    int32_t size_unit;               /**< herald_size_unit */
    /** Largest message body the platform accepts, in `size_unit`; 0 = no limit. */
    uint32_t size_limit;
    uint32_t reserved0;
    uint64_t capabilities;           /**< HERALD_CAP_* bits */

    /** JSON Schema (draft 2020-12 subset) of the instance config. Mark secrets "writeOnly": true. */
    herald_str config_schema_json;
    /**
     * Hosts the plugin may reach by default: exact names or "*.suffix" wildcards. An entry
     * "config:<field>" allows the host of the URL in that (operator-written) config field.
     */
    const herald_str *HERALD_NULLABLE egress_hosts;
    size_t egress_host_count;
    /** The default Mustache template for the message body (may be empty). */
    herald_str default_template;

    /* -- required hooks ---------------------------------------------------------------------- */

    /**
     * Creates an instance from `config_json`, which the host has already validated against
     * `config_schema_json`. On success stores the plugin-owned instance in `*out_instance` and
     * returns 0; otherwise calls `host->set_error` and returns non-zero.
     * OWNERSHIP: `config_json` is borrowed for the call. `host` lives until instance_destroy.
     * THREAD: any; never concurrently with another hook of the same instance.
     */
    int32_t (*instance_create)(const herald_host_api *host, herald_str config_json,
                               void *HERALD_NULLABLE *HERALD_NULLABLE out_instance);

    /**
     * Releases everything the instance owns. Called once, after every other hook of the instance
     * has returned; no hook follows. The host API table dies when this returns.
     */
    void (*instance_destroy)(void *HERALD_NULLABLE instance);

    /**
     * Starts a delivery of `message`: calls `host->set_request` and returns
     * HERALD_OUTCOME_REQUEST, or returns HERALD_OUTCOME_FAILED with `host->set_reason` when the
     * message cannot be sent at all (no recipient, unsupported content...), or
     * HERALD_OUTCOME_DELIVERED when a retry finds nothing left to send (every recipient was
     * served by an earlier attempt, as recorded with `kv_set` under the idempotency key).
     * THREAD: any host thread; serialised per instance unless HERALD_CAP_CONCURRENT_CALLS.
     */
    int32_t (*prepare)(void *HERALD_NULLABLE instance, const herald_message *message,
                       herald_exchange *exchange);

    /**
     * Interprets the response to the last request of a delivery and returns its outcome. `message`
     * is the message given to `prepare`. Unknown or malformed answers must not be reported as
     * delivered. THREAD: as `prepare`; possibly another thread than the one that ran `prepare`.
     */
    int32_t (*on_response)(void *HERALD_NULLABLE instance, const herald_message *message,
                           const herald_response *response, herald_exchange *exchange);

    /* -- optional hooks (NULL when absent) --------------------------------------------------- */

    /**
     * Verifies an inbound callback (signature, token, freshness) and reports what it asks for
     * with `host->add_action`, plus the HTTP reply with `host->set_reply`. Returns
     * HERALD_OUTCOME_DELIVERED when the request was authentic (even with no actions), or
     * HERALD_OUTCOME_FAILED for a forged, stale or malformed request (the host answers 401/400
     * unless a reply was set). Requires HERALD_CAP_INBOUND_CALLBACKS. THREAD: as `prepare`.
     */
    int32_t (*HERALD_NULLABLE parse_callback)(void *HERALD_NULLABLE instance,
                                              const herald_inbound *request,
                                              herald_exchange *exchange);

    /**
     * Runs the admin action `action` (e.g. "discover-chats") with JSON `input`. Like a delivery
     * it may need requests: the first call has `response == NULL`; return
     * HERALD_OUTCOME_REQUEST after `set_request` and the host calls again with the same
     * `action` and `input` and the response. Finish with HERALD_OUTCOME_DELIVERED after
     * `host->set_output`, or HERALD_OUTCOME_FAILED with a reason (e.g. unknown action).
     * Requires HERALD_CAP_ADMIN_ACTIONS. THREAD: as `prepare`.
     */
    int32_t (*HERALD_NULLABLE invoke_action)(void *HERALD_NULLABLE instance, herald_str action,
                                             herald_str input,
                                             const herald_response *HERALD_NULLABLE response,
                                             herald_exchange *exchange);
} herald_plugin;

/* ---------------------------------------------------------------------------------------------
 * Negotiation and the entry point
 * ------------------------------------------------------------------------------------------- */

/**
 * Filled by the host, read and partly written by the plugin's entry point.
 *
 * The host sets `host_abi_major` and `host_abi_minor` (the highest minor it speaks). The plugin
 * sets `plugin_abi_minor` to the lower of its own HERALD_ABI_MINOR and `host_abi_minor` and
 * copies the same value into its descriptor's `abi_minor`. To refuse a host (too old for the
 * plugin), the entry returns NULL and points `refusal` at a static sentence.
 */
typedef struct herald_negotiate {
    uint32_t struct_size;
    uint32_t host_abi_major;
    uint32_t host_abi_minor;
    /** Written by the plugin. */
    uint32_t plugin_abi_minor;
    /** "herald", so a fork with an incompatible ABI can tell its plugins apart. */
    herald_str product;
    /** Written by the plugin when it refuses; static storage. */
    herald_str refusal;
    /** Reserved for extension structs; NULL. */
    const void *HERALD_NULLABLE next;
} herald_negotiate;

/**
 * The minor a plugin built from this header answers: the lower of its own and the host's.
 * (Written as a function because `x < HERALD_ABI_MINOR` is `x < 0` while the minor is 0, which
 * compilers flag.)
 */
static inline uint32_t herald_negotiated_minor(const herald_negotiate *negotiate) {
    return negotiate->host_abi_minor > (uint32_t)HERALD_ABI_MINOR ? (uint32_t)HERALD_ABI_MINOR
                                                                   : negotiate->host_abi_minor;
}

/** The type of the one exported function. */
typedef const herald_plugin *HERALD_NULLABLE (*herald_plugin_entry_v1_fn)(
    herald_negotiate *negotiate);

/**
 * The one symbol a plugin exports. Called once per process, before anything else, on the
 * loading thread. Returns the static descriptor, or NULL to refuse (with `negotiate->refusal`).
 */
HERALD_EXPORT const herald_plugin *HERALD_NULLABLE herald_plugin_entry_v1(
    herald_negotiate *negotiate);

#if defined(__clang__)
#pragma clang assume_nonnull end
#pragma clang diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* HERALD_PLUGIN_H */
