/*
 * abi_v1_plugin.c - a plugin as ABI 1.0 laid it out (major 1, open taking
 * the settings directly, structs without sizes), so the tests can check
 * that a 2.x agent refuses it, naming both majors, before calling anything.
 */
#include <stddef.h>
#include <stdint.h>

struct v1_table {
    uint32_t abi_major, abi_minor, size;
    const char *name, *version;
    uint64_t features;
    int (*open)(const void *host, const void *settings, size_t n, void **self, char *err, size_t errlen);
    void (*close)(void *self);
};

static int v1_open(const void *host, const void *settings, size_t n, void **self, char *err, size_t errlen)
{
    (void)host, (void)settings, (void)n, (void)self, (void)err, (void)errlen;
    return 0;
}

static void v1_close(void *self)
{
    (void)self;
}

static const struct v1_table table = {
    .abi_major = 1,
    .abi_minor = 0,
    .size = sizeof(struct v1_table),
    .name = "oldmajor",
    .version = "1.0.0",
    .open = v1_open,
    .close = v1_close,
};

__attribute__((visibility("default"))) const struct v1_table *trove_plugin_entry(void)
{
    return &table;
}
