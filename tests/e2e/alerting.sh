#!/usr/bin/env bash
# End-to-end test of the alert path (run as root; .ci/run runs it): the lab's real
# vsftpd in one network namespace; in the other, real clients (curl downloads, and
# tests/lab/clients.py reset-retr resetting downloads mid-transfer at a steady rate),
# `ftpwatch live` on the veth, a real Prometheus (Debian's) loading dashboards/alerts.yml
# unchanged, a real Alertmanager (Debian's prometheus-alertmanager) and a webhook
# receiver (tests/e2e/webhook.py). Everything listens on 127.0.0.1 inside the client
# namespace.
#
# Asserted: during a clean phase (successful downloads only) no alert is pending or
# firing and nothing is notified; once aborts start, FtpTransferAbortSpike and
# FtpAbortRatioHigh go pending, and FtpTransferAbortSpike reaches the receiver with its
# labels and its annotations (summary, description with the dominant cause, runbook as
# in alerts.yml); after the aborts stop it resolves and the receiver gets the resolved
# notification. No other alert reaches the receiver.
#
# Why FtpTransferAbortSpike, and why a seeded history: with alerts.yml as it is, a fresh
# Prometheus cannot fire an abort alert within this test's budget. FtpAbortRatioHigh
# has `for: 15m` (firing 15+ min after the aborts start, resolved about 4 min after they
# stop: over 20 min in all). FtpTransferAbortSpike has `for: 5m`, but it compares the
# 426 rate with ftpwatch:ftp_426_replies:rate5m_avg3h `offset 30m`, a series that a
# Prometheus younger than 30 min does not have, so it can never fire there. This test
# backfills that recording rule's series (promtool tsdb create-blocks-from openmetrics)
# with 0 over the 4 hours before the start: "this gateway had no aborts today". The
# spike then fires 5 min after the 426 rate passes its floor of 1/min, and resolves
# when the rate over [5m] falls back under it; rise + fall take about 5 min together
# whatever the abort rate. Measured here (one reset download every ~7 s between
# downloads every ~2.3 s): pending after 36 s, notified after 341 s, resolved 272-279 s
# after the aborts stopped; about 11.5 min in all. With FTPWATCH_ALERTING_LONG=1:
# FtpAbortRatioHigh pending after 42 s, notified after 947 s, resolved by 273 s after
# the aborts stopped; about 22 min in all.
#
# Usage: tests/e2e/alerting.sh [path/to/ftpwatch]
# Environment:
#   FTPWATCH_ALERTS_FILE     rules to load instead of dashboards/alerts.yml (to check
#                            that this test fails, e.g. with a metric renamed)
#   FTPWATCH_ALERTING_LONG=1 also wait for FtpAbortRatioHigh to fire and resolve
#                            (about 22 min in all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN_SRC=${1:-$root/target/debug/ftpwatch}
ALERTS_SRC=${FTPWATCH_ALERTS_FILE:-$root/dashboards/alerts.yml}
LONG=${FTPWATCH_ALERTING_LONG:-0}

work=$(mktemp -d /tmp/ftpwatch-alerting.XXXXXX)
# Our own namespaces (live.sh: ftpw-s/ftpw-c; systemd.sh: ftpw-ys/ftpw-yc). The lab's
# addresses are per namespace, so they do not collide; the ports are inside ftpw-ac.
export LAB_S=ftpw-as LAB_C=ftpw-ac LAB_DIR=$work/lab
# shellcheck source=../lab/lab.sh
. "$root/tests/lab/lab.sh"
FTPW_PORT=10446
PROM_PORT=19190
AM_PORT=19193
HOOK_PORT=19195
INSTANCE=127.0.0.1:$FTPW_PORT
INTERVAL=2s          # scrape and rule evaluation
CLEAN_SECS=60        # the clean phase
STEP=2               # seconds between the client loop's iterations (one download each)
ABORT_EVERY=3        # one reset download every ABORT_EVERY iterations in the abort phase
PIDS=()

