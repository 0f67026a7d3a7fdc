"""The stand-in's files: SSTable-like data files (one immutable generation
per flush, named and laid out as Cassandra names them, so a backup copies real
bytes) and a commit log that makes unflushed writes survive a crash.

Data file (nb-<gen>-big-Data.db): the magic line, a length-prefixed JSON
header naming the table and its columns, a row count, then each row as
[short column count] and per column [int length][bytes] (-1 for null).
Digest.crc32 holds the CRC32 of Data.db in decimal, TOC.txt lists the
components; both as Cassandra writes them.
"""
import json
import os
import re
import struct
import time
import zlib

MAGIC = b"STANDIN-SSTABLE\n"
COMPONENTS = ("Data.db", "Digest.crc32", "TOC.txt")
_NAME = re.compile(r"^nb-(\d+)-big-Data\.db$")


class CorruptSSTable(Exception):
    pass


def sstable_paths(table_dir, generation):
    return {c: os.path.join(table_dir, f"nb-{generation}-big-{c}") for c in COMPONENTS}


def list_generations(table_dir):
    """The generations with a Data.db in table_dir, oldest first."""
    try:
        names = os.listdir(table_dir)
    except FileNotFoundError:
        return []
    gens = []
    for n in names:
        m = _NAME.match(n)
        if m:
            gens.append(int(m.group(1)))
    return sorted(gens)


def write_sstable(table_dir, generation, header, rows):
    """Writes rows (lists of bytes-or-None) as generation `generation`; returns the Data.db path."""
    os.makedirs(table_dir, exist_ok=True)
    paths = sstable_paths(table_dir, generation)
    head = json.dumps(header, sort_keys=True).encode()
    parts = [MAGIC, struct.pack(">I", len(head)), head, struct.pack(">I", len(rows))]
    for row in rows:
        parts.append(struct.pack(">H", len(row)))
        for cell in row:
            parts.append(struct.pack(">i", -1) if cell is None else struct.pack(">i", len(cell)) + cell)
    data = b"".join(parts)
    tmp = paths["Data.db"] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, paths["Data.db"])
    with open(paths["Digest.crc32"], "w") as f:
        f.write(str(zlib.crc32(data)))
    with open(paths["TOC.txt"], "w") as f:
        f.write("".join(c + "\n" for c in COMPONENTS))
    return paths["Data.db"]


def read_sstable(path):
    """(header, rows) from a Data.db; raises CorruptSSTable on any inconsistency."""
    with open(path, "rb") as f:
        data = f.read()
    digest = path[:-len("Data.db")] + "Digest.crc32"
    if os.path.exists(digest):
        with open(digest) as f:
            want = f.read().strip()
        if want != str(zlib.crc32(data)):
            raise CorruptSSTable(f"{path}: digest mismatch")
    if not data.startswith(MAGIC):
        raise CorruptSSTable(f"{path}: not a stand-in SSTable")
    pos = len(MAGIC)

    def take(n):
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise CorruptSSTable(f"{path}: truncated")
        b = data[pos:pos + n]
        pos += n
        return b

    (hlen,) = struct.unpack(">I", take(4))
    try:
        header = json.loads(take(hlen))
    except ValueError:
        raise CorruptSSTable(f"{path}: bad header")
    (count,) = struct.unpack(">I", take(4))
    rows = []
    for _ in range(count):
        (ncols,) = struct.unpack(">H", take(2))
        row = []
        for _ in range(ncols):
            (n,) = struct.unpack(">i", take(4))
            row.append(None if n < 0 else take(n))
        rows.append(row)
    if pos != len(data):
        raise CorruptSSTable(f"{path}: trailing bytes")
    return header, rows


def remove_generation(table_dir, generation):
    for p in sstable_paths(table_dir, generation).values():
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class CommitLog:
    """Append-only segments of [int length][int crc32][JSON record]."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.file = None

    def _segments(self):
        names = [n for n in os.listdir(self.dir) if n.startswith("CommitLog-7-") and n.endswith(".log")]
        return sorted(os.path.join(self.dir, n) for n in names)

    def append(self, record):
        if self.file is None:
            name = f"CommitLog-7-{int(time.time() * 1000)}.log"
            self.file = open(os.path.join(self.dir, name), "ab")
        payload = json.dumps(record, sort_keys=True).encode()
        self.file.write(struct.pack(">II", len(payload), zlib.crc32(payload)) + payload)
        self.file.flush()

    def replay(self):
        """Every intact record, oldest first; a torn tail ends its segment."""
        for path in self._segments():
            with open(path, "rb") as f:
                data = f.read()
            pos = 0
            while pos + 8 <= len(data):
                n, crc = struct.unpack(">II", data[pos:pos + 8])
                payload = data[pos + 8:pos + 8 + n]
                if len(payload) != n or zlib.crc32(payload) != crc:
                    break
                yield json.loads(payload)
                pos += 8 + n

    def discard(self):
        """Drops every segment (after a flush has made them redundant)."""
        if self.file is not None:
            self.file.close()
            self.file = None
        for path in self._segments():
            os.unlink(path)

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None
