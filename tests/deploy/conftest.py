"""Shared readers of the deployment files (compose.yaml, deploy/k8s, Dockerfile, locks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """``(file name, resource)`` of every Kubernetes resource listed by deploy/k8s/kustomization.yaml."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """``(kind/name, pod spec)`` of every workload (Deployment, StatefulSet)."""
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for _, doc in k8s_documents()
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]


def compose() -> dict[str, Any]:
    """compose.yaml parsed (YAML merge keys resolved)."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def lock_pins(path: Path) -> dict[str, str]:
    """``{normalised package name: version}`` of a uv/pip-compile lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of ``(INSTRUCTION, arguments)``; continuation lines
    joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        if instr.upper() == "FROM":
            stages.append([])
        stages[-1].append((instr.upper(), args.strip()))
    return stages
