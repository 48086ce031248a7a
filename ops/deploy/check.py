#!/usr/bin/env python3
"""Checks of ops/deploy that no packaged tool does; run by ops/check-deploy.sh.

  check.py metrics ROOT RULES_OUT   every PromQL expression (alerts, dashboard, KEDA, adapter)
                                    names only metrics and labels the binary exports; writes
                                    them as recording rules to RULES_OUT for promtool to parse
  check.py keda ROOT                the ScaledObject against KEDA's models (cloudcoil), with
                                    unknown fields rejected
  check.py grafana ROOT             the dashboard's structure
  check.py drain ROOT               stop timeouts above the worker's shutdown grace everywhere
  check.py prom-k8s ROOT            prometheus-kubernetes.yml's jobs and labels

Exit status 1 with one line per problem on stderr. Needs PyYAML (and cloudcoil for keda).
"""

import json
import re
import sys
from pathlib import Path

import yaml

# Labels Prometheus or the scrape configs here attach to every series.
TARGET_LABELS = {"job", "instance", "namespace", "pod"}
# Series Prometheus makes itself.
SYNTHETIC = {"up": set()}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan",
}
# Grafana's template variables, as promtool-parsable stand-ins.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$company": ".*"}

problems = []


def fail(msg):
    problems.append(msg)


def finish(what):
    for p in problems:
        print(f"check.py {what}: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)


def exported_metrics(root):
    """Metric name -> label names, from the `metrics::counter!/gauge!/histogram!` calls."""
    found = {}
    start = re.compile(r"metrics::(counter|gauge|histogram)!\(")
    for path in sorted(root.glob("crates/*/src/**/*.rs")):
        text = path.read_text()
        for m in start.finditer(text):
            depth, i = 1, m.end()
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            call = text[m.end():i - 1]
            name = re.match(r'\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', call)
            if not name:
                continue  # a name held in a variable: none in this code base
            labels = set(re.findall(r'"([a-zA-Z_][a-zA-Z0-9_]*)"\s*=>', call))
            names = [name.group(1)]
            if m.group(1) == "histogram":
                names = [name.group(1) + s for s in ("_bucket", "_sum", "_count")]
            for n in names:
                found.setdefault(n, set()).update(labels | ({"le"} if n.endswith("_bucket") else set()))
    return found


def documented_metrics(root):
    doc = (root / "docs/operations.md").read_text()
    section = doc.split("## Metrics", 1)[-1].split("\n## ", 1)[0]
    return set(re.findall(r"`(outdial_[a-z_]+)`", section))


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)


def names_and_labels(expr):
    """(metric names, [(metric or None, label)]) that a PromQL expression refers to."""
    e = strip_strings(expr)
    refs = []
    # Selectors with matchers: name{a="", b=~""} or {a=""}.
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}", e):
        metric = m.group(1) if m.group(1) not in PROMQL_WORDS else None
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)):
            refs.append((metric, label))
    # Grouping clauses name labels, not metrics.
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        refs.extend((None, lbl.strip()) for lbl in m.group(2).split(",") if lbl.strip())
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b\d+(\.\d+)?([smhdwy]|ms)?\b", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if word.lower() in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(word)
    return names, refs


