#!/usr/bin/env python3
"""Writes golden.json and golden.chain from the rules in docs/chain-format.md.

This is a second implementation of the format, in another language, written
from the document only; golden_test.go checks the Go code against its output.
Run from this directory: python3 golden.py
"""
import hashlib
import json
import struct

MAGIC = b"troupe-chain-v1\n"


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def body(seq, parent, kind, op, time, data):
    k, o = kind.encode(), op.encode()
    return (struct.pack(">Q", seq) + parent
            + struct.pack(">I", len(k)) + k
            + struct.pack(">I", len(o)) + o
            + struct.pack(">q", time)
            + struct.pack(">I", len(data)) + data)


def event(name, seq, parent, kind, op, time, data):
    b = body(seq, parent, kind, op, time, data)
    h = hashlib.sha256(MAGIC + b).digest()
    full = b + h
    record = struct.pack(">II", len(full), crc32c(full)) + full
    return {
        "name": name, "seq": seq, "parent": parent.hex(), "kind": kind, "op": op,
        "time": time, "data_hex": data.hex(), "hash": h.hex(), "record_hex": record.hex(),
    }


def chain(name, first_parent, first_seq, specs):
    events, parent, seq = [], first_parent, first_seq
    for (ename, kind, op, time, data) in specs:
        e = event(ename, seq, parent, kind, op, time, data)
        events.append(e)
        parent, seq = bytes.fromhex(e["hash"]), seq + 1
    return {"name": name, "events": events}


main = chain("main", bytes(32), 0, [
    ("worked example", "ActorStart", "start", 1735787045000000000, b'{"id":"a1"}'),
    ("secret redacted", "RuntimeOperation", "get-env", 1735787045000001000,
     b'{"name":"DB_PASSWORD","value":{"redacted":true}}'),
    ("utf-8 and newline", "LogEvent", "log", 1735787045000002000,
     '{"level":"info","message":"h\u00e9llo\\nworld"}'.encode()),
    ("empty data", "MetricEvent", "record-metric", 1735787045000003000, b""),
    ("binary data", "CustomEvent", "record-event", 1735787045000004000, bytes([0, 255, 16, 10])),
])
segment = chain("segment", hashlib.sha256(b"previous head").digest(), 42, [
    ("segment start, negative time", "SegmentStart", "segment-start", -1, b'{"from":"node-a"}'),
    ("after the segment start", "InitCall", "init", 0, b"{}"),
])

with open("golden.json", "w") as f:
    json.dump({"magic": MAGIC.decode(), "chains": [main, segment]}, f, indent=1, ensure_ascii=False)
    f.write("\n")
with open("golden.chain", "wb") as f:
    f.write(MAGIC + b"".join(bytes.fromhex(e["record_hex"]) for e in main["events"]))
