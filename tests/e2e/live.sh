#!/usr/bin/env bash
# End-to-end test of `ftpwatch live` (run as root; .ci/run runs it):
#   real FTP servers (vsftpd, then ProFTPD) in one network namespace, real clients
#   (curl, lftp, Python ftplib, tests/lab/clients.py) in another, ftpwatch capturing
#   on the client's veth with AF_PACKET, and a real Prometheus scraping ftpwatch.
# Asserts exact metric values, the 426 counter through Prometheus's HTTP API, and that
# an interface that disappears is reported down and comes back.
# Usage: tests/e2e/live.sh [path/to/ftpwatch]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${1:-$root/target/debug/ftpwatch}
# shellcheck source=../lab/lab.sh
. "$root/tests/lab/lab.sh"

work=$(mktemp -d /tmp/ftpwatch-e2e.XXXXXX)
FTPW_PORT=10426
PNET_PORT=10427   # a second ftpwatch on the same veth, reading through pnet
PROM_PORT=19090
cleanup() {
    lab_down   # kills every process in both namespaces
}
trap cleanup EXIT

fail() { echo "e2e: FAIL: $*" >&2; echo "--- ftpwatch stderr:" >&2; cat "$work/ftpwatch.err" >&2 || true; exit 1; }
metric() { # exact series [port] -> value (or "absent")
    in_c curl -sf "http://127.0.0.1:${2:-$FTPW_PORT}/metrics" | awk -v s="$1" '$1 == s { print $2; found=1 } END { if (!found) print "absent" }'
}
expect_metric() { # series, value: checked on both ftpwatch instances
    local port got
    for port in $FTPW_PORT $PNET_PORT; do
        got=$(metric "$1" $port)
        [ "$got" = "$2" ] || fail "$1 = $got on :$port, expected $2"
    done
    echo "  ok  $1 = $2 (ring and pnet)"
}
wait_until() { # seconds, description, command...
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
    fail "timed out waiting for $what"
}

lab_install
for p in prometheus; do
    dpkg -s $p >/dev/null 2>&1 || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
        apt-get install -y -qq --no-install-recommends $p >/dev/null; rm -f /usr/sbin/policy-rc.d; }
done
lab_up
# A second, spare interface in the client namespace, to be taken away mid-run.
ip link add fwx0 netns "$LAB_C" type veth peer name fwx1 netns "$LAB_C"
in_c ip link set fwx0 up; in_c ip link set fwx1 up

echo "e2e: starting ftpwatch live on fwc0 and fwx0 (ring), and on fwc0 (pnet)"
ip netns exec "$LAB_C" "$BIN" live -i fwc0 -i fwx0 --listen "127.0.0.1:$FTPW_PORT" --events "$work/events.jsonl" \
    >"$work/ftpwatch.out" 2>"$work/ftpwatch.err" &
FTPW_PID=$!
ip netns exec "$LAB_C" "$BIN" live -i fwc0 --backend pnet --listen "127.0.0.1:$PNET_PORT" \
    >"$work/ftpwatch-pnet.out" 2>"$work/ftpwatch-pnet.err" &
wait_until 10 "ftpwatch's HTTP server" in_c curl -sf "http://127.0.0.1:$FTPW_PORT/healthz" -o /dev/null
wait_until 10 "the pnet instance's HTTP server" in_c curl -sf "http://127.0.0.1:$PNET_PORT/healthz" -o /dev/null

cat > "$work/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ftpwatch
    static_configs:
      - targets: ['127.0.0.1:$FTPW_PORT']
CONF
ip netns exec "$LAB_C" prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$work/prometheus.log" 2>&1 &
wait_until 30 "Prometheus" in_c curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" -o /dev/null

URL="ftp://$LAB_USER:$LAB_PASS@$SRV4"
clients_common() {
    in_c python3 "$root/tests/lab/clients.py" reset-retr "$SRV4"   # RETR aborted: client_reset
    in_c python3 "$root/tests/lab/clients.py" abor "$SRV4"         # RETR aborted: abor
}

echo "e2e: vsftpd"
lab_start_server vsftpd
in_c curl -sS -o /dev/null "$URL/small.bin"                              # EPSV
in_c curl -sS -o /dev/null --disable-epsv "$URL/small.bin"               # PASV
in_c curl -sS -o /dev/null -P "$CLI4" --disable-eprt "$URL/small.bin"    # PORT
in_c curl -sS -o /dev/null -P "$CLI4" "$URL/small.bin"                   # EPRT
in_c curl -sS -o /dev/null -g "ftp://$LAB_USER:$LAB_PASS@[$SRV6]/small.bin"  # IPv6 EPSV
in_c curl -sS -T "$LAB_DIR/up.bin" "$URL/upload/curl.bin"                # STOR
in_c lftp -c "set net:max-retries 1; set net:timeout 10; set xfer:clobber on;
    open -u $LAB_USER,$LAB_PASS $SRV4; set ftp:passive-mode on; set ftp:prefer-epsv no;
    get small.bin -o $work/l1; cls -l >/dev/null; put $LAB_DIR/up.bin -o upload/lftp.bin;
    set ftp:passive-mode off; get small.bin -o $work/l2; quit"           # RETR, LIST, STOR, RETR (PORT)
in_c python3 "$root/tests/lab/clients.py" ftplib-basic "$SRV4"           # RETR, NLST, STOR
clients_common

echo "e2e: proftpd"
lab_start_server proftpd 2>/dev/null
in_c curl -sS -o /dev/null "$URL/small.bin"
clients_common
sleep 3  # the last replies reach ftpwatch and a tick passes

