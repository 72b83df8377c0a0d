#!/usr/bin/env python3
"""Independent reference verifier for mebyo-tlog proof bundles (see proofs.md).

Written from proofs.md, RFC 9162 and c2sp.org/signed-note alone, to show an
auditor can check mebyo proofs without mebyo code.

    python3 verify_bundle.py '<vkey>' bundle.json

Needs the `cryptography` package for Ed25519. Exit status 0 = valid.
"""
import base64
import hashlib
import json
import re
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha256(b):
    return hashlib.sha256(b).digest()


def node(l, r):
    return sha256(b"\x01" + l + r)


def b64(s):
    return base64.b64decode(s, validate=True)


def parse_vkey(vkey):
    name, key_id, key = vkey.split("+", 2)
    raw = b64(key)
    assert len(raw) == 33 and raw[0] == 0x01, "not an Ed25519 vkey"
    assert re.fullmatch(r"[0-9a-f]{8}", key_id)
    assert sha256(name.encode() + b"\n" + raw)[:4].hex() == key_id, "key ID mismatch"
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(raw[1:])


def open_checkpoint(note, vkey):
    name, key_id, pub = parse_vkey(vkey)
    assert len(note.encode()) <= 16384
    split = note.rindex("\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    assert sigs.endswith("\n")
    ok = 0
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 ")
        sig_name, sig_b64 = line[2:].split(" ", 1)
        raw = b64(sig_b64)
        if sig_name != name or raw[:4] != key_id:
            continue  # someone else's signature (e.g. a witness): ignore
        pub.verify(raw[4:], text.encode())  # raises on a bad signature
        ok += 1
    assert ok > 0, "no signature by the trusted key"
    lines = text[:-1].split("\n")
    origin, size, root = lines[0], lines[1], b64(lines[2])
    assert origin and re.fullmatch(r"0|[1-9][0-9]*", size) and len(root) == 32
    return origin, int(size), root


def hashes(hex_list):
    out = [bytes.fromhex(h) for h in hex_list]
    assert all(len(h) == 32 for h in out)
    return out


def verify_inclusion(leaf, index, size, path, root):  # RFC 9162 §2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, old_root, new_root, path):  # RFC 9162 §2.1.4.2
    if m > n:
        return False
    if m == n:
        return not path and old_root == new_root
    if m == 0:
        return not path and old_root == sha256(b"")
    if not path:
        return False
    if m & (m - 1) == 0:
        path = [old_root] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def verify_bundle(b, vkey):
    if b["format"] == "mebyo-tlog-inclusion-v1":
        origin, size, root = open_checkpoint(b["checkpoint"], vkey)
        assert size == b["tree_size"], "tree_size differs from the signed size"
        leaf = sha256(b"\x00" + bytes.fromhex(b["event_hash"]))
        assert verify_inclusion(leaf, b["leaf_index"], size, hashes(b["proof"]), root)
        return f"event {b['event_hash']} is leaf {b['leaf_index']} of {origin} at size {size}"
    if b["format"] == "mebyo-tlog-consistency-v1":
        o1, m, r1 = open_checkpoint(b["old_checkpoint"], vkey)
        o2, n, r2 = open_checkpoint(b["new_checkpoint"], vkey)
        assert o1 == o2, "different logs"
        assert verify_consistency(m, n, r1, r2, hashes(b["proof"]))
        return f"{o1}: size {n} extends size {m}"
    raise ValueError("unknown format")


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        print("OK:", verify_bundle(json.load(f), sys.argv[1]))
