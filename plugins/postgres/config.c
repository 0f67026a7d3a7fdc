/*
 * config.c - configuration parameters: the schema comes from pg_settings,
 * overrides go through ALTER SYSTEM (postgresql.auto.conf) and a reload, and
 * pg_settings.pending_restart tells what waits for a restart. Parameters the
 * plugin owns (archiving, replication, listening) or that name files,
 * commands or libraries are not offered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg.h"

static const char *const OWNED[] = {
    "archive_mode", "archive_command", "archive_library", "restore_command", "archive_cleanup_command",
    "recovery_end_command", "wal_log_hints", "primary_conninfo", "primary_slot_name", "hot_standby",
    "port", "listen_addresses", "unix_socket_directories", "unix_socket_group", "unix_socket_permissions",
    "data_directory", "config_file", "hba_file", "ident_file", "external_pid_file", "dynamic_library_path",
    "default_transaction_read_only", "allow_system_table_mods", "jit_provider", "krb_server_keyfile", "ssl",
    "promote_trigger_file", "recovery_target", "recovery_target_action", "recovery_target_inclusive",
    "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_timeline",
    "recovery_target_xid", "recovery_min_apply_delay", "log_directory", "event_source",
};
static const char *const OWNED_SUFFIXES[] = {"_command", "_library", "_libraries", "_file", "_directory",
                                             "_directories", "_path"};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Whether operators may set `name` (in `context`) through the API. */
static bool offered(const char *name, const char *context)
{
    if (strcmp(context, "internal") == 0 || strncmp(name, "ssl_", 4) == 0)
        return false;
    for (size_t i = 0; i < sizeof(OWNED) / sizeof(OWNED[0]); i++)
        if (strcmp(name, OWNED[i]) == 0)
            return false;
    for (size_t i = 0; i < sizeof(OWNED_SUFFIXES) / sizeof(OWNED_SUFFIXES[0]); i++)
        if (ends_with(name, OWNED_SUFFIXES[i]))
            return false;
    return true;
}

static const char SETTINGS_SQL[] =
    "SELECT name, vartype, min_val, max_val, array_to_string(enumvals, ','), unit, context, boot_val, short_desc, "
    "setting FROM pg_settings ORDER BY name";

