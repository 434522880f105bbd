#!/usr/bin/env bash
# End-to-end test of the proxy's FTPS termination (run as root; .ci/run runs it).
#
#   client ns ftpw-tc        gateway ns ftpw-tg                 server ns ftpw-ts
#   10.78.2.2 -------------- 10.78.2.1 | 10.78.1.2 -------------- 10.78.1.1
#   ftplib FTP_TLS, curl,    ftpwatch proxy: explicit FTPS on :21,          vsftpd (ssl_enable,
#   lftp (GnuTLS)            implicit on :990, TLS to the server            require_ssl_reuse),
#                                                                          ProFTPD mod_tls
# (The namespaces of tests/lab/gateway.sh under names of their own: parallel-safe with
# proxy.sh and live.sh.) Certificates are made at run time: a lab CA, the server's
# certificate for 10.78.1.1 and the proxy's for 10.78.2.1, both signed by it; every
# client verifies the proxy against that CA, the proxy verifies the server against it.
#
# Asserts: every client's transfers complete (a download reset mid-way is aborted,
# client_reset); every transfer and session record says tls; the proxy's protected data
# connections to vsftpd resume the control connection's TLS session (vsftpd refuses
# others with 522); on the server wire no FTP command but FEAT and AUTH is in clear, on
# both wires the files' bytes never are; a server whose certificate does not verify
# gets the client a 421, counted and logged.
# Usage: tests/e2e/proxy_tls.sh [path/to/ftpwatch]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${1:-$root/target/debug/ftpwatch}
export LAB_S=ftpw-ts LAB_C=ftpw-tc LAB_G=ftpw-tg LAB_DIR=/tmp/ftplab-proxy-tls
# shellcheck source=../lab/gateway.sh
. "$root/tests/lab/gateway.sh"

work=$(mktemp -d /tmp/ftpwatch-proxy-tls-e2e.XXXXXX)
HTTP=10433
cp "$BIN" "$work/ftpwatch"; BIN=$work/ftpwatch
trap gateway_down EXIT
started=$SECONDS

fail() {
    echo "proxy TLS e2e: FAIL: $*" >&2
    echo "--- proxy stderr:" >&2; tail -n 30 "$work/proxy.err" >&2 || true
    echo "(work dir: $work)" >&2
    exit 1
}
wait_until() { # seconds, description, command...
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
    fail "timed out waiting for $what"
}

lab_install
gateway_up
for p in tshark; do
    dpkg -s "$p" >/dev/null 2>&1 || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null; rm -f /usr/sbin/policy-rc.d; }
done

# Certificates: a lab CA; the server's (RSA: ProFTPD's TLSRSACertificateFile) for
# 10.78.1.1; the proxy's for the address clients connect to, 10.78.2.1.
CA=$work/ca.pem
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=ftpwatch e2e CA" -keyout ca.key -out ca.pem 2>/dev/null
    leaf() { # name, key args, SAN
        openssl req -newkey $2 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        chmod 600 "$1.key"
    }
    leaf server "rsa:2048" "IP:$SRV4,IP:$SRV6"
    leaf proxy "ec -pkeyopt ec_paramgen_curve:P-256" "IP:$GWC4,IP:$GWC6"
) || fail "making the certificates"
openssl verify -CAfile "$CA" "$work/server.pem" "$work/proxy.pem" >/dev/null || fail "the certificates do not verify"
# ProFTPD's mod_tls reads $LAB_DIR/tls.{crt,key} (lab_tls_cert keeps existing files).
cp "$work/server.pem" "$LAB_DIR/tls.crt"; cp "$work/server.key" "$LAB_DIR/tls.key"; chmod 600 "$LAB_DIR/tls.key"
VSFTPD_TLS="ssl_enable=YES\nrsa_cert_file=$work/server.pem\nrsa_private_key_file=$work/server.key\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=NO\nforce_local_data_ssl=NO\nssl_ciphers=HIGH"

