"""The Helm chart (helm/slamon), rendered by a real helm: `helm lint --strict`, `helm template` under
several value sets, every manifest validated offline against Kubernetes' own schemas
(kubernetes-validate), and what the manifests say: the shards' --shard I/N, the Secret the store's
URL comes from, the config slamon.yaml gets (checked by `slamon check` itself), the ICMP privilege,
the ServiceMonitors and the PrometheusRule, whose rules are byte-identical copies of alerts/.

helm comes from scripts/get-helm (.cache/helm/bin/helm), or $SLAMON_HELM, or PATH. Without one the
helm tests skip, unless SLAMON_REQUIRE_HELM is set (CI sets it): then they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "slamon"
EXAMPLE = ROOT / "examples" / "july-2025"
URL = "postgresql+psycopg://slamon@postgresql.db:5432/slamon"
# the kinds that come from CRDs: kubernetes-validate has no schema for them
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# the chart's minimum (Chart.yaml kubeVersion, for the pod-index label) and the newest schemas
KUBE_VERSIONS = ("1.28.0", "1.37.0")


_DROP = object()  # _with(key=_DROP) removes the key


def _base_values() -> dict[str, Any]:
    """The least a release needs: the store and the example district's files."""
    return {
        "database": {"url": URL},
        "config": {
            "inventory": (EXAMPLE / "inventory.yaml").read_text(encoding="utf-8"),
            "contracts": {
                "yj-2025.yaml": (EXAMPLE / "contracts" / "yj-2025.yaml").read_text(encoding="utf-8")
            },
            "exclusions": (EXAMPLE / "exclusions.yaml").read_text(encoding="utf-8"),
        },
    }


def _with(**changes: Any) -> dict[str, Any]:
    """The base values with some keys changed: changes["a__b"] sets values["a"]["b"]."""
    values = _base_values()
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        if value is _DROP:
            node.pop(last, None)
        else:
            node[last] = value
    return values


VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": _base_values(),
    "three-shards-existing-secret": _with(
        shards__replicas=3,
        database={"existingSecret": "pg-slamon", "urlKey": "DATABASE_URL", "passwordKey": "PGPASS"},
    ),
    "monitoring-off": _with(
        monitoring={"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": False}}
    ),
    "net-raw": _with(icmp__mode="netRaw"),
    "existing-configmap": {
        "database": {"url": URL, "password": "s3cret"},
        "config": {"existingConfigMap": "fleet"},
    },
    "everything-set": _with(
        shards__replicas=2,
        shards__persistence={"enabled": False},
        shards__nodeSelector={"kubernetes.io/os": "linux"},
        shards__persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"},
        api__replicas=2,
        api__service={"type": "NodePort", "annotations": {"a": "b"}},
        api__podAnnotations={"note": "from the tests"},
        verbosity=2,
        database__password="s3cret",
        env=[
            {
                "name": "SLAMON_SNMP_COMMUNITY",
                "valueFrom": {"secretKeyRef": {"name": "snmp", "key": "community"}},
            }
        ],
        envFrom=[{"secretRef": {"name": "more"}}],
        extraVolumes=[{"name": "keys", "secret": {"secretName": "snmp-keys"}}],
        extraVolumeMounts=[{"name": "keys", "mountPath": "/etc/slamon-keys", "readOnly": True}],
        imagePullSecrets=[{"name": "registry"}],
        monitoring__serviceMonitor={"enabled": True, "labels": {"release": "prometheus"}, "interval": "1m"},
        monitoring__prometheusRule={"enabled": True, "recordingRules": False},
    ),
}


