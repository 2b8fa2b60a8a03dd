/*
 * email.c — Herald's e-mail channel: incident notifications over SMTP.
 *
 * One RFC 5322 message per notification, submitted through the host's libcurl engine to the
 * operator's relay: smtps:// (TLS from the first byte, usually port 465) or smtp:// with
 * STARTTLS required (usually port 587); plain smtp:// only with `allow_plaintext: true`.
 * Credentials, the AUTH mechanism and the plain-text permission travel in the SMTP fields of
 * herald_request; a private CA comes from the integration's `ca_file`. See README.md.
 *
 * The message: Date, Message-ID (@ the sender's domain), From/To with RFC 2047 display names,
 * an RFC 2047 Subject folded at 78 columns, Auto-Submitted, MIME-Version and a
 * multipart/alternative body: text/plain first (built from the structured fields and the body
 * with tags stripped and entities decoded), then text/html (the body as the core rendered it,
 * inside a small layout). Both parts are quoted-printable UTF-8, so no line passes 76 octets;
 * every line ends in CRLF. libcurl does the SMTP dot-stuffing.
 *
 * Recipients: the message's `recipient` (one address or a comma-separated list, "Name <addr>"
 * allowed), else the configured `to`. The host goes on past refused recipients and reports each
 * RCPT TO reply as a response header (recipient -> reply line). Accepted recipients are
 * remembered under the idempotency key, so a retry only goes to the ones still missing.
 * Outcomes: all accepted -> delivered; any 4xx -> retry; 5xx -> failed; 535 (and the other
 * authentication codes) -> failed, naming authentication. Reasons mask addresses (a***@x.org).
 *
 * Sans-I/O like every Herald plugin. Pure C11 + libc; the only exported symbol is
 * herald_plugin_entry_v1.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden \
 *      -I include -o email.so Plugins/email/email.c
 */
#include "herald/plugin.h"
#include "herald/plugin_kit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_RECIPIENTS = 100,      /* the host's limit for one SMTP request */
    MAX_ADDRESS = 254,         /* RFC 5321 path limit, less the angle brackets */
    MAX_LOCAL_PART = 64,       /* RFC 5321 §4.5.3.1.1 */
    MAX_NAME_BYTES = 200,      /* of a display name that is shown */
    MAX_SUBJECT_BYTES = 600,   /* of the subject text; longer titles are cut with "…" */
    WORD_BYTES = 39,           /* raw bytes per encoded-word: 52 base64 chars, 64 with =?UTF-8?B?...?= */
    HEADER_COLUMNS = 78,       /* RFC 5322 §2.1.1 SHOULD */
    QP_COLUMNS = 75,           /* quoted-printable text per line before the soft break '=' (76 in all) */
    MAX_LABELS = 50,
    MAX_LABEL_BYTES = 512,
    MAX_URL_BYTES = 2048,
    MAX_LINK_LABEL = 80,
    REPLY_BYTES = 120,         /* of a server reply line quoted in a reason */
    MAX_REFUSED_LISTED = 10,   /* refused recipients named in one reason */
    SENT_TTL_MS = 7 * 24 * 3600 * 1000 /* how long accepted recipients are remembered per delivery */
};

/* ---- small text helpers ---------------------------------------------------------------------- */

static int is_atext(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A plain ASCII addr-spec: dot-atom local part (at most 64 bytes) '@' a host name of letters,
 * digits and hyphens in dot-separated labels. No quoted local parts, no address literals, no
 * international addresses (they would need SMTPUTF8). */
static int address_ok(herald_str a) {
    if (a.ptr == NULL || a.len < 3 || a.len > MAX_ADDRESS) return 0;
    const char *at = memchr(a.ptr, '@', a.len);
    if (!at) return 0;
    size_t local = (size_t)(at - a.ptr), domain = a.len - local - 1;
    if (local == 0 || local > MAX_LOCAL_PART || domain == 0) return 0;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)a.ptr[i];
        if (c == '.') {
            if (i == 0 || i + 1 == local || a.ptr[i - 1] == '.') return 0;
        } else if (!is_atext(c)) {
            return 0;
        }
    }
    size_t label = 0;
    for (size_t i = 0; i < domain; i++) {
        unsigned char c = (unsigned char)at[1 + i];
        if (c == '.') {
            if (label == 0 || at[i] == '-') return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && at[domain] != '-';
}

/* "a***@example.com": the first character of the local part, then the domain. Writes a
 * NUL-terminated string into `out` (cap >= 8). A view that is not an address gives "(invalid)". */
static void mask_address(herald_str a, char *out, size_t cap) {
    const char *at = a.ptr ? memchr(a.ptr, '@', a.len) : NULL;
    if (!at || at == a.ptr || !hk_is_visible(a)) {
        snprintf(out, cap, "(invalid address)");
        return;
    }
    int domain = (int)(a.len - (size_t)(at - a.ptr) - 1);
    snprintf(out, cap, "%c***@%.*s", a.ptr[0], domain > 100 ? 100 : domain, at + 1);
}

static herald_str trim(herald_str s) {
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\r' || s.ptr[0] == '\n')) { s.ptr++; s.len--; }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' || s.ptr[s.len - 1] == '\r' || s.ptr[s.len - 1] == '\n')) s.len--;
    return s;
}

/* One mailbox: an optional display name and an address, both views into someone else's memory. */
typedef struct {
    herald_str name;
    herald_str addr;
} mailbox;

/* Parses "addr", "<addr>", "Name <addr>" or "\"Name, Jr.\" <addr>" (trimmed). 0 or -1. */
static int parse_mailbox(herald_str s, mailbox *out) {
    s = trim(s);
    memset(out, 0, sizeof *out);
    if (s.len == 0) return -1;
    if (s.ptr[s.len - 1] == '>') {
        const char *lt = NULL;
        for (size_t i = s.len - 1; i-- > 0;) {
            if (s.ptr[i] == '<') { lt = s.ptr + i; break; }
        }
        if (!lt) return -1;
        out->addr = trim(HK_VIEW(lt + 1, (size_t)(s.ptr + s.len - 1 - (lt + 1))));
        herald_str name = trim(HK_VIEW(s.ptr, (size_t)(lt - s.ptr)));
        if (name.len >= 2 && name.ptr[0] == '"' && name.ptr[name.len - 1] == '"') name = trim(HK_VIEW(name.ptr + 1, name.len - 2));
        out->name = name;
    } else {
        out->addr = s;
    }
    return address_ok(out->addr) ? 0 : -1;
}

/* Splits `list` at commas outside quotes and angle brackets into at most `max` mailboxes.
 * Returns the count, or -1 when an entry is not a mailbox (its text in `*bad`), or -2 when there
 * are more than `max`. Empty entries are skipped. Views point into `list`. */
static int parse_mailbox_list(herald_str list, mailbox *out, size_t max, herald_str *bad) {
    size_t count = 0, start = 0;
    int quoted = 0, angle = 0;
    for (size_t i = 0; i <= list.len; i++) {
        char c = i < list.len ? list.ptr[i] : ',';
        if (c == '"' && !angle) quoted = !quoted;
        else if (c == '<' && !quoted) angle = 1;
        else if (c == '>' && !quoted) angle = 0;
        if ((c == ',' || c == ';') && ((!quoted && !angle) || i == list.len)) {
            herald_str item = trim(HK_VIEW(list.ptr + start, i - start));
            start = i + 1;
            if (item.len == 0) continue;
            if (count == max) return -2;
            if (parse_mailbox(item, &out[count]) != 0) {
                *bad = item;
                return -1;
            }
            count++;
        }
    }
    return (int)count;
}

