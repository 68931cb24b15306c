#include "db_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db_pool.h"
#include "db_route.h"
#include "lua_host.h"
#include "migrate.h"
#include "sql_bind.h"
#include "util.h"
#include "worker.h"

#define TX_MT "h2lua.db.tx"

#define PUSH_NULL(L) SQL_BIND_PUSH_NULL(L)

struct tx {
    db_conn_t *conn; /* NULL once committed or rolled back */
};

/* ---- binding ---- */

/* Pushes the bound SQL of the call's arguments (sql at index sql_idx, values after it). */
static void push_bound(lua_State *L, int sql_idx)
{
    size_t len;
    const char *sql = luaL_checklstring(L, sql_idx, &len);
    int nargs = lua_gettop(L) - sql_idx;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    /* the buffer may sit on the stack: arguments are addressed by absolute index */
    const char *err = sql_bind(L, &b, sql, len, sql_idx + 1, nargs);
    if (err != NULL)
        luaL_error(L, "db: %s", err);
    luaL_pushresult(&b);
}

/*
 * The values of a prepared statement's placeholders, bound by type (db_conn_execute): nil and
 * db.null as NULL, booleans as TINY 1/0, integers as LONGLONG, other numbers as DOUBLE, strings
 * as STRING with their length. One allocation: the binds, then the numbers, lengths and bytes.
 */
struct params {
    unsigned n;
    MYSQL_BIND *bind;
};

union param_value {
    long long i;
    double d;
    signed char b;
};

/*
 * Checks the call's arguments (sql at sql_idx, values after it) as sql_bind would, raising its
 * errors in its order, then returns them bound by type (never NULL; freed with free()).
 */
static struct params *collect_params(lua_State *L, int sql_idx)
{
    size_t len;
    const char *sql = luaL_checklstring(L, sql_idx, &len);
    size_t nargs = (size_t)(lua_gettop(L) - sql_idx), nph = sql_bind_count(sql, len);
    for (size_t i = 0; i < nargs && i < nph; ++i) {
        const char *err = sql_bind_check_value(L, sql_idx + 1 + (int)i);
        if (err != NULL)
            luaL_error(L, "db: %s", err);
    }
    if (nph > nargs)
        luaL_error(L, "db: more ? placeholders than arguments");
    if (nph < nargs)
        luaL_error(L, "db: more arguments than ? placeholders");
    size_t bytes = 0;
    for (size_t i = 0; i < nargs; ++i)
        if (lua_type(L, sql_idx + 1 + (int)i) == LUA_TSTRING)
            bytes += lua_rawlen(L, sql_idx + 1 + (int)i);
    size_t head = sizeof(struct params) + nargs * (sizeof(MYSQL_BIND) + sizeof(union param_value) + sizeof(unsigned long));
    struct params *p = util_malloc(head + bytes + 1);
    memset(p, 0, head);
    p->n = (unsigned)nargs;
    p->bind = (MYSQL_BIND *)(p + 1);
    union param_value *val = (union param_value *)(p->bind + nargs);
    unsigned long *lens = (unsigned long *)(val + nargs);
    char *out = (char *)(lens + nargs);
    for (size_t i = 0; i < nargs; ++i) {
        int idx = sql_idx + 1 + (int)i;
        MYSQL_BIND *b = &p->bind[i];
        switch (lua_type(L, idx)) {
        case LUA_TBOOLEAN:
            val[i].b = (signed char)lua_toboolean(L, idx);
            b->buffer_type = MYSQL_TYPE_TINY;
            b->buffer = &val[i].b;
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) {
                val[i].i = (long long)lua_tointeger(L, idx);
                b->buffer_type = MYSQL_TYPE_LONGLONG;
                b->buffer = &val[i].i;
            } else {
                val[i].d = lua_tonumber(L, idx);
                b->buffer_type = MYSQL_TYPE_DOUBLE;
                b->buffer = &val[i].d;
            }
            break;
        case LUA_TSTRING: {
            size_t n;
            const char *str = lua_tolstring(L, idx, &n);
            memcpy(out, str, n);
            lens[i] = (unsigned long)n;
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = out;
            b->buffer_length = (unsigned long)n;
            b->length = &lens[i];
            out += n;
            break;
        }
        default: b->buffer_type = MYSQL_TYPE_NULL; break; /* nil, db.null */
        }
    }
    return p;
}

