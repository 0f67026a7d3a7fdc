/*
 * settings.c - the [datastore] settings table: parse, check, default and
 * free a plugin's settings struct, refusing keys the plugin does not know.
 * Also the key/value lookup and the boolean and integer parsers every
 * plugin needs for its own values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trove_plugin_support.h"

const char *tps_kv_get(const struct trove_kv *kv, size_t n, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; kv && i < n; i++)
        if (kv[i].key && kv[i].value && strcmp(kv[i].key, key) == 0)
            v = kv[i].value;
    return v;
}

bool tps_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; text && i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

bool tps_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text || !*text || *text == ' ' || *text == '+')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static const struct tps_setting *find(const struct tps_setting *t, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].key, key) == 0)
            return &t[i];
    return NULL;
}

/* All unknown keys, named in one message. */
static int reject_unknown(const struct tps_setting *t, size_t nt, const struct trove_kv *kv, size_t nkv,
                          const char *plugin, char *err, size_t errlen)
{
    char names[768] = "";
    size_t used = 0, bad = 0;
    for (size_t i = 0; i < nkv; i++) {
        if (!kv[i].key || find(t, nt, kv[i].key))
            continue;
        bool repeat = false;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = kv[j].key && strcmp(kv[j].key, kv[i].key) == 0;
        if (repeat)
            continue;
        bad++;
        if (used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", bad > 1 ? ", " : "", kv[i].key);
    }
    if (!bad)
        return TROVE_OK;
    snprintf(err, errlen, "unknown [datastore] setting%s for the %s plugin: %s", bad > 1 ? "s" : "", plugin, names);
    return TROVE_EINVAL;
}

static int check_text(const struct tps_setting *s, const char *v, char *err, size_t errlen)
{
    bool secret = s->flags & TPS_SECRET;
    if ((s->flags & TPS_NONEMPTY) && !*v)
        return snprintf(err, errlen, "setting %s must not be empty", s->key), TROVE_EINVAL;
    if (strpbrk(v, "\n\r") || ((s->flags & TPS_PLAIN) && strchr(v, '"')))
        return snprintf(err, errlen, "setting %s must not contain line breaks%s", s->key,
                        (s->flags & TPS_PLAIN) ? " or double quotes" : ""), TROVE_EINVAL;
    if ((s->flags & TPS_ABSOLUTE) && v[0] != '/')
        return snprintf(err, errlen, "setting %s must be an absolute path%s%s%s", s->key, secret ? "" : ", not \"",
                        secret ? "" : v, secret ? "" : "\""), TROVE_EINVAL;
    return TROVE_OK;
}

static int store(const struct tps_setting *s, const char *v, void *out, char *err, size_t errlen)
{
    char *field = (char *)out + s->offset;
    bool secret = s->flags & TPS_SECRET;
    int rc;
    switch (s->type) {
    case TPS_STRING:
        if ((rc = check_text(s, v, err, errlen)) != TROVE_OK)
            return rc;
        char *copy = strdup(v);
        if (!copy)
            return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
        memcpy(field, &copy, sizeof(copy));
        return TROVE_OK;
    case TPS_INT: {
        int64_t n;
        if (!tps_parse_int(v, s->min, s->max, &n))
            return snprintf(err, errlen, "setting %s must be an integer in %lld..%lld%s%s%s", s->key,
                            (long long)s->min, (long long)s->max, secret ? "" : ", not \"", secret ? "" : v,
                            secret ? "" : "\""), TROVE_EINVAL;
        memcpy(field, &n, sizeof(n));
        return TROVE_OK;
    }
    case TPS_BOOL: {
        bool b;
        if (!tps_parse_bool(v, &b))
            return snprintf(err, errlen, "setting %s must be true or false (or yes/no, on/off, 1/0)", s->key),
                   TROVE_EINVAL;
        memcpy(field, &b, sizeof(b));
        return TROVE_OK;
    }
    }
    return snprintf(err, errlen, "setting %s has an unknown type in the plugin's table", s->key), TROVE_EINTERNAL;
}

int tps_settings_parse(const struct tps_setting *table, size_t n_table, const struct trove_kv *kv, size_t n_kv,
                       void *out, const char *plugin, char *err, size_t errlen)
{
    int rc = reject_unknown(table, n_table, kv, n_kv, plugin, err, errlen);
    for (size_t i = 0; i < n_table && rc == TROVE_OK; i++) {
        const struct tps_setting *s = &table[i];
        const char *v = tps_kv_get(kv, n_kv, s->key);
        if (!v && (s->flags & TPS_REQUIRED)) {
            snprintf(err, errlen, "setting %s is required by the %s plugin%s", s->key, plugin,
                     (s->flags & TPS_SECRET) ? " (put it in the agent's secrets file)" : "");
            rc = TROVE_EINVAL;
        } else if (v || s->fallback) {
            rc = store(s, v ? v : s->fallback, out, err, errlen);
        }
    }
    if (rc != TROVE_OK)
        tps_settings_free(table, n_table, out);
    return rc;
}

void tps_settings_free(const struct tps_setting *table, size_t n_table, void *out)
{
    for (size_t i = 0; i < n_table; i++) {
        if (table[i].type != TPS_STRING)
            continue;
        char *v;
        memcpy(&v, (char *)out + table[i].offset, sizeof(v));
        if (v && (table[i].flags & TPS_SECRET))
            explicit_bzero(v, strlen(v));
        free(v);
        v = NULL;
        memcpy((char *)out + table[i].offset, &v, sizeof(v));
    }
}

bool tps_parse_u64(const char *text, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}
