/*
 * provision_proc.h - processes for the provisioner and the instances module:
 * running a tool and collecting its output, starting a process detached so
 * it outlives trove-control, pid files, and stopping a process that is not
 * our child. No shell is ever involved: every argv goes to exec as it is.
 */
#ifndef TROVE_PROVISION_PROC_H
#define TROVE_PROVISION_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Run a tool (argv[0] looked up in PATH) with stdin from /dev/null and its
 * output collected; returns its exit status (0-255), or -1 when it could not
 * run or died by a signal. out (may be NULL) receives the output's tail. */
int proc_run(const char *const argv[], char *out, size_t outlen);
/* Start argv detached from this process (new session, reparented to init,
 * every descriptor closed, signals reset), stdout/stderr appended to log,
 * cwd as given; *pid is the detached process. */
int proc_spawn_detached(const char *const argv[], const char *cwd, const char *log, pid_t *pid, char *err,
                        size_t errlen);
/* The pid in a pid file (first line), or 0. */
pid_t proc_read_pid_file(const char *path);
int proc_write_pid_file(const char *path, pid_t pid, char *err, size_t errlen);
/* Exists and is not a zombie. */
bool proc_alive(pid_t pid);
/* /proc/<pid>/comm is one of names (NULL-terminated). */
bool proc_comm_is(pid_t pid, const char *const names[]);
/* /proc/<pid>/cmdline has an argument equal to arg. */
bool proc_cmdline_has(pid_t pid, const char *arg);
/* Send sig and wait up to timeout_ms for the process to go; then SIGKILL
 * and wait again. 0 when it is gone, -1 if it survived SIGKILL. */
int proc_terminate(pid_t pid, int sig, int timeout_ms);
/* Some processes that hold files under path open (or as cwd/root), as
 * "pid (comm)" text, for an error message. */
void proc_holders(const char *path, char *out, size_t outlen);

#endif
