"""Authentication (saslStart/saslContinue with SCRAM, speculative
authentication inside hello, logout) and user management (createUser,
updateUser, dropUser, usersInfo, grant/revoke roles). Passwords and SASL
payloads never reach the log.
"""
from . import scram
from .auth import ADMIN_ROLES, DB_ROLES, SYSTEM_USER, USERS_COLLECTION, Users, parse_roles
from .bsoncodec import Binary
from .dispatch import command
from .errors import MongoError, not_supported
from .query import matches

AUTH_FAILED = "Authentication failed."


def _payload(value):
    if isinstance(value, Binary):
        return value.data
    if isinstance(value, str):
        return value.encode("utf-8")
    raise MongoError(14, "payload must be BinData or a string")


def _fail(ctx, user, db, mechanism, reason):
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Authentication failed",
                        {"mechanism": mechanism, "user": user, "db": db, "remote": ctx.conn.peer, "error": reason})
    ctx.server.counters["userAsserts"] += 1
    return MongoError(18, AUTH_FAILED)


def sasl_start(ctx, db, cmd):
    """Begin a SCRAM conversation; returns the reply body (without ok)."""
    mechanism = cmd.get("mechanism")
    enabled = ctx.server.parameters.get("authenticationMechanisms")
    if mechanism not in scram.MECHANISMS or mechanism not in enabled:
        raise MongoError(334, f"Received authentication for mechanism {mechanism} which is not enabled")
    try:
        conv = scram.ServerConversation(mechanism, _payload(cmd.get("payload", b"")))
    except scram.SCRAMError as exc:
        raise _fail(ctx, "", db, mechanism, str(exc)) from None
    if conv.user == SYSTEM_USER and db == "local" and ctx.server.users.system_credentials is None:
        raise _fail(ctx, conv.user, db, mechanism, "internal authentication is not enabled (no keyFile)")
    doc = ctx.server.users.find(conv.user, db)
    if doc is None:
        raise _fail(ctx, conv.user, db, mechanism, f"UserNotFound: Could not find user \"{conv.user}\" for db "
                                                   f"\"{db}\"")
    creds = doc.get("credentials", {}).get(mechanism)
    if creds is None:
        raise MongoError(334, f"Unable to use {mechanism} based authentication for user without any "
                              f"{mechanism} credentials registered")
    server_first = conv.first(creds)
    options = cmd.get("options") if isinstance(cmd.get("options"), dict) else {}
    conv.skip_empty = bool(options.get("skipEmptyExchange"))
    conv.db = db
    cid = ctx.conn.add_conversation(conv)
    return {"conversationId": cid, "done": False, "payload": Binary(server_first)}


@command("saslStart", auth="none")
def cmd_sasl_start(ctx):
    """First step of SCRAM-SHA-1 / SCRAM-SHA-256."""
    reply = sasl_start(ctx, ctx.db, ctx.cmd)
    reply["ok"] = 1.0
    return reply


@command("saslContinue", auth="none")
def cmd_sasl_continue(ctx):
    """Client proof and server signature; authenticates the connection on success."""
    cid = ctx.cmd.get("conversationId")
    conv = ctx.conn.conversations.get(cid)
    if conv is None:
        raise MongoError(17, "No SASL session state found")
    payload = _payload(ctx.cmd.get("payload", b""))
    if conv.step == 2:
        try:
            server_final = conv.final(payload)
        except scram.SCRAMError as exc:
            ctx.conn.conversations.pop(cid, None)
            raise _fail(ctx, conv.user, conv.db, conv.mechanism, str(exc)) from None
        if conv.skip_empty:
            _authenticated(ctx, conv, cid)
            return {"conversationId": cid, "done": True, "payload": Binary(server_final), "ok": 1.0}
        return {"conversationId": cid, "done": False, "payload": Binary(server_final), "ok": 1.0}
    if conv.step == 3:
        _authenticated(ctx, conv, cid)
        return {"conversationId": cid, "done": True, "payload": Binary(b""), "ok": 1.0}
    raise MongoError(17, "SASL conversation is in an unexpected state")


