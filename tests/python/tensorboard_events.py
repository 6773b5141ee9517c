# SPDX-License-Identifier: GPL-3.0-or-later
"""Reads a run folder's TensorBoard event files as TensorBoard does and prints their scalars as JSON.

Usage: tensorboard_events.py RUN_DIR [--dump DIR]  (with the protoc-generated data/tensorboard_event_pb2
on PYTHONPATH; --dump writes each image as DIR/TAG-STEP.png)

Every record's framing is checked independently of GW Studio: the length's and the data's masked
CRC-32C (computed here from the polynomial), then the Event is parsed with python3-protobuf. Files are
read in name order (their names start with the creation time); a SessionLog START at step S drops the
scalars read so far at S or later, as TensorBoard's purge of orphaned data does. Output:
{"file_versions": [...], "restarts": [step, ...], "scalars": {tag: [[step, value], ...]},
 "images": {tag: [[step, width, height, png_bytes], ...]}}
"""
import glob
import json
import os
import struct
import sys

from data import tensorboard_event_pb2 as pb


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # 0x1EDC6F41 reflected
        table.append(c)
    return table


TABLE = crc32c_table()


def masked_crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if masked_crc32c(header) != length_crc:
            sys.exit(f"{path}: record at byte {at}: the length's CRC-32C does not match")
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if len(body) != length or masked_crc32c(body) != body_crc:
            sys.exit(f"{path}: record at byte {at}: the data's CRC-32C does not match")
        yield body
        at += 16 + length


def main():
    run = sys.argv[1]
    dump = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--dump" else None
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    if not files:
        sys.exit(f"{run}: no events.out.tfevents.* file")
    versions, restarts, scalars, images = [], [], {}, {}
    for path in files:
        for i, body in enumerate(records(path)):
            e = pb.Event()
            e.ParseFromString(body)
            if i == 0:
                versions.append(e.file_version)
                continue
            kind = e.WhichOneof("what")
            if kind == "session_log" and e.session_log.status == pb.SessionLog.START:
                restarts.append(e.step)
                for series in (scalars, images):
                    for tag in series:
                        series[tag] = [p for p in series[tag] if p[0] < e.step]
            elif kind == "summary":
                for v in e.summary.value:
                    if v.WhichOneof("value") == "simple_value":
                        scalars.setdefault(v.tag, []).append([e.step, v.simple_value])
                    elif v.WhichOneof("value") == "image":
                        if dump:
                            os.makedirs(dump, exist_ok=True)
                            name = f"{v.tag.replace('/', '-')}-{e.step}.png"
                            with open(os.path.join(dump, name), "wb") as out:
                                out.write(v.image.encoded_image_string)
                        images.setdefault(v.tag, []).append([e.step, v.image.width, v.image.height,
                                                             len(v.image.encoded_image_string)])
    json.dump({"file_versions": versions, "restarts": restarts, "scalars": scalars, "images": images}, sys.stdout)


if __name__ == "__main__":
    main()
