#!/usr/bin/env python3
"""Builds the fuzz seed corpora under tests/fuzz/seeds/<target>/ from corpus/ (deterministic).

Small files only: libFuzzer grows its own corpus from these. Run from anywhere:
    python3 tests/fuzz/make_seeds.py
"""
import base64
import hashlib
import json
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEEDS = os.path.join(HERE, "seeds")
MAX = 3000  # bytes per seed

# The fuzz targets' fake known values (tests/fuzz/fuzz_common.h).
PLAIN = "Zq8vR2xkPm4TnW7yL3bH"
SPECIAL = 'p@ss/w+rd"q\\t<&>9Kx'
DB_URL = "postgresql://app:S3cretPassw0rdX9@db.internal:5432/prod"


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    data = data[:MAX]
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def lines(rel, n, pick=None):
    with open(os.path.join(ROOT, rel), "rb") as f:
        all_lines = f.read().split(b"\n")
    all_lines = [l for l in all_lines if l and len(l) <= MAX]
    step = max(1, len(all_lines) // n)
    return all_lines[::step][:n]


def uescape(s):
    return "".join("\\u%04x" % ord(c) for c in s)


def json_seeds():
    for l in lines("corpus/samples/rpc_small.jsonl", 10):
        write("json_line", l)
    for l in lines("corpus/samples/json_small.log", 6):
        write("json_line", l)
    for l in lines("corpus/e2e/rpc.jsonl", 5):
        write("json_line", l)
    text = "key " + PLAIN + " and " + DB_URL
    msg = {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": text}]}}
    write("json_line", json.dumps(msg))
    write("json_line", json.dumps({"jsonrpc": "2.0", "id": 4, "error": {"code": -1, "message": SPECIAL, "data": {"x": 12345}}}))
    write("json_line", '{"a":"' + uescape(PLAIN) + '","b":"https:\\/\\/x"}')
    inner = json.dumps({"env": {"KEY": PLAIN}})
    write("json_line", json.dumps({"text": inner}))
    write("json_line", json.dumps({"text": json.dumps({"n": inner})}))
    write("json_line", '{"password": "Hunter2Hunter2x9", "token": "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"}')
    write("json_line", '{"k":"fzk_\u00e9\u00e9\u00e9\u00e9abc"}')
    # Keys written with escapes: a key-value rule reads the decoded key with the value.
    write("json_line", '{"pass\\u0077ord": "Hunter2Hunter2x9", "db\\/password": "a\\/' + PLAIN + '"}')
    write("json_line", '{"x":{"api\\u005fkey":"' + uescape(PLAIN[:4]) + PLAIN[4:] + '"}}')
    write("json_line", '[1,2,{"blob":"' + base64.b64encode(PLAIN.encode()).decode() + '","mimeType":"text/plain"}]')
    write("json_line", '{"s":"\\ud800\\udc00\\ud800x\\\\\\"q"}')
    write("json_line", "npm WARN " + PLAIN + " {")


def framer_seeds():
    for i, l in enumerate(lines("corpus/samples/mixed_small.log", 8)):
        hdr = bytes([i * 29 % 256, 3, 1, 7, 200])
        write("framer", hdr + l + b"\n" + PLAIN.encode() + b"\n")
    for i, l in enumerate(lines("corpus/e2e/app.log", 4)):
        write("framer", bytes([10 + i, 1, 5]) + l + b"\r\n")
    write("framer", bytes([63, 2, 63, 1]) + b"x" * 64 + b"\n" + b"y" * 63 + b"\nz")
    write("framer", bytes([0, 0]) + b"\n\n\n")
    write("framer", bytes([40, 1, 3]) + b"-----BEGIN RSA PRIVATE KEY-----\nMIIabc\nMIIdef\n-----END RSA PRIVATE KEY-----\n")


def decoder_seeds():
    for s in ['a\\u00e9\\n\\ud83d\\ude00b', '\\ud800x', 'bad\\q', '\\"\\\\\\/\\b\\f\\n\\r\\t',
              uescape(PLAIN), base64.b64encode(PLAIN.encode()).decode(),
              base64.urlsafe_b64encode(b"\xff\xfe" + SPECIAL.encode()).decode(), "QUJD\n REVG==", "====",
              "\x01\x02" + PLAIN, "\x02\x01" + SPECIAL]:
        write("decoders", s)


def rule_seeds():
    with open(os.path.join(ROOT, "tests/fixtures/rules.toml")) as f:
        text = f.read()
    parts = re.split(r"\n(?=\[\[rules\]\])", text)
    for p in parts[1:]:
        write("rules", p)
    write("rules", text)
    with open(os.path.join(ROOT, "patterns/builtin.toml")) as f:
        builtin = f.read()
    blocks = re.split(r"\n(?=\[\[rules\]\])", builtin)[1:]
    for b in blocks[:: max(1, len(blocks) // 12)]:
        b = b.split("\n#====")[0]
        if len(b) <= MAX:
            write("rules", b)
    write("rules", "[allowlist]\nregexes = ['''EXAMPLE$''']\nstopwords = [\"changeme\"]\n"
          "[[rules]]\nid = \"r\"\nregex = '''x(.{3})y'''\nentropy = 0.5\n"
          "examples = [{ text = '''x\u00e9\u00e9\u00e9y''', secret = '''\u00e9\u00e9\u00e9''' }]\n")
    write("rules", "[[rules]]\nid = \"all\"\nregex = '''[a-z]{1,50}'''\nmask = \"partial\"\nkeepPrefix = 2\n"
          "negatives = ['''hello world''']\n")


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    json_seeds()
    framer_seeds()
    decoder_seeds()
    rule_seeds()
    for t in sorted(os.listdir(SEEDS)):
        print(t, len(os.listdir(os.path.join(SEEDS, t))))
