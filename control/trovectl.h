/*
 * trovectl.h - the pieces of the trovectl CLI: parsed command lines, the
 * verb table (trovectl_verbs.c: verb -> op and arguments) and the human
 * output (trovectl_print.c). The protocol itself is libtrove-control's.
 */
#ifndef TROVE_TROVECTL_H
#define TROVE_TROVECTL_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

#define CLI_MAX_ARGS 256

/* A verb's command line after the global options were taken out. */
struct cli_args {
    const char *pos[CLI_MAX_ARGS];    /* positional arguments, INSTANCE first where the verb has one */
    int n_pos;
    struct {
        const char *name;             /* without the leading "--" */
        const char *value;            /* "" for a flag */
    } opts[CLI_MAX_ARGS];
    int n_opts;
};

/* The last value given for an option, or NULL. */
const char *cli_opt(const struct cli_args *a, const char *name);

/* Builds the request arguments; -1 with a usage message in err. May
 * replace *op (the `call` verb). */
typedef int (*verb_build_fn)(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen);
/* Prints a successful result for humans. */
typedef void (*verb_print_fn)(const struct tv *result, const struct cli_args *a);

struct verb {
    const char *name;
    const char *op;             /* the protocol operation; whether it runs as a task (longer default
                                   timeout, progress lines) is the catalogue's word (ops_is_long) */
    const char *usage;          /* what follows the verb, for help and errors */
    const char *summary;
    int min_pos, max_pos;       /* positional arguments, INSTANCE included; max -1 = no limit */
    const char *options;        /* space-separated: "name" flag, "name=" value, "name=*" repeatable */
    verb_build_fn build;        /* NULL: no arguments */
    verb_print_fn print;        /* NULL: print nothing */
};

const struct verb *verb_find(const char *name);
const struct verb *verb_at(size_t i);   /* NULL past the end */
/* True if the verb's first positional argument is an instance id. */
bool verb_has_instance(const struct verb *v);

/* trovectl_rest.c: the whole command line when trovectl speaks to the REST
 * API (no --endpoint and no $TROVE_CONTROL_ENDPOINT). Returns the exit code. */
int trovectl_rest_main(int argc, char **argv);
/* The i-th REST verb: its name, the catalogue operation it asks for (NULL
 * when none) and whether --wait follows it. False past the end. */
bool rest_verb_at(size_t i, const char **name, const char **op, bool *waits_for_task);

/* trovectl_print.c */
void print_kv(const struct tv *map, bool reveal_secrets);
void print_ping(const struct tv *result, const struct cli_args *a);
void print_result_kv(const struct tv *result, const struct cli_args *a);
void print_result_kv_secrets(const struct tv *result, const struct cli_args *a);
void print_instances(const struct tv *result, const struct cli_args *a);
void print_instance(const struct tv *result, const struct cli_args *a);
void print_users(const struct tv *result, const struct cli_args *a);
void print_user(const struct tv *result, const struct cli_args *a);
void print_databases(const struct tv *result, const struct cli_args *a);
void print_access(const struct tv *result, const struct cli_args *a);
void print_schema(const struct tv *result, const struct cli_args *a);
void print_config_values(const struct tv *result, const struct cli_args *a);
void print_backups(const struct tv *result, const struct cli_args *a);
void print_backup(const struct tv *result, const struct cli_args *a);

#endif
