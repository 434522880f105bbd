#!/usr/bin/env python3
"""Many FTP sessions at once, for benches/proxy.sh.

usage: sessions.py burst HOST N         N sessions (started STAGGER s apart), each USER/PASS,
                                        RETR small.bin (64 KiB), QUIT; prints sessions
                                        completed per second and the number that failed
       sessions.py hold HOST N READY    N sessions log in and stay idle; touches READY
                                        when all are in, waits for READY's sibling
                                        `release` (at most 60 s), then QUITs
Bounded: every socket has a timeout, every wait a limit.
"""
import ftplib
import os
import sys
import threading
import time

# Anonymous by default: a login without PAM, so that the server's authentication is not
# what is measured (FTP_USER/FTP_PASSWORD to change it).
USER = os.environ.get("FTP_USER", "anonymous")
PASSWORD = os.environ.get("FTP_PASSWORD", "bench@example.org")
TIMEOUT = 60


# Sessions start this far apart (500 over 1 s): vsftpd accepts with a backlog of 32,
# and a burst of SYNs beyond it is dropped and retried after 1, 3, 7... s.
STAGGER = float(os.environ.get("STAGGER", "0.002"))


def session(host, results, i, start):
    time.sleep(max(0.0, start + i * STAGGER - time.monotonic()))
    try:
        f = ftplib.FTP()
        f.connect(host, 21, timeout=TIMEOUT)
        f.login(USER, PASSWORD)
        got = []
        f.retrbinary("RETR small.bin", got.append)
        f.quit()
        results[i] = sum(map(len, got)) == 65536
    except Exception as e:  # noqa: BLE001 - counted as a failed session
        print(f"session {i}: {e}", file=sys.stderr)
        results[i] = False


def burst(host, n):
    results = [False] * n
    start = time.monotonic()
    threads = [
        threading.Thread(target=session, args=(host, results, i, start)) for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    elapsed = time.monotonic() - start
    ok = sum(results)
    # Sessions completed per second of the whole run; failures are reported, not hidden.
    print(f"{ok / elapsed:.0f} {n - ok}")


def hold(host, n, ready):
    release = os.path.join(os.path.dirname(ready), "release")
    conns, lock = [], threading.Lock()

    start = time.monotonic()

    def login(i):
        time.sleep(max(0.0, start + i * STAGGER - time.monotonic()))
        f = ftplib.FTP()
        f.connect(host, 21, timeout=TIMEOUT)
        f.login(USER, PASSWORD)
        with lock:
            conns.append(f)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    if len(conns) != n:
        print(f"only {len(conns)} of {n} sessions logged in", file=sys.stderr)
        sys.exit(1)
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.1)
    for f in conns:
        try:
            f.quit()
        except ftplib.all_errors:
            pass


if __name__ == "__main__":
    mode, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "burst":
        burst(host, n)
    else:
        hold(host, n, sys.argv[4])
