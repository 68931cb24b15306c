/* libFuzzer target: the Cookie header parser (core/form.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

static int check_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    (void)ctx;
    if (nlen == 0 || name[nlen] != '\0' || value[vlen] != '\0' || memchr(name, '=', nlen) != NULL ||
        memchr(value, ';', vlen) != NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    form_parse_cookies((const char *)data, size, check_pair, NULL);
    return 0;
}
