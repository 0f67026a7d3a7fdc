"""Roles and permissions as CassandraRoleManager, PasswordAuthenticator and
CassandraAuthorizer keep them: rows of system_auth.roles, role_members and
role_permissions. Passwords are stored salted and hashed (PBKDF2-SHA256; the
real server uses bcrypt, which Python's standard library lacks)."""
import base64
import hashlib
import hmac
import os

from errors import BadCredentials, Unauthorized

PBKDF2_ITERATIONS = 4096

APPLICABLE = {
    "data": {"create", "alter", "drop", "select", "modify", "authorize"},
    "keyspace": {"create", "alter", "drop", "select", "modify", "authorize"},
    "table": {"alter", "drop", "select", "modify", "authorize"},
    "roles": {"create", "alter", "drop", "authorize", "describe"},
    "role": {"alter", "drop", "authorize"},
    "functions": {"create", "alter", "drop", "authorize", "execute"},
    "mbean": {"authorize", "describe", "execute", "modify", "select"},
}


def hash_password(password):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return "$pbkdf2-sha256${}${}${}".format(PBKDF2_ITERATIONS, base64.b64encode(salt).decode(),
                                            base64.b64encode(digest).decode())


def password_matches(password, stored):
    try:
        _, scheme, iterations, salt, digest = stored.split("$")
    except (ValueError, AttributeError):
        return False
    if scheme != "pbkdf2-sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(got, base64.b64decode(digest))


def resource_kind(resource):
    parts = resource.split("/")
    if parts[0] == "data":
        return ("data", "keyspace", "table")[len(parts) - 1]
    if parts[0] == "roles":
        return "roles" if len(parts) == 1 else "role"
    return parts[0]


def display(resource):
    parts = resource.split("/", 2)
    if parts[0] == "data":
        if len(parts) == 1:
            return "<all keyspaces>"
        if len(parts) == 2:
            return f"<keyspace {parts[1]}>"
        return f"<table {parts[1]}.{parts[2]}>"
    if parts[0] == "roles":
        return "<all roles>" if len(parts) == 1 else f"<role {resource[6:]}>"
    if parts[0] == "functions":
        return "<all functions>"
    return "<all mbeans>"


def chain(resource):
    """The resource and its parents, nearest first."""
    if resource.startswith("roles/"):
        return [resource, "roles"]
    parts = resource.split("/")
    if parts[0] == "data":
        return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return [resource]


