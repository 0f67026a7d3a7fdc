/*
 * fuzz_util.h - what the libFuzzer targets share: a failed property aborts
 * with a message (libFuzzer saves the input), bytes become NUL-terminated
 * text, an input splits into two texts, and a file path for text that a
 * parser will only read from a file.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold for every input. */
#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "property failed at %s:%d: %s: ", __FILE__,        \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* The bytes as a malloc'd C string (cut at the first NUL, as every C
 * consumer of the text would see it). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Split at the first NUL byte into two malloc'd texts (b is "" when the
 * input holds no NUL). */
static inline void fuzz_split(const uint8_t *data, size_t size, char **a, char **b)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    *a = fuzz_text(data, n);
    *b = nul ? fuzz_text(nul + 1, size - n - 1) : fuzz_text(data, 0);
}

/*
 * An in-memory file holding exactly the input, with the given mode, and a
 * path that opens it ("/proc/self/fd/N"): parsers that read files are fuzzed
 * through their real entry point. One file is reused for every input.
 */
static inline const char *fuzz_file(const uint8_t *data, size_t size, mode_t mode)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size) ||
        fchmod(fd, mode) != 0) {
        perror("fuzz input file");
        abort();
    }
    return path;
}

#endif
