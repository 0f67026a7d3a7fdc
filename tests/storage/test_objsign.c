/*
 * test_objsign.c - the signing code against published vectors: Swift's
 * tempurl documentation examples, the AWS SigV4 test suite (get-vanilla and
 * friends), the key-derivation example, and the S3 presigned GET example
 * ("Authenticating Requests: Using Query Parameters").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "objsign.h"

/* Swift's tempurl middleware docs: key "mykey", GET, /v1/AUTH_account/container/object. */
static void swift_tempurl_documented_examples(void **state)
{
    (void)state;
    char sig[OBJSIGN_TEMPURL_MAX];
    assert_int_equal(objsign_tempurl("sha256", "mykey", "GET", 1512508563, "/v1/AUTH_account/container/object", false,
                                     sig, sizeof(sig)), 0);
    assert_string_equal(sig, "732fcac368abb10c78a4cbe95c3fab7f311584532bf779abd5074e13cbe8b88b");
    assert_int_equal(objsign_tempurl("sha512", "mykey", "GET", 1516741234, "/v1/AUTH_account/container/object", false,
                                     sig, sizeof(sig)), 0);
    assert_string_equal(sig, "sha512:ZrSijn0GyDhsv1ltIj9hWUTrbAeE45NcKXyBaz7aPbSM"
                             "vROQ4jtYH4nRAmm5ErY2X11Yc1Yhy2OMCyN3yueeXg==");
}

/* The prefix form signs "prefix:" + path (checked here against Python's hmac
 * module, and against a running Swift by tests/storage/test_swift_backup.py). */
static void swift_tempurl_prefix_and_sha1(void **state)
{
    (void)state;
    char sig[OBJSIGN_TEMPURL_MAX];
    assert_int_equal(objsign_tempurl("sha256", "mykey", "PUT", 1512508563, "/v1/AUTH_account/container/pre", true,
                                     sig, sizeof(sig)), 0);
    assert_string_equal(sig, "51c56d3867bf1d755977c2278836481435d4e2b563f364114a89df7a92c6cfb9");
    assert_int_equal(objsign_tempurl("sha1", "mykey", "GET", 1512508563, "/v1/AUTH_account/container/object", false,
                                     sig, sizeof(sig)), 0);
    assert_string_equal(sig, "a83dcf0587a84542b5f23a7807c38ff4bcaa6924");
    assert_int_equal(objsign_tempurl("md5", "mykey", "GET", 1, "/v1/a/c/o", false, sig, sizeof(sig)), -1);
    assert_int_equal(objsign_tempurl("sha256", "mykey", "GET", 1, "/v1/a/c/o", false, sig, 10), -1);
}

