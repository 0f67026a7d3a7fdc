/*
 * auth.h - who is calling the REST API: a token (the X-Auth-Token header)
 * becomes a tenant and an admin flag. One ops table, so Keystone token
 * validation can sit beside the token file (auth_tokens.c) without the API
 * changing. It reads files; it never touches sockets or the registry.
 *
 * Backends:
 *   - tokens: a file of `TOKEN TENANT [admin]` lines (auth_tokens.c);
 *   - none:   no tokens at all, every caller is the tenant its URL names,
 *             with the admin role. For development on one machine: the API
 *             serves loopback peers only in this mode and says so loudly at
 *             every start (auth_loopback_only()).
 *
 * Tenant rule (both backends): a tenant id is 1-64 characters of
 * [A-Za-z0-9_.-], not starting with '.' or '-'.
 */
#ifndef TROVE_CONTROL_AUTH_H
#define TROVE_CONTROL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TENANT_MAX 64
#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256

/* The caller, once authenticated (caller-owned, no pointers inside). */
struct auth_identity {
    char tenant[AUTH_TENANT_MAX + 1];
    bool admin;
};

enum auth_verdict {
    AUTH_OK = 0,
    AUTH_UNAUTHENTICATED,   /* no token, or one nobody issued: HTTP 401 */
    AUTH_FORBIDDEN,         /* a good token used on another tenant's URL: HTTP 403 */
    AUTH_BAD_TENANT,        /* the URL's tenant id breaks the tenant rule: HTTP 404 */
};

struct auth_ops {
    const char *kind;   /* "tokens", "none" */
    /* token: the header's value, NULL when absent. url_tenant: the tenant
     * the URL names (already checked against the tenant rule). Fills *who
     * on AUTH_OK; otherwise writes a one-line reason (never the token) to
     * why. */
    enum auth_verdict (*authenticate)(void *state, const char *token, const char *url_tenant,
                                      struct auth_identity *who, char *why, size_t whylen);
    /* Serve loopback peers only (true for "none"). */
    bool (*loopback_only)(const void *state);
    void (*free)(void *state);
};

struct auth;

/* Load a token file. Lines: `TOKEN TENANT [admin]`, '#' starts a comment.
 * Tokens are 16-256 printable ASCII characters without spaces and appear
 * once. The file must be a regular file that group and others cannot
 * write and others cannot read. NULL with "path:line: reason" in err. */
struct auth *auth_open_tokens(const char *path, char *err, size_t errlen);

/* No tokens (development): see above. Never fails except for memory. */
struct auth *auth_open_none(void);

/* Wrap any backend (for a future Keystone backend). Takes state; NULL on
 * no memory (state is then freed with ops->free). */
struct auth *auth_new(const struct auth_ops *ops, void *state);

void auth_free(struct auth *a);
const char *auth_kind(const struct auth *a);
bool auth_loopback_only(const struct auth *a);

/* Check the URL tenant against the tenant rule, then ask the backend. */
enum auth_verdict auth_authenticate(const struct auth *a, const char *token, const char *url_tenant,
                                    struct auth_identity *who, char *why, size_t whylen);

/* The tenant rule above. */
bool auth_tenant_is_valid(const char *s);

#endif
