"""Structural check of deploy/docker/compose.yaml (no Docker engine here to run `docker compose config`): every
service has an image, dependencies name existing services with a valid condition, build contexts and Dockerfiles
exist, the API runs without the worker and waits for it, and no ${VAR} is left without a default or an error text."""

import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
path = HERE / "docker" / "compose.yaml"
doc = yaml.safe_load(path.read_text())
failures = []
services = doc["services"]
for name, svc in services.items():
    if "image" not in svc:
        failures.append(f"{name}: no image")
    build = svc.get("build")
    if build:
        ctx = (path.parent / build["context"]).resolve()
        if not (ctx / build["dockerfile"]).is_file():
            failures.append(f"{name}: {build['dockerfile']} not found under {ctx}")
    for dep, cond in (svc.get("depends_on") or {}).items():
        if dep not in services:
            failures.append(f"{name}: depends on unknown service {dep}")
        if cond.get("condition") not in ("service_started", "service_healthy", "service_completed_successfully"):
            failures.append(f"{name}: bad condition {cond}")
        if cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep] and "build" not in services[dep]:
            failures.append(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
api, worker = services["api"], services["worker"]
if "--no-worker" not in api["command"] or api["environment"]["RELAYWATCH_WORKER_ENABLED"] != "false":
    failures.append("api must run with --no-worker")
if worker["environment"]["RELAYWATCH_WORKER_ENABLED"] != "true":
    failures.append("worker must run the worker")
if api["depends_on"]["worker"]["condition"] != "service_healthy":
    failures.append("api must wait for a healthy worker (first-start bootstrap)")
if api["environment"]["RELAYWATCH_SIGNING_SECRET"] != worker["environment"]["RELAYWATCH_SIGNING_SECRET"]:
    failures.append("api and worker must share the signing secret")
for var in re.findall(r"\$\{([^}]*)\}", path.read_text()):
    if not re.fullmatch(r"[A-Z_]+(:?[?-].*)?", var):
        failures.append(f"odd interpolation ${{{var}}}")
for f in failures:
    print(f"FAIL: {f}", file=sys.stderr)
if failures:
    sys.exit(1)
print(f"compose: {len(services)} services ({', '.join(services)}), structure valid")