URL="ftp://$LAB_USER:$LAB_PASS@$GWC4"
metric() { # exact series -> value (or "absent")
    in_g curl -sf --max-time 5 "http://127.0.0.1:$HTTP/metrics" | awk -v s="$1" '$1 == s { print $2; f=1 } END { if (!f) print "absent" }'
}
expect_metric() {
    local got; got=$(metric "$1")
    [ "$got" = "$2" ] || fail "$1 = $got, expected $2"
    echo "  ok  $1 = $2"
}
expect_metric_min() { # series, minimum
    local got; got=$(metric "$1")
    [ "$got" != absent ] && [ "${got%.*}" -ge "$2" ] || fail "$1 = $got, expected >= $2"
    echo "  ok  $1 = $got (>= $2)"
}
# Transfers of the event log as "COMMAND outcome cause" lines, in order.
transfers() {
    python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == "transfer":
        cause = e.get("abort_cause") or e.get("interruption_cause") or "-"
        print(e["command"], e["outcome"], cause)
PY
}
# Every transfer and session record of an event log is TLS on both legs.
all_tls() { # event log, sessions expected, transfers expected
    python3 - "$@" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
sessions = [e for e in events if e["type"] == "session"]
transfers = [e for e in events if e["type"] == "transfer"]
assert len(sessions) == int(sys.argv[2]), ("sessions", len(sessions))
assert len(transfers) == int(sys.argv[3]), ("transfers", len(transfers))
for s in sessions:
    assert s.get("tls") is True, s
    legs = s.get("tls_legs") or {}
    assert str(legs.get("client", "")).startswith("TLS") and str(legs.get("server", "")).startswith("TLS"), s
for t in transfers:
    assert t.get("tls") is True, t
    for leg in ("client", "server"):
        assert str(t["legs"][leg].get("tls", "")).startswith("TLS"), (leg, t["legs"])
print("  sessions:", ", ".join(sorted({f'{s["tls_legs"]["client"]}/{s["tls_legs"]["server"]}' for s in sessions})))
PY
}
start_proxy() { # name, extra args...
    local name=$1; shift
    ip netns exec "$LAB_G" "$BIN" proxy --listen "127.0.0.1:$HTTP" --events "$work/$name.jsonl" --data-ports 41000-41049 \
        "$@" >"$work/proxy.out" 2>"$work/proxy.err" &
    PROXY_PID=$!
    wait_until 10 "the proxy's HTTP server" in_g curl -sf --max-time 2 "http://127.0.0.1:$HTTP/healthz" -o /dev/null
}
stop_proxy() {
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PROXY_PID" 2>/dev/null && fail "the proxy did not stop within 5 s of SIGTERM"
    wait "$PROXY_PID" 2>/dev/null || true
    cp "$work/proxy.err" "$work/$1.err"
}
WIRE_PIDS=()
start_wires() { # name: tcpdump on both of the gateway's legs
    in_g tcpdump -i pgc0 -s 0 -B 16384 -U --immediate-mode -w "$work/$1-client.pcap" tcp 2>"$work/tcpdump-c.err" &
    WIRE_PIDS+=($!)
    in_g tcpdump -i pgs0 -s 0 -B 16384 -U --immediate-mode -w "$work/$1-server.pcap" tcp 2>"$work/tcpdump-s.err" &
    WIRE_PIDS+=($!)
    wait_until 5 "tcpdump" grep -q listening "$work/tcpdump-c.err"
    wait_until 5 "tcpdump" grep -q listening "$work/tcpdump-s.err"
}
stop_wires() {
    sleep 0.5
    # SIGTERM: a background job of a script ignores SIGINT, and tcpdump keeps it so.
    kill -TERM "${WIRE_PIDS[@]}" 2>/dev/null || true
    for p in "${WIRE_PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && fail "tcpdump did not stop within 3 s of SIGTERM"
        wait "$p" 2>/dev/null || true
    done
    WIRE_PIDS=()
}
# A capture's TCP payloads, checked: on every control connection the FTP commands in
# clear before TLS (and after it, if any), every data connection opening with a TLS
# record; neither file's bytes nor the password anywhere in the capture.
wire_check() { # pcap, side (server|client), control connections, data connections
    tshark -r "$1" -Y 'tcp.len > 0' -T fields -e tcp.stream -e tcp.srcport -e tcp.dstport -e tcp.payload \
        2>/dev/null > "$1.txt"
    python3 - "$@" /srv/ftplab/small.bin "$work/x.bin" <<'PY'
import collections, sys
pcap, side, n_ctrl, n_data, *files = sys.argv[1:]
streams = collections.OrderedDict()
for line in open(pcap + ".txt"):
    s, sp, dp, payload = line.rstrip("\n").split("\t")
    streams.setdefault(s, []).append((int(sp), int(dp), bytes.fromhex(payload)))
tls = lambda b: len(b) >= 3 and 0x14 <= b[0] <= 0x17 and b[1] == 3
data_ports = range(40000, 40101) if side == "server" else range(41000, 41050)
ctrl, data, clear_after = [], 0, []
for s, segs in streams.items():
    ports = {segs[0][0], segs[0][1]}
    if 21 in ports:
        to_server = [p for a, b, p in segs if b == 21]
        first = next(i for i, p in enumerate(to_server + [b"\x16\x03\x01"]) if tls(p))
        assert first < len(to_server), f"stream {s}: no TLS on the control connection"
        pre = [p.split()[0].decode().upper() for p in to_server[:first]]
        post = [p.split()[0].decode("latin-1").upper() for p in to_server[first:] if not tls(p)]
        ctrl.append(pre)
        if side == "server":
            assert pre == ["FEAT", "AUTH"] and not post, f"stream {s}: in clear: {pre} then {post}"
        else:
            assert pre[-1:] == ["AUTH"] and not {"USER", "PASS"} & set(pre + post), f"stream {s}: {pre} {post}"
            if post:
                clear_after.append(post)
    elif 990 in ports and side == "client":
        assert tls(segs[0][2]) and all(tls(p) for a, b, p in segs if b == 990), f"stream {s}: implicit FTPS in clear"
        ctrl.append(["(implicit)"])
    elif ports & set(data_ports):
        assert segs[0][2][:2] == b"\x16\x03", f"data stream {s} opens with {segs[0][2][:16]!r}"
        data += 1
    else:
        raise AssertionError(f"unexpected stream {s}: ports {ports}")
assert (len(ctrl), data) == (int(n_ctrl), int(n_data)), (len(ctrl), data)
# Only the CCC session sends commands in clear after TLS (the client's choice).
assert len(clear_after) == (1 if side == "client" else 0), clear_after
raw = open(pcap, "rb").read()
assert b"labpass" not in raw, "the password in clear"
for f in files:
    content = open(f, "rb").read()
    for off in range(0, len(content) - 16, 4096):
        assert content[off:off + 16] not in raw, f"{f}: bytes at {off} in clear"
print(f"  {side} wire: {len(ctrl)} control connections (in clear before TLS: "
      f"{sorted({' '.join(p) for p in ctrl})}; after CCC: {clear_after}), {data} data connections opening with TLS")
PY
}
# lab_start_server with the server's stderr in a file (also the "Terminated" of the
# subshell running it when lab_stop_server ends it).
start_server() { lab_start_server "$@" 2>>"$work/server.err" || fail "$1 did not start: $(tail -n 5 "$work/server.err")"; }
check_curl() { # description, expected bytes, curl args...
    local what=$1 want=$2; shift 2
    local got; got=$(in_c curl -s -S --max-time 20 --cacert "$CA" -w '%{http_code} %{size_download} %{size_upload}' -o /dev/null "$@") ||
        fail "curl $what: $got"
    set -- $got; got="$1 $(($2 + $3))"
    [ "$got" = "226 $want" ] || fail "curl $what: $got, expected 226 $want"
    echo "  ok  curl $what: 226, $want bytes"
}
# An ftplib FTP_TLS session verifying the proxy against the CA: LIST, RETR, STOR.
ftplib_tls() { # upload name
    in_c timeout 60 python3 - "$GWC4" "$CA" "$1" "$work/$1" <<'PY'
import ftplib, io, os, ssl, sys
host, ca, name, keep = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
f = ftplib.FTP_TLS(context=ctx, timeout=15)
f.connect(host, 21)
f.auth()
f.login("ftplab", "labpass")
f.prot_p()
lines = []
f.retrlines("LIST", lines.append)
assert any("small.bin" in l for l in lines), lines
buf = io.BytesIO()
f.retrbinary("RETR small.bin", buf.write)
assert buf.getvalue() == open("/srv/ftplab/small.bin", "rb").read(), len(buf.getvalue())
data = os.urandom(100000)
open(keep, "wb").write(data)
f.storbinary(f"STOR upload/{name}", io.BytesIO(data))
f.quit()
print(f"LIST {len(lines)} lines, RETR {len(buf.getvalue())} bytes, STOR {len(data)} bytes")
PY
}