/* Pushes the value a bind of collect_params holds, as the Lua value it came from. */
static void push_param(lua_State *L, const MYSQL_BIND *b)
{
    switch (b->buffer_type) {
    case MYSQL_TYPE_TINY: lua_pushboolean(L, *(const signed char *)b->buffer); break;
    case MYSQL_TYPE_LONGLONG: lua_pushinteger(L, (lua_Integer) * (const long long *)b->buffer); break;
    case MYSQL_TYPE_DOUBLE: lua_pushnumber(L, *(const double *)b->buffer); break;
    case MYSQL_TYPE_STRING: lua_pushlstring(L, b->buffer, b->buffer_length); break;
    default: PUSH_NULL(L); break;
    }
}

/* ---- results ---- */

static int is_integer_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_INT24 ||
           t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

static int is_float_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE || t == MYSQL_TYPE_DECIMAL || t == MYSQL_TYPE_NEWDECIMAL;
}

/* The value of column i of the row a prepared statement just fetched, as push_result gives it for text. */
struct column {
    long long i;
    double d;
    my_bool is_null, error;
    unsigned long len;
    char *buf;
    unsigned long cap;
};

/*
 * Binds the result columns of a prepared statement so that each reads as the text protocol gives
 * it: integers as 64-bit integers (their digits then read as the text's), DOUBLE as a double (the
 * text's shortest digits read back: the same number), everything else as Connector/C's text for
 * it (DECIMAL's digits, FLOAT's shortest digits, dates and times with the column's fractional
 * digits, strings, BLOB, BIT and ENUM bytes).
 */
static void bind_columns(const MYSQL_FIELD *fields, unsigned nf, MYSQL_BIND *bind, struct column *cols)
{
    for (unsigned i = 0; i < nf; ++i) {
        MYSQL_BIND *b = &bind[i];
        if (is_integer_type(fields[i].type)) {
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &cols[i].i;
            b->is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        } else if (fields[i].type == MYSQL_TYPE_DOUBLE) {
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &cols[i].d;
        } else {
            cols[i].cap = (fields[i].max_length > 63 ? fields[i].max_length : 63) + 1;
            cols[i].buf = util_malloc(cols[i].cap);
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = cols[i].buf;
            b->buffer_length = cols[i].cap;
        }
        b->is_null = &cols[i].is_null;
        b->error = &cols[i].error;
        b->length = &cols[i].len;
    }
}

