#!/usr/bin/env python3
"""Peak memory of `mcp-scrub tcp` with many connections carrying large results at once.

  tcp_memory.py MCP_SCRUB REPLY_SERVER --conns N --bytes B --requests R [-- SCRUB_OPTIONS...]

Starts `MCP_SCRUB tcp --listen 127.0.0.1:0 SCRUB_OPTIONS -- REPLY_SERVER B` (a child per
connection answering every request with a B-byte tools/call result), opens N connections, and on
each, all at once, sends R requests one at a time (each answer read whole before the next). Then
stops the proxy (SIGTERM) and prints its peak resident memory in KiB (VmHWM, read from /proc just
before the stop), the answers' bytes, and whether every answer arrived. The children are separate
processes and are not counted. Exit status 1 if an answer was missing or the proxy did not start.
"""
import argparse
import re
import signal
import socket
import subprocess
import sys
import threading

import tcp_proxy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scrub")
    ap.add_argument("server")
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--bytes", type=int, default=1 << 20)
    ap.add_argument("--requests", type=int, default=4)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    extra = argv[cut + 1:]
    cmd = [a.scrub, "tcp", "--listen", "127.0.0.1:0", "--max-connections", "0", *extra,
           "--", a.server, str(a.bytes)]
    proxy, port = tcp_proxy.start(cmd)  # its log is drained, so it never blocks on stderr
    if port is None:
        print("tcp_memory: mcp-scrub tcp did not start", file=sys.stderr)
        return 1

    got = [0] * a.conns
    ok = [True] * a.conns
    start = threading.Barrier(a.conns)

    def client(i):
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                start.wait()
                for k in range(a.requests):
                    req = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"x"}}\n' % k
                    s.sendall(req.encode())
                    buf = bytearray()
                    while not buf.endswith(b"\n"):
                        chunk = s.recv(1 << 20)
                        if not chunk:
                            ok[i] = False
                            return
                        buf += chunk
                    got[i] += len(buf)
        except OSError:
            ok[i] = False

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(f"/proc/{proxy.pid}/status") as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    proxy.send_signal(signal.SIGTERM)
    try:
        proxy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proxy.kill()
        proxy.wait()
    complete = all(ok) and all(g >= a.requests * a.bytes for g in got)
    print(f"{hwm} {sum(got)} {'complete' if complete else 'INCOMPLETE'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
