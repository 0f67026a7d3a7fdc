/*
 * part_pool.c - upload threads for the object-storage drivers (part_pool.h).
 * One mutex guards the queue, the free buffers and the results; uploads run
 * outside it.
 */
#include "part_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "objhttp.h"
#include "trove_plugin.h"

#define MAX_THREADS 16
#define ATTEMPTS 3

struct part_buf {
    char *data;
    size_t len;
    unsigned number;
    struct part_buf *next;
};

struct part_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a part was queued, or closing */
    pthread_cond_t done;        /* a part finished */
    pthread_t threads[MAX_THREADS];
    unsigned n_threads;
    size_t part_size;
    unsigned max_parts;
    part_put_fn put;
    void *ctx;
    struct part_buf *free_list;
    unsigned n_buffers;
    struct part_buf *head, *tail;   /* queued, oldest first */
    struct part_buf *current;       /* the writer's */
    unsigned next_number;           /* parts handed out */
    unsigned busy;                  /* queued or uploading */
    struct part_result *results;    /* max_parts entries */
    bool closing;
    atomic_bool cancel;
    int status;
    char err[512];
};

static void pool_fail(struct part_pool *p, int status, const char *msg)
{
    if (p->status == TROVE_OK) {
        p->status = status;
        snprintf(p->err, sizeof(p->err), "%s", msg);
    }
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One part, with retries; returns the status, message in err. */
static int upload_part(struct part_pool *p, CURL *h, struct part_buf *b, struct part_result *res, char *err,
                       size_t errlen)
{
    char md5[33], etag[80];
    int rc = TROVE_EUNAVAIL;
    objhttp_md5_hex(b->data, b->len, md5);
    for (int attempt = 0; attempt < ATTEMPTS && rc == TROVE_EUNAVAIL; attempt++) {
        if (attempt)
            pause_ms(attempt == 1 ? 200 : 1000);
        if (atomic_load(&p->cancel))
            return TROVE_ECANCELLED;
        etag[0] = '\0';
        rc = p->put(p->ctx, h, b->number, b->data, b->len, &p->cancel, etag, err, errlen);
    }
    if (rc != TROVE_OK)
        return rc;
    if (strcasecmp(etag, md5) != 0) {
        snprintf(err, errlen, "part %u: the store answered ETag \"%s\" but the %zu bytes sent hash to %s", b->number,
                 etag, b->len, md5);
        return TROVE_ECHECKSUM;
    }
    memcpy(res->etag, md5, sizeof(res->etag));
    res->size = b->len;
    return TROVE_OK;
}

static void *worker(void *arg)
{
    struct part_pool *p = arg;
    CURL *h = objhttp_handle();
    char err[512];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->closing)
            pthread_cond_wait(&p->work, &p->mu);
        struct part_buf *b = p->head;
        if (!b)
            break;
        p->head = b->next;
        if (!p->head)
            p->tail = NULL;
        bool skip = p->status != TROVE_OK;
        pthread_mutex_unlock(&p->mu);
        struct part_result res = {0};
        int rc = skip ? TROVE_OK : !h ? TROVE_EINTERNAL : upload_part(p, h, b, &res, err, sizeof(err));
        if (!h && !skip)
            snprintf(err, sizeof(err), "out of memory");
        pthread_mutex_lock(&p->mu);
        if (rc != TROVE_OK)
            pool_fail(p, rc, err);
        else if (!skip)
            p->results[b->number - 1] = res;
        b->len = 0;
        b->next = p->free_list;
        p->free_list = b;
        p->busy--;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

struct part_pool *part_pool_open(unsigned threads, size_t part_size, unsigned max_parts, part_put_fn put, void *ctx,
                                 char *err, size_t errlen)
{
    if (threads < 1 || threads > MAX_THREADS || part_size == 0 || max_parts == 0) {
        snprintf(err, errlen, "upload threads must be 1-%d and parts non-empty", MAX_THREADS);
        return NULL;
    }
    struct part_pool *p = calloc(1, sizeof(*p));
    if (!p || !(p->results = calloc(max_parts, sizeof(*p->results)))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->cancel, false);
    p->part_size = part_size;
    p->max_parts = max_parts;
    p->put = put;
    p->ctx = ctx;
    objhttp_init();
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            snprintf(err, errlen, "cannot start upload thread");
            part_pool_close(p);
            return NULL;
        }
        p->n_threads++;
    }
    return p;
}