static int address_ieq(herald_str a, herald_str b) {
    if (a.len != b.len) return 0;
    for (size_t i = 0; i < a.len; i++) {
        if (hk_lower((unsigned char)a.ptr[i]) != hk_lower((unsigned char)b.ptr[i])) return 0;
    }
    return 1;
}

/* ---- the instance and its configuration ------------------------------------------------------ */

typedef struct {
    const herald_host_api *host; /* borrowed: valid until instance_destroy returns */
    hk_ostr url;                 /* smtp(s)://host[:port][/helo-name] */
    hk_ostr from;                /* the From setting as written ("addr" or "Name <addr>") */
    hk_ostr from_name;           /* optional display name setting */
    mailbox sender;              /* views into `from` / `from_name` */
    hk_ostr username, password;  /* password: a secret, wiped on destroy */
    const char *login_options;   /* static: "AUTH=PLAIN", "AUTH=LOGIN" or NULL */
    int allow_plaintext;
    hk_ostr *to_text;            /* the configured `to` entries (owned) */
    mailbox *to;                 /* parsed views into to_text */
    size_t to_count;
} instance;

static void instance_free(instance *in) {
    if (!in) return;
    hk_ostr_free(&in->url, 0);
    hk_ostr_free(&in->from, 0);
    hk_ostr_free(&in->from_name, 0);
    hk_ostr_free(&in->username, 1);
    hk_ostr_free(&in->password, 1);
    for (size_t i = 0; in->to_text && i < in->to_count; i++) hk_ostr_free(&in->to_text[i], 0);
    free(in->to_text);
    free(in->to);
    free(in);
}

/* Reads `allow_plaintext` ("true"/"false" as config_get gives a boolean). 0 or -1. */
static int read_bool(const herald_host_api *h, const char *path, int *out, char *err) {
    hk_ostr v = {0};
    int got = hk_read_opt(h, path, &v, err);
    if (got < 0) return -1;
    int rc = 0;
    if (got == 1) {
        if (strcmp(v.p, "true") == 0) *out = 1;
        else if (strcmp(v.p, "false") == 0) *out = 0;
        else rc = hk_fail(err, "setting '%s' must be true or false", path);
    }
    hk_ostr_free(&v, 0);
    return rc;
}

/* 1 when the authority of smtp(s) URL `u` (NUL-terminated) is a loopback host. */
static int url_is_loopback(const hk_ostr *u) {
    const char *host = strstr(u->p, "://");
    if (!host) return 0;
    host += 3;
    size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/?#");
    return hk_str_ieq(HK_VIEW(host, n), "localhost") || hk_str_eq(HK_VIEW(host, n), "[::1]") || (n >= 4 && memcmp(host, "127.", 4) == 0);
}

