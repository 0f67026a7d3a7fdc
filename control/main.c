/*
 * main.c - trove-control's command line: run the daemon from a config file,
 * or `keygen NAME` to write a CURVE key pair. Everything else lives in
 * daemon.c and the files it names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"

#ifndef TROVE_VERSION
#define TROVE_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: trove-control [--config PATH]\n"
            "       trove-control keygen NAME\n"
            "       trove-control --help | --version\n"
            "\n"
            "Runs the control plane in the foreground until SIGTERM or SIGINT. The config\n"
            "defaults to " CONTROL_DEFAULT_CONFIG " (built-in defaults when it is absent).\n"
            "keygen writes NAME.key (public and secret key, mode 0600) and NAME.pub.\n");
}

static int keygen(const char *name)
{
    struct keys_pair kp;
    char err[512];
    if (keys_generate(&kp, err, sizeof err) != 0 || keys_write(name, &kp, err, sizeof err) != 0) {
        keys_wipe(&kp);
        fprintf(stderr, "trove-control: %s\n", err);
        return 1;
    }
    printf("wrote %s.key and %s.pub\npublic key: %s\n", name, name, kp.public_z85);
    keys_wipe(&kp);
    return 0;
}

/* Every connected agent holds a descriptor: take all the hard limit allows,
 * as the soft limit (often 1024) would stop admitting agents long before. */
static void raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("cannot raise the open files limit from %llu: %s", (unsigned long long)was, strerror(errno));
    else
        log_debug("open files limit raised from %llu to %llu", (unsigned long long)was,
                  (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;

    log_set_ident("trove-control");
    if (argc == 3 && strcmp(argv[1], "keygen") == 0)
        return keygen(argv[2]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("trove-control %s\n", TROVE_VERSION);
            return 0;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            usage(stderr);
            return 2;
        }
    }

    struct control_config cfg;
    char err[512];
    if (control_config_load(config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "trove-control: %s\n", err);
        return 1;
    }
    log_set_level(cfg.log_level);
    raise_open_files();
    int rc = daemon_run(&cfg);
    control_config_free(&cfg);
    return rc;
}
