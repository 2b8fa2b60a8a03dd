// CCurlShim: typed, non-variadic wrappers around libcurl's variadic entry points.
//
// Swift cannot call C variadic functions, so every curl_easy_setopt /
// curl_multi_setopt / curl_easy_getinfo call HeraldHTTP needs goes through one
// of these. Each wrapper passes its argument with the exact C type libcurl's
// va_arg expects for that option kind (long, char *, void *, curl_off_t,
// function pointer); using the wrong wrapper for an option is undefined
// behaviour in libcurl, exactly as with the variadic call.
//
// Threading: the same rules as libcurl. A handle must not be used from two
// threads at once.
#ifndef HERALD_CCURLSHIM_H
#define HERALD_CCURLSHIM_H

#include <curl/curl.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Calls curl_global_init(CURL_GLOBAL_DEFAULT). Not thread-safe: call once, before any other thread uses curl.
CURLcode herald_curl_global_init(void);

// MARK: easy options

/// For options whose argument is a `long` (flags, sizes, timeouts, enums).
CURLcode herald_curl_setopt_long(CURL *handle, CURLoption option, long value);
/// For string options. libcurl copies the string before returning (since 7.17.0).
CURLcode herald_curl_setopt_str(CURL *handle, CURLoption option, const char *value);
/// For options whose argument is an opaque pointer (userdata, CURLOPT_POSTFIELDS, CURLOPT_ERRORBUFFER).
/// The pointee is NOT copied: it must stay valid until the handle is reset or cleaned up.
CURLcode herald_curl_setopt_ptr(CURL *handle, CURLoption option, void *value);
/// For curl_slist options (CURLOPT_HTTPHEADER, CURLOPT_MAIL_RCPT). The list is NOT copied: it must
/// stay valid until the transfer is done and the handle reset.
CURLcode herald_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list);
/// For `curl_off_t` options (the *_LARGE family).
CURLcode herald_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);

// MARK: easy callbacks (function and its userdata set together)

/// CURLOPT_WRITEFUNCTION + CURLOPT_WRITEDATA.
CURLcode herald_curl_set_write_function(CURL *handle, curl_write_callback callback, void *userdata);
/// CURLOPT_HEADERFUNCTION + CURLOPT_HEADERDATA.
CURLcode herald_curl_set_header_function(CURL *handle, curl_write_callback callback, void *userdata);
/// CURLOPT_READFUNCTION + CURLOPT_READDATA.
CURLcode herald_curl_set_read_function(CURL *handle, curl_read_callback callback, void *userdata);
/// CURLOPT_OPENSOCKETFUNCTION + CURLOPT_OPENSOCKETDATA.
CURLcode herald_curl_set_opensocket_function(CURL *handle, curl_opensocket_callback callback, void *clientp);
/// CURLOPT_PREREQFUNCTION + CURLOPT_PREREQDATA (libcurl >= 7.80.0).
CURLcode herald_curl_set_prereq_function(CURL *handle, curl_prereq_callback callback, void *clientp);

/// CURLOPT_DEBUGFUNCTION + CURLOPT_DEBUGDATA + CURLOPT_VERBOSE 1 (libcurl calls a debug
/// function only in verbose mode; with one set, nothing is written to stderr).
CURLcode herald_curl_set_debug_function(CURL *handle, curl_debug_callback callback, void *userdata);
/// SMTP: go on past refused RCPT TO commands and send to the accepted recipients
/// (CURLOPT_MAIL_RCPT_ALLOWFAILS, spelled ALLLOWFAILS before libcurl 8.2.0).
CURLcode herald_curl_smtp_allow_rcpt_fails(CURL *handle);

// MARK: multi options

/// For multi options whose argument is a `long`.
CURLMcode herald_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

// MARK: info

/// For CURLINFO_LONG infos. `*value` is written only on CURLE_OK.
CURLcode herald_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
/// For CURLINFO_OFF_T infos. `*value` is written only on CURLE_OK.
CURLcode herald_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

// MARK: sockets

/// Opens a socket for the address libcurl proposes in an opensocket callback, with close-on-exec
/// set (Herald loads plugins and may spawn processes; sockets must not leak into children).
/// Returns CURL_SOCKET_BAD on failure.
curl_socket_t herald_curl_open_socket(const struct curl_sockaddr *address);

/// Copies the raw IP address of an opensocket callback's `address` into `out` (16 bytes).
/// Returns 4 for IPv4, 16 for IPv6 (network byte order), 0 for any other family.
int herald_curl_sockaddr_ip(const struct curl_sockaddr *address, unsigned char out[16]);

#ifdef __cplusplus
}
#endif

#endif /* HERALD_CCURLSHIM_H */
