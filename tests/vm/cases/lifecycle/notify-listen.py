#!/usr/bin/env python3
"""Listen on a NOTIFY_SOCKET (unix datagram) like systemd does and log each
message with its arrival time; on READY=1 also record how many multipath
maps exist at that moment (READY must come only after maps exist)."""
import os
import socket
import subprocess
import sys
import time

path, log = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        for line in msg.split("\n"):
            if not line:
                continue
            extra = ""
            if line == "READY=1":
                maps = subprocess.run(["dmsetup", "ls", "--target", "multipath"],
                                      capture_output=True, text=True).stdout
                n = len([l for l in maps.splitlines() if l.strip() and "No devices" not in l])
                extra = f" maps={n}"
            out.write(f"{time.monotonic():.3f} {line}{extra}\n")
