/*
 * fuzz_conf.c - INI configuration files (common/conf.c) through conf_load,
 * the entry every daemon uses. Any bytes: loading either fails with
 * "path:line: reason" on one line, or every section the text names holds
 * keys made of name characters and values free of control characters (a
 * value is later written into engine option files, where a newline would
 * be a second setting), and the typed getters answer without crashing.
 */
#include "fuzz_util.h"

#include <stdbool.h>

#include "conf.h"
#include "value.h"

static bool name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
            !strchr("_-.", *s))
            return false;
    return true;
}

static void check_value(const char *v)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        FUZZ_CHECK((c >= 0x20 || c == '\t') && c != 0x7f, "control character 0x%02x in a value", c);
    }
    FUZZ_CHECK(tv_utf8_valid(v, strlen(v)), "invalid UTF-8 in a value");
}

static void check_section(const struct conf *c, const char *section)
{
    size_t n = 0;
    const struct trove_kv *kv = conf_section(c, section, &n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(name_ok(kv[i].key), "bad key \"%s\"", kv[i].key);
        check_value(kv[i].value);
        FUZZ_CHECK(conf_get(c, section, kv[i].key) == kv[i].value, "conf_get disagrees with conf_section");
        char err[256];
        long l;
        bool b;
        conf_get_int(c, section, kv[i].key, 0, -100, 100, &l, err, sizeof(err));
        conf_get_bool(c, section, kv[i].key, false, &b, err, sizeof(err));
    }
}

/* Every "[name]" the text holds, whether or not the parser took it. */
static void check_named_sections(const struct conf *c, const char *text)
{
    for (const char *line = text; line && *line;) {
        const char *open = line + strspn(line, " \t");
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - open) : strlen(open);
        const char *close = *open == '[' ? memchr(open, ']', len) : NULL;
        if (close && close - open < 300) {
            char name[300];
            snprintf(name, sizeof(name), "%.*s", (int)(close - open - 1), open + 1);
            char *start = name + strspn(name, " \t");
            size_t n = strlen(start);
            while (n && (start[n - 1] == ' ' || start[n - 1] == '\t'))
                start[--n] = '\0';
            check_section(c, start);
        }
        line = nl ? nl + 1 : NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, 0600);
    char err[512] = "";
    struct conf *c = conf_load(path, err, sizeof(err));
    if (!c) {
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && !strchr(err, '\n'), "reason \"%s\"", err);
        return 0;
    }
    char *text = fuzz_text(data, size);
    check_named_sections(c, text);
    free(text);
    conf_free(c);
    return 0;
}
