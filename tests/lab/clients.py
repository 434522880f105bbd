#!/usr/bin/env python3
"""FTP clients for the lab: Python ftplib sessions (plain and FTPS), and a raw client
that ends data connections the ways real clients and networks do (reset with SO_LINGER
0, ABOR with and without Telnet urgent bytes, a silently black-holed data path).

usage: clients.py SCENARIO SERVER_ADDRESS
Every scenario is bounded in time (socket timeouts) and in bytes.
"""
import ftplib
import io
import socket
import struct
import subprocess
import sys
import time

USER, PASSWORD = "ftplab", "labpass"
TIMEOUT = 20


class Control:
    """A control connection that speaks just enough FTP."""

    def __init__(self, host):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.create_connection((host, 21), timeout=TIMEOUT)
        self.family = family
        self.buf = b""
        self.reply()  # greeting

    def send(self, line: bytes, oob_prefix: bytes = b""):
        if oob_prefix:
            # BSD abort: Telnet IP, then IAC DM as urgent data (RFC 959 §4.1.3).
            self.sock.sendall(oob_prefix[:-1])
            self.sock.send(oob_prefix[-1:], socket.MSG_OOB)
        self.sock.sendall(line + b"\r\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("control connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def reply(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        first = self.line()
        code = first[:3]
        if first[3:4] == "-":
            while True:
                l = self.line()
                if l[:3] == code and l[3:4] == " ":
                    break
        print(f"  <- {first}", flush=True)
        return int(code), first

    def cmd(self, text, timeout=TIMEOUT):
        print(f"  -> {text if not text.startswith('PASS') else 'PASS ****'}", flush=True)
        self.send(text.encode())
        return self.reply(timeout)

    def login(self):
        self.cmd(f"USER {USER}")
        self.cmd(f"PASS {PASSWORD}")
        self.cmd("TYPE I")

    def passive(self):
        if self.family == socket.AF_INET6:
            _, text = self.cmd("EPSV")
            port = int(text.split("(")[1].strip(")").strip("|"))
            return (self.host, port)
        _, text = self.cmd("PASV")
        nums = [int(x) for x in text.split("(")[1].split(")")[0].split(",")]
        return (".".join(map(str, nums[:4])), nums[4] * 256 + nums[5])

    def data_socket(self, rcvbuf=None):
        addr = self.passive()
        s = socket.socket(self.family, socket.SOCK_STREAM)
        if rcvbuf:
            # A small window keeps the capture small while the server still blocks.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(TIMEOUT)
        s.connect(addr)
        return s

    def quit(self):
        try:
            self.cmd("QUIT", timeout=5)
        except (EOFError, OSError) as e:
            print(f"  (quit: {e})")
        self.sock.close()


def reset(sock):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def drain(sock, seconds, limit, step_timeout, chunk):
    """Read what the server still sends for up to `seconds` (at most `limit` bytes), as
    a client waiting for its abort to take effect does; returns the bytes read."""
    sock.settimeout(step_timeout)
    deadline, drained = time.time() + seconds, 0
    try:
        while time.time() < deadline and drained < limit:
            data = sock.recv(chunk)
            if not data:
                print("  (server closed the data connection)")
                break
            drained += len(data)
    except OSError:
        pass
    return drained


def replies_until_final(c, timeout=TIMEOUT):
    """Read replies until one that is not 1yz, or until the server goes quiet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            code, _ = c.reply(timeout=max(0.5, deadline - time.time()))
        except (socket.timeout, TimeoutError):
            print("  (no more replies)")
            return None
        if code >= 200:
            return code
    return None


def reset_retr(host, then_noop=False):
    """A download the client resets mid-way. With `then_noop`, the client then sends
    NOOP: pure-ftpd sends no final reply to such a RETR, so the next reply (200 to
    NOOP) answers the NOOP."""
    c = Control(host)
    c.login()
    d = c.data_socket(rcvbuf=16384)
    c.cmd("RETR big.bin")
    got = 0
    while got < 32768:
        got += len(d.recv(4096))
    reset(d)
    replies_until_final(c, timeout=3 if then_noop else 5)
    if then_noop:
        c.cmd("NOOP", timeout=5)
    c.quit()


def reset_stor(host):
    c = Control(host)
    c.login()
    d = c.data_socket()
    c.cmd("STOR upload/reset.bin")
    d.sendall(b"x" * 65536)
    time.sleep(0.2)
    reset(d)
    replies_until_final(c, timeout=5)
    c.quit()


def abor(host, bsd):
    c = Control(host)
    c.login()
    d = c.data_socket(rcvbuf=16384)
    c.cmd("RETR big.bin")
    got = 0
    while got < 32768:
        got += len(d.recv(4096))
    print("  -> ABOR" + (" (IAC IP, IAC DM urgent)" if bsd else ""), flush=True)
    c.send(b"ABOR", oob_prefix=b"\xff\xf4\xff\xf2" if bsd else b"")
    # Read on for a moment as real clients do (a server that handles ABOR at once
    # closes the data connection itself), then close: with unread data that is a RST.
    drain(d, seconds=0.5, limit=262144, step_timeout=0.2, chunk=65536)
    d.close()
    replies_until_final(c, timeout=5)  # 426 (or 226)
    replies_until_final(c, timeout=2)  # 226/225 for the ABOR itself
    c.quit()


def stall(host):
    """The data path goes silent mid-transfer (a firewall dropping it)."""
    c = Control(host)
    c.login()
    d = c.data_socket(rcvbuf=16384)
    port = d.getpeername()[1]
    c.cmd("RETR big.bin")
    got = 0
    while got < 32768:
        got += len(d.recv(4096))
    rules = [
        ["-A", "INPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
        ["-A", "OUTPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
    ]
    for r in rules:
        subprocess.run(["iptables"] + r, check=True)
    try:
        replies_until_final(c, timeout=25)
    finally:
        for r in rules:
            subprocess.run(["iptables", "-D"] + r[1:], check=True)
    reset(d)
    c.quit()


def bounce(host):
    """PORT to a third party's address, then to a privileged port of the client's own:
    an FTP proxy refuses both (RFC 2577 §3) before they reach the server."""
    c = Control(host)
    c.login()
    me = c.sock.getsockname()[0]
    third = host.rsplit(".", 1)[0] + ".1"   # another address of the proxy's network
    for target in (third, me):
        port = 2000 if target == third else 25
        nums = target.split(".") + [str(port >> 8), str(port & 255)]
        code, _ = c.cmd("PORT " + ",".join(nums))
        print(f"  PORT to {target}:{port}: {code}", flush=True)
    c.quit()


def slow_retr(host):
    """A download read slowly (small window), until the data connection ends: the
    test resets it from the server's side meanwhile. Prints how it ended."""
    c = Control(host)
    c.login()
    d = c.data_socket(rcvbuf=8192)
    c.cmd("RETR big.bin")
    got, deadline = 0, time.time() + 15
    d.settimeout(2)
    ending = "timeout"
    try:
        while time.time() < deadline:
            data = d.recv(4096)
            if not data:
                ending = "fin"
                break
            got += len(data)
            time.sleep(0.05)
    except ConnectionResetError:
        ending = "rst"
    except OSError as e:
        ending = f"error {e}"
    print(f"  data connection ended by {ending} after {got} bytes", flush=True)
    d.close()
    replies_until_final(c, timeout=10)
    c.quit()


def with_ftplib(host):
    f = ftplib.FTP()
    f.connect(host, 21, timeout=TIMEOUT)
    f.login(USER, PASSWORD)
    f.voidcmd("TYPE I")
    f.retrbinary("RETR small.bin", lambda b: None)
    f.nlst()
    f.storbinary("STOR upload/ftplib.bin", io.BytesIO(b"u" * 40000))
    try:
        list(f.mlsd())
    except ftplib.error_perm as e:
        print(f"  (MLSD: {e})")
    # ftplib's abort(): Telnet IP + DM urgent, then ABOR, mid-download.
    conn = f.transfercmd("RETR big.bin")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    got = 0
    while got < 32768:
        got += len(conn.recv(4096))
    # As ftplib's own retrbinary does on an error: close the data socket (a reset,
    # since data is unread), then abort(), which sends IAC IP, IAC DM (urgent), ABOR.
    conn.close()
    f.sock.settimeout(5)
    for step in ("abort", "getresp"):
        try:
            print(f"  {step}() ->", getattr(f, step)())
        except ftplib.all_errors as e:
            print(f"  {step}() raised: {e}")
    try:
        f.quit()
    except ftplib.all_errors as e:
        print(f"  quit: {e}")


def ftplib_abort(host):
    """ftplib's own abort() while the download's data connection is open and unread.
    abort() sends "ABOR" CRLF with MSG_OOB (only the last byte is urgent, no Telnet
    IP/Synch). vsftpd with async_abor_enable=YES reads it in its SIGURG handler, drops
    the 4 bytes it takes for Telnet IP/Synch and answers 500; the transfer goes on until
    the client closes the data connection (a reset: data is unread), then 426."""
    f = ftplib.FTP()
    f.set_debuglevel(1)  # commands and replies into the log (the password masked)
    f.connect(host, 21, timeout=TIMEOUT)
    f.login(USER, PASSWORD)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR big.bin")  # PASV, RETR, 150
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    conn.settimeout(5)
    got = 0
    while got < 32768:
        got += len(conn.recv(4096))
    print(f"  read {got} bytes of the download; abort()", flush=True)
    f.sock.settimeout(10)
    try:
        print("  abort() ->", f.abort())
    except ftplib.all_errors as e:
        print(f"  abort() raised: {e!r}")
    # The server may go on sending: read on a moment, as a client that waits for its
    # abort to take effect does, then close (with unread data, a reset).
    drained = drain(conn, seconds=0.3, limit=65536, step_timeout=0.1, chunk=16384)
    print(f"  read {drained} more bytes; closing the data connection", flush=True)
    conn.close()
    f.sock.settimeout(5)
    # The final reply to the RETR (426), then QUIT; a reply the server still owed
    # would show up as quit()'s answer.
    for step in ("getresp", "quit"):
        try:
            print(f"  {step}() ->", getattr(f, step)())
        except ftplib.all_errors as e:
            print(f"  {step}() raised: {e!r}")


def ftplib_basic(host):
    """Passive download, listing and upload with Python's ftplib, then QUIT."""
    f = ftplib.FTP()
    f.connect(host, 21, timeout=TIMEOUT)
    f.login(USER, PASSWORD)
    f.retrbinary("RETR small.bin", lambda b: None)
    f.nlst()
    f.storbinary("STOR upload/ftplib-basic.bin", io.BytesIO(b"u" * 30000))
    f.quit()


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS, but each data connection resumes the control connection's TLS
    session, as vsftpd's require_ssl_reuse=YES demands (ftplib alone does not)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size


def ftps(host):
    """Explicit FTPS without CCC: AUTH TLS, login, PROT P, then LIST, RETR and STOR over
    TLS data connections, and a download the client resets mid-way (SO_LINGER 0, no TLS
    close_notify). The control connection stays encrypted to the end."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE   # the lab's certificate is self-signed
    f = ReusingFTP_TLS(context=ctx)
    f.set_debuglevel(1)  # commands and replies into the log (the password masked)
    print("  connect ->", f.connect(host, 21, timeout=TIMEOUT), flush=True)
    print("  auth() ->", f.auth(), flush=True)
    print(f"  control connection: {f.sock.version()} {f.sock.cipher()[0]}", flush=True)
    print("  login() ->", f.login(USER, PASSWORD), flush=True)
    print("  prot_p() ->", f.prot_p(), flush=True)
    print("  TYPE I ->", f.voidcmd("TYPE I"), flush=True)
    lines = []
    print("  LIST ->", f.retrlines("LIST", lines.append), f"({len(lines)} lines)", flush=True)
    got = []
    print("  RETR small.bin ->", f.retrbinary("RETR small.bin", got.append),
          f"({sum(map(len, got))} bytes)", flush=True)
    print("  STOR upload/tls.bin ->",
          f.storbinary("STOR upload/tls.bin", io.BytesIO(b"t" * 50000)), flush=True)
    conn = f.transfercmd("RETR big.bin")  # PASV, RETR, 150, TLS handshake
    print(f"  data connection: {conn.version()} resumed={conn.session_reused}", flush=True)
    conn.settimeout(5)
    got = 0
    while got < 300000:
        data = conn.recv(16384)
        if not data:
            break
        got += len(data)
    print(f"  read {got} bytes of big.bin; reset the data connection (no close_notify)",
          flush=True)
    reset(conn)
    f.sock.settimeout(10)
    for step in ("getresp", "quit"):
        try:
            print(f"  {step}() ->", getattr(f, step)(), flush=True)
        except ftplib.all_errors as e:
            print(f"  {step}() raised: {e!r}", flush=True)


SCENARIOS = {
    "ftplib": with_ftplib,
    "ftplib-basic": ftplib_basic,
    "ftplib-abort": ftplib_abort,
    "reset-retr": reset_retr,
    "reset-retr-noop": lambda h: reset_retr(h, then_noop=True),
    "reset-stor": reset_stor,
    "abor": lambda h: abor(h, bsd=False),
    "abor-bsd": lambda h: abor(h, bsd=True),
    "stall": stall,
    "bounce": bounce,
    "slow-retr": slow_retr,
    "ftps": ftps,
}

if __name__ == "__main__":
    name, host = sys.argv[1], sys.argv[2]
    print(f"scenario {name} against {host}", flush=True)
    SCENARIOS[name](host)
