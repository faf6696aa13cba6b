#!/usr/bin/env python3
"""Writes the Theater chain fixtures by the export's rule, independently of
the Go code: each hash is SHA-1 of the compact JSON (Python's
separators=(",", ":") and ensure_ascii=False escape exactly as serde_json
does) of the event with hash [] and parent_hash = the previous hash.
Run from this directory: python3 gen.py
"""
import hashlib
import json


def canonical(event_type, data, parent):
    obj = {"hash": [], "parent_hash": parent, "event_type": event_type, "data": list(data)}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build(specs):
    events, parent = [], None
    for event_type, data in specs:
        h = list(hashlib.sha1(canonical(event_type, data, parent)).digest())
        events.append({"hash": h, "parent_hash": parent, "event_type": event_type, "data": list(data)})
        parent = h
    return events


specs = [
    ("init", b'{"count":0}'),
    ("runtime-operation", b'{"op":"get-env","name":"LOG_LEVEL"}'),
    ("user_login", b"User logged in"),
    ("h\u00e9llo \u2192 \u4e16\u754c", bytes(range(0, 256, 17))),
    ("ctl\b\f\n\r\t\x01\x1f\x7f \"q\" \\ /", b""),
    ("shutdown", b"\x00\xff"),
]
valid = build(specs)


def dump(name, events, indent=None):
    with open(name, "w", encoding="utf-8") as f:
        json.dump(events, f, indent=indent, ensure_ascii=False)
        f.write("\n")


dump("valid.json", valid, indent=2)
dump("valid-compact.json", valid)

tampered = json.loads(json.dumps(valid))
tampered[3]["hash"][5] ^= 1
tampered[4]["parent_hash"] = tampered[3]["hash"]  # keep the link: only event 3's hash is wrong
dump("tampered-hash.json", tampered, indent=2)

data_changed = json.loads(json.dumps(valid))
data_changed[2]["data"][0] ^= 1
dump("tampered-data.json", data_changed, indent=2)

broken = json.loads(json.dumps(valid))
broken[4]["parent_hash"] = broken[2]["hash"]
dump("broken-link.json", broken, indent=2)

# The serialization the first two events are hashed over, for the Go test of
# the serializer itself.
with open("canonical.txt", "wb") as f:
    parent = None
    for event_type, data in specs:
        c = canonical(event_type, data, parent)
        f.write(c + b"\n")
        parent = list(hashlib.sha1(c).digest())
