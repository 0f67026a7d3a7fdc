/*
 * backup_store.h - the control plane's side of backup storage in Swift or
 * S3: it holds the credentials, prepares the store, and hands each request a
 * "storage scope": short-lived signed URLs that reach the objects of the
 * backups named in it and nothing else. Guests stream through those URLs
 * (agent/storage_object.c); the bytes never pass through the control plane.
 *
 * Object layout, shared with the agent: every backup lives under
 * "<prefix><backup id>/" in one container (Swift) or bucket (S3):
 *   record.json             the backup's record (JSON)
 *   piece                   the stored bytes: an SLO manifest (Swift) or a
 *                           multipart-uploaded object (S3)
 *   piece.seg/00000001...   Swift segments, written by the guest
 *   piece.manifest          Swift: the guest's draft manifest until sealed
 *
 * Errors are TROVE_* codes with a sentence in err; no error text carries a
 * credential or a signature.
 */
#ifndef TROVE_BACKUP_STORE_H
#define TROVE_BACKUP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "value.h"

#define BSTORE_RECORD "record.json"
#define BSTORE_PIECE "piece"
#define BSTORE_SEGMENTS "piece.seg/"
#define BSTORE_DRAFT "piece.manifest"
#define BSTORE_SEGMENT_FMT "piece.seg/%08u"

#define BSTORE_PART_MIN (5u << 20)      /* S3's smallest part but the last */
#define BSTORE_PART_MAX (512u << 20)
#define BSTORE_PART_DEFAULT (16u << 20)
#define BSTORE_PARTS_DEFAULT 1000       /* Swift's max_manifest_segments, s3api's max_upload_part_num */
#define BSTORE_PARTS_MAX 10000          /* S3's limit */
#define BSTORE_TTL_DEFAULT 3600
#define BSTORE_TTL_MAX 604800           /* SigV4's limit on presigned URLs */

struct bstore_config {
    const char *driver;          /* "swift" or "s3" */
    const char *container;       /* Swift container or S3 bucket */
    const char *prefix;          /* before "<backup id>/"; "" or ends with '/' */
    /* Swift: tempauth (auth_url, user, key) or a pre-issued token (Keystone
     * or any other) with its storage URL. */
    const char *auth_url, *user, *key;
    const char *storage_url, *token;
    const char *tempurl_key;     /* set on the container as X-Container-Meta-Temp-URL-Key */
    const char *tempurl_digest;  /* "sha256" (default), "sha512" or "sha1" */
    /* S3 (path-style) */
    const char *endpoint, *region, *access_key, *secret_key;
    /* Both */
    uint32_t part_size;          /* bytes per segment or part */
    uint32_t max_parts;          /* segments or parts one piece may have */
    uint32_t ttl;                /* default lifetime of signed URLs, seconds */
    uint32_t upload_threads;     /* parallel part uploads a guest runs (1-16) */
};

/* Read a configuration section:
 *   driver = swift | s3
 *   container = NAME (bucket for s3), prefix = PATH/ (optional)
 *   swift: auth_url, user, key  |  storage_url, token;  tempurl_key, tempurl_digest
 *   s3:    endpoint, region (us-east-1), access_key, secret_key
 *   part_size, max_parts, url_ttl, upload_threads
 * Strings point into c (keep it alive). Unknown keys are refused. */
int bstore_config_load(const struct conf *c, const char *section, struct bstore_config *out, char *err,
                       size_t errlen);

struct bstore;

/* Check cfg and copy it; no request is made yet. NULL with a reason in err. */
struct bstore *bstore_open(const struct bstore_config *cfg, char *err, size_t errlen);
void bstore_close(struct bstore *bs);

/* Create the container or bucket if missing; Swift: set its TempURL key
 * (a container key, so a signature reaches this container alone). */
int bstore_setup(struct bstore *bs, char *err, size_t errlen);

/* Ids of backups: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-' (the
 * agent's rule for backup ids). */
bool bstore_id_ok(const char *id);

struct bstore_grant {
    const char *backup_id;
    bool write;                  /* write: create this backup; else read it */
    uint64_t max_size;           /* write: largest piece to allow for (0: part_size * max_parts) */
    const struct tv *record;     /* read: the registry's record, given to the agent as the truth */
};

/* The "storage" argument of backup.create / backup.restore for these
 * backups, signed to expire after ttl seconds (0: the configured default).
 * S3 write grants start the multipart upload here. *out is a new map the
 * caller owns. */
int bstore_scope(struct bstore *bs, const struct bstore_grant *grants, size_t n, uint32_t ttl, struct tv **out,
                 char *err, size_t errlen);

/* After the agent finished writing backup_id: Swift writes the SLO manifest
 * from the guest's draft, after checking that every segment is this
 * backup's own (Swift then checks each segment's size and ETag); S3 checks
 * the completed object. stored_size (0: unchecked) must match. */
int bstore_seal(struct bstore *bs, const char *backup_id, uint64_t stored_size, char *err, size_t errlen);

/* Abort unfinished uploads and delete every object of backup_id (a failed
 * backup, or a deleted one). Objects already gone are not an error. */
int bstore_remove(struct bstore *bs, const char *backup_id, char *err, size_t errlen);

/* Ids of the backups that have a record in the store, sorted; the caller
 * frees each and the array. */
int bstore_list(struct bstore *bs, char ***ids, size_t *n, char *err, size_t errlen);

#endif