static int read_config(instance *in, char *err) {
    static const char *const known[] = {"smtp_url", "username", "password", "auth", "from", "from_name", "to", "allow_plaintext"};
    const herald_host_api *h = in->host;
    hk_ostr auth = {0};
    int rc = -1, got;

    if (hk_check_known_settings(h, known, sizeof known / sizeof *known, "email", err) != 0) goto done;

    /* smtp_url */
    if ((got = hk_read_opt(h, "smtp_url", &in->url, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'smtp_url' is required, e.g. smtps://smtp.example.com:465 or smtp://relay.example.com:587");
        goto done;
    }
    int smtps = in->url.len > 8 && hk_str_ieq(HK_VIEW(in->url.p, 8), "smtps://");
    int smtp = in->url.len > 7 && hk_str_ieq(HK_VIEW(in->url.p, 7), "smtp://");
    if ((!smtps && !smtp) || !hk_is_token_text(&in->url)) {
        hk_fail(err, "setting 'smtp_url' must be an smtps:// or smtp:// URL without spaces, e.g. smtps://smtp.example.com:465");
        goto done;
    }
    const char *authority = in->url.p + (smtps ? 8 : 7);
    size_t authority_len = strcspn(authority, "/?#");
    if (authority_len == 0) { hk_fail(err, "setting 'smtp_url' has no host"); goto done; }
    if (memchr(authority, '@', authority_len)) {
        hk_fail(err, "setting 'smtp_url' must not carry credentials: put them in 'username' and 'password'");
        goto done;
    }
    if (strpbrk(authority + authority_len, "?#")) { hk_fail(err, "setting 'smtp_url' must not have a query or fragment"); goto done; }

    /* from, from_name */
    if ((got = hk_read_opt(h, "from", &in->from, err)) <= 0) {
        if (got == 0) hk_fail(err, "setting 'from' is required: the sender address, e.g. alerts@example.com");
        goto done;
    }
    if (parse_mailbox(HK_VIEW(in->from.p, in->from.len), &in->sender) != 0) {
        hk_fail(err, "setting 'from' must be an e-mail address (alerts@example.com or \"Herald <alerts@example.com>\")");
        goto done;
    }
    if ((got = hk_read_opt(h, "from_name", &in->from_name, err)) < 0) goto done;
    if (got == 1 && in->from_name.len > 0) in->sender.name = HK_VIEW(in->from_name.p, in->from_name.len);

    /* to: an array of strings, read element by element */
    hk_ostr list = {0};
    if ((got = hk_read_opt(h, "to", &list, err)) < 0) goto done;
    int is_array = got == 1 && list.len > 0 && list.p[0] == '[';
    hk_ostr_free(&list, 0);
    if (got == 1 && !is_array) { hk_fail(err, "setting 'to' must be a list of e-mail addresses"); goto done; }
    if (is_array) {
        in->to_text = calloc(MAX_RECIPIENTS, sizeof *in->to_text);
        in->to = calloc(MAX_RECIPIENTS, sizeof *in->to);
        if (!in->to_text || !in->to) { hk_fail(err, "out of memory while reading setting 'to'"); goto done; }
        for (size_t i = 0;; i++) {
            char path[32];
            snprintf(path, sizeof path, "to.%zu", i);
            hk_ostr item = {0};
            if ((got = hk_read_opt(h, path, &item, err)) < 0) goto done;
            if (got == 0) break;
            if (i == MAX_RECIPIENTS) {
                hk_ostr_free(&item, 0);
                hk_fail(err, "setting 'to' has more than %d addresses", MAX_RECIPIENTS);
                goto done;
            }
            in->to_text[i] = item;
            in->to_count = i + 1;
            if (parse_mailbox(HK_VIEW(item.p, item.len), &in->to[i]) != 0) {
                hk_fail(err, "setting 'to' entry %zu is not an e-mail address (oncall@example.com or \"Name <oncall@example.com>\")", i);
                goto done;
            }
        }
    }

    /* credentials and mechanism */
    if (hk_read_opt(h, "username", &in->username, err) < 0 || hk_read_opt(h, "password", &in->password, err) < 0) goto done;
    if (in->username.len > 0 && in->password.len == 0) { hk_fail(err, "setting 'password' is required with 'username'"); goto done; }
    if (in->username.len == 0 && in->password.len > 0) { hk_fail(err, "setting 'username' is required with 'password'"); goto done; }
    for (size_t i = 0; i < in->username.len + in->password.len; i++) {
        unsigned char c = (unsigned char)(i < in->username.len ? in->username.p[i] : in->password.p[i - in->username.len]);
        if (c < 0x20 || c == 0x7f) { hk_fail(err, "settings 'username' and 'password' must not contain control characters"); goto done; }
    }
    if ((got = hk_read_opt(h, "auth", &auth, err)) < 0) goto done;
    if (got == 1 && strcmp(auth.p, "plain") == 0) in->login_options = "AUTH=PLAIN";
    else if (got == 1 && strcmp(auth.p, "login") == 0) in->login_options = "AUTH=LOGIN";
    else if (got == 1 && strcmp(auth.p, "auto") != 0) { hk_fail(err, "setting 'auth' must be \"auto\", \"plain\" or \"login\""); goto done; }

    if (read_bool(h, "allow_plaintext", &in->allow_plaintext, err) != 0) goto done;
    if (smtp && in->allow_plaintext && in->username.len > 0 && !url_is_loopback(&in->url))
        h->log(HERALD_LOG_WARNING, HK_SV("setting 'allow_plaintext' is on: without STARTTLS the SMTP password crosses the network unencrypted"));
    rc = 0;
done:
    hk_ostr_free(&auth, 0);
    return rc;
}

/* instance_create: check the host table, calloc, read_config, set_error on failure. */
HK_INSTANCE_CREATE(email_create, instance, "email", read_config, instance_free)

static void email_destroy(void *inst) { instance_free(inst); }

/* ---- HTML to text ---------------------------------------------------------------------------- */

/* Appends code point `cp` as UTF-8; controls other than LF and TAB become a space. */
static void put_cp(hk_buf *b, uint32_t cp) {
    char tmp[4];
    size_t n = 0;
    if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) cp = 0xfffd;
    if ((cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) cp = ' ';
    hk_put_utf8(tmp, &n, cp);
    hk_buf_put(b, tmp, n);
}

/* Decodes the entity at `p` (which starts with '&'); returns the bytes used, 0 if not one. */
static size_t decode_entity(const char *p, size_t n, uint32_t *cp) {
    static const struct { const char *name; uint32_t cp; } named[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
        {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"middot", 0xb7}, {"copy", 0xa9},
    };
    size_t semi = 1;
    while (semi < n && semi < 12 && p[semi] != ';') semi++;
    if (semi >= n || p[semi] != ';' || semi < 2) return 0;
    if (p[1] == '#') {
        int hex = semi > 2 && (p[2] == 'x' || p[2] == 'X');
        uint32_t v = 0;
        size_t i = hex ? 3 : 2;
        if (i >= semi) return 0;
        for (; i < semi; i++) {
            char c = p[i];
            uint32_t d;
            if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
            else if (hex && c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
            else if (hex && c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
            else return 0;
            v = v * (hex ? 16 : 10) + d;
            if (v > 0x10ffff) v = 0x110000; /* keeps growing bounded; put_cp makes it U+FFFD */
        }
        *cp = v;
        return semi + 1;
    }
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        size_t len = strlen(named[k].name);
        if (len == semi - 1 && memcmp(p + 1, named[k].name, len) == 0) {
            *cp = named[k].cp;
            return semi + 1;
        }
    }
    return 0;
}

/* Tags whose start or end ends a line of text. */
static int is_block_tag(const char *name, size_t n) {
    static const char *const tags[] = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                                       "table", "blockquote", "pre", "hr", "section", "article", "header", "footer"};
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
        if (strlen(tags[i]) == n && hk_str_ieq(HK_VIEW(name, n), tags[i])) return 1;
    }
    return 0;
}

/* Appends the text of HTML `html`: tags dropped (block tags end a line, <li> starts "- "),
 * <script>/<style> contents and comments skipped, entities decoded, invalid UTF-8 as U+FFFD.
 * With `one_line`, every run of white space (line breaks included) becomes one space. */
static void html_to_text(hk_buf *b, herald_str html, int one_line) {
    const char *p = html.ptr;
    size_t n = html.ptr ? html.len : 0, i = 0;
    int space = 1; /* the last thing written was white space (or nothing) */
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c == '<' && i + 1 < n && (p[i + 1] == '/' || p[i + 1] == '!' || ((p[i + 1] | 0x20) >= 'a' && (p[i + 1] | 0x20) <= 'z'))) {
            if (i + 3 < n && memcmp(p + i, "<!--", 4) == 0) {
                size_t k = i + 4;
                while (k + 2 < n && memcmp(p + k, "-->", 3) != 0) k++;
                i = k + 2 < n ? k + 3 : n;
                continue;
            }
            int closing = p[i + 1] == '/';
            size_t name = i + 1 + (size_t)closing, k = name;
            while (k < n && (((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z') || (p[k] >= '0' && p[k] <= '9'))) k++;
            size_t name_len = k - name;
            char quote = 0;
            while (k < n && (quote || p[k] != '>')) {
                if (quote && p[k] == quote) quote = 0;
                else if (!quote && (p[k] == '"' || p[k] == '\'')) quote = p[k];
                k++;
            }
            size_t end = k < n ? k + 1 : n;
            int raw = !closing && (hk_str_ieq(HK_VIEW(p + name, name_len), "script") || hk_str_ieq(HK_VIEW(p + name, name_len), "style"));
            if (raw) { /* skip to the matching end tag */
                const char *stop = hk_str_ieq(HK_VIEW(p + name, name_len), "script") ? "</script" : "</style";
                size_t m = end;
                while (m < n && !hk_str_iprefix(HK_VIEW(p + m, n - m), stop)) m++;
                while (m < n && p[m] != '>') m++;
                i = m < n ? m + 1 : n;
                continue;
            }
            if (is_block_tag(p + name, name_len)) {
                if (one_line) {
                    if (!space) { hk_buf_lit(b, " "); space = 1; }
                } else {
                    if (b->len > 0 && !(b->len >= 2 && b->p[b->len - 1] == '\n' && b->p[b->len - 2] == '\n')) hk_buf_lit(b, "\n");
                    if (!closing && hk_str_ieq(HK_VIEW(p + name, name_len), "li")) hk_buf_lit(b, "- ");
                    space = 1;
                }
            }
            i = end;
            continue;
        }
        uint32_t cp;
        size_t used;
        if (c == '&' && (used = decode_entity(p + i, n - i, &cp)) > 0) {
            i += used;
        } else {
            used = hk_utf8_seq((const unsigned char *)p + i, n - i);
            if (used == 0) { cp = 0xfffd; used = 1; }
            else if (used == 1) cp = c;
            else {
                /* a valid multi-byte sequence: copy as it is */
                hk_buf_put(b, p + i, used);
                i += used;
                space = 0;
                continue;
            }
            i += used;
        }
        if (cp == '\r') {
            if (i < n && p[i] == '\n') continue; /* CRLF: the LF makes the break */
            cp = '\n';
        }
        int ws = cp == ' ' || cp == '\t' || cp == '\n' || cp == 0xa0;
        if (one_line && (ws || cp < 0x20 || cp == 0x7f)) {
            if (!space) hk_buf_lit(b, " ");
            space = 1;
            continue;
        }
        put_cp(b, cp);
        space = ws;
    }
    if (one_line) while (b->len > 0 && b->p[b->len - 1] == ' ') b->len--;
}

/* Appends `s` escaped for HTML text or attributes; controls become spaces, bad UTF-8 U+FFFD. */
static void html_escape(hk_buf *b, herald_str s, size_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? (s.len < max ? s.len : max) : 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const char *rep = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;" : c == '\'' ? "&#39;" : NULL;
        if (rep) { hk_buf_lit(b, rep); i++; continue; }
        if (c < 0x20 || c == 0x7f) { hk_buf_lit(b, " "); i++; continue; }
        size_t k = hk_utf8_seq(p + i, s.len - i);
        if (k == 0) { hk_buf_lit(b, "\xef\xbf\xbd"); i++; continue; }
        if (i + k > n) break;
        hk_buf_put(b, p + i, k);
        i += k;
    }
}

/* Appends raw text `s` for the plain part: controls (but LF/TAB when `lines`) become spaces,
 * bad UTF-8 U+FFFD, at most `max` bytes, never half a character. */
static void put_text(hk_buf *b, herald_str s, size_t max, int lines) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? (s.len < max ? s.len : max) : 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if ((c < 0x20 && !(lines && (c == '\n' || c == '\t'))) || c == 0x7f) { hk_buf_lit(b, " "); i++; continue; }
        size_t k = hk_utf8_seq(p + i, s.len - i);
        if (k == 0) { hk_buf_lit(b, "\xef\xbf\xbd"); i++; continue; }
        if (i + k > n) break;
        hk_buf_put(b, p + i, k);
        i += k;
    }
}

