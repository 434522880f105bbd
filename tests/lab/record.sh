#!/usr/bin/env bash
# Record the real-server captures committed under tests/data/: vsftpd, proftpd and
# pure-ftpd from Debian, driven by curl, lftp, Python ftplib and clients.py, in network
# namespaces this script creates (see lab.sh). Run as root:  tests/lab/record.sh
# Each capture gets a .log beside it with what the client saw.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/../data}
# shellcheck source=lab.sh
. "$here/lab.sh"

lab_install
lab_up
trap lab_down EXIT
mkdir -p "$out"
head -c 49152 /dev/urandom > "$LAB_DIR/up.bin"
URL="ftp://$LAB_USER:$LAB_PASS@$SRV4"

capture() { # name, then the command to run in the client namespace
    local name=$1; shift
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
ls -la "$out"
