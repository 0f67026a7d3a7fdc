/*
 * api_bench.c - REST `GET /v1.0/{tenant}/instances?limit=1000` with 1,000
 * instances in a SQLite registry, through trove-control's API (its loop,
 * core and registry), against a bare libmicrohttpd handler that answers the
 * same bytes from memory on the same kind of loop, in the same run. Prints
 * p50 and p99 of each and their ratio. Never run by the tests.
 *
 *   api-bench [REQUESTS]      (default 1000 per server and page size)
 */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "agents.h"
#include "api.h"
#include "auth.h"
#include "core.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "tasks.h"

#define INSTANCES 1000
#define TENANT "bench"
#define WARMUP 50

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ------------------------------------------------------------ the registry */

static int seed(struct registry *r)
{
    char err[256];
    struct registry_datastore ds = { 0 };
    snprintf(ds.name, sizeof ds.name, "mysql");
    struct registry_datastore_version v = { 0 };
    snprintf(v.datastore, sizeof v.datastore, "mysql");
    v.name = (char *)"10.11";
    v.plugin = (char *)"mysql";
    v.engine = (char *)"{}";
    v.active = true;
    struct registry_flavor f = { .ram_mb = 512, .vcpus = 1 };
    snprintf(f.id, sizeof f.id, "1");
    f.name = (char *)"m1.tiny";
    struct registry_tenant t = { 0 };
    snprintf(t.id, sizeof t.id, TENANT);
    t.name = (char *)TENANT;
    if (registry_datastore_create(r, &ds, err, sizeof err) || registry_datastore_version_create(r, &v, err, sizeof err) ||
        registry_flavor_create(r, &f, err, sizeof err) || registry_tenant_create(r, &t, err, sizeof err) ||
        registry_begin(r, err, sizeof err)) {
        fprintf(stderr, "api-bench: seed: %s\n", err);
        return -1;
    }
    for (int i = 0; i < INSTANCES; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-%04d", i);
        struct registry_instance in = { .volume_size_gb = 1, .engine_port = 20000 + i };
        snprintf(in.tenant_id, sizeof in.tenant_id, TENANT);
        in.name = name;
        snprintf(in.status, sizeof in.status, "ACTIVE");
        snprintf(in.datastore, sizeof in.datastore, "mysql");
        snprintf(in.datastore_version_id, sizeof in.datastore_version_id, "%s", v.id);
        snprintf(in.flavor_id, sizeof in.flavor_id, "1");
        snprintf(in.volume_kind, sizeof in.volume_kind, "loop");
        if (registry_instance_create(r, &in, err, sizeof err) != TROVE_OK) {
            fprintf(stderr, "api-bench: seed: %s\n", err);
            registry_rollback(r);
            return -1;
        }
    }
    return registry_commit(r, err, sizeof err) == TROVE_OK ? 0 : -1;
}

/* ------------------------------------------------------------ the servers */

static struct loop_timer *stop_timer;

/* SIGTERM only sets a flag; a short timer turns it into loop_stop. */
static void check_stop(void *ctx)
{
    if (stop_requested)
        loop_stop(ctx);
    else
        loop_timer_arm(stop_timer, 100);
}

