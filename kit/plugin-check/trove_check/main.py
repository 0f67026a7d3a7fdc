"""trove-plugin-check: run the conformance battery against one plugin.

usage: trove-plugin-check [--parts PART,...] [--keep] PLUGIN.so DESCRIPTION

PLUGIN.so is the built plugin; DESCRIPTION is a Python file defining
DATASTORE (see trove_check/datastore.py): how to start the engine and how to
log in with its own client. The command starts the datastore's servers, a
control plane and agents loading the plugin, and runs every part the plugin
claims: access, config, backup, replication, cluster, logs. It prints each
check as PASS or FAIL (with the reason) and the logs of a part that failed,
and exits 0 when every check passed, 1 when one failed, 2 on a usage error.

--parts   run only these parts (comma-separated)
--keep    keep the temporary directories (also TROVE_KEEP_TMP=1)
"""
import importlib.util
import os
import sys

from .battery import PARTS, Report, install_plugin, plugin_capabilities, run_part
from .runtime import Env


def usage(msg):
    print(f"trove-plugin-check: {msg}\n\n{__doc__}", file=sys.stderr)
    return 2


def load_description(path):
    spec = importlib.util.spec_from_file_location("trove_check_description", path)
    if not spec or not spec.loader:
        raise ImportError(f"{path} is not a Python file")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "DATASTORE"):
        raise ImportError(f"{path} defines no DATASTORE")
    return module.DATASTORE


def parse(argv):
    parts, keep, rest = list(PARTS), False, []
    i = 0
    while i < len(argv):
        if argv[i] == "--parts" and i + 1 < len(argv):
            parts = [x for x in argv[i + 1].split(",") if x]
            i += 2
        elif argv[i] == "--keep":
            keep, i = True, i + 1
        elif argv[i] in ("-h", "--help"):
            return None
        else:
            rest.append(argv[i])
            i += 1
    return parts, keep, rest


def skip_reason(name, ds, caps):
    missing = sorted(PARTS[name][2] - caps)
    if missing:
        return f"the plugin does not offer {', '.join(missing)}"
    if name == "config" and not (ds.live_parameter and ds.restart_parameter):
        return "the description names no live and restart parameters"
    return None


def main(argv=None):
    parsed = parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        print(__doc__)
        return 0
    parts, keep, rest = parsed
    if len(rest) != 2:
        return usage("give the plugin and the datastore description")
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        return usage(f"unknown part {', '.join(unknown)} (parts: {', '.join(PARTS)})")
    plugin_so, description = rest
    if not os.path.isfile(plugin_so):
        return usage(f"{plugin_so}: no such file")
    try:
        ds = load_description(description)
    except Exception as exc:
        return usage(f"cannot load {description}: {exc}")
    ds.plugin = ds.plugin or os.path.basename(plugin_so).rsplit(".so", 1)[0]
    report = Report(sys.stdout)
    with Env(prefix=f"trove-check-{ds.plugin}-", keep=keep) as outer:
        plugin_dir = install_plugin(plugin_so, ds.plugin, outer)
        try:
            caps, info = plugin_capabilities(ds, plugin_dir, keep, sys.stdout)
            report.record("load", f"an agent loads {ds.plugin} and connects", True)
        except Exception as exc:
            report.record("load", f"an agent loads {ds.plugin} and connects", False, f"{type(exc).__name__}: {exc}")
            return 1
        plugin = info.get("plugin") or {}
        abi = info.get("abi") or {}
        print(f"plugin {plugin.get('name')} {plugin.get('version')}, ABI {abi.get('major')}.{abi.get('minor')}, "
              f"{len(caps)} operations", flush=True)
        for name in parts:
            why = skip_reason(name, ds, caps)
            if why:
                print(f"SKIP {name}: {why}", flush=True)
                continue
            run_part(report, name, ds, plugin_dir, caps, keep)
    print(f"{report.passed} checks passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0