log() { echo "alerting-e2e: $(date +%T) $*"; }
fail() {
    echo "alerting-e2e: FAIL: $*" >&2
    echo "--- ftpwatch stderr (tail):" >&2; tail -n 20 "$work/ftpwatch.err" >&2 || true
    echo "--- prometheus log (tail):" >&2; tail -n 15 "$work/prometheus.log" >&2 || true
    echo "--- alertmanager log (tail):" >&2; tail -n 15 "$work/alertmanager.log" >&2 || true
    echo "--- Prometheus ALERTS:" >&2; prom 'ALERTS' >&2 || true; echo >&2
    echo "--- notifications received:" >&2; python3 "$here/webhook.py" names "$work/hook.jsonl" >&2 || true
    echo "--- client loop: $(counts)" >&2
    exit 1
}
wait_until() { # seconds, description, command...
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 1; done
    fail "timed out after ${limit}s waiting for $what"
}
cleanup() {
    local rc=$? p
    set +e
    echo stop > "$work/phase" 2>/dev/null
    [ -n "${LOOP_PID:-}" ] && kill "$LOOP_PID" 2>/dev/null
    lab_down   # every process in both namespaces: ftpwatch, Prometheus, Alertmanager, receiver, clients
    for p in "${PIDS[@]}" ${LOOP_PID:-}; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

prom() { in_c curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"; }
prom_values() { # query -> the sample values, space-separated ("" when none)
    prom "$1" | python3 -c 'import json,sys; print(" ".join(r["value"][1] for r in json.load(sys.stdin)["data"]["result"]))'
}
alert_state() { # alertname -> pending, firing or none, as Prometheus has it
    prom "ALERTS{alertname=\"$1\"}" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["metric"]["alertstate"] if r else "none")'
}
alert_is() { [ "$(alert_state "$1")" = "$2" ]; }
received() { python3 "$here/webhook.py" find "$work/hook.jsonl" "$1" "$2" >/dev/null; }
notified_after() { # alertname status epoch -> seconds from epoch to the notification's arrival
    python3 "$here/webhook.py" find "$work/hook.jsonl" "$1" "$2" |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["received_at"] - float(sys.argv[1])))' "$3"
}
counts() { [ -f "$work/done" ] && sort "$work/done" | uniq -c | tr -s ' \n' ' ' || echo none; }
for_of() { # alertname -> its `for:` in seconds, read from the rules file
    python3 - "$work/alerts.yml" "$1" <<'EOF'
import re, sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if r.get("alert") == sys.argv[2]:
            m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", r.get("for", "0s"))
            h, mi, s = (int(x or 0) for x in m.groups())
            print(h * 3600 + mi * 60 + s)
EOF
}
# The notification of ALERT with STATUS carries the rule's labels, our job and instance,
# the runbook exactly as in the rules file, and the description naming client_reset.
check_notification() {
    local name=$1 status=$2 alert
    alert=$(python3 "$here/webhook.py" find "$work/hook.jsonl" "$name" "$status") || fail "no $status notification of $name"
    python3 - "$work/alerts.yml" "$INSTANCE" "$alert" <<'EOF' || fail "$status notification of $name: $alert"
import json, sys, yaml
rules = {r["alert"]: r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
instance, a = sys.argv[2], json.loads(sys.argv[3])
rule, labels, ann = rules[a["labels"]["alertname"]], a["labels"], a["annotations"]
bad = []
want = dict(rule.get("labels", {}), job="ftpwatch", instance=instance)
bad += [f"label {k}={labels.get(k)!r}, expected {v!r}" for k, v in want.items() if labels.get(k) != v]
if ann.get("runbook") != rule["annotations"]["runbook"]:
    bad.append("runbook differs from the rules file")
if instance not in ann.get("summary", ""):
    bad.append(f"summary without the instance: {ann.get('summary')!r}")
if "Dominant abort cause: client_reset (100% of aborts)" not in ann.get("description", ""):
    bad.append(f"description without the dominant cause: {ann.get('description')!r}")
for b in bad:
    print("   ", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    echo "  ok  $status notification of $name: labels $(echo "$alert" | python3 -c 'import json,sys; a=json.load(sys.stdin)["labels"]; print(",".join(f"{k}={v}" for k,v in sorted(a.items())))'); summary, description (client_reset 100%), runbook as in the rules file"
}

# --- setup -------------------------------------------------------------------------------
t0=$SECONDS
[ -x "$BIN_SRC" ] || fail "no binary at $BIN_SRC"
cp "$BIN_SRC" "$work/ftpwatch"; BIN=$work/ftpwatch   # a rebuild during the run does not change it
cp "$ALERTS_SRC" "$work/alerts.yml"
if [ "$ALERTS_SRC" = "$root/dashboards/alerts.yml" ]; then
    log "rules: dashboards/alerts.yml, unchanged (sha256 $(sha256sum < "$work/alerts.yml" | cut -c1-16))"
else
    log "NOTE: rules from $ALERTS_SRC instead of dashboards/alerts.yml:"
    diff "$root/dashboards/alerts.yml" "$work/alerts.yml" | sed 's/^/  rules: /' || true
fi
lab_install
need=()
for p in prometheus prometheus-alertmanager python3-yaml; do dpkg -s $p >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
    had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    # Keep the packaged services (prometheus, alertmanager) from starting.
    [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi
promtool check rules "$work/alerts.yml" >/dev/null || fail "promtool check rules $ALERTS_SRC"
SPIKE_FOR=$(for_of FtpTransferAbortSpike); RATIO_FOR=$(for_of FtpAbortRatioHigh)
[ -n "$SPIKE_FOR" ] && [ -n "$RATIO_FOR" ] || fail "FtpTransferAbortSpike or FtpAbortRatioHigh missing from the rules"
log "for: FtpTransferAbortSpike ${SPIKE_FOR}s, FtpAbortRatioHigh ${RATIO_FOR}s"
lab_up
lab_start_server vsftpd

log "ftpwatch live on fwc0, :$FTPW_PORT"
ip netns exec "$LAB_C" "$BIN" live -i fwc0 --listen "$INSTANCE" >"$work/ftpwatch.out" 2>"$work/ftpwatch.err" &
PIDS+=($!)

log "webhook receiver :$HOOK_PORT"
touch "$work/hook.jsonl"
ip netns exec "$LAB_C" python3 "$here/webhook.py" serve 127.0.0.1 $HOOK_PORT "$work/hook.jsonl" 2>"$work/hook.err" &
PIDS+=($!)

cat > "$work/alertmanager.yml" <<CONF
route:
  receiver: hook
  group_by: [alertname, job, instance]
  group_wait: 5s
  group_interval: 10s
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$HOOK_PORT/
        send_resolved: true
CONF
log "Alertmanager :$AM_PORT"
ip netns exec "$LAB_C" prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
PIDS+=($!)

# The recorded baseline FtpTransferAbortSpike compares with, 30 min back: 0 (no aborts)
# every minute over the 4 hours before now.
now=$(date +%s)
{
    echo '# TYPE ftpwatch:ftp_426_replies:rate5m_avg3h gauge'
    for t in $(seq $((now - 4 * 3600)) 60 $((now - 60))); do
        echo "ftpwatch:ftp_426_replies:rate5m_avg3h{instance=\"$INSTANCE\",job=\"ftpwatch\"} 0 $t"
    done
    echo '# EOF'
} > "$work/seed.om"
promtool tsdb create-blocks-from openmetrics -q "$work/seed.om" "$work/tsdb" >/dev/null || fail "promtool backfill"

cat > "$work/prometheus.yml" <<CONF
global:
  scrape_interval: $INTERVAL
  evaluation_interval: $INTERVAL
rule_files: ['$work/alerts.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: ftpwatch
    static_configs:
      - targets: ['$INSTANCE']
CONF
log "Prometheus :$PROM_PORT (scrape and evaluation every $INTERVAL)"
ip netns exec "$LAB_C" prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$work/prometheus.log" 2>&1 &
PIDS+=($!)

wait_until 10 "ftpwatch's HTTP server" in_c curl -sf "http://$INSTANCE/healthz" -o /dev/null
wait_until 10 "the webhook receiver" in_c curl -sf "http://127.0.0.1:$HOOK_PORT/" -o /dev/null
wait_until 30 "Alertmanager" in_c curl -sf "http://127.0.0.1:$AM_PORT/-/ready" -o /dev/null
wait_until 30 "Prometheus" in_c curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" -o /dev/null
target_up() { [ "$(prom_values 'up{job="ftpwatch"}')" = 1 ]; }
wait_until 20 "Prometheus to scrape ftpwatch" target_up
# A rule evaluated before the first scrape saw no `up` at all: FtpwatchDown went pending,
# rightly. It clears at the next evaluation after a good scrape; the clean phase starts
# from there, so that what it checks is the rules' view of a healthy gateway.
down_cleared() { [ "$(alert_state FtpwatchDown)" = none ]; }
wait_until 20 "FtpwatchDown to clear after the first scrape" down_cleared
am_discovered() {
    in_c curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/alertmanagers" | grep -q "127.0.0.1:$AM_PORT"
}
wait_until 20 "Prometheus to discover Alertmanager" am_discovered
in_c curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/rules" | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = [r["name"] for r in rules if r.get("health") not in ("ok", "unknown")]
print(f"  ok  Prometheus loaded {len(groups)} groups, {len(rules)} rules, unhealthy: {bad or None}")
sys.exit(1 if bad or not rules else 0)' || fail "rules not loaded"
[ "$(prom_values "ftpwatch:ftp_426_replies:rate5m_avg3h{instance=\"$INSTANCE\"} offset 30m")" = 0 ] ||
    fail "the backfilled baseline is not visible 30 min back"
echo "  ok  baseline backfilled: ftpwatch:ftp_426_replies:rate5m_avg3h offset 30m = 0"

# --- the client loop: bounded in iterations and time; the phase file steers it ------------
echo clean > "$work/phase"
client_loop() {
    local i=0 end=$((SECONDS + 40 * 60)) phase
    while [ $i -lt 1500 ] && [ $SECONDS -lt $end ]; do
        phase=$(cat "$work/phase")
        [ "$phase" = stop ] && break
        if [ "$phase" = abort ] && [ $((i % ABORT_EVERY)) = 0 ]; then
            if in_c timeout 30 python3 "$root/tests/lab/clients.py" reset-retr "$SRV4" >>"$work/clients.log" 2>&1
            then echo reset >> "$work/done"; else echo reset-failed >> "$work/done"; fi
        fi
        if in_c curl -sS -o /dev/null --max-time 20 "ftp://$LAB_USER:$LAB_PASS@$SRV4/small.bin" 2>>"$work/clients.log"
        then echo download >> "$work/done"; else echo download-failed >> "$work/done"; fi
        i=$((i + 1))
        sleep $STEP
    done
}
client_loop &
LOOP_PID=$!
no_alerts_only_hook() { # nothing pending or firing, nothing notified
    local a
    a=$(prom 'ALERTS' | python3 -c 'import json,sys; print(" ".join(r["metric"]["alertname"] + ":" + r["metric"]["alertstate"] for r in json.load(sys.stdin)["data"]["result"]))')
    [ -z "$a" ] || fail "alert during the clean phase: $a"
    [ ! -s "$work/hook.jsonl" ] || fail "notification during the clean phase: $(python3 "$here/webhook.py" names "$work/hook.jsonl")"
}

log "clean phase: downloads only, ${CLEAN_SECS}s"
end=$((SECONDS + CLEAN_SECS))
while [ $SECONDS -lt $end ]; do no_alerts_only_hook; sleep 5; done
no_alerts_only_hook
completed=$(prom_values 'sum(ftp_transfers_total{outcome="completed"})')
[ -n "$completed" ] && [ "${completed%.*}" -ge 10 ] || fail "Prometheus saw only '$completed' completed transfers"
[ -z "$(prom_values 'sum(ftp_replies_total{code="426"}) > 0')" ] || fail "426 replies in the clean phase"
echo "  ok  clean phase: $completed completed transfers in Prometheus, no 426, no alert pending or firing, nothing notified ($(counts))"

# --- aborts ---------------------------------------------------------------------------------
log "abort phase: a reset download every $ABORT_EVERY iterations (~$((ABORT_EVERY * STEP + 1))s), downloads go on"
echo abort > "$work/phase"
t_abort=$SECONDS; e_abort=$(date +%s)
wait_until 150 "FtpTransferAbortSpike to be pending" alert_is FtpTransferAbortSpike pending
echo "  ok  FtpTransferAbortSpike pending $((SECONDS - t_abort))s after the aborts started (for: ${SPIKE_FOR}s)"
ratio_pending() { [ "$(alert_state FtpAbortRatioHigh)" != none ]; }
wait_until 150 "FtpAbortRatioHigh to be pending" ratio_pending
echo "  ok  FtpAbortRatioHigh pending $((SECONDS - t_abort))s after the aborts started (for: ${RATIO_FOR}s)"
echo "      abort ratio $(prom_values "ftpwatch:ftp_abort_ratio:rate5m"), 426/s $(prom_values "ftpwatch:ftp_426_replies:rate5m"), aborts/s by cause: $(prom 'ftpwatch:ftp_transfer_aborts:rate5m' | python3 -c 'import json,sys; print(" ".join(r["metric"].get("cause","?")+"="+r["value"][1][:6] for r in json.load(sys.stdin)["data"]["result"]))')"
wait_until $((SPIKE_FOR + 120)) "FtpTransferAbortSpike to reach the receiver" received FtpTransferAbortSpike firing
echo "  ok  FtpTransferAbortSpike notified $(notified_after FtpTransferAbortSpike firing "$e_abort")s after the aborts started"
check_notification FtpTransferAbortSpike firing
[ "$(alert_state FtpTransfersBrokenWithout426)" = none ] || fail "FtpTransfersBrokenWithout426 is $(alert_state FtpTransfersBrokenWithout426) with 426 aborts only"
echo "  ok  FtpTransfersBrokenWithout426 stays inactive (every broken transfer got its 426)"
watch=(FtpTransferAbortSpike)
if [ "$LONG" = 1 ]; then
    wait_until $((RATIO_FOR + 120)) "FtpAbortRatioHigh to reach the receiver" received FtpAbortRatioHigh firing
    echo "  ok  FtpAbortRatioHigh notified $(notified_after FtpAbortRatioHigh firing "$e_abort")s after the aborts started"
    check_notification FtpAbortRatioHigh firing
    watch+=(FtpAbortRatioHigh)
fi

# --- aborts stop ------------------------------------------------------------------------------
log "aborts stop; downloads go on ($(counts))"
echo clean > "$work/phase"
t_stop=$SECONDS; e_stop=$(date +%s)
declare -A inactive=()
end=$((SECONDS + 420))
while [ ${#inactive[@]} -lt ${#watch[@]} ]; do
    for a in "${watch[@]}"; do
        [ -n "${inactive[$a]:-}" ] || ! alert_is "$a" none || inactive[$a]=$((SECONDS - t_stop))
    done
    [ $SECONDS -lt $end ] || fail "timed out after 420s waiting for ${watch[*]} to resolve in Prometheus"
    sleep 1
done
for a in "${watch[@]}"; do
    wait_until 60 "the resolved notification of $a" received "$a" resolved
    echo "  ok  $a inactive ${inactive[$a]}s after the aborts stopped; resolved notification after $(notified_after "$a" resolved "$e_stop")s"
    check_notification "$a" resolved
done
echo stop > "$work/phase"
for _ in $(seq 1 40); do kill -0 "$LOOP_PID" 2>/dev/null || break; sleep 0.5; done

others=$(python3 "$here/webhook.py" names "$work/hook.jsonl" | awk '{print $1}' | sort -u | grep -Ev "^($(IFS='|'; echo "${watch[*]}"))\$" || true)
[ -z "$others" ] || fail "unexpected alerts notified: $others"
echo "  ok  no other alert notified ($(python3 "$here/webhook.py" names "$work/hook.jsonl" | sort | uniq -c | tr -s ' \n' ' '))"
grep -q failed "$work/done" && fail "client failures: $(counts)"
echo "  ok  clients: $(counts)"
log "all checks passed in $((SECONDS - t0))s (aborts for $((t_stop - t_abort))s)"
