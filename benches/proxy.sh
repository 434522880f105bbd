#!/usr/bin/env bash
# The inline proxy's benchmark, side by side with its peers, in the gateway namespaces
# of tests/lab/gateway.sh (real vsftpd behind, curl and Python ftplib in front):
#   1. one 1 GiB RETR: direct (routed by the gateway's kernel), through ftpwatch proxy,
#      through Debian's ftp-proxy (SuSE proxy-suite) and through ProFTPD mod_proxy:
#      MB/s as curl reports it, and the proxy's CPU seconds per GB (user + system of
#      the proxy process and its reaped children, from /proc/PID/stat);
#   2. 500 concurrent sessions, each a 64 KiB RETR (ftplib in threads): sessions per
#      second; and 500 logged-in idle sessions: the proxy's RSS per session;
#   3. (PART=tls or all) one 1 GiB RETR over FTPS: direct to vsftpd with TLS, and
#      through ftpwatch proxy terminating TLS on both legs (PROT P, the data legs
#      resuming upstream), next to the same server in clear through the proxy.
# Each figure is the median of RUNS runs. Bounded: every transfer and wait has a limit.
# Usage: benches/proxy.sh path/to/ftpwatch   (run by `cargo bench --bench proxy`, as root)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${1:?usage: benches/proxy.sh path/to/ftpwatch}
RUNS=${RUNS:-3}
PART=${PART:-all}          # gig | sessions | tls | all
SESSIONS=${SESSIONS:-500}
LAB_DIR=/tmp/ftplab-bench
LAB_PASV_MIN=30000; LAB_PASV_MAX=39999   # hundreds of transfers at once
# Every session reaches vsftpd from the proxy's one address; the sessions benchmark logs
# in anonymously, so that PAM's cost is not what is measured.
LAB_VSFTPD_EXTRA="max_per_ip=0\nmax_clients=0\nanonymous_enable=YES\nanon_root=/srv/ftplab\nno_anon_password=YES"
# shellcheck source=../tests/lab/gateway.sh
. "$root/tests/lab/gateway.sh"
# shellcheck source=../tests/lab/peers.sh
. "$root/tests/lab/peers.sh"
work=$(mktemp -d /tmp/ftpwatch-proxy-bench.XXXXXX)
chmod 755 "$work"   # the peers drop to the lab user and write their logs here
trap 'gateway_down; rm -rf "$work"' EXIT

lab_install
peers_install
gateway_up
# A gateway forwards with its offloads on; the capture tests turn them off, not this.
for x in "in_s pws0" "in_g pgs0" "in_g pgc0" "in_c pwc0"; do
    set -- $x; $1 ethtool -K "$2" tso on gso on gro on >/dev/null 2>&1 || true
done
[ "$(stat -c %s /srv/ftplab/gig.bin 2>/dev/null || echo 0)" = 1073741824 ] ||
    { truncate -s 1G /srv/ftplab/gig.bin; chown "$LAB_USER" /srv/ftplab/gig.bin; }
lab_start_server vsftpd
ulimit -n 16384

