#!/usr/bin/env bash
# Checks the Prometheus rules and the Grafana dashboard with promtool (from the Debian
# package prometheus). Run from the repository root: dashboards/check.sh
#
# 1. promtool check rules on dashboards/alerts.yml;
# 2. promtool test rules on dashboards/tests/alerts_test.yml;
# 3. every PromQL expression of dashboards/ftpwatch.json (panel targets, and the series
#    selectors of label_values() variable queries), with Grafana's variables replaced
#    by valid PromQL, parsed by promtool as recording rules of a temporary rule file.
#
# That every metric name exists in ftpwatch is checked by tests/dashboards.rs
# (cargo test).
set -euo pipefail

cd "$(dirname "$0")/.."

command -v promtool >/dev/null || { echo "check.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "check.sh: python3 not found" >&2; exit 1; }

rules=dashboards/alerts.yml
tests=dashboards/tests/alerts_test.yml
dashboard=dashboards/ftpwatch.json

echo "== promtool check rules $rules"
promtool check rules "$rules"

echo "== promtool test rules $tests"
promtool test rules "$tests"

echo "== PromQL of $dashboard"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$dashboard" "$tmp/dashboard-rules.yml" <<'PY'
import json
import re
import sys

dashboard_path, out_path = sys.argv[1], sys.argv[2]
with open(dashboard_path, encoding="utf-8") as f:
    dashboard = json.load(f)

# Grafana's variables, replaced by valid PromQL. A variable's name is matched whole
# (\w+), so $__rate_interval is not taken for $__range or $__interval.
substitutions = {
    "__rate_interval": "5m",
    "__interval_ms": "60000",
    "__interval": "1m",
    "__range_s": "3600",
    "__range": "1h",
    "instance": ".*",
    "job": ".*",
}
variable = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr, where):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in substitutions:
            return substitutions[name]
        sys.exit(f"check.sh: {where}: unknown Grafana variable ${name} in: {expr}")
    return variable.sub(repl, expr)


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


exprs = []  # (where, record name naming the place, expr)
for p in panels(dashboard.get("panels", [])):
    for t in p.get("targets", []):
        where = f"panel {p.get('id')} \"{p.get('title')}\" target {t.get('refId')}"
        expr = t.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            sys.exit(f"check.sh: {where}: no expr")
        exprs.append((where, f"dashboard:panel_{p.get('id')}_{t.get('refId')}:check", expr))

label_values = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$", re.S)
for v in dashboard.get("templating", {}).get("list", []):
    if v.get("type") != "query":
        continue
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    where = f"variable {v.get('name')}"
    m = label_values.match(q or "")
    if not m:
        sys.exit(f"check.sh: {where}: not a label_values(selector, label) query: {q!r}")
    exprs.append((where, f"dashboard:variable_{v.get('name')}:check", m.group(1)))

if not exprs:
    sys.exit("check.sh: no PromQL expression found in the dashboard")

with open(out_path, "w", encoding="utf-8") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for where, record, expr in exprs:
        promql = substitute(expr, where)
        # promtool names the record in its errors: it says which panel and target.
        out.write(f"      # {where}\n")
        out.write(f"      - record: {json.dumps(record)}\n")
        out.write(f"        expr: {json.dumps(promql)}\n")
print(f"{len(exprs)} expressions extracted")
PY

promtool check rules "$tmp/dashboard-rules.yml"

echo "check.sh: all checks passed"
