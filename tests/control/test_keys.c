/*
 * test_keys.c - CURVE key files (common/keys.c) and the plain-text endpoint
 * rule: what keygen writes, what a reader refuses, and which endpoints
 * count as local.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

static char dir[64];
static char err[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/trove-keys-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void path_of(char *out, const char *name)
{
    snprintf(out, 256, "%s/%s", dir, name);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static void written_pair_reads_back(void **state)
{
    (void)state;
    struct keys_pair kp, back;
    char name[256], path[256], pub[KEYS_Z85_LEN + 1];
    struct stat st;

    assert_int_equal(keys_generate(&kp, err, sizeof err), 0);
    assert_true(keys_is_z85(kp.public_z85));
    assert_true(keys_is_z85(kp.secret_z85));
    path_of(name, "server");
    assert_int_equal(keys_write(name, &kp, err, sizeof err), 0);

    path_of(path, "server.key");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(keys_read_key(path, &back, err, sizeof err), 0);
    assert_string_equal(back.public_z85, kp.public_z85);
    assert_string_equal(back.secret_z85, kp.secret_z85);

    path_of(path, "server.pub");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(keys_read_pub(path, pub, err, sizeof err), 0);
    assert_string_equal(pub, kp.public_z85);

    /* Never overwritten. */
    assert_int_equal(keys_write(name, &kp, err, sizeof err), -1);
    assert_non_null(strstr(err, "refusing to overwrite"));

    keys_wipe(&kp);
    assert_int_equal(kp.secret_z85[0], '\0');
}

static void key_file_open_to_others_is_refused(void **state)
{
    (void)state;
    struct keys_pair kp, back;
    char name[256], path[256];
    assert_int_equal(keys_generate(&kp, err, sizeof err), 0);
    path_of(name, "loose");
    assert_int_equal(keys_write(name, &kp, err, sizeof err), 0);
    path_of(path, "loose.key");
    chmod(path, 0640);
    assert_int_equal(keys_read_key(path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "loose.key"));
}

static void mismatched_or_malformed_keys_are_refused(void **state)
{
    (void)state;
    struct keys_pair a, b, back;
    char path[256], text[512], pub[KEYS_Z85_LEN + 1];
    assert_int_equal(keys_generate(&a, err, sizeof err), 0);
    assert_int_equal(keys_generate(&b, err, sizeof err), 0);

    path_of(path, "mixed.key");
    snprintf(text, sizeof text, "[curve]\npublic-key = \"%s\"\nsecret-key = \"%s\"\n", a.public_z85, b.secret_z85);
    write_text(path, text, 0600);
    assert_int_equal(keys_read_key(path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not belong"));

    path_of(path, "short.key");
    write_text(path, "[curve]\npublic-key = \"abc\"\nsecret-key = \"def\"\n", 0600);
    assert_int_equal(keys_read_key(path, &back, err, sizeof err), -1);

    path_of(path, "bad.pub");
    write_text(path, "not a key at all\n", 0644);
    assert_int_equal(keys_read_pub(path, pub, err, sizeof err), -1);
    path_of(path, "two.pub");
    snprintf(text, sizeof text, "%s\n%s\n", a.public_z85, b.public_z85);
    write_text(path, text, 0644);
    assert_int_equal(keys_read_pub(path, pub, err, sizeof err), -1);
    path_of(path, "missing.pub");
    assert_int_equal(keys_read_pub(path, pub, err, sizeof err), -1);

    /* Z85 characters that encode more than 32 bits per group. */
    assert_false(keys_is_z85("########################################"));
    assert_false(keys_is_z85("short"));
}

static void only_local_endpoints_allow_plain_text(void **state)
{
    (void)state;
    assert_true(keys_endpoint_is_local("tcp://127.0.0.1:5555"));
    assert_true(keys_endpoint_is_local("tcp://localhost:5555"));
    assert_true(keys_endpoint_is_local("tcp://[::1]:5555"));
    assert_true(keys_endpoint_is_local("tcp://127.0.0.1:*"));
    assert_true(keys_endpoint_is_local("ipc:///var/lib/trove-control/control.sock"));
    assert_true(keys_endpoint_is_local("inproc://x"));
    assert_true(keys_endpoint_is_local("tcp://127.0.0.1:0;127.0.0.1:5555"));

    assert_false(keys_endpoint_is_local("tcp://0.0.0.0:5555"));
    assert_false(keys_endpoint_is_local("tcp://*:5555"));
    assert_false(keys_endpoint_is_local("tcp://10.0.0.1:5555"));
    assert_false(keys_endpoint_is_local("tcp://127.0.0.1.example.com:5555"));
    assert_false(keys_endpoint_is_local("tcp://eth0:5555"));
    assert_false(keys_endpoint_is_local("tcp://127.0.0.1:0;10.0.0.1:5555"));
    assert_false(keys_endpoint_is_local("tcp://"));
    assert_false(keys_endpoint_is_local("tcp://127.0.0.1:5555;"));   /* a side that is not there */
    assert_false(keys_endpoint_is_local("tcp://;127.0.0.1:5555"));
    assert_false(keys_endpoint_is_local("ws://127.0.0.1:5555"));
    assert_false(keys_endpoint_is_local(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written_pair_reads_back),
        cmocka_unit_test(key_file_open_to_others_is_refused),
        cmocka_unit_test(mismatched_or_malformed_keys_are_refused),
        cmocka_unit_test(only_local_endpoints_allow_plain_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