/* Appends `s` on one line: every run of white space or control characters becomes one space,
 * bad UTF-8 U+FFFD, at most `max` bytes of input, never half a character. For names. */
static void put_one_line(hk_buf *b, herald_str s, size_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.ptr ? (s.len < max ? s.len : max) : 0;
    int space = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c <= 0x20 || c == 0x7f) {
            if (!space) hk_buf_lit(b, " ");
            space = 1;
            i++;
            continue;
        }
        space = 0;
        size_t k = hk_utf8_seq(p + i, s.len - i);
        if (k == 0) { hk_buf_lit(b, "\xef\xbf\xbd"); i++; continue; }
        if (i + k > n) break;
        hk_buf_put(b, p + i, k);
        i += k;
    }
}

/* ---- headers --------------------------------------------------------------------------------- */

/* A header being written: folds before a token that would pass HEADER_COLUMNS. */
typedef struct {
    hk_buf *b;
    size_t col;
    int tokens; /* tokens written after the name */
} header;

static void header_start(header *w, hk_buf *b, const char *name) {
    w->b = b;
    w->tokens = 0;
    hk_buf_lit(b, name);
    hk_buf_lit(b, ":");
    w->col = strlen(name) + 1;
}

/* Writes a space (or a fold: CRLF and a space) and then the token. */
static void header_token(header *w, const char *p, size_t n) {
    if (w->tokens > 0 && w->col + 1 + n > HEADER_COLUMNS) {
        hk_buf_lit(w->b, "\r\n ");
        w->col = 1;
    } else {
        hk_buf_lit(w->b, " ");
        w->col++;
    }
    hk_buf_put(w->b, p, n);
    w->col += n;
    w->tokens++;
}

static void header_end(header *w) { hk_buf_lit(w->b, "\r\n"); }

/* Writes `text` (UTF-8, no controls) as RFC 2047 B encoded-words of at most WORD_BYTES raw bytes
 * each (64 characters), never splitting a character. `suffix` is glued to the last word. */
static int header_encoded_words(header *w, const herald_host_api *h, herald_str text, const char *suffix) {
    size_t i = 0;
    while (i < text.len) {
        size_t take = 0;
        while (i + take < text.len) {
            size_t k = hk_utf8_seq((const unsigned char *)text.ptr + i + take, text.len - i - take);
            if (k == 0) k = 1; /* the caller sanitised; a stray byte still never loops */
            if (take + k > WORD_BYTES) break;
            take += k;
        }
        if (take == 0) return -1;
        char word[128];
        size_t len = 10, got = 0;
        memcpy(word, "=?UTF-8?B?", 10);
        if (h->base64_encode(HK_VIEW(text.ptr + i, take), (uint8_t *)word + len, sizeof word - len - 16, &got) != HERALD_OK) return -1;
        len += got;
        memcpy(word + len, "?=", 2);
        len += 2;
        i += take;
        size_t sl = i >= text.len && suffix ? strlen(suffix) : 0;
        memcpy(word + len, suffix ? suffix : "", sl);
        header_token(w, word, len + sl);
    }
    return 0;
}

/* 1 when `s` is printable ASCII that needs no encoding in an unstructured header. */
static int plain_ascii(herald_str s) {
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c > 0x7e) return 0;
        if (c == '=' && i + 1 < s.len && s.ptr[i + 1] == '?') return 0;
    }
    return 1;
}

/* Writes `text` (one line, sanitised) as unstructured header text: space-separated words when
 * it is plain ASCII, encoded-words otherwise. */
static int header_text(header *w, const herald_host_api *h, herald_str text) {
    if (!plain_ascii(text)) return header_encoded_words(w, h, text, NULL);
    for (size_t i = 0; i < text.len;) {
        while (i < text.len && text.ptr[i] == ' ') i++;
        size_t start = i;
        while (i < text.len && text.ptr[i] != ' ') i++;
        if (i > start) header_token(w, text.ptr + start, i - start);
    }
    return 0;
}

/* Writes one mailbox: display name (atoms, a quoted string, or encoded-words) and <addr>;
 * `comma` appends "," for a list. Names are sanitised to one line first. */
static int header_mailbox(header *w, const herald_host_api *h, const mailbox *mb, int comma) {
    char addr[MAX_ADDRESS + 4];
    int n = snprintf(addr, sizeof addr, "<%.*s>%s", (int)mb->addr.len, mb->addr.ptr, comma ? "," : "");
    if (mb->name.len > 0) {
        hk_buf name = {0};
        put_one_line(&name, mb->name, MAX_NAME_BYTES);
        herald_str s = trim(HK_VIEW(name.p, name.len));
        int rc = 0;
        if (name.failed) rc = -1;
        else if (s.len > 0 && plain_ascii(s)) {
            int atoms = 1;
            for (size_t i = 0; i < s.len; i++) atoms &= is_atext((unsigned char)s.ptr[i]) || s.ptr[i] == ' ';
            if (atoms) {
                header_text(w, h, s);
            } else {
                hk_buf q = {0};
                hk_buf_lit(&q, "\"");
                for (size_t i = 0; i < s.len; i++) {
                    if (s.ptr[i] == '"' || s.ptr[i] == '\\') hk_buf_lit(&q, "\\");
                    hk_buf_put(&q, s.ptr + i, 1);
                }
                hk_buf_lit(&q, "\"");
                if (q.failed) rc = -1;
                else header_token(w, q.p, q.len);
                hk_buf_free(&q);
            }
        } else if (s.len > 0) {
            rc = header_encoded_words(w, h, s, NULL);
        }
        hk_buf_free(&name);
        if (rc != 0) return rc;
    }
    header_token(w, addr, (size_t)n);
    return 0;
}

/* "Tue, 22 Aug 2017 14:08:43 +0000" for Unix milliseconds `ms` (RFC 5322 §3.3, UTC). */
static void format_date(int64_t ms, char *out, size_t cap) {
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t secs = ms / 1000, day = secs / 86400, rem = secs % 86400;
    /* civil_from_days (Howard Hinnant's algorithm) */
    int64_t z = day + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[day % 7], (int)d, months[m - 1], (int)y,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}

/* "2026-11-14 10:00 UTC" for the plain part. */
static void format_short_date(int64_t ms, char *out, size_t cap) {
    char full[48];
    format_date(ms, full, sizeof full);
    /* "Tue, 22 Aug 2017 14:08:43 +0000" -> "22 Aug 2017 14:08 UTC" */
    snprintf(out, cap, "%.17s UTC", full + 5);
}

/* ---- quoted-printable ------------------------------------------------------------------------ */

/* Appends `text` quoted-printable (RFC 2045 §6.7): LF, CRLF and lone CR become CRLF line breaks,
 * output lines stay within 76 octets (soft breaks "="), '=' and every byte outside printable
 * ASCII are encoded, and so is white space before a line break. */
static void put_qp(hk_buf *b, const char *p, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
            hk_buf_lit(b, "\r\n");
            col = 0;
            continue;
        }
        int at_eol = i + 1 == n || p[i + 1] == '\r' || p[i + 1] == '\n';
        int literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        size_t width = literal ? 1 : 3;
        if (col + width > QP_COLUMNS) {
            hk_buf_lit(b, "=\r\n");
            col = 0;
        }
        if (literal) hk_buf_put(b, &p[i], 1);
        else {
            char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
            hk_buf_put(b, enc, 3);
        }
        col += width;
    }
    if (col > 0) hk_buf_lit(b, "\r\n");
}

/* ---- the message ----------------------------------------------------------------------------- */