cpu_ticks() { # pid -> utime+stime+cutime+cstime in clock ticks, its live children's too
    # (a forking proxy relays in a child; its CPU reaches the parent only once reaped)
    local p total=0
    for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# One 1 GiB download: prints "MB/s cpu_seconds" (cpu of PID, or 0 without one).
gig() { # url [pid]
    local url=$1 pid=${2:-} before=0 after=0 speed
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    # shellcheck disable=SC2086 # $url may carry curl's TLS options before the URL
    speed=$(in_c curl -s -S --max-time 120 -o /dev/null -w '%{speed_download}' $url)
    # The session's child (forking peers) exits and is reaped after QUIT.
    sleep 0.5
    [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    awk -v s="$speed" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.2f\n", s / 1e6, t / hz }'
}

report_gig() { # name url [pid]
    local name=$1 url=$2 pid=${3:-} i
    : > "$work/gig"
    for i in $(seq 1 "$RUNS"); do gig "$url" "$pid" >> "$work/gig"; done
    local mbs cpu
    mbs=$(cut -d' ' -f1 "$work/gig" | median)
    cpu=$(cut -d' ' -f2 "$work/gig" | median)
    # CPU seconds per GB: the file is 1.074 GB.
    printf '%-28s %6s MB/s   %s CPU s/GB\n' "$name" "$mbs" \
        "$( [ -n "$pid" ] && awk -v c="$cpu" 'BEGIN { printf "%.2f", c / 1.073741824 }' || echo -)"
    echo "$name $mbs" >> "$work/speeds"
}

start_ours() { # extra args...
    in_g "$BIN" proxy --upstream "$SRV4:21" --ftp-listen "$GWC4:21" --listen 127.0.0.1:10441 \
        --max-sessions 2048 "$@" >"$work/proxy.log" 2>&1 &
    for _ in $(seq 1 50); do in_g curl -sf http://127.0.0.1:10441/healthz -o /dev/null && break; sleep 0.1; done
    proxy_pid=$(in_g pgrep -f "ftpwatch proxy --upstream" | head -n 1)
}

tls_part() {
    echo "== 1 GiB RETR over FTPS (median of $RUNS)"
    lab_stop_server
    local d=$work/tls
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    for who in "srv $SRV4" "gw $GWC4"; do
        set -- $who
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
            -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
        printf 'subjectAltName=IP:%s\n' "$2" > "$d/$1.ext"
        openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -extfile "$d/$1.ext" -out "$d/$1.pem" 2>/dev/null
    done
    chmod 644 "$d"/*.key
    LAB_VSFTPD_EXTRA="ssl_enable=YES\nrsa_cert_file=$d/srv.pem\nrsa_private_key_file=$d/srv.key\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=NO\nforce_local_data_ssl=NO\nssl_ciphers=HIGH" \
        lab_start_server vsftpd
    local U="$LAB_USER:$LAB_PASS" tls="--ssl-reqd --cacert $d/ca.pem"
    report_gig "direct FTPS (vsftpd)" "$tls ftp://$U@$SRV4/gig.bin"
    start_ours --upstream-ca "$d/ca.pem" --tls-cert "$d/gw.pem" --tls-key "$d/gw.key"
    report_gig "ftpwatch proxy, FTPS both legs" "$tls ftp://$U@$GWC4/gig.bin" "$proxy_pid"
    kill "$proxy_pid"; sleep 0.5
    # The same server and proxy, both legs in clear (the default would secure the
    # server leg, as this vsftpd offers AUTH TLS).
    start_ours --upstream-tls off
    report_gig "ftpwatch proxy, clear" "ftp://$U@$GWC4/gig.bin" "$proxy_pid"
    kill "$proxy_pid"; sleep 0.5
    lab_stop_server
}

if [ "$PART" = tls ]; then tls_part; exit 0; fi

if [ "$PART" != sessions ]; then
echo "== 1 GiB RETR (median of $RUNS)"
U="$LAB_USER:$LAB_PASS"
report_gig "direct (kernel forwarding)" "ftp://$U@$SRV4/gig.bin"

start_ours --data-buffer 256K
report_gig "ftpwatch proxy, 256K buffer" "ftp://$U@$GWC4/gig.bin" "$proxy_pid"
kill "$proxy_pid"; sleep 0.5
start_ours
report_gig "ftpwatch proxy" "ftp://$U@$GWC4/gig.bin" "$proxy_pid"

# The peers: forking daemons, so their reaped children's CPU counts (cutime, cstime).
peer_start_ftp_proxy "$LAB_G" "$GWC4" 2121 "$SRV4" 21 "$work" >/dev/null
report_gig "ftp-proxy (proxy-suite)" "ftp://$U@$GWC4:2121/gig.bin" "$(cat "$PEER_FTP_PROXY_PIDFILE")"
peer_stop_ftp_proxy

peer_start_mod_proxy "$LAB_G" 2122 "$SRV4" 21 "$work" >/dev/null
report_gig "ProFTPD mod_proxy" "ftp://$U@$GWC4:2122/gig.bin" "$(cat "$PEER_MOD_PROXY_PIDFILE")"
peer_stop_mod_proxy

fi
[ "$PART" = gig ] && exit 0
[ -n "${proxy_pid:-}" ] || start_ours
direct=$(awk '$1 == "direct" { print $NF }' "$work/speeds" 2>/dev/null || true)
ours=$(awk '/^ftpwatch proxy [0-9]/ { print $NF }' "$work/speeds" 2>/dev/null || true)
[ -z "$direct" ] || awk -v d="$direct" -v o="$ours" 'BEGIN { printf "ftpwatch proxy: %.0f%% of direct throughput\n", 100 * o / d }'

echo "== $SESSIONS sessions started 2 ms apart, each a 64 KiB RETR (median of $RUNS)"
burst() { # name host
    : > "$work/rate"
    for i in $(seq 1 "$RUNS"); do
        in_c python3 "$here/sessions.py" burst "$2" "$SESSIONS" 2>>"$work/sessions.err" >> "$work/rate"
    done
    printf '%-28s %s sessions/s, %s failed (over %s runs)\n' "$1" \
        "$(cut -d' ' -f1 "$work/rate" | median)" "$(awk '{ f += $2 } END { print f }' "$work/rate")" "$RUNS"
}
burst "direct" "$SRV4"
burst "ftpwatch proxy" "$GWC4"

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
base=$(rss "$proxy_pid")
in_c python3 "$here/sessions.py" hold "$GWC4" "$SESSIONS" "$work/holding" &
hold=$!
for _ in $(seq 1 600); do [ -e "$work/holding" ] && break; sleep 0.1; done
[ -e "$work/holding" ] || { echo "bench: the idle sessions did not all log in" >&2; exit 1; }
sleep 1
held=$(rss "$proxy_pid")
touch "$work/release"
wait "$hold" || true
awk -v b="$base" -v h="$held" -v n="$SESSIONS" \
    'BEGIN { printf "RSS: %d KiB before, %d KiB with %d idle sessions: %.1f KiB per session\n", b, h, n, (h - b) / n }'
kill "$proxy_pid" 2>/dev/null || true
[ "$PART" = all ] && tls_part
