#!/usr/bin/env python3
"""Deterministic benchmark and test corpora for mcp-scrub (python3 standard library only).

Every byte depends only on --seed and the output's name, so one file can be regenerated alone
(--only) and comes out identical to a full run. All secrets are fake: random strings in the
shapes of real credential formats, never real keys.

Outputs (in --out, default corpus/generated/, which git ignores):
  mixed.log            JSON log lines, plain text, multi-line stack traces (Java, Python, Node),
                       long base64 blobs (PNG, data: URLs), lock-file hashes, git SHAs, URLs;
                       about 1 record in 1,000 carries a fake secret or a known literal.
  json.log             JSON log lines only, same secret density.
  rpc_1k.jsonl         JSON-RPC 2.0 tools/call results of about 1 KB a line, sparse secrets.
  rpc_1k_clean.jsonl   the same shape, no secrets.
  rpc_1m.jsonl         about 1 MB a line, sparse secrets.
  rpc_1m_clean.jsonl   about 1 MB a line, no secrets.
  rpc_1m_secret.jsonl  about 1 MB a line, a few secrets per message, raw, JSON-escaped (also in
                       PHP, .NET and Go escape styles), inside nested JSON and base64.
  dense.log            every line carries a secret (default size: --size / 4).
  known_secrets.txt    100 fake known secret values (16-64 chars, alnum and symbols), one a line;
                       some are planted in the corpora raw, JSON-escaped and base64-encoded.
  manifest.json        sizes, line counts and planted-secret counts per kind (no values).

--samples writes the small checked-in set instead (names with _small, each <= 64 KiB):
  python3 corpus/gen_corpus.py --samples --out corpus/samples
"""

import argparse
import base64
import json
import os
import random
import string
import sys
import time
from collections import Counter

KIB = 1024
MIB = 1024 * KIB
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Symbols for known secret values: no whitespace; quotes and backslashes on purpose (JSON escaping).
SYMBOLS = "!#$%&*+-./:;<=>?@^_|~\"\\"

SECRET_KINDS = ["github", "stripe", "aws", "slack", "jwt", "postgres", "password",
                "known_raw", "known_json", "known_b64"]


def parse_size(text):
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    if t and t[-1] in "KMG":
        mult = {"K": KIB, "M": MIB, "G": 1024 * MIB}[t[-1]]
        t = t[:-1]
    return int(float(t) * mult)


def json_escape(s):
    """The body of a JSON string literal (no quotes), as a standard encoder writes it."""
    return json.dumps(s, ensure_ascii=False)[1:-1]


def escape_style(s, style):
    """JSON string body in the escape style of a given server stack (see engine-facts.md)."""
    body = json_escape(s)
    if style == "php":  # PHP json_encode escapes '/'
        return body.replace("/", "\\/")
    if style == "go":  # Go encoding/json escapes <, >, &
        return body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if style == "dotnet":  # System.Text.Json escapes + and HTML-sensitive characters
        for ch, esc in (("+", "\\u002B"), ("<", "\\u003C"), (">", "\\u003E"), ("&", "\\u0026"),
                        ("'", "\\u0027")):
            body = body.replace(ch, esc)
        return body
    return body