static int emit_row(struct pg_ctx *ctx, struct trove_call *call, PGresult *r, int i)
{
    const char *type = PQgetvalue(r, i, 1);
    struct trove_param p = {.size = sizeof(p), .name = PQgetvalue(r, i, 0), .type = TROVE_PARAM_STRING};
    char *enums = NULL;
    const char **allowed = NULL;
    p.dynamic = strcmp(PQgetvalue(r, i, 6), "postmaster") != 0;
    p.unit = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
    p.default_value = PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7);
    p.description = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8);
    if (strcmp(type, "bool") == 0) {
        p.type = TROVE_PARAM_BOOLEAN;
    } else if (strcmp(type, "integer") == 0) {
        p.type = TROVE_PARAM_INTEGER;
        p.min = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        p.max = strtoll(PQgetvalue(r, i, 3), NULL, 10);
    } else if (strcmp(type, "real") == 0) {
        p.type = TROVE_PARAM_FLOAT;
        p.min_float = strtod(PQgetvalue(r, i, 2), NULL);
        p.max_float = strtod(PQgetvalue(r, i, 3), NULL);
    } else if (strcmp(type, "enum") == 0) {
        p.type = TROVE_PARAM_ENUM;
        enums = strdup(PQgetvalue(r, i, 4));
        size_t n = 1;
        for (const char *c = enums ? enums : ""; *c; c++)
            n += *c == ',';
        allowed = calloc(n, sizeof(char *));
        if (!enums || !allowed) {
            free(enums);
            free(allowed);
            return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        }
        for (char *save = NULL, *tok = strtok_r(enums, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            allowed[p.n_allowed++] = tok;
        p.allowed = allowed;
    }
    int rc = ctx->host->emit_param(call, &p);
    free(allowed);
    free(enums);
    return rc;
}

/* One line of `postgres --describe-config`: name, context, group, TYPE,
 * default, min, max, short description, long description (tab-separated). */
static int emit_described(struct pg_ctx *ctx, struct trove_call *call, char *line)
{
    char *f[9] = {0};
    int n = 0;
    for (char *p = line; n < 9; n++) {
        f[n] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    if (n < 7 || !offered(f[0], f[1]))
        return TROVE_OK;
    struct trove_param p = {.size = sizeof(p), .name = f[0], .type = TROVE_PARAM_STRING, .default_value = f[4], .description = f[7]};
    p.dynamic = strcmp(f[1], "postmaster") != 0;
    if (strcmp(f[3], "BOOLEAN") == 0) {
        p.type = TROVE_PARAM_BOOLEAN;
    } else if (strcmp(f[3], "INTEGER") == 0) {
        p.type = TROVE_PARAM_INTEGER;
        p.min = strtoll(f[5], NULL, 10);
        p.max = strtoll(f[6], NULL, 10);
    } else if (strcmp(f[3], "REAL") == 0) {
        p.type = TROVE_PARAM_FLOAT;
        p.min_float = strtod(f[5], NULL);
        p.max_float = strtod(f[6], NULL);
    }
    return ctx->host->emit_param(call, &p);
}

/* The schema of a server that is not running yet (a fresh instance being
 * prepared): the binary's own description. Enum values and units are not
 * in it, so enums appear as strings and the server checks them on apply. */
static int schema_offline(struct pg_ctx *ctx, struct trove_call *call)
{
    size_t size = 1 << 20;
    char *out = malloc(size);
    if (!out)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    const char *argv[] = {"postgres", "--describe-config", NULL};
    int rc = pg_tool_run(ctx, call, argv, NULL, out, size);
    for (char *save = NULL, *line = rc == TROVE_OK ? strtok_r(out, "\n", &save) : NULL; line && rc == TROVE_OK;
         line = strtok_r(NULL, "\n", &save))
        rc = emit_described(ctx, call, line);
    free(out);
    return rc;
}

int pg_config_schema(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    if (ctx->s.datadir[0] && !pg_server_running(ctx))
        return schema_offline(ctx, call);
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_conn_query(ctx, call, c, SETTINGS_SQL, 0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++)
        if (offered(PQgetvalue(r, i, 0), PQgetvalue(r, i, 6)))
            rc = emit_row(ctx, call, r, i);
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* TROVE_OK when every name is an offered parameter of this server. */
static int check_names(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const struct trove_kv *values,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p[] = {values[i].key};
        PGresult *r = pg_conn_query(ctx, call, c, "SELECT context FROM pg_settings WHERE name = $1", 1, p);
        if (!r)
            return TROVE_EDATASTORE;
        bool ok = PQntuples(r) == 1 && offered(values[i].key, PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!ok)
            return ctx->host->fail(call, TROVE_EINVAL, "parameter \"%s\" is unknown or managed by the agent",
                                   values[i].key);
    }
    return TROVE_OK;
}

int pg_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct pg_ctx *ctx = self;
    char problems[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = values[i].key, *v = values[i].value ? values[i].value : "";
        const char *why = NULL;
        if (strcmp(k, "wal_level") == 0 && strcasecmp(v, "minimal") == 0)
            why = "wal_level = minimal: backups and replication need replica or logical";
        else if (strcmp(k, "max_wal_senders") == 0 && atol(v) < 2)
            why = "max_wal_senders < 2: backups and replicas need WAL senders";
        if (why)
            len += (size_t)snprintf(problems + len, len < sizeof(problems) ? sizeof(problems) - len : 0, "%s%s",
                                    len ? "; " : "", why);
    }
    if (len)
        return ctx->host->fail(call, TROVE_EINVAL, "%s", problems);
    return TROVE_OK;
}

/* "ALTER SYSTEM SET a.b = 'v'" / "ALTER SYSTEM RESET a.b" (value NULL);
 * names are checked against pg_settings first, and each dotted part is
 * quoted. */
static void alter_sql(struct tps_buf *b, const char *name, const char *value)
{
    tps_buf_add(b, value ? "ALTER SYSTEM SET " : "ALTER SYSTEM RESET ");
    for (const char *part = name;;) {
        size_t len = strcspn(part, ".");
        struct tps_buf one = {0};
        tps_buf_addn(&one, part, len);
        tps_quote_ident(b, tps_buf_str(&one) ? one.data : "", '"');
        b->oom = b->oom || one.oom;
        tps_buf_free(&one);
        if (!part[len])
            break;
        tps_buf_add(b, ".");
        part += len + 1;
    }
    if (value) {
        tps_buf_add(b, " = ");
        tps_quote_literal(b, value);
    }
}

static int alter(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, const char *value)
{
    struct tps_buf sql = {0};
    alter_sql(&sql, name, value);
    return pg_conn_run_buf(ctx, call, c, &sql);
}

int pg_config_reload(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    PGresult *r = pg_conn_query(ctx, call, c, "SELECT pg_conf_load_time()::text, pg_reload_conf()", 0, NULL);
    if (!r)
        return TROVE_EDATASTORE;
    char before[64];
    snprintf(before, sizeof(before), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    /* A backend re-reads the files at its next statement after the
     * postmaster forwarded SIGHUP; pg_conf_load_time() moves then. */
    for (uint64_t deadline = tps_now_ms() + 10000; tps_now_ms() < deadline; tps_sleep_ms(20)) {
        bool reloaded = false;
        const char *p[] = {before};
        int rc = pg_conn_query_bool(ctx, call, c, "SELECT pg_conf_load_time() > $1::timestamptz", 1, p, &reloaded);
        if (rc != TROVE_OK || reloaded)
            return rc;
    }
    return ctx->host->fail(call, TROVE_ETIMEOUT, "the server did not reload its configuration within 10 s");
}

/* add_str "applied" or "pending_restart" for `name`. */
static int report(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    const char *p[] = {name};
    bool pending = false;
    int rc = pg_conn_query_bool(ctx, call, c, "SELECT pending_restart FROM pg_settings WHERE name = $1", 1, p,
                                &pending);
    return rc == TROVE_OK ? ctx->host->add_str(call, pending ? "pending_restart" : "applied", name) : rc;
}

/* The overrides now in postgresql.auto.conf: name, setting. */
static PGresult *current_overrides(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    return pg_conn_query(ctx, call, c,
                         "SELECT name, setting FROM pg_file_settings "
                         "WHERE sourcefile = current_setting('data_directory') || '/postgresql.auto.conf' "
                         "ORDER BY seqno",
                         0, NULL);
}

static const char *override_of(PGresult *prev, const char *name)
{
    const char *found = NULL;
    for (int i = 0; i < PQntuples(prev); i++)
        if (strcmp(PQgetvalue(prev, i, 0), name) == 0)
            found = PQgetvalue(prev, i, 1);   /* the last entry wins, as in the server */
    return found;
}

int pg_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    return pg_config_set(self, call, values, n, true);
}

int pg_config_set(struct pg_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n, bool reporting)
{
    int rc = pg_config_validate(ctx, call, values, n);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *prev = NULL;
    size_t done = 0;
    if ((rc = check_names(ctx, call, c, values, n)) != TROVE_OK)
        goto out;
    if (!(prev = current_overrides(ctx, call, c))) {
        rc = TROVE_EDATASTORE;
        goto out;
    }
    for (; done < n && rc == TROVE_OK; done++)
        rc = alter(ctx, call, c, values[done].key, values[done].value ? values[done].value : "");
    if (rc != TROVE_OK) {
        /* All or nothing: put back what was there before this call. */
        for (size_t i = 0; i + 1 < done; i++) {
            struct tps_buf undo = {0};
            alter_sql(&undo, values[i].key, override_of(prev, values[i].key));
            if (tps_buf_str(&undo))
                PQclear(PQexec(c, undo.data));
            tps_buf_free(&undo);
        }
        goto out;
    }
    if ((rc = pg_config_reload(ctx, call, c)) != TROVE_OK)
        goto out;
    for (size_t i = 0; reporting && i < n && rc == TROVE_OK; i++)
        rc = report(ctx, call, c, values[i].key);
out:
    PQclear(prev);
    PQfinish(c);
    return rc;
}

int pg_config_reset(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *prev = current_overrides(ctx, call, c);
    int rc = prev ? pg_conn_run(ctx, call, c, "ALTER SYSTEM RESET ALL", 0, NULL) : TROVE_EDATASTORE;
    /* Read-only mode is replication state, not an override: keep it. */
    const char *read_only = prev ? override_of(prev, "default_transaction_read_only") : NULL;
    if (rc == TROVE_OK && read_only)
        rc = alter(ctx, call, c, "default_transaction_read_only", read_only);
    if (rc == TROVE_OK)
        rc = pg_config_reload(ctx, call, c);
    for (int i = 0; rc == TROVE_OK && i < PQntuples(prev); i++) {
        const char *name = PQgetvalue(prev, i, 0);
        if (strcmp(name, "default_transaction_read_only") != 0 && override_of(prev, name) == PQgetvalue(prev, i, 1))
            rc = report(ctx, call, c, name);
    }
    PQclear(prev);
    PQfinish(c);
    return rc;
}

int pg_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_conn_query(ctx, call, c, SETTINGS_SQL, 0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (size_t k = 0; rc == TROVE_OK && k < n; k++) {
        bool found = false;
        for (int i = 0; !found && i < PQntuples(r); i++)
            found = strcmp(PQgetvalue(r, i, 0), names[k]) == 0 && offered(names[k], PQgetvalue(r, i, 6));
        if (!found)
            rc = ctx->host->fail(call, TROVE_EINVAL, "parameter \"%s\" is unknown or managed by the agent", names[k]);
    }
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        bool wanted = n == 0 && offered(name, PQgetvalue(r, i, 6));
        for (size_t k = 0; !wanted && k < n; k++)
            wanted = strcmp(names[k], name) == 0;
        if (wanted)
            rc = ctx->host->put(call, "values", name, PQgetvalue(r, i, 9));
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