def _authenticated(ctx, conv, cid):
    ctx.conn.conversations.pop(cid, None)
    ctx.conn.login(conv.user, conv.db)
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Successfully authenticated",
                        {"mechanism": conv.mechanism, "user": conv.user, "db": conv.db, "remote": ctx.conn.peer})


def speculative(ctx, request):
    """The speculativeAuthenticate part of a hello reply, or None (the client then authenticates normally)."""
    if not isinstance(request, dict) or request.get("saslStart") != 1 or not isinstance(request.get("db"), str):
        return None
    try:
        reply = sasl_start(ctx, request["db"], request)
    except MongoError:
        return None
    return reply


@command("authenticate", auth="none")
def cmd_authenticate(ctx):
    """MONGODB-X509 / MONGODB-CR: not available (SCRAM only)."""
    mechanism = ctx.cmd.get("mechanism", "MONGODB-CR")
    raise MongoError(334, f"Received authentication for mechanism {mechanism} which is not enabled")


@command("logout", auth="none")
def cmd_logout(ctx):
    """Forget the user authenticated on this database."""
    ctx.conn.logout(ctx.db)
    return {"ok": 1.0}


# ---- user management ----

def _user_name(value, field):
    if not isinstance(value, str) or not value:
        raise MongoError(2, f"{field} must be a non-empty string")
    if "\x00" in value:
        raise MongoError(2, f"{field} must not contain NUL bytes")
    return value


def _users_collection(ctx):
    coll, created = ctx.server.datastore.collection(*USERS_COLLECTION)
    if created:
        ctx.server.datastore.create_index(coll, {"v": 2, "unique": True, "key": {"user": 1, "db": 1},
                                                 "name": "user_1_db_1"})
    return coll


def _check_grant(ctx, roles):
    for r in roles:
        if not ctx.localhost_exception:
            ctx.require_db("userAdmin", r["db"])


def _mechanisms(ctx, cmd, default):
    enabled = ctx.server.parameters.get("authenticationMechanisms")
    mechs = cmd.get("mechanisms", default)
    if not isinstance(mechs, list) or not mechs:
        raise MongoError(2, "mechanisms field must not be empty")
    for m in mechs:
        if m not in scram.MECHANISMS:
            raise MongoError(2, f"Unknown auth mechanism '{m}'")
        if m not in enabled:
            raise MongoError(2, f"Unable to create user with mechanism '{m}', it is not enabled")
    return list(dict.fromkeys(mechs))


def _password(cmd, required):
    if cmd.get("digestPassword") is False:
        raise not_supported("digestPassword: false")
    pwd = cmd.get("pwd")
    if pwd is None:
        if required:
            raise MongoError(2, "Must provide a 'pwd' field for all user documents, except those with "
                                "'$external' as the user's source db")
        return None
    if not isinstance(pwd, str) or not pwd:
        raise MongoError(2, "pwd must be a non-empty string")
    return pwd


@command("createUser", auth="custom", secondary="never", writes=True, localhost_ok=True)
def cmd_create_user(ctx):
    """Create a SCRAM user with roles."""
    db = ctx.db
    name = _user_name(ctx.arg, "createUser")
    if ctx.localhost_exception and db != "admin":
        raise MongoError(13, "command createUser requires authentication")
    if not ctx.localhost_exception:
        ctx.require_db("userAdmin")
    if db == "$external":
        raise not_supported("users on $external")
    if db == "local":
        raise MongoError(2, "Cannot create users in the local database")
    if "authenticationRestrictions" in ctx.cmd:
        raise not_supported("authenticationRestrictions")
    if "roles" not in ctx.cmd:
        raise MongoError(40414, "BSON field 'createUser.roles' is missing but a required field")
    roles = parse_roles(ctx.cmd["roles"], db)
    _check_grant(ctx, roles)
    pwd = _password(ctx.cmd, required=True)
    mechs = _mechanisms(ctx, ctx.cmd, ctx.server.parameters.get("authenticationMechanisms"))
    ctx.wait_writable()
    users = ctx.server.users
    if users.find(name, db) is not None:
        raise MongoError(51003, f"User \"{name}@{db}\" already exists")
    doc = users.make_document(name, db, pwd, roles, mechs, ctx.cmd.get("customData"))
    ctx.server.datastore.insert(_users_collection(ctx), doc)
    ctx.server.ensure_auth_schema()
    users.users_seen = True
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Created user", {"user": name, "db": db})
    return {"ok": 1.0}


