/*
 * test_wire.c - the msgpack codec and the message envelope. Round trips of
 * every type and size class, then every way a frame can lie: cut short at
 * each byte, claiming counts it does not hold, nesting too deep, keys that
 * are not strings, bad UTF-8, NUL bytes, extensions, trailing bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status.h"
#include "tv_testutil.h"
#include "wire.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char err[256];

/* Decode bytes that must be rejected; returns the reason. */
static const char *reject(const void *buf, size_t len)
{
    struct tv *out = (struct tv *)&out;   /* must be reset to NULL */
    err[0] = '\0';
    int rc = wire_decode(buf, len, NULL, &out, err, sizeof(err));
    if (rc != -1)
        fail_msg("frame of %zu bytes was accepted", len);
    assert_null(out);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    return err;
}

#define assert_rejected_with(bytes, reason)                                   \
    do {                                                                      \
        static const unsigned char frame_[] = bytes;                          \
        const char *why_ = reject(frame_, sizeof(frame_) - 1);                \
        if (!strstr(why_, reason))                                            \
            fail_msg("expected \"%s\", got \"%s\"", reason, why_);            \
    } while (0)

static struct tv *decode_ok(const void *buf, size_t len)
{
    struct tv *out = NULL;
    if (wire_decode(buf, len, NULL, &out, err, sizeof(err)) != 0)
        fail_msg("rejected: %s", err);
    assert_non_null(out);
    return out;
}

static void round_trip(const struct tv *v)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(wire_encode(v, &buf, &len), 0);
    assert_non_null(buf);
    struct tv *back = decode_ok(buf, len);
    assert_true(tv_equal(v, back));
    tv_free(back);
    free(buf);
}

static char *filled(size_t len, char c)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, c, len);
    s[len] = '\0';
    return s;
}

/* ---------------------------------------------------------- round trips */

static void scalars_round_trip(void **state)
{
    (void)state;
    static const int64_t ints[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL, INT64_MAX,
        -1, -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL, INT64_MIN,
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        struct tv *v = tv_int(ints[i]);
        round_trip(v);
        tv_free(v);
    }
    static const double floats[] = { 0.0, -0.0, 0.5, -1e300, 3.141592653589793, 1e-310 };
    for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
        struct tv *v = tv_float(floats[i]);
        round_trip(v);
        tv_free(v);
    }
    struct tv *special[] = { tv_float(INFINITY), tv_float(-INFINITY), tv_float(NAN),
                             tv_nil(), tv_bool(true), tv_bool(false) };
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        round_trip(special[i]);
        tv_free(special[i]);
    }
}

static void strings_and_binaries_of_every_size_class_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 31, 32, 255, 256, 65535, 65536, WIRE_MAX_STRING };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *s = filled(sizes[i], 'x');
        struct tv *v = tv_strn(s, sizes[i]);
        round_trip(v);
        tv_free(v);
        memset(s, 0, sizes[i]);   /* binaries may hold NUL bytes */
        v = tv_bin(s, sizes[i]);
        round_trip(v);
        tv_free(v);
        free(s);
    }
    struct tv *u = tv_str("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80");
    round_trip(u);
    tv_free(u);
}

static void containers_of_every_size_class_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 15, 16, 65535, 65536 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct tv *a = tv_array();
        struct tv *m = tv_map();
        for (size_t k = 0; k < sizes[i]; k++) {
            char key[32];
            snprintf(key, sizeof(key), "k%zu", k);
            assert_int_equal(tv_append(a, tv_int((int64_t)k)), 0);
            assert_int_equal(tv_test_map_add(m, key, tv_int((int64_t)k)), 0);
        }
        round_trip(a);
        round_trip(m);
        tv_free(a);
        tv_free(m);
    }
}

