"""The shipped deploy files agree with the code: the names they set are settings, the ports and
paths they probe are the operator listener's, the catalog they mount is one the bot accepts. Reads
files only; hadolint, the compose spec, kubernetes-validate and systemd-analyze run in
scripts/container-test, which also builds and runs the image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.catalog_file import load_catalog
from bot.ops.health import build_health_app
from bot.settings import Settings
from tests.helpers import ROOT

K8S = ROOT / "manifests" / "kubernetes"
UNIT = ROOT / "manifests" / "systemd" / "aistatus.service"
ALIASES = {f.alias for f in Settings.model_fields.values() if f.alias}
OURS = re.compile(r"^(AISTATUS_\w+|SLACK_\w+|DISCORD_\w+|REDIS_URL|ANTHROPIC_API_KEY)$")
WORKLOADS = {"Deployment", "StatefulSet"}


def resources() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def resource(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def bot_container() -> dict[str, Any]:
    (container,) = resource("Deployment", "aistatus")["spec"]["template"]["spec"]["containers"]
    return container


def unit_values(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(), flags=re.M)


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_kustomization_lists_every_manifest_but_the_dev_redis():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "redis-dev.yaml"}
    assert set(kustomization["resources"]) == files
    assert [i["name"] for i in kustomization["images"]] == [bot_container()["image"]]


def test_the_deployment_runs_two_replicas_probed_on_the_operator_listener():
    deployment = resource("Deployment", "aistatus")
    assert deployment["spec"]["replicas"] == 2
    container = bot_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AISTATUS_OPS_HOST"] == env["AISTATUS_HTTP_HOST"] == "0.0.0.0"
    assert ports == {
        "http": int(env["AISTATUS_HTTP_PORT"]),
        "slack": int(env["AISTATUS_SLACK_PORT"]),
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    async def ready() -> tuple[bool, str]:
        return True, "ok"

    served = {r.resource.canonical for r in build_health_app(ready).router.routes() if r.resource}
    assert {"/healthz", "/readyz"} <= served
    # Service links would set AISTATUS_SLACK_PORT=tcp://… for the Service named aistatus-slack.
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_every_variable_the_deploy_files_set_is_a_setting():
    container = bot_container()
    names = {e["name"] for e in container["env"]}
    names |= set(resource("ConfigMap", "aistatus-settings")["data"])
    names |= set(resource("Secret", "aistatus-secrets")["stringData"])
    names |= set(compose()["services"]["bot"]["environment"])
    names |= set(re.findall(r"\b(AISTATUS_\w+)=", (ROOT / "Dockerfile").read_text()))
    names |= {kv.split("=")[0] for line in unit_values("Environment") for kv in line.split()}
    ours = {n for n in names if OURS.match(n)}
    assert ours - ALIASES == set(), "not a setting (a typo?)"
    assert {"REDIS_URL", "SLACK_BOT_TOKEN", "DISCORD_TOKEN", "AISTATUS_CATALOG"} <= ours


def test_the_secret_template_holds_no_token():
    data = resource("Secret", "aistatus-secrets")["stringData"]
    assert {k: v for k, v in data.items() if k != "REDIS_URL"} == dict.fromkeys(
        set(data) - {"REDIS_URL"}, ""
    )
    redis_service = resource("Service", "aistatus-redis")["metadata"]["name"]
    assert data["REDIS_URL"] == f"redis://{redis_service}:6379/0"  # redis-dev.yaml's, to try it


def test_the_catalog_config_map_is_an_override_the_bot_accepts(tmp_path: Path):
    container = bot_container()
    env = {e["name"]: e["value"] for e in container["env"]}
    volumes = resource("Deployment", "aistatus")["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v.get("configMap", {}).get("name") == "aistatus-catalog"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    data = resource("ConfigMap", "aistatus-catalog")["data"]
    assert env["AISTATUS_CATALOG"] == f"{mount['mountPath']}/catalog.yaml"
    override = tmp_path / "catalog.yaml"
    override.write_text(data["catalog.yaml"])
    catalog = load_catalog(override)
    assert "local-ollama" not in catalog.surfaces and "api" in catalog.surfaces


def test_each_service_reaches_named_ports_of_the_pods_it_selects():
    workloads = [d for d in resources() if d["kind"] in WORKLOADS]
    for service in (d for d in resources() if d["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        (pod,) = [
            w["spec"]["template"]["spec"]
            for w in workloads
            if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        named = {p["name"] for c in pod["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named, service["metadata"]["name"]


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", "aistatus"), ("StatefulSet", "aistatus-redis")]
)
def test_every_pod_runs_unprivileged_on_a_read_only_root_with_bounded_memory(kind, name):
    pod = resource(kind, name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"memory"} <= set(container["resources"]["limits"])
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_the_pods_run_as_the_user_the_image_declares():
    (user,) = re.findall(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    context = resource("Deployment", "aistatus")["spec"]["template"]["spec"]["securityContext"]
    assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user


def test_compose_keeps_redis_aof_on_a_named_volume_and_restarts_both():
    spec = compose()
    redis, bot = spec["services"]["redis"], spec["services"]["bot"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--dir") + 1] == "/data"
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in spec["volumes"]
    assert bot["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "test" in redis["healthcheck"]
    assert {redis["restart"], bot["restart"]} == {"unless-stopped"}
    # Published on this host's loopback unless AISTATUS_PUBLISH_HOST says otherwise.
    loopback = r"\$\{AISTATUS_PUBLISH_HOST:-127\.0\.0\.1\}:\$\{\w+:-\d+\}:(\d+)"
    inner = {m.group(1) if (m := re.fullmatch(loopback, p)) else p for p in bot["ports"]}
    assert inner == {
        bot["environment"]["AISTATUS_HTTP_PORT"],
        bot["environment"]["AISTATUS_SLACK_PORT"],
    }


def test_the_systemd_unit_keeps_the_private_redis_in_its_state_directory():
    env = dict(kv.split("=", 1) for line in unit_values("Environment") for kv in line.split())
    (state,) = unit_values("StateDirectory")
    assert env["AISTATUS_DATA_DIR"] == f"/var/lib/{state}"
    assert unit_values("ProtectSystem") == ["strict"]  # /var/lib/<StateDirectory> stays writable
    for key in ("DynamicUser", "NoNewPrivileges", "PrivateTmp"):
        assert unit_values(key) == ["yes"], key
    assert unit_values("Restart") == ["on-failure"]
    assert unit_values("ExecStart") == ["/opt/aistatus/bin/aistatus run"]