def expressions(root):
    """(where, PromQL) for every expression in the deploy files."""
    out = []
    rules = yaml.safe_load((root / "ops/deploy/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            out.append((f"alerts.yml {rule.get('alert') or rule.get('record')}", rule["expr"]))
    dash = json.loads((root / "ops/deploy/grafana/outdial.json").read_text())
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            out.append((f"outdial.json panel {panel['id']} {panel['title']!r} {t['refId']}", t["expr"]))
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict) and q.get("query", "").startswith("label_values("):
            inner = re.match(r"label_values\((.*),\s*([a-zA-Z_]+)\)$", q["query"])
            if not inner:
                fail(f"outdial.json variable {var['name']}: cannot read {q['query']!r}")
                continue
            out.append((f"outdial.json variable {var['name']}", inner.group(1)))
            out.append((f"outdial.json variable {var['name']} label", f"count by ({inner.group(2)}) ({inner.group(1)})"))
    for doc in yaml.safe_load_all((root / "ops/deploy/k8s/keda-scaledobject.yaml").read_text()):
        for trig in doc["spec"]["triggers"]:
            if trig["type"] == "prometheus":
                out.append((f"keda-scaledobject.yaml trigger {trig.get('name')}", trig["metadata"]["query"]))
    for doc in yaml.safe_load_all((root / "ops/deploy/k8s/prometheus-adapter-rules.yaml").read_text()):
        config = yaml.safe_load(doc["data"]["config.yaml"])
        for rule in config["externalRules"]:
            out.append(("prometheus-adapter-rules.yaml seriesQuery", rule["seriesQuery"]))
            q = rule["metricsQuery"].replace("<<.LabelMatchers>>", 'namespace="outdial"')
            q = q.replace("<<.GroupBy>>", "namespace")
            out.append(("prometheus-adapter-rules.yaml metricsQuery", q))
    for i, (where, expr) in enumerate(out):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        out[i] = (where, expr)
    return out


def cmd_metrics(root, rules_out):
    exported = exported_metrics(root)
    if len(exported) < 10:
        fail(f"found only {len(exported)} metrics in crates/*/src: the extraction is broken")
    documented = documented_metrics(root)
    source_names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    for n in sorted(documented - source_names):
        print(f"check.py metrics: warning: docs/operations.md lists {n}, the source records no such metric", file=sys.stderr)
    for n in sorted(source_names - documented):
        print(f"check.py metrics: warning: {n} is recorded in the source but not listed in docs/operations.md", file=sys.stderr)
    known = dict(exported)
    known.update(SYNTHETIC)
    exprs = expressions(root)
    used = set()
    rules = []
    for i, (where, expr) in enumerate(exprs):
        names, refs = names_and_labels(expr)
        for n in sorted(names):
            if n not in known:
                fail(f"{where}: {n} is not a metric the binary exports (nor `up`)")
            used.add(n)
        all_labels = set().union(*(known.get(n, set()) for n in names)) | TARGET_LABELS
        for metric, label in refs:
            allowed = (known.get(metric, set()) | TARGET_LABELS) if metric in known else all_labels
            if label not in allowed:
                fail(f"{where}: label {label!r} is not on {metric or 'the metrics used'}")
        rules.append({"record": f"outdial_check:expr_{i}", "expr": expr})
    Path(rules_out).write_text(yaml.safe_dump({"groups": [{"name": "deploy-expressions", "rules": rules}]}))
    if not problems:
        print(f"check.py metrics: {len(exprs)} expressions name {len(used)} series, all exported "
              f"({len(exported)} series names found in crates/*/src)")
    finish("metrics")


def strict_walk(model, data, path):
    """Rejects keys the pydantic model (by alias) does not declare, recursively."""
    import typing

    from pydantic import BaseModel

    if not isinstance(data, dict):
        return
    fields = {}
    for name, f in model.model_fields.items():
        fields[f.alias or name] = f
        fields[name] = f
    for key, value in data.items():
        if key not in fields:
            fail(f"{path}.{key}: unknown field (not in KEDA's {model.__name__})")
            continue

        def models_in(tp):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                yield tp
            for arg in typing.get_args(tp):
                yield from models_in(arg)

        subs = list(models_in(fields[key].annotation))
        if not subs:
            continue  # a scalar or a free-form map (trigger metadata)
        items = value if isinstance(value, list) else [value]
        for j, item in enumerate(items):
            where = f"{path}.{key}" + (f"[{j}]" if isinstance(value, list) else "")
            strict_walk(subs[0], item, where)


def cmd_keda(root):
    from cloudcoil.models.keda import v1alpha1 as keda

    path = root / "ops/deploy/k8s/keda-scaledobject.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc.get("apiVersion") != "keda.sh/v1alpha1" or doc.get("kind") != "ScaledObject":
            fail(f"{path.name}: expected keda.sh/v1alpha1 ScaledObject, got {doc.get('apiVersion')} {doc.get('kind')}")
            continue
        try:
            keda.ScaledObject.model_validate(doc)
        except Exception as e:  # pydantic's ValidationError, printed in full
            fail(f"{path.name}: {e}")
            continue
        strict_walk(keda.ScaledObject, doc, doc["metadata"]["name"])
        spec = doc["spec"]
        if spec.get("minReplicaCount", 0) < 1:
            fail(f"{path.name}: minReplicaCount must be at least 1 (the workers run the reconciler)")
        for t in spec["triggers"]:
            if t["type"] == "prometheus":
                for key in ("serverAddress", "query", "threshold"):
                    if key not in t.get("metadata", {}):
                        fail(f"{path.name}: prometheus trigger {t.get('name')} lacks metadata.{key}")
    workers = [d for d in yaml.safe_load_all((root / "ops/deploy/k8s/worker.yaml").read_text())
               if d and d["kind"] == "Deployment"]
    targets = {d["metadata"]["name"] for d in workers}
    for doc in docs:
        if doc["spec"]["scaleTargetRef"]["name"] not in targets:
            fail(f"{path.name}: scaleTargetRef {doc['spec']['scaleTargetRef']['name']} is no Deployment in worker.yaml")
    if not problems:
        print(f"check.py keda: {len(docs)} ScaledObject valid against cloudcoil-models-keda, no unknown fields")
    finish("keda")


def cmd_grafana(root):
    dash = json.loads((root / "ops/deploy/grafana/outdial.json").read_text())
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in dash:
            fail(f"outdial.json: no {key}")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        fail("outdial.json: duplicate panel ids")
    variables = {v["name"] for v in dash["templating"]["list"]}
    for p in dash["panels"]:
        g = p.get("gridPos", {})
        if not all(k in g for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
            fail(f"outdial.json panel {p['id']}: bad gridPos {g}")
        if p["type"] == "row":
            continue
        if not p.get("targets"):
            fail(f"outdial.json panel {p['id']}: no targets")
        for t in p.get("targets", []):
            if not t.get("expr"):
                fail(f"outdial.json panel {p['id']}: a target without expr")
            for var in re.findall(r"\$\{?([a-zA-Z_]+)", json.dumps(t) + json.dumps(p.get("datasource"))):
                if var not in variables and not var.startswith("__"):
                    fail(f"outdial.json panel {p['id']}: ${var} is not a dashboard variable")
    if not problems:
        print(f"check.py grafana: {len(ids)} panels, structure ok")
    finish("grafana")


def seconds(value):
    m = re.fullmatch(r"(\d+)(s|m)?", str(value).strip())
    if not m:
        raise ValueError(f"cannot read a duration from {value!r}")
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def cmd_drain(root):
    """The worker's stop timeout must exceed its shutdown grace in each deployment."""
    unit = (root / "ops/deploy/systemd/outdial-worker@.service").read_text()
    grace = int(re.search(r"^Environment=OUTDIAL_SHUTDOWN_GRACE_SECS=(\d+)", unit, re.M).group(1))
    stop = seconds(re.search(r"^TimeoutStopSec=(\S+)", unit, re.M).group(1))
    checks = [("systemd outdial-worker@.service TimeoutStopSec", stop, grace)]
    compose = yaml.safe_load((root / "ops/deploy/compose.yaml").read_text())
    for name, svc in compose["services"].items():
        if svc.get("command") == ["work"]:
            g = int(svc["environment"]["OUTDIAL_SHUTDOWN_GRACE_SECS"])
            checks.append((f"compose {name} stop_grace_period", seconds(svc["stop_grace_period"]), g))
    config = yaml.safe_load((root / "ops/deploy/k8s/config.yaml").read_text())
    g = int(config["data"]["OUTDIAL_SHUTDOWN_GRACE_SECS"])
    for doc in yaml.safe_load_all((root / "ops/deploy/k8s/worker.yaml").read_text()):
        if doc and doc["kind"] == "Deployment":
            t = doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            checks.append(("k8s outdial-worker terminationGracePeriodSeconds", t, g))
    # The grace, then a webhook batch's 10 s timeout may still run, then the lease hand-back.
    for where, stop, grace in checks:
        if stop < grace + 15:
            fail(f"{where} is {stop} s: below the shutdown grace ({grace} s) + 15 s for the hand-back")
    if not problems:
        print(f"check.py drain: {len(checks)} worker stop timeouts cover the shutdown grace")
    finish("drain")


def cmd_prom_k8s(root):
    cfg = yaml.safe_load((root / "ops/deploy/prometheus/prometheus-kubernetes.yml").read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    for name, port in (("outdial-api", "http"), ("outdial-worker", "metrics")):
        job = jobs.get(name)
        if not job:
            fail(f"prometheus-kubernetes.yml: no job {name}")
            continue
        relabels = job.get("relabel_configs", [])
        targets = {r.get("target_label") for r in relabels}
        if not {"namespace", "pod"} <= targets:
            fail(f"prometheus-kubernetes.yml {name}: must set the namespace and pod labels")
        if not any(r.get("regex") == port and r.get("action") == "keep" for r in relabels):
            fail(f"prometheus-kubernetes.yml {name}: must keep only the {port} port")
        for r in relabels:
            try:
                re.compile(r.get("regex", ".*"))
            except re.error as e:
                fail(f"prometheus-kubernetes.yml {name}: bad regex {r.get('regex')!r}: {e}")
    for name in ("outdial-api", "outdial-worker"):
        for doc in yaml.safe_load_all((root / f"ops/deploy/k8s/{name.split('-')[1]}.yaml").read_text()):
            if doc and doc["kind"] == "Deployment":
                label = doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
                if label != name:
                    fail(f"k8s {name}: pods are labelled {label!r}, the scrape job keeps {name!r}")
    if not problems:
        print("check.py prom-k8s: jobs, labels and relabel regexes ok (structure only)")
    finish("prom-k8s")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, root = sys.argv[1], Path(sys.argv[2])
    if cmd == "metrics":
        cmd_metrics(root, sys.argv[3])
    elif cmd == "keda":
        cmd_keda(root)
    elif cmd == "grafana":
        cmd_grafana(root)
    elif cmd == "drain":
        cmd_drain(root)
    elif cmd == "prom-k8s":
        cmd_prom_k8s(root)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