/* trove-control's API on its loop; writes its port to fd and runs until SIGTERM. */
static int serve_api(const char *registry_url, int fd)
{
    char err[512];
    struct registry *reg = registry_open(registry_url, err, sizeof err);
    struct loop *loop = loop_new();
    struct agents *agents = agents_new();
    struct tasks *tasks = loop ? tasks_new(&(struct tasks_config){ .loop = loop, .registry = reg }) : NULL;
    struct control_core *core =
        tasks ? core_new(&(struct core_config){ .tasks = tasks, .agents = agents, .registry = reg }) : NULL;
    struct auth *auth = auth_open_none();
    struct api *api = reg && core && auth
                          ? api_new(&(struct api_config){ .listen = "127.0.0.1:0" },
                                    &(struct api_deps){ .auth = auth, .core = core, .registry = reg, .loop = loop },
                                    err, sizeof err)
                          : NULL;
    if (!api) {
        fprintf(stderr, "api-bench: API: %s\n", err);
        return 1;
    }
    uint16_t port = api_port(api);
    if (write(fd, &port, sizeof port) != (ssize_t)sizeof port)
        return 1;
    if (!(stop_timer = loop_timer_new(loop, check_stop, loop)))
        return 1;
    loop_timer_arm(stop_timer, 100);
    loop_run(loop);
    core_shutdown(core);
    api_free(api);
    core_free(core);
    tasks_free(tasks);
    agents_free(agents);
    auth_free(auth);
    loop_free(loop);
    registry_close(reg);
    return 0;
}

/* The two answers the baseline gives: /all (1,000 instances) and /page (the default page). */
struct bare {
    const char *all, *page;
};

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
    struct bare *b = cls;
    const char *body = strcmp(url, "/all") == 0 ? b->all : b->page;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The baseline: libmicrohttpd in epoll mode on a plain poll loop, answering
 * body from memory. */
static int serve_bare(const struct bare *bodies, int fd)
{
    struct bare b = *bodies;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, bare_handler, &b, MHD_OPTION_END);
    if (!d)
        return 1;
    uint16_t port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    if (write(fd, &port, sizeof port) != (ssize_t)sizeof port)
        return 1;
    struct pollfd p = { .fd = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd, .events = POLLIN };
    while (!stop_requested) {
        MHD_UNSIGNED_LONG_LONG t = 100;
        int timeout = MHD_get_timeout(d, &t) == MHD_YES && t < 100 ? (int)t : 100;
        poll(&p, 1, timeout);
        MHD_run(d);
    }
    MHD_stop_daemon(d);
    return 0;
}

struct child_arg {
    void *arg;
    int fd;
};

/* A child running fn; its port comes back through a pipe. */
static pid_t spawn(int (*fn)(void *), void *arg, uint16_t *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGTERM, on_term);
        struct child_arg c = { arg, fds[1] };
        _exit(fn(&c) ? 1 : 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], port, sizeof *port);
    close(fds[0]);
    return n == (ssize_t)sizeof *port ? pid : -1;
}

static int run_api(void *p)
{
    struct child_arg *c = p;
    return serve_api(c->arg, c->fd);
}

static int run_bare(void *p)
{
    struct child_arg *c = p;
    return serve_bare(c->arg, c->fd);
}

/* ------------------------------------------------------------ the client */

/* The client's buffer, kept across requests so the client costs the same
 * for both servers and little. */
struct sink {
    char *data;
    size_t len, cap;
};

static size_t take(char *p, size_t size, size_t n, void *user)
{
    struct sink *s = user;
    size_t add = size * n;
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 20;
        while (cap < s->len + add + 1)
            cap *= 2;
        char *d = realloc(s->data, cap);
        if (!d)
            return 0;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, add);
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

/* One GET on a kept-alive handle; its latency in µs (-1 on failure). */
static double get(CURL *h, const char *url, struct sink *s)
{
    s->len = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    double t0 = now_us();
    CURLcode rc = curl_easy_perform(h);
    double t = now_us() - t0;
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return rc == CURLE_OK && code == 200 ? t : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp);
    return v[(size_t)(p * (double)(n - 1))];
}

