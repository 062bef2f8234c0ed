#!/usr/bin/env python3
"""Test vectors of the recovery key extension (docs/recovery-key.md, RK.10).

An implementation of RK.1 and RK.2 that shares no code with the server or the
Go and JavaScript clients: HKDF-SHA256 from hashlib/hmac (RFC 5869), AES-256-GCM
from the `cryptography` package, base32 with Python integers.

    python3 docs/recovery_key_vectors.py                > keywrap/testdata/recovery-key-vectors.json
    python3 docs/recovery_key_vectors.py --check keywrap/testdata/recovery-key-vectors.json

Without arguments it prints the vectors as JSON. With --check FILE it
recomputes every vector and parse case of FILE from its inputs, compares the
whole file with what this script prints, and exits 1 on any difference.

Every input is fixed (patterns, or SHA-256 of a label), so the output is the
same on every run.
"""

import argparse
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NS = b"identity.mozilla.com/picl/v1/"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def kw(name):
    return NS + name.encode("ascii")


def hkdf_sha256(ikm, salt, info, length):
    """RFC 5869 HKDF-SHA256; an empty salt is HashLen zero bytes."""
    if not salt:
        salt = b"\x00" * 32
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def check_char(r):
    return ALPHABET[hashlib.sha256(r).digest()[0] >> 3]


def key_string(r):
    """RK.1: 52 characters of int(R) << 4, the check character, 13 groups."""
    assert len(r) == 32
    n = int.from_bytes(r, "big") << 4  # 260 bits
    chars = [ALPHABET[(n >> (5 * (51 - i))) & 31] for i in range(52)]
    chars.append(check_char(r))
    s = "".join(chars)
    groups = [s[i:i + 4] for i in range(0, 48, 4)] + [s[48:]]
    return " ".join(groups)