class Auth:
    def __init__(self, engine, config):
        self.engine = engine
        self.authenticate_enabled = config.password_auth
        self.authorize_enabled = config.authorization

    def _t(self, name):
        return self.engine.keyspaces["system_auth"].tables[name]

    def get(self, role):
        return self._t("roles").rows.get((role,))

    def all_names(self):
        return sorted(k[0] for k in self._t("roles").rows)

    # ---- login ----
    def login(self, user, password):
        with self.engine.lock:
            row = self.get(user)
            if row is None or not row.get("salted_hash") or not password_matches(password, row["salted_hash"]):
                raise BadCredentials(f"Provided username {user} and/or password are incorrect")
            if not row.get("can_login"):
                raise BadCredentials(f"{user} is not permitted to log in")

    # ---- role graph ----
    def granted_roles(self, role, recursive=True):
        """The role itself and the roles granted to it (transitively when recursive)."""
        out, pending = [], [role]
        while pending:
            r = pending.pop()
            if r in out:
                continue
            out.append(r)
            row = self.get(r)
            if row and (recursive or r == role):
                pending.extend(row.get("member_of") or ())
        return out

    def is_super(self, role):
        return any((self.get(r) or {}).get("is_superuser") for r in self.granted_roles(role))

    def permissions(self, role, resource):
        row = self._t("role_permissions").rows.get((role, resource))
        return set(row.get("permissions") or ()) if row else set()

    def authorize(self, user, permission, resource):
        """Raises Unauthorized unless `user` holds `permission` on resource or a parent."""
        if not self.authorize_enabled or user is None:
            return
        with self.engine.lock:
            if self.is_super(user):
                return
            for r in self.granted_roles(user):
                for res in chain(resource):
                    if permission in self.permissions(r, res):
                        return
        raise Unauthorized(f"User {user} has no {permission.upper()} permission on {display(resource)} "
                           f"or any of its parents")

    # ---- changes (caller holds the engine lock, then calls engine.auth_changed) ----
    def put_role(self, role, **fields):
        t = self._t("roles")
        row = t.rows.setdefault((role,), {"role": role, "can_login": False, "is_superuser": False,
                                          "member_of": None, "salted_hash": None})
        row.update(fields)
        t.dirty = True

    def drop_role(self, role):
        roles = self._t("roles")
        roles.rows.pop((role,), None)
        for row in roles.rows.values():
            if row.get("member_of") and role in row["member_of"]:
                row["member_of"] = tuple(r for r in row["member_of"] if r != role) or None
        members = self._t("role_members")
        for key in [k for k in members.rows if role in k]:
            del members.rows[key]
        self.revoke_everything(role=role)
        self.drop_resource("roles/" + role)
        for name in ("roles", "role_members", "role_permissions", "resource_role_permissons_index"):
            self._t(name).dirty = True

    def grant(self, role, resource, permissions):
        t = self._t("role_permissions")
        row = t.rows.setdefault((role, resource), {"role": role, "resource": resource, "permissions": None})
        row["permissions"] = tuple(sorted(set(row.get("permissions") or ()) | set(permissions)))
        self._t("resource_role_permissons_index").rows[(resource, role)] = {"resource": resource, "role": role}
        t.dirty = self._t("resource_role_permissons_index").dirty = True

    def revoke(self, role, resource, permissions):
        t = self._t("role_permissions")
        row = t.rows.get((role, resource))
        if not row:
            return
        left = set(row.get("permissions") or ()) - set(permissions)
        if left:
            row["permissions"] = tuple(sorted(left))
        else:
            del t.rows[(role, resource)]
            self._t("resource_role_permissons_index").rows.pop((resource, role), None)
        t.dirty = self._t("resource_role_permissons_index").dirty = True

    def revoke_everything(self, role=None):
        t = self._t("role_permissions")
        for key in [k for k in t.rows if k[0] == role]:
            self.revoke(key[0], key[1], PERMISSION_NAMES)

    def drop_resource(self, resource):
        """A dropped keyspace, table or role takes its grants with it."""
        t = self._t("role_permissions")
        for key in [k for k in t.rows if k[1] == resource or k[1].startswith(resource + "/")]:
            self.revoke(key[0], key[1], PERMISSION_NAMES)

    def grant_role(self, role, grantee):
        row = self.get(grantee)
        row["member_of"] = tuple(sorted(set(row.get("member_of") or ()) | {role}))
        self._t("role_members").rows[(role, grantee)] = {"role": role, "member": grantee}
        self._t("roles").dirty = self._t("role_members").dirty = True

    def revoke_role(self, role, grantee):
        row = self.get(grantee)
        row["member_of"] = tuple(r for r in (row.get("member_of") or ()) if r != role) or None
        self._t("role_members").rows.pop((role, grantee), None)
        self._t("roles").dirty = self._t("role_members").dirty = True

    def all_grants(self):
        return [(k[0], k[1], row.get("permissions") or ()) for k, row in sorted(self._t("role_permissions").rows.items())]

    def ensure_default_role(self):
        """The first start with PasswordAuthenticator creates cassandra/cassandra, as the real server does."""
        if not self.authenticate_enabled:
            return False
        with self.engine.lock:
            if self._t("roles").rows:
                return False
            self.put_role("cassandra", can_login=True, is_superuser=True, salted_hash=hash_password("cassandra"))
        return True


PERMISSION_NAMES = ("create", "alter", "drop", "select", "modify", "authorize", "describe", "execute")
