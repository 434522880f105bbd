#!/usr/bin/env bash
# The HTML report (`ftpwatch read --html`) in a real browser (headless Chromium; run as
# root, .ci/run runs it): rendered for recorded real-server captures with aborts, its DOM
# holds a bar per transfer and every abort with its cause, nothing is fetched from the
# network, and a screenshot is the window's size and not blank.
# Usage: tests/e2e/report.sh [path/to/ftpwatch]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${1:-$root/target/debug/ftpwatch}
# shellcheck source=browser.sh
. "$here/browser.sh"
work=$(mktemp -d /tmp/ftpwatch-report-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "report e2e: FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || fail "chromium is not installed (apt-get install chromium)"

data=$root/tests/data
caps="$data/vsftpd-reset.pcap $data/proftpd-abor.pcap $data/pure-ftpd-reset.pcap $data/vsftpd-curl.pcap"
# shellcheck disable=SC2086
"$BIN" read --html "$work/report.html" $caps > "$work/report.txt"
# shellcheck disable=SC2086
"$BIN" read --json $caps > "$work/events.jsonl"

# Chromium cannot reach anything: run it in a network namespace of its own with only lo
# down, so any fetch the page tried would fail and show up as a missing resource.
ip netns add ftpw-browser 2>/dev/null || true
trap 'rm -rf "$work"; ip netns del ftpw-browser 2>/dev/null || true' EXIT
ip netns exec ftpw-browser bash -c ". '$here/browser.sh'; browser_dom 'file://$work/report.html'" > "$work/dom.html" ||
    fail "chromium could not render the report"
python3 - "$work/events.jsonl" "$work/dom.html" <<'PY' || fail "the report's DOM"
import json, re, sys
events = [json.loads(l) for l in open(sys.argv[1])]
dom = open(sys.argv[2]).read()
t = [e for e in events if e["type"] == "transfer"]
s = [e for e in events if e["type"] == "session"]
bars = re.findall(r'<rect class="bar"[^>]*data-outcome="(\w+)"', dom)
assert len(bars) == len(t), (len(bars), len(t))
assert sorted(bars) == sorted(e["outcome"] for e in t)
assert dom.count('<g class="session">') == len(s), "a row per session"
table = dom.split("Aborted, failed and interrupted transfers</h2>")[1].split("<h2>Anomalies")[0]
aborts = [e for e in t if e["outcome"] == "aborted"]
assert aborts, "the captures have aborts"
for e in aborts:
    assert f"<b>{e['abort_cause']}</b>" in table, e["abort_cause"]
assert table.count("<b>client_reset</b>") == sum(1 for e in t if "client_reset" in (e.get("abort_cause"), e.get("interruption_cause")))
for bad in ("<script", " src=", " href=", "url("):
    assert bad not in dom, bad
print(f"  ok  report DOM: {len(s)} session rows, {len(bars)} bars, {len(aborts)} aborts with their causes, nothing external")
PY
ip netns exec ftpw-browser bash -c ". '$here/browser.sh'; browser_shot 'file://$work/report.html' '$work/report.png'" ||
    fail "chromium could not take a screenshot"
png_check "$work/report.png" 1280 1400 || fail "the report's screenshot"
echo "  ok  report screenshot"
echo "report e2e: PASS"
