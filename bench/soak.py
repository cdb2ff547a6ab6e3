#!/usr/bin/env python3
"""Soak: mcp-scrub under steady MCP traffic for minutes, watched for growth and leaks.

  soak.py MCP_SCRUB LEAKY_SERVER --mode wrap|tcp|filter [--seconds S] [--clients N]
          [--big-bytes B] [--rate-mb R] [--hup-every S] [--samples FILE.tsv]

wrap: `MCP_SCRUB [opts] -- LEAKY_SERVER`, one client that initializes and then calls, one at a
time, every request of PLAN in turn (each channel the test server leaks through: tool results,
errors, nested JSON, \\u escapes, resources, prompts, completions, notifications, server-to-client
requests, stderr lines, a line split across writes, a CRLF line, a stray non-JSON line, results of
--big-bytes and a large escaped log).
tcp: `MCP_SCRUB tcp --listen 127.0.0.1:0 --max-connections 0 [opts] -- LEAKY_SERVER`, a child per
connection; --clients threads each open a connection, initialize, make a short session of the
same requests (one large result among them), and close it, over and over.
filter: `MCP_SCRUB filter --format text`, a log stream written to its stdin at --rate-mb MB/s
(log lines, stack traces, base64 blobs, JSON lines; one line in 50 holds a secret), its whole
output read back: every line must come out, and every line with a secret masked.

The secrets are fake, generated for the run (a known value, a database URL given as known values
in a --secrets-file, a GitHub-token-shaped value the rules find). The proxy gets SIGHUP every
--hup-every seconds (it re-reads its sources and rebuilds its engine). Once a second the proxy's
resident memory (VmRSS), peak (VmHWM), threads, open descriptors and (tcp) live children are
read from /proc.

Fails (exit 1) when: a secret (as written, or in any string once JSON-decoded) is seen on the
proxy's stdout, socket or stderr; a request goes unanswered for 30 s; the proxy exits other than
as asked; its resident memory in the last tenth of the run is more than 4 MiB above the first
tenth after the warm-up (the first 20 s or tenth of the run, whichever is longer); or, at the
end, with every connection closed, it holds more descriptors or threads than before the first
one, or a child is left; or (filter) a line is lost or a line with a secret comes out unmasked.
Prints one JSON summary line. Never prints a secret.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

import tcp_proxy

ALNUM = string.ascii_letters + string.digits
RESPONSE_TIMEOUT = 30.0


def fake(n):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def plan(big_bytes):
    """The requests a session makes, in order: (method, params)."""
    call = lambda name, args=None: ("tools/call", {"name": name, "arguments": args or {}})
    return [
        ("tools/list", {}),
        call("echo", {"message": "hello"}),
        call("leak_text"),
        call("leak_structured"),
        call("leak_nested_json"),
        call("leak_escaped"),
        call("leak_error"),
        call("leak_is_error"),
        call("leak_resource"),
        call("leak_links"),
        call("leak_meta"),
        call("leak_notifications", {"delay_ms": 0}),
        call("leak_sampling"),
        call("leak_elicitation"),
        call("leak_stderr"),
        call("leak_split"),
        call("leak_non_json"),
        call("leak_crlf"),
        call("leak_big", {"bytes": big_bytes}),
        call("leak_big_escaped", {"bytes": 300000}),
        ("resources/read", {"uri": "file:///app/.env"}),
        ("prompts/get", {"name": "debug_config"}),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "debug_config"},
                                 "argument": {"name": "topic", "value": "p"}}),
        ("ping", {}),
    ]


class Watch:
    """What every byte out of the proxy is checked for, and the counts of the run."""

    def __init__(self, forbidden):
        self.forbidden = [f for f in forbidden if f]
        self.lock = threading.Lock()
        self.leaks = 0          # lines holding a secret (which one is never said)
        self.lines = 0
        self.non_json = 0
        self.stderr_lines = 0
        self.bytes = 0
        self.failures = []      # what went wrong, in words without secrets

    def check(self, line, stderr=False):
        bad = any(f in line for f in self.forbidden)
        parsed = None
        if not bad and not stderr:
            try:
                parsed = json.loads(line)
            except ValueError:
                pass
            if parsed is not None:
                decoded = json.dumps(parsed, ensure_ascii=False)
                bad = any(f in decoded for f in self.forbidden)
        with self.lock:
            if stderr:
                self.stderr_lines += 1
            else:
                self.lines += 1
                self.bytes += len(line)
                if parsed is None:
                    self.non_json += 1
            if bad:
                self.leaks += 1
        return parsed

    def fail(self, what):
        with self.lock:
            self.failures.append(what)


def read_proc(pid):
    s = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    s[k] = int(v.split()[0])
                elif k == "Threads":
                    s[k] = int(v)
        s["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return s


def children_of(pid):
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                n += 1
        except (OSError, IndexError, ValueError):
            pass
    return n


class Sampler(threading.Thread):
    def __init__(self, pid, t0, count_children):
        super().__init__(daemon=True)
        self.pid, self.t0, self.count_children = pid, t0, count_children
        self.samples = []  # (seconds, rss KiB, hwm KiB, threads, fds, children)
        self.stop = threading.Event()

    def take(self):
        s = read_proc(self.pid)
        if s is None or "VmRSS" not in s:  # gone, or a zombie
            return None
        kids = children_of(self.pid) if self.count_children else 0
        row = (time.monotonic() - self.t0, s.get("VmRSS", 0), s.get("VmHWM", 0),
               s.get("Threads", 0), s["fds"], kids)
        self.samples.append(row)
        return row

    def run(self):
        while not self.stop.wait(1.0):
            self.take()


class Session:
    """One JSON-RPC conversation over a line-oriented byte stream."""

    def __init__(self, send, watch):
        self.send_bytes, self.watch = send, watch
        self.next_id = 100
        self.cv = threading.Condition()
        self.answered = set()
        self.closed = False

    def on_line(self, raw):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        msg = self.watch.check(line)
        if isinstance(msg, dict) and "id" in msg and "method" not in msg:
            with self.cv:
                self.answered.add(msg["id"])
                self.cv.notify_all()
        elif isinstance(msg, list):
            with self.cv:
                for m in msg:
                    if isinstance(m, dict) and "id" in m:
                        self.answered.add(m["id"])
                self.cv.notify_all()

    def on_close(self):
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.send_bytes((json.dumps(msg) + "\n").encode())
        deadline = time.monotonic() + RESPONSE_TIMEOUT
        with self.cv:
            while rid not in self.answered:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    self.watch.fail(f"no answer to {method} (id {rid})"
                                    + (": stream closed" if self.closed else ": timed out"))
                    return False
                self.cv.wait(left)
            self.answered.discard(rid)
        return True

    def initialize(self):
        ok = self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "soak", "version": "1"}})
        if ok:
            self.send_bytes(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        return ok


class Hups:
    """SIGHUP to the proxy every `every` seconds from t0 (never when `every` is 0)."""

    def __init__(self, proc, t0, every):
        self.proc, self.count = proc, 0
        self.next = t0 + every if every > 0 else float("inf")
        self.every = every

    def due(self):
        if time.monotonic() >= self.next:
            self.proc.send_signal(signal.SIGHUP)
            self.count += 1
            self.next += self.every


def finish(proc, watch, what, timeout):
    """Ends the proxy's input (or, with no pipe to close, sends SIGTERM), waits for its exit and
    fails the run unless it exits 0 in time."""
    try:
        if proc.stdin:
            proc.stdin.close()
        else:
            proc.send_signal(signal.SIGTERM)
    except OSError:
        pass
    how = "its stdin closing" if proc.stdin else "SIGTERM"
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        watch.fail(f"{what} did not exit within {timeout} s of {how}")
    if rc != 0:
        watch.fail(f"{what} exited with status {rc} after {how}")


def read_lines(stream, on_line, on_close):
    for raw in iter(stream.readline, b""):
        on_line(raw)
    on_close()


def watch_stderr(proc, watch, start=True):
    """A thread that reads the proxy's stderr to its end, each line checked for secrets."""
    t = threading.Thread(target=read_lines, args=(
        proc.stderr, lambda raw: watch.check(raw.decode("utf-8", "replace"), stderr=True),
        lambda: None), daemon=True)
    if start:
        t.start()
    return t


