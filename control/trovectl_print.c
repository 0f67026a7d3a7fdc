/*
 * trovectl_print.c - trovectl's output for humans: "key: value" lines and
 * aligned tables. Secrets (fields named like passwords) are masked except
 * where the user asked for them (root-enable, replication-snapshot).
 * --json output does not come through here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "trovectl.h"

#define MASK "********"
#define CELL 512
#define MAX_COLUMNS 8

/* A scalar as text; maps as compact JSON; arrays comma-joined, where a map
 * with a name (a database in a user's list, say) stands for its name. */
static void value_text(const struct tv *v, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!v) {
        snprintf(out, outlen, "-");
        return;
    }
    switch (v->type) {
    case TV_NIL:
        snprintf(out, outlen, "-");
        break;
    case TV_BOOL:
        snprintf(out, outlen, "%s", v->u.b ? "true" : "false");
        break;
    case TV_INT:
        snprintf(out, outlen, "%lld", (long long)v->u.i);
        break;
    case TV_FLOAT:
        snprintf(out, outlen, "%g", v->u.f);
        break;
    case TV_STR:
        snprintf(out, outlen, "%s", v->u.s.ptr);
        break;
    case TV_BIN:
        snprintf(out, outlen, "(%zu bytes)", v->u.s.len);
        break;
    case TV_ARRAY: {
        size_t used = 0;
        for (size_t i = 0; i < v->u.a.len && used < outlen; i++) {
            char item[CELL];
            const char *name = tv_get_str(v->u.a.items[i], "name");
            if (name)
                snprintf(item, sizeof item, "%s", name);
            else
                value_text(v->u.a.items[i], item, sizeof item);
            used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", item);
        }
        break;
    }
    case TV_MAP: {
        char *json = tv_to_json(v, false);
        snprintf(out, outlen, "%s", json ? json : "{...}");
        free(json);
        break;
    }
    }
}

/* "key: value" lines; nested maps as "key.sub: value". */
static void print_kv_prefixed(const struct tv *map, const char *prefix, bool reveal)
{
    if (!map || map->type != TV_MAP)
        return;
    for (size_t i = 0; i < map->u.m.len; i++) {
        const struct tv_pair *p = &map->u.m.items[i];
        char key[256], text[4096];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", p->key);
        if (p->value && p->value->type == TV_MAP && p->value->u.m.len > 0) {
            print_kv_prefixed(p->value, key, reveal);
            continue;
        }
        bool masked = !reveal && log_is_secret_key(p->key) && p->value && p->value->type != TV_NIL;
        if (!masked && p->value && p->value->type == TV_STR) {
            printf("%s: %s\n", key, p->value->u.s.ptr);   /* a string whole, however long */
            continue;
        }
        if (masked)
            snprintf(text, sizeof text, MASK);
        else
            value_text(p->value, text, sizeof text);
        printf("%s: %s\n", key, text);
    }
}

void print_kv(const struct tv *map, bool reveal_secrets)
{
    print_kv_prefixed(map, "", reveal_secrets);
}

void print_result_kv(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    print_kv(result, false);
}

void print_result_kv_secrets(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    print_kv(result, true);
}

void print_ping(const struct tv *result, const struct cli_args *a)
{
    const char *instance = tv_get_str(result, "instance");
    printf("pong from %s\n", instance ? instance : a->pos[0]);
}

/* ------------------------------------------------------------ tables */

struct table_out {
    int columns;
    const char *headers[MAX_COLUMNS];
    size_t width[MAX_COLUMNS];
    char (*cells)[CELL];   /* rows * columns */
    size_t rows, cap;
};

static void table_start(struct table_out *t, int columns, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->columns = columns;
    for (int c = 0; c < columns; c++) {
        t->headers[c] = headers[c];
        t->width[c] = strlen(headers[c]);
    }
}

/* The text buffer of one cell. */
static char *table_cell(struct table_out *t, size_t row, int column)
{
    return t->cells[row * (size_t)t->columns + (size_t)column];
}

static bool table_add_row(struct table_out *t)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        void *cells = realloc(t->cells, cap * (size_t)t->columns * CELL);
        if (!cells)
            return false;
        t->cells = cells;
        t->cap = cap;
    }
    for (int c = 0; c < t->columns; c++)
        table_cell(t, t->rows, c)[0] = '\0';
    t->rows++;
    return true;
}

static void table_set(struct table_out *t, int column, const struct tv *v)
{
    value_text(v, table_cell(t, t->rows - 1, column), CELL);
}

static void table_print(struct table_out *t)
{
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->columns; c++) {
            size_t w = strlen(table_cell(t, r, c));
            if (w > t->width[c])
                t->width[c] = w;
        }
    for (int c = 0; c < t->columns; c++)
        printf("%-*s%s", c + 1 < t->columns ? (int)t->width[c] : 0, t->headers[c], c + 1 < t->columns ? "  " : "\n");
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->columns; c++)
            printf("%-*s%s", c + 1 < t->columns ? (int)t->width[c] : 0, table_cell(t, r, c),
                   c + 1 < t->columns ? "  " : "\n");
    free(t->cells);
    t->cells = NULL;
}

