/*
 * api.h - the REST front door: Trove's v1.0 API under /v1.0/{tenant}/ on
 * libmicrohttpd, bodies through jansson. It reads the registry (filtered by
 * the caller's tenant) and sends every action through control_submit; it
 * never reaches into another module's state. docs/api.md lists the routes,
 * shapes, status codes and limits.
 *
 * Threading: the API runs on the daemon's one loop thread. libmicrohttpd is
 * started with MHD_USE_EPOLL and no thread of its own: the loop polls
 * api_fd() for reading, wakes up after api_timeout_ms() at the latest, and
 * calls api_run() either way (given a struct loop, the API arranges that
 * itself). A request waiting for a reply from the core is suspended
 * (MHD_suspend_connection) and resumed from the reply callback; a resumed
 * connection makes api_timeout_ms() return 0.
 */
#ifndef TROVE_CONTROL_API_H
#define TROVE_CONTROL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_DEFAULT_LISTEN "127.0.0.1:8779"
#define API_BODY_LIMIT_DEFAULT (64 * 1024)
#define API_PAGE_SIZE_DEFAULT 20
#define API_PAGE_SIZE_MAX 1000
#define API_MAX_CONNECTIONS_DEFAULT 256
#define API_IDLE_TIMEOUT_S_DEFAULT 60

struct auth;
struct control_core;
struct loop;
struct registry;
struct api;

struct api_config {
    const char *listen;            /* "ADDRESS:PORT" ("[v6]:PORT"); NULL: API_DEFAULT_LISTEN; port 0 picks one */
    size_t body_limit;             /* request body bytes; 0: API_BODY_LIMIT_DEFAULT; larger is 413 */
    unsigned page_size;            /* page without ?limit=; 0: API_PAGE_SIZE_DEFAULT (a limit is capped
                                      at API_PAGE_SIZE_MAX) */
    unsigned max_connections;      /* 0: API_MAX_CONNECTIONS_DEFAULT */
    unsigned idle_timeout_s;       /* close idle keep-alive connections; 0: API_IDLE_TIMEOUT_S_DEFAULT */
    int64_t request_timeout_ms;    /* for requests to agents; 0: the core's default */
};

/* What the API uses; all borrowed, all must outlive the api. */
struct api_deps {
    struct auth *auth;
    struct control_core *core;
    struct registry *registry;
    struct loop *loop;             /* the API watches api_fd() and its timeout on it; NULL: the caller
                                      polls api_fd(), sleeps at most api_timeout_ms() and calls api_run() */
};

/*
 * Listen and serve. Refuses (NULL, reason in err) a listen address that is
 * not loopback when the auth backend serves loopback only, and logs a loud
 * warning at every start in that mode.
 */
struct api *api_new(const struct api_config *cfg, const struct api_deps *deps, char *err, size_t errlen);

/*
 * Stop listening and free. Call after core_shutdown(), which answers every
 * request the API still waits for; a request still suspended then is
 * answered 503 and dropped.
 */
void api_free(struct api *api);

/* libmicrohttpd's epoll descriptor: poll it for reading. */
int api_fd(const struct api *api);
/* The longest the loop may sleep before calling api_run(): milliseconds,
 * 0 when work is pending, -1 when there is no deadline. */
int64_t api_timeout_ms(struct api *api);
/* Serve what is ready: read, answer, resume, time out. Never blocks. */
void api_run(struct api *api);

/* The port actually listened on (useful with port 0). */
uint16_t api_port(const struct api *api);

#endif
