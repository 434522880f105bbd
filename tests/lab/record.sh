#!/usr/bin/env bash
# Record the real-server captures committed under tests/data/: vsftpd, proftpd and
# pure-ftpd from Debian, driven by curl, lftp, Python ftplib and clients.py, in network
# namespaces this script creates (see lab.sh). Run as root:  tests/lab/record.sh
# Each capture gets a .log beside it with what the client saw.
#
# ONLY: record just the named captures (space-separated; the others are left as they
# are, since tests assert exact values on them), e.g.
#   ONLY="pure-ftpd-reset-noop vsftpd-ftplib-abort proftpd-ccc" tests/lab/record.sh
# OUT: another directory for the captures (default tests/data).
# LAB_S, LAB_C, LAB_DIR (see lab.sh): other namespace names and work directory, to run
# beside another user of the lab.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/../data}
# shellcheck source=lab.sh
. "$here/lab.sh"

lab_install
lab_up
trap lab_down EXIT
mkdir -p "$out"
URL="ftp://$LAB_USER:$LAB_PASS@$SRV4"

ONLY=${ONLY:-}
recorded=" "
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

capture() { # name, then the command to run in the client namespace
    local name=$1; shift
    want "$name" || return 0
    recorded+="$name "
    local pcap="$out/$name.pcap" log="$out/$name.log"
    # Not through in_c: $! must be tcpdump itself (ip netns exec execs it).
    ip netns exec "$LAB_C" tcpdump -Z root -i fwc0 -s 0 -U --immediate-mode -w "$pcap" tcp 2>/dev/null &
    local dump=$!
    sleep 1
    echo "== $name" | tee "$log"
    in_c timeout 120 "$@" >>"$log" 2>&1 || echo "(client exited $?)" >>"$log"
    sleep 1
    kill -INT $dump; wait $dump 2>/dev/null || true
    echo "   $(stat -c %s "$pcap") bytes" | tee -a "$log"
}

curl_session() {
    set -x
    curl -sS -o /dev/null "$URL/small.bin"                              # EPSV
    curl -sS -o /dev/null --disable-epsv "$URL/small.bin"               # PASV
    curl -sS -o /dev/null -P "$CLI4" --disable-eprt "$URL/small.bin"    # PORT
    curl -sS -o /dev/null -P "$CLI4" "$URL/small.bin"                   # EPRT
    curl -sS -T "$LAB_DIR/up.bin" "$URL/upload/curl.bin"                # STOR
    curl -sS -o /dev/null "$URL/missing.bin" || true                    # 550
    curl -sS -o /dev/null -g "ftp://$LAB_USER:$LAB_PASS@[$SRV6]/small.bin"   # IPv6
    curl -sS -o /dev/null --limit-rate 20k -m 1 "$URL/big.bin" || true  # client gives up
    sleep 2
}
export -f curl_session
export URL LAB_DIR CLI4 SRV6 LAB_USER LAB_PASS

for server in vsftpd proftpd pure-ftpd; do
    # With ONLY, skip a server none of whose captures below is named.
    wanted=0
    for kind in curl lftp ftplib reset abor stall; do want "$server-$kind" && wanted=1; done
    [ $wanted = 1 ] || continue
    lab_start_server "$server"
    capture "$server-curl" bash -c curl_session
    capture "$server-lftp" lftp -c "set net:max-retries 1; set net:timeout 10; set xfer:clobber on;
        open -u $LAB_USER,$LAB_PASS $SRV4;
        set ftp:passive-mode on; set ftp:prefer-epsv no; get small.bin -o $LAB_DIR/lftp-small.bin;
        cls -l; put $LAB_DIR/up.bin -o upload/lftp.bin;
        set ftp:passive-mode off; get small.bin -o $LAB_DIR/lftp-active.bin; quit"
    capture "$server-ftplib" python3 "$here/clients.py" ftplib "$SRV4"
    capture "$server-reset" bash -c "python3 $here/clients.py reset-retr $SRV4; python3 $here/clients.py reset-stor $SRV4"
    capture "$server-abor" bash -c "python3 $here/clients.py abor $SRV4; python3 $here/clients.py abor-bsd $SRV4"
    if [ "$server" != pure-ftpd ]; then  # pure-ftpd waits over 60 s: not recorded
        capture "$server-stall" python3 "$here/clients.py" stall "$SRV4"
    fi
    lab_stop_server
