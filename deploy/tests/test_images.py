"""The Dockerfiles and docker-compose.yml follow the image policy.

No Docker engine (nor the compose plugin) runs in CI, so these read the files: the build must
be locked and without dev dependencies, multi-stage, on exactly pinned bases; the image must
run as a non-root user with an exec-form entrypoint that starts the service; compose must wait
for healthy dependencies, never default a secret, and create the queues the services expect.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alta_crm_integration.settings import Settings as CrmSettings
from alta_email_sender.settings import Settings as EmailSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["web_bff", "authz", "registration", "email_sender", "crm_integration"]
IMAGES = {
    **{f"services/{name}/Dockerfile": f"alta_{name}" for name in SERVICES},
    "tools/devstack/Dockerfile": "alta_devstack.crm_standin",
}
# repository:tag with a version number in the tag (no `latest`, no bare major like `16`).
PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+\.\d+(\.\d+)?[\w.-]*(@sha256:[0-9a-f]{64})?$")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_every_service_has_a_dockerfile() -> None:
    services = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
    assert services == sorted(SERVICES)
    for name in services:
        assert (ROOT / "services" / name / "Dockerfile").is_file(), name


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_build_is_multi_stage_locked_without_dev_dependencies_on_pinned_bases(
    dockerfile: str,
) -> None:
    steps = instructions(dockerfile)
    bases = [arguments.split()[0] for keyword, arguments in steps if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: build tools stay out of the image"
    stage_names = {
        arguments.split()[-1] for k, arguments in steps if k == "FROM" and " AS " in arguments
    }
    for base in bases:
        assert base in stage_names or PINNED_IMAGE.match(base), f"{base} is not pinned"
    syncs = [
        arguments for keyword, arguments in steps if keyword == "RUN" and "uv sync" in arguments
    ]
    assert len(syncs) == 1
    assert {"--locked", "--no-dev", "--no-editable"} <= set(syncs[0].split())


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_image_runs_as_non_root_with_exec_form_entrypoint(dockerfile: str) -> None:
    stage = final_stage(dockerfile)
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users, "the final stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid, so that runAsNonRoot can verify it"
    assert int(uid) > 0
    entrypoints = [arguments for keyword, arguments in stage if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", IMAGES[dockerfile]]
    assert not [keyword for keyword, _ in stage if keyword == "CMD"]
    environment = " ".join(arguments for keyword, arguments in stage if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in environment, "read-only root filesystem"
    assert "PYTHONUNBUFFERED=1" in environment


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".tools", ".data"} <= ignored


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_services_wait_for_healthy_dependencies() -> None:
    services = compose()["services"]
    built = {name: spec for name, spec in services.items() if "build" in spec}
    assert {spec["build"]["dockerfile"] for spec in built.values()} == set(IMAGES)
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services
            wanted = condition["condition"]
            assert wanted in ("service_healthy", "service_started"), name
            if wanted == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            else:
                # Only the SQS server may merely be started: its native image has no shell
                # for a healthcheck, and the services ride out SQS being down.
                assert dependency == "elasticmq", f"{name} must wait for {dependency} healthy"
    assert services["registration"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["web-bff"]["depends_on"]["registration"] == {"condition": "service_healthy"}


def test_compose_requires_secrets_and_pins_every_image() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "CSRF_SECRET", "CRM_API_TOKEN"):
        uses = re.findall(r"\$\{" + secret + r"(:?[?-]?)", text)
        assert uses, secret
        assert set(uses) == {":?"}, f"{secret} must be required (${{{secret}:?...}})"
    for name, spec in compose()["services"].items():
        if "image" in spec:
            assert PINNED_IMAGE.match(spec["image"]), f"{name}: {spec['image']}"


def test_compose_queues_match_what_the_consumers_expect() -> None:
    config = (ROOT / "deploy" / "compose" / "elasticmq.conf").read_text()
    expected = {
        "email": (EmailSettings().sqs_visibility_timeout_seconds, "email-dlq"),
        "crm": (CrmSettings().sqs_visibility_timeout_seconds, "crm-dlq"),
    }
    for queue, (visibility, dead_letters) in expected.items():
        block = re.search(r"\n  " + queue + r" \{(.*?)\n  \}", config, re.DOTALL)
        assert block, queue
        assert f"defaultVisibilityTimeout = {visibility} seconds" in block.group(1)
        assert f'name = "{dead_letters}"' in block.group(1)
        assert "maxReceiveCount = 10" in block.group(1)
        assert f'"{dead_letters}" {{}}' in config
