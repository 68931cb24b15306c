#include "static_api.h"

#include "http_static.h"

static int l_url(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    char buf[1024];
    int n = http_static_url(path, len, buf, sizeof(buf));
    if (n < 0)
        lua_pushvalue(L, 1); /* longer than any file the server holds */
    else
        lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int open_static(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"url", l_url}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}

void static_api_preload(lua_State *L, const struct config *cfg, struct worker *w)
{
    (void)cfg, (void)w;
    lua_pushcfunction(L, open_static);
    lua_setfield(L, -2, "h2lua.static");
}