/* Pushes the rows of a prepared statement (stored: fetching sends nothing), as push_result. */
static void push_stmt_rows(lua_State *L, MYSQL_STMT *st)
{
    /* the statement's own columns (Connector/C keeps their types and max_length up to date) */
    unsigned nf = st->field_count;
    const MYSQL_FIELD *fields = st->fields;
    lua_checkstack(L, (int)nf + 8);
    int names = lua_gettop(L) + 1;
    for (unsigned i = 0; i < nf; ++i)
        lua_pushlstring(L, fields[i].name, fields[i].name_length);
    lua_createtable(L, (int)mysql_stmt_num_rows(st), 0);
    MYSQL_BIND *bind = util_malloc(nf * sizeof(*bind) + 1);
    struct column *cols = util_malloc(nf * sizeof(*cols) + 1);
    memset(bind, 0, nf * sizeof(*bind));
    memset(cols, 0, nf * sizeof(*cols));
    bind_columns(fields, nf, bind, cols);
    mysql_stmt_bind_result(st, bind);
    lua_Integer n = 0;
    int rc;
    while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
        if (rc == MYSQL_DATA_TRUNCATED) {
            /* a value longer than the column's max_length said (a conversion): fetched again whole */
            for (unsigned i = 0; i < nf; ++i) {
                if (cols[i].buf == NULL || cols[i].is_null || cols[i].len < cols[i].cap)
                    continue;
                free(cols[i].buf);
                cols[i].cap = cols[i].len + 1;
                cols[i].buf = util_malloc(cols[i].cap);
                bind[i].buffer = cols[i].buf;
                bind[i].buffer_length = cols[i].cap;
                mysql_stmt_fetch_column(st, &bind[i], i, 0);
            }
            mysql_stmt_bind_result(st, bind);
        }
        lua_createtable(L, 0, (int)nf);
        for (unsigned i = 0; i < nf; ++i) {
            lua_pushvalue(L, names + (int)i);
            if (cols[i].is_null) {
                PUSH_NULL(L);
            } else if (bind[i].buffer_type == MYSQL_TYPE_LONGLONG) {
                if (bind[i].is_unsigned && cols[i].i < 0) { /* past LLONG_MAX: its digits, as the text's */
                    char num[24];
                    int k = snprintf(num, sizeof(num), "%llu", (unsigned long long)cols[i].i);
                    lua_pushlstring(L, num, (size_t)k);
                } else {
                    lua_compat_push_int64_value(L, cols[i].i);
                }
            } else if (bind[i].buffer_type == MYSQL_TYPE_DOUBLE) {
                lua_pushnumber(L, cols[i].d);
            } else if (is_float_type(fields[i].type)) {
                cols[i].buf[cols[i].len < cols[i].cap ? cols[i].len : cols[i].cap - 1] = '\0';
                lua_pushnumber(L, strtod(cols[i].buf, NULL));
            } else {
                lua_pushlstring(L, cols[i].buf, cols[i].len);
            }
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, ++n);
    }
    for (unsigned i = 0; i < nf; ++i)
        free(cols[i].buf);
    free(cols);
    free(bind);
    lua_replace(L, names);
    lua_settop(L, names);
}

static void push_result(lua_State *L, db_result_t *r)
{
    if (r->stmt != NULL) {
        push_stmt_rows(L, r->stmt);
        return;
    }
    if (r->res == NULL) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)r->affected_rows);
        lua_setfield(L, -2, "affected_rows");
        lua_pushinteger(L, (lua_Integer)r->insert_id);
        lua_setfield(L, -2, "insert_id");
        return;
    }
    unsigned nf = mysql_num_fields(r->res);
    MYSQL_FIELD *fields = mysql_fetch_fields(r->res);
    lua_checkstack(L, (int)nf + 8);
    int names = lua_gettop(L) + 1;
    for (unsigned i = 0; i < nf; ++i)
        lua_pushlstring(L, fields[i].name, fields[i].name_length);
    lua_createtable(L, (int)mysql_num_rows(r->res), 0);
    MYSQL_ROW row;
    lua_Integer n = 0;
    while ((row = mysql_fetch_row(r->res)) != NULL) {
        unsigned long *lens = mysql_fetch_lengths(r->res);
        lua_createtable(L, 0, (int)nf);
        for (unsigned i = 0; i < nf; ++i) {
            lua_pushvalue(L, names + (int)i);
            if (row[i] == NULL) {
                PUSH_NULL(L);
            } else if (is_integer_type(fields[i].type)) {
                lua_compat_push_int64(L, row[i], lens[i]);
            } else if (is_float_type(fields[i].type)) {
                lua_pushnumber(L, strtod(row[i], NULL));
            } else {
                lua_pushlstring(L, row[i], lens[i]);
            }
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, ++n);
    }
    lua_replace(L, names);
    lua_settop(L, names);
}

/* ---- running statements from a coroutine ---- */

/* What an operation is, which decides who holds its connection and whether it may run twice. */
enum op_kind {
    OP_QUERY,  /* db.query / db.read: a connection of its own, released when it ends */
    OP_BEGIN,  /* db.begin(): START TRANSACTION; on success the connection becomes the tx's */
    OP_IN_TX,  /* tx:query(): on the tx's connection, which the tx keeps */
    OP_END_TX, /* tx:commit() / tx:rollback(): the tx's connection is released when it ends */
};

