/*
 * trovectl.c - the command line: global options, one verb, one call through
 * libtrove-control, and the outcome on stdout (a table, lines or --json) or
 * as exactly one line on stderr with exit 1 (operation failed) or 2 (the
 * command line was wrong).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "ops.h"
#include "status.h"
#include "trove_control.h"
#include "trovectl.h"

#ifndef TROVE_VERSION
#define TROVE_VERSION "unknown"
#endif

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define SHORT_TIMEOUT_S 30
#define LONG_TIMEOUT_S 3600
#define CONNECT_TIMEOUT_MS 5000
#define WAIT_MARGIN_S 30

struct options {
    const char *endpoint;
    bool json;
    long timeout_s;        /* 0: the verb's default */
    const char *verb_name;
};

/* ------------------------------------------------------------ failure */

static void print_json_error(const char *code, const char *message)
{
    struct tv *out = tv_map();
    struct tv *error = out ? tv_child_map(out, "error") : NULL;
    if (error && tv_set_bool(out, "ok", false) == 0 && tv_set_str(error, "code", code) == 0 &&
        tv_set_str(error, "message", message) == 0) {
        char *text = tv_to_json(out, true);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    tv_free(out);
}

/* The one line on stderr (and the JSON error object with --json). */
static int failure(const struct options *o, int exit_code, const char *code, const char *fmt, ...)
    TROVE_PRINTF(4, 5);

static int failure(const struct options *o, int exit_code, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    for (char *p = message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "trovectl: %s: %s\n", code, message);
    if (o->json)
        print_json_error(code, message);
    return exit_code;
}

#define USAGE_FAIL(o, ...) failure(o, EXIT_USAGE, "usage", __VA_ARGS__)

/* ------------------------------------------------------------ help */

static void help(FILE *out, const struct verb *only)
{
    if (only) {
        fprintf(out, "usage: trovectl [OPTIONS] %s %s\n\n%s.\n", only->name, only->usage, only->summary);
        return;
    }
    fprintf(out,
            "usage: trovectl [--endpoint EP] [--json] [--timeout SECONDS] VERB [INSTANCE] [ARGS...]\n"
            "\n"
            "  --endpoint EP   control plane client endpoint (default: $" TROVE_CONTROL_ENDPOINT_ENV
            ",\n"
            "                  else " TROVE_CONTROL_DEFAULT_ENDPOINT ")\n"
            "  --json          print the result (or the error) as JSON on stdout\n"
            "  --timeout S     give up after S seconds (default %d; %d for long operations)\n"
            "  help [VERB]     this text, or one verb's\n"
            "\n"
            "Verbs:\n",
            SHORT_TIMEOUT_S, LONG_TIMEOUT_S);
    for (size_t i = 0; verb_at(i); i++)
        fprintf(out, "  %-26s %s\n", verb_at(i)->name, verb_at(i)->summary);
    fprintf(out, "\nExit status: 0 success, 1 the operation failed, 2 the command line is wrong.\n");
}

/* ------------------------------------------------------------ parsing */

/* A global option at argv[*i]; 1 if taken, 0 if not global, -1 on error. */
static int take_global(int argc, char **argv, int *i, struct options *o, char *err, size_t errlen)
{
    const char *arg = argv[*i], *value = NULL;
    size_t len;
    if (strcmp(arg, "--json") == 0) {
        o->json = true;
        return 1;
    }
    for (const char *const *name = (const char *const[]){"--endpoint", "--timeout", NULL}; *name; name++) {
        len = strlen(*name);
        if (strncmp(arg, *name, len) != 0 || (arg[len] != '\0' && arg[len] != '='))
            continue;
        if (arg[len] == '=') {
            value = arg + len + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            snprintf(err, errlen, "%s needs a value", *name);
            return -1;
        }
        if (strcmp(*name, "--endpoint") == 0) {
            o->endpoint = value;
            return 1;
        }
        char *end;
        errno = 0;
        o->timeout_s = strtol(value, &end, 10);
        if (errno || end == value || *end || o->timeout_s < 1 || o->timeout_s > 86400) {
            snprintf(err, errlen, "--timeout must be whole seconds from 1 to 86400");
            return -1;
        }
        return 1;
    }
    return 0;
}

/* Find an option in a verb's spec: 0 flag, 1 takes a value, -1 unknown. */
static int option_kind(const struct verb *v, const char *name, size_t len)
{
    const char *p = v->options;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p + strcspn(p, " ");
        size_t n = strcspn(p, "= ");
        if (n == len && strncmp(p, name, len) == 0)
            return p[n] == '=' ? 1 : 0;
        p = end;
    }
    return -1;
}