static const char *state_word(const herald_message *m) {
    if (m->event == HERALD_EVENT_TEST) return "Test";
    if (m->event == HERALD_EVENT_SNOOZED) return "Snoozed";
    if (m->status == HERALD_INCIDENT_ACKNOWLEDGED) return "Acknowledged";
    if (m->status == HERALD_INCIDENT_RESOLVED) return "Resolved";
    if (m->status == HERALD_INCIDENT_CLOSED) return "Closed";
    return NULL;
}

static const char *severity_colour(const herald_message *m) {
    if (m->status == HERALD_INCIDENT_RESOLVED || m->status == HERALD_INCIDENT_CLOSED) return "#1a7f37";
    return m->severity == HERALD_SEVERITY_CRITICAL ? "#cf222e" : m->severity == HERALD_SEVERITY_WARNING ? "#bc4c00" : "#0969da";
}

static int link_usable(const herald_link *l) { return hk_link_ok(l) && l->url.len <= MAX_URL_BYTES; }

/* The subject's text: "[Critical] title (#42)", the title's tags stripped and entities decoded,
 * on one line, cut at MAX_SUBJECT_BYTES. */
static void build_subject(hk_buf *b, const herald_message *m) {
    const char *state = state_word(m);
    hk_buf_lit(b, "[");
    hk_buf_lit(b, state ? state : hk_severity_name(m->severity));
    hk_buf_lit(b, "] ");
    size_t from = b->len;
    html_to_text(b, m->title, 1);
    if (b->len == from) hk_buf_lit(b, "Herald incident");
    if (!b->failed && b->len - from > MAX_SUBJECT_BYTES) {
        size_t cut = from + MAX_SUBJECT_BYTES;
        while (cut > from && ((unsigned char)b->p[cut] & 0xc0) == 0x80) cut--;
        b->len = cut;
        hk_buf_lit(b, "\xe2\x80\xa6");
    }
    if (m->incident_number > 0) {
        hk_buf_lit(b, " (#");
        hk_buf_u64(b, m->incident_number);
        hk_buf_lit(b, ")");
    }
}

/* The summary line both parts show: "Critical · Triggered · Incident #42". */
static void put_summary(hk_buf *b, const herald_message *m) {
    const char *state = state_word(m);
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, " \xc2\xb7 ");
    hk_buf_lit(b, state ? state : hk_status_name(m->status));
    if (m->incident_number > 0) {
        hk_buf_lit(b, " \xc2\xb7 Incident #");
        hk_buf_u64(b, m->incident_number);
    }
}

static void build_text_part(hk_buf *b, const herald_message *m) {
    hk_buf_lit(b, "[");
    hk_buf_lit(b, hk_severity_name(m->severity));
    hk_buf_lit(b, "] ");
    size_t from = b->len;
    html_to_text(b, m->title, 1);
    if (b->len == from) hk_buf_lit(b, "Herald incident");
    hk_buf_lit(b, "\n");
    put_summary(b, m);
    hk_buf_lit(b, "\n");
    char date[48];
    if (m->started_at_ms > 0) {
        format_short_date(m->started_at_ms, date, sizeof date);
        hk_buf_lit(b, "Started: ");
        hk_buf_lit(b, date);
        hk_buf_lit(b, "\n");
    }
    if (m->closed_at_ms > 0) {
        format_short_date(m->closed_at_ms, date, sizeof date);
        hk_buf_lit(b, "Closed: ");
        hk_buf_lit(b, date);
        hk_buf_lit(b, "\n");
    }
    if (m->body.len > 0) {
        hk_buf_lit(b, "\n");
        from = b->len;
        html_to_text(b, m->body, 0);
        while (b->len > from && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == ' ')) b->len--;
        hk_buf_lit(b, "\n");
    }
    size_t labels = hk_count_labels(m) < MAX_LABELS ? hk_count_labels(m) : MAX_LABELS;
    if (labels > 0) hk_buf_lit(b, "\nLabels:\n");
    for (size_t i = 0; i < labels; i++) {
        hk_buf_lit(b, "  ");
        put_text(b, m->labels[i].name, MAX_LABEL_BYTES, 0);
        hk_buf_lit(b, ": ");
        put_text(b, m->labels[i].value, MAX_LABEL_BYTES, 0);
        hk_buf_lit(b, "\n");
    }
    int first = 1;
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_usable(l)) continue;
        if (first) hk_buf_lit(b, "\nLinks:\n");
        first = 0;
        hk_buf_lit(b, "  ");
        put_text(b, hk_link_label(l), MAX_LINK_LABEL, 0);
        hk_buf_lit(b, ": ");
        hk_buf_str(b, l->url);
        hk_buf_lit(b, "\n");
    }
    hk_buf_lit(b, "\n-- \nSent by Herald\n");
}

static void build_html_part(hk_buf *b, const herald_message *m) {
    const char *colour = severity_colour(m);
    int has_title = m->title.len > 0 && m->title.ptr;
    hk_buf_lit(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    if (has_title) hk_buf_str(b, m->title); else hk_buf_lit(b, "Herald incident");
    hk_buf_lit(b, "</title></head>\n<body style=\"margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;"
                  "font-size:14px;line-height:1.5;color:#1f2328\">\n<div style=\"border-left:4px solid ");
    hk_buf_lit(b, colour);
    hk_buf_lit(b, ";padding:4px 12px\">\n<h2 style=\"margin:0 0 4px;font-size:18px\">");
    if (has_title) hk_buf_str(b, m->title); else hk_buf_lit(b, "Herald incident");
    hk_buf_lit(b, "</h2>\n<p style=\"margin:0;color:#57606a\"><strong style=\"color:");
    hk_buf_lit(b, colour);
    hk_buf_lit(b, "\">");
    put_summary(b, m);
    hk_buf_lit(b, "</strong></p>\n</div>\n");
    if (m->body.len > 0) {
        hk_buf_lit(b, "<div style=\"white-space:pre-wrap;margin:16px 0\">");
        hk_buf_str(b, m->body);
        hk_buf_lit(b, "</div>\n");
    }
    size_t labels = hk_count_labels(m) < MAX_LABELS ? hk_count_labels(m) : MAX_LABELS;
    if (labels > 0) hk_buf_lit(b, "<table style=\"border-collapse:collapse;margin:12px 0\">\n");
    for (size_t i = 0; i < labels; i++) {
        hk_buf_lit(b, "<tr><td style=\"padding:2px 16px 2px 0;color:#57606a\">");
        html_escape(b, m->labels[i].name, MAX_LABEL_BYTES);
        hk_buf_lit(b, "</td><td style=\"padding:2px 0\">");
        html_escape(b, m->labels[i].value, MAX_LABEL_BYTES);
        hk_buf_lit(b, "</td></tr>\n");
    }
    if (labels > 0) hk_buf_lit(b, "</table>\n");
    int first = 1;
    for (size_t i = 0; i < hk_count_links(m); i++) {
        const herald_link *l = &m->links[i];
        if (!link_usable(l)) continue;
        if (first) hk_buf_lit(b, "<p style=\"margin:16px 0\">\n");
        first = 0;
        hk_buf_lit(b, "<a href=\"");
        html_escape(b, l->url, MAX_URL_BYTES);
        hk_buf_lit(b, "\" style=\"display:inline-block;padding:6px 14px;margin:0 8px 8px 0;border-radius:6px;background:");
        hk_buf_lit(b, l->kind == HERALD_LINK_ACKNOWLEDGE ? colour : "#0969da");
        hk_buf_lit(b, ";color:#ffffff;text-decoration:none\">");
        html_escape(b, hk_link_label(l), MAX_LINK_LABEL);
        hk_buf_lit(b, "</a>\n");
    }
    if (!first) hk_buf_lit(b, "</p>\n");
    hk_buf_lit(b, "<p style=\"margin-top:24px;color:#8c959f;font-size:12px\">Sent by Herald</p>\n</body></html>\n");
}

static void put_hex(hk_buf *b, const uint8_t *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        hk_buf_put(b, two, 2);
    }
}