done

# pure-ftpd sends no final reply to a RETR whose data connection the client reset; the
# client's NOOP then gets 200, which is the NOOP's reply and not the RETR's.
if want pure-ftpd-reset-noop; then
    lab_start_server pure-ftpd
    capture pure-ftpd-reset-noop python3 "$here/clients.py" reset-retr-noop "$SRV4"
fi

# ftplib's abort() (ABOR CRLF sent urgent, no Telnet IP/Synch) mid-download: vsftpd with
# async_abor_enable=YES answers 500 and goes on sending; the client's close then gets
# 426. (With the default async_abor_enable=NO vsftpd reads no command during a transfer,
# and the ABOR gets 225 after the 426, as in vsftpd-ftplib.)
if want vsftpd-ftplib-abort; then
    lab_start_server vsftpd-async-abor
    capture vsftpd-ftplib-abort python3 "$here/clients.py" ftplib-abort "$SRV4"
fi

# FTPS with CCC (RFC 4217 section 6): AUTH, TLS, login, PBSZ/PROT, CCC, both TLS
# shutdowns, then the rest of the control connection in cleartext.
#  1. TLS 1.2, CCC mode active: curl sends its close_notify too, so there are two alert
#     records (content type 21; which one comes first varies from run to run).
#     PROT C: RETR and LIST, EPSV, the data in clear.
#  2. TLS 1.3, curl's default CCC mode passive: only proftpd's close_notify (TLS 1.3
#     sends it as content type 23). PROT P: PASV, STOR over a TLS data connection.
# curl (7.88) sends AUTH SSL first; proftpd accepts it (234). SSLKEYLOGFILE puts the
# session keys in $LAB_DIR (not committed), to read the alerts with tshark.
ccc_session() {
    # curl -v shows the login it sends inside TLS: the password is masked in the log.
    {
        set -x
        curl -sS -v -k --ftp-ssl-control --ftp-ssl-ccc --ftp-ssl-ccc-mode active --tls-max 1.2 \
            -o /dev/null "$URL/small.bin" -o /dev/null "$URL/"
        curl -sS -v -k --ssl-reqd --ftp-ssl-ccc --disable-epsv -T "$LAB_DIR/up.bin" "$URL/upload/ccc.bin"
    } 2>&1 | sed -u 's/^> PASS .*/> PASS ****/'
}
export -f ccc_session
if want proftpd-ccc; then
    lab_start_server proftpd-tls
    rm -f "$LAB_DIR/proftpd-ccc.keylog"
    SSLKEYLOGFILE="$LAB_DIR/proftpd-ccc.keylog" capture proftpd-ccc bash -c ccc_session
fi

# FTPS without CCC (vsftpd has none): AUTH TLS, login, PROT P, LIST, RETR, STOR, and a
# RETR the client resets mid-way (SO_LINGER 0, no close_notify; vsftpd answers 426).
# The control connection stays encrypted to the end, so ftpwatch sees no command or
# reply after AUTH TLS's 234 and can only infer the data connections (new connections
# between the two hosts, not on port 21).
if want vsftpd-tls; then
    lab_start_server vsftpd-tls
    capture vsftpd-tls python3 "$here/clients.py" ftps "$SRV4"
fi

for name in $ONLY; do
    [[ "$recorded" == *" $name "* ]] || { echo "record: no capture named $name" >&2; exit 1; }
done
ls -la "$out"
