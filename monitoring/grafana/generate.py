#!/usr/bin/env python3
"""Writes monitoring/grafana/<id>.json, Grafana dashboards ready for provisioning, from the
dashboards as data in monitoring/dashboards/<id>.json (schema: monitoring/README.md).

    python3 monitoring/grafana/generate.py          # (re)write the Grafana files
    python3 monitoring/grafana/generate.py --check  # exit 1 if one is missing or out of date
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "dashboards"

# The schema's units, as Grafana names them.
UNITS = {
    "reqps": "reqps",
    "ops": "ops",
    "ratio": "percentunit",
    "seconds": "s",
    "bytes": "bytes",
    "bytes_per_second": "Bps",
    "tokens_per_second": "suffix: tok/s",
    "count": "short",
    "celsius": "celsius",
    "watts": "watt",
}

WIDTH, HEIGHT = 12, 8  # two panels a row on Grafana's 24-column grid
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


class SchemaError(Exception):
    pass


def panel(index, spec, where):
    for key in ("title", "unit", "queries"):
        if key not in spec:
            raise SchemaError(f"{where}: panel {index} has no {key!r}")
    if spec["unit"] not in UNITS:
        raise SchemaError(f"{where}: panel {spec['title']!r}: unknown unit {spec['unit']!r} (one of {', '.join(UNITS)})")
    if not spec["queries"]:
        raise SchemaError(f"{where}: panel {spec['title']!r} has no queries")
    targets = []
    for n, query in enumerate(spec["queries"]):
        if not query.get("expr"):
            raise SchemaError(f"{where}: panel {spec['title']!r}: query {n} has no expr")
        targets.append({
            "datasource": DATASOURCE,
            "expr": query["expr"],
            "legendFormat": query.get("legend", ""),
            "refId": chr(ord("A") + n),
        })
    out = {
        "id": index + 1,
        "type": "timeseries",
        "title": spec["title"],
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT},
        "fieldConfig": {"defaults": {"unit": UNITS[spec["unit"]]}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": targets,
    }
    if spec.get("description"):
        out["description"] = spec["description"]
    return out


def dashboard(spec, where):
    for key in ("id", "title", "panels"):
        if key not in spec:
            raise SchemaError(f"{where}: no {key!r}")
    return {
        "uid": f"daarion-{spec['id']}",
        "title": f"DAARION / {spec['title']}",
        "description": spec.get("description", ""),
        "tags": ["daarion"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }]},
        "panels": [panel(i, p, where) for i, p in enumerate(spec["panels"])],
    }


def render_all():
    """{output path: text} for every dashboard."""
    out = {}
    for path in sorted(SOURCE.glob("*.json")):
        spec = json.loads(path.read_text())
        if spec.get("id") != path.stem:
            raise SchemaError(f"{path}: id {spec.get('id')!r} is not the file name {path.stem!r}")
        text = json.dumps(dashboard(spec, path.name), indent=2, ensure_ascii=False) + "\n"
        out[HERE / path.name] = text
    return out


def main(argv):
    check = "--check" in argv
    try:
        rendered = render_all()
    except (SchemaError, json.JSONDecodeError) as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 1
    stale = [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]
    orphans = [p for p in HERE.glob("*.json") if p not in rendered]
    if check:
        for p in stale:
            print(f"generate.py: {p.relative_to(HERE.parent.parent)} is out of date", file=sys.stderr)
        for p in orphans:
            print(f"generate.py: {p.relative_to(HERE.parent.parent)} has no dashboard in monitoring/dashboards", file=sys.stderr)
        if stale or orphans:
            print("generate.py: run python3 monitoring/grafana/generate.py", file=sys.stderr)
            return 1
        return 0
    for p in stale:
        p.write_text(rendered[p])
    for p in orphans:
        p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
