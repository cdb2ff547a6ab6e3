"""Starts `mcp-scrub tcp` on a loopback port of the kernel's choosing, for the bench scripts.

start(cmd, env=None, on_line=None) runs `cmd` (an `mcp-scrub tcp --listen 127.0.0.1:0 ...`
command line) with its stderr piped, reads stderr up to the proxy's "listening on" line and
returns (proc, port), port None when it ended first. Every stderr line, before that one and
after, goes to on_line (text) if given; a thread keeps reading it, so the proxy never blocks on
a full pipe. The thread is proc.stderr_reader (join it after the proxy exits to have every line).
"""
import re
import subprocess
import threading


def start(cmd, env=None, on_line=None):
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    port = None
    for raw in proc.stderr:
        text = raw.decode("utf-8", "replace")
        if on_line:
            on_line(text)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        if m:
            port = int(m.group(1))
            break

    def drain():
        for raw in proc.stderr:
            if on_line:
                on_line(raw.decode("utf-8", "replace"))

    proc.stderr_reader = threading.Thread(target=drain, daemon=True)
    proc.stderr_reader.start()
    return proc, port