def make_known_secrets(seed, count=100):
    r = random.Random(f"{seed}:known_secrets")
    out = []
    seen = set()
    while len(out) < count:
        n = r.randint(16, 64)
        chars = [r.choice(ALNUM) for _ in range(n)]
        for _ in range(r.randint(1, max(1, n // 6))):  # a few symbols at random places
            chars[r.randrange(n)] = r.choice(SYMBOLS)
        v = "".join(chars)
        if v in seen or "[REDACTED" in v:
            continue
        seen.add(v)
        out.append(v)
    return out


class Gen:
    """Record generators sharing one seeded random stream."""

    def __init__(self, seed, name, known, max_blob=32 * KIB):
        self.r = random.Random(f"{seed}:{name}")
        self.max_blob = max_blob  # longest base64 blob in a log line (MCP images: twice that)
        r = self.r
        self.known = known
        self.counts = Counter()
        self.ms = 1740787200000  # 2025-03-01T00:00:00Z
        self._sec = None
        self._sec_text = ""
        self.uuids = [self._uuid() for _ in range(2048)]
        self.shas = ["".join(r.choice(HEX) for _ in range(40)) for _ in range(1024)]
        self.trace_ids = ["".join(r.choice(HEX) for _ in range(32)) for _ in range(1024)]
        self.users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
                      "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter"]
        self.services = ["api-gateway", "orders", "billing", "auth", "search", "inventory",
                         "notifier", "scheduler", "mcp-github", "mcp-filesystem", "mcp-postgres"]
        self.paths = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users/{id}/profile",
                      "/api/v2/search", "/healthz", "/metrics", "/api/v1/invoices/{id}/pdf",
                      "/oauth/callback", "/api/v1/repos/{id}/commits", "/static/app.{id}.js",
                      "/graphql", "/api/v1/tools/call", "/api/v1/files/{id}"]
        self.hosts = ["api.example.com", "github.com", "registry.npmjs.org", "s3.amazonaws.com",
                      "hooks.slack.com", "db.internal", "cache.internal", "login.example.org",
                      "cdn.example.net", "pypi.org"]
        self.packages = ["lodash", "react", "express", "chalk", "debug", "semver", "uuid",
                         "typescript", "zod", "yargs", "commander", "ws", "axios", "undici"]
        self.words = ("request completed processing started cache miss hit retry connection "
                      "opened closed timeout user session token refresh scheduled job queue "
                      "message published consumed order invoice payment shipment created updated "
                      "deleted validation failed succeeded loaded config module plugin worker "
                      "pool resized upstream latency budget exceeded rate limited backoff key "
                      "author monkey primaryKey tokenizer passthrough secretary").split()
        blob = base64.b64encode(r.randbytes(3 * MIB)).decode("ascii")
        self.b64_pool = blob
        self.lock_hashes = ["sha512-" + base64.b64encode(r.randbytes(64)).decode("ascii")
                            for _ in range(512)]

    # ---- small pieces -------------------------------------------------------------------------

    def _uuid(self):
        h = "%032x" % self.r.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def ts(self):
        self.ms += self.r.randint(1, 40)
        sec, milli = divmod(self.ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._sec_text}.{milli:03d}Z"

    def alnum(self, n):
        return "".join(self.r.choices(ALNUM, k=n))

    def digits(self, n):
        return "".join(self.r.choices(string.digits, k=n))

    def sentence(self, lo=4, hi=12):
        return " ".join(self.r.choices(self.words, k=self.r.randint(lo, hi)))

    def path(self):
        return self.r.choice(self.paths).replace("{id}", str(self.r.randint(1, 99999)))

    def url(self):
        r = self.r
        q = f"?page={r.randint(1, 50)}&ref={r.choice(self.shas)[:7]}" if r.random() < 0.4 else ""
        return f"https://{r.choice(self.hosts)}{self.path()}{q}"

    def b64(self, n):
        start = self.r.randrange(0, len(self.b64_pool) - n) & ~3
        return self.b64_pool[start:start + n]

    def password(self):
        # Random, with digits: passes an entropy threshold and a generic rule's digit check.
        r = self.r
        n = r.randint(12, 24)
        chars = r.choices(ALNUM + "!#%*-_.", k=n)
        chars[r.randrange(n)] = r.choice(string.digits)
        return "".join(chars)

    # ---- fake secrets -------------------------------------------------------------------------

    def secret_value(self, kind):
        r = self.r
        if kind == "github":
            return "ghp_" + self.alnum(36)
        if kind == "stripe":
            return "sk_live_" + self.alnum(r.randint(24, 99))
        if kind == "aws":
            return ("AKIA" + "".join(r.choices(B32, k=16)),
                    "".join(r.choices(ALNUM + "/+", k=40)))
        if kind == "slack":
            return f"xoxb-{self.digits(12)}-{self.digits(13)}-{self.alnum(24)}"
        if kind == "jwt":
            header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
            payload = json.dumps({"sub": self._uuid(), "name": r.choice(self.users),
                                  "iat": 1740787200 + r.randint(0, 10**6),
                                  "scope": "repo read:org"}, separators=(",", ":"))
            p = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
            s = base64.urlsafe_b64encode(r.randbytes(32)).decode().rstrip("=")
            return f"{header}.{p}.{s}"
        if kind == "postgres":
            return (f"postgres://{r.choice(self.users)}_svc:{self.password()}"
                    f"@db{r.randint(1, 9)}.internal:5432/{r.choice(['orders', 'billing', 'auth'])}")
        if kind == "password":
            return self.password()
        raise ValueError(kind)

    def pick_kind(self):
        return self.r.choice(SECRET_KINDS)

    def secret_text_line(self, kind=None):
        """One plain-text line carrying a fake secret."""
        r = self.r
        kind = kind or self.pick_kind()
        self.counts[kind] += 1
        ts = self.ts()
        if kind == "github":
            v = self.secret_value(kind)
            return r.choice([f"export GITHUB_TOKEN={v}",
                             f"{ts} WARN [git] cloning with token {v} from https://github.com/acme/app.git",
                             f"{ts} DEBUG headers: Authorization: token {v}"])
        if kind == "stripe":
            v = self.secret_value(kind)
            return r.choice([f"STRIPE_SECRET_KEY={v}", f"{ts} INFO [billing] stripe client init key={v} mode=live"])
        if kind == "aws":
            k, s = self.secret_value(kind)
            return r.choice([f"{ts} DEBUG [s3] credentials aws_access_key_id={k} aws_secret_access_key={s}",
                             f"AWS_ACCESS_KEY_ID={k} aws_secret_access_key={s} aws s3 sync ./out s3://acme-builds"])
        if kind == "slack":
            v = self.secret_value(kind)
            return f"{ts} INFO [notifier] posting to #deploys with SLACK_BOT_TOKEN={v}"
        if kind == "jwt":
            v = self.secret_value(kind)
            return f"{ts} DEBUG [auth] GET {self.path()} Authorization: Bearer {v}"
        if kind == "postgres":
            v = self.secret_value(kind)
            return r.choice([f"DATABASE_URL={v}", f"{ts} ERROR [db] could not connect to {v}: connection refused"])
        if kind == "password":
            v = self.secret_value(kind)
            return r.choice([f'password = "{v}"', f'{ts} WARN [config] loaded smtp settings: password = "{v}"'])
        v = r.choice(self.known)
        if kind == "known_b64":
            enc = base64.b64encode(f"{r.choice(self.users)}:{v}".encode()).decode()
            return f"{ts} DEBUG [http] Authorization: Basic {enc}"
        if kind == "known_json":
            return f"{ts} INFO [mcp] tool result: " + json.dumps({"env": {"API_TOKEN": v}})
        return f"{ts} INFO [env] loaded secret value {v} from vault"

    def secret_json_fields(self, kind=None):
        """(message, extra fields) for a JSON log line carrying a fake secret."""
        r = self.r
        kind = kind or self.pick_kind()
        self.counts[kind] += 1
        if kind == "aws":
            k, s = self.secret_value(kind)
            return "s3 client created", {"config": {"aws_access_key_id": k,
                                                    "msg": f"aws_secret_access_key={s}"}}
        if kind == "password":
            return "smtp configured", {"detail": f'password = "{self.secret_value(kind)}"'}
        if kind == "postgres":
            return "connecting", {"dsn": self.secret_value(kind)}
        if kind == "jwt":
            return "request", {"headers": {"authorization": "Bearer " + self.secret_value(kind)}}
        if kind in ("github", "stripe", "slack"):
            key = {"github": "github_token", "stripe": "stripe_key", "slack": "slack_bot_token"}[kind]
            return "loaded config", {"config": {key: self.secret_value(kind), "retries": 3}}
        v = r.choice(self.known)
        if kind == "known_b64":
            blob = self.b64(r.randint(0, 12) * 4)
            enc = base64.b64encode(r.randbytes(r.randint(0, 5)) + v.encode() + r.randbytes(3)).decode()
            return "upstream payload", {"payload": blob + enc if r.random() < 0.5 else enc}
        if kind == "known_json":
            return "tool output", {"output": json.dumps({"api_token": v})}  # nested: double-escaped
        return "environment", {"env": {"SERVICE_TOKEN": v}}

    # ---- records ------------------------------------------------------------------------------

    def json_log(self, secret=False, blobs=True):
        r = self.r
        rec = {"ts": self.ts(),
               "level": r.choice(["info", "info", "info", "debug", "warn", "error"]),
               "service": r.choice(self.services),
               "request_id": r.choice(self.uuids),
               "trace_id": r.choice(self.trace_ids)}
        x = r.random()
        if secret:
            msg, extra = self.secret_json_fields()
            rec["msg"] = msg
            rec.update(extra)
        elif x < 0.45:
            rec.update({"msg": "request completed", "method": r.choice(["GET", "POST", "PUT", "DELETE"]),
                        "path": self.path(), "status": r.choice([200, 200, 200, 201, 204, 304, 400, 404, 500]),
                        "duration_ms": round(r.random() * 250, 3), "bytes": r.randint(0, 200000),
                        "user": r.choice(self.users)})
        elif x < 0.65:
            rec.update({"msg": self.sentence(), "commit": r.choice(self.shas), "version": f"1.{r.randint(0, 40)}.{r.randint(0, 9)}",
                        "url": self.url()})
        elif x < 0.75:
            rec.update({"msg": "dependency resolved", "package": r.choice(self.packages),
                        "integrity": r.choice(self.lock_hashes),
                        "resolved": f"https://registry.npmjs.org/{r.choice(self.packages)}/-/pkg-{r.randint(1, 9)}.{r.randint(0, 20)}.0.tgz"})
        elif x < 0.82:
            rec.update({"msg": "unhandled error", "error": {"type": "TypeError", "stack": self.stack_trace(join=True)}})
        elif x < 0.83:
            rec.update({"msg": "getenv lookup", "detail": 'os.getenv("API_KEY") returned None; using <YOUR_KEY> placeholder',
                        "example": "AKIAIOSFODNN7EXAMPLE"})
        elif x < 0.835 and blobs:
            rec.update({"msg": "thumbnail rendered", "image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" +
                        self.b64(r.randint(128, self.max_blob // 4) * 4)})
        else:
            rec.update({"msg": self.sentence(), "attempt": r.randint(1, 5), "queue": r.choice(self.services),
                        "job_id": r.choice(self.uuids), "tags": r.sample(self.words, 3)})
        if r.random() < 0.3:
            return json.dumps(rec)
        return json.dumps(rec, separators=(",", ":"))

    def text_log(self):
        r = self.r
        ts = self.ts()
        x = r.random()
        lvl = r.choice(["INFO", "INFO", "DEBUG", "WARN", "ERROR"])
        if x < 0.35:
            return (f"{ts} {lvl} [{r.choice(self.services)}] {self.sentence()} "
                    f"request_id={r.choice(self.uuids)} took={r.randint(1, 900)}ms")
        if x < 0.55:
            return (f'10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)} - - [{ts}] '
                    f'"{r.choice(["GET", "POST"])} {self.path()} HTTP/1.1" {r.choice([200, 200, 301, 404, 500])} '
                    f'{r.randint(100, 90000)} "{self.url()}" "Mozilla/5.0 (X11; Linux x86_64)"')
        if x < 0.70:
            sha = r.choice(self.shas)
            return f"{sha[:7]} {sha} {self.sentence(3, 8)} (author: {r.choice(self.users)})"
        if x < 0.82:
            pkg = r.choice(self.packages)
            return r.choice([f'  integrity {r.choice(self.lock_hashes)}',
                             f'      "integrity": "{r.choice(self.lock_hashes)}",',
                             f'  resolved "https://registry.yarnpkg.com/{pkg}/-/{pkg}-{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}.tgz#{r.choice(self.shas)}"'])
        if x < 0.83:
            return r.choice(['api_key = "${API_KEY}"', "token: {{ secrets.GITHUB_TOKEN }}",
                             "password = changeme", "export API_KEY=your-api-key-here",
                             "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "const primaryKey = row.id;",
                             'key := os.Getenv("STRIPE_KEY")'])
        return f"{ts} {lvl} {self.sentence(6, 20)}"

    def stack_trace(self, join=False):
        r = self.r
        kind = r.randint(0, 2)
        lines = []
        if kind == 0:
            lines.append(f"java.lang.IllegalStateException: order {r.randint(1, 99999)} not found")
            for _ in range(r.randint(4, 14)):
                cls = r.choice(["OrderService", "BillingClient", "HttpHandler", "Repository", "Scheduler"])
                lines.append(f"\tat com.example.{cls.lower()}.{cls}.{r.choice(self.words)}({cls}.java:{r.randint(10, 900)})")
            lines.append("Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available")
            lines.append(f"\t... {r.randint(3, 40)} more")
        elif kind == 1:
            lines.append("Traceback (most recent call last):")
            for _ in range(r.randint(3, 10)):
                mod = r.choice(["handlers", "service", "models", "client", "tasks"])
                lines.append(f'  File "/app/{mod}.py", line {r.randint(5, 800)}, in {r.choice(self.words)}')
                lines.append(f"    result = self.{r.choice(self.words)}(request)")
            lines.append(f"KeyError: '{r.choice(self.words)}'")
        else:
            lines.append("TypeError: Cannot read properties of undefined (reading 'id')")
            for _ in range(r.randint(4, 12)):
                lines.append(f"    at {r.choice(['Object.handler', 'Router.handle', 'next', 'Layer.handle'])} "
                             f"(/srv/app/dist/routes/{r.choice(self.words)}.js:{r.randint(1, 400)}:{r.randint(1, 80)})")
            lines.append("    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)")
        if join:
            return "\n".join(lines)
        head = f"{self.ts()} ERROR [{r.choice(self.services)}] {self.sentence(3, 6)}"
        return head + "\n" + "\n".join(lines)

    def blob_line(self):
        r = self.r
        n = r.randint(128, self.max_blob // 4) * 4
        x = r.random()
        if x < 0.4:
            return "iVBORw0KGgoAAAANSUhEUgAA" + self.b64(n)
        if x < 0.8:
            return f'<img alt="chart" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{self.b64(n)}">'
        return f"{self.ts()} DEBUG [upload] body={self.b64(n)}"

    def mixed_record(self, p_secret):
        r = self.r
        if r.random() < p_secret:
            if r.random() < 0.5:
                return self.secret_text_line()
            return self.json_log(secret=True)
        x = r.random()
        if x < 0.42:
            return self.json_log()
        if x < 0.955:
            return self.text_log()
        if x < 0.995:
            return self.stack_trace()
        return self.blob_line()

    def dense_record(self):
        if self.r.random() < 0.5:
            return self.secret_text_line()
        return self.json_log(secret=True)

    # ---- JSON-RPC tool results ----------------------------------------------------------------

    def rpc_piece(self, big):
        """A piece of a tool's text output (plain text, escaped by the caller)."""
        r = self.r
        x = r.random()
        if x < 0.35:
            return self.text_log()
        if x < 0.6:
            return self.json_log(blobs=big)  # JSON inside a JSON string: quotes arrive escaped
        if x < 0.72:
            obj = {"id": r.choice(self.uuids), "sha": r.choice(self.shas), "author": r.choice(self.users),
                   "files": [self.path() for _ in range(r.randint(1, 4))], "message": self.sentence()}
            return json.dumps(obj, indent=2)
        if x < 0.8:
            return self.stack_trace()
        if x < 0.9:
            return "\n".join(f"{r.choice('-d')}rw-r--r-- 1 {r.choice(self.users)} staff {r.randint(0, 10**6):>8} "
                             f"Mar {r.randint(1, 28):>2} src/{r.choice(self.words)}/{r.choice(self.words)}.ts"
                             for _ in range(r.randint(2, 8)))
        if big and x < 0.905:
            return "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" + self.b64(r.randint(256, self.max_blob // 2) * 4)
        return f"{r.randint(1, 400)}: {self.sentence(3, 14)}"

    def rpc_secret_segment(self):
        """An already JSON-escaped segment carrying a secret, in one of several encodings."""
        r = self.r
        x = r.random()
        if x < 0.35:  # raw in the text (after one level of JSON escaping)
            return json_escape(self.secret_text_line())
        if x < 0.65:  # inside a JSON log line inside the text: double-escaped context
            return json_escape(self.json_log(secret=True))
        if x < 0.85:  # a server stack with its own escape style
            style = r.choice(["php", "go", "dotnet"])
            if r.random() < 0.5:
                self.counts["aws"] += 1
                k, s = self.secret_value("aws")
                return escape_style(f"aws_access_key_id={k}\naws_secret_access_key={s}", style)
            self.counts["known_json"] += 1
            return escape_style(f"TOKEN={r.choice(self.known)}", style)
        self.counts["known_b64"] += 1
        v = r.choice(self.known)
        return json_escape("attachment: " + base64.b64encode(self.r.randbytes(r.randint(0, 40)) + v.encode()).decode())

    def rpc_message(self, msg_id, target, mode):
        """mode: 'clean', 'sparse' (about 1 piece in 1,000 carries a secret) or 'dense' (3-6)."""
        r = self.r
        big = target > 64 * KIB
        segs = []
        size = 0
        while size < target:
            if mode == "sparse" and r.random() < 0.001:
                s = self.rpc_secret_segment()
            else:
                s = json_escape(self.rpc_piece(big))
            segs.append(s)
            segs.append("\\n")
            size += len(s) + 2
        structured = {"tool": r.choice(["search_code", "read_file", "run_query", "list_commits"]),
                      "elapsed_ms": r.randint(1, 5000), "truncated": False,
                      "items": [{"id": r.choice(self.uuids), "sha": r.choice(self.shas), "path": self.path(),
                                 "score": round(r.random(), 4)} for _ in range(r.randint(1, 6 if big else 2))]}
        if mode == "dense":
            for _ in range(r.randint(3, 6)):
                segs.insert(r.randrange(len(segs) + 1) & ~1, self.rpc_secret_segment() + "\\n")
            if r.random() < 0.5:
                self.counts["github"] += 1
                structured["auth"] = {"token": self.secret_value("github")}
        text = "".join(segs)
        sc = json.dumps(structured, separators=(",", ":"))
        return ('{"result":{"content":[{"type":"text","text":"' + text + '"}],"structuredContent":' + sc +
                '},"jsonrpc":"2.0","id":' + str(msg_id) + "}")


# ---- files -----------------------------------------------------------------------------------

def write_records(path, size, make, counts, min_records=1):
    """Writes records (each ending with a newline) until the next one would pass `size` bytes."""
    total = 0
    lines = 0
    records = 0
    buf = []
    buf_size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while True:
            before = counts.copy()
            rec = make(records) + "\n"
            n = len(rec.encode("utf-8")) if not rec.isascii() else len(rec)
            if total + n > size and records >= min_records:
                counts.clear()
                counts.update(before)  # the record not written plants nothing
                break
            buf.append(rec)
            buf_size += n
            total += n
            lines += rec.count("\n")
            records += 1
            if buf_size >= MIB:
                f.write("".join(buf))
                buf.clear()
                buf_size = 0
        f.write("".join(buf))
    return {"bytes": total, "lines": lines, "records": records}


def generate(args):
    os.makedirs(args.out, exist_ok=True)
    seed = args.seed
    known = make_known_secrets(seed)
    size = args.size
    sfx = "_small" if args.samples else ""
    dense_size = args.dense_size if args.dense_size is not None else max(size // 4, min(size, 16 * KIB))
    p = 0.001 if not args.samples else 0.03  # a 48 KiB sample needs a higher rate to hold any secret

    def rpc(target_lo, target_hi, mode):
        def make(gen):
            return lambda i: gen.rpc_message(i + 1, gen.r.randint(target_lo, target_hi), mode)
        return make

    big_lo, big_hi = (900 * KIB, 1100 * KIB) if not args.samples else (12 * KIB, 20 * KIB)
    outputs = {
        "mixed": (f"mixed{sfx}.log", size, lambda g: (lambda i: g.mixed_record(p))),
        "json": (f"json{sfx}.log", size, lambda g: (lambda i: g.json_log(secret=g.r.random() < p))),
        "dense": (f"dense{sfx}.log", dense_size, lambda g: (lambda i: g.dense_record())),
        "rpc_1k": ("rpc_1k.jsonl", size, rpc(400, 900, "sparse")),
        "rpc_1k_clean": ("rpc_small_clean.jsonl" if args.samples else "rpc_1k_clean.jsonl", size, rpc(400, 900, "clean")),
        "rpc_1m": (f"rpc_1m{sfx}.jsonl", size, rpc(big_lo, big_hi, "sparse")),
        "rpc_1m_clean": (f"rpc_1m_clean{sfx}.jsonl", size, rpc(big_lo, big_hi, "clean")),
        "rpc_1m_secret": (f"rpc_1m_secret{sfx}.jsonl", size, rpc(big_lo, big_hi, "dense")),
    }
    if args.samples:  # the sparse 1 MB shapes add nothing at sample size
        for k in ("rpc_1m", "rpc_1m_clean"):
            outputs.pop(k)
        # Every 20th message carries a few secrets, so a small file still exercises them.
        outputs["rpc_1k"] = ("rpc_small.jsonl", size, lambda g: (
            lambda i: g.rpc_message(i + 1, g.r.randint(400, 900), "dense" if i % 20 == 7 else "clean")))
    wanted = list(outputs) if not args.only else [w.strip() for w in args.only.split(",") if w.strip()]
    for w in wanted:
        if w not in outputs and w != "known":
            sys.exit(f"gen_corpus: unknown output '{w}' (choose from known, {', '.join(outputs)})")

    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            manifest = {}
    manifest["seed"] = seed
    manifest.setdefault("files", {})

    with open(os.path.join(args.out, "known_secrets.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(known) + "\n")
    for key in wanted:
        if key == "known":
            continue
        name, sz, factory = outputs[key]
        t0 = time.time()
        gen = Gen(seed, key, known, max_blob=2 * KIB if args.samples else 32 * KIB)
        make = factory(gen)
        stats = write_records(os.path.join(args.out, name), sz, make, gen.counts)
        stats["planted"] = dict(sorted(gen.counts.items()))
        stats["planted_total"] = sum(gen.counts.values())
        manifest["files"][name] = stats
        print(f"gen_corpus: {name}: {stats['bytes']} bytes, {stats['lines']} lines, "
              f"{stats['planted_total']} planted secrets, {time.time() - t0:.1f}s", file=sys.stderr)
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="output directory (default corpus/generated/)")
    ap.add_argument("--size", type=parse_size, default=None,
                    help="bytes per output, e.g. 64M (default 64 MiB; 48 KiB with --samples)")
    ap.add_argument("--dense-size", type=parse_size, default=None, help="size of dense.log (default --size / 4)")
    ap.add_argument("--only", default="", help="comma-separated subset: known,mixed,json,dense,rpc_1k,"
                                               "rpc_1k_clean,rpc_1m,rpc_1m_clean,rpc_1m_secret")
    ap.add_argument("--samples", action="store_true",
                    help="the small checked-in set: _small names, 48 KiB, higher secret rate")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(here, "samples" if args.samples else "generated")
    if args.size is None:
        args.size = 48 * KIB if args.samples else 64 * MIB
    generate(args)


if __name__ == "__main__":
    main()
