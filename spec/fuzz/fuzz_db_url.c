/* libFuzzer target: the DATABASE_URL parser (core/config.c). An accepted URL has a host and a port
 * in range; a refused one explains itself and never echoes the password. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    config_db_t db = {0};
    db.port = 3306;
    char err[512] = "";
    int ret = config_parse_db_url(&db, url, err, sizeof(err));
    if (ret == 0 && (db.host == NULL || db.host[0] == '\0' || db.port < 1 || db.port > 65535))
        abort();
    if (ret != 0 && err[0] == '\0')
        abort();
    if (ret != 0 && db.password != NULL && strlen(db.password) >= 4 && strstr(err, db.password) != NULL)
        abort();
    free(db.host);
    free(db.user);
    free(db.password);
    free(db.name);
    free(url);
    return 0;
}