echo "proxy TLS e2e: vsftpd with TLS (require_ssl_reuse) behind the proxy"
LAB_VSFTPD_EXTRA=$VSFTPD_TLS start_server vsftpd
start_wires vsftpd
start_proxy vsftpd --upstream "$SRV4:21" --upstream-ca "$CA" --tls-cert "$work/proxy.pem" --tls-key "$work/proxy.key" \
    --ftp-listen "$GWC4:21" --ftps-listen "$GWC4:990"
out=$(ftplib_tls x.bin 2>&1) || fail "ftplib FTP_TLS: $out"
cmp -s "$work/x.bin" /srv/ftplab/upload/x.bin || fail "the file ftplib uploaded differs on the server"
echo "  ok  Python ftplib FTP_TLS (PROT P): $out"
check_curl "--ssl-reqd download" 65536 --ssl-reqd "$URL/small.bin"
check_curl "--ssl-reqd --ftp-ssl-ccc download" 65536 --ssl-reqd --ftp-ssl-ccc "$URL/small.bin"
in_c timeout 60 lftp -u "$LAB_USER,$LAB_PASS" -e "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file $CA; set net:max-retries 1; set net:timeout 10; get small.bin -o $work/lftp.bin; bye" \
    "$GWC4" >"$work/lftp.out" 2>&1 || fail "lftp get: $(cat "$work/lftp.out")"
