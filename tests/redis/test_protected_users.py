"""The protected users docs/plugins/redis.md lists are exactly the ones the
plugin protects. The marked list in the doc is compared with the list in
plugins/redis/users.c (and the settings behind its entries in plugin.c), and
then every listed name is refused by every user operation through the agent
and left out of user.list: once with default settings, once with the
settings renamed, where the default names become ordinary users."""
import hashlib
import re

import harness
from harness import check
from redis_server import RedisServer

# Each user operation with the arguments it takes (the agent refuses any other argument).
USER_OPS = {
    "user.create": ("name", "password", "databases"), "user.delete": ("name",), "user.password": ("name", "password"),
    "user.grant": ("name", "databases"), "user.revoke": ("name", "databases"), "user.show": ("name",),
    "user.access": ("name",),
}


def doc_list():
    """[(fixed name or None, setting or None, default)] from the marked list."""
    with open(harness.source_path("docs", "plugins", "redis.md")) as f:
        text = f.read()
    m = re.search(r"<!-- protected-users:begin -->\n(.*?)<!-- protected-users:end -->", text, re.S)
    check(m, "docs/plugins/redis.md has no protected-users list")
    entries = []
    for line in m.group(1).splitlines():
        if not line.strip():
            continue
        setting = re.match(r"- setting `([a-z_]+)` \(`([^`]+)`\):", line)
        fixed = re.match(r"- `([^`]+)`:", line)
        check(setting or fixed, f"cannot read the protected-users line {line!r}")
        entries.append((None, setting.group(1), setting.group(2)) if setting else (fixed.group(1), None, None))
    return entries


def code_list():
    """The same shape, from rd_user_is_system() and the settings table in plugin.c."""
    with open(harness.source_path("plugins", "redis", "users.c")) as f:
        users_c = f.read()
    with open(harness.source_path("plugins", "redis", "plugin.c")) as f:
        plugin_c = f.read()
    m = re.search(r"protected_users\[\]\s*=\s*\{([^}]*)\}", users_c)
    check(m, "plugins/redis/users.c has no protected_users list")
    settings = {field: (name, default) for field, name, default in
                re.findall(r'\bS\((\w+), "(\w+)", "([^"]*)"', plugin_c)}
    entries = []
    for item in (i.strip() for i in m.group(1).split(",")):
        if item.startswith('"'):
            entries.append((item.strip('"'), None, None))
        else:
            field = re.fullmatch(r"ctx->s\.(\w+)", item)
            check(field and field.group(1) in settings, f"protected user {item!r} is not a setting of plugin.c")
            name, default = settings[field.group(1)]
            entries.append((None, name, default))
    return entries


def effective_names(entries, settings):
    return {fixed if fixed else settings.get(setting, default) for fixed, setting, default in entries}


def check_protected(agent, server, names):
    """Every user operation refuses each name; user.list shows none of them."""
    for name in sorted(names):
        if name not in server.cli("ACL", "USERS").split():
            server.cli("ACL", "SETUSER", name, "off")   # so list and show have something to hide
        for op, takes in USER_OPS.items():
            args = {"name": name, "password": "pw-x", "databases": ["k:*"]}
            r = agent.call(op, {k: v for k, v in args.items() if k in takes})
            check(r.code == "invalid_argument" and "system user" in r.message,
                  f"{op} on protected user {name!r} was not refused: {r}")
    listed = {u["name"] for u in agent.must("user.list")["users"]}
    check(not listed & names, f"user.list shows protected users {sorted(listed & names)}")


def test_doc_lists_exactly_the_protected_users_of_the_code():
    doc, code = doc_list(), code_list()
    check(sorted(doc, key=str) == sorted(code, key=str),
          f"docs/plugins/redis.md lists {doc}, plugins/redis/users.c protects {code}")
    check(len(doc) >= 4, f"the protected-users list lost entries: {doc}")


def test_listed_names_are_refused_with_default_settings():
    with harness.Env(prefix="redis-protected-") as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        names = effective_names(doc_list(), {})
        check(names == {"default", "root", "replicator"}, f"default protected names: {names}")
        check_protected(agent, server, names)
        agent.must("user.create", {"name": "app", "password": "pw-app", "databases": ["app:*"]})


def test_listed_settings_protect_the_names_they_hold():
    with harness.Env(prefix="redis-protected-renamed-") as env:
        server = RedisServer(env).start()
        digest = hashlib.sha256(server.password.encode()).hexdigest()
        server.cli("ACL", "SETUSER", "admin", "on", f"#{digest}", "~*", "&*", "+@all")
        renamed = {"user": "admin", "root_user": "boss", "replication_user": "feeder"}
        agent = harness.Agent(env, "redis", dict(server.settings, **renamed))
        names = effective_names(doc_list(), renamed)
        check(names == {"default", "admin", "boss", "feeder"}, f"renamed protected names: {names}")
        check_protected(agent, server, names)
        # The default names are ordinary users now.
        for name in ("root", "replicator"):
            agent.must("user.create", {"name": name, "password": "pw-" + name, "databases": ["x:*"]})
            agent.must("user.delete", {"name": name})


if __name__ == "__main__":
    harness.run_tests(globals())