/* n interleaved GETs of each URL on its own kept-alive handle; prints p50/p99. */
static int measure(const char *what, CURL *ha, const char *url_a, CURL *hb, const char *url_b, size_t n,
                   struct sink *s)
{
    double *ta = calloc(n, sizeof *ta), *tb = calloc(n, sizeof *tb);
    size_t len = 0;
    int rc = ta && tb ? 0 : 1;
    for (int i = 0; rc == 0 && i < WARMUP; i++)
        if (get(ha, url_a, s) < 0 || get(hb, url_b, s) < 0)
            rc = 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ta[i] = get(ha, url_a, s);
        len = s->len;
        tb[i] = get(hb, url_b, s);
        if (ta[i] < 0 || tb[i] < 0 || s->len != len)
            rc = 1;
    }
    if (rc == 0) {
        double a50 = pct(ta, n, 0.50), a99 = pct(ta, n, 0.99), b50 = pct(tb, n, 0.50), b99 = pct(tb, n, 0.99);
        printf("%s: %zu bytes, %zu requests each, interleaved, one kept-alive connection each\n", what, len, n);
        printf("  trove-control API (registry on SQLite): p50 %8.0f us   p99 %8.0f us\n", a50, a99);
        printf("  bare libmicrohttpd (same bytes):        p50 %8.0f us   p99 %8.0f us\n", b50, b99);
        printf("  ratio API / bare:                       p50 %8.1f x    p99 %8.1f x\n", a50 / b50, a99 / b99);
    } else {
        fprintf(stderr, "api-bench: a request failed (%s)\n", what);
    }
    free(ta);
    free(tb);
    return rc;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    char dir[] = "/tmp/api-bench.XXXXXX", url_all[256], url_page[256], reg_url[512], err[256];
    char bare_all[256], bare_page[256];
    if (n < 10 || !mkdtemp(dir))
        return 2;
    log_set_level(TROVE_LOG_ERROR);
    snprintf(reg_url, sizeof reg_url, "sqlite:%s/registry.db", dir);
    struct registry *reg = registry_open(reg_url, err, sizeof err);
    if (!reg || seed(reg) != 0)
        return 1;
    registry_close(reg);

    uint16_t api_port_no = 0, bare_port = 0;
    pid_t api_pid = spawn(run_api, reg_url, &api_port_no);
    snprintf(url_all, sizeof url_all, "http://127.0.0.1:%u/v1.0/" TENANT "/instances?limit=1000", api_port_no);
    snprintf(url_page, sizeof url_page, "http://127.0.0.1:%u/v1.0/" TENANT "/instances", api_port_no);
    CURL *h = curl_easy_init(), *hb = curl_easy_init();
    struct sink s = { 0 };
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(hb, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(hb, CURLOPT_WRITEDATA, &s);
    struct bare bodies = { 0 };
    if (api_pid < 0 || get(h, url_all, &s) < 0 || !strstr(s.data, "bench-0999") || !(bodies.all = strdup(s.data)) ||
        get(h, url_page, &s) < 0 || !(bodies.page = strdup(s.data))) {
        fprintf(stderr, "api-bench: the API did not list %d instances\n", INSTANCES);
        return 1;
    }
    pid_t bare_pid = spawn(run_bare, &bodies, &bare_port);
    snprintf(bare_all, sizeof bare_all, "http://127.0.0.1:%u/all", bare_port);
    snprintf(bare_page, sizeof bare_page, "http://127.0.0.1:%u/page", bare_port);
    int rc = bare_pid < 0 ? 1 : 0;
    if (rc == 0)
        rc = measure("GET /instances (default page of 20), 1000 instances", h, url_page, hb, bare_page, n, &s) ||
             measure("GET /instances?limit=1000, 1000 instances", h, url_all, hb, bare_all, n, &s);

    kill(api_pid, SIGTERM);
    if (bare_pid > 0)
        kill(bare_pid, SIGTERM);
    waitpid(api_pid, NULL, 0);
    if (bare_pid > 0)
        waitpid(bare_pid, NULL, 0);
    curl_easy_cleanup(h);
    curl_easy_cleanup(hb);
    free((char *)bodies.all);
    free((char *)bodies.page);
    free(s.data);
    static const char *const files[] = { "registry.db", "registry.db-wal", "registry.db-shm" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    return rmdir(dir) == 0 ? rc : 1;
}