/* A buffer to fill: a free one, a new one while under threads + 1, or wait. */
static struct part_buf *take_buffer(struct part_pool *p)
{
    for (;;) {
        if (p->status != TROVE_OK)
            return NULL;
        if (p->free_list) {
            struct part_buf *b = p->free_list;
            p->free_list = b->next;
            b->next = NULL;
            return b;
        }
        if (p->n_buffers < p->n_threads + 1) {
            struct part_buf *b = calloc(1, sizeof(*b));
            if (b && !(b->data = malloc(p->part_size))) {
                free(b);
                b = NULL;
            }
            if (!b) {
                pool_fail(p, TROVE_EINTERNAL, "out of memory for an upload buffer");
                return NULL;
            }
            p->n_buffers++;
            return b;
        }
        pthread_cond_wait(&p->done, &p->mu);
    }
}

/* Queue the current part; called with the lock held. */
static void submit(struct part_pool *p)
{
    struct part_buf *b = p->current;
    p->current = NULL;
    if (p->next_number >= p->max_parts) {
        char msg[200];
        snprintf(msg, sizeof(msg), "the piece is larger than the %u parts of %zu bytes this backup was granted",
                 p->max_parts, p->part_size);
        pool_fail(p, TROVE_EINVAL, msg);
        b->next = p->free_list;
        p->free_list = b;
        return;
    }
    b->number = ++p->next_number;
    b->next = NULL;
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->busy++;
    pthread_cond_signal(&p->work);
}

int part_pool_write(struct part_pool *p, const void *data, size_t len, char *err, size_t errlen)
{
    const char *src = data;
    pthread_mutex_lock(&p->mu);
    while (len > 0 && p->status == TROVE_OK) {
        if (!p->current && !(p->current = take_buffer(p)))
            break;
        size_t room = p->part_size - p->current->len;
        size_t k = len < room ? len : room;
        /* Copy outside the lock: only this thread touches the current buffer. */
        struct part_buf *b = p->current;
        pthread_mutex_unlock(&p->mu);
        memcpy(b->data + b->len, src, k);
        pthread_mutex_lock(&p->mu);
        b->len += k;
        src += k;
        len -= k;
        if (b->len == p->part_size)
            submit(p);
    }
    int rc = p->status;
    if (rc != TROVE_OK)
        snprintf(err, errlen, "%s", p->err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_pool_finish(struct part_pool *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    if (p->status == TROVE_OK && p->current && p->current->len > 0)
        submit(p);
    if (p->status == TROVE_OK && p->next_number == 0)
        pool_fail(p, TROVE_EINVAL, "the piece is empty");
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    int rc = p->status;
    if (rc != TROVE_OK)
        snprintf(err, errlen, "%s", p->err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

const struct part_result *part_pool_results(const struct part_pool *p, unsigned *n)
{
    *n = p->next_number;
    return p->results;
}

unsigned part_pool_started(const struct part_pool *p)
{
    return p->next_number;
}

void part_pool_close(struct part_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    atomic_store(&p->cancel, true);
    pool_fail(p, TROVE_ECANCELLED, "the upload was stopped");
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    struct part_buf *lists[] = {p->free_list, p->head, p->current};
    for (size_t i = 0; i < 3; i++) {
        for (struct part_buf *b = lists[i], *next; b; b = next) {
            next = b->next;
            free(b->data);
            free(b);
        }
    }
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->results);
    free(p);
}
