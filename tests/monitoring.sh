#!/usr/bin/env bash
# The shipped monitoring: Prometheus rules (syntax and promtool unit tests), the Alertmanager
# config and its routes, every dashboard query's PromQL, the Grafana files being generated from
# the dashboards, and every alert having its labels, annotations, a runbook section and tests.
# Needs promtool (Debian: prometheus) and amtool (prometheus-alertmanager): outside CI a missing
# tool skips the check; under CI=true it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

M=monitoring
fail() { echo "[monitoring] FAILED: $*" >&2; exit 1; }
missing=()
command -v promtool >/dev/null || missing+=("promtool (apt-get install prometheus)")
command -v amtool >/dev/null || missing+=("amtool (apt-get install prometheus-alertmanager)")
command -v python3 >/dev/null || missing+=("python3")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    fail "missing ${missing[*]}: CI checks the monitoring rules with them"
  fi
  echo "[monitoring] SKIPPED: missing ${missing[*]}" >&2
  [ -n "${DAARION_TEST_SKIPS:-}" ] && printf 'monitoring: missing %s\n' "${missing[*]}" >>"$DAARION_TEST_SKIPS"
  exit 0
fi
tmp="$(mktemp -d "${TMPDIR:-/tmp}/daarion-monitoring.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "[monitoring] promtool check rules"
promtool check rules $M/prometheus/rules/*.yml >"$tmp/check.log" 2>&1 || { cat "$tmp/check.log" >&2; fail "promtool check rules"; }

echo "[monitoring] promtool test rules"
promtool test rules $M/prometheus/tests/*.yml >"$tmp/test.log" 2>&1 || { cat "$tmp/test.log" >&2; fail "promtool test rules"; }

echo "[monitoring] amtool check-config"
amtool check-config $M/alertmanager/alertmanager.yml >"$tmp/am.log" 2>&1 || { cat "$tmp/am.log" >&2; fail "amtool check-config"; }
# Where alerts go: the heartbeat on its own receiver, everything else to the gateway.
route() { amtool config routes test --config.file=$M/alertmanager/alertmanager.yml "$@" 2>/dev/null; }
[ "$(route alertname=Watchdog severity=info)" = "heartbeat" ] || fail "Watchdog is not routed to the heartbeat receiver"
[ "$(route alertname=ServiceDown severity=critical unit=router)" = "gateway" ] || fail "ServiceDown is not routed to the gateway"
[ "$(route alertname=BusConsumerLagHigh severity=warning consumer=parser-pipeline)" = "gateway" ] || fail "warnings are not routed to the gateway"

echo "[monitoring] dashboard queries parse"
# promtool checks PromQL only inside rule files: every dashboard query becomes a recording rule.
python3 - "$M/dashboards" >"$tmp/dashboards.yml" <<'PY' || fail "dashboards do not follow the schema (monitoring/README.md)"
import json, sys
from pathlib import Path
print("groups:")
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    d = json.loads(path.read_text())
    print(f"  - name: {json.dumps(path.name)}\n    rules:")
    for p in d["panels"]:
        for n, q in enumerate(p["queries"]):
            print(f"      - record: dashboard_query\n        labels: {{panel: {json.dumps(p['title'] + ' #' + str(n))}}}")
            print(f"        expr: {json.dumps(q['expr'])}")
PY
promtool check rules "$tmp/dashboards.yml" >"$tmp/dash.log" 2>&1 || { cat "$tmp/dash.log" >&2; fail "a dashboard query is not valid PromQL"; }

echo "[monitoring] Grafana dashboards generated from monitoring/dashboards"
python3 $M/grafana/generate.py --check || fail "monitoring/grafana is out of date"

echo "[monitoring] every alert: labels, annotations, runbook section, tests"
python3 - "$M/prometheus/rules" "$M/prometheus/tests" docs/runbook.md <<'PY' || fail "alert conventions"
import re, sys
from pathlib import Path
rules_dir, tests_dir, runbook = map(Path, sys.argv[1:])
RUNBOOK_URL = "https://github.com/daarion/daarion/blob/main/docs/runbook.md#"

# The rule files are written one key a line; an alert's block runs to the next rule.
alerts = {}
for path in sorted(rules_dir.glob("*.yml")):
    current = None
    for line in path.read_text().splitlines():
        m = re.match(r"\s*- (alert|record): (\S+)", line)
        if m:
            current = alerts.setdefault(m.group(2), {"file": path.name}) if m.group(1) == "alert" else None
            continue
        m = re.match(r"\s+(for|severity|summary|description|runbook_url): ?(.*)", line)
        if current is not None and m:
            current[m.group(1)] = m.group(2).strip().strip('"')

def slug(heading):
    # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
sections = {slug(m.group(1)) for m in re.finditer(r"^#{2,3} (.+)$", runbook.read_text(), re.M)}

fires, quiet = set(), set()
for path in tests_dir.glob("*.yml"):
    for name, exp in re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*)", path.read_text()):
        (quiet if exp.strip() == "[]" else fires).add(name)

problems = []
for name, a in sorted(alerts.items()):
    where = f"{a['file']}: {name}"
    for key in ("for", "severity", "summary", "description", "runbook_url"):
        if not a.get(key):
            problems.append(f"{where}: no {key}")
    if a.get("severity") not in ("critical", "warning", "info"):
        problems.append(f"{where}: severity {a.get('severity')!r} is not critical, warning or info")
    url = a.get("runbook_url", "")
    if not url.startswith(RUNBOOK_URL):
        problems.append(f"{where}: runbook_url does not start with {RUNBOOK_URL}")
    elif url[len(RUNBOOK_URL):] not in sections:
        problems.append(f"{where}: docs/runbook.md has no section #{url[len(RUNBOOK_URL):]}")
    if name not in fires:
        problems.append(f"{where}: no promtool test where it fires")
    # The Watchdog always fires: it has no quiet case to test.
    if name not in quiet and name != "Watchdog":
        problems.append(f"{where}: no promtool test where it stays quiet (exp_alerts: [])")
for name in sorted((fires | quiet) - set(alerts)):
    problems.append(f"tests name {name}, which no rule file defines")
for p in problems:
    print(f"[monitoring] {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"[monitoring] {len(alerts)} alerts, each with a runbook section and firing and quiet tests")
PY
echo "[monitoring] ok"