@dataclass
class Helm:
    exe: str
    env: dict[str, str]
    work: Path

    def run(self, *args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self.exe, *args]
        if values is not None:
            file = self.work / f"values-{len(list(self.work.iterdir()))}.yaml"
            file.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
            cmd += ["-f", str(file)]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def template(self, values: dict[str, Any], release: str = "rel") -> list[dict[str, Any]]:
        done = self.run("template", release, str(CHART), "--namespace", "mon", values=values)
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    candidates = [
        os.environ.get("SLAMON_HELM"),
        str(ROOT / ".cache" / "helm" / "bin" / "helm"),
        shutil.which("helm"),
    ]
    exe = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if exe is None:
        if os.environ.get("SLAMON_REQUIRE_HELM"):
            pytest.fail("SLAMON_REQUIRE_HELM is set but there is no helm: run scripts/get-helm")
        pytest.skip("no helm binary: scripts/get-helm puts one in .cache/helm (or set SLAMON_HELM)")
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return Helm(exe, env, tmp_path_factory.mktemp("helm-values"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: helm.template(values) for name, values in VALUE_SETS.items()}


def _one(docs: list[dict[str, Any]], kind: str, name_end: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_end)]
    assert len(found) == 1, f"{len(found)} {kind} named *{name_end}"
    return found[0]


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _rule_files() -> list[Path]:
    """The rule files the PrometheusRule holds, in the chart's order: alerts/ (sorted), then the
    recording rules."""
    return [*sorted((ROOT / "alerts").glob("*.rules.yml")), ROOT / "exporters" / "recording.rules.yml"]


# --- the copies of the rules -------------------------------------------------------------------


def test_rule_files_in_the_chart_are_copies_of_alerts() -> None:
    """CI fails when alerts/ (or the recording rules) change without the chart's copy."""
    chart_alerts = CHART / "files" / "alerts"
    assert sorted(p.name for p in chart_alerts.iterdir()) == sorted(
        p.name for p in (ROOT / "alerts").glob("*.rules.yml")
    ), "helm/slamon/files/alerts/ must hold exactly alerts/*.rules.yml"
    pairs = [(src, chart_alerts / src.name) for src in (ROOT / "alerts").glob("*.rules.yml")]
    pairs.append(
        (ROOT / "exporters" / "recording.rules.yml", CHART / "files" / "exporters" / "recording.rules.yml")
    )
    for src, copied in pairs:
        assert copied.read_bytes() == src.read_bytes(), (
            f"{copied.relative_to(ROOT)} differs from {src.relative_to(ROOT)}: cp {src.relative_to(ROOT)} "
            f"{copied.relative_to(ROOT)}"
        )


