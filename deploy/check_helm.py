"""Lints deploy/helm/relaywatch with Helm's own linter (Helm v4's Go SDK through helm-python-sdk, no helm binary
needed), renders it with each ci/*-values.yaml, and validates every rendered manifest against the Kubernetes JSON
schemas (kubernetes-validate, strict: unknown fields are errors). Exits non-zero on any finding above INFO."""

import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

CHART = pathlib.Path(__file__).resolve().parent / "helm" / "relaywatch"
KUBE_VERSION = "1.33.0"  # the oldest Kubernetes release the chart is checked against
INFO = 1  # Helm lint severities: 1 info, 2 warning, 4 error

failures = []
print(f"helm SDK {helm.helm_sdk_version()}")

# Without values the chart must refuse to render: PostgreSQL is external and has no default. (helm lint itself
# tolerates `fail` in templates, so `helm lint deploy/helm/relaywatch` passes without values.)
try:
    with helm.Chart.load(str(CHART)) as chart:
        chart.render({}, name="rw", namespace="mail")
    failures.append("rendering with no database configured succeeded; it must fail")
except helm.HelmError as e:
    print(f"  render without a database refused, as it must: {str(e).splitlines()[0][:120]}")

for values_file in sorted((CHART / "ci").glob("*-values.yaml")):
    values = yaml.safe_load(values_file.read_text())
    report = helm.lint(str(CHART), values=values, strict=True, namespace="mail")
    for m in report["messages"]:
        print(f"  lint {values_file.name}: [{m['severity']}] {m['path']}: {m['error']}")
        if m["severity"] > INFO:
            failures.append(f"helm lint ({values_file.name}): {m['path']}: {m['error']}")
    for e in report.get("errors") or []:
        failures.append(f"helm lint ({values_file.name}): {e}")

    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="rw", namespace="mail")
    kinds = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            kinds.append(doc["kind"])
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                failures.append(f"{values_file.name}: {path}: {doc['kind']} {doc['metadata']['name']}: {e.message}")
            if doc["kind"] == "Deployment":
                spec = doc["spec"]["template"]["spec"]
                if not spec["securityContext"].get("runAsNonRoot"):
                    failures.append(f"{path}: pods must run as non-root")
                for c in spec["containers"]:
                    if not (c.get("readinessProbe") and c.get("livenessProbe")):
                        failures.append(f"{path}: container {c['name']} lacks probes")
    print(f"  render {values_file.name}: {', '.join(kinds)}")
    needed = ["Deployment", "Service", "Job"] + ([] if values["database"].get("existingSecret") else ["Secret"])
    for needed in needed:
        if needed not in kinds:
            failures.append(f"{values_file.name}: no {needed} rendered")

for f in failures:
    print(f"FAIL: {f}", file=sys.stderr)
if failures:
    sys.exit(1)
print("helm chart: lint clean, manifests valid")
