"""A parser for the subset of CQL 3 the stand-in executes: SELECT, INSERT,
UPDATE, DELETE, TRUNCATE, USE, keyspace and table DDL, role DDL, GRANT/REVOKE
and LIST. It produces plain statement objects; anything else is a syntax
error or, for valid CQL the stand-in does not implement, an InvalidRequest
that says so.
"""
import re

from errors import InvalidRequest, SyntaxError_

_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<dollar>\$\$.*?\$\$)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z_]))
  | (?P<hex>0[xX][0-9a-fA-F]*(?![0-9A-Za-z_]))
  | (?P<float>\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<integer>\d+(?![A-Za-z_]))
  | (?P<ident>[A-Za-z][A-Za-z0-9_]*)
  | (?P<named>:[A-Za-z][A-Za-z0-9_]*)
  | (?P<punct><=|>=|!=|[(),;.*=<>\[\]{}:?+\-])
""", re.S | re.X)

RESERVED = {
    "add", "allow", "alter", "and", "apply", "asc", "authorize", "batch", "begin", "by", "columnfamily",
    "create", "delete", "desc", "describe", "drop", "entries", "execute", "from", "full", "grant", "if", "in",
    "index", "infinity", "insert", "into", "is", "keyspace", "limit", "materialized", "modify", "nan",
    "norecursive", "not", "null", "of", "on", "or", "order", "primary", "rename", "revoke", "schema", "select",
    "set", "table", "to", "token", "truncate", "unlogged", "update", "use", "using", "view", "where", "with",
}
PERMISSIONS = ("create", "alter", "drop", "select", "modify", "authorize", "describe", "execute")


class Token:
    def __init__(self, kind, value, text, pos):
        self.kind, self.value, self.text, self.pos = kind, value, text, pos

    def __repr__(self):
        return f"{self.kind}:{self.text}"


class Literal:
    """A term: kind is string, integer, float, boolean, uuid, hex, null, list,
    set, map, bind or func; value is the Python value (a list of Literals for
    collections, pairs for maps, the Bind for a marker)."""

    def __init__(self, kind, value, text):
        self.kind, self.value, self.text = kind, value, text


class Bind:
    def __init__(self, index, name=None):
        self.index, self.name = index, name


class Statement:
    def __init__(self, kind, **fields):
        self.kind = kind
        self.__dict__.update(fields)


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _syntax(text, pos, f"token recognition error at: '{text[pos]}'")
        kind = m.lastgroup
        raw = m.group(kind)
        if kind != "ws":
            tokens.append(_make_token(kind, raw, m.start()))
        pos = m.end()
    tokens.append(Token("eof", None, "<EOF>", len(text)))
    return tokens


def _make_token(kind, raw, pos):
    if kind == "string":
        return Token("string", raw[1:-1].replace("''", "'"), raw, pos)
    if kind == "dollar":
        return Token("string", raw[2:-2], raw, pos)
    if kind == "qident":
        return Token("qident", raw[1:-1].replace('""', '"'), raw, pos)
    if kind == "ident":
        return Token("ident", raw.lower(), raw, pos)
    if kind == "integer":
        return Token("integer", int(raw), raw, pos)
    if kind == "float":
        return Token("float", float(raw), raw, pos)
    if kind == "hex":
        digits = raw[2:]
        if len(digits) % 2:
            raise SyntaxError_(f"Invalid hex literal {raw}")
        return Token("hex", bytes.fromhex(digits), raw, pos)
    if kind == "named":
        return Token("named", raw[1:].lower(), raw, pos)
    return Token(kind, raw.lower() if kind == "uuid" else raw, raw, pos)


def _syntax(text, pos, what):
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1)
    return SyntaxError_(f"line {line}:{col} {what}")


class Parser:
    def __init__(self, text):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.binds = []

    # ---- token helpers ----
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def error(self, expecting=None):
        t = self.peek()
        if expecting:
            return _syntax(self.text, t.pos, f"mismatched input '{t.text}' expecting {expecting}")
        return _syntax(self.text, t.pos, f"no viable alternative at input '{t.text}'")

    def is_kw(self, *words, k=0):
        t = self.peek(k)
        return t.kind == "ident" and t.value in words

    def accept_kw(self, *words):
        if self.is_kw(*words):
            return self.next().value
        return None

    def expect_kw(self, *words):
        v = self.accept_kw(*words)
        if v is None:
            raise self.error(" or ".join(w.upper() for w in words))
        return v

    def accept(self, punct):
        t = self.peek()
        if t.kind == "punct" and t.value == punct:
            self.i += 1
            return True
        return False

    def expect(self, punct):
        if not self.accept(punct):
            raise self.error(f"'{punct}'")

    def ident(self, what="an identifier"):
        t = self.peek()
        if t.kind == "qident" or (t.kind == "ident" and t.value not in RESERVED):
            self.i += 1
            return t.value
        raise self.error(what)

    def name_or_string(self):
        """Role and user names: an identifier or a string literal."""
        t = self.peek()
        if t.kind == "string":
            self.i += 1
            return t.value
        return self.ident("a role name")

    def table_name(self):
        first = self.ident("a table name")
        if self.accept("."):
            return first, self.ident("a table name")
        return None, first

    # ---- entry ----
    def parse(self):
        t = self.peek()
        if t.kind != "ident":
            raise self.error()
        handler = getattr(self, "p_" + t.value, None)
        if handler is None:
            raise self.error()
        self.next()
        stmt = handler()
        self.accept(";")
        if self.peek().kind != "eof":
            raise self.error("EOF")
        stmt.binds = self.binds
        stmt.text = self.text
        return stmt

    # ---- terms ----
    def term(self):
        t = self.peek()
        if t.kind == "punct" and t.value == "-" and self.peek(1).kind in ("integer", "float"):
            self.next()
            n = self.next()
            return Literal(n.kind, -n.value, "-" + n.text)
        if t.kind in ("string", "integer", "float", "uuid", "hex"):
            self.next()
            return Literal(t.kind, t.value, t.text if t.kind != "string" else t.value)
        if t.kind == "ident" and t.value in ("true", "false"):
            self.next()
            return Literal("boolean", t.value == "true", t.value)
        if t.kind == "ident" and t.value == "null":
            self.next()
            return Literal("null", None, "null")
        if t.kind == "ident" and t.value in ("nan", "infinity"):
            self.next()
            return Literal("float", float(t.value), t.text)
        if t.kind == "punct" and t.value == "?":
            self.next()
            b = Bind(len(self.binds))
            self.binds.append(b)
            return Literal("bind", b, "?")
        if t.kind == "named":
            self.next()
            b = Bind(len(self.binds), t.value)
            self.binds.append(b)
            return Literal("bind", b, t.text)
        if t.kind == "punct" and t.value == "[":
            return self.list_literal()
        if t.kind == "punct" and t.value == "{":
            return self.brace_literal()
        if t.kind == "ident" and self.peek(1).kind == "punct" and self.peek(1).value == "(":
            return self.function_call()
        raise self.error("a value")

    def list_literal(self):
        self.expect("[")
        items = []
        if not self.accept("]"):
            items.append(self.term())
            while self.accept(","):
                items.append(self.term())
            self.expect("]")
        return Literal("list", items, "[...]")

    def brace_literal(self):
        self.expect("{")
        if self.accept("}"):
            return Literal("set", [], "{}")
        first = self.term()
        if self.accept(":"):
            pairs = [(first, self.term())]
            while self.accept(","):
                k = self.term()
                self.expect(":")
                pairs.append((k, self.term()))
            self.expect("}")
            return Literal("map", pairs, "{...}")
        items = [first]
        while self.accept(","):
            items.append(self.term())
        self.expect("}")
        return Literal("set", items, "{...}")

    def function_call(self):
        name = self.next().value
        self.expect("(")
        args = []
        if not self.accept(")"):
            args.append(self.term())
            while self.accept(","):
                args.append(self.term())
            self.expect(")")
        if name not in ("now", "uuid", "totimestamp", "currenttimestamp", "tounixtimestamp"):
            raise InvalidRequest(f"Unknown function '{name}'")
        return Literal("func", (name, args), name + "(...)")

    # ---- WHERE ----
    def relations(self):
        rels = [self.relation()]
        while self.accept_kw("and"):
            rels.append(self.relation())
        return rels

    def relation(self):
        col = self.ident("a column name")
        t = self.peek()
        if self.accept_kw("in"):
            if self.peek().kind == "punct" and self.peek().value in ("?",) or self.peek().kind == "named":
                return (col, "in", self.term())
            self.expect("(")
            items = []
            if not self.accept(")"):
                items.append(self.term())
                while self.accept(","):
                    items.append(self.term())
                self.expect(")")
            return (col, "in", items)
        if t.kind == "punct" and t.value in ("=", "<", ">", "<=", ">="):
            self.next()
            return (col, t.value, self.term())
        raise self.error("a relation operator")

    # ---- DML ----
    def p_select(self):
        self.accept_kw("json")
        distinct = bool(self.accept_kw("distinct"))
        selectors = None
        if not self.accept("*"):
            selectors = [self.selector()]
            while self.accept(","):
                selectors.append(self.selector())
        self.expect_kw("from")
        ks, table = self.table_name()
        where, limit, filtering = [], None, False
        if self.accept_kw("where"):
            where = self.relations()
        if self.accept_kw("order"):
            raise InvalidRequest("ORDER BY is not implemented by this stand-in")
        if self.accept_kw("limit"):
            limit = self.term()
        if self.accept_kw("allow"):
            self.expect_kw("filtering")
            filtering = True
        return Statement("select", keyspace=ks, table=table, selectors=selectors, where=where, limit=limit,
                         allow_filtering=filtering, distinct=distinct)

    def selector(self):
        if self.is_kw("count") and self.peek(1).kind == "punct" and self.peek(1).value == "(":
            self.next()
            self.expect("(")
            if not self.accept("*"):
                t = self.next()
                if t.kind != "integer" or t.value != 1:
                    raise InvalidRequest("Only COUNT(1) and COUNT(*) are supported by this stand-in")
            self.expect(")")
            name = "count"
            kind = "count"
        else:
            name = self.ident("a column name")
            kind = "column"
        alias = self.ident() if self.accept_kw("as") else None
        return (kind, name, alias)

    def using(self):
        opts = {}
        if self.accept_kw("using"):
            while True:
                key = self.expect_kw("ttl", "timestamp")
                opts[key] = self.term()
                if not self.accept_kw("and"):
                    break
        return opts

    def p_insert(self):
        self.expect_kw("into")
        ks, table = self.table_name()
        if self.is_kw("json"):
            raise InvalidRequest("INSERT JSON is not implemented by this stand-in")
        self.expect("(")
        cols = [self.ident("a column name")]
        while self.accept(","):
            cols.append(self.ident("a column name"))
        self.expect(")")
        self.expect_kw("values")
        self.expect("(")
        vals = [self.term()]
        while self.accept(","):
            vals.append(self.term())
        self.expect(")")
        if_not_exists = False
        if self.accept_kw("if"):
            self.expect_kw("not")
            self.expect_kw("exists")
            if_not_exists = True
        using = self.using()
        if len(cols) != len(vals):
            raise InvalidRequest("Unmatched column names/values")
        return Statement("insert", keyspace=ks, table=table, columns=cols, values=vals,
                         if_not_exists=if_not_exists, using=using)

    def p_update(self):
        ks, table = self.table_name()
        using = self.using()
        self.expect_kw("set")
        assignments = [self.assignment()]
        while self.accept(","):
            assignments.append(self.assignment())
        self.expect_kw("where")
        where = self.relations()
        if_exists = False
        if self.accept_kw("if"):
            self.expect_kw("exists")
            if_exists = True
        return Statement("update", keyspace=ks, table=table, assignments=assignments, where=where,
                         if_exists=if_exists, using=using)

    def assignment(self):
        col = self.ident("a column name")
        self.expect("=")
        t = self.peek()
        if (t.kind in ("ident", "qident") and t.value == col and self.peek(1).kind == "punct"
                and self.peek(1).value in ("+", "-")):
            self.next()
            op = self.next().value
            return (col, op, self.term())
        return (col, "=", self.term())

    def p_delete(self):
        cols = []
        if not self.is_kw("from"):
            cols.append(self.ident("a column name"))
            while self.accept(","):
                cols.append(self.ident("a column name"))
        self.expect_kw("from")
        ks, table = self.table_name()
        self.using()
        self.expect_kw("where")
        where = self.relations()
        if_exists = False
        if self.accept_kw("if"):
            self.expect_kw("exists")
            if_exists = True
        return Statement("delete", keyspace=ks, table=table, columns=cols, where=where, if_exists=if_exists)

    def p_truncate(self):
        self.accept_kw("table", "columnfamily")
        ks, table = self.table_name()
        return Statement("truncate", keyspace=ks, table=table)

    def p_use(self):
        return Statement("use", keyspace=self.ident("a keyspace name"))

    def p_begin(self):
        raise InvalidRequest("BATCH is not implemented by this stand-in")

    # ---- DDL ----
    def if_not_exists(self):
        if self.accept_kw("if"):
            self.expect_kw("not")
            self.expect_kw("exists")
            return True
        return False

    def if_exists(self):
        if self.accept_kw("if"):
            self.expect_kw("exists")
            return True
        return False

    def properties(self):
        props = {}
        while True:
            if self.is_kw("clustering"):
                self.next()
                self.expect_kw("order")
                self.expect_kw("by")
                self.expect("(")
                order = []
                while True:
                    col = self.ident("a column name")
                    order.append((col, self.accept_kw("asc", "desc") or "asc"))
                    if not self.accept(","):
                        break
                self.expect(")")
                props["clustering order"] = order
            elif self.is_kw("compact"):
                raise InvalidRequest("COMPACT STORAGE tables are not supported starting with version 4.0")
            else:
                key = self.ident("a property name")
                self.expect("=")
                t = self.peek()
                if t.kind == "ident" and t.value not in ("true", "false", "null"):
                    self.next()
                    props[key] = Literal("string", t.value, t.text)
                else:
                    props[key] = self.term()
            if not self.accept_kw("and"):
                return props

    def p_create(self):
        what = self.expect_kw("keyspace", "schema", "table", "columnfamily", "role", "user", "index", "type",
                              "function", "aggregate", "materialized", "trigger", "custom", "or")
        if what in ("keyspace", "schema"):
            ine = self.if_not_exists()
            name = self.ident("a keyspace name")
            self.expect_kw("with")
            return Statement("create_keyspace", name=name, if_not_exists=ine, properties=self.properties())
        if what in ("table", "columnfamily"):
            return self.create_table()
        if what == "role":
            ine = self.if_not_exists()
            name = self.name_or_string()
            opts = self.role_options() if self.accept_kw("with") else {}
            return Statement("create_role", name=name, if_not_exists=ine, options=opts)
        if what == "user":
            ine = self.if_not_exists()
            name = self.name_or_string()
            return Statement("create_role", name=name, if_not_exists=ine, options=self.user_options(True))
        raise InvalidRequest(f"CREATE {what.upper()} is not implemented by this stand-in")

    def create_table(self):
        ine = self.if_not_exists()
        ks, table = self.table_name()
        self.expect("(")
        columns, pk = [], None
        while True:
            if self.is_kw("primary"):
                self.next()
                self.expect_kw("key")
                if pk is not None:
                    raise InvalidRequest("Multiple PRIMARY KEYs specified (exactly one required)")
                pk = self.primary_key()
            else:
                name = self.ident("a column name")
                typ = self.type_text()
                static = bool(self.accept_kw("static"))
                columns.append((name, typ, static))
                if self.accept_kw("primary"):
                    self.expect_kw("key")
                    if pk is not None:
                        raise InvalidRequest("Multiple PRIMARY KEYs specified (exactly one required)")
                    pk = ([name], [])
            if not self.accept(","):
                break
            if self.peek().kind == "punct" and self.peek().value == ")":
                break
        self.expect(")")
        props = self.properties() if self.accept_kw("with") else {}
        if pk is None:
            raise InvalidRequest("No PRIMARY KEY specifed for table '%s' (exactly one required)" % table)
        return Statement("create_table", keyspace=ks, name=table, if_not_exists=ine, columns=columns,
                         partition_key=pk[0], clustering=pk[1], properties=props)

    def primary_key(self):
        self.expect("(")
        if self.accept("("):
            part = [self.ident("a column name")]
            while self.accept(","):
                part.append(self.ident("a column name"))
            self.expect(")")
        else:
            part = [self.ident("a column name")]
        clustering = []
        while self.accept(","):
            clustering.append(self.ident("a column name"))
        self.expect(")")
        return part, clustering

    def type_text(self):
        """The tokens of a type, joined back into text for cqltypes.parse_type."""
        out = []

        def one():
            t = self.peek()
            if t.kind not in ("ident", "qident"):
                raise self.error("a type")
            self.next()
            out.append(t.text)
            if self.accept("<"):
                out.append("<")
                one()
                while self.accept(","):
                    out.append(",")
                    one()
                self.expect(">")
                out.append(">")

        one()
        return "".join(out)

    def p_alter(self):
        what = self.expect_kw("keyspace", "schema", "table", "columnfamily", "role", "user", "type",
                              "materialized")
        if what in ("keyspace", "schema"):
            ie = self.if_exists()
            name = self.ident("a keyspace name")
            self.expect_kw("with")
            return Statement("alter_keyspace", name=name, if_exists=ie, properties=self.properties())
        if what == "role":
            ie = self.if_exists()
            name = self.name_or_string()
            self.expect_kw("with")
            return Statement("alter_role", name=name, if_exists=ie, options=self.role_options())
        if what == "user":
            ie = self.if_exists()
            name = self.name_or_string()
            return Statement("alter_role", name=name, if_exists=ie, options=self.user_options(False))
        raise InvalidRequest(f"ALTER {what.upper()} is not implemented by this stand-in")

    def p_drop(self):
        what = self.expect_kw("keyspace", "schema", "table", "columnfamily", "role", "user", "index", "type",
                              "function", "aggregate", "materialized", "trigger")
        ie = self.if_exists()
        if what in ("keyspace", "schema"):
            return Statement("drop_keyspace", name=self.ident("a keyspace name"), if_exists=ie)
        if what in ("table", "columnfamily"):
            ks, table = self.table_name()
            return Statement("drop_table", keyspace=ks, name=table, if_exists=ie)
        if what in ("role", "user"):
            return Statement("drop_role", name=self.name_or_string(), if_exists=ie)
        raise InvalidRequest(f"DROP {what.upper()} is not implemented by this stand-in")

    def role_options(self):
        opts = {}
        while True:
            if self.is_kw("hashed"):
                raise InvalidRequest("HASHED PASSWORD is not implemented by this stand-in")
            if self.is_kw("access"):
                raise InvalidRequest("ACCESS TO DATACENTERS is not implemented by this stand-in")
            key = self.expect_kw("password", "login", "superuser", "options")
            if key in opts:
                raise SyntaxError_(f"Multiple definition for property {key.upper()}")
            self.expect("=")
            opts[key] = self.term()
            if not self.accept_kw("and"):
                return opts

    def user_options(self, creating):
        opts = {"login": Literal("boolean", True, "true")} if creating else {}
        if self.accept_kw("with"):
            self.expect_kw("password")
            opts["password"] = self.term()
        su = self.accept_kw("superuser", "nosuperuser")
        if su:
            opts["superuser"] = Literal("boolean", su == "superuser", su)
        return opts

    # ---- access control ----
    def permissions(self):
        if self.accept_kw("all"):
            self.accept_kw("permissions")
            return list(PERMISSIONS)
        perm = self.expect_kw(*PERMISSIONS)
        self.accept_kw("permission")
        return [perm]

    def resource(self):
        if self.accept_kw("all"):
            what = self.expect_kw("keyspaces", "roles", "functions", "mbeans")
            return {"keyspaces": "data", "roles": "roles", "functions": "functions", "mbeans": "mbean"}[what]
        if self.accept_kw("keyspace"):
            return "data/" + self.ident("a keyspace name")
        if self.accept_kw("role"):
            return "roles/" + self.name_or_string()
        self.accept_kw("table", "columnfamily")
        ks, table = self.table_name()
        return ("data", ks, table)  # resolved against the session keyspace later

    def is_permission_grant(self):
        if self.is_kw("all"):
            return True
        return self.is_kw(*PERMISSIONS) and (self.is_kw("on", "permission", k=1))

    def p_grant(self):
        if not self.is_permission_grant():
            role = self.name_or_string()
            self.expect_kw("to")
            return Statement("grant_role", role=role, grantee=self.name_or_string())
        perms = self.permissions()
        self.expect_kw("on")
        res = self.resource()
        self.expect_kw("to")
        return Statement("grant", permissions=perms, resource=res, role=self.name_or_string())

    def p_revoke(self):
        if not self.is_permission_grant():
            role = self.name_or_string()
            self.expect_kw("from")
            return Statement("revoke_role", role=role, grantee=self.name_or_string())
        perms = self.permissions()
        self.expect_kw("on")
        res = self.resource()
        self.expect_kw("from")
        return Statement("revoke", permissions=perms, resource=res, role=self.name_or_string())

    def p_list(self):
        if self.accept_kw("roles"):
            of = self.name_or_string() if self.accept_kw("of") else None
            norec = bool(self.accept_kw("norecursive"))
            return Statement("list_roles", of=of, norecursive=norec)
        if self.accept_kw("users"):
            return Statement("list_users")
        perms = self.permissions()
        res = self.resource() if self.accept_kw("on") else None
        of = self.name_or_string() if self.accept_kw("of") else None
        norec = bool(self.accept_kw("norecursive"))
        return Statement("list_permissions", permissions=perms, resource=res, of=of, norecursive=norec)


def parse(text):
    return Parser(text).parse()