/* One statement in flight for a coroutine. */
struct db_op {
    lua_req_t *lr;
    enum op_kind kind;
    db_stmt_kind_t stmt; /* for the retry rule (db_retry.h) */
    int replica;         /* a read on the replica: run on the primary if the replica is unavailable */
    db_conn_t *conn;     /* NULL until acquired */
    struct tx *tx;       /* the transaction of OP_IN_TX and OP_END_TX */
    char *sql;
    size_t len;
    struct params *params; /* set: sql has `?` placeholders and runs as a prepared statement */
};

/* A write succeeded: the response carries the read-your-writes cookie when routing wants one. */
static void route_wrote(lua_req_t *lr)
{
    char cookie[DB_ROUTE_COOKIE_MAX];
    if (db_route_wrote(lua_req_worker(lr), lua_req_h2o(lr), cookie) != NULL)
        lua_req_set_cookie(lr, cookie);
}

static void op_free(struct db_op *op)
{
    free(op->params);
    free(op->sql);
    free(op);
}

/*
 * Gives back what the op holds once its statement ended (failed or not). The one place that
 * decides who keeps a connection: a failed BEGIN or END closes it (the server rolls back).
 */
static void op_release(struct db_op *op, int failed)
{
    if (op->conn == NULL)
        return;
    switch (op->kind) {
    case OP_QUERY: db_conn_release(op->conn); break;
    case OP_BEGIN:
        if (!failed)
            return; /* the tx holds it now */
        db_conn_set_transaction(op->conn, 1);
        db_conn_release(op->conn);
        break;
    case OP_IN_TX: return; /* the tx holds it */
    case OP_END_TX:
        db_conn_set_transaction(op->conn, failed);
        db_conn_release(op->conn);
        op->tx->conn = NULL;
        break;
    }
    op->conn = NULL;
}

/* Resumes the coroutine with (false, kind, message): kind 503 or 500. */
static void resume_error(struct db_op *op, int err, const char *msg)
{
    lua_State *co = lua_req_coroutine(op->lr);
    lua_pushboolean(co, 0);
    lua_pushinteger(co, err == DB_EUNAVAILABLE ? 503 : 500);
    lua_pushstring(co, msg != NULL ? msg : "database error");
    lua_req_t *lr = op->lr;
    op_free(op);
    lua_host_resume(lr, 3);
}

static void op_complete(struct db_op *op, int err, const char *msg, db_result_t *result);

static void on_done(void *data, int err, const char *msg, db_result_t *result);

/*
 * The server does not prepare the op's statement: its values are spliced into its text by the
 * binder (sql_bind.h), on the coroutine's stack, and the text is sent on the same connection.
 */
