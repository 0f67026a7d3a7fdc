/*
 * sink.h - what every byte sink handed to a plugin starts with, so the one
 * host service sink_write serves backup streams (stream.c) and guest-log
 * copies (guest_log.c) alike. A sink's owner creates and finishes it; the
 * plugin only writes.
 */
#ifndef TROVE_SINK_H
#define TROVE_SINK_H

#include <stddef.h>
#include "trove_plugin.h"

struct trove_sink {
    int (*write)(struct trove_sink *sink, const void *data, size_t len);
    const char *(*error)(const struct trove_sink *sink);   /* why the last write failed */
};

/* host->sink_write: TROVE_EINVAL for a NULL sink, else the sink's answer. */
int sink_write(struct trove_sink *sink, const void *data, size_t len);
const char *sink_error(const struct trove_sink *sink);

#endif