cmp -s "$work/lftp.bin" /srv/ftplab/small.bin || fail "lftp's download differs from the file"
echo "  ok  lftp (GnuTLS, ssl-force, ssl-protect-data, CA verified) get: the file, byte for byte"
check_curl "implicit FTPS download (:990)" 65536 "ftps://$LAB_USER:$LAB_PASS@$GWC4:990/small.bin"
# A protected download the client resets mid-way: SO_LINGER 0 on the TLS data socket,
# closed without close_notify.
in_c timeout 60 python3 - "$GWC4" "$CA" >"$work/reset.out" 2>&1 <<'PY' || fail "reset download: $(cat "$work/reset.out")"
import ftplib, socket, ssl, struct, sys
host, ca = sys.argv[1:]
f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca), timeout=15)
f.connect(host, 21); f.auth(); f.login("ftplab", "labpass"); f.prot_p()
conn = f.transfercmd("RETR big.bin")
got = 0
while got < 1 << 20:
    chunk = conn.recv(65536)
    assert chunk, "the download ended early"
    got += len(chunk)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
try:
    reply = f.getresp()
except ftplib.Error as e:
    reply = str(e)
print(reply)
assert reply.startswith("426"), reply
f.quit()
PY
echo "  ok  a protected download reset by the client mid-way: $(head -n 1 "$work/reset.out")"
sleep 2.5   # the 426 settles (2 s)
in_g curl -sf --max-time 5 "http://127.0.0.1:$HTTP/metrics" > "$work/vsftpd.metrics"
stop_wires
grep -E '^ftpwatch_proxy_tls' "$work/vsftpd.metrics" | grep -v ' 0$' | sed 's/^/    /'
expect_metric 'ftpwatch_proxy_sessions_total' 6
expect_metric 'ftpwatch_proxy_tls_handshakes_total{channel="control",leg="client",result="ok"}' 6
expect_metric 'ftpwatch_proxy_tls_handshakes_total{channel="control",leg="server",result="ok"}' 6
expect_metric 'ftpwatch_proxy_tls_handshakes_total{channel="data",leg="client",result="ok"}' 8
expect_metric 'ftpwatch_proxy_tls_handshakes_total{channel="data",leg="server",result="ok"}' 8
# vsftpd (require_ssl_reuse=YES) answers 522 to a data connection that does not resume.
expect_metric 'ftpwatch_proxy_tls_data_resumptions_total{leg="server",result="full"}' 0
expect_metric 'ftpwatch_proxy_tls_data_resumptions_total{leg="server",result="refused"}' 0
expect_metric 'ftpwatch_proxy_tls_data_resumptions_total{leg="server",result="resumed"}' 8
stop_proxy vsftpd