static struct tv *sample_message(void)
{
    struct tv *args = tv_map();
    tv_set_str(args, "name", "app_user");
    tv_set_str(args, "host", "%");
    tv_set_str(args, "password", "s3cr\xc3\xa9t");
    struct tv *dbs = tv_child_array(args, "databases");
    tv_append(dbs, tv_str("sales"));
    tv_append(dbs, tv_str("inventory"));
    struct tv *opts = tv_child_map(args, "options");
    tv_set(opts, "ratio", tv_float(0.25));
    tv_set(opts, "none", tv_nil());
    tv_set(opts, "raw", tv_bin("\x00\xff\x10", 3));
    tv_set_int(opts, "big", 5000000000LL);
    tv_set_int(opts, "neg", -70000);
    tv_set_bool(opts, "flag", false);
    struct tv *msg = wire_request("0123456789abcdef0123456789abcdef", "user.create", args);
    assert_non_null(msg);
    return msg;
}

static void a_full_request_round_trips(void **state)
{
    (void)state;
    struct tv *msg = sample_message();
    round_trip(msg);
    tv_free(msg);
}

static void non_minimal_and_float32_encodings_are_read(void **state)
{
    (void)state;
    /* A uint64 holding 5, an int8 holding -1, a uint16 holding 1, an int64 min. */
    static const unsigned char ints[] = {
        0x94, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5, 0xd0, 0xff, 0xcd, 0x00, 0x01,
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,
    };
    struct tv *v = decode_ok(ints, sizeof(ints));
    assert_int_equal(v->u.a.len, 4);
    assert_int_equal(v->u.a.items[0]->u.i, 5);
    assert_int_equal(v->u.a.items[1]->u.i, -1);
    assert_int_equal(v->u.a.items[2]->u.i, 1);
    assert_true(v->u.a.items[3]->u.i == INT64_MIN);
    tv_free(v);

    /* float32 and str8/array16/map16 written by msgpack-c itself. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "f", 1);
    msgpack_pack_float(&pk, 1.5f);
    v = decode_ok(sb.data, sb.size);
    assert_int_equal(tv_get(v, "f")->type, TV_FLOAT);
    assert_true(tv_get(v, "f")->u.f == 1.5);
    tv_free(v);
    msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------- bad frames */

static void every_cut_of_a_valid_frame_is_truncated(void **state)
{
    (void)state;
    struct tv *msg = sample_message();
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(msg, &buf, &len), 0);
    assert_true(len > 100);
    assert_string_equal(reject(buf, 0), "empty frame");
    for (size_t cut = 1; cut < len; cut++) {
        /* A copy of exactly `cut` bytes, so ASan sees any read past the end. */
        char *part = malloc(cut);
        assert_non_null(part);
        memcpy(part, buf, cut);
        const char *why = reject(part, cut);
        if (strncmp(why, "truncated frame", 15) != 0)
            fail_msg("cut at %zu of %zu: \"%s\"", cut, len, why);
        free(part);
    }
    free(buf);
    tv_free(msg);
}

