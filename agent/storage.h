/*
 * storage.h - where backup pieces and their records live. One interface:
 * storage_file.c implements it on a local directory (the agent's own),
 * storage_object.c on Swift or S3 through a request's signed URLs
 * (storage_object.h). Ids are validated by the caller (backup.c).
 *
 * A piece becomes visible only at commit: until then it is a partial that
 * no reader can open, so an interrupted backup never looks complete.
 */
#ifndef TROVE_STORAGE_H
#define TROVE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

struct storage;
struct storage_writer;
struct storage_reader;

struct storage_ops {
    const char *kind;   /* "file" */
    int (*open_write)(struct storage *s, const char *id, struct storage_writer **w, char *err, size_t errlen);
    int (*write)(struct storage_writer *w, const void *data, size_t len, char *err, size_t errlen);
    /* Make the piece durable and visible; frees w either way. */
    int (*commit)(struct storage_writer *w, char *err, size_t errlen);
    /* Discard the partial piece; frees w. */
    void (*abort)(struct storage_writer *w);
    int (*open_read)(struct storage *s, const char *id, struct storage_reader **r, char *err, size_t errlen);
    /* *got = 0 at end. */
    int (*read)(struct storage_reader *r, void *buf, size_t cap, size_t *got, char *err, size_t errlen);
    void (*close_read)(struct storage_reader *r);
    /* Records: small JSON documents, replaced atomically. */
    int (*put_record)(struct storage *s, const char *id, const char *json, char *err, size_t errlen);
    /* TROVE_ENOTFOUND when absent; *json is malloc'd. */
    int (*get_record)(struct storage *s, const char *id, char **json, char *err, size_t errlen);
    /* Ids of all records, malloc'd array of malloc'd strings. */
    int (*list)(struct storage *s, char ***ids, size_t *n, char *err, size_t errlen);
    /* Remove a piece (committed or partial) and its record. */
    int (*remove)(struct storage *s, const char *id, char *err, size_t errlen);
    void (*close)(struct storage *s);
};

struct storage {
    const struct storage_ops *ops;
};

/* A storage on a local directory (created 0700 if missing). */
struct storage *storage_file_open(const char *dir, char *err, size_t errlen);

#endif