/* The whole RFC 5322 message for `all` recipients (the To header). 0, or a herald status /
 * HK_NO_MEMORY. */
static int32_t build_message(const instance *in, const herald_message *m, const mailbox *all, size_t count, hk_buf *b) {
    const herald_host_api *h = in->host;
    uint8_t rnd[24];
    int32_t st = h->random_bytes(rnd, sizeof rnd);
    if (st != HERALD_OK) return st;
    int64_t now = h->now_unix_ms();
    char date[48];
    format_date(now, date, sizeof date);
    const char *at = memchr(in->sender.addr.ptr, '@', in->sender.addr.len); /* address_ok: present */
    herald_str domain = HK_VIEW(at + 1, in->sender.addr.len - (size_t)(at + 1 - in->sender.addr.ptr));

    header w;
    header_start(&w, b, "Date");
    header_token(&w, date, strlen(date));
    header_end(&w);

    header_start(&w, b, "From");
    mailbox sender = in->sender;
    if (sender.name.len == 0) sender.name = HK_SV("Herald");
    if (header_mailbox(&w, h, &sender, 0) != 0) return HERALD_ERR_INTERNAL;
    header_end(&w);

    header_start(&w, b, "To");
    for (size_t i = 0; i < count; i++) {
        if (header_mailbox(&w, h, &all[i], i + 1 < count) != 0) return HERALD_ERR_INTERNAL;
    }
    header_end(&w);

    hk_buf subject = {0};
    build_subject(&subject, m);
    if (subject.failed) {
        st = subject.failed;
        hk_buf_free(&subject);
        return st;
    }
    header_start(&w, b, "Subject");
    int rc = header_text(&w, h, HK_VIEW(subject.p, subject.len));
    hk_buf_free(&subject);
    if (rc != 0) return HERALD_ERR_INTERNAL;
    header_end(&w);

    /* <random.time@sender-domain>: unique per message, in the sender's domain. */
    hk_buf_lit(b, "Message-ID: <");
    put_hex(b, rnd, 12);
    hk_buf_lit(b, ".");
    hk_buf_u64(b, (uint64_t)now);
    hk_buf_lit(b, ".herald@");
    hk_buf_str(b, domain);
    hk_buf_lit(b, ">\r\n");
    /* RFC 3834: keeps vacation responders from answering alerts. */
    hk_buf_lit(b, "Auto-Submitted: auto-generated\r\n");
    if (m->incident_id.len > 0 && m->incident_id.len <= 128 && hk_is_visible(m->incident_id)) {
        hk_buf_lit(b, "X-Herald-Incident: ");
        hk_buf_str(b, m->incident_id);
        hk_buf_lit(b, "\r\n");
    }
    hk_buf_lit(b, "MIME-Version: 1.0\r\n");

    /* "=_" never occurs in quoted-printable text, and the random part makes the rest unique. */
    hk_buf boundary = {0};
    hk_buf_lit(&boundary, "=_herald_");
    put_hex(&boundary, rnd + 12, 12);
    if (boundary.failed) {
        st = boundary.failed;
        hk_buf_free(&boundary);
        return st;
    }
    herald_str bd = HK_VIEW(boundary.p, boundary.len);
    hk_buf_lit(b, "Content-Type: multipart/alternative;\r\n boundary=\"");
    hk_buf_str(b, bd);
    hk_buf_lit(b, "\"\r\n\r\nThis is a MIME message with a text and an HTML version.\r\n");

    hk_buf part = {0};
    hk_buf_lit(b, "\r\n--");
    hk_buf_str(b, bd);
    hk_buf_lit(b, "\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    build_text_part(&part, m);
    if (!part.failed) put_qp(b, part.p, part.len);
    hk_buf_free(&part);

    hk_buf_lit(b, "--");
    hk_buf_str(b, bd);
    hk_buf_lit(b, "\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    build_html_part(&part, m);
    if (!part.failed) put_qp(b, part.p, part.len);
    st = part.failed;
    hk_buf_free(&part);

    hk_buf_lit(b, "--");
    hk_buf_str(b, bd);
    hk_buf_lit(b, "--\r\n");
    hk_buf_free(&boundary);
    if (st != 0) return st;
    return b->failed;
}

/* ---- remembering accepted recipients --------------------------------------------------------- */

/* The kv key for a delivery: "sent:" + idempotency key (<= 128 bytes). */
static herald_str sent_key(const herald_message *m, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "sent:%.*s", (int)(m->idempotency_key.len > 200 ? 200 : m->idempotency_key.len),
                     m->idempotency_key.ptr ? m->idempotency_key.ptr : "");
    return HK_VIEW(buf, n > 0 ? (size_t)n : 0);
}

/* Reads the newline-separated list of recipients an earlier attempt delivered to (empty when none). */
static int32_t read_sent(const herald_host_api *h, const herald_message *m, hk_buf *out) {
    char keybuf[256];
    herald_str key = sent_key(m, keybuf, sizeof keybuf);
    size_t need = 0, got = 0;
    int32_t st = h->kv_get(key, NULL, 0, &need);
    if (st == HERALD_ERR_NOT_FOUND) return HERALD_OK;
    if (st == HERALD_OK) return HERALD_OK;
    if (st != HERALD_ERR_BUFFER_TOO_SMALL) return st;
    if (hk_buf_reserve(out, need) != 0) return out->failed;
    st = h->kv_get(key, (uint8_t *)out->p, need, &got);
    if (st != HERALD_OK || got > need) return st == HERALD_OK ? HERALD_ERR_INTERNAL : st;
    out->len = got;
    return HERALD_OK;
}

static int in_list(herald_str list, herald_str addr) {
    for (size_t i = 0; i < list.len;) {
        size_t end = i;
        while (end < list.len && list.ptr[end] != '\n') end++;
        if (address_ieq(HK_VIEW(list.ptr + i, end - i), addr)) return 1;
        i = end + 1;
    }
    return 0;
}

/* The envelope address of a response header name ("<a@b>" or "a@b"). */
static herald_str envelope_address(herald_str name) {
    name = trim(name);
    if (name.len >= 2 && name.ptr[0] == '<' && name.ptr[name.len - 1] == '>') return HK_VIEW(name.ptr + 1, name.len - 2);
    return name;
}

/* ---- prepare --------------------------------------------------------------------------------- */

static int32_t email_prepare(void *inst, const herald_message *m, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m)) {
        h->set_reason(ex, HK_SV("the host passed a message smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    char reason[400];
    mailbox list[MAX_RECIPIENTS];
    size_t count = 0;
    if (m->recipient.len > 0 && m->recipient.ptr) {
        herald_str bad = {0};
        int n = parse_mailbox_list(m->recipient, list, MAX_RECIPIENTS, &bad);
        if (n == -2) {
            snprintf(reason, sizeof reason, "the message names more than %d recipients", MAX_RECIPIENTS);
            h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
            return HERALD_OUTCOME_FAILED;
        }
        if (n < 0) {
            mailbox probe;
            char masked[128];
            if (parse_mailbox(bad, &probe) == 0 || probe.addr.len == 0) probe.addr = bad;
            mask_address(probe.addr, masked, sizeof masked);
            snprintf(reason, sizeof reason, "the message's recipient %s is not an e-mail address this plugin can send to "
                     "(plain ASCII addresses only)", masked);
            h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
            return HERALD_OUTCOME_FAILED;
        }
        count = (size_t)n;
    } else {
        for (size_t i = 0; i < in->to_count; i++) list[count++] = in->to[i];
    }
    /* the same address twice gets one copy */
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < unique && !address_ieq(list[k].addr, list[i].addr)) k++;
        if (k == unique) list[unique++] = list[i];
    }
    count = unique;
    if (count == 0) {
        h->set_reason(ex, HK_SV("no recipient: the message names none and setting 'to' is empty"));
        return HERALD_OUTCOME_FAILED;
    }

    /* A retry goes only to the recipients an earlier attempt did not reach. */
    hk_buf sent = {0};
    int32_t st = read_sent(h, m, &sent);
    if (st != HERALD_OK) {
        hk_buf_free(&sent);
        return hk_host_failure(h, ex, st, "reading which recipients were already served");
    }
    herald_str envelope[MAX_RECIPIENTS];
    char *storage = malloc(count * (MAX_ADDRESS + 3));
    if (!storage) {
        hk_buf_free(&sent);
        return hk_host_failure(h, ex, HK_NO_MEMORY, "building the envelope");
    }
    size_t pending = 0;
    for (size_t i = 0; i < count; i++) {
        if (in_list(HK_VIEW(sent.p, sent.len), list[i].addr)) continue;
        char *slot = storage + pending * (MAX_ADDRESS + 3);
        int n = snprintf(slot, MAX_ADDRESS + 3, "<%.*s>", (int)list[i].addr.len, list[i].addr.ptr);
        envelope[pending++] = HK_VIEW(slot, (size_t)n);
    }
    hk_buf_free(&sent);
    if (pending == 0) {
        free(storage);
        return HERALD_OUTCOME_DELIVERED; /* an earlier attempt reached everyone */
    }

    hk_buf msg = {0};
    st = build_message(in, m, list, count, &msg);
    if (st != 0) {
        free(storage);
        hk_buf_free(&msg);
        return hk_host_failure(h, ex, st, "building the message");
    }
    char from[MAX_ADDRESS + 3];
    int from_len = snprintf(from, sizeof from, "<%.*s>", (int)in->sender.addr.len, in->sender.addr.ptr);

    herald_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.kind = HERALD_REQUEST_SMTP;
    req.url = HK_VIEW(in->url.p, in->url.len);
    req.body = HK_VIEW(msg.p, msg.len);
    req.mail_from = HK_VIEW(from, (size_t)from_len);
    req.recipients = envelope;
    req.recipient_count = pending;
    req.smtp_username = HK_VIEW(in->username.p, in->username.len);
    req.smtp_password = HK_VIEW(in->password.p, in->password.len);
    if (in->login_options) req.smtp_login_options = HK_VIEW(in->login_options, strlen(in->login_options));
    req.smtp_flags = in->allow_plaintext ? HERALD_REQUEST_SMTP_ALLOW_PLAINTEXT : 0;
    st = h->set_request(ex, &req);
    free(storage);
    hk_buf_free(&msg);
    if (st != HERALD_OK) return hk_host_failure(h, ex, st, "handing the SMTP request to the host");
    return HERALD_OUTCOME_REQUEST;
}

