"""mongod's startup options: the command-line flags and the YAML config file
(the subset of YAML mongod.conf files use), merged into dotted option names.
Unknown options are refused the way mongod refuses them; nothing is guessed.
"""
import re

# dotted name -> type ("str", "int", "bool", "float", "map")
OPTIONS = {
    "net.port": "int",
    "net.bindIp": "str",
    "net.bindIpAll": "bool",
    "net.maxIncomingConnections": "int",
    "net.ipv6": "bool",
    "net.unixDomainSocket.enabled": "bool",
    "storage.dbPath": "str",
    "storage.engine": "str",
    "storage.journal.enabled": "bool",
    "storage.directoryPerDB": "bool",
    "storage.syncPeriodSecs": "float",
    "storage.wiredTiger.engineConfig.cacheSizeGB": "float",
    "security.authorization": "str",
    "security.keyFile": "str",
    "security.clusterAuthMode": "str",
    "security.javascriptEnabled": "bool",
    "replication.replSetName": "str",
    "replication.oplogSizeMB": "int",
    "replication.enableMajorityReadConcern": "bool",
    "systemLog.path": "str",
    "systemLog.destination": "str",
    "systemLog.logAppend": "bool",
    "systemLog.logRotate": "str",
    "systemLog.verbosity": "int",
    "systemLog.quiet": "bool",
    "systemLog.timeStampFormat": "str",
    "processManagement.pidFilePath": "str",
    "processManagement.fork": "bool",
    "processManagement.timeZoneInfo": "str",
    "operationProfiling.mode": "str",
    "operationProfiling.slowOpThresholdMs": "int",
    "setParameter": "map",
}

# flag -> (dotted name, value for a flag without an argument, or None if it takes one)
FLAGS = {
    "--port": ("net.port", None),
    "--bind_ip": ("net.bindIp", None),
    "--bind_ip_all": ("net.bindIpAll", True),
    "--maxConns": ("net.maxIncomingConnections", None),
    "--ipv6": ("net.ipv6", True),
    "--nounixsocket": ("net.unixDomainSocket.enabled", False),
    "--dbpath": ("storage.dbPath", None),
    "--storageEngine": ("storage.engine", None),
    "--journal": ("storage.journal.enabled", True),
    "--nojournal": ("storage.journal.enabled", False),
    "--directoryperdb": ("storage.directoryPerDB", True),
    "--syncdelay": ("storage.syncPeriodSecs", None),
    "--wiredTigerCacheSizeGB": ("storage.wiredTiger.engineConfig.cacheSizeGB", None),
    "--auth": ("security.authorization", "enabled"),
    "--noauth": ("security.authorization", "disabled"),
    "--keyFile": ("security.keyFile", None),
    "--clusterAuthMode": ("security.clusterAuthMode", None),
    "--noscripting": ("security.javascriptEnabled", False),
    "--replSet": ("replication.replSetName", None),
    "--oplogSize": ("replication.oplogSizeMB", None),
    "--logpath": ("systemLog.path", None),
    "--logappend": ("systemLog.logAppend", True),
    "--quiet": ("systemLog.quiet", True),
    "--pidfilepath": ("processManagement.pidFilePath", None),
    "--fork": ("processManagement.fork", True),
    "--slowms": ("operationProfiling.slowOpThresholdMs", None),
    "--profile": ("operationProfiling.mode", None),
}


class OptionsError(Exception):
    """Bad startup options: mongod prints the message and exits with code 2."""


# ---- a YAML subset: block mappings, block and flow sequences, scalars, comments ----

def _strip_comment(line):
    out, quote = [], None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(c)
    return "".join(out).rstrip()