def _existing_user(ctx, name):
    doc = ctx.server.users.find(name, ctx.db)
    if doc is None or name == SYSTEM_USER and ctx.db == "local":
        raise MongoError(11, f"User \"{name}@{ctx.db}\" not found")
    coll = ctx.server.storage.get(*USERS_COLLECTION)
    return coll, coll.find_id(doc["_id"]), doc


@command("updateUser", auth=("db", "userAdmin"), secondary="never", writes=True)
def cmd_update_user(ctx):
    """Change a user's password, roles, mechanisms or customData."""
    name = _user_name(ctx.arg, "updateUser")
    fields = {k for k in ("pwd", "roles", "customData", "mechanisms") if k in ctx.cmd}
    if not fields:
        raise MongoError(2, "Must specify at least one field to update in updateUser")
    if "authenticationRestrictions" in ctx.cmd:
        raise not_supported("authenticationRestrictions")
    roles = parse_roles(ctx.cmd["roles"], ctx.db) if "roles" in ctx.cmd else None
    if roles is not None:
        _check_grant(ctx, roles)
    pwd = _password(ctx.cmd, required=False)
    ctx.wait_writable()
    coll, rid, doc = _existing_user(ctx, name)
    current = Users.mechanisms_of(doc)
    mechs = _mechanisms(ctx, ctx.cmd, current) if "mechanisms" in ctx.cmd else current
    if "mechanisms" in ctx.cmd and pwd is None and not set(mechs) <= set(current):
        raise MongoError(2, "mechanisms field must be a subset of previously set mechanisms")
    new = dict(doc)
    if pwd is not None:
        fresh = ctx.server.users.make_document(name, ctx.db, pwd, doc["roles"], mechs)
        new["credentials"] = fresh["credentials"]
    elif "mechanisms" in ctx.cmd:
        new["credentials"] = {m: c for m, c in doc["credentials"].items() if m in mechs}
    if roles is not None:
        new["roles"] = roles
    if "customData" in ctx.cmd:
        new["customData"] = ctx.cmd["customData"]
    ctx.server.datastore.replace(coll, rid, new)
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Updated user", {"user": name, "db": ctx.db,
                                                                       "fields": sorted(fields)})
    return {"ok": 1.0}


@command("dropUser", auth=("db", "userAdmin"), secondary="never", writes=True)
def cmd_drop_user(ctx):
    """Remove a user."""
    name = _user_name(ctx.arg, "dropUser")
    ctx.wait_writable()
    coll, rid, _ = _existing_user(ctx, name)
    ctx.server.datastore.delete(coll, rid)
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Dropped user", {"user": name, "db": ctx.db})
    return {"ok": 1.0}


@command("dropAllUsersFromDatabase", auth=("db", "userAdmin"), secondary="never", writes=True)
def cmd_drop_all_users(ctx):
    """Remove every user of this database."""
    ctx.wait_writable()
    coll = ctx.server.storage.get(*USERS_COLLECTION)
    n = 0
    if coll is not None:
        for rid, rec in list(coll.records.items()):
            if rec.doc.get("db") == ctx.db:
                ctx.server.datastore.delete(coll, rid)
                n += 1
    return {"n": n, "ok": 1.0}


def _change_roles(ctx, grant):
    name = _user_name(ctx.arg, ctx.name)
    if not isinstance(ctx.cmd.get("roles"), list) or not ctx.cmd["roles"]:
        raise MongoError(2, f"{ctx.name} command requires a non-empty \"roles\" array")
    roles = parse_roles(ctx.cmd["roles"], ctx.db)
    _check_grant(ctx, roles)
    ctx.wait_writable()
    coll, rid, doc = _existing_user(ctx, name)
    current = list(doc.get("roles", []))
    if grant:
        current += [r for r in roles if r not in current]
    else:
        current = [r for r in current if r not in roles]
    new = dict(doc)
    new["roles"] = current
    ctx.server.datastore.replace(coll, rid, new)
    ctx.server.log.info("ACCESS", ctx.conn.ctx_name, "Granted roles" if grant else "Revoked roles",
                        {"user": name, "db": ctx.db, "roles": roles})
    return {"ok": 1.0}


