#include "http_static.h"

static h2o_mimemap_t *create_mimemap(void)
{
    static const char *const types[][2] = {
        {"css", "text/css; charset=utf-8"},          {"js", "text/javascript; charset=utf-8"},
        {"html", "text/html; charset=utf-8"},        {"txt", "text/plain; charset=utf-8"},
        {"json", "application/json; charset=utf-8"}, {"svg", "image/svg+xml; charset=utf-8"},
        {"map", "application/json; charset=utf-8"},
    };
    h2o_mimemap_t *m = h2o_mimemap_create();
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); ++i)
        h2o_mimemap_define_mimetype(m, types[i][0], types[i][1], NULL);
    return m;
}

void http_static_register(h2o_pathconf_t *pathconf, const char *dir)
{
    h2o_mimemap_t *mimemap = create_mimemap();
    h2o_file_register(pathconf, dir, NULL, mimemap, 0);
    h2o_mem_release_shared(mimemap);
}
