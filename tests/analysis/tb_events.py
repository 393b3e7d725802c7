#!/usr/bin/python3
"""A TensorBoard event-file reader for tests, written from the formats alone (no tensorboard,
no protobuf package, nothing shared with the C++ writer or tests/trainers/event_reader.h).

    /usr/bin/python3 tests/analysis/tb_events.py RUN/tensorboard [--raw]

prints {tag: [[step, value], ...]} as JSON: what TensorBoard's scalar view holds after reading
the folder's event files in name order (--raw: every scalar event, nothing purged).

- TFRecord framing: uint64 LE length, masked CRC-32C of those 8 bytes, the data, masked
  CRC-32C of the data; both CRCs are checked, a truncated or corrupt record is an error.
- Protobuf, decoded by hand: Event{wall_time 1 double, step 2 int64, summary 5, session_log 6},
  Summary{value 1}, Value{tag 1, simple_value 2 float}, SessionLog{status 1} (START = 1).
- TensorBoard's purge: a SessionLog START at step s drops every point already read at a step
  >= s, for every tag. TensorBoard also purges a tag when its step goes back; that rule is left
  out on purpose, so a writer that forgets the START shows its duplicates here.
"""
import json
import os
import struct
import sys


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli, reflected
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """The data of each TFRecord in the file; ValueError naming the offset on any inconsistency."""
    with open(path, "rb") as f:
        blob = f.read()
    out, at = [], 0
    while at < len(blob):
        if len(blob) - at < 12:
            raise ValueError(f"{path}: truncated record header at byte {at}")
        head = blob[at:at + 8]
        (n,) = struct.unpack("<Q", head)
        if struct.unpack("<I", blob[at + 8:at + 12])[0] != masked_crc32c(head):
            raise ValueError(f"{path}: bad length CRC at byte {at}")
        if len(blob) - at - 12 < n + 4:
            raise ValueError(f"{path}: truncated record data at byte {at}")
        data = blob[at + 12:at + 12 + n]
        if struct.unpack("<I", blob[at + 12 + n:at + 16 + n])[0] != masked_crc32c(data):
            raise ValueError(f"{path}: bad data CRC at byte {at}")
        out.append(data)
        at += 16 + n
    return out


def decode(msg):
    """A protobuf message as {field number: [values]}: varints as ints, fixed64/fixed32 as raw
    little-endian bytes (8 or 4), length-delimited fields as bytes."""
    fields, at = {}, 0

    def varint():
        nonlocal at
        v, shift = 0, 0
        while True:
            if at >= len(msg) or shift > 63:
                raise ValueError("bad varint")
            b = msg[at]
            at += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7

    while at < len(msg):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = msg[at:at + size], at + size
        elif wire == 2:
            size = varint()
            value, at = msg[at:at + size], at + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if at > len(msg):
            raise ValueError("field runs past the end of its message")
        fields.setdefault(number, []).append(value)
    return fields


def read_events(path):
    """Each event as {wall_time, step, scalars: [(tag, float32 value)], start: bool}."""
    events = []
    for data in read_records(path):
        e = decode(data)
        step = e.get(2, [0])[-1]  # protobuf leaves out a 0
        if step >= 1 << 63:
            step -= 1 << 64  # int64 as a two's-complement varint
        scalars = []
        for summary in e.get(5, []):
            for value in decode(summary).get(1, []):
                v = decode(value)
                if 2 in v:  # simple_value; the config text summary has a tensor instead
                    scalars.append((v[1][-1].decode(), struct.unpack("<f", v[2][-1])[0]))
        start = any(decode(log).get(1, [0])[-1] == 1 for log in e.get(6, []))
        wall = struct.unpack("<d", e[1][-1])[0] if 1 in e else None
        events.append({"wall_time": wall, "step": step, "scalars": scalars, "start": start})
    return events


def event_files(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.startswith("events.out.tfevents."))


def scalars(folder, purge=True):
    """{tag: [(step, value), ...]} in reading order, after TensorBoard's SessionLog START purge."""
    points = {}
    for path in event_files(folder):
        for e in read_events(path):
            if e["start"] and purge:
                for tag in points:
                    points[tag] = [(s, v) for s, v in points[tag] if s < e["step"]]
            for tag, value in e["scalars"]:
                points.setdefault(tag, []).append((e["step"], value))
    return points


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: tb_events.py TENSORBOARD_FOLDER [--raw]")
    print(json.dumps(scalars(sys.argv[1], purge="--raw" not in sys.argv[2:])))
