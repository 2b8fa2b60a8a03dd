// Typed wrappers around libcurl's variadic API. See include/CCurlShim.h.
#include "CCurlShim.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

CURLcode herald_curl_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode herald_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode herald_curl_setopt_str(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode herald_curl_setopt_ptr(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode herald_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list) {
    return curl_easy_setopt(handle, option, list);
}

CURLcode herald_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode herald_curl_set_write_function(CURL *handle, curl_write_callback callback, void *userdata) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_WRITEDATA, userdata);
}

CURLcode herald_curl_set_debug_function(CURL *handle, curl_debug_callback callback, void *userdata) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, callback);
    if (rc == CURLE_OK) rc = curl_easy_setopt(handle, CURLOPT_DEBUGDATA, userdata);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_VERBOSE, 1L);
}

CURLcode herald_curl_smtp_allow_rcpt_fails(CURL *handle) {
#if LIBCURL_VERSION_NUM >= 0x080200
    return curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#else
    return curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
}

CURLcode herald_curl_set_header_function(CURL *handle, curl_write_callback callback, void *userdata) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_HEADERDATA, userdata);
}

CURLcode herald_curl_set_read_function(CURL *handle, curl_read_callback callback, void *userdata) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_READDATA, userdata);
}

CURLcode herald_curl_set_opensocket_function(CURL *handle, curl_opensocket_callback callback, void *clientp) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, clientp);
}

CURLcode herald_curl_set_prereq_function(CURL *handle, curl_prereq_callback callback, void *clientp) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_PREREQDATA, clientp);
}

CURLMcode herald_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

CURLcode herald_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode herald_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

curl_socket_t herald_curl_open_socket(const struct curl_sockaddr *address) {
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int herald_curl_sockaddr_ip(const struct curl_sockaddr *address, unsigned char out[16]) {
    // libcurl hands a `struct sockaddr` field but backs it with storage large enough for the
    // family named in `family`, so reading a sockaddr_in6 from it is valid when addrlen says so.
    if (address->family == AF_INET && address->addrlen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, &address->addr, sizeof sin);
        memcpy(out, &sin.sin_addr, 4);
        return 4;
    }
    if (address->family == AF_INET6 && address->addrlen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &address->addr, sizeof sin6);
        memcpy(out, &sin6.sin6_addr, 16);
        return 16;
    }
    return 0;
}
