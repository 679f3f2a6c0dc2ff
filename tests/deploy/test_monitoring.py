"""deploy/prometheus and deploy/grafana, checked offline (scripts/check_monitoring.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.check_monitoring import ROOT, check, check_expr, declared_metrics


def test_the_monitoring_files_pass():
    assert check() == []


def test_every_dashboard_query_names_a_metric_we_export():
    known = declared_metrics()
    assert {"whn_deadlines_total", "whn_cases", "whn_deadlines_overdue"} <= known
    assert check_expr("sum(rate(whn_deadlines_total[5m]))", "x", known) == []
    assert check_expr("sum(whn_deadline_total)", "x", known) == [
        "x: unknown metric whn_deadline_total"
    ]
    assert check_expr("sum(rate(whn_cases[5m])", "x", known)[0].startswith("x: PromQL does not parse")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["panels"][0]["targets"][0].update(expr="max(whn_overdue)"), "unknown metric"),
        (lambda d: d["panels"][1].update(datasource={"uid": "elsewhere"}), "data source"),
        (lambda d: d["panels"][2].update(id=d["panels"][0]["id"]), "panel ids repeat"),
    ],
)
def test_a_broken_dashboard_is_rejected_with_the_reason(tmp_path: Path, edit, reason):
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    path = tmp_path / "deploy" / "grafana" / "dashboards" / "promises.json"
    dashboard = json.loads(path.read_text())
    edit(dashboard)
    path.write_text(json.dumps(dashboard))
    problems = check(tmp_path)
    assert problems and all(reason in p for p in problems), problems
