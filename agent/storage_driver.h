/*
 * storage_driver.h - what storage_object.c needs from each object-storage
 * driver (storage_swift.c, storage_s3.c): the URL of each object of a
 * backup, how a finished upload is committed, how an unfinished one is
 * undone. Internal to those three files.
 */
#ifndef TROVE_STORAGE_DRIVER_H
#define TROVE_STORAGE_DRIVER_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "part_pool.h"
#include "value.h"

/* One backup of the scope. */
struct obj_entry {
    char *id;
    bool write;
    char *record_json;          /* the control plane's record for a read grant, or NULL */
    uint32_t part_size, max_parts, threads;
    bool opened;                /* a writer was opened (one per backup) */
    unsigned started;           /* parts that writer sent */
    const struct obj_driver *drv;
    void *d;                    /* the driver's fields */
};

enum obj_target { OBJ_PIECE_GET, OBJ_RECORD_GET, OBJ_RECORD_PUT, OBJ_PART_PUT };

struct obj_driver {
    const char *kind;           /* "swift", "s3" */
    long part_ok;               /* status of a stored part: 201 (Swift), 200 (S3) */
    /* Read the driver's fields of a grant into e->d (write grants: set max_parts too). */
    int (*parse)(struct obj_entry *e, const struct tv *grant, char *err, size_t errlen);
    void (*release)(struct obj_entry *e);
    /* A malloc'd URL; NULL with a reason when the grant has none. part is 1-based. */
    char *(*url)(const struct obj_entry *e, enum obj_target what, unsigned part, char *err, size_t errlen);
    /* Make the uploaded parts one piece (Swift: the draft manifest the control plane seals; S3: complete). */
    int (*commit)(CURL *h, const struct obj_entry *e, const struct part_result *parts, unsigned n, char *err,
                  size_t errlen);
    /* Undo an unfinished upload of `started` parts, as far as the grant allows. */
    void (*abort)(CURL *h, const struct obj_entry *e, unsigned started);
};

extern const struct obj_driver obj_swift_driver;
extern const struct obj_driver obj_s3_driver;

/* Shared by the drivers: a string field of a grant that must be an http(s) URL. */
int obj_grant_url(const struct tv *grant, const char *key, bool required, char **out, char *err, size_t errlen);
/* The same check of one value (key names it in the message). */
int obj_url_value(const struct tv *v, const char *key, char **out, char *err, size_t errlen);
/* One request, with the reply checked against ok_status (TROVE_* code, reason in err). */
int obj_request(CURL *h, const char *method, const char *url, const char *const *headers, const void *body,
                size_t len, long ok_status, char *err, size_t errlen);

#endif
