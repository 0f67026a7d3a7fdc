/*
 * main.c - trove-agent's command line: serve (the default) or run one
 * operation locally with `call`, which goes through the same dispatch as a
 * request from the control plane. Signals only set the stop flag.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "backup.h"
#include "dispatch.h"
#include "host.h"
#include "input.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "plugin_loader.h"
#include "status.h"
#include "wire.h"

static atomic_bool *stop_flag;   /* the one thing a signal handler may touch */

static void on_signal(int sig)
{
    (void)sig;
    if (stop_flag)
        atomic_store(stop_flag, true);
}

static void install_signals(struct agent *a)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    stop_flag = &a->stopping;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: trove-agent [-c CONFIG] [--check-config | call OP [JSON-ARGS | - | @FILE]]\n"
            "  (no command)   serve: connect to the control plane and run its requests\n"
            "  call OP ARGS   run one operation locally and print its result as JSON;\n"
            "                 ARGS - reads the JSON from standard input, @FILE from a file\n"
            "                 (use either for passwords: a command line is visible to all)\n"
            "  -c CONFIG      configuration file (default /etc/trove/agent.conf)\n"
            "  --check-config check the configuration, the keys and the plugin, then exit:\n"
            "                 0 and \"configuration OK\", or 1 and the first problem\n"
            "  --version      print the agent and plugin ABI versions\n");
}

static void print_progress(void *ctx, int percent, const char *message)
{
    (void)ctx;
    if (percent >= 0)
        fprintf(stderr, "progress: %d%% %s\n", percent, message);
    else
        fprintf(stderr, "progress: %s\n", message);
}

static void print_doc(int rc, struct trove_call *call)
{
    struct tv *doc = tv_map();
    tv_set_bool(doc, "ok", rc == TROVE_OK);
    if (rc == TROVE_OK) {
        tv_set(doc, "result", call_take_result(call));
    } else {
        struct tv *err = tv_map();
        tv_set_str(err, "code", status_name(rc));
        tv_set_str(err, "message", call_message(call, rc));
        tv_set(doc, "error", err);
    }
    char *json = tv_to_json(doc, true);
    if (json)
        printf("%s\n", json);
    free(json);
    tv_free(doc);
}

/* Report a failure before any operation ran; `call` still answers in JSON. */
static int fail_early(const char *cmd, int rc, const char *err)
{
    fprintf(stderr, "trove-agent: %s\n", err);
    if (cmd) {
        struct trove_call call;
        if (call_init(&call, NULL, NULL, NULL) == 0) {
            call_fail(&call, rc, "%s", err);
            print_doc(rc, &call);
            call_release(&call);
        }
    }
    return 1;
}

/* The call's arguments: JSON text given inline, or "-" (standard input) or
 * "@FILE", read whole. NULL args when none were given. */
static int call_args(struct trove_call *call, const char *given, struct tv **args)
{
    char err[512];
    *args = NULL;
    if (!given)
        return TROVE_OK;
    char *text = input_arg_text(given, "the JSON arguments", WIRE_MAX_FRAME, err, sizeof(err));
    if (!text)
        return call_fail(call, TROVE_EINVAL, "%s", err);
    int rc = json_to_tv(text, args, err, sizeof(err));
    input_free_secret(text);
    return rc == 0 ? TROVE_OK : call_fail(call, TROVE_EINVAL, "JSON arguments: %s", err);
}

static int run_call(struct agent *a, const char *op, const char *given)
{
    struct trove_call call;
    struct tv *args = NULL;
    int rc;
    if (call_init(&call, &a->stopping, print_progress, NULL) != 0)
        return 1;
    if ((rc = call_args(&call, given, &args)) == TROVE_OK)
        rc = dispatch_run(a, op, args, &call);
    if (rc != TROVE_OK)
        fprintf(stderr, "trove-agent: %s: %s\n", status_name(rc), call_message(&call, rc));
    print_doc(rc, &call);
    call_release(&call);
    tv_free(args);
    return rc == TROVE_OK ? 0 : 1;
}

/* --check-config: what serving would refuse at start, without serving. */
static int check_config(struct agent *a, const char *config)
{
    char err[1024];
    if (loop_check_security(a, err, sizeof(err)) != 0) {
        fprintf(stderr, "trove-agent: %s: %s\n", config, err);
        return 1;
    }
    printf("trove-agent: %s: configuration OK (instance %s, plugin %s)\n", config, a->instance_id,
           conf_get(a->conf, "agent", "plugin"));
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = "/etc/trove/agent.conf";
    bool check_only = false;
    int i = 1;
    log_set_ident("trove-agent");
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(argv[i], "--check-config")) {
            check_only = true;
        } else if (!strcmp(argv[i], "--version")) {
            printf("trove-agent %s (plugin ABI %d.%d)\n", AGENT_VERSION, TROVE_ABI_MAJOR, TROVE_ABI_MINOR);
            return 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *cmd = i < argc ? argv[i] : NULL;
    if (cmd && (check_only || strcmp(cmd, "call") != 0 || i + 1 >= argc || i + 3 < argc)) {
        usage(stderr);
        return 2;
    }

    struct agent a;
    char err[1024];
    if (agent_configure(&a, config, err, sizeof(err)) != 0) {
        agent_release(&a);
        return fail_early(cmd, TROVE_EINVAL, err);
    }
    install_signals(&a);
    size_t n_settings = 0;
    const struct trove_kv *settings = conf_section(a.conf, "datastore", &n_settings);
    int rc = plugin_load(&a.plugin, agent_plugin_dir(&a), conf_get(a.conf, "agent", "plugin"), settings, n_settings,
                         err, sizeof(err));
    if (rc != TROVE_OK) {
        agent_release(&a);
        return fail_early(cmd, rc, err);
    }
    if (check_only) {
        int check_rc = check_config(&a, config);
        plugin_unload(&a.plugin);
        agent_release(&a);
        return check_rc;
    }
    backup_recover_interrupted(&a);
    int exit_code = cmd ? run_call(&a, argv[i + 1], i + 2 < argc ? argv[i + 2] : NULL)
                        : (loop_run(&a) == 0 ? 0 : 1);
    plugin_unload(&a.plugin);
    agent_release(&a);
    return exit_code;
}