static void oversized_frames_are_rejected_before_reading(void **state)
{
    (void)state;
    size_t len = (size_t)WIRE_MAX_FRAME + 1;
    char *big = calloc(1, len);
    assert_non_null(big);
    const char *why = reject(big, len);
    char want[128];
    snprintf(want, sizeof(want), "frame of %zu bytes exceeds limit of %u", len, WIRE_MAX_FRAME);
    assert_string_equal(why, want);
    free(big);

    struct wire_limits tight = { .max_frame = 10, .max_depth = 16, .max_string = 100 };
    static const unsigned char eleven[] = { 0xaa, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j' };
    struct tv *out = NULL;
    assert_int_equal(wire_decode(eleven, sizeof(eleven), &tight, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "frame of 11 bytes exceeds limit of 10");
    tight.max_frame = 11;
    assert_int_equal(wire_decode(eleven, sizeof(eleven), &tight, &out, err, sizeof(err)), 0);
    assert_string_equal(out->u.s.ptr, "abcdefghij");
    tv_free(out);
}

static void strings_longer_than_the_limit_are_rejected(void **state)
{
    (void)state;
    struct tv *v = tv_bin("", 0);
    char *s = filled(WIRE_MAX_STRING + 1, 'y');
    struct tv *big = tv_strn(s, WIRE_MAX_STRING + 1);
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(big, &buf, &len), 0);
    const char *why = reject(buf, len);
    assert_non_null(strstr(why, "string of 1048577 bytes exceeds limit of 1048576"));
    free(buf);
    tv_free(big);
    big = tv_bin(s, WIRE_MAX_STRING + 1);
    assert_int_equal(wire_encode(big, &buf, &len), 0);
    assert_non_null(strstr(reject(buf, len), "binary of 1048577 bytes exceeds limit"));
    free(buf);
    tv_free(big);
    free(s);
    tv_free(v);
}

/* Decode in a child whose data segment is capped at 256 MiB, so an
 * allocation sized from what a frame claims fails there (as "out of memory")
 * instead of passing unnoticed. True if the child rejected the frame with a
 * reason containing `reason`. Under AddressSanitizer the cap cannot be set
 * (its shadow memory alone exceeds it), so there the child only checks the
 * reason; the build also runs this test without sanitizers (wire-memcap). */
static bool rejected_under_memory_cap(const void *frame, size_t len, const char *reason)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
#ifndef UNDER_ASAN
        /* Linux counts private mappings against RLIMIT_DATA, so a
         * multi-gigabyte malloc fails here. */
        struct rlimit cap = { 256u << 20, 256u << 20 };
        if (setrlimit(RLIMIT_DATA, &cap) != 0)
            _exit(2);
#endif
        struct tv *out = NULL;
        char why[256] = "";
        int rc = wire_decode(frame, len, NULL, &out, why, sizeof(why));
        if (rc == -1 && out == NULL && strstr(why, reason))
            _exit(0);
        fprintf(stderr, "capped child: rc %d, reason \"%s\"\n", rc, why);
        _exit(1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The cap is real: the same child refuses to allocate 1 GiB. */
static void the_memory_cap_bites(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    skip();
#else
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit cap = { 256u << 20, 256u << 20 };
        if (setrlimit(RLIMIT_DATA, &cap) != 0)
            _exit(2);
        void *volatile big = malloc((size_t)1 << 30);
        _exit(big == NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

/* Claimed counts far beyond the frame are refused before any allocation. */
static void huge_claims_in_tiny_frames_are_rejected_without_allocating(void **state)
{
    (void)state;
    static const struct { unsigned char bytes[8]; size_t len; const char *reason; } claims[] = {
        { { 0xdd, 0xff, 0xff, 0xff, 0xff }, 5, "truncated frame: array of 4294967295 elements" },
        { { 0xdf, 0xff, 0xff, 0xff, 0xff }, 5, "truncated frame: map of 4294967295 entries" },
        { { 0xdc, 0xff, 0xff, 0xc0 }, 4, "truncated frame: array of 65535 elements" },
        { { 0xde, 0x00, 0x02, 0xa1, 'a', 0xc0 }, 6, "truncated frame: map of 2 entries" },
        { { 0xdb, 0x00, 0x0f, 0xff, 0xff }, 5, "truncated frame" },
        { { 0xc6, 0x00, 0x0f, 0xff, 0xff }, 5, "truncated frame" },
        { { 0xdb, 0xff, 0xff, 0xff, 0xff }, 5, "string of 4294967295 bytes exceeds limit" },
        { { 0xc6, 0xff, 0xff, 0xff, 0xff }, 5, "binary of 4294967295 bytes exceeds limit" },
        { { 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff }, 6, "truncated frame: array of 4294967295" },
    };
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        if (!rejected_under_memory_cap(claims[i].bytes, claims[i].len, claims[i].reason))
            fail_msg("claim %zu was not rejected with \"%s\"", i, claims[i].reason);
        /* And in this process, for the exact message. */
        const char *why = reject(claims[i].bytes, claims[i].len);
        if (!strstr(why, claims[i].reason))
            fail_msg("claim %zu: expected \"%s\", got \"%s\"", i, claims[i].reason, why);
    }
}

/* A full-size frame of nested containers, each claiming as many elements as
 * bytes remain, then an invalid byte: every claim passes the bytes-remaining
 * check, so each level may reserve only what its elements actually use, not
 * room for its claim (16 levels x 8-24 bytes x 16 MiB would be gigabytes). */
static void nested_claims_reserve_only_what_arrives(void **state)
{
    (void)state;
    size_t len = WIRE_MAX_FRAME;
    for (int maps = 0; maps <= 1; maps++) {
        unsigned char *frame = malloc(len);
        assert_non_null(frame);
        memset(frame, 0xc0, len);
        size_t at = 0;
        for (int level = 0; level < WIRE_MAX_DEPTH; level++) {
            frame[at++] = maps ? 0xdf : 0xdd;
            size_t left = len - at - 4;
            uint32_t claim = (uint32_t)(maps ? left / 2 : left);
            for (int b = 3; b >= 0; b--)
                frame[at++] = (unsigned char)(claim >> (8 * b));
            if (maps) {
                frame[at++] = 0xa1;
                frame[at++] = 'k';
            }
        }
        frame[at] = 0xc1;
        if (!rejected_under_memory_cap(frame, len, "invalid type byte 0xc1"))
            fail_msg("nested %s claims reserved memory for what they claimed", maps ? "map" : "array");
        free(frame);
    }
}

static void nesting_beyond_the_limit_is_rejected(void **state)
{
    (void)state;
    unsigned char frame[WIRE_MAX_DEPTH + 2];
    /* 16 nested arrays around a nil: accepted. */
    memset(frame, 0x91, WIRE_MAX_DEPTH);
    frame[WIRE_MAX_DEPTH] = 0xc0;
    struct tv *v = decode_ok(frame, WIRE_MAX_DEPTH + 1);
    tv_free(v);
    /* 17: rejected. */
    memset(frame, 0x91, WIRE_MAX_DEPTH + 1);
    frame[WIRE_MAX_DEPTH + 1] = 0xc0;
    assert_string_equal(reject(frame, sizeof(frame)), "nesting deeper than 16 levels");

    /* Maps count too: {"a": {"a": ... }} 17 deep. */
    unsigned char maps[3 * (WIRE_MAX_DEPTH + 1) + 1];
    for (int i = 0; i <= WIRE_MAX_DEPTH; i++) {
        maps[3 * i] = 0x81;
        maps[3 * i + 1] = 0xa1;
        maps[3 * i + 2] = 'a';
    }
    maps[sizeof(maps) - 1] = 0xc0;
    assert_string_equal(reject(maps, sizeof(maps)), "nesting deeper than 16 levels");

    /* A megabyte of array openers stops at the limit, not at the stack's end. */
    size_t n = 1 << 20;
    unsigned char *bomb = malloc(n);
    assert_non_null(bomb);
    memset(bomb, 0x91, n);
    assert_string_equal(reject(bomb, n), "nesting deeper than 16 levels");
    free(bomb);

    struct wire_limits shallow = { .max_frame = 100, .max_depth = 1, .max_string = 100 };
    static const unsigned char two[] = { 0x91, 0x90 };
    struct tv *out = NULL;
    assert_int_equal(wire_decode(two, 2, &shallow, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "nesting deeper than 1 levels");
}

static void map_keys_must_be_strings(void **state)
{
    (void)state;
    assert_rejected_with("\x81\x01\x02", "map key is not a string");          /* int key */
    assert_rejected_with("\x81\xc4\x01" "a" "\x01", "map key is not a string"); /* bin key */
    assert_rejected_with("\x81\xc0\x01", "map key is not a string");          /* nil key */
    assert_rejected_with("\x81\x90\x01", "map key is not a string");          /* array key */
    assert_rejected_with("\x81\x80\x01", "map key is not a string");          /* map key */
    assert_rejected_with("\x81\xa2" "a\0" "\x01", "map key contains a NUL byte");
    assert_rejected_with("\x81\xa1\xff\x01", "invalid UTF-8 in map key");
    assert_rejected_with("\x82\xa1" "a" "\x01\xa1" "a" "\x02", "duplicate map key \"a\"");
    /* str8 keys are strings too. */
    static const unsigned char str8[] = { 0x81, 0xd9, 0x01, 'k', 0x07 };
    struct tv *v = decode_ok(str8, sizeof(str8));
    assert_int_equal(tv_get_int(v, "k", 0), 7);
    tv_free(v);
}

static void duplicate_keys_are_found_in_large_maps(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%d", i);
        tv_test_map_add(m, key, tv_int(i));
    }
    /* Rename the last key to collide with one in the middle. */
    free(m->u.m.items[999].key);
    m->u.m.items[999].key = strdup("key500");
    m->u.m.items[999].key_len = 6;
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(m, &buf, &len), 0);
    assert_string_equal(reject(buf, len), "duplicate map key \"key500\"");
    free(buf);
    tv_free(m);
}

static void strings_must_be_utf8_without_nul(void **state)
{
    (void)state;
    assert_rejected_with("\xa1\xff", "invalid UTF-8 in string");
    assert_rejected_with("\xa2\xc0\x80", "invalid UTF-8 in string");        /* overlong NUL */
    assert_rejected_with("\xa3\xed\xa0\x80", "invalid UTF-8 in string");    /* surrogate */
    assert_rejected_with("\xa2\xe2\x82", "invalid UTF-8 in string");        /* cut sequence */
    assert_rejected_with("\xa3" "a\0b", "string contains a NUL byte");
    assert_rejected_with("\x91\xd9\x02\x00\x00", "string contains a NUL byte");
    /* Binary may hold anything. */
    static const unsigned char bin[] = { 0xc4, 0x03, 0x00, 0xff, 0xc0 };
    struct tv *v = decode_ok(bin, sizeof(bin));
    assert_int_equal(v->type, TV_BIN);
    assert_memory_equal(v->u.s.ptr, "\x00\xff\xc0", 3);
    tv_free(v);
}

static void other_bad_frames(void **state)
{
    (void)state;
    assert_rejected_with("\xcf\x80\x00\x00\x00\x00\x00\x00\x00", "exceeds the int64 range");
    assert_rejected_with("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "18446744073709551615");
    assert_rejected_with("\xd4\x01\x00", "extension types are not allowed");
    assert_rejected_with("\xc7\x01\x05\x00", "extension types are not allowed");
    assert_rejected_with("\xd8\x01" "0123456789abcdef", "extension types are not allowed");
    assert_rejected_with("\xc1", "invalid type byte 0xc1");
    assert_rejected_with("\xc0\xc0", "trailing bytes after message");
    assert_rejected_with("\x80\x00\x00\x00", "trailing bytes after message (3)");
    assert_rejected_with("\xcb\x00\x00", "truncated frame");
    assert_rejected_with("\xcd\x01", "truncated frame");
    /* The largest int64 is fine as a uint64. */
    static const unsigned char max[] = { 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    struct tv *v = decode_ok(max, sizeof(max));
    assert_true(v->u.i == INT64_MAX);
    tv_free(v);
}

static void decode_tolerates_missing_error_buffer(void **state)
{
    (void)state;
    static const unsigned char bad[] = { 0xc1 };
    struct tv *out = NULL;
    assert_int_equal(wire_decode(bad, 1, NULL, &out, NULL, 0), -1);
    assert_null(out);
    char tiny[8];
    assert_int_equal(wire_decode(bad, 1, NULL, &out, tiny, sizeof(tiny)), -1);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

/* ------------------------------------------------------------ envelope */

static struct tv *request_with(const char *id, const char *op)
{
    struct tv *m = tv_map();
    tv_set_int(m, "v", 1);
    tv_set_str(m, "type", "request");
    if (id)
        tv_set_str(m, "id", id);
    if (op)
        tv_set_str(m, "op", op);
    return m;
}

static void expect_envelope_error(struct tv *msg, const char *reason)
{
    err[0] = '\0';
    if (wire_check_envelope(msg, err, sizeof(err)) != -1)
        fail_msg("envelope accepted, expected \"%s\"", reason);
    if (!strstr(err, reason))
        fail_msg("expected \"%s\", got \"%s\"", reason, err);
    tv_free(msg);
}

static void built_messages_pass_the_envelope_check(void **state)
{
    (void)state;
    struct tv *req = wire_request("r1", "ping", NULL);
    assert_int_equal(wire_check_envelope(req, err, sizeof(err)), 0);
    assert_int_equal(tv_get_int(req, "v", 0), 1);
    assert_string_equal(tv_get_str(req, "type"), "request");
    assert_string_equal(tv_get_str(req, "op"), "ping");
    assert_int_equal(tv_get(req, "args")->type, TV_MAP);
    tv_free(req);

    struct tv *result = tv_map();
    tv_set_bool(result, "pong", true);
    struct tv *ok = wire_reply_ok("r1", result);
    assert_int_equal(wire_check_envelope(ok, err, sizeof(err)), 0);
    assert_string_equal(tv_get_str(ok, "type"), "reply");
    assert_string_equal(tv_get_str(ok, "id"), "r1");
    assert_true(tv_get_bool(ok, "ok", false));
    assert_true(tv_get_bool(tv_get(ok, "result"), "pong", false));
    tv_free(ok);

    struct tv *empty = wire_reply_ok("r2", NULL);
    assert_int_equal(tv_get(empty, "result")->type, TV_MAP);
    tv_free(empty);

    struct tv *bad = wire_reply_error("", TROVE_ENOTFOUND, "no user \"bob\"");
    assert_int_equal(wire_check_envelope(bad, err, sizeof(err)), 0);
    assert_false(tv_get_bool(bad, "ok", true));
    assert_string_equal(tv_get_str(bad, "id"), "");
    struct tv *e = tv_get(bad, "error");
    assert_string_equal(tv_get_str(e, "code"), "not_found");
    assert_string_equal(tv_get_str(e, "message"), "no user \"bob\"");
    tv_free(bad);

    struct tv *nul = wire_reply_error(NULL, 12345, NULL);
    assert_string_equal(tv_get_str(tv_get(nul, "error"), "code"), "unknown");
    assert_string_equal(tv_get_str(tv_get(nul, "error"), "message"), "");
    tv_free(nul);

    struct tv *hb = tv_map();
    tv_set_int(hb, "v", 1);
    tv_set_str(hb, "type", "heartbeat");
    assert_int_equal(wire_check_envelope(hb, err, sizeof(err)), 0);
    tv_free(hb);
}

static void envelope_faults_are_named(void **state)
{
    (void)state;
    struct tv *m;

    m = request_with("r1", "ping");
    free(m->u.m.items[0].key);            /* rename "v" so it is missing */
    m->u.m.items[0].key = strdup("w");
    expect_envelope_error(m, "missing field \"v\"");

    m = request_with("r1", "ping");
    tv_set_int(m, "v", 2);
    expect_envelope_error(m, "unsupported protocol version 2");

    m = request_with("r1", "ping");
    tv_set_str(m, "v", "1");
    expect_envelope_error(m, "field \"v\" is string, not int");

    m = request_with("r1", "ping");
    tv_set_int(m, "type", 3);
    expect_envelope_error(m, "field \"type\" is int, not a string");

    expect_envelope_error(request_with(NULL, "ping"), "missing field \"id\"");
    expect_envelope_error(request_with("", "ping"), "field \"id\" must be 1 to 64 bytes, not 0");
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    expect_envelope_error(request_with(id65, "ping"), "field \"id\" must be 1 to 64 bytes, not 65");
    id65[64] = '\0';
    m = request_with(id65, "ping");
    assert_int_equal(wire_check_envelope(m, err, sizeof(err)), 0);
    tv_free(m);

    expect_envelope_error(request_with("r1", NULL), "missing field \"op\"");
    expect_envelope_error(request_with("r1", ""), "field \"op\" must be 1 to 64 bytes");

    m = request_with("r1", "ping");
    tv_set(m, "args", tv_array());
    expect_envelope_error(m, "field \"args\" is array, not map");

    m = request_with("r1", "ping");
    tv_set(m, "id", tv_int(5));
    expect_envelope_error(m, "field \"id\" is int, not a string");

    expect_envelope_error(tv_array(), "message is array, not a map");

    m = request_with("r1", "ping");
    tv_set_str(m, "type", "gossip");
    expect_envelope_error(m, "unknown message type \"gossip\"");

    m = wire_reply_ok("r1", NULL);
    tv_set_str(m, "ok", "yes");
    expect_envelope_error(m, "field \"ok\" is string, not bool");

    m = wire_reply_error("r1", TROVE_EINVAL, "x");
    tv_set_int(tv_get(m, "error"), "code", 1);
    expect_envelope_error(m, "error: field \"code\" is int, not a string");

    m = wire_reply_ok("r1", NULL);
    tv_set_bool(m, "ok", false);
    expect_envelope_error(m, "missing field \"error\"");

    assert_int_equal(wire_check_envelope(NULL, err, sizeof(err)), -1);
}

static void encoded_request_survives_decode_and_check(void **state)
{
    (void)state;
    struct tv *msg = sample_message();
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(msg, &buf, &len), 0);
    struct tv *back = decode_ok(buf, len);
    assert_int_equal(wire_check_envelope(back, err, sizeof(err)), 0);
    assert_string_equal(tv_get_str(back, "op"), "user.create");
    assert_string_equal(tv_get_str(tv_get(back, "args"), "password"), "s3cr\xc3\xa9t");
    free(buf);
    tv_free(back);
    tv_free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_round_trip),
        cmocka_unit_test(strings_and_binaries_of_every_size_class_round_trip),
        cmocka_unit_test(containers_of_every_size_class_round_trip),
        cmocka_unit_test(a_full_request_round_trips),
        cmocka_unit_test(non_minimal_and_float32_encodings_are_read),
        cmocka_unit_test(every_cut_of_a_valid_frame_is_truncated),
        cmocka_unit_test(oversized_frames_are_rejected_before_reading),
        cmocka_unit_test(strings_longer_than_the_limit_are_rejected),
        cmocka_unit_test(the_memory_cap_bites),
        cmocka_unit_test(huge_claims_in_tiny_frames_are_rejected_without_allocating),
        cmocka_unit_test(nested_claims_reserve_only_what_arrives),
        cmocka_unit_test(nesting_beyond_the_limit_is_rejected),
        cmocka_unit_test(map_keys_must_be_strings),
        cmocka_unit_test(duplicate_keys_are_found_in_large_maps),
        cmocka_unit_test(strings_must_be_utf8_without_nul),
        cmocka_unit_test(other_bad_frames),
        cmocka_unit_test(decode_tolerates_missing_error_buffer),
        cmocka_unit_test(built_messages_pass_the_envelope_check),
        cmocka_unit_test(envelope_faults_are_named),
        cmocka_unit_test(encoded_request_survives_decode_and_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