static int parse_verb_args(int argc, char **argv, int first, const struct verb *v, struct cli_args *a,
                           struct options *o, char *err, size_t errlen)
{
    bool options_done = false;
    memset(a, 0, sizeof *a);
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || strncmp(arg, "--", 2) != 0) {
            if (a->n_pos == CLI_MAX_ARGS) {
                snprintf(err, errlen, "too many arguments");
                return -1;
            }
            a->pos[a->n_pos++] = arg;
            continue;
        }
        int g = take_global(argc, argv, &i, o, err, errlen);
        if (g < 0)
            return -1;
        if (g > 0)
            continue;
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int kind = option_kind(v, name, len);
        if (kind < 0) {
            snprintf(err, errlen, "%s does not take --%.*s (trovectl help %s)", v->name, (int)len, name, v->name);
            return -1;
        }
        const char *value = "";
        if (kind == 1) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                snprintf(err, errlen, "--%.*s needs a value", (int)len, name);
                return -1;
            }
        } else if (eq) {
            snprintf(err, errlen, "--%.*s takes no value", (int)len, name);
            return -1;
        }
        if (a->n_opts == CLI_MAX_ARGS) {
            snprintf(err, errlen, "too many options");
            return -1;
        }
        a->opts[a->n_opts].name = strndup(name, len);
        a->opts[a->n_opts].value = value;
        if (!a->opts[a->n_opts].name) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        a->n_opts++;
    }
    if (a->n_pos < v->min_pos || (v->max_pos >= 0 && a->n_pos > v->max_pos)) {
        snprintf(err, errlen, "%s %s", v->name, v->usage[0] ? v->usage : "takes no arguments");
        return -1;
    }
    return 0;
}

static void free_verb_args(struct cli_args *a)
{
    for (int i = 0; i < a->n_opts; i++)
        free((char *)a->opts[i].name);
}

/* ------------------------------------------------------------ running */

static void show_progress(void *user, const char *task_id, int percent, const char *message)
{
    (void)task_id;
    const char *verb = user;
    if (percent >= 0)
        fprintf(stderr, "trovectl: %s: %3d%% %s\n", verb, percent, message);
    else
        fprintf(stderr, "trovectl: %s: %s\n", verb, message);
}

static long default_timeout_s(const char *op, const struct cli_args *a)
{
    if (strcmp(op, "replication.wait") == 0) {
        /* The request must outlive the wait it asks for. */
        const char *wait = cli_opt(a, "wait-timeout");
        return (wait ? atol(wait) : 60) + WAIT_MARGIN_S;
    }
    return ops_is_long(op) ? LONG_TIMEOUT_S : SHORT_TIMEOUT_S;
}

/* An ipc:// endpoint whose socket file does not exist: nothing can answer,
 * so say so at once instead of waiting for the connect timeout. */
static bool ipc_socket_missing(const char *endpoint)
{
    struct stat st;
    return strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' && stat(endpoint + 6, &st) != 0 &&
           errno == ENOENT;
}