echo "e2e: metrics from /metrics"
expect_metric 'ftp_transfers_total{command="RETR",outcome="completed"}' 9
expect_metric 'ftp_transfers_total{command="RETR",outcome="aborted"}' 4
expect_metric 'ftp_transfers_total{command="STOR",outcome="completed"}' 3
expect_metric 'ftp_transfers_total{command="LIST",outcome="completed"}' 1
expect_metric 'ftp_transfers_total{command="NLST",outcome="completed"}' 1
expect_metric 'ftp_replies_total{class="4xx",code="426",origin="server"}' 4
expect_metric 'ftp_transfer_aborts_total{cause="client_reset"}' 2
expect_metric 'ftp_transfer_aborts_total{cause="abor"}' 2
expect_metric 'ftp_sessions_active' 0
expect_metric 'ftpwatch_capture_up{interface="fwc0"}' 1
expect_metric 'ftpwatch_kernel_drops_total{interface="fwc0"}' 0
in_c curl -sf "http://127.0.0.1:$FTPW_PORT/metrics" | promtool check metrics || fail "promtool check metrics"
echo "  ok  promtool check metrics"
[ "$(grep -c '"type":"transfer"' "$work/events.jsonl")" = 18 ] || fail "event log: expected 18 transfers"
echo "  ok  18 transfers in the event log"

echo "e2e: the landing page in a real browser (headless Chromium)"
# shellcheck source=browser.sh
. "$here/browser.sh"
# 7 s of virtual time: the page's script refreshes the tables from /api/recent once.
in_c bash -c ". '$here/browser.sh'; browser_dom http://127.0.0.1:$FTPW_PORT/ 7000" > "$work/landing.html" ||
    fail "chromium could not load the landing page"
python3 - "$work/landing.html" "$work/events.jsonl" <<'PY' || fail "the landing page's DOM"
import json, re, sys
dom = open(sys.argv[1]).read()
events = [json.loads(l) for l in open(sys.argv[2])]
body = dom.split('id="recent-body"')[1].split("</tbody>")[0]
rows = re.findall(r"<tr class=\"(\w+)\">(.*?)</tr>", body)
want = [e for e in events if e["type"] == "transfer" and (e["outcome"] != "completed" or e.get("interruption_cause"))]
assert len(rows) == len(want), (len(rows), len(want))
aborted = [r for r in rows if r[0] == "aborted"]
assert len(aborted) == 4, aborted
causes = sorted(re.findall(r"<td>(client_reset|abor)</td>", "".join(r[1] for r in aborted)))
assert causes == ["abor", "abor", "client_reset", "client_reset"], causes
assert "data-refreshed=" in dom, "the script refreshed the page from /api/recent"
totals = dom.split('id="totals-body"')[1].split("</tbody>")[0]
assert re.search(r'<td class="aborted">aborted</td><td class="n">4</td>', totals), totals
assert "fwc0" in dom and "capturing" in dom, "the interfaces and their state"
print(f"  ok  landing page: {len(rows)} recent troubled transfers, 4 aborts with their causes, refreshed by its script")
PY
in_c bash -c ". '$here/browser.sh'; browser_shot http://127.0.0.1:$FTPW_PORT/ '$work/landing.png'" ||
    fail "chromium could not take a screenshot of the landing page"
png_check "$work/landing.png" 1280 1400 || fail "the landing page's screenshot"
echo "  ok  landing page screenshot"
api=$(in_c curl -sf "http://127.0.0.1:$FTPW_PORT/api/recent")
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["totals"]["aborted"] == 4 and j["mode"] == "live", j["totals"]' "$api" ||
    fail "/api/recent"
echo "  ok  /api/recent: the same as JSON"

echo "e2e: the 426 counter through Prometheus"
prom_426() {
    in_c curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode 'query=ftp_replies_total{code="426"}' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
prom_has_4() { [ "$(prom_426)" = 4 ]; }
wait_until 15 "Prometheus to scrape 4 replies 426" prom_has_4
echo "  ok  Prometheus: ftp_replies_total{code=\"426\"} = 4"

echo "e2e: an interface that goes away"
in_c ip link del fwx0
fwx0_up_is() { [ "$(metric 'ftpwatch_capture_up{interface="fwx0"}')" = "$1" ]; }
wait_until 10 "capture_up 0 for fwx0" fwx0_up_is 0
echo "  ok  ftpwatch_capture_up{interface=\"fwx0\"} = 0"
in_c curl -sf "http://127.0.0.1:$FTPW_PORT/healthz" >/dev/null || fail "exporter down after losing an interface"
errs=$(metric 'ftpwatch_capture_errors_total{interface="fwx0"}')
[ "$errs" != absent ] && [ "$errs" -ge 1 ] || fail "capture errors for fwx0: $errs"
echo "  ok  ftpwatch_capture_errors_total{interface=\"fwx0\"} = $errs; exporter up"
ip link add fwx0 netns "$LAB_C" type veth peer name fwx1 netns "$LAB_C"
in_c ip link set fwx0 up
wait_until 40 "fwx0 back" fwx0_up_is 1
echo "  ok  fwx0 reopened: ftpwatch_capture_up = 1"

echo "e2e: SIGTERM"
start=$(date +%s%N)
kill -TERM "$FTPW_PID"
rc=0; wait "$FTPW_PID" || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
[ "$ms" -lt 2000 ] || fail "took $ms ms to exit after SIGTERM"
echo "  ok  exit 0, $ms ms after SIGTERM"
echo "--- ftpwatch's log:"; cat "$work/ftpwatch.err"
echo "e2e: all checks passed"