/* "Deriving the signing key" example of the SigV4 documentation. */
static void sigv4_signing_key_example(void **state)
{
    (void)state;
    unsigned char key[32];
    char text[65];
    objsign_sigv4_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam", key);
    for (int i = 0; i < 32; i++)
        snprintf(text + 2 * i, 3, "%02x", key[i]);
    assert_string_equal(text, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static const struct objsign_aws suite_key = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1",
                                             "service"};
#define SUITE_DATE "20150830T123600Z"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void suite_sign(const char *method, const char *path, const struct objsign_kv *q, size_t nq, const char *want)
{
    const struct objsign_kv h[] = {{"x-amz-date", SUITE_DATE}, {"host", "example.amazonaws.com"}};
    const struct objsign_request r = {method, path, q, nq, h, 2, EMPTY_SHA256};
    char *canonical = objsign_sigv4_canonical(&r);
    assert_non_null(canonical);
    char *sts = objsign_sigv4_string_to_sign(&suite_key, SUITE_DATE, canonical);
    assert_non_null(sts);
    char sig[OBJSIGN_SHA256_HEX];
    objsign_sigv4_signature(&suite_key, SUITE_DATE, sts, sig);
    assert_string_equal(sig, want);
    free(canonical);
    free(sts);
}

/* aws-sig-v4-test-suite: get-vanilla, with its .creq and .sts texts. */
static void sigv4_suite_get_vanilla(void **state)
{
    (void)state;
    const struct objsign_kv h[] = {{"host", "example.amazonaws.com"}, {"x-amz-date", SUITE_DATE}};
    const struct objsign_request r = {"GET", "/", NULL, 0, h, 2, EMPTY_SHA256};
    char *canonical = objsign_sigv4_canonical(&r);
    assert_string_equal(canonical, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" SUITE_DATE "\n\n"
                                   "host;x-amz-date\n" EMPTY_SHA256);
    char *sts = objsign_sigv4_string_to_sign(&suite_key, SUITE_DATE, canonical);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n" SUITE_DATE "\n20150830/us-east-1/service/aws4_request\n"
                             "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    free(canonical);
    free(sts);
    suite_sign("GET", "/", NULL, 0, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/* get-vanilla-query-order-key-case, post-vanilla, get-unreserved. */
static void sigv4_suite_more(void **state)
{
    (void)state;
    const struct objsign_kv q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    suite_sign("GET", "/", q, 2, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    suite_sign("POST", "/", NULL, 0, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    suite_sign("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, 0,
               "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

/* The S3 documentation's presigned GET of examplebucket/test.txt. */
static void s3_presigned_get_documented_example(void **state)
{
    (void)state;
    const struct objsign_aws k = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                                  "s3"};
    char err[128];
    /* 2013-05-24T00:00:00Z */
    char *url = objsign_s3_presign(&k, "GET", "https://examplebucket.s3.amazonaws.com", "/test.txt", NULL, 0,
                                   (time_t)1369353600, 86400, err, sizeof(err));
    assert_non_null(url);
    assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt"
                             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
    /* The same request's string to sign ends with the documented canonical-request hash. */
    const struct objsign_kv q[] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
        {"X-Amz-Date", "20130524T000000Z"}, {"X-Amz-Expires", "86400"}, {"X-Amz-SignedHeaders", "host"}};
    const struct objsign_kv h[] = {{"host", "examplebucket.s3.amazonaws.com"}};
    const struct objsign_request r = {"GET", "/test.txt", q, 5, h, 1, "UNSIGNED-PAYLOAD"};
    char *canonical = objsign_sigv4_canonical(&r);
    char *sts = objsign_sigv4_string_to_sign(&k, "20130524T000000Z", canonical);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                             "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
    free(canonical);
    free(sts);
}

static void s3_presign_refuses_bad_input(void **state)
{
    (void)state;
    const struct objsign_aws k = {"a", "b", "us-east-1", "s3"};
    char err[128];
    assert_null(objsign_s3_presign(&k, "GET", "no-scheme", "/b/k", NULL, 0, 0, 60, err, sizeof(err)));
    assert_non_null(strstr(err, "scheme://host"));
    assert_null(objsign_s3_presign(&k, "GET", "http://h", "/b/k", NULL, 0, 0, 604801, err, sizeof(err)));
    assert_null(objsign_s3_presign(&k, "GET", "http://h", "/b/k", NULL, 0, 0, 0, err, sizeof(err)));
}

/* Query parameters of a part upload are encoded and sorted into the URL. */
static void s3_presign_part_query(void **state)
{
    (void)state;
    const struct objsign_aws k = {"test:tester", "testing", "us-east-1", "s3"};
    const struct objsign_kv q[] = {{"uploadId", "a b/c+d"}, {"partNumber", "7"}};
    char err[128];
    char *url = objsign_s3_presign(&k, "PUT", "http://127.0.0.1:8080", "/bkt/x/piece", q, 2, (time_t)1369353600,
                                   60, err, sizeof(err));
    assert_non_null(url);
    assert_non_null(strstr(url, "http://127.0.0.1:8080/bkt/x/piece?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                                "&X-Amz-Credential=test%3Atester%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"));
    assert_non_null(strstr(url, "&X-Amz-SignedHeaders=host&partNumber=7&uploadId=a%20b%2Fc%2Bd&X-Amz-Signature="));
    free(url);
}

static void uri_encoding(void **state)
{
    (void)state;
    char *a = objsign_uri_encode("a b/c~d_e.f-g+h=i&\xc3\xa9", true);
    char *b = objsign_uri_encode("a/b", false);
    assert_string_equal(a, "a%20b/c~d_e.f-g%2Bh%3Di%26%C3%A9");
    assert_string_equal(b, "a%2Fb");
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(swift_tempurl_documented_examples),
        cmocka_unit_test(swift_tempurl_prefix_and_sha1),
        cmocka_unit_test(sigv4_signing_key_example),
        cmocka_unit_test(sigv4_suite_get_vanilla),
        cmocka_unit_test(sigv4_suite_more),
        cmocka_unit_test(s3_presigned_get_documented_example),
        cmocka_unit_test(s3_presign_refuses_bad_input),
        cmocka_unit_test(s3_presign_part_query),
        cmocka_unit_test(uri_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
