/*
 * zap.c - ZAP request/reply framing and the allow-list decision. Every
 * request gets exactly one reply (the REP socket's state machine needs it),
 * including malformed ones, which are refused.
 */
#include "zap.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"

#define ZAP_MAX_FRAMES 8
#define ZAP_WARN_WINDOW_MS 10000
#define ZAP_WARN_PER_WINDOW 10

enum { F_VERSION, F_REQUEST_ID, F_DOMAIN, F_ADDRESS, F_IDENTITY, F_MECHANISM, F_CREDENTIALS };

int zap_start(struct zap *z, void *zmq_context, zap_lookup_fn lookup, void *lookup_ctx)
{
    memset(z, 0, sizeof *z);
    z->lookup = lookup;
    z->lookup_ctx = lookup_ctx;
    z->refusals = (struct log_limit){ZAP_WARN_WINDOW_MS, ZAP_WARN_PER_WINDOW, "agent handshakes refused", 0, 0, 0};
    z->socket = zmq_socket(zmq_context, ZMQ_REP);
    if (!z->socket)
        return -1;
    int linger = 0;
    zmq_setsockopt(z->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(z->socket, ZAP_ENDPOINT) != 0) {
        int saved = errno;
        zmq_close(z->socket);
        z->socket = NULL;
        errno = saved;
        return -1;
    }
    return 0;
}

void zap_stop(struct zap *z)
{
    if (z->socket)
        zmq_close(z->socket);
    z->socket = NULL;
}

static bool frame_is(const zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size((zmq_msg_t *)m) == n && memcmp(zmq_msg_data((zmq_msg_t *)m), s, n) == 0;
}

static void frame_text(zmq_msg_t *m, char *out, size_t outlen)
{
    size_t n = zmq_msg_size(m);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, zmq_msg_data(m), n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < ' ' || (unsigned char)out[i] > '~')
            out[i] = '?';
}

static void send_reply(void *sock, zmq_msg_t *request_id, const char *status, const char *text,
                       const char *user_id)
{
    const char *version = "1.0";
    zmq_send(sock, version, strlen(version), ZMQ_SNDMORE);
    zmq_send(sock, request_id ? zmq_msg_data(request_id) : "", request_id ? zmq_msg_size(request_id) : 0,
             ZMQ_SNDMORE);
    zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);   /* no metadata */
}

void zap_handle(struct zap *z)
{
    zmq_msg_t frames[ZAP_MAX_FRAMES];
    int n = 0, more = 1;

    /* Read the whole request, keeping at most ZAP_MAX_FRAMES parts. */
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0)
                return;   /* nothing was waiting: no reply owed */
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_MAX_FRAMES)
            frames[n++] = m;
        else
            zmq_msg_close(&m);
    }

    char address[128] = "?", key[KEYS_Z85_LEN + 1] = "?";
    const char *why = NULL, *instance = NULL;
    if (n < F_CREDENTIALS + 1 || !frame_is(&frames[F_VERSION], "1.0")) {
        why = "malformed ZAP request";
    } else {
        frame_text(&frames[F_ADDRESS], address, sizeof address);
        if (!frame_is(&frames[F_DOMAIN], ZAP_DOMAIN))
            why = "wrong ZAP domain";
        else if (!frame_is(&frames[F_MECHANISM], "CURVE"))
            why = "not a CURVE handshake";
        else if (zmq_msg_size(&frames[F_CREDENTIALS]) != 32)
            why = "malformed CURVE key";
        else if (!zmq_z85_encode(key, zmq_msg_data(&frames[F_CREDENTIALS]), 32))
            why = "malformed CURVE key";
        else if (!(instance = z->lookup(z->lookup_ctx, key)))
            why = "key not in the allow-list";
    }

    zmq_msg_t *request_id = n > F_REQUEST_ID ? &frames[F_REQUEST_ID] : NULL;
    if (why) {
        if (log_limit_allow(&z->refusals))
            log_warn("refused agent handshake from %s, key %s: %s", address, key, why);
        send_reply(z->socket, request_id, "400", why, "");
    } else {
        log_debug("admitted agent %s from %s", instance, address);
        send_reply(z->socket, request_id, "200", "OK", instance);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}