@command("grantRolesToUser", auth=("db", "userAdmin"), secondary="never", writes=True)
def cmd_grant_roles(ctx):
    """Add roles to a user."""
    return _change_roles(ctx, True)


@command("revokeRolesFromUser", auth=("db", "userAdmin"), secondary="never", writes=True)
def cmd_revoke_roles(ctx):
    """Remove roles from a user."""
    return _change_roles(ctx, False)


def _user_targets(ctx, arg):
    """[(user or None for all, db)] named by a usersInfo argument."""
    if arg == 1 or arg == 1.0 or arg is True:
        return [(None, ctx.db)]
    if isinstance(arg, str):
        return [(arg, ctx.db)]
    if isinstance(arg, dict):
        if arg.get("forAllDBs") is True:
            if ctx.db != "admin":
                raise MongoError(2, "forAllDBs may only be used on the admin database")
            return [(None, None)]
        if isinstance(arg.get("user"), str) and isinstance(arg.get("db"), str):
            return [(arg["user"], arg["db"])]
        raise MongoError(2, "User name must contain 'user' and 'db' fields")
    if isinstance(arg, list):
        out = []
        for item in arg:
            if isinstance(item, dict) and item.get("forAllDBs"):
                raise MongoError(2, "forAllDBs cannot be used in an array")
            out += _user_targets(ctx, item)
        return out
    raise MongoError(2, "User and role names must be either strings or objects")


@command("usersInfo", auth="custom", secondary="optIn")
def cmd_users_info(ctx):
    """Describe users (credentials only with showCredentials)."""
    if ctx.cmd.get("showPrivileges") or ctx.cmd.get("showAuthenticationRestrictions"):
        raise not_supported("showPrivileges / showAuthenticationRestrictions")
    targets = _user_targets(ctx, ctx.arg)
    self_names = {(i.user, i.db) for i in ctx.identities}
    for user, db in targets:
        if not (user is not None and (user, db) in self_names):
            ctx.require_db("userAdmin", db if db is not None else "admin")
    show = bool(ctx.cmd.get("showCredentials"))
    filt = ctx.cmd.get("filter") or {}
    found = []
    for doc in ctx.server.users.all():
        for user, db in targets:
            if (db is None or doc["db"] == db) and (user is None or doc["user"] == user):
                if matches(doc, filt) and doc not in found:
                    found.append(doc)
    found.sort(key=lambda d: (d["db"], d["user"]))
    return {"users": [Users.describe(d, show) for d in found], "ok": 1.0}


@command("rolesInfo", auth="authenticated", secondary="optIn")
def cmd_roles_info(ctx):
    """The built-in roles of a database (user-defined roles are not supported)."""
    names = list(DB_ROLES) + (list(ADMIN_ROLES) if ctx.db == "admin" else [])
    arg = ctx.arg
    if isinstance(arg, str):
        names = [n for n in names if n == arg]
    elif isinstance(arg, dict) and "role" in arg:
        names = [n for n in names if n == arg["role"]] if arg.get("db", ctx.db) == ctx.db else []
    if not ctx.cmd.get("showBuiltinRoles") and not isinstance(arg, (str, dict)):
        names = []
    return {"roles": [{"role": n, "db": ctx.db, "isBuiltin": True, "roles": [], "inheritedRoles": []}
                      for n in names], "ok": 1.0}


@command("createRole", "updateRole", "dropRole", "grantRolesToRole", "revokeRolesFromRole",
         "grantPrivilegesToRole", "revokePrivilegesFromRole", "dropAllRolesFromDatabase",
         auth="authenticated", secondary="never")
def cmd_user_defined_roles(ctx):
    """User-defined roles: not available (built-in roles only)."""
    raise not_supported("user-defined roles")
