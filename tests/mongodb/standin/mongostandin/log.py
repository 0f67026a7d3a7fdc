"""Structured log lines in mongod's JSON format (one object per line) to
systemLog.path or standard output. Callers pass only values that are safe
to log: never a password, key or SASL payload.
"""
import datetime
import json
import os
import sys
import threading

# Message ids mongod itself uses for the lines tools look for; other lines use 0.
KNOWN_IDS = {
    "Waiting for connections": 23016,
    "Connection accepted": 22943,
    "Connection ended": 22944,
    "Successfully authenticated": 20250,
    "Authentication failed": 20249,
    "Received interrupt request": 23377,
    "Now exiting": 20626,
    "Shutting down": 4784900,
}


class Logger:
    def __init__(self, path=None, append=False, verbosity_getter=lambda: 0):
        self.lock = threading.Lock()
        self.verbosity = verbosity_getter
        self.path = path
        self.stream = None
        if path:
            if os.path.exists(path) and not append:
                stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
                os.replace(path, f"{path}.{stamp}")
            self.stream = open(path, "a", encoding="utf-8", buffering=1)
        else:
            self.stream = sys.stdout

    def reopen(self):
        if self.path:
            with self.lock:
                self.stream.close()
                self.stream = open(self.path, "a", encoding="utf-8", buffering=1)

    def log(self, severity, component, ctx, msg, attr=None, level=0):
        if severity == "D" and level > self.verbosity():
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        entry = {"t": {"$date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+00:00"},
                 "s": severity if severity != "D" else f"D{level}", "c": component,
                 "id": KNOWN_IDS.get(msg, 0), "ctx": ctx, "msg": msg}
        if attr:
            entry["attr"] = attr
        line = json.dumps(entry, default=str, ensure_ascii=False)
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def info(self, component, ctx, msg, attr=None):
        self.log("I", component, ctx, msg, attr)

    def warning(self, component, ctx, msg, attr=None):
        self.log("W", component, ctx, msg, attr)

    def error(self, component, ctx, msg, attr=None):
        self.log("E", component, ctx, msg, attr)

    def debug(self, level, component, ctx, msg, attr=None):
        self.log("D", component, ctx, msg, attr, level)

    def close(self):
        with self.lock:
            if self.stream is not sys.stdout:
                self.stream.close()
