/*
 * log.c - the process-wide logger: one line per message, UTC timestamp with
 * milliseconds, ident, level, text, written to stderr with one write under
 * one mutex so lines from different threads never interleave. Control
 * characters in messages are escaped, so text from outside (names, server
 * errors) cannot forge extra log lines. It never decides what is secret for
 * a caller beyond log_is_secret_key().
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define IDENT_MAX 64
#define TEXT_MAX 4096

static struct logger {
    pthread_mutex_t lock;
    enum trove_log_level level;
    char ident[IDENT_MAX];
} logger = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .level = TROVE_LOG_INFO,
    .ident = "trove",
};

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const level_tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void log_set_level(enum trove_log_level level)
{
    if ((int)level < TROVE_LOG_ERROR || level > TROVE_LOG_DEBUG)
        return;
    pthread_mutex_lock(&logger.lock);
    logger.level = level;
    pthread_mutex_unlock(&logger.lock);
}

enum trove_log_level log_get_level(void)
{
    pthread_mutex_lock(&logger.lock);
    enum trove_log_level level = logger.level;
    pthread_mutex_unlock(&logger.lock);
    return level;
}

int log_level_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return TROVE_LOG_WARN;
    return -1;
}

void log_set_ident(const char *ident)
{
    pthread_mutex_lock(&logger.lock);
    snprintf(logger.ident, sizeof(logger.ident), "%s", ident && ident[0] ? ident : "trove");
    pthread_mutex_unlock(&logger.lock);
}

/* Copy text into dst, escaping control characters; returns the length. */
static size_t escape(char *dst, size_t cap, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 4 < cap; p++) {
        if (*p == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else if (*p == '\r') {
            dst[n++] = '\\';
            dst[n++] = 'r';
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[*p >> 4];
            dst[n++] = hex[*p & 15];
        } else {
            dst[n++] = (char)*p;
        }
    }
    return n;
}

void log_vmsg(enum trove_log_level level, const char *fmt, va_list ap)
{
    if ((int)level < TROVE_LOG_ERROR || level > TROVE_LOG_DEBUG || !fmt)
        return;
    if (level > log_get_level())
        return;

    char text[TEXT_MAX];
    int len = vsnprintf(text, sizeof(text), fmt, ap);
    if (len < 0)
        snprintf(text, sizeof(text), "(unformattable log message)");
    bool truncated = len >= (int)sizeof(text);
    size_t tl = strlen(text);
    while (tl > 0 && text[tl - 1] == '\n')
        text[--tl] = '\0';

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    /* Room for every byte escaped as \xNN, plus the prefix. */
    char line[TEXT_MAX * 4 + IDENT_MAX + 64];
    pthread_mutex_lock(&logger.lock);
    int n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s ", stamp, ts.tv_nsec / 1000000L,
                     logger.ident, level_tags[level]);
    size_t used = n > 0 ? (size_t)n : 0;
    used += escape(line + used, sizeof(line) - used - 16, text);
    if (truncated) {
        memcpy(line + used, " [truncated]", 12);
        used += 12;
    }
    line[used++] = '\n';
    /* One write(2) per line: atomic with respect to other writers of stderr too. */
    size_t off = 0;
    while (off < used) {
        ssize_t w = write(STDERR_FILENO, line + off, used - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&logger.lock);
}

void log_msg(enum trove_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

bool log_is_secret_key(const char *key)
{
    if (!key)
        return false;
    return strcasestr(key, "password") || strcasestr(key, "secret") || strcasestr(key, "token");
}
