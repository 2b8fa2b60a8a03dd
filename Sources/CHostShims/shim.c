#define _GNU_SOURCE
#include "CHostShims.h"

#include <dlfcn.h>
#include <string.h>

#include <ffi.h>
#include <stdlib.h>

/* herald_str as libffi sees it: a struct of a pointer and a size_t. */
static ffi_type *str_elements[] = {&ffi_type_pointer, &ffi_type_uint64, NULL};
static ffi_type str_type = {0, 0, FFI_TYPE_STRUCT, str_elements};

struct herald_ffi_closure {
    ffi_closure *closure;
    ffi_cif cif;
    ffi_type *arg_types[16];
    herald_ffi_handler handler;
    void *user_data;
};

static ffi_type *type_of(herald_ffi_kind kind) {
    switch (kind) {
    case HERALD_FFI_VOID: return &ffi_type_void;
    case HERALD_FFI_INT32: return &ffi_type_sint32;
    case HERALD_FFI_UINT64: return &ffi_type_uint64;
    case HERALD_FFI_INT64: return &ffi_type_sint64;
    case HERALD_FFI_POINTER: return &ffi_type_pointer;
    case HERALD_FFI_STR: return &str_type;
    }
    return NULL;
}

static void trampoline(ffi_cif *cif, void *ret, void **args, void *user_data) {
    (void)cif;
    struct herald_ffi_closure *self = user_data;
    self->handler(self->user_data, ret, args);
}

herald_ffi_closure *herald_ffi_closure_create(herald_ffi_kind ret, const herald_ffi_kind *args, unsigned arg_count,
                                              herald_ffi_handler handler, void *user_data, void **out_code) {
    if (arg_count > 16) return NULL;
    struct herald_ffi_closure *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    for (unsigned i = 0; i < arg_count; i++) {
        self->arg_types[i] = type_of(args[i]);
        if (!self->arg_types[i] || args[i] == HERALD_FFI_VOID) { free(self); return NULL; }
    }
    self->handler = handler;
    self->user_data = user_data;
    void *code = NULL;
    self->closure = ffi_closure_alloc(sizeof(ffi_closure), &code);
    if (!self->closure) { free(self); return NULL; }
    if (ffi_prep_cif(&self->cif, FFI_DEFAULT_ABI, arg_count, type_of(ret), self->arg_types) != FFI_OK ||
        ffi_prep_closure_loc(self->closure, &self->cif, trampoline, self, code) != FFI_OK) {
        ffi_closure_free(self->closure);
        free(self);
        return NULL;
    }
    *out_code = code;
    return self;
}

void herald_ffi_closure_free(herald_ffi_closure *closure) {
    if (!closure) return;
    ffi_closure_free(closure->closure);
    free(closure);
}

int herald_symbol_owner(const void *symbol, char *out, size_t cap) {
    Dl_info info;
    if (!dladdr(symbol, &info) || !info.dli_fname) return -1;
    size_t n = strlen(info.dli_fname);
    if (n + 1 > cap) return -1;
    memcpy(out, info.dli_fname, n + 1);
    return 0;
}
