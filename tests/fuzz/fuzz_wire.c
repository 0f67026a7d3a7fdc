/*
 * fuzz_wire.c - the msgpack codec, both directions. Any bytes: decoding
 * either fails with a one-line reason and no tree, or yields a tree that
 * encodes, decodes back equal, encodes to the same bytes again, passes or
 * fails the envelope check cleanly, and renders as JSON that parses.
 */
#include "fuzz_util.h"

#include "json.h"
#include "tv_testutil.h"
#include "wire.h"

static void check_json_rendering(const struct tv *v)
{
    char *text = tv_to_json(v, false);
    FUZZ_CHECK(text != NULL, "a decoded tree did not render as JSON");
    struct tv *parsed = NULL;
    char err[256];
    int rc = json_to_tv(text, &parsed, err, sizeof(err));
    /* Bytes render as base64 and floats as numbers, so the tree differs;
     * the text must still be JSON this project reads. */
    FUZZ_CHECK(rc == 0, "rendered JSON was refused: %s", err);
    tv_free(parsed);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct tv *v = (struct tv *)&v;
    if (wire_decode(data, size, NULL, &v, err, sizeof(err)) != 0) {
        FUZZ_CHECK(v == NULL, "a refused frame left a tree");
        FUZZ_CHECK(err[0] != '\0' && !strchr(err, '\n'), "reason \"%s\"", err);
        return 0;
    }
    FUZZ_CHECK(v != NULL, "an accepted frame gave no tree");

    char env[256] = "";
    if (wire_check_envelope(v, env, sizeof(env)) != 0)
        FUZZ_CHECK(env[0] != '\0' && !strchr(env, '\n'), "envelope reason \"%s\"", env);

    char *buf = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    FUZZ_CHECK(wire_encode(v, &buf, &len) == 0, "an accepted tree did not encode");
    struct tv *back = NULL;
    FUZZ_CHECK(wire_decode(buf, len, NULL, &back, err, sizeof(err)) == 0, "re-encoded frame refused: %s", err);
    FUZZ_CHECK(tv_equal(v, back), "decode(encode(tree)) differs from the tree");
    FUZZ_CHECK(wire_encode(back, &again, &again_len) == 0, "second encoding failed");
    FUZZ_CHECK(again_len == len && memcmp(buf, again, len) == 0, "encoding is not canonical");

    /* Base64 makes bytes 4/3 longer, so a binary near the string limit
     * renders as a string over it; inputs this small hold none. */
    if (size < WIRE_MAX_STRING / 2)
        check_json_rendering(v);
    free(again);
    free(buf);
    tv_free(back);
    tv_free(v);
    return 0;
}
