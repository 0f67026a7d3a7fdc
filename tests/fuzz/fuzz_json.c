/*
 * fuzz_json.c - JSON arguments (trovectl, trove-agent call) into value
 * trees. Any text: parsing either fails with a one-line reason and no tree,
 * or yields a tree that renders to JSON which parses back equal, and that
 * the wire codec carries unchanged (a tree from JSON is as good as one
 * from a frame).
 */
#include "fuzz_util.h"

#include "json.h"
#include "tv_testutil.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    char err[256] = "";
    struct tv *v = (struct tv *)&v;
    if (json_to_tv(text, &v, err, sizeof(err)) != 0) {
        FUZZ_CHECK(v == NULL, "refused text left a tree");
        FUZZ_CHECK(err[0] != '\0' && !strchr(err, '\n') && tv_utf8_valid(err, strlen(err)), "reason \"%s\"", err);
        free(text);
        return 0;
    }
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *out = tv_to_json(v, pretty);
        FUZZ_CHECK(out != NULL, "rendering failed");
        struct tv *back = NULL;
        FUZZ_CHECK(json_to_tv(out, &back, err, sizeof(err)) == 0, "rendered JSON refused: %s\n%s", err, out);
        FUZZ_CHECK(tv_equal(v, back), "JSON round trip differs:\n%s", out);
        tv_free(back);
        free(out);
    }
    char *frame = NULL;
    size_t len = 0;
    FUZZ_CHECK(wire_encode(v, &frame, &len) == 0, "tree did not encode");
    struct tv *decoded = NULL;
    FUZZ_CHECK(wire_decode(frame, len, NULL, &decoded, err, sizeof(err)) == 0, "frame of a JSON tree refused: %s",
               err);
    FUZZ_CHECK(tv_equal(v, decoded), "wire round trip of a JSON tree differs");
    tv_free(decoded);
    free(frame);
    tv_free(v);
    free(text);
    return 0;
}