class ParseError(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def parse_key(s):
    """RK.1 "Reading". Returns R or raises ParseError(length|character|check).

    Lowercase letters are the ASCII ones (Crockford's rules are about ASCII):
    a non-ASCII letter is a character error, whatever it would upper-case to.
    """
    t = []
    for c in s:
        if c in " \t-":
            continue
        if "a" <= c <= "z":
            c = chr(ord(c) - 32)
        c = {"O": "0", "I": "1", "L": "1"}.get(c, c)
        t.append(c)
    if len(t) != 53:
        raise ParseError("length")
    for c in t:
        if c not in ALPHABET:
            raise ParseError("character")
    n = 0
    for c in t[:52]:
        n = n * 32 + ALPHABET.index(c)
    if n & 0xF:
        raise ParseError("check")
    r = (n >> 4).to_bytes(32, "big")
    if check_char(r) != t[52]:
        raise ParseError("check")
    return r


def derive(r, uid, kb, nonce):
    key_id = hkdf_sha256(r, b"", kw("recoveryKeyId"), 16)
    enc_key = hkdf_sha256(r, b"", kw("recoveryData"), 32)
    data = nonce + AESGCM(enc_key).encrypt(nonce, kb, uid)
    assert len(data) == 60
    return {
        "keyString": key_string(r),
        "recoveryKeyId": key_id.hex(),
        "recoveryEncKey": enc_key.hex(),
        "recoveryData": data.hex(),
    }


def label(name, n):
    """n pseudo-random bytes from a label: SHA-256("recovery-key-vectors/" + name)."""
    return hashlib.sha256(("recovery-key-vectors/" + name).encode("ascii")).digest()[:n]


def from_body(body):
    """R whose string starts with the 52 characters body (the last one's low 4 bits zero)."""
    n = 0
    for c in body:
        n = n * 32 + ALPHABET.index(c)
    assert n & 0xF == 0
    return (n >> 4).to_bytes(32, "big")


def vector_inputs():
    out = [
        ("zero", bytes(32), bytes(16), bytes(32), bytes(12)),
        ("ones", b"\xff" * 32, b"\xff" * 16, b"\xff" * 32, b"\xff" * 12),
        ("counting", bytes(range(32)), bytes(range(0x40, 0x50)), bytes(range(0x80, 0xA0)), bytes(range(0xF0, 0xFC))),
        # Every character 1 except the 52nd: the O/I/L parse case uses it.
        ("all-1", from_body("1" * 51 + "0"), bytes(range(16)), bytes(32), bytes(12)),
        # The 52nd character is G (the last bit of R set).
        ("last-bit", bytes(31) + b"\x01", bytes(16), b"\x01" * 32, bytes(11) + b"\x01"),
    ]
    for i in range(1, 5):
        name = "random-%d" % i
        out.append((name, label(name + "/R", 32), label(name + "/uid", 16), label(name + "/kB", 32), label(name + "/nonce", 12)))
    return out


def vectors():
    out = []
    for name, r, uid, kb, nonce in vector_inputs():
        v = {"id": name, "R": r.hex(), "uid": uid.hex(), "kB": kb.hex(), "nonce": nonce.hex()}
        v.update(derive(r, uid, kb, nonce))
        out.append(v)
    return out


def substitute(s, i, c):
    """s (without spaces) with character i replaced by c."""
    return s[:i] + c + s[i + 1:]


def parse_cases(vecs):
    by_id = {v["id"]: v for v in vecs}
    rnd = by_id["random-1"]
    ks = rnd["keyString"]
    flat = ks.replace(" ", "")
    r = rnd["R"]
    ones = by_id["all-1"]
    zero = by_id["zero"]
    last = by_id["last-bit"]

    cases = [
        ("canonical", ks, r),
        ("no-spaces", flat, r),
        ("lowercase", ks.lower(), r),
        ("lowercase-no-spaces", flat.lower(), r),
        ("hyphens", ks.replace(" ", "-"), r),
        ("tabs-and-extra-separators", " \t" + "-\t ".join(ks.split(" ")) + " - ", r),
        ("irregular-groups", " ".join(flat[i:i + 7] for i in range(0, 53, 7)), r),
        ("mixed-case", "".join(c.lower() if i % 2 else c for i, c in enumerate(flat)), r),
        # O for 0, I and L (either case) for 1.
        ("O-for-0", zero["keyString"].replace("0", "O"), zero["R"]),
        ("o-for-0", zero["keyString"].replace("0", "o"), zero["R"]),
        ("I-and-L-for-1", "".join("IiLl1"[i % 5] if c == "1" else c for i, c in enumerate(ones["keyString"])), ones["R"]),
        ("last-bit-G", last["keyString"].lower().replace(" ", ""), last["R"]),
    ]

    # Invalid strings, each with the kind of error of RK.1.
    bad_char = flat[:20] + "U" + flat[21:]
    wrong_check = substitute(flat, 52, ALPHABET[(ALPHABET.index(flat[52]) + 1) % 32])
    # A character of R changed so that the check character no longer fits.
    subst = None
    for c in ALPHABET:
        if c != flat[10]:
            candidate = substitute(flat, 10, c)
            try:
                parse_key(candidate)
            except ParseError:
                subst = candidate
                break
    # The 52nd character with a nonzero padding bit; R and the check
    # character unchanged.
    pad_val = ALPHABET.index(flat[51]) | 1
    padding = substitute(flat, 51, ALPHABET[pad_val])
    pad_val_last = ALPHABET.index(last["keyString"].replace(" ", "")[51]) | 8
    padding_last = substitute(last["keyString"].replace(" ", ""), 51, ALPHABET[pad_val_last])
    # Two adjacent different characters swapped.
    swap = None
    for i in range(51):
        if flat[i] != flat[i + 1]:
            cand = flat[:i] + flat[i + 1] + flat[i] + flat[i + 2:]
            try:
                parse_key(cand)
            except ParseError:
                swap = cand
                break

    errors = [
        ("empty", "", "length"),
        ("only-separators", " -\t- ", "length"),
        ("52-characters", flat[:52], "length"),
        ("54-characters", flat + "0", "length"),
        ("one-group-missing", " ".join(ks.split(" ")[1:]), "length"),
        ("trailing-newline", ks + "\n", "length"),
        ("nbsp-separator", ks.replace(" ", "\u00a0", 1), "length"),
        ("U-and-52-characters", bad_char[:52], "length"),
        ("U", bad_char, "character"),
        ("u-lowercase", bad_char.lower(), "character"),
        ("asterisk", substitute(flat, 30, "*"), "character"),
        ("dotless-i", substitute(ones["keyString"].replace(" ", ""), 5, "\u0131"), "character"),
        ("e-acute", substitute(flat, 0, "\u00e9"), "character"),
        ("U-and-wrong-check", substitute(bad_char, 52, wrong_check[52]), "character"),
        ("wrong-check-character", wrong_check, "check"),
        ("substituted-character", subst, "check"),
        ("swapped-characters", swap, "check"),
        ("nonzero-padding", padding, "check"),
        ("nonzero-padding-last-bit", padding_last, "check"),
    ]

    out = []
    for name, s, want in cases:
        got = parse_key(s).hex()
        assert got == want, name
        out.append({"id": name, "input": s, "R": want})
    for name, s, kind in errors:
        assert s is not None, name
        try:
            parse_key(s)
        except ParseError as e:
            assert e.kind == kind, (name, e.kind)
        else:
            raise AssertionError(name + " parses")
        out.append({"id": name, "input": s, "error": kind})
    # The padding cases fail on the padding alone: R and the check
    # character are those of the original.
    assert padding[52] == flat[52] and pad_val >> 1 == ALPHABET.index(flat[51]) >> 1
    return out


def document():
    vecs = vectors()
    return {
        "description": "Recovery key test vectors (docs/recovery-key.md, RK.10), made by docs/recovery_key_vectors.py. "
        "Hex values are lowercase. recoveryData = nonce || AES-256-GCM(recoveryEncKey, nonce, kB, aad = uid). "
        "parse: input is what a user typed; R is what it reads as, or error is length, character or check (RK.1).",
        "alphabet": ALPHABET,
        "vectors": vecs,
        "parse": parse_cases(vecs),
    }


def render(doc):
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def check(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doc = json.loads(text)
    problems = []
    vecs = doc.get("vectors") or []
    cases = doc.get("parse") or []
    if not vecs or not cases:
        problems.append("no vectors or no parse cases")
    for v in vecs:
        try:
            got = derive(bytes.fromhex(v["R"]), bytes.fromhex(v["uid"]), bytes.fromhex(v["kB"]), bytes.fromhex(v["nonce"]))
        except (KeyError, ValueError) as e:
            problems.append("vector %s: %r" % (v.get("id"), e))
            continue
        for k, want in got.items():
            if v.get(k) != want:
                problems.append("vector %s: %s is %r, recomputed %r" % (v.get("id"), k, v.get(k), want))
    for c in cases:
        try:
            got = {"R": parse_key(c["input"]).hex()}
        except ParseError as e:
            got = {"error": e.kind}
        except KeyError as e:
            problems.append("parse case %s: %r" % (c.get("id"), e))
            continue
        want = {k: c[k] for k in ("R", "error") if k in c}
        if got != want:
            problems.append("parse case %s: file says %r, recomputed %r" % (c.get("id"), want, got))
    if text != render(document()):
        problems.append("the file differs from what this script prints (regenerate it)")
    for p in problems:
        print(path + ": " + p, file=sys.stderr)
    if problems:
        return 1
    print("%s: %d vectors and %d parse cases match" % (path, len(vecs), len(cases)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="FILE", help="recompute FILE and exit 1 on a mismatch")
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    sys.stdout.write(render(document()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