def _scalar(text, where):
    text = text.strip()
    if not text or text in ("~", "null", "Null", "NULL"):
        return None
    if text[0] == '"':
        if len(text) < 2 or text[-1] != '"':
            raise OptionsError(f"Error parsing YAML config file: unterminated string at {where}")
        body = text[1:-1]
        escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/", "0": "\0"}
        out, i = [], 0
        while i < len(body):
            if body[i] == "\\":
                if i + 1 >= len(body) or body[i + 1] not in escapes:
                    raise OptionsError(f"Error parsing YAML config file: unknown escape at {where}")
                out.append(escapes[body[i + 1]])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "".join(out)
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise OptionsError(f"Error parsing YAML config file: unterminated string at {where}")
        return text[1:-1].replace("''", "'")
    if text[0] == "[":
        if text[-1] != "]":
            raise OptionsError(f"Error parsing YAML config file: unterminated sequence at {where}")
        inner = text[1:-1].strip()
        return [_scalar(p, where) for p in _split_flow(inner)] if inner else []
    if text[0] == "{":
        raise OptionsError(f"Error parsing YAML config file: flow mappings are not supported at {where}")
    if text in ("true", "True", "TRUE", "yes", "Yes", "on", "On"):
        return True
    if text in ("false", "False", "FALSE", "no", "No", "off", "Off"):
        return False
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return text


def _split_flow(text):
    parts, depth, quote, cur = [], 0, None, []
    for c in text:
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    parts.append("".join(cur))
    return parts


def parse_yaml(text, name="config file"):
    """A nested dict from a YAML document made of mappings, sequences and scalars."""
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise OptionsError(f"Error parsing YAML config file: tab indentation at line {n}")
        line = _strip_comment(raw)
        if line.strip() in ("", "---", "..."):
            continue
        lines.append((len(line) - len(line.lstrip(" ")), line.strip(), n))
    root, _ = _parse_block(lines, 0, 0, name)
    return root if root is not None else {}


def _parse_block(lines, i, indent, name):
    if i >= len(lines):
        return None, i
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        seq = []
        while i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
            seq.append(_scalar(lines[i][1][1:], f"line {lines[i][2]}"))
            i += 1
        return seq, i
    mapping = {}
    while i < len(lines):
        col, text, n = lines[i]
        if col < indent:
            break
        if col > indent:
            raise OptionsError(f"Error parsing YAML config file: bad indentation at line {n}")
        m = re.match(r"""^("[^"]*"|'[^']*'|[^:]+?)\s*:(\s+(.*))?$""", text)
        if not m:
            raise OptionsError(f"Error parsing YAML config file: expected 'key: value' at line {n}")
        key = m.group(1).strip("\"'")
        if key in mapping:
            raise OptionsError(f"Error parsing YAML config file: duplicate key {key} at line {n}")
        rest = m.group(3)
        i += 1
        if rest is not None and rest.strip() != "":
            mapping[key] = _scalar(rest, f"line {n}")
        elif i < len(lines) and lines[i][0] > col:
            mapping[key], i = _parse_block(lines, i, lines[i][0], name)
        elif i < len(lines) and lines[i][0] == col and lines[i][1].startswith("-"):
            mapping[key], i = _parse_block(lines, i, col, name)
        else:
            mapping[key] = None
    return mapping, i


def _flatten(tree, prefix, out):
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        if name == "setParameter":
            if not isinstance(value, dict):
                raise OptionsError("setParameter must be a mapping of parameter names to values")
            out[name] = dict(value)
        elif isinstance(value, dict) and name not in OPTIONS:
            _flatten(value, name, out)
        else:
            out[name] = value


def _coerce(name, value):
    kind = OPTIONS.get(name)
    if kind is None:
        raise OptionsError(f"Unrecognized option: {name}")
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind == "str":
            if isinstance(value, (dict, list)) or value is None:
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise OptionsError(f"Bad value for parameter \"{name}\": {value!r}") from None
    return value