static int op_send_text(struct db_op *op, const char **msg)
{
    lua_State *co = lua_req_coroutine(op->lr);
    int top = lua_gettop(co);
    lua_checkstack(co, (int)op->params->n + 8);
    for (unsigned i = 0; i < op->params->n; ++i)
        push_param(co, &op->params->bind[i]);
    luaL_Buffer b;
    luaL_buffinit(co, &b);
    const char *err = sql_bind(co, &b, op->sql, op->len, top + 1, (int)op->params->n);
    if (err != NULL) {
        lua_settop(co, top);
        *msg = err;
        return DB_EQUERY;
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(co, -1, &len);
    free(op->sql);
    op->sql = util_strndup(text, len);
    op->len = len;
    lua_settop(co, top);
    free(op->params);
    op->params = NULL;
    return db_conn_query(op->conn, op->sql, op->len, op->stmt, on_done, op, msg);
}

static void on_done(void *data, int err, const char *msg, db_result_t *result)
{
    struct db_op *op = data;
    if (err == DB_ETEXT) {
        if ((err = op_send_text(op, &msg)) == 0)
            return;
        result = NULL;
    }
    op_complete(op, err, msg, result);
}

/* Sends the op's statement on its connection: 0 (on_done follows), or a negative code with msg. */
static int op_send(struct db_op *op, db_conn_t *conn, const char **msg)
{
    op->conn = conn;
    if (op->kind == OP_BEGIN)
        db_conn_set_transaction(conn, 1);
    int err = op->params != NULL
                  ? db_conn_execute(conn, op->sql, op->len, op->params->bind, op->params->n, op->stmt, on_done, op, msg)
                  : db_conn_query(conn, op->sql, op->len, op->stmt, on_done, op, msg);
    if (err != 0)
        op_release(op, 1);
    return err;
}

static void op_fail(struct db_op *op, int err, const char *msg);

static void on_acquired(void *data, db_conn_t *conn, int err, const char *msg)
{
    struct db_op *op = data;
    if (err == DB_ECLOSED) {
        op_free(op); /* the worker stopped: the abandoned coroutine is never resumed */
        return;
    }
    if (err == 0 && (err = op_send(op, conn, &msg)) == 0)
        return;
    op_fail(op, err, msg);
}

/* Starts the op (acquiring from pool when it has no connection): 0, or a negative code with msg. */
static int op_start(struct db_op *op, db_pool_t *pool, const char **msg)
{
    if (op->conn != NULL)
        return op_send(op, op->conn, msg);
    db_conn_t *conn;
    int r = db_pool_acquire(pool, &conn, on_acquired, op, msg);
    return r == 1 ? op_send(op, conn, msg) : r; /* 0: on_acquired continues */
}

/*
 * The one rule for a read the replica cannot serve (no connection can be had there, at once or
 * later, or it was lost): the replica is reported failed and the read starts on the primary.
 * Returns op_start's result there, with *msg its message.
 */
static int start_on_primary(struct db_op *op, const char *why, const char **msg)
{
    worker_t *w = lua_req_worker(op->lr);
    db_route_replica_failed(w, why);
    op->replica = 0;
    *msg = NULL;
    return op_start(op, w->db, msg);
}

/*
 * The one end of an op that failed, whenever it failed (waiting for a connection, sending, or
 * running): a read the replica could not serve starts again on the primary; anything else resumes
 * the coroutine with the error.
 */
static void op_fail(struct db_op *op, int err, const char *msg)
{
    if (err == DB_EUNAVAILABLE && op->replica && (err = start_on_primary(op, msg, &msg)) == 0)
        return;
    resume_error(op, err, msg);
}

/* The one completion of an op: gives back what it holds, then resumes the coroutine. */
static void op_complete(struct db_op *op, int err, const char *msg, db_result_t *result)
{
    if (err == DB_ECLOSED) {
        /* the worker stopped: the pool closed the connection; the coroutine is never resumed */
        if (op->tx != NULL)
            op->tx->conn = NULL;
        op_free(op);
        return;
    }
    if (err != 0) {
        op_release(op, 1);
        op_fail(op, err, msg);
        return;
    }
    lua_State *co = lua_req_coroutine(op->lr);
    if (!op->replica && (op->kind == OP_END_TX || (op->kind == OP_QUERY && result->res == NULL && result->stmt == NULL)))
        route_wrote(op->lr);
    if (op->kind != OP_BEGIN && op->kind != OP_END_TX)
        push_result(co, result); /* first: a prepared statement's rows are read before the release */
    op_release(op, 0);
    lua_pushboolean(co, 1);
    if (op->kind != OP_BEGIN && op->kind != OP_END_TX)
        lua_insert(co, -2); /* ok, rows */
    if (op->kind == OP_BEGIN) {
        struct tx *tx = lua_newuserdatauv(co, sizeof(*tx), 0);
        tx->conn = op->conn;
        luaL_setmetatable(co, TX_MT);
        lua_req_hold(op->lr, 1); /* until it ends, or its __gc gives the connection back */
    } else if (op->kind == OP_END_TX) {
        lua_pushboolean(co, 1);
        lua_req_hold(op->lr, -1);
    }
    lua_pushnil(co);
    lua_req_t *lr = op->lr;
    op_free(op);
    lua_host_resume(lr, 3);
}

/*
 * raise(code, message): the failure of a statement, raised in the caller's coroutine after it was
 * resumed with (false, code, message): an HTTP 503 error, or "db: message" for a statement the
 * server refused (500).
 */
static int l_raise(lua_State *L)
{
    const char *msg = luaL_optstring(L, 2, "database error");
    if (lua_tointeger(L, 1) == 503)
        return lua_host_raise_http_error(L, 503, msg);
    return luaL_error(L, "db: %s", msg);
}

/*
 * The functions the application calls. Each C function yields without a continuation (both VMs
 * allow that) and is resumed with (ok, value, message); these few lines turn that into a value or
 * an error. Arguments: the raw module, the raw tx methods, l_raise.
 */
static const char wrappers[] = "local raw, raw_tx, raise = ...\n"
                               "local function result(ok, value, message)\n"
                               "  if ok then return value end\n"
                               "  return raise(value, message)\n"
                               "end\n"
                               "local db = { escape = raw.escape, ready = raw.ready, null = raw.null }\n"
                               "function db.query(...) return result(raw.query(...)) end\n"
                               "function db.read(...) return result(raw.read(...)) end\n"
                               "function db.begin() return result(raw.begin()) end\n"
                               "local tx = {}\n"
                               "function tx:query(...) return result(raw_tx.query(self, ...)) end\n"
                               "function tx:commit() return result(raw_tx.commit(self)) end\n"
                               "function tx:rollback() return result(raw_tx.rollback(self)) end\n"
                               "return db, tx\n";

/* Every function here yields: the request, or a raise when this code may not yield (see lua_host.h). */
static lua_req_t *request_or_error(lua_State *L, const char *what)
{
    return lua_host_req_yieldable(L, what);
}

static db_pool_t *pool_or_error(lua_State *L, worker_t *w, int read)
{
    if (w->db == NULL)
        lua_host_raise_http_error(L, 503, "no database is configured (set DATABASE_URL)");
    if (!migrate_is_done())
        lua_host_raise_http_error(L, 503, "the database is not ready yet (migrations pending)");
    (void)read;
    return w->db;
}

/*
 * Starts op (sql at the top of L's stack) on pool, or on the tx's connection, and yields. A
 * failure known at once is raised here, never by resuming the coroutine that is still running.
 */
static int run_op(lua_State *L, struct db_op *op, db_pool_t *pool)
{
    size_t len;
    const char *sql = lua_tolstring(L, -1, &len);
    op->sql = util_strndup(sql, len);
    op->len = len;
    const char *msg = NULL;
    int r = op_start(op, pool, &msg);
    if (r == DB_EUNAVAILABLE && op->replica) /* the replica's pool is down or full: at once */
        r = start_on_primary(op, msg, &msg);
    if (r < 0) {
        char buf[320];
        snprintf(buf, sizeof(buf), "%s", msg != NULL ? msg : "database unavailable");
        op_free(op);
        return lua_host_raise_http_error(L, 503, buf);
    }
    lua_host_suspend(op->lr);
    return lua_yield(L, 0);
}

/*
 * Binds the call's arguments (sql at sql_idx): with DB_STMT_CACHE on, returns them bound by type
 * and pushes sql as it is (a prepared statement); else returns NULL and pushes the text with every
 * value spliced in (sql_bind.h). Raises the binder's errors either way, before anything is sent.
 */
static struct params *bind_args(lua_State *L, worker_t *w, int sql_idx)
{
    if (w->cfg->db_stmt_cache == 0) {
        push_bound(L, sql_idx);
        return NULL;
    }
    struct params *p = collect_params(L, sql_idx);
    lua_pushvalue(L, sql_idx);
    return p;
}

static struct db_op *new_op(lua_req_t *lr, enum op_kind kind, db_stmt_kind_t stmt)
{
    struct db_op *op = util_malloc(sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->lr = lr;
    op->kind = kind;
    op->stmt = stmt;
    return op;
}

static int query_common(lua_State *L, int read)
{
    lua_req_t *lr = request_or_error(L, read ? "db.read" : "db.query");
    worker_t *w = lua_req_worker(lr);
    pool_or_error(L, w, read);
    db_pool_t *pool = read ? db_route_read_pool(w, lua_req_h2o(lr)) : w->db;
    struct params *params = bind_args(L, w, 1);
    size_t len;
    const char *sql = lua_tolstring(L, -1, &len);
    /* db.read promises a statement that changes nothing; db.query's SELECTs are found by their text */
    struct db_op *op = new_op(lr, OP_QUERY, read ? DB_STMT_READ : db_retry_classify(sql, len));
    op->replica = pool != w->db;
    op->params = params;
    return run_op(L, op, pool);
}

static int l_query(lua_State *L)
{
    return query_common(L, 0);
}

static int l_read(lua_State *L)
{
    return query_common(L, 1);
}

static int l_begin(lua_State *L)
{
    lua_req_t *lr = request_or_error(L, "db.begin");
    db_pool_t *pool = pool_or_error(L, lua_req_worker(lr), 0);
    struct db_op *op = new_op(lr, OP_BEGIN, DB_STMT_BEGIN);
    lua_pushliteral(L, "START TRANSACTION");
    return run_op(L, op, pool);
}

static struct tx *check_open_tx(lua_State *L)
{
    struct tx *tx = luaL_checkudata(L, 1, TX_MT);
    if (tx->conn == NULL)
        luaL_error(L, "db: the transaction has already ended");
    return tx;
}

static int l_tx_query(lua_State *L)
{
    lua_req_t *lr = request_or_error(L, "tx:query");
    struct tx *tx = check_open_tx(L);
    struct params *params = bind_args(L, lua_req_worker(lr), 2);
    struct db_op *op = new_op(lr, OP_IN_TX, DB_STMT_IN_TX);
    op->params = params;
    op->tx = tx;
    op->conn = tx->conn;
    return run_op(L, op, NULL);
}

static int tx_end(lua_State *L, const char *sql)
{
    lua_req_t *lr = request_or_error(L, sql[0] == 'C' ? "tx:commit" : "tx:rollback");
    struct tx *tx = check_open_tx(L);
    struct db_op *op = new_op(lr, OP_END_TX, DB_STMT_IN_TX);
    op->tx = tx;
    op->conn = tx->conn;
    lua_pushstring(L, sql);
    return run_op(L, op, NULL);
}

static int l_tx_commit(lua_State *L)
{
    return tx_end(L, "COMMIT");
}

static int l_tx_rollback(lua_State *L)
{
    return tx_end(L, "ROLLBACK");
}

static int l_tx_gc(lua_State *L)
{
    struct tx *tx = luaL_checkudata(L, 1, TX_MT);
    if (tx->conn != NULL) {
        /* never committed: closing the connection makes the server roll it back */
        db_conn_set_transaction(tx->conn, 1);
        db_conn_release(tx->conn);
        tx->conn = NULL;
    }
    return 0;
}

static int l_escape(lua_State *L)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *err = sql_bind_literal(L, &b, 1);
    if (err != NULL)
        return luaL_error(L, "db: %s", err);
    luaL_pushresult(&b);
    return 1;
}

static int l_ready(lua_State *L)
{
    lua_pushboolean(L, migrate_is_done());
    return 1;
}

static int open_db(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"query", l_query}, {"read", l_read}, {"begin", l_begin}, {"escape", l_escape}, {"ready", l_ready}, {NULL, NULL},
    };
    static const luaL_Reg tx_methods[] = {
        {"query", l_tx_query},
        {"commit", l_tx_commit},
        {"rollback", l_tx_rollback},
        {NULL, NULL},
    };
    if (luaL_loadbuffer(L, wrappers, sizeof(wrappers) - 1, "=h2lua.db") != LUA_OK)
        return lua_error(L);
    luaL_newlib(L, funcs);
    PUSH_NULL(L);
    lua_setfield(L, -2, "null");
    luaL_newlib(L, tx_methods);
    lua_pushcfunction(L, l_raise);
    lua_call(L, 3, 2); /* -> db, tx methods */
    if (luaL_newmetatable(L, TX_MT)) {
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_tx_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tx_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 2);
    return 1;
}

void db_api_preload(lua_State *L, const config_t *cfg, worker_t *w)
{
    (void)cfg, (void)w;
    lua_pushcfunction(L, open_db);
    lua_setfield(L, -2, "h2lua.db");
}