def scrub_options(tmp, secret, db_url):
    key = os.path.join(tmp, "key")
    with open(key, "w") as f:
        f.write(fake(40) + "\n")
    known = os.path.join(tmp, "known.txt")
    with os.fdopen(os.open(known, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(secret + "\n" + db_url + "\n")
    # --secrets-refresh: reloads are configured, so the wrap reloads on SIGHUP instead of
    # forwarding it to the server (tcp reloads on it either way).
    return ["--no-env-secrets", "--secrets-file", known, "--fingerprint-key", key,
            "--secrets-refresh", "1h"]


def soak_wrap(a, opts, env, watch):
    proc = subprocess.Popen([a.scrub, *opts, "--", a.server], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    t0 = time.monotonic()
    sampler = Sampler(proc.pid, t0, False)

    def send(b):
        proc.stdin.write(b)
        proc.stdin.flush()

    sess = Session(send, watch)
    threading.Thread(target=read_lines, args=(proc.stdout, sess.on_line, sess.on_close),
                     daemon=True).start()
    err = watch_stderr(proc, watch)
    sampler.take()
    sampler.start()
    requests = 0
    steps = plan(a.big_bytes)
    hups = Hups(proc, t0, a.hup_every)
    try:
        ok = sess.initialize()
        while ok and time.monotonic() - t0 < a.seconds:
            for method, params in steps:
                ok = sess.request(method, params)
                if not ok:
                    break
                requests += 1
                hups.due()
    except (BrokenPipeError, OSError) as e:
        watch.fail(f"writing to the proxy failed: {e.__class__.__name__}")
    end = sampler.take()
    sampler.stop.set()
    finish(proc, watch, "the proxy", 30)
    err.join(timeout=5)
    return {"requests": requests, "sessions": 1, "hups": hups.count}, sampler.samples, end, None


def soak_tcp(a, opts, env, watch):
    proc, port = tcp_proxy.start([a.scrub, "tcp", "--listen", "127.0.0.1:0", "--max-connections",
                                  "0", *opts, "--", a.server], env,
                                 lambda text: watch.check(text, stderr=True))
    if port is None:
        watch.fail("mcp-scrub tcp did not start")
        return {"requests": 0, "sessions": 0, "hups": 0}, [], None, None
    err = proc.stderr_reader
    t0 = time.monotonic()
    sampler = Sampler(proc.pid, t0, True)
    before = sampler.take()
    sampler.start()
    steps = plan(a.big_bytes)
    counts = {"requests": 0, "sessions": 0}
    lock = threading.Lock()

    def client(k):
        i = k
        while time.monotonic() - t0 < a.seconds and not watch.failures:
            # A session: initialize, then a window of the plan that always holds a large result.
            window = [steps[(i + j) % len(steps)] for j in range(6)]
            if not any(p.get("name", "").startswith("leak_big") for _, p in window):
                window.append(steps[next(n for n, (_, p) in enumerate(steps)
                                         if p.get("name") == "leak_big")])
            i += 5
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=RESPONSE_TIMEOUT)
            except OSError as e:
                watch.fail(f"connect failed: {e.__class__.__name__}")
                return
            sess = Session(s.sendall, watch)
            f = s.makefile("rb")
            reader = threading.Thread(target=read_lines, args=(f, sess.on_line, sess.on_close),
                                      daemon=True)
            reader.start()
            done = 0
            try:
                if sess.initialize():
                    for method, params in window:
                        if not sess.request(method, params):
                            break
                        done += 1
            except OSError as e:
                watch.fail(f"a connection failed: {e.__class__.__name__}")
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
            reader.join(timeout=10)
            with lock:
                counts["requests"] += done
                counts["sessions"] += 1

    threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    hups = Hups(proc, t0, a.hup_every)
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        if time.monotonic() - t0 < a.seconds:
            hups.due()
    for t in threads:
        t.join()
    # Every connection is closed: its child reaped and its descriptors and threads given back
    # (a connection's end is asynchronous, so give it a moment).
    end = None
    for _ in range(50):
        time.sleep(0.2)
        end = sampler.take()
        if end and end[5] == 0 and end[4] <= before[4] and end[3] <= before[3]:
            break
    sampler.stop.set()
    finish(proc, watch, "the proxy", 30)
    err.join(timeout=5)
    counts["hups"] = hups.count
    return counts, sampler.samples, end, before


def log_block(secret, db_url, token):
    """About 1 MB of log lines, one in 50 holding a secret; returns (bytes, lines, secret lines)."""
    rnd = secrets.SystemRandom()
    words = ["request", "handled", "user", "cache", "miss", "retry", "queue", "flushed", "ok",
             "timeout", "upstream", "pool", "worker", "started", "config", "loaded"]
    lines, secret_lines = [], 0
    while sum(len(x) + 1 for x in lines) < 1_000_000:
        n = len(lines)
        if n % 50 == 25:
            k = (n // 50) % 3
            lines.append(["startup env API_KEY=" + secret + " region=eu-west-1",
                          "db connect failed: " + db_url + " (timeout)",
                          "git push with token " + token + " rejected"][k])
            secret_lines += 1
        elif n % 7 == 0:
            lines.append('{"ts":"2026-11-29T00:00:%02dZ","level":"info","msg":"%s","n":%d}'
                         % (n % 60, " ".join(rnd.choice(words) for _ in range(8)), n))
        elif n % 11 == 0:
            lines.append("    at com.example.service.Worker.run(Worker.java:%d)" % (n % 900))
        elif n % 13 == 0:
            lines.append("blob " + fake(120))
        else:
            lines.append("%06d %s" % (n, " ".join(rnd.choice(words) for _ in range(12))))
    data = ("\n".join(lines) + "\n").encode()
    return data, len(lines), secret_lines


def soak_filter(a, opts, env, watch):
    secret = env["LEAK_SECRET"]
    block, block_lines, block_secret_lines = log_block(secret, env["LEAK_DB_URL"], env["LEAK_TOKEN"])
    proc = subprocess.Popen([a.scrub, "filter", "--format", "text", *opts], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    t0 = time.monotonic()
    sampler = Sampler(proc.pid, t0, False)
    sent = {"blocks": 0}
    got = {"lines": 0, "masked": 0}
    longest = max(len(f) for f in watch.forbidden)

    def write():
        rate = a.rate_mb * 1e6
        try:
            while time.monotonic() - t0 < a.seconds:
                proc.stdin.write(block)
                proc.stdin.flush()
                sent["blocks"] += 1
                ahead = sent["blocks"] * len(block) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        except OSError as e:
            watch.fail(f"writing to filter failed: {e.__class__.__name__}")

    def read():
        pending = b""  # a line not yet ended: a secret never spans lines, so whole lines are checked
        while True:
            chunk = proc.stdout.read1(1 << 20)
            data = pending + chunk
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            whole, pending = data[:cut], data[cut:]
            if whole:
                text = whole.decode("utf-8", "replace")
                leaked = any(f in text for f in watch.forbidden)
                got["lines"] += whole.count(b"\n") + (0 if whole.endswith(b"\n") else 1)
                got["masked"] += sum(1 for ln in text.split("\n") if "[REDACTED" in ln)
                with watch.lock:
                    watch.bytes += len(whole)
                    watch.leaks += 1 if leaked else 0
            if not chunk:
                break
        watch.lines = got["lines"]

    w = threading.Thread(target=write, daemon=True)
    r = threading.Thread(target=read, daemon=True)
    err = watch_stderr(proc, watch, start=False)
    sampler.take()
    sampler.start()
    for t in (w, r, err):
        t.start()
    hups = Hups(proc, t0, a.hup_every)
    while w.is_alive():
        time.sleep(0.2)
        hups.due()
    end = sampler.take()  # before its input ends: then it exits
    sampler.stop.set()
    finish(proc, watch, "filter", 60)
    r.join(timeout=30)
    err.join(timeout=5)
    want_lines = sent["blocks"] * block_lines
    want_masked = sent["blocks"] * block_secret_lines
    if got["lines"] != want_lines:
        watch.fail(f"{want_lines} lines in, {got['lines']} out")
    if got["masked"] != want_masked:
        watch.fail(f"{want_masked} lines with a secret in, {got['masked']} masked lines out")
    return {"requests": want_lines, "sessions": 1, "hups": hups.count}, sampler.samples, end, None


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else 0


def slope_kib_per_min(points):
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(r for _, r in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0
    return sum((t - mx) * (r - my) for t, r in points) / sxx * 60.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scrub")
    ap.add_argument("server")
    ap.add_argument("--mode", choices=["wrap", "tcp", "filter"], required=True)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--big-bytes", type=int, default=1 << 20)
    ap.add_argument("--hup-every", type=float, default=15)
    ap.add_argument("--rate-mb", type=float, default=20, help="filter: MB/s written")
    ap.add_argument("--samples", help="write the samples here (TSV)")
    a = ap.parse_args()

    secret = fake(24)
    db_url = f"postgresql://app:{fake(18)}@db.internal:5432/prod"
    token = "ghp_" + fake(36)
    tmp = tempfile.mkdtemp(prefix="mcp-scrub-soak.")
    env = dict(os.environ, LEAK_SECRET=secret, LEAK_DB_URL=db_url, LEAK_TOKEN=token,
               XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    opts = scrub_options(tmp, secret, db_url)
    # The database cache warmed first, as an installed proxy has it (a compile in the run is
    # start-up, not steady state).
    # A short wrap session with a large result: the wrap's databases (its split scan's too).
    warm = [{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "leak_big", "arguments": {"bytes": 1 << 20}}}]
    subprocess.run([a.scrub, *opts, "--", a.server],
                   input="".join(json.dumps(m) + "\n" for m in warm).encode(), env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = Watch([secret, db_url, db_url.split(":")[2].split("@")[0], token])
    started = time.monotonic()
    try:
        run = {"wrap": soak_wrap, "tcp": soak_tcp, "filter": soak_filter}[a.mode]
        counts, samples, end, before = run(a, opts, env, watch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started

    if a.samples:
        with open(a.samples, "w") as f:
            f.write("seconds\trss_kib\thwm_kib\tthreads\tfds\tchildren\n")
            for row in samples:
                f.write("\t".join(f"{x:.1f}" if isinstance(x, float) else str(x) for x in row) + "\n")

    span = max((s[0] for s in samples), default=0.0)
    warm = max(20.0, span / 10)
    steady = [s for s in samples if s[0] >= warm]
    tenth = max(1, len(steady) // 10)
    rss_first = median([s[1] for s in steady[:tenth]])
    rss_last = median([s[1] for s in steady[-tenth:]])
    growth = rss_last - rss_first
    if len(steady) < 10:
        watch.fail(f"too few samples after the {warm:.0f} s warm-up ({len(steady)}): run longer")
    elif growth > 4096:
        watch.fail(f"resident memory grew {growth} KiB from the first tenth to the last")
    if a.mode == "tcp" and before and end:
        if end[5] != 0:
            watch.fail(f"{end[5]} children left after every connection closed")
        if end[4] > before[4]:
            watch.fail(f"descriptors {before[4]} before the first connection, {end[4]} after the last")
        if end[3] > before[3]:
            watch.fail(f"threads {before[3]} before the first connection, {end[3]} after the last")
    summary = {
        "mode": a.mode, "seconds": round(elapsed, 1), "requests": counts["requests"],
        "sessions": counts["sessions"], "sighups": counts["hups"], "lines": watch.lines,
        "MB_out": round(watch.bytes / 1e6, 1), "non_json_lines": watch.non_json,
        "stderr_lines": watch.stderr_lines, "leaks": watch.leaks,
        "warmup_s": round(warm, 1), "rss_first_kib": rss_first, "rss_last_kib": rss_last,
        "rss_growth_kib": growth,
        "rss_slope_kib_per_min": round(slope_kib_per_min([(s[0], s[1]) for s in steady]), 1),
        "rss_max_kib": max((s[1] for s in samples), default=0),
        "hwm_kib": max((s[2] for s in samples), default=0),
        "threads_start": samples[0][3] if samples else 0, "threads_max": max((s[3] for s in samples), default=0),
        "threads_end": end[3] if end else None,
        "fds_start": samples[0][4] if samples else 0, "fds_max": max((s[4] for s in samples), default=0),
        "fds_end": end[4] if end else None,
        "children_max": max((s[5] for s in samples), default=0), "children_end": end[5] if end else None,
        "failures": watch.failures[:20] + ([f"a leak in {watch.leaks} lines"] if watch.leaks else []),
    }
    summary["ok"] = not summary["failures"]
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