# --- helm lint, schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict(helm: Helm, name: str) -> None:
    done = helm.run("lint", "--strict", str(CHART), values=VALUE_SETS[name])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_match_the_kubernetes_schemas(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = rendered[name]
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
                pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']} on Kubernetes {version}: {e}")


def test_names_fit_kubernetes_limits(helm: Helm) -> None:
    """The longest release name helm takes (53) still gives names Kubernetes takes: the StatefulSet's
    controller-revision-hash label is its name and 11 more characters, 63 at most."""
    docs = helm.template(_base_values(), release="r" * 53)
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63
    assert len(_one(docs, "StatefulSet")["metadata"]["name"]) <= 52


def test_clusters_without_the_pod_index_label_are_refused(helm: Helm) -> None:
    """The shards' ordinal comes from the label apps.kubernetes.io/pod-index: Kubernetes 1.28+."""
    done = helm.run("template", "rel", str(CHART), "--kube-version", "1.27.9", values=_base_values())
    assert done.returncode != 0
    assert "incompatible with Kubernetes v1.27.9" in done.stderr, done.stderr
    done = helm.run("template", "rel", str(CHART), "--kube-version", "1.28.0", values=_base_values())
    assert done.returncode == 0, done.stderr


# --- what the defaults render ------------------------------------------------------------------


def test_defaults_render_every_part(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert _kinds(rendered["defaults"]) == [
        "ConfigMap",
        "Deployment",
        "PrometheusRule",
        "Secret",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "ServiceMonitor",
        "StatefulSet",
    ]


def test_shards_run_with_their_ordinal(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, replicas in (("defaults", 1), ("three-shards-existing-secret", 3), ("everything-set", 2)):
        sts = _one(rendered[name], "StatefulSet", "-shard")
        assert sts["spec"]["replicas"] == replicas
        container = _container(sts)
        args = container["args"]
        assert args[-3:] == ["run", "--shard", f"$(SLAMON_SHARD_INDEX)/{replicas}"]
        # the variable is defined before anything that could use it, from the pod's ordinal label
        assert container["env"][0] == {
            "name": "SLAMON_SHARD_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
        }
        assert sts["spec"]["podManagementPolicy"] == "Parallel"
        headless = _one(rendered[name], "Service", "-shard")
        assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
        assert headless["spec"]["clusterIP"] == "None"
    assert _container(_one(rendered["everything-set"], "StatefulSet"))["args"][0] == "-vv"


def test_each_shard_keeps_its_journal_on_its_own_volume(rendered: dict[str, list[dict[str, Any]]]) -> None:
    sts = _one(rendered["three-shards-existing-secret"], "StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "journal"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    mounts = {m["name"]: m["mountPath"] for m in _container(sts)["volumeMounts"]}
    assert mounts["journal"] == "/var/lib/slamon"
    config = yaml.safe_load(_one(rendered["defaults"], "ConfigMap")["data"]["slamon.yaml"])
    assert config["journal"].startswith(mounts["journal"] + "/")
    # without persistence: an emptyDir of the same name
    sts = _one(rendered["everything-set"], "StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    assert {"name": "journal", "emptyDir": {}} in sts["spec"]["template"]["spec"]["volumes"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }


def test_api_serves_the_whole_fleet(rendered: dict[str, list[dict[str, Any]]]) -> None:
    deployment = _one(rendered["defaults"], "Deployment", "-api")
    assert deployment["spec"]["replicas"] == 1
    container = _container(deployment)
    assert container["args"] == ["serve"]
    service = _one(rendered["defaults"], "Service", "-api")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 9108, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert _one(rendered["everything-set"], "Deployment")["spec"]["replicas"] == 2


def test_probes_and_hardening(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for kind in ("StatefulSet", "Deployment"):
        workload = _one(rendered["defaults"], kind)
        pod = workload["spec"]["template"]["spec"]
        container = _container(workload)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["ports"] == [{"name": "http", "containerPort": 9108, "protocol": "TCP"}]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/etc/slamon", "/tmp", "/var/lib/slamon"} <= mounts  # the writable places
        assert _env(container)["SLAMON_CONFIG"] == "/etc/slamon/slamon.yaml"


# --- ICMP ---------------------------------------------------------------------------------------


def test_icmp_by_sysctl_by_default(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = _one(rendered["defaults"], "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}
    ]
    # the group the process runs as is inside the range
    assert 0 <= pod["securityContext"]["runAsGroup"] <= 2147483647
    # the API does not ping
    api_pod = _one(rendered["defaults"], "Deployment")["spec"]["template"]["spec"]
    assert "sysctls" not in api_pod["securityContext"]


def test_icmp_by_net_raw(rendered: dict[str, list[dict[str, Any]]]) -> None:
    sts = _one(rendered["net-raw"], "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert "sysctls" not in pod["securityContext"]
    # a non-root process loses capabilities added to the container: NET_RAW needs uid 0
    assert pod["securityContext"]["runAsUser"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is False
    assert _container(sts)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]},
    }
    api = _one(rendered["net-raw"], "Deployment")
    assert api["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "add" not in _container(api)["securityContext"]["capabilities"]


# --- the store's Secret ---------------------------------------------------------------------------


def test_database_from_the_charts_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    secret = _one(rendered["defaults"], "Secret")
    assert base64.b64decode(secret["data"]["url"]).decode() == URL
    assert "password" not in secret["data"]
    for kind in ("StatefulSet", "Deployment"):
        env = _env(_container(_one(rendered["defaults"], kind)))
        assert env["SLAMON_DATABASE"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "url"}}
        assert "PGPASSWORD" not in env
    # with a password: PGPASSWORD from the same Secret
    secret = _one(rendered["everything-set"], "Secret")
    assert base64.b64decode(secret["data"]["password"]).decode() == "s3cret"
    env = _env(_container(_one(rendered["everything-set"], "StatefulSet")))
    assert env["PGPASSWORD"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "password"}}
    assert env["SLAMON_SNMP_COMMUNITY"] == {"secretKeyRef": {"name": "snmp", "key": "community"}}


def test_database_from_an_existing_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["three-shards-existing-secret"]
    assert "Secret" not in _kinds(docs)
    for kind in ("StatefulSet", "Deployment"):
        workload = _one(docs, kind)
        env = _env(_container(workload))
        assert env["SLAMON_DATABASE"] == {"secretKeyRef": {"name": "pg-slamon", "key": "DATABASE_URL"}}
        assert env["PGPASSWORD"] == {"secretKeyRef": {"name": "pg-slamon", "key": "PGPASS"}}
        # no checksum of a Secret the chart does not own
        assert "checksum/database" not in workload["spec"]["template"]["metadata"]["annotations"]


# --- config -------------------------------------------------------------------------------------


def test_rendered_config_passes_slamon_check(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The ConfigMap as the pods see it (/etc/slamon), checked by slamon's own loaders."""
    data = _one(rendered["defaults"], "ConfigMap")["data"]
    assert set(data) == {"slamon.yaml", "inventory.yaml", "contract-yj-2025.yaml", "exclusions.yaml"}
    config = yaml.safe_load(data["slamon.yaml"])
    assert config["listen"] == "0.0.0.0:9108"
    assert config["retention"] == "90d"
    assert "database" not in config  # SLAMON_DATABASE gives it
    for key, text in data.items():
        (tmp_path / key).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
    done = subprocess.run(
        [sys.executable, "-m", "slamon.cli", "-c", str(tmp_path / "slamon.yaml"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 contract, 5 sites, 27 devices" in done.stdout


def test_config_change_rolls_the_pods(helm: Helm, rendered: dict[str, list[dict[str, Any]]]) -> None:
    def checksums(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [
            _one(docs, kind)["spec"]["template"]["metadata"]["annotations"]
            for kind in ("StatefulSet", "Deployment")
        ]

    before = checksums(rendered["defaults"])
    assert all(a["checksum/config"] and a["checksum/database"] for a in before)
    assert checksums(helm.template(_base_values())) == before  # the same values, the same pods
    changed = _base_values()
    changed["config"]["exclusions"] += "\n# a comment is a change too\n"
    after = checksums(helm.template(changed))
    assert all(a["checksum/config"] != b["checksum/config"] for a, b in zip(after, before, strict=True))
    assert all(a["checksum/database"] == b["checksum/database"] for a, b in zip(after, before, strict=True))
    changed = _with(database__url=URL + "2")
    after = checksums(helm.template(changed))
    assert all(a["checksum/database"] != b["checksum/database"] for a, b in zip(after, before, strict=True))


def test_existing_configmap(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["existing-configmap"]
    assert "ConfigMap" not in _kinds(docs)
    for kind in ("StatefulSet", "Deployment"):
        pod = _one(docs, kind)["spec"]["template"]["spec"]
        assert {"name": "config", "configMap": {"name": "fleet"}} in pod["volumes"]
        assert "checksum/config" not in _one(docs, kind)["spec"]["template"]["metadata"]["annotations"]


def test_csv_inventory_and_yml_contracts(helm: Helm, tmp_path: Path) -> None:
    values = _with(config__inventoryFormat="csv", config__inventory="id,kind\n", config__exclusions=_DROP)
    values["config"]["contracts"] = {"a.yml": "id: A\n", "b.yaml": "id: B\n"}
    data = _one(helm.template(values), "ConfigMap")["data"]
    assert set(data) == {"slamon.yaml", "inventory.csv", "contract-a.yml", "contract-b.yaml"}
    config = yaml.safe_load(data["slamon.yaml"])
    assert config["inventory"] == "inventory.csv"
    assert config["contracts"] == ["contract-*.yaml", "contract-*.yml"]  # each glob matches a file
    assert "exclusions" not in config


REFUSED = {
    "no database": (_with(database=_DROP), "set database.url"),
    "password in the URL": (_with(database__url="postgresql+psycopg://slamon:pw@db/slamon"), "database.url"),
    "both Secrets": (
        _with(database__existingSecret="pg"),
        "with database.existingSecret put them in that Secret",
    ),
    "no inventory": (_with(config__inventory=_DROP), "set config.inventory"),
    "no contract": (_with(config__contracts={}), "config.contracts needs at least one contract"),
    "listen set": (_with(config__settings={"listen": "0.0.0.0:1"}), "config.settings.listen: the chart sets"),
    "journal set": (_with(config__settings={"journal": "/j"}), "config.settings.journal: the chart sets"),
    "no shard": (_with(shards__replicas=0), "shards.replicas"),
    "misspelt key": (_with(shards__replica=2), "replica"),
    "icmp mode": (_with(icmp__mode="raw"), "icmp.mode"),
    "bad group range": (_with(icmp__pingGroupRange="all"), "icmp.pingGroupRange"),
    "bad contract name": (_with(config__contracts={"yj 2025": "id: X\n"}), "config.contracts"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_values_that_cannot_work_are_refused(helm: Helm, case: str) -> None:
    values, message = REFUSED[case]
    done = helm.run("template", "rel", str(CHART), values=values)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


# --- monitoring ---------------------------------------------------------------------------------


def test_service_monitors_scrape_both_parts_as_job_slamon(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["defaults"]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for monitor, part in zip(
        sorted(monitors, key=lambda m: m["metadata"]["name"]), ("api", "shard"), strict=True
    ):
        service = _one(docs, "Service", f"-{part}")
        # the job label comes from the Service's label, which is "slamon": the rules select job="slamon"
        assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "slamon"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["mon"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == service["spec"]["ports"][0]["name"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["interval"] == "30s"
    assert 'up{job="slamon"}' in (ROOT / "alerts" / "slamon.rules.yml").read_text(encoding="utf-8")
    # a degraded shard stays a target
    assert _one(docs, "Service", "-shard")["spec"]["publishNotReadyAddresses"] is True
    labelled = [d for d in rendered["everything-set"] if d["kind"] == "ServiceMonitor"]
    assert all(m["metadata"]["labels"]["release"] == "prometheus" for m in labelled)
    assert all(m["spec"]["endpoints"][0]["interval"] == "1m" for m in labelled)


def test_prometheus_rule_holds_the_rules_of_alerts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    expected = [g for f in _rule_files() for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]]
    rule = _one(rendered["defaults"], "PrometheusRule")
    assert rule["spec"]["groups"] == expected
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names))
    # without the recording rules: only alerts/
    rule = _one(rendered["everything-set"], "PrometheusRule")
    alerts_only = [
        g for f in _rule_files()[:-1] for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
    ]
    assert rule["spec"]["groups"] == alerts_only


def test_promtool_accepts_the_rendered_rules(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool (Debian's prometheus)")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(_one(rendered["defaults"], "PrometheusRule")["spec"]), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_monitoring_off(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = _kinds(rendered["monitoring-off"])
    assert "ServiceMonitor" not in kinds
    assert "PrometheusRule" not in kinds
    assert "StatefulSet" in kinds


# --- the image and the chart agree --------------------------------------------------------------


def test_chart_and_image_agree_with_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["appVersion"] == project["version"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["slamon"]' in dockerfile
    assert f"EXPOSE {values['port']}" in dockerfile
    uid = values["podSecurityContext"]["runAsUser"]
    assert f"USER {uid}:{values['podSecurityContext']['runAsGroup']}" in dockerfile
    json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_no_secret_in_plain_sight(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The password reaches only the Secret: never a ConfigMap, an env value or an annotation."""
    for doc in rendered["everything-set"]:
        if doc["kind"] == "Secret":
            continue
        text = json.dumps(doc)
        assert "s3cret" not in text, doc["kind"]
        assert not any(isinstance(v, str) and URL in v for v in _walk(doc)), doc["kind"]
