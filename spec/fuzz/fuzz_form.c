/* libFuzzer target: the form/query decoder and the UTF-8 check (core/form.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

static int count_field(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    /* the decoder promises NUL-terminated, valid UTF-8 fields */
    if (name[nlen] != '\0' || value[vlen] != '\0' || !form_utf8_valid(name, nlen) || !form_utf8_valid(value, vlen))
        abort();
    ++*(int *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int n = 0;
    int ret = form_parse(s, size, 64, count_field, &n);
    if (ret >= 0 && ret != n)
        abort();
    char *out = malloc(size + 1);
    long len = form_percent_decode(out, s, size, 1);
    if (len > (long)size)
        abort();
    free(out);
    form_utf8_valid(s, size);
    return 0;
}