/* ---- reading the answer ---------------------------------------------------------------------- */

/* The reply code at the start of an SMTP reply line, or 0. */
static int reply_code(herald_str line) {
    if (line.len < 3 || !line.ptr) return 0;
    for (int i = 0; i < 3; i++) {
        if (line.ptr[i] < '0' || line.ptr[i] > '9') return 0;
    }
    if (line.len > 3 && line.ptr[3] != ' ' && line.ptr[3] != '-') return 0;
    return (line.ptr[0] - '0') * 100 + (line.ptr[1] - '0') * 10 + (line.ptr[2] - '0');
}

/* Appends "a***@x.org (550 5.1.1 no such user)" for a refused recipient. */
static void put_refusal(hk_buf *b, herald_str addr, herald_str reply) {
    char masked[128], snip[REPLY_BYTES + 8];
    mask_address(addr, masked, sizeof masked);
    hk_buf_lit(b, masked);
    hk_buf_lit(b, " (");
    herald_str cut = reply.len > REPLY_BYTES ? HK_VIEW(reply.ptr, REPLY_BYTES) : reply;
    hk_snippet(cut, snip, sizeof snip);
    hk_buf_lit(b, snip[0] ? snip : "no reply");
    hk_buf_lit(b, ")");
}

/* Adds the accepted recipients of this attempt to the delivery's remembered list. */
static void remember_sent(const herald_host_api *h, const herald_message *m, const herald_response *r) {
    hk_buf list = {0};
    if (read_sent(h, m, &list) != HERALD_OK) {
        hk_buf_free(&list);
        return;
    }
    size_t before = list.len;
    for (size_t i = 0; i < r->header_count; i++) {
        int code = reply_code(r->headers[i].value);
        herald_str addr = envelope_address(r->headers[i].name);
        if (code < 200 || code > 299 || addr.len == 0 || in_list(HK_VIEW(list.p, list.len), addr)) continue;
        if (list.len > 0) hk_buf_lit(&list, "\n");
        hk_buf_str(&list, addr);
    }
    if (!list.failed && list.len != before && list.len <= 60000) {
        char keybuf[256];
        if (h->kv_set(sent_key(m, keybuf, sizeof keybuf), HK_VIEW(list.p, list.len), SENT_TTL_MS) != HERALD_OK)
            h->log(HERALD_LOG_WARNING, HK_SV("could not remember the accepted recipients: a retry may send them a second copy"));
    }
    hk_buf_free(&list);
}

static int is_auth_code(int code) { return code == 535 || code == 534 || code == 530 || code == 538 || code == 454; }

