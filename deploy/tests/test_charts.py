"""Every chart, rendered with each value set the issue names, is valid Kubernetes 1.33 (strict)
and follows the deployment policy: resources, probes, hardened pods, autoscaling, grace periods,
secrets only by reference, network isolation.

Helm comes from `make deploy-check` (ALTA_HELM, default .tools/helm/helm).
"""

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = ROOT / "deploy" / "helm"
KUBERNETES_VERSION = "1.33.0"
CHARTS = ["web-bff", "authz", "registration", "email-sender", "crm-integration"]
CONSUMERS = {"email-sender", "crm-integration"}
PORTS = {"web-bff": 8000, "authz": 8001, "registration": 8002, "email-sender": 8003,
         "crm-integration": 8004}  # fmt: skip
KEDA_ON = [
    "--set", "keda.enabled=true",
    "--set", "keda.queueURL=https://sqs.us-east-1.amazonaws.com/123456789012/queue",
]  # fmt: skip
VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "production": ["-f", "values-production.example.yaml"],
    "hpa-off": ["--set", "autoscaling.enabled=false"],
    "hpa-on": ["--set", "autoscaling.enabled=true"],
    "keda-on": KEDA_ON,
    "keda-pod-identity": [
        *KEDA_ON,
        "--set",
        "keda.identityOwner=pod",
        "--set",
        "serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/consumer",
    ],
    "service-monitor": ["--set", "metrics.serviceMonitor.enabled=true"],
}
KEDA_SETS = {"keda-on", "keda-pod-identity"}
RENDERS = [
    (chart, value_set)
    for chart in CHARTS
    for value_set in VALUE_SETS
    if value_set not in KEDA_SETS or chart in CONSUMERS
]
CUSTOM_RESOURCE_SCHEMAS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "custom-resource-schemas.json").read_text()
)
Manifest = dict[str, Any]
# Every credential the services read (README, Configuration): never in a ConfigMap.
SECRET_VARIABLES = {
    "DATABASE_URL", "CSRF_SECRET", "JWT_PRIVATE_KEY", "SMTP_USERNAME", "SMTP_PASSWORD",
    "CRM_API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
}  # fmt: skip


def helm() -> str:
    path = Path(os.environ.get("ALTA_HELM", ROOT / ".tools" / "helm" / "helm")).resolve()
    if not path.is_file():
        pytest.fail(f"helm not found at {path}: run `make deploy-check` (it fetches helm)")
    return str(path)


def run_helm_template(chart: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm(), "template", chart, str(CHARTS_DIR / chart), "--namespace", "alta", *args],
        cwd=CHARTS_DIR / chart,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# Renders that only some tests need: a changed config, and values the chart must refuse.
EXTRA_RUNS: dict[str, list[str]] = {
    "log-level-changed": ["--set", "logLevel=DEBUG"],
    "cpu-request-changed": ["--set", "resources.requests.cpu=2"],
    "grace-too-short": ["--set", "terminationGracePeriodSeconds=10"],
    "no-existing-secret": ["--set", "existingSecret="],
}