static int run(const struct options *o, const struct verb *v, const struct cli_args *a)
{
    struct trove_control_error err;
    struct tv *args = tv_map(), *result = NULL;
    const char *op = v->op;
    char why[512];
    int rc = EXIT_FAILED;

    if (!args)
        return failure(o, EXIT_FAILED, "internal", "out of memory");
    if (v->build && v->build(a, args, &op, why, sizeof why) != 0) {
        tv_free(args);
        return USAGE_FAIL(o, "%s", why);
    }
    if (ipc_socket_missing(o->endpoint)) {
        tv_free(args);
        return failure(o, EXIT_FAILED, "unavailable",
                       "cannot connect to the control plane at %s: no such socket (is trove-control running?)",
                       o->endpoint);
    }
    long timeout_s = o->timeout_s ? o->timeout_s : default_timeout_s(op, a);
    long connect_ms = timeout_s * 1000 < CONNECT_TIMEOUT_MS ? timeout_s * 1000 : CONNECT_TIMEOUT_MS;
    struct trove_control *tc = trove_control_connect(o->endpoint, (int)connect_ms, &err);
    if (!tc) {
        tv_free(args);
        return failure(o, EXIT_FAILED, err.code, "%s", err.message);
    }
    const char *instance = verb_has_instance(v) ? a->pos[0] : NULL;
    int status = trove_control_call(tc, instance, op, args, (int)(timeout_s * 1000), o->json ? NULL : show_progress,
                                    (void *)v->name, &result, &err);
    if (status != TROVE_OK) {
        rc = failure(o, EXIT_FAILED, err.code, "%s", err.message);
    } else if (o->json) {
        char *text = tv_to_json(result, true);
        if (text) {
            printf("%s\n", text);
            rc = 0;
        } else {
            rc = failure(o, EXIT_FAILED, "internal", "out of memory");
        }
        free(text);
    } else {
        if (v->print)
            v->print(result, a);
        rc = 0;
    }
    tv_free(result);
    tv_free(args);
    trove_control_close(tc);
    if (rc == 0 && fflush(stdout) != 0)
        rc = failure(o, EXIT_FAILED, "internal", "cannot write the output: %s", strerror(errno));
    return rc;
}

/* The operator's ZeroMQ path is chosen with --endpoint or its variable;
 * everything else speaks to the REST API (trovectl_rest.c). */
static bool wants_zeromq(int argc, char **argv)
{
    const char *env = getenv(TROVE_CONTROL_ENDPOINT_ENV);
    if (env && *env)
        return true;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--endpoint") == 0 || strncmp(argv[i], "--endpoint=", 11) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    struct options o = {.endpoint = getenv(TROVE_CONTROL_ENDPOINT_ENV)};
    char err[512];
    int i = 1;

    if (!wants_zeromq(argc, argv))
        return trovectl_rest_main(argc, argv);

    if (!o.endpoint || !*o.endpoint)
        o.endpoint = TROVE_CONTROL_DEFAULT_ENDPOINT;
    /* Global options before the verb; they are also accepted after it. */
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            help(stdout, NULL);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("trovectl %s\n", TROVE_VERSION);
            return 0;
        }
        int g = take_global(argc, argv, &i, &o, err, sizeof err);
        if (g < 0)
            return USAGE_FAIL(&o, "%s", err);
        if (g == 0)
            return USAGE_FAIL(&o, "unknown option %s (trovectl --help)", argv[i]);
    }
    if (i >= argc)
        return USAGE_FAIL(&o, "no verb given (trovectl --help lists them)");
    o.verb_name = argv[i++];
    if (strcmp(o.verb_name, "help") == 0 || strcmp(o.verb_name, "-h") == 0) {
        const struct verb *v = i < argc ? verb_find(argv[i]) : NULL;
        if (i < argc && !v)
            return USAGE_FAIL(&o, "unknown verb '%s' (trovectl --help lists them)", argv[i]);
        help(stdout, v);
        return 0;
    }
    const struct verb *v = verb_find(o.verb_name);
    if (!v)
        return USAGE_FAIL(&o, "unknown verb '%s' (trovectl --help lists them)", o.verb_name);

    struct cli_args a;
    int rc = parse_verb_args(argc, argv, i, v, &a, &o, err, sizeof err);
    if (rc != 0)
        rc = USAGE_FAIL(&o, "%s", err);
    else
        rc = run(&o, v, &a);
    free_verb_args(&a);
    return rc;
}
