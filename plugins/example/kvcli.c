/*
 * kvcli.c - trove-example-kv, the example datastore's own command-line
 * client, as an operator (or a conformance check) uses it: log in, run
 * commands, print the replies. The password comes from the environment
 * (KV_PASSWORD), never from argv, which every user of the machine can read.
 *
 *   trove-example-kv [-h HOST] [-p PORT] [-u USER] [COMMAND ARG...]
 *
 * Without COMMAND, commands are read from stdin, one per line, with their
 * arguments separated by tabs. Each OK reply's values and each ROW are
 * printed tab-separated on stdout; an ERR goes to stderr. Exit status: 0 when
 * every command succeeded, 1 when one failed (or the login did), 2 on a
 * usage or connection error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define TIMEOUT_MS 30000

/* Send one command and print its reply; 0 OK, 1 ERR, 2 broken connection. */
static int run(int fd, struct kv_reader *r, const char *const *tok, size_t n, bool quiet)
{
    struct tps_buf b = {0};
    kv_line(&b, tok, n);
    int rc = tps_buf_str(&b) && kv_send(fd, b.data, b.len, TIMEOUT_MS) == 0 ? -1 : 2;
    tps_buf_wipe(&b);
    while (rc < 0) {
        char *line = kv_read_line(r, TIMEOUT_MS), *t[KV_TOKENS_MAX];
        int k = line ? kv_split(line, t) : -1;
        if (k <= 0) {
            fprintf(stderr, "trove-example-kv: %s\n", line ? "a bad reply" : strerror(errno));
            rc = 2;
        } else if (!strcmp(t[0], "ERR")) {
            fprintf(stderr, "ERR %s: %s\n", k > 1 ? t[1] : "?", k > 2 ? t[2] : "");
            rc = 1;
        } else {
            bool last = !strcmp(t[0], "OK");
            for (int i = 1; i < k && !quiet; i++)
                printf("%s%s", t[i], i + 1 < k ? "\t" : "\n");
            rc = last ? 0 : -1;
        }
        free(line);
    }
    return rc;
}

static int from_stdin(int fd, struct kv_reader *r)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int worst = 0;
    while (worst < 2 && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (!len)
            continue;
        const char *tok[KV_TOKENS_MAX];
        size_t n = 0;
        for (char *p = line, *tab; n < KV_TOKENS_MAX; p = tab + 1) {
            tok[n++] = p;
            if (!(tab = strchr(p, '\t')))
                break;
            *tab = '\0';
        }
        int rc = run(fd, r, tok, n, false);
        worst = rc > worst ? rc : worst;
    }
    free(line);
    return worst;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *user = NULL;
    int port = 7400, i = 1;
    for (; i + 1 < argc && argv[i][0] == '-' && argv[i][1] && !argv[i][2]; i += 2) {
        if (argv[i][1] == 'h')
            host = argv[i + 1];
        else if (argv[i][1] == 'p')
            port = atoi(argv[i + 1]);
        else if (argv[i][1] == 'u')
            user = argv[i + 1];
        else
            break;
    }
    if ((i < argc && argv[i][0] == '-') || port < 1 || port > 65535) {
        fprintf(stderr, "usage: trove-example-kv [-h HOST] [-p PORT] [-u USER] [COMMAND ARG...]\n"
                        "       (password in KV_PASSWORD; without COMMAND, tab-separated commands on stdin)\n");
        return 2;
    }
    int fd = kv_dial(host, port, 5000);
    if (fd < 0) {
        fprintf(stderr, "trove-example-kv: cannot connect to %s:%d: %s\n", host, port, strerror(-fd));
        return 2;
    }
    struct kv_reader r = {.fd = fd};
    int rc = 0;
    if (user) {
        const char *pw = getenv("KV_PASSWORD");
        const char *auth[] = {"AUTH", user, pw ? pw : ""};
        rc = run(fd, &r, auth, 3, true);
    }
    if (rc == 0 && i < argc)
        rc = run(fd, &r, (const char *const *)argv + i, (size_t)(argc - i), false);
    else if (rc == 0)
        rc = from_stdin(fd, &r);
    kv_reader_free(&r);
    close(fd);
    return rc;
}
