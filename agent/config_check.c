/*
 * config_check.c - generic checks of configuration values (type, range,
 * allowed values, unknown names) against the plugin's schema.
 */
#include "config_check.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct tv *schema_find(const struct tv *params, const char *name)
{
    for (size_t i = 0; params && i < params->u.a.len; i++) {
        const char *n = tv_get_str(params->u.a.items[i], "name");
        if (n && !strcmp(n, name))
            return params->u.a.items[i];
    }
    return NULL;
}

static bool is_bool_text(const char *v)
{
    static const char *ok[] = {"on", "off", "true", "false", "1", "0", "yes", "no"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcasecmp(v, ok[i]))
            return true;
    return false;
}

/* One violation for value v of parameter p, or "" when it is fine. */
static void check_one(const struct tv *p, const char *name, const char *v, char *out, size_t outlen)
{
    const char *type = tv_get_str(p, "type");
    out[0] = '\0';
    if (!type)
        return;
    if (!strcmp(type, "integer")) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            snprintf(out, outlen, "%s: \"%s\" is not an integer", name, v);
        else if (x < tv_get_int(p, "min", INT64_MIN))
            snprintf(out, outlen, "%s: %lld is below the minimum %lld", name, x, (long long)tv_get_int(p, "min", 0));
        else if (x > tv_get_int(p, "max", INT64_MAX))
            snprintf(out, outlen, "%s: %lld is above the maximum %lld", name, x, (long long)tv_get_int(p, "max", 0));
    } else if (!strcmp(type, "float")) {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        const struct tv *mn = tv_get(p, "min"), *mx = tv_get(p, "max");
        if (errno || end == v || *end || !isfinite(x))
            snprintf(out, outlen, "%s: \"%s\" is not a number", name, v);
        else if (mn && mn->type == TV_FLOAT && x < mn->u.f)
            snprintf(out, outlen, "%s: %s is below the minimum %g", name, v, mn->u.f);
        else if (mx && mx->type == TV_FLOAT && x > mx->u.f)
            snprintf(out, outlen, "%s: %s is above the maximum %g", name, v, mx->u.f);
    } else if (!strcmp(type, "boolean")) {
        if (!is_bool_text(v))
            snprintf(out, outlen, "%s: \"%s\" is not a boolean (use on/off, true/false, 1/0)", name, v);
    } else if (!strcmp(type, "enum")) {
        const struct tv *allowed = tv_get(p, "allowed");
        for (size_t i = 0; allowed && allowed->type == TV_ARRAY && i < allowed->u.a.len; i++)
            if (allowed->u.a.items[i]->type == TV_STR && !strcasecmp(allowed->u.a.items[i]->u.s.ptr, v))
                return;
        int k = snprintf(out, outlen, "%s: \"%s\" is not one of", name, v);
        for (size_t i = 0; allowed && allowed->type == TV_ARRAY && i < allowed->u.a.len && k > 0 && (size_t)k < outlen;
             i++)
            k += snprintf(out + k, outlen - (size_t)k, "%s%s", i ? ", " : " ", allowed->u.a.items[i]->u.s.ptr);
    }
}

int config_check(struct agent *a, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    const struct trove_plugin *vt = a->plugin.vt;
    struct trove_call schema;
    char msg[sizeof(call->message)] = "";
    size_t len = 0, violations = 0;
    int rc;
    if (call_init(&schema, NULL, NULL, NULL) != 0)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    rc = vt->config_schema(a->plugin.self, &schema);
    if (rc != TROVE_OK) {
        call_fail(call, rc, "cannot read the configuration schema: %s", call_message(&schema, rc));
        goto out;
    }
    const struct tv *params = tv_get(schema.result, "parameters");
    if (n == 0) {
        rc = call_fail(call, TROVE_EINVAL, "no configuration values given");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char one[512];
        const struct tv *p = schema_find(params, values[i].key);
        if (!p)
            snprintf(one, sizeof(one), "%s: unknown parameter", values[i].key);
        else
            check_one(p, values[i].key, values[i].value, one, sizeof(one));
        for (size_t j = 0; j < i && !one[0]; j++)
            if (!strcmp(values[j].key, values[i].key))
                snprintf(one, sizeof(one), "%s: given twice", values[i].key);
        if (one[0] && len + strlen(one) + 3 < sizeof(msg)) {
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s", violations ? "; " : "", one);
            violations++;
        }
    }
    if (violations) {
        rc = call_fail(call, TROVE_EINVAL, "%zu invalid configuration value%s: %s", violations,
                       violations == 1 ? "" : "s", msg);
        goto out;
    }
    if (TROVE_PLUGIN_HAS(vt, config_validate))
        rc = vt->config_validate(a->plugin.self, call, values, n);
out:
    call_release(&schema);
    return rc;
}
