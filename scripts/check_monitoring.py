"""Check the Prometheus and Grafana files under deploy/ offline (``make lint-monitoring``).

- docker-compose.yml's ``prometheus`` and ``grafana`` services mount these files where
  their configuration says, and Prometheus scrapes the worker on its WHN_METRICS_PORT;
- every PromQL expression (alert rules, dashboard panels) parses (``promql-parser``,
  Grafana's ``$__range``-style variables put in first) and names only metrics that
  exist: ours, declared in activities/, or the Temporal SDK's (``temporal_``), or ``up``;
- every dashboard panel uses the provisioned data source, and ids are unique.

Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import promql_parser
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GRAFANA_VARIABLES = {"$__range": "1d", "$__rate_interval": "5m", "$__interval": "1m"}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def declared_metrics() -> set[str]:
    """Metric names our code creates (``create_counter("whn_...")`` and the like)."""
    names: set[str] = set()
    for source in (ROOT / "activities").glob("*.py"):
        names |= set(re.findall(r'create_\w+\(\s*"(whn_\w+)"', source.read_text()))
    return names


def _metric_names(node: Any) -> set[str]:
    """Every metric a parsed PromQL expression selects."""
    found: set[str] = set()
    name = getattr(node, "name", None)
    if isinstance(name, str) and type(node).__name__ in ("VectorSelector", "MatrixSelector"):
        found.add(name)
    for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            found |= _metric_names(child)
    for child in getattr(node, "args", None) or []:
        found |= _metric_names(child)
    return found


def check_expr(expr: str, where: str, known: set[str]) -> list[str]:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    try:
        parsed = promql_parser.parse(expr)
    except ValueError as err:
        return [f"{where}: PromQL does not parse: {err}"]
    unknown = {
        m for m in _metric_names(parsed) if m not in known and not m.startswith("temporal_")
    } - {"up"}
    return [f"{where}: unknown metric {m}" for m in sorted(unknown)]


def check(root: Path = ROOT) -> list[str]:
    deploy = root / "deploy"
    problems: list[str] = []
    known = declared_metrics()
    if not {"whn_deadlines_total", "whn_cases", "whn_deadlines_overdue"} <= known:
        problems.append(f"activities/: expected metrics not declared (found {sorted(known)})")

    compose = _yaml(root / "docker-compose.yml")
    services = compose.get("services", {})
    for name in ("prometheus", "grafana"):
        if name not in services:
            problems.append(f"docker-compose.yml: no {name} service")
    worker_port = str(services.get("worker", {}).get("environment", {}).get("WHN_METRICS_PORT"))
    mounts = {
        v.split(":")[1]: v.split(":")[0]
        for s in ("prometheus", "grafana")
        for v in services.get(s, {}).get("volumes", [])
        if v.startswith("./")
    }

    prom = _yaml(deploy / "prometheus" / "prometheus.yml")
    if mounts.get("/etc/prometheus") != "./deploy/prometheus":
        problems.append("docker-compose.yml: prometheus must mount ./deploy/prometheus")
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    ports = {
        str(sd.get("port"))
        for sd in jobs.get("whn-worker", {}).get("dns_sd_configs", [])
        if "worker" in sd.get("names", [])
    }
    if worker_port not in ports:
        problems.append(f"prometheus.yml: job whn-worker must scrape worker:{worker_port}")
    for rule_file in prom.get("rule_files", []):
        local = deploy / "prometheus" / Path(rule_file).relative_to("/etc/prometheus")
        if not local.exists():
            problems.append(f"prometheus.yml: rule file {rule_file} missing")
            continue
        for group in _yaml(local).get("groups", []):
            for rule in group.get("rules", []):
                where = f"{local.name}: {rule.get('alert') or rule.get('record')}"
                problems += check_expr(str(rule["expr"]), where, known)

    datasources = _yaml(deploy / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uids = {d["uid"] for d in datasources.get("datasources", []) if d.get("type") == "prometheus"}
    if mounts.get("/etc/grafana/provisioning") != "./deploy/grafana/provisioning":
        problems.append("docker-compose.yml: grafana must mount ./deploy/grafana/provisioning")
    providers = _yaml(deploy / "grafana" / "provisioning" / "dashboards" / "whn.yml")
    for provider in providers.get("providers", []):
        path = provider.get("options", {}).get("path")
        if mounts.get(path) != "./deploy/grafana/dashboards":
            problems.append(f"dashboards provider path {path} is not ./deploy/grafana/dashboards")

    dashboards = sorted((deploy / "grafana" / "dashboards").glob("*.json"))
    if not dashboards:
        problems.append("deploy/grafana/dashboards: no dashboard")
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        ids = [p.get("id") for p in dashboard.get("panels", [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{path.name}: panel ids repeat")
        for panel in dashboard.get("panels", []):
            where = f"{path.name}: panel {panel.get('title')!r}"
            if panel.get("datasource", {}).get("uid") not in uids:
                problems.append(f"{where}: data source is not the provisioned one")
            if not panel.get("targets"):
                problems.append(f"{where}: no query")
            for target in panel.get("targets", []):
                problems += check_expr(target.get("expr", ""), where, known)
    return problems


def main() -> None:
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"monitoring: {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