class Options:
    """The merged startup options, and argv as given (for getCmdLineOpts)."""

    def __init__(self, values, argv, config_file):
        self.values = values
        self.argv = list(argv)
        self.config_file = config_file

    def get(self, name, default=None):
        return self.values.get(name, default)

    def parsed(self):
        """The nested `parsed` document getCmdLineOpts reports."""
        tree = {}
        if self.config_file:
            tree["config"] = self.config_file
        for name, value in self.values.items():
            node = tree
            parts = name.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        return tree


def parse_args(argv):
    """Options from argv (argv[0] is the program name). Raises OptionsError.
    Returns (options, action) where action is None, "version" or "help"."""
    cli, set_params, config_file = {}, {}, None
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        if arg in ("--version", "-h", "--help"):
            return None, "version" if arg == "--version" else "help"
        if re.fullmatch(r"-v+", arg):
            cli["systemLog.verbosity"] = len(arg) - 1
            i += 1
            continue
        if flag in ("--config", "-f"):
            value, i = (inline, i + 1) if eq else _take(args, i, flag)
            config_file = value
            continue
        if flag == "--setParameter":
            value, i = (inline, i + 1) if eq else _take(args, i, flag)
            key, sep, val = value.partition("=")
            if not sep or not key:
                raise OptionsError(f"Illegal --setParameter parameter: \"{value}\"")
            set_params[key] = val
            continue
        if flag not in FLAGS:
            raise OptionsError(f"Error parsing command line: unrecognised option '{flag}'")
        name, constant = FLAGS[flag]
        if constant is not None:
            if eq:
                raise OptionsError(f"Error parsing command line: option '{flag}' does not take any arguments")
            cli[name] = constant
            i += 1
        else:
            value, i = (inline, i + 1) if eq else _take(args, i, flag)
            cli[name] = _coerce(name, value)
    values = {}
    if config_file is not None:
        try:
            with open(config_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise OptionsError(f"Error reading config file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise OptionsError("Error reading config file: not UTF-8") from None
        flat = {}
        _flatten(parse_yaml(text, config_file), "", flat)
        for name, value in flat.items():
            values[name] = _coerce(name, value)
    values.update(cli)
    if set_params:
        merged = dict(values.get("setParameter", {}))
        merged.update(set_params)
        values["setParameter"] = merged
    _validate(values)
    return Options(values, argv, config_file), None


def _take(args, i, flag):
    if i + 1 >= len(args):
        raise OptionsError(f"Error parsing command line: the required argument for option '{flag}' is missing")
    return args[i + 1], i + 2


def _validate(values):
    port = values.get("net.port", 27017)
    if not 0 <= port <= 65535:
        raise OptionsError(f"Bad value for net.port: {port} is not in [0, 65535]")
    auth = values.get("security.authorization")
    if auth is not None and auth not in ("enabled", "disabled"):
        raise OptionsError(f"Bad value for security.authorization: {auth}")
    mode = values.get("security.clusterAuthMode")
    if mode is not None and mode != "keyFile":
        raise OptionsError(f"security.clusterAuthMode {mode} is not supported by the mongod stand-in (keyFile only)")
    dest = values.get("systemLog.destination")
    if dest is not None and dest != "file":
        raise OptionsError(f"systemLog.destination {dest} is not supported by the mongod stand-in (file only)")
    if dest == "file" and not values.get("systemLog.path"):
        raise OptionsError("systemLog.path is required if systemLog.destination is to a file")
    if values.get("processManagement.fork") and not values.get("systemLog.path"):
        raise OptionsError("--fork has to be used with --logpath or --syslog")
    if values.get("storage.directoryPerDB"):
        raise OptionsError("storage.directoryPerDB is not supported by the mongod stand-in")
    engine = values.get("storage.engine")
    if engine is not None and engine != "wiredTiger":
        raise OptionsError(f"Cannot start server with an unknown storage engine: {engine}")
    name = values.get("replication.replSetName")
    if name is not None and (not name or "/" in name):
        raise OptionsError("bad --replSet config string")
