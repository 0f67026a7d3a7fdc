/*
 * provision_tool.c - a test program around the provisioner (provision.h): one
 * op per run, its result as one JSON document on stdout, exit 0 on success and
 * 1 on failure ({"ok": false, "code": ..., "message": ...}), 2 on a bad command
 * line. test_provision.py drives it against real engines. Not installed.
 *
 *   provision_tool --instances-dir D --agent-binary B --plugin-dir P [--volume auto|loop|directory] VERB ...
 *     create ID PLUGIN --ram-mb N --volume-gb N --endpoint EP (--server-key Z85 | --plaintext)
 *            [--datastore NAME] [--bindir DIR] [--binary PATH] [--heartbeat-ms N] [--no-start]
 *     describe|start|stop|destroy|force-destroy|adopt ID
 *     resize-volume ID GB
 *     apply-flavor ID RAM_MB
 *     list
 *   provision_tool keygen NAME      (NAME.key and NAME.pub, a control plane's key pair for the test)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "provision.h"
#include "status.h"

struct options {
    struct provision_local_config local;
    struct provision_request req;
    const char *verb;
    const char *args[3];
    size_t nargs;
};

static int usage(const char *why)
{
    fprintf(stderr, "provision_tool: %s\n", why);
    return 2;
}

static const char *params_value(int argc, char **argv, int *i)
{
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        uint32_t *num = NULL;
        if (strcmp(a, "--instances-dir") == 0)
            slot = &o->local.instances_dir;
        else if (strcmp(a, "--agent-binary") == 0)
            slot = &o->local.agent_binary;
        else if (strcmp(a, "--plugin-dir") == 0)
            slot = &o->local.plugin_dir;
        else if (strcmp(a, "--endpoint") == 0)
            slot = &o->req.control_endpoint;
        else if (strcmp(a, "--server-key") == 0)
            slot = &o->req.server_public_key;
        else if (strcmp(a, "--datastore") == 0)
            slot = &o->req.datastore;
        else if (strcmp(a, "--bindir") == 0)
            slot = &o->req.engine_bindir;
        else if (strcmp(a, "--binary") == 0)
            slot = &o->req.engine_binary;
        else if (strcmp(a, "--ram-mb") == 0)
            num = &o->req.ram_mb;
        else if (strcmp(a, "--volume-gb") == 0)
            num = &o->req.volume_gb;
        else if (strcmp(a, "--heartbeat-ms") == 0)
            num = &o->req.heartbeat_ms;
        else if (strcmp(a, "--plaintext") == 0) {
            o->req.plaintext_dev = true;
            continue;
        } else if (strcmp(a, "--no-start") == 0) {
            o->req.no_start = true;
            continue;
        } else if (strcmp(a, "--volume") == 0) {
            const char *v = params_value(argc, argv, &i);
            if (!v)
                return usage("--volume needs a value");
            o->local.volume_mode = strcmp(v, "loop") == 0        ? PROVISION_VOLUME_LOOP
                                   : strcmp(v, "directory") == 0 ? PROVISION_VOLUME_DIRECTORY
                                                                 : PROVISION_VOLUME_AUTO;
            continue;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage("unknown option");
        } else if (!o->verb) {
            o->verb = a;
            continue;
        } else if (o->nargs < 3) {
            o->args[o->nargs++] = a;
            continue;
        } else {
            return usage("too many arguments");
        }
        const char *v = params_value(argc, argv, &i);
        if (!v)
            return usage("an option needs a value");
        if (slot)
            *slot = v;
        else if (parse_u32(v, num) != 0)
            return usage("a number option needs a non-negative integer");
    }
    return o->verb ? 0 : usage("no verb");
}

static json_t *params_json(const struct provision_params *p)
{
    json_t *o = json_object();
    for (size_t i = 0; i < p->n; i++)
        json_object_set_new(o, p->item[i].name, json_string(p->item[i].value));
    return o;
}

static json_t *instance_json(const struct provision_instance *in)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:s, s:i, s:s, s:I, s:I, s:b, s:s, s:s, s:s, "
                     "s:s, s:s, s:o}",
                     "id", in->instance_id, "backend", in->backend, "plugin", in->plugin, "datastore",
                     in->datastore, "volume_kind", in->volume_kind, "volume_gb", (int)in->volume_gb,
                     "volume_total_bytes", (json_int_t)in->volume_total_bytes, "volume_free_bytes",
                     (json_int_t)in->volume_free_bytes, "ram_mb", (int)in->ram_mb, "host", in->host, "port",
                     (int)in->port, "agent_public_key", in->agent_public_key, "agent_pid",
                     (json_int_t)in->agent_pid, "engine_pid", (json_int_t)in->engine_pid, "volume_mounted",
                     in->volume_mounted, "dir", in->dir, "volume_path", in->volume_path, "volume_image",
                     in->volume_image, "agent_config", in->agent_config, "agent_log", in->agent_log, "params",
                     params_json(&in->params));
}

static int print_result(int rc, const char *err, json_t *result)
{
    json_t *doc = rc == TROVE_OK ? json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object())
                                 : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", status_name(rc), "message", err);
    if (rc != TROVE_OK && result)
        json_decref(result);
    char *text = json_dumps(doc, JSON_COMPACT);
    puts(text ? text : "{\"ok\": false}");
    free(text);
    json_decref(doc);
    return rc == TROVE_OK ? 0 : 1;
}

static int run_list(struct provision *p, char *err, size_t errlen, json_t **result)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = p->ops->list(p, &ids, &n, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    provision_free_ids(ids, n);
    *result = json_pack("{s:o}", "instances", arr);
    return TROVE_OK;
}

static int run_verb(struct provision *p, struct options *o, char *err, size_t errlen, json_t **result)
{
    struct provision_instance in;
    struct provision_params params;
    const char *id = o->nargs > 0 ? o->args[0] : "";
    uint32_t num = 0;
    int rc;
    const char *v = o->verb;
    if (strcmp(v, "list") == 0)
        return run_list(p, err, errlen, result);
    if (strcmp(v, "create") == 0) {
        o->req.instance_id = id;
        o->req.plugin = o->nargs > 1 ? o->args[1] : "";
        rc = p->ops->create(p, &o->req, &in, err, errlen);
    } else if (strcmp(v, "describe") == 0) {
        rc = p->ops->describe(p, id, &in, err, errlen);
    } else if (strcmp(v, "start") == 0) {
        rc = p->ops->start(p, id, &in, err, errlen);
    } else if (strcmp(v, "adopt") == 0) {
        rc = p->ops->adopt(p, id, &in, err, errlen);
    } else if (strcmp(v, "resize-volume") == 0) {
        if (o->nargs < 2 || parse_u32(o->args[1], &num) != 0) {
            err_set(err, errlen, "usage: resize-volume ID GB");
            return TROVE_EINVAL;
        }
        rc = p->ops->resize_volume(p, id, num, &in, err, errlen);
    } else if (strcmp(v, "apply-flavor") == 0) {
        if (o->nargs < 2 || parse_u32(o->args[1], &num) != 0) {
            err_set(err, errlen, "usage: apply-flavor ID RAM_MB");
            return TROVE_EINVAL;
        }
        rc = p->ops->apply_flavor(p, id, num, &params, err, errlen);
        if (rc == TROVE_OK)
            *result = json_pack("{s:o}", "params", params_json(&params));
        return rc;
    } else {
        int (*simple)(struct provision *, const char *, char *, size_t) =
            strcmp(v, "stop") == 0            ? p->ops->stop
            : strcmp(v, "destroy") == 0       ? p->ops->destroy
            : strcmp(v, "force-destroy") == 0 ? p->ops->force_destroy
                                              : NULL;
        if (!simple) {
            err_set(err, errlen, "unknown verb %s", v);
            return TROVE_EINVAL;
        }
        return simple(p, id, err, errlen);
    }
    if (rc == TROVE_OK)
        *result = instance_json(&in);
    return rc;
}

static int keygen(const char *name)
{
    struct keys_pair kp;
    char err[512] = "";
    int rc = keys_generate(&kp, err, sizeof err) == 0 && keys_write(name, &kp, err, sizeof err) == 0
                 ? TROVE_OK : TROVE_EINTERNAL;
    keys_wipe(&kp);
    return print_result(rc, err, NULL);
}

int main(int argc, char **argv)
{
    struct options o;
    char err[1024] = "";
    json_t *result = NULL;
    memset(&o, 0, sizeof o);
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (strcmp(o.verb, "keygen") == 0)
        return keygen(o.nargs ? o.args[0] : "");
    struct provision *p = provision_local_open(&o.local, err, sizeof err);
    if (!p)
        return print_result(TROVE_EINVAL, err, NULL);
    int rc = run_verb(p, &o, err, sizeof err, &result);
    p->ops->close(p);
    return print_result(rc, err, result);
}
