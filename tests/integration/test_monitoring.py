"""deploy/monitoring (issue 16 part 6): the Prometheus configuration and its
alert rules pass `promtool check` and their own unit tests
(`promtool test rules`), and every metric the rules and the Grafana
dashboard's panels use is one the services really export: each name is
looked up in a live /metrics scrape of the five services."""
import json
import os
import re
import shutil
import subprocess
import urllib.request

import yaml

from client import Api

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MON = os.path.join(ROOT, "deploy", "monitoring")
SERVICES = ["auth", "enterprise", "orders", "payments", "issuance"]


def promtool(*args):
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: apt-get install prometheus (deploy/scripts/install-deps.sh)"
    r = subprocess.run([exe, *args], cwd=MON, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def live_metric_names(suite):
    """Metric names (histogram _bucket/_sum/_count as written) on the
    services' /metrics, after a request each so the route series exist."""
    api = Api(suite)
    api.get("/api/v1/platforms")
    api.get("/api/v1/auth/me")
    names = set()
    for svc in SERVICES:
        if svc not in suite.ports:
            continue
        with urllib.request.urlopen(suite.service_url(svc) + "/metrics", timeout=5) as r:
            assert r.status == 200
            text = r.read().decode()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
            # a family declared with no sample yet (a counter of errors
            # that have not happened: caplat_dependency_errors_total)
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                names.add(m.group(1))
                if m.group(2) == "histogram":
                    names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def used_names(expr):
    """The caplat_ metric names a PromQL expression reads (recording rules,
    caplat:..., are not metrics of a service)."""
    return set(re.findall(r"\b(caplat_[a-z0-9_]+)\b", expr))


def test_monitoring_promtool_checks_config_rules_and_their_unit_tests(suite):
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    out = promtool("check", "rules", "alerts.yml")
    assert re.search(r"SUCCESS: \d+ rules found", out), out
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")
    # the alerts the issue asks for are all there
    rules = yaml.safe_load(open(os.path.join(MON, "alerts.yml")))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts >= {"CaplatDeadLetters", "CaplatOutboxBacklog", "CaplatOutboxStale", "CaplatConsumerLag",
                      "CaplatDependencyErrors", "CaplatHigh5xxRate", "CaplatSlowRoute",
                      "CaplatSigningFailures", "CaplatVendorRootExpiring"}, alerts
    # every alert has a unit test
    tests = open(os.path.join(MON, "alerts_test.yml")).read()
    assert all(f"alertname: {a}" in tests for a in alerts), alerts


def test_monitoring_rules_and_dashboard_use_only_exported_metrics(suite):
    live = live_metric_names(suite)
    rules = yaml.safe_load(open(os.path.join(MON, "alerts.yml")))
    wanted = {}
    for g in rules["groups"]:
        for r in g["rules"]:
            for name in used_names(r["expr"]):
                wanted.setdefault(name, []).append(r.get("alert") or r.get("record"))
    dash = json.load(open(os.path.join(MON, "grafana-dashboard.json")))
    assert dash["panels"], "the dashboard has no panel"
    titles = [p["title"] for p in dash["panels"]]
    assert any("funnel" in t.lower() for t in titles) and any("latency" in t.lower() for t in titles), titles
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            names = used_names(t["expr"])
            assert names, f"panel {p['title']!r}: no caplat_ metric in {t['expr']!r}"
            for name in names:
                wanted.setdefault(name, []).append(f"panel {p['title']!r}")
    missing = {n: users for n, users in wanted.items() if n not in live}
    assert not missing, f"not on any service's /metrics: {missing}"
    # the gauges this issue added are among them
    assert {"caplat_bus_outbox_oldest_age_seconds", "caplat_bus_consumer_lag",
            "caplat_vendor_root_not_after_seconds"} <= set(wanted) & live
