/*
 * input.h - what a user hands the command-line tools (trovectl, trove-agent
 * call): a secret on standard input, or a whole argument text from standard
 * input or a file, so neither needs to sit on a command line. Input is read
 * whole and bounded: too much is refused, never cut short. Also the one size
 * limit every password in a request obeys, checked by trovectl and the agent.
 */
#ifndef TROVE_INPUT_H
#define TROVE_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The longest password (any string argument named like a secret, see
 * log_is_secret_key()) a request may carry, in bytes. Plugins may allow less. */
#define INPUT_PASSWORD_MAX 1024

/* 0 if a secret argument `name` of len bytes is within INPUT_PASSWORD_MAX;
 * else -1 with "<name> is longer than 1024 bytes" in err. */
int input_check_password(const char *name, size_t len, char *err, size_t errlen);

/* One line from `in` with its line end ("\n" or "\r\n") removed: a secret
 * named `name`. Refused (NULL, reason in err): no input at all, a NUL byte,
 * more than INPUT_PASSWORD_MAX bytes, a read error. Returns malloc'd text the
 * caller wipes (input_free_secret) and frees. */
char *input_read_secret(FILE *in, const char *name, char *err, size_t errlen);

/* Wipe a secret's bytes, then free it. NULL is fine. */
void input_free_secret(char *secret);

/* True for an argument that names where its text comes from: "-" (all of
 * standard input) or "@PATH" (the whole file). */
bool input_is_indirect(const char *arg);

/* The text of an argument named `name`: for "-" all of standard input, for
 * "@PATH" the whole file, otherwise a copy of arg. Refused (NULL, reason in
 * err): more than max bytes, a NUL byte, a file that cannot be read. Returns
 * malloc'd text; it may hold secrets, so free it with input_free_secret. */
char *input_arg_text(const char *arg, const char *name, size_t max, char *err, size_t errlen);

#endif
