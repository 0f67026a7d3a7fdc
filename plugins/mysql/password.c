/*
 * password.c - what the server is told about a password: its
 * mysql_native_password hash, never the cleartext, so no account statement
 * the plugin sends (nor the binary, relay, general or slow log recording it)
 * holds a password. Nothing here talks to the server or logs.
 */
#include <string.h>

#include <openssl/evp.h>

#include "mysql_plugin.h"

#define SHA1_LEN 20

bool my_password_hash(const char *password, char out[MY_HASH_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char once[EVP_MAX_MD_SIZE], twice[EVP_MAX_MD_SIZE];
    unsigned n_once = 0, n_twice = 0;
    bool ok = EVP_Digest(password, strlen(password), once, &n_once, EVP_sha1(), NULL) == 1 && n_once == SHA1_LEN &&
              EVP_Digest(once, n_once, twice, &n_twice, EVP_sha1(), NULL) == 1 && n_twice == SHA1_LEN;
    if (ok) {
        out[0] = '*';
        for (unsigned i = 0; i < SHA1_LEN; i++) {
            out[1 + 2 * i] = hex[twice[i] >> 4];
            out[2 + 2 * i] = hex[twice[i] & 0x0F];
        }
        out[MY_HASH_LEN] = '\0';
    }
    explicit_bzero(once, sizeof(once));   /* SHA1(password) alone answers the server's challenge */
    explicit_bzero(twice, sizeof(twice));
    return ok;
}

void my_password_identified_by(struct tps_buf *b, const char *password)
{
    char hash[MY_HASH_LEN + 1];
    if (!my_password_hash(password, hash)) {
        b->oom = true;   /* libcrypto fails only when it cannot allocate */
        return;
    }
    /* The hash is '*' and hex digits: nothing in it needs escaping. */
    tps_buf_add(b, " IDENTIFIED BY PASSWORD '");
    tps_buf_add(b, hash);
    tps_buf_add(b, "'");
    explicit_bzero(hash, sizeof(hash));
}
