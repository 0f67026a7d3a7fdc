/*
 * auth.c - the auth front (tenant rule, dispatch to a backend) and the
 * "none" backend for development. The token file backend lives in
 * auth_tokens.c. No sockets, no registry.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

struct auth {
    const struct auth_ops *ops;
    void *state;
};

bool auth_tenant_is_valid(const char *s)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    if (len == 0 || len > AUTH_TENANT_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

struct auth *auth_new(const struct auth_ops *ops, void *state)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a) {
        if (ops && ops->free)
            ops->free(state);
        return NULL;
    }
    a->ops = ops;
    a->state = state;
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->ops->free)
        a->ops->free(a->state);
    free(a);
}

const char *auth_kind(const struct auth *a)
{
    return a->ops->kind;
}

bool auth_loopback_only(const struct auth *a)
{
    return a->ops->loopback_only ? a->ops->loopback_only(a->state) : false;
}

enum auth_verdict auth_authenticate(const struct auth *a, const char *token, const char *url_tenant,
                                    struct auth_identity *who, char *why, size_t whylen)
{
    memset(who, 0, sizeof *who);
    if (!auth_tenant_is_valid(url_tenant)) {
        err_set(why, whylen, "no such tenant (tenant ids are 1-%d characters of A-Z a-z 0-9 _ . -)",
                AUTH_TENANT_MAX);
        return AUTH_BAD_TENANT;
    }
    return a->ops->authenticate(a->state, token, url_tenant, who, why, whylen);
}

/* ------------------------------------------------------------ none */

static enum auth_verdict none_authenticate(void *state, const char *token, const char *url_tenant,
                                           struct auth_identity *who, char *why, size_t whylen)
{
    (void)state;
    (void)token;
    (void)why;
    (void)whylen;
    snprintf(who->tenant, sizeof who->tenant, "%s", url_tenant);
    who->admin = true;
    return AUTH_OK;
}

static bool none_loopback_only(const void *state)
{
    (void)state;
    return true;
}

static const struct auth_ops none_ops = {
    .kind = "none",
    .authenticate = none_authenticate,
    .loopback_only = none_loopback_only,
    .free = NULL,
};

struct auth *auth_open_none(void)
{
    return auth_new(&none_ops, NULL);
}
