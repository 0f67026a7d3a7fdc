/*
 * api_check.c - strict reading of request bodies: unknown fields, wrong
 * types and names that break the rules are answered 400 with the field's
 * path, before anything is sent anywhere. Names follow one rule per kind
 * (docs/api.md), stricter than any datastore, so what passes here never
 * needs quoting tricks further down.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"

bool api_check_keys(struct api_request *r, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            api_fault(r, 400, "Unknown field '%.64s' in %s", key, path);
            return false;
        }
    }
    return true;
}

json_t *api_body_object(struct api_request *r, const char *key)
{
    const char *const allowed[] = { key, NULL };
    if (!r->json || !api_check_keys(r, r->json, "the request body", allowed))
        return NULL;
    json_t *obj = json_object_get(r->json, key);
    if (!obj) {
        api_fault(r, 400, "Invalid request body: expected {\"%s\": {...}}", key);
        return NULL;
    }
    if (!json_is_object(obj)) {
        api_fault(r, 400, "'%s' must be an object", key);
        return NULL;
    }
    return obj;
}

static json_t *field(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                     bool *ok)
{
    json_t *v = json_object_get(obj, key);
    *ok = true;
    if (!v || json_is_null(v)) {
        if (required) {
            api_fault(r, 400, "Missing field '%s' in %s", key, path);
            *ok = false;
        }
        return NULL;
    }
    return v;
}

bool api_get_string(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                    const char **out)
{
    bool ok;
    json_t *v = field(r, obj, path, key, required, &ok);
    *out = NULL;
    if (!v)
        return ok;
    if (!json_is_string(v)) {
        api_fault(r, 400, "Field '%s' in %s must be a string", key, path);
        return false;
    }
    /* jansson refuses \u0000 without JSON_ALLOW_NUL; check anyway */
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        api_fault(r, 400, "Field '%s' in %s contains a NUL character", key, path);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool api_get_object(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                    json_t **out)
{
    bool ok;
    json_t *v = field(r, obj, path, key, required, &ok);
    *out = NULL;
    if (!v)
        return ok;
    if (!json_is_object(v)) {
        api_fault(r, 400, "Field '%s' in %s must be an object", key, path);
        return false;
    }
    *out = v;
    return true;
}

bool api_get_array(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                   json_t **out)
{
    bool ok;
    json_t *v = field(r, obj, path, key, required, &ok);
    *out = NULL;
    if (!v)
        return ok;
    if (!json_is_array(v)) {
        api_fault(r, 400, "Field '%s' in %s must be a list", key, path);
        return false;
    }
    *out = v;
    return true;
}

bool api_get_bool(struct api_request *r, json_t *obj, const char *path, const char *key, bool *out)
{
    bool ok;
    json_t *v = field(r, obj, path, key, false, &ok);
    if (!v)
        return ok;
    if (!json_is_boolean(v)) {
        api_fault(r, 400, "Field '%s' in %s must be true or false", key, path);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool api_get_positive(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                      int64_t max, int64_t *out)
{
    bool ok;
    json_t *v = field(r, obj, path, key, required, &ok);
    if (!v)
        return ok;
    int64_t n = -1;
    if (json_is_integer(v)) {
        n = (int64_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len > 0 && len <= 12 && strspn(s, "0123456789") == len)
            n = strtoll(s, NULL, 10);
    } else {
        api_fault(r, 400, "Field '%s' in %s must be a positive integer", key, path);
        return false;
    }
    if (n < 1 || n > max) {
        api_fault(r, 400, "Field '%s' in %s must be an integer from 1 to %lld", key, path, (long long)max);
        return false;
    }
    *out = n;
    return true;
}

/* ------------------------------------------------------------ names */

static bool chars_in(const char *s, size_t min, size_t max, const char *extra)
{
    size_t len = strlen(s);
    if (len < min || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr(extra, c));
        if (!ok)
            return false;
    }
    return true;
}

/* Free text: UTF-8, no control characters; quotes and backslashes only
 * where allow_quotes. */
static bool text_ok(const char *s, size_t min, size_t max, bool allow_quotes)
{
    size_t len = strlen(s);
    if (len < min || len > max || !tv_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (!allow_quotes && (c == '\'' || c == '"' || c == '`' || c == '\\'))
            return false;
    }
    return true;
}

static bool has_alnum(const char *s)
{
    for (; *s; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
            return true;
    return false;
}

bool api_name_ok(enum api_name_kind kind, const char *s)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    switch (kind) {
    case API_NAME_INSTANCE:
        return text_ok(s, 1, 255, false) && has_alnum(s) && s[0] != ' ' && s[len - 1] != ' ';
    case API_NAME_DATABASE:
        return chars_in(s, 1, 64, "_-");
    case API_NAME_USER:
        return chars_in(s, 1, 64, "_.-");
    case API_NAME_HOST:
        return chars_in(s, 1, 60, ".:%_-");
    case API_NAME_PASSWORD:
        return text_ok(s, 1, 255, true);
    case API_NAME_CHARSET:
        return chars_in(s, 1, 64, "_");
    case API_NAME_REF:
        return chars_in(s, 1, 64, "_.:-");
    }
    return false;
}

static const char *rule_text(enum api_name_kind kind)
{
    switch (kind) {
    case API_NAME_INSTANCE:
        return "1-255 characters with a letter or digit, no quotes, backslashes or control characters";
    case API_NAME_DATABASE:
        return "1-64 characters of A-Z a-z 0-9 _ -";
    case API_NAME_USER:
        return "1-64 characters of A-Z a-z 0-9 _ . -";
    case API_NAME_HOST:
        return "1-60 characters of A-Z a-z 0-9 . : % _ -";
    case API_NAME_PASSWORD:
        return "1-255 characters without control characters";
    case API_NAME_CHARSET:
        return "1-64 characters of A-Z a-z 0-9 _";
    case API_NAME_REF:
        return "1-64 characters of A-Z a-z 0-9 _ . : -";
    }
    return "";
}

bool api_check_name(struct api_request *r, enum api_name_kind kind, const char *what, const char *s)
{
    if (api_name_ok(kind, s))
        return true;
    api_fault(r, 400, "Invalid %s: %s", what, rule_text(kind));
    return false;
}