@cache
def all_helm_runs() -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    """Every `helm template` the tests need, run once and concurrently (each is mostly start-up)."""
    runs = {**VALUE_SETS, **EXTRA_RUNS}
    keys = [*RENDERS, *((chart, name) for chart in CHARTS for name in EXTRA_RUNS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda key: run_helm_template(key[0], runs[key[1]]), keys)
        return dict(zip(keys, results, strict=True))


@cache
def manifests(chart: str, value_set: str) -> list[Manifest]:
    """Parsed once; tests read them and never change them."""
    result = all_helm_runs()[(chart, value_set)]
    assert result.returncode == 0, f"helm template {chart} ({value_set}): {result.stderr}"
    return [doc for doc in yaml.load_all(result.stdout, Loader=yaml.CSafeLoader) if doc]


def only(docs: list[Manifest], kind: str) -> Manifest:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(docs: list[Manifest]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def config_of(docs: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = only(docs, "ConfigMap")["data"]
    return data


def container_of(docs: list[Manifest]) -> Manifest:
    containers = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one process per pod: the orchestrator scales"
    container: Manifest = containers[0]
    return container


render_ids: Callable[[tuple[str, str]], str] = "/".join
every_render = pytest.mark.parametrize(
    ("chart", "value_set"), RENDERS, ids=map(render_ids, RENDERS)
)


@cache
def kubernetes_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """kubernetes-validate's strict 1.33 schema for one kind, built once per kind.

    Same files and lookup as `kubernetes_validate.validate(doc, "1.33.0", strict=True)`, which
    re-reads the shared definitions (megabytes of JSON) for every single manifest.
    """
    directory = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"{directory}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    definitions = schema_contents(f"{directory}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


@every_render
def test_every_manifest_is_valid_kubernetes_1_33_in_strict_mode(chart: str, value_set: str) -> None:
    for doc in manifests(chart, value_set):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CUSTOM_RESOURCE_SCHEMAS:
            jsonschema.validate(doc, CUSTOM_RESOURCE_SCHEMAS[doc["kind"]])
            continue
        errors = list(kubernetes_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))
        assert not errors, [f"{name}: {e.message} at {list(e.path)}" for e in errors]


@pytest.mark.parametrize("chart", CHARTS)
def test_default_render_has_every_object_the_chart_owes(chart: str) -> None:
    expected = {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "ServiceAccount", "ConfigMap", "NetworkPolicy",
    }  # fmt: skip
    expected |= {"web-bff": {"Ingress"}, "registration": {"Job"}}.get(chart, set())
    assert sorted(expected) == kinds(manifests(chart, "defaults"))


@every_render
def test_deployment_has_resources_probes_and_a_hardened_pod(chart: str, value_set: str) -> None:
    docs = manifests(chart, value_set)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    container = container_of(docs)

    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [
        {"name": "http", "containerPort": PORTS[chart], "protocol": "TCP"}
    ]

    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    hardened = container["securityContext"]
    assert hardened["runAsNonRoot"] is True
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"] == {"drop": ["ALL"]}
    assert hardened["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])

    zones = [c["topologyKey"] for c in pod["topologySpreadConstraints"]]
    assert "topology.kubernetes.io/zone" in zones


@every_render
def test_replicas_belong_to_the_autoscaler_when_one_is_on(chart: str, value_set: str) -> None:
    docs = manifests(chart, value_set)
    deployment = only(docs, "Deployment")
    hpas = [doc for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"]
    scaled_objects = [doc for doc in docs if doc["kind"] == "ScaledObject"]

    if value_set in KEDA_SETS:
        assert not hpas, "KEDA creates its own HPA; a second one would fight it"
        assert len(scaled_objects) == 1
    if value_set == "hpa-off":
        assert not hpas
        assert deployment["spec"]["replicas"] >= 1
    else:
        assert "replicas" not in deployment["spec"]
    for hpa in hpas:
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for scaled in scaled_objects:
        assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]


@every_render
def test_pods_get_the_production_environment_and_secrets_only_by_reference(
    chart: str, value_set: str
) -> None:
    docs = manifests(chart, value_set)
    config = config_of(docs)
    container = container_of(docs)
    assert config["APP_ENV"] == "production"
    assert config["HOST"] == "0.0.0.0"
    assert config["PORT"] == str(PORTS[chart])
    assert container["envFrom"] == [
        {"configMapRef": {"name": only(docs, "ConfigMap")["metadata"]["name"]}}
    ]

    assert not SECRET_VARIABLES & config.keys()
    assert not [doc for doc in docs if doc["kind"] == "Secret"], "Secrets come from existingSecret"
    for variable in container.get("env", []):
        assert set(variable) == {"name", "valueFrom"}, f"{variable['name']} is not a reference"
        assert "secretKeyRef" in variable["valueFrom"]


@pytest.mark.parametrize("chart", CHARTS)
def test_a_config_change_changes_the_pod_checksum_so_pods_roll(chart: str) -> None:
    def checksum(value_set: str) -> str:
        docs = manifests(chart, value_set)
        annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/config"]
        return value

    before = checksum("defaults")
    assert len(before) == len(hashlib.sha256().hexdigest())
    assert checksum("log-level-changed") != before
    assert checksum("cpu-request-changed") == before


@every_render
def test_termination_grace_outlasts_prestop_graceful_timeout_and_long_poll(
    chart: str, value_set: str
) -> None:
    docs = manifests(chart, value_set)
    config = config_of(docs)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container_of(docs)["lifecycle"]["preStop"]["sleep"]["seconds"]
    needed = pre_stop + float(config["GRACEFUL_TIMEOUT_SECONDS"])
    if chart in CONSUMERS:
        needed += float(config["SQS_WAIT_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > needed
    minimum = {"crm-integration": 80, "email-sender": 35}.get(chart, 0)
    assert pod["terminationGracePeriodSeconds"] >= minimum


@pytest.mark.parametrize("chart", CHARTS)
def test_a_grace_period_too_short_for_shutdown_is_refused(chart: str) -> None:
    result = all_helm_runs()[(chart, "grace-too-short")]
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds (10) must exceed" in result.stderr


def ingress_sources(policy: Manifest) -> list[Manifest]:
    return [source for rule in policy["spec"]["ingress"] for source in rule["from"]]


@pytest.mark.parametrize("value_set", ["defaults", "production"])
def test_network_policies_let_each_service_be_reached_only_by_its_callers(value_set: str) -> None:
    def sources(chart: str) -> list[Manifest]:
        return ingress_sources(only(manifests(chart, value_set), "NetworkPolicy"))

    def pods_from(chart: str) -> list[str]:
        return [s["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for s in sources(chart)
                if "podSelector" in s]  # fmt: skip

    assert pods_from("authz") == ["web-bff", "registration", "email-sender", "crm-integration"]
    assert pods_from("registration") == ["web-bff"]
    assert pods_from("web-bff") == []
    # The consumers: the BFF's admin console asks them for delivery states.
    for consumer in CONSUMERS:
        assert pods_from(consumer) == ["web-bff"], consumer
    # Only the BFF accepts traffic from outside the cluster: from the ALB's subnets, which are
    # also the proxies whose forwarded headers it believes.
    bff = manifests("web-bff", value_set)
    alb_cidrs = [s["ipBlock"]["cidr"] for s in sources("web-bff") if "ipBlock" in s]
    assert alb_cidrs
    assert config_of(bff)["TRUSTED_PROXIES"] == ",".join(alb_cidrs)
    for chart in ("authz", "registration", *CONSUMERS):
        assert not [s for s in sources(chart) if "ipBlock" in s], chart


@pytest.mark.parametrize("chart", CHARTS)
def test_network_policy_egress_is_limited_to_dns_database_and_what_the_service_calls(
    chart: str,
) -> None:
    policy = only(manifests(chart, "production"), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ports = sorted({p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]})
    expected = {
        "web-bff": [53, 8001, 8002, 8003, 8004],
        "authz": [53, 5432],
        "registration": [53, 443, 5432, 8001],
        "email-sender": [53, 443, 587, 5432, 8001],
        "crm-integration": [53, 443, 5432, 8001],
    }
    assert ports == expected[chart]


def test_bff_ingress_is_an_https_alb_checking_health() -> None:
    ingress = only(manifests("web-bff", "production"), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/healthz"
    assert ingress["spec"]["tls"] == [{"hosts": ["signup.xyz.example"]}]
    assert config_of(manifests("web-bff", "production"))["PUBLIC_URL"].startswith("https://")


def test_registration_migrates_in_a_pre_install_and_pre_upgrade_job_not_in_its_pods() -> None:
    docs = manifests("registration", "defaults")
    job = only(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == container_of(docs)["image"]
    assert container["args"] == ["migrate"]
    assert {"name": "APP_ENV", "value": "production"} in container["env"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Job pods must not match the Service's selector.
    selector = only(docs, "Service")["spec"]["selector"]
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()
    assert config_of(docs)["RUN_MIGRATIONS_ON_STARTUP"] == "false"


def test_authz_reads_its_signing_keys_from_a_mounted_secret() -> None:
    docs = manifests("authz", "production")
    keys_dir = config_of(docs)["JWT_KEYS_DIR"]
    mount = next(m for m in container_of(docs)["volumeMounts"] if m["mountPath"] == keys_dir)
    assert mount["readOnly"] is True
    volumes = only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "authz-jwt-keys"


@pytest.mark.parametrize("chart", ["registration", "email-sender", "crm-integration"])
def test_services_using_aws_get_an_irsa_role_in_production(chart: str) -> None:
    account = only(manifests(chart, "production"), "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    assert account["automountServiceAccountToken"] is False


def test_crm_rate_limit_is_one_global_setting_whatever_the_replica_count() -> None:
    for value_set in ("defaults", "production", "keda-on"):
        config = config_of(manifests("crm-integration", value_set))
        assert config["CRM_RATE_LIMIT_PER_SECOND"] == "90"
        assert config["SQS_VISIBILITY_TIMEOUT_SECONDS"] == "90"


@pytest.mark.parametrize("chart", CHARTS)
def test_a_chart_without_an_existing_secret_is_refused(chart: str) -> None:
    result = all_helm_runs()[(chart, "no-existing-secret")]
    assert result.returncode != 0
    assert "existingSecret" in result.stderr
