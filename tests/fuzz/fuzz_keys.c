/*
 * fuzz_keys.c - CURVE key files (common/keys.c) through their real entry
 * points, and the endpoint rule that decides when plain text is allowed.
 * A key file either fails with one line naming the path, or gives a pair of
 * valid Z85 keys whose public half belongs to the secret half; a .pub file
 * gives one valid key; an endpoint called local names only loopback hosts.
 */
#include "fuzz_util.h"

#include <stdbool.h>
#include <zmq.h>

#include "keys.h"

static bool loopback_host(const char *h, size_t n)
{
    return (n == 9 && memcmp(h, "127.0.0.1", 9) == 0) || (n == 9 && memcmp(h, "localhost", 9) == 0) ||
           (n == 5 && memcmp(h, "[::1]", 5) == 0) || (n == 3 && memcmp(h, "::1", 3) == 0);
}

/* Independent reading of the rule: "tcp://" then ';'-separated host:port
 * parts whose hosts are all loopback. */
static void check_endpoint(const char *e)
{
    if (!keys_endpoint_is_local(e))
        return;
    if (strncmp(e, "ipc://", 6) == 0 || strncmp(e, "inproc://", 9) == 0)
        return;
    FUZZ_CHECK(strncmp(e, "tcp://", 6) == 0 && e[6], "\"%s\" called local", e);
    for (const char *p = e + 6;;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        const char *colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (p[i] == ':')
                colon = p + i;
        FUZZ_CHECK(colon && loopback_host(p, (size_t)(colon - p)), "\"%s\" called local", e);
        if (!semi)
            break;
        p = semi + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, 0600);
    char err[512] = "";
    struct keys_pair kp;
    if (keys_read_key(path, &kp, err, sizeof(err)) == 0) {
        FUZZ_CHECK(keys_is_z85(kp.public_z85) && keys_is_z85(kp.secret_z85), "invalid key accepted");
        char derived[KEYS_Z85_LEN + 1];
        FUZZ_CHECK(zmq_curve_public(derived, kp.secret_z85) == 0 && strcmp(derived, kp.public_z85) == 0,
                   "a public key that does not belong to the secret key was accepted");
        keys_wipe(&kp);
    } else {
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && !strchr(err, '\n'), "reason \"%s\"", err);
    }

    char pub[KEYS_Z85_LEN + 1];
    if (keys_read_pub(path, pub, err, sizeof(err)) == 0)
        FUZZ_CHECK(keys_is_z85(pub), "invalid public key accepted");
    else
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && !strchr(err, '\n'), "reason \"%s\"", err);

    char *text = fuzz_text(data, size);
    if (keys_is_z85(text))
        FUZZ_CHECK(strlen(text) == KEYS_Z85_LEN, "a key of %zu characters accepted", strlen(text));
    check_endpoint(text);
    free(text);
    return 0;
}