/* A table with one row per map in result[list_key], one column per field. */
static void print_list(const struct tv *result, const char *list_key, int columns, const char *const *headers,
                       const char *const *fields)
{
    const struct tv *list = tv_get(result, list_key);
    struct table_out t;
    table_start(&t, columns, headers);
    for (size_t i = 0; list && list->type == TV_ARRAY && i < list->u.a.len; i++) {
        if (!table_add_row(&t))
            break;
        for (int c = 0; c < columns; c++)
            table_set(&t, c, tv_get(list->u.a.items[i], fields[c]));
    }
    table_print(&t);
    const char *marker = tv_get_str(result, "next_marker");
    if (marker && *marker)
        printf("(more: --marker %s)\n", marker);
}

void print_instances(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"INSTANCE", "CONNECTED", "STATE", "ROLE", "PLUGIN", "LAST HEARTBEAT"};
    const struct tv *list = tv_get(result, "instances");
    struct table_out t;
    table_start(&t, 6, headers);
    for (size_t i = 0; list && list->type == TV_ARRAY && i < list->u.a.len; i++) {
        const struct tv *inst = list->u.a.items[i];
        if (!table_add_row(&t))
            break;
        table_set(&t, 0, tv_get(inst, "instance"));
        table_set(&t, 1, tv_get(inst, "connected"));
        table_set(&t, 2, tv_get(inst, "state"));
        table_set(&t, 3, tv_get(inst, "role"));
        const struct tv *plugin = tv_get(inst, "plugin");
        snprintf(table_cell(&t, t.rows - 1, 4), CELL, "%s %s",
                 plugin && tv_get_str(plugin, "name") ? tv_get_str(plugin, "name") : "-",
                 plugin && tv_get_str(plugin, "version") ? tv_get_str(plugin, "version") : "");
        int64_t ago = tv_get_int(inst, "last_heartbeat_ms_ago", -1);
        if (ago < 0)
            snprintf(table_cell(&t, t.rows - 1, 5), CELL, "never");
        else
            snprintf(table_cell(&t, t.rows - 1, 5), CELL, "%.1f s ago", (double)ago / 1000.0);
    }
    table_print(&t);
}

void print_instance(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    print_kv(tv_get(result, "instance"), false);
}

void print_users(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"NAME", "HOST", "DATABASES"};
    static const char *const fields[] = {"name", "host", "databases"};
    print_list(result, "users", 3, headers, fields);
}

void print_user(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    print_kv(tv_get(result, "user"), false);
}

void print_databases(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"NAME", "CHARACTER SET", "COLLATION", "OWNER"};
    static const char *const fields[] = {"name", "character_set", "collation", "owner"};
    print_list(result, "databases", 4, headers, fields);
}

void print_access(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"DATABASE"};
    static const char *const fields[] = {"name"};
    print_list(result, "databases", 1, headers, fields);
}

void print_schema(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"NAME", "TYPE", "RANGE", "DYNAMIC", "DEFAULT", "UNIT"};
    const struct tv *list = tv_get(result, "parameters");
    struct table_out t;
    table_start(&t, 6, headers);
    for (size_t i = 0; list && list->type == TV_ARRAY && i < list->u.a.len; i++) {
        const struct tv *p = list->u.a.items[i];
        if (!table_add_row(&t))
            break;
        table_set(&t, 0, tv_get(p, "name"));
        table_set(&t, 1, tv_get(p, "type"));
        const struct tv *allowed = tv_get(p, "allowed");
        if (allowed && allowed->type == TV_ARRAY && allowed->u.a.len > 0) {
            table_set(&t, 2, allowed);
        } else if (tv_get(p, "min") || tv_get(p, "max")) {
            char lo[64], hi[64];
            value_text(tv_get(p, "min"), lo, sizeof lo);
            value_text(tv_get(p, "max"), hi, sizeof hi);
            snprintf(table_cell(&t, t.rows - 1, 2), CELL, "%s..%s", lo, hi);
        }
        table_set(&t, 3, tv_get(p, "dynamic"));
        table_set(&t, 4, tv_get(p, "default"));
        table_set(&t, 5, tv_get(p, "unit"));
    }
    table_print(&t);
}

void print_config_values(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"NAME", "VALUE"};
    const struct tv *values = tv_get(result, "values");
    struct table_out t;
    table_start(&t, 2, headers);
    for (size_t i = 0; values && values->type == TV_MAP && i < values->u.m.len; i++) {
        if (!table_add_row(&t))
            break;
        snprintf(table_cell(&t, t.rows - 1, 0), CELL, "%s", values->u.m.items[i].key);
        table_set(&t, 1, values->u.m.items[i].value);
    }
    table_print(&t);
}

void print_backups(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    static const char *const headers[] = {"ID", "KIND", "STATE", "SIZE", "PARENT", "CREATED"};
    static const char *const fields[] = {"id", "kind", "state", "size", "parent", "created_at"};
    print_list(result, "backups", 6, headers, fields);
}

void print_backup(const struct tv *result, const struct cli_args *a)
{
    (void)a;
    const struct tv *backup = tv_get(result, "backup");
    print_kv(backup ? backup : result, false);
}