transfers "$work/vsftpd.jsonl" > "$work/vsftpd-transfers.txt"
cat > "$work/want.txt" <<WANT
LIST completed -
RETR completed -
STOR completed -
RETR completed -
RETR completed -
RETR completed -
RETR completed -
RETR aborted client_reset
WANT
diff -u "$work/want.txt" "$work/vsftpd-transfers.txt" || fail "the proxy's transfers differ from what the clients did"
echo "  ok  event log: 8 transfers with their outcomes (the reset one aborted, client_reset)"
all_tls "$work/vsftpd.jsonl" 6 8 || fail "event log: not every record is TLS on both legs"
echo "  ok  event log: every session and transfer record says tls on both legs"
[ "$(grep '"type":"session"' "$work/vsftpd.jsonl" | grep -c '"ccc":true')" = 1 ] || fail "not exactly one session with ccc: true"
echo "  ok  event log: the curl --ftp-ssl-ccc session (only) has ccc: true"
wire_check "$work/vsftpd-server.pcap" server 6 8 || fail "the server-side wire"
echo "  ok  server wire: only FEAT and AUTH TLS in clear, then TLS; every data connection TLS; no file bytes, no password"
wire_check "$work/vsftpd-client.pcap" client 6 8 || fail "the client-side wire"
echo "  ok  client wire: TLS from AUTH (or from the first byte on :990); every data connection TLS; no file bytes, no password"

echo "proxy TLS e2e: ProFTPD with mod_tls behind the proxy (--upstream-tls required)"
start_server proftpd-tls
start_proxy proftpd --upstream "$SRV4:21" --upstream-tls required --upstream-ca "$CA" \
    --tls-cert "$work/proxy.pem" --tls-key "$work/proxy.key" --ftp-listen "$GWC4:21"
out=$(ftplib_tls y.bin 2>&1) || fail "ftplib FTP_TLS: $out"
cmp -s "$work/y.bin" /srv/ftplab/upload/y.bin || fail "the file ftplib uploaded differs on the server"
echo "  ok  Python ftplib FTP_TLS (PROT P): $out"
in_g curl -sf --max-time 5 "http://127.0.0.1:$HTTP/metrics" > "$work/proftpd.metrics"
grep -E '^ftpwatch_proxy_tls_(data_res|handshakes)' "$work/proftpd.metrics" | grep -v ' 0$' | sed 's/^/    /'
expect_metric 'ftpwatch_proxy_tls_handshakes_total{channel="data",leg="server",result="ok"}' 3
stop_proxy proftpd
[ "$(transfers "$work/proftpd.jsonl")" = "$(printf 'LIST completed -\nRETR completed -\nSTOR completed -')" ] ||
    fail "ProFTPD's transfers: $(transfers "$work/proftpd.jsonl")"
all_tls "$work/proftpd.jsonl" 1 3 || fail "event log: not every record is TLS on both legs"
echo "  ok  event log: LIST, RETR, STOR completed, TLS on both legs"

echo "proxy TLS e2e: a server certificate that does not verify"
LAB_VSFTPD_EXTRA=$VSFTPD_TLS start_server vsftpd
start_proxy badca --upstream "$SRV4:21" --upstream-ca "$root/tests/data/tls/other-ca.pem" \
    --tls-cert "$work/proxy.pem" --tls-key "$work/proxy.key" --ftp-listen "$GWC4:21"
greeting=$(in_c timeout 10 bash -c "exec 3<>/dev/tcp/$GWC4/21; head -n 1 <&3" | tr -d '\r' || true)
case "$greeting" in 421*TLS*) ;; *) fail "expected a 421 mentioning TLS, got: $greeting" ;; esac
echo "  ok  the client is greeted with: $greeting"
expect_metric_min 'ftpwatch_proxy_tls_handshakes_total{channel="control",leg="server",result="certificate"}' 1
stop_proxy badca
python3 - "$work/badca.jsonl" <<'PY' || fail "no proxy_reply record for the 421: $(grep proxy_reply "$work/badca.jsonl")"
import json, sys
r = [e for e in map(json.loads, open(sys.argv[1])) if e["type"] == "proxy_reply"]
assert len(r) == 1 and r[0]["code"] == 421 and r[0]["reason"] == "upstream_tls_failed", r
assert "certificate" in r[0]["detail"].lower(), r[0]["detail"]
print(f"  proxy_reply: {r[0]['code']} {r[0]['reason']}: {r[0]['detail']}")
PY
echo "  ok  421 counted as a certificate failure and logged as upstream_tls_failed"
echo "proxy TLS e2e: PASS ($((SECONDS - started)) s)"
rm -rf "$work"
