#ifndef HERALD_HOST_SHIMS_H
#define HERALD_HOST_SHIMS_H
/* C helpers the plugin host needs and Swift cannot reach directly:
 *  - libffi closures: a Swift handler plus a bound context becomes a plain C function pointer with
 *    the exact signature a plugin expects (no context argument);
 *  - dladdr (a GNU extension the Glibc module does not export). */
#include <stddef.h>

#if defined(__clang__)
#pragma clang assume_nonnull begin
#endif

/** Argument/return types the host API uses. */
typedef enum herald_ffi_kind {
    HERALD_FFI_VOID = 0,
    HERALD_FFI_INT32 = 1,
    HERALD_FFI_UINT64 = 2,   /* also size_t on LP64 */
    HERALD_FFI_INT64 = 3,
    HERALD_FFI_POINTER = 4,
    HERALD_FFI_STR = 5       /* herald_str {const char *, size_t} passed by value */
} herald_ffi_kind;

/**
 * Called for every invocation of the closure. `args[i]` points at argument i (for HERALD_FFI_STR,
 * at a herald_str); write the result into `ret` (an int32 result as a full 64-bit word, which is
 * what libffi requires for integer returns narrower than a register).
 */
typedef void (*herald_ffi_handler)(void *_Nullable user_data, void *_Nullable ret, void *_Nullable *_Nonnull args);

typedef struct herald_ffi_closure herald_ffi_closure;

/**
 * Creates a closure; `*out_code` receives the callable function pointer. Returns NULL if libffi
 * cannot prepare it. OWNERSHIP: caller owns the result; free with herald_ffi_closure_free.
 * `user_data` is borrowed and must outlive the closure.
 */
herald_ffi_closure *_Nullable herald_ffi_closure_create(herald_ffi_kind ret, const herald_ffi_kind *_Nullable args,
                                                        unsigned arg_count, herald_ffi_handler handler,
                                                        void *_Nullable user_data, void *_Nullable *_Nonnull out_code);

void herald_ffi_closure_free(herald_ffi_closure *_Nullable closure);

/**
 * Writes the path of the loaded file that defines `symbol` into `out` (NUL-terminated).
 * Returns 0 on success, -1 when the loader does not know the address or `cap` is too small.
 */
int herald_symbol_owner(const void *symbol, char *out, size_t cap);

#if defined(__clang__)
#pragma clang assume_nonnull end
#endif
#endif
