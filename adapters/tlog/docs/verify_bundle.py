#!/usr/bin/env python3
"""Independent reference verifier for mebyo-tlog proof bundles (see proofs.md).

Written from proofs.md, RFC 9162 and c2sp.org/signed-note alone, to show an
auditor can check mebyo proofs without mebyo code.

    python3 verify_bundle.py '<vkey>' bundle.json

Needs the `cryptography` package for Ed25519. Exit status 0 = valid, 1 =
invalid (the reason on stderr), 2 = usage or unreadable file.

Every check is an explicit `if ...: raise Invalid(...)`, never `assert`:
`python3 -O` removes asserts, and a verifier must not change its verdict with
an interpreter flag. Encodings are checked to be canonical (proofs.md §6).
"""
import base64
import binascii
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_NOTE_BYTES = 16384
MAX_SIGNATURES = 100
MAX_BUNDLE_BYTES = 48 * 1024
MAX_INCLUSION_PATH = 64
MAX_CONSISTENCY_PATH = 65
HEX32 = re.compile(r"[0-9a-f]{64}")
DECIMAL = re.compile(r"0|[1-9][0-9]*")

INCLUSION_FIELDS = {"format", "leaf_index", "event_hash", "tree_size", "proof", "checkpoint"}
CONSISTENCY_FIELDS = {"format", "old_checkpoint", "new_checkpoint", "proof"}


class Invalid(Exception):
    """The bundle, a note or the key is not valid."""


def check(ok, why):
    if not ok:
        raise Invalid(why)


def sha256(b):
    return hashlib.sha256(b).digest()


def node(l, r):
    return sha256(b"\x01" + l + r)


def b64(s):
    """Canonical standard base64 only: padded, no non-zero padding bits."""
    check(isinstance(s, str) and s.isascii(), "base64 is not ASCII text")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Invalid(f"bad base64: {e}") from None
    check(base64.b64encode(raw).decode() == s, "non-canonical base64")
    return raw


def parse_vkey(vkey):
    parts = vkey.split("+", 2)
    check(len(parts) == 3, "a vkey is <name>+<key ID>+<base64 key>")
    name, key_id, key = parts
    raw = b64(key)
    check(name != "", "the vkey has no name")
    check(len(raw) == 33 and raw[0] == 0x01, "not an Ed25519 vkey")
    check(re.fullmatch(r"[0-9a-f]{8}", key_id) is not None, "key ID is not 8 lowercase hex digits")
    check(sha256(name.encode() + b"\n" + raw)[:4].hex() == key_id, "key ID mismatch")
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(raw[1:])


def open_checkpoint(note, vkey):
    """proofs.md §3: returns (origin, size, root) of a note signed by `vkey`."""
    name, key_id, pub = parse_vkey(vkey)
    check(isinstance(note, str), "a checkpoint is a string")
    check(len(note.encode()) <= MAX_NOTE_BYTES, "note over 16 KiB")
    check(all(c == "\n" or (ord(c) >= 0x20 and ord(c) != 0x7F) for c in note),
          "control character in the note")
    split = note.rfind("\n\n")
    check(split >= 0, "no blank line before the signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    check(sigs.endswith("\n") and sigs != "\n", "signature lines must end in a newline")
    lines = sigs[:-1].split("\n")
    check(len(lines) <= MAX_SIGNATURES, "more than 100 signature lines")
    ok = 0
    for line in lines:
        check(line.startswith("\u2014 "), "a signature line starts with an em dash and a space")
        fields = line[2:].split(" ")
        check(len(fields) == 2 and fields[0] != "", "a signature line is: name, space, base64")
        sig_name, sig_b64 = fields
        raw = b64(sig_b64)
        check(len(raw) >= 5, "signature too short")
        if sig_name != name or raw[:4] != key_id:
            continue  # someone else's signature (e.g. a witness): ignore
        check(len(raw) == 68, "an Ed25519 signature is 4 + 64 bytes")
        try:
            pub.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise Invalid("bad signature") from None
        ok += 1
    check(ok > 0, "no signature by the trusted key")
    body = text[:-1].split("\n")
    check(len(body) >= 3, "a checkpoint has origin, size and root lines")
    origin, size, root_b64 = body[0], body[1], body[2]
    check(origin != "", "empty origin")
    check(origin == name, "the checkpoint is of another log than the key's")
    check(DECIMAL.fullmatch(size) is not None, "size is not canonical decimal")
    root = b64(root_b64)
    check(len(root) == 32, "root is not 32 bytes")
    return origin, int(size), root


def hashes(value, limit):
    check(isinstance(value, list), "proof is not a list")
    check(len(value) <= limit, f"proof over {limit} hashes")
    for h in value:
        check(isinstance(h, str) and HEX32.fullmatch(h) is not None,
              "a proof hash is 64 lowercase hex digits")
    return [bytes.fromhex(h) for h in value]


def integer(value, what):
    # bool is an int in Python; JSON true is not a number.
    check(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64,
          f"{what} is not an unsigned 64-bit integer")
    return value


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
    check(isinstance(b, dict), "a bundle is a JSON object")
    fmt = b.get("format")
    if fmt == "mebyo-tlog-inclusion-v1":
        check(set(b) == INCLUSION_FIELDS, f"fields must be exactly {sorted(INCLUSION_FIELDS)}")
        origin, size, root = open_checkpoint(b["checkpoint"], vkey)
        check(integer(b["tree_size"], "tree_size") == size, "tree_size differs from the signed size")
        index = integer(b["leaf_index"], "leaf_index")
        event_hash = b["event_hash"]
        check(isinstance(event_hash, str) and HEX32.fullmatch(event_hash) is not None,
              "event_hash is not 64 lowercase hex digits")
        leaf = sha256(b"\x00" + bytes.fromhex(event_hash))
        path = hashes(b["proof"], MAX_INCLUSION_PATH)
        check(verify_inclusion(leaf, index, size, path, root), "the inclusion proof does not verify")
        return f"event {event_hash} is leaf {index} of {origin} at size {size}"
    if fmt == "mebyo-tlog-consistency-v1":
        check(set(b) == CONSISTENCY_FIELDS, f"fields must be exactly {sorted(CONSISTENCY_FIELDS)}")
        o1, m, r1 = open_checkpoint(b["old_checkpoint"], vkey)
        o2, n, r2 = open_checkpoint(b["new_checkpoint"], vkey)
        check(o1 == o2, "different logs")
        path = hashes(b["proof"], MAX_CONSISTENCY_PATH)
        check(verify_consistency(m, n, r1, r2, path), "the consistency proof does not verify")
        return f"{o1}: size {n} extends size {m}"
    raise Invalid("unknown format")


def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Invalid("a field appears twice")
    return dict(pairs)


def load(path):
    with open(path, "rb") as f:
        raw = f.read(MAX_BUNDLE_BYTES + 1)
    check(len(raw) <= MAX_BUNDLE_BYTES, "bundle over 48 KiB")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as e:
        raise Invalid(f"not a JSON bundle: {e}") from None


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print("OK:", verify_bundle(load(argv[2]), argv[1]))
        return 0
    except Invalid as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cannot read {argv[2]}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