static int32_t email_on_response(void *inst, const herald_message *m, const herald_response *r, herald_exchange *ex) {
    instance *in = inst;
    const herald_host_api *h = in->host;
    if (!HK_MESSAGE_OK(m) || r == NULL || !HERALD_HAS_FIELD(herald_response, body, r->struct_size)) {
        h->set_reason(ex, HK_SV("the host passed a message or response smaller than ABI 1.0 defines"));
        return HERALD_OUTCOME_FAILED;
    }
    int status = r->status;
    char snip[REPLY_BYTES + 8];
    herald_str body = r->body.len > REPLY_BYTES ? HK_VIEW(r->body.ptr, REPLY_BYTES) : r->body;
    hk_snippet(body, snip, sizeof snip);

    /* Per-recipient replies (recipient -> RCPT TO reply line). */
    size_t accepted = 0, refused = 0, transient = 0;
    for (size_t i = 0; r->headers && i < r->header_count; i++) {
        int code = reply_code(r->headers[i].value);
        if (code >= 200 && code <= 299) accepted++;
        else {
            refused++;
            if (code >= 400 && code <= 499) transient++;
        }
    }

    if (status < 200 || status > 599 || (status >= 300 && status < 400)) {
        char reason[300];
        snprintf(reason, sizeof reason, "the SMTP exchange ended with an unexpected status %d%s%s", status, snip[0] ? ": " : "", snip);
        h->set_reason(ex, HK_VIEW(reason, strlen(reason)));
        return HERALD_OUTCOME_FAILED;
    }

    if (status <= 299 && refused == 0) {
        if (r->headers && r->header_count > 0) remember_sent(h, m, r);
        /* "250 2.0.0 Ok: queued as 4F2A1" -> provider id "4F2A1"; else the reply text. */
        const char *q = strstr(snip, "queued as ");
        if (!q) q = strstr(snip, "Queued as ");
        size_t snip_len = strlen(snip);
        herald_str id = q ? HK_VIEW(q + 10, strcspn(q + 10, " ")) : snip_len > 4 ? HK_VIEW(snip + 4, snip_len - 4) : HK_SV("");
        if (id.len > 0) h->set_provider_id(ex, id);
        return HERALD_OUTCOME_DELIVERED;
    }

    hk_buf reason = {0};
    int32_t outcome;
    if (status <= 299 || (refused > 0 && accepted == 0 && !is_auth_code(status))) {
        /* Some (or every) recipient refused at RCPT TO: name each one. */
        if (status <= 299) {
            remember_sent(h, m, r);
            hk_buf_lit(&reason, "the SMTP server accepted the message for ");
            hk_buf_u64(&reason, accepted);
            hk_buf_lit(&reason, accepted == 1 ? " recipient" : " recipients");
            hk_buf_lit(&reason, " but refused ");
            hk_buf_u64(&reason, refused);
            hk_buf_lit(&reason, ": ");
        } else {
            hk_buf_lit(&reason, "the SMTP server refused every recipient: ");
        }
        size_t listed = 0;
        for (size_t i = 0; i < r->header_count && listed < MAX_REFUSED_LISTED; i++) {
            int code = reply_code(r->headers[i].value);
            if (code >= 200 && code <= 299) continue;
            if (listed++ > 0) hk_buf_lit(&reason, ", ");
            put_refusal(&reason, envelope_address(r->headers[i].name), r->headers[i].value);
        }
        if (refused > listed) {
            hk_buf_lit(&reason, " and ");
            hk_buf_u64(&reason, refused - listed);
            hk_buf_lit(&reason, " more");
        }
        if (transient > 0) {
            hk_buf_lit(&reason, transient == refused ? "; the server asked to try again later (4xx), so the refused recipients are retried"
                                                     : "; the recipients refused with 4xx are retried");
            outcome = HERALD_OUTCOME_RETRY;
        } else {
            hk_buf_lit(&reason, "; 5xx refusals are permanent: check the addresses");
            outcome = HERALD_OUTCOME_FAILED;
        }
    } else if (is_auth_code(status)) {
        hk_buf_lit(&reason, status == 454 ? "SMTP authentication failed temporarily (" : "SMTP authentication failed (");
        hk_buf_lit(&reason, snip[0] ? snip : "no reply text");
        hk_buf_lit(&reason, status == 454 ? "); retrying later"
                                          : "): check settings 'username' and 'password' (many providers need an app password "
                                            "or an SMTP-enabled account) and 'auth'");
        outcome = status == 454 ? HERALD_OUTCOME_RETRY : HERALD_OUTCOME_FAILED;
    } else if (status >= 400 && status <= 499) {
        hk_buf_lit(&reason, "the SMTP server deferred the message (");
        hk_buf_lit(&reason, snip[0] ? snip : "no reply text");
        hk_buf_lit(&reason, "); retrying later");
        outcome = HERALD_OUTCOME_RETRY;
    } else {
        hk_buf_lit(&reason, "the SMTP server refused the message (");
        hk_buf_lit(&reason, snip[0] ? snip : "no reply text");
        hk_buf_lit(&reason, ")");
        if (status == 552 || status == 523) hk_buf_lit(&reason, ": the message is too large for the server");
        outcome = HERALD_OUTCOME_FAILED;
    }
    if (reason.failed) {
        int32_t failed = reason.failed;
        hk_buf_free(&reason);
        return hk_host_failure(h, ex, failed, "describing the SMTP answer");
    }
    h->set_reason(ex, HK_VIEW(reason.p, reason.len));
    hk_buf_free(&reason);
    return outcome;
}

/* ---- descriptor and entry -------------------------------------------------------------------- */

static const char config_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"smtp_url\",\"from\"],"
    "\"examples\":[{\"smtp_url\":\"smtps://smtp.example.com:465\",\"from\":\"Herald <alerts@example.com>\","
    "\"to\":[\"oncall@example.com\"],\"username\":\"alerts@example.com\",\"password\":\"app-password\"}],"
    "\"properties\":{"
    "\"smtp_url\":{\"type\":\"string\",\"pattern\":\"^smtps?://\",\"title\":\"SMTP server\","
    "\"description\":\"smtps://host:465 (TLS from the start) or smtp://host:587 (STARTTLS, required unless allow_plaintext). "
    "An optional path names the EHLO domain: smtp://relay.example.com:587/herald.example.com.\","
    "\"examples\":[\"smtps://smtp.example.com:465\",\"smtp://relay.corp.example:587\"]},"
    "\"from\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":400,\"title\":\"Sender\","
    "\"description\":\"The sender address, optionally with a name: alerts@example.com or \\\"Herald <alerts@example.com>\\\". "
    "Many providers only accept their account's own address.\",\"examples\":[\"alerts@example.com\"]},"
    "\"from_name\":{\"type\":\"string\",\"maxLength\":200,\"title\":\"Sender name\","
    "\"description\":\"Display name of the sender (UTF-8); overrides a name in 'from'. Default: Herald.\"},"
    "\"to\":{\"type\":\"array\",\"maxItems\":100,\"items\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":400},"
    "\"title\":\"Recipients\",\"description\":\"Addresses used when a message names no recipient of its own "
    "(\\\"oncall@example.com\\\" or \\\"On-call <oncall@example.com>\\\").\"},"
    "\"username\":{\"type\":\"string\",\"maxLength\":400,\"title\":\"SMTP user name\","
    "\"description\":\"AUTH user name, often the mailbox address. Leave out for a relay that needs no login.\"},"
    "\"password\":{\"type\":\"string\",\"maxLength\":400,\"writeOnly\":true,\"title\":\"SMTP password\","
    "\"description\":\"AUTH password or app password. Keep it in an environment variable.\"},"
    "\"auth\":{\"type\":\"string\",\"enum\":[\"auto\",\"plain\",\"login\"],\"default\":\"auto\",\"title\":\"AUTH mechanism\","
    "\"description\":\"auto: the best mechanism the server offers; plain or login to force one.\"},"
    "\"allow_plaintext\":{\"type\":\"boolean\",\"default\":false,\"title\":\"Allow plain text\","
    "\"description\":\"For smtp:// only: send without TLS when the server offers no STARTTLS. Only for a trusted local relay.\"}"
    "}}";

static const herald_str egress_hosts[] = {HK_LIT("config:smtp_url")};

/* Static for the life of the process; only abi_minor is written, once, by the entry point. */
static herald_plugin descriptor = {
    .struct_size = sizeof(herald_plugin),
    .abi_major = HERALD_ABI_MAJOR,
    .abi_minor = HERALD_ABI_MINOR,
    .channel_kind = HERALD_CHANNEL_EMAIL,
    .id = HK_LIT("email"),
    .name = HK_LIT("E-mail (SMTP)"),
    .version = HK_LIT("1.0.0"),
    .license = HK_LIT("Apache-2.0"),
    .text_format = HERALD_FORMAT_HTML,
    .size_unit = HERALD_SIZE_BYTES,
    /* Mail has no hard limit; an alert body past 64 KiB is a runaway template. */
    .size_limit = 65536,
    /* Instances are read-only after instance_create (state lives in the host's key-value store). */
    .capabilities = HERALD_CAP_CONCURRENT_CALLS,
    .config_schema_json = {config_schema, sizeof config_schema - 1},
    .egress_hosts = egress_hosts,
    .egress_host_count = sizeof egress_hosts / sizeof *egress_hosts,
    /* The title, severity, labels and links are laid out by the plugin around the body. */
    .default_template = HK_LIT("{{description}}"),
    .instance_create = email_create,
    .instance_destroy = email_destroy,
    .prepare = email_prepare,
    .on_response = email_on_response,
    .parse_callback = NULL,
    .invoke_action = NULL,
};

HERALD_EXPORT const herald_plugin *herald_plugin_entry_v1(herald_negotiate *negotiate) {
    return HK_NEGOTIATE(negotiate, &descriptor, "email");
}
