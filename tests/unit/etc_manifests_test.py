#!/usr/bin/env python3
"""Checks the deployment files under etc/ against the code they deploy.

- every YAML and JSON file under etc/ parses;
- Kubernetes: the ConfigMap's pgmarina.toml passes `pgmarina --check-config` (with the Secret's
  userlist.txt as its auth_file), the Deployment's and the Service's ports are its listen and
  metrics ports, the probes ask /readyz and /healthz on the metrics port, the grace period
  outlasts preStop plus shutdown_timeout, and the selectors find the pods;
- every metric the Grafana dashboard and the alert rules use is one pgmarina exports. The list
  comes from the code: the metric_families helper (proxy::Metrics and the exporter mapping with
  every family sampled), and a real pgmarina started on free ports and scraped, whose families
  must all be in the helper's list;
- promtool check rules passes on the alert rules, when promtool is installed;
- the systemd unit passes `systemd-analyze verify`, when it is installed, and fits the code
  (no Type=notify without sd_notify, a stop timeout above shutdown_timeout);
- the Dockerfile exposes the ports of the configuration it ships, which passes --check-config.

Prints one line per check ("ok - ..." or "FAIL - ...") and exits 1 if any failed.
Usage: etc_manifests_test.py SOURCE_ROOT PGMARINA METRIC_FAMILIES
"""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import yaml

failures = []


def check(name, condition, detail=""):
    if condition:
        print(f"ok - {name}")
    else:
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
        failures.append(name)
    return condition


def seconds(value):
    """A pgmarina duration (a number of seconds, or a string with a unit) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|min|h|d)\s*", value)
    if not match:
        raise ValueError(f"not a duration: {value!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * scale


def port_of(address):
    """The port of "host:port" / "[v6]:port"."""
    return int(address.rsplit(":", 1)[1])


def check_config(pgmarina, path):
    run = subprocess.run([pgmarina, "--check-config", "-c", str(path)], capture_output=True,
                         text=True, timeout=30)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def parse_all(etc):
    documents = {}
    for path in sorted(etc.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            try:
                documents[path] = [d for d in yaml.safe_load_all(path.read_text()) if d]
                check(f"{path.relative_to(etc.parent)} parses as YAML", True)
            except yaml.YAMLError as error:
                check(f"{path.relative_to(etc.parent)} parses as YAML", False, str(error))
        elif path.suffix == ".json":
            try:
                documents[path] = [json.loads(path.read_text())]
                check(f"{path.relative_to(etc.parent)} parses as JSON", True)
            except json.JSONDecodeError as error:
                check(f"{path.relative_to(etc.parent)} parses as JSON", False, str(error))
    return documents


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes(etc, documents, pgmarina, workdir):
    k8s = etc / "kubernetes"
    objects = [d for path, docs in documents.items() if path.parent == k8s for d in docs]
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
    kinds = ("ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget",
             "ServiceMonitor")
    if not all([check(f"kubernetes: one {kind}", len(by_kind.get(kind, [])) == 1,
                      f"found {len(by_kind.get(kind, []))}") for kind in kinds]):
        return
    configmap, secret = by_kind["ConfigMap"][0], by_kind["Secret"][0]
    deployment, service = by_kind["Deployment"][0], by_kind["Service"][0]
    pdb, monitor = by_kind["PodDisruptionBudget"][0], by_kind["ServiceMonitor"][0]

    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    manifests = sorted(p.name for p in k8s.glob("*.yaml") if p.name != "kustomization.yaml")
    check("kubernetes: kustomization.yaml lists every manifest",
          sorted(kustomization["resources"]) == manifests, f"{kustomization['resources']}")

    toml_text = configmap["data"]["pgmarina.toml"]
    config = tomllib.loads(toml_text)
    settings = config.get("pgmarina", {})
    listen_ports = {port_of(a) for a in settings.get("listen", ["127.0.0.1:6432"])}
    metrics_port = port_of(config.get("metrics", {}).get("listen", "0.0.0.0:9127"))
    shutdown_timeout = seconds(settings.get("shutdown_timeout", "30s"))
    check("kubernetes: pgmarina.toml listens on 6432, metrics on 9127",
          listen_ports == {6432} and metrics_port == 9127, f"{listen_ports}, {metrics_port}")

    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    containers = spec["containers"]
    check("kubernetes: one container", len(containers) == 1)
    container = containers[0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check("kubernetes: container ports are pgmarina.toml's",
          set(ports.values()) == listen_ports | {metrics_port}
          and ports.get("metrics") == metrics_port, f"{ports}")

    def resolve(port):
        return ports.get(port) if isinstance(port, str) else port

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(f"kubernetes: {probe} asks {path} on the metrics port",
              get.get("path") == path and resolve(get.get("port")) == metrics_port, f"{get}")

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    config_volume = next((n for n, v in volumes.items()
                          if v.get("configMap", {}).get("name") == configmap["metadata"]["name"]),
                         None)
    secret_volume = next((n for n, v in volumes.items()
                          if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]),
                         None)
    args = container.get("args", [])
    config_path = args[args.index("-c") + 1] if "-c" in args else None
    check("kubernetes: -c names pgmarina.toml in the ConfigMap's mount",
          config_volume in mounts and "subPath" not in mounts[config_volume]
          and config_path == mounts[config_volume]["mountPath"] + "/pgmarina.toml",
          f"-c {config_path}")
    auth_file = settings.get("auth_file", "")
    check("kubernetes: auth_file is userlist.txt in the Secret's mount",
          secret_volume in mounts and "userlist.txt" in secret.get("stringData", {})
          and auth_file == mounts[secret_volume]["mountPath"] + "/userlist.txt",
          f"auth_file = {auth_file!r}")

    # The ConfigMap's file, with the Secret's userlist where auth_file points, as startup reads it.
    (workdir / "userlist.txt").write_text(secret["stringData"]["userlist.txt"])
    local = workdir / "configmap-pgmarina.toml"
    local.write_text(toml_text.replace(json.dumps(auth_file), json.dumps(str(workdir / "userlist.txt"))))
    ok, output = check_config(pgmarina, local)
    check("kubernetes: the ConfigMap's pgmarina.toml passes --check-config", ok, output)

    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    command = pre_stop.get("exec", {}).get("command", [])
    sleep = float(command[-1]) if command[:1] == ["sleep"] else 0.0
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check("kubernetes: terminationGracePeriodSeconds > preStop sleep + shutdown_timeout",
          grace > sleep + shutdown_timeout,
          f"{grace} <= {sleep} + {shutdown_timeout}")
    check("kubernetes: 2 replicas with pod anti-affinity",
          deployment["spec"].get("replicas") == 2
          and "podAntiAffinity" in spec.get("affinity", {}))
    resources = container.get("resources", {})
    check("kubernetes: requests 100m/128Mi, limits 500m/256Mi",
          resources.get("requests") == {"cpu": "100m", "memory": "128Mi"}
          and resources.get("limits") == {"cpu": "500m", "memory": "256Mi"}, f"{resources}")

    pod_labels = pod["metadata"]["labels"]
    check("kubernetes: the Deployment's selector matches its pods",
          labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels))
    check("kubernetes: the Service selects the pods", labels_match(service["spec"]["selector"],
                                                                   pod_labels))
    check("kubernetes: the PodDisruptionBudget selects the pods",
          labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels))
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    check("kubernetes: Service ports are the container's, same numbers",
          all(resolve(p.get("targetPort", p["port"])) == p["port"]
              for p in service_ports.values())
          and {p["port"] for p in service_ports.values()} == listen_ports | {metrics_port},
          f"{service_ports}")
    endpoints = monitor["spec"]["endpoints"]
    check("kubernetes: the ServiceMonitor scrapes /metrics on the Service's metrics port",
          labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
          and all(e.get("path", "/metrics") == "/metrics"
                  and resolve(service_ports.get(e["port"], {}).get("targetPort")) == metrics_port
                  for e in endpoints), f"{endpoints}")


def families_of(exposition):
    """{name: type} from the "# TYPE" lines of a /metrics body."""
    out = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out[name] = kind
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape_running_pgmarina(pgmarina, workdir):
    """Starts pgmarina with one database on free ports; its /metrics, /healthz, /readyz."""
    port, metrics = free_port(), free_port()
    config = workdir / "scrape.toml"
    config.write_text(f"""[pgmarina]
listen = ["127.0.0.1:{port}"]
unix_socket_dir = ""
workers = 1
auth_type = "trust"
admin_users = ["alice"]

[metrics]
listen = "127.0.0.1:{metrics}"

[databases.app]
hosts = ["127.0.0.1:1"]

[users.alice]
password = "unused under trust"
""")
    process = subprocess.Popen([pgmarina, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = http_get(f"http://127.0.0.1:{metrics}/healthz")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pgmarina did not serve /healthz: " +
                                       (process.stderr.read() if process.poll() is not None
                                        else "timeout"))
                time.sleep(0.1)
        ready = http_get(f"http://127.0.0.1:{metrics}/readyz")
        # A client on the admin console (no server needed) makes a pool and a client row, so
        # the pool and client families are scraped too.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            params = b"user\0alice\0database\0pgbouncer\0\0"
            client.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            reply = b""
            while b"Z\0\0\0\5" not in reply:  # ReadyForQuery
                chunk = client.recv(4096)
                if not chunk:
                    raise RuntimeError(f"pgmarina closed the client: {reply!r}")
                reply += chunk
            body = http_get(f"http://127.0.0.1:{metrics}/metrics")
        return health, ready, body
    finally:
        process.send_signal(signal.SIGQUIT)  # at once: no client to wait for
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


METRIC = re.compile(r"\b((?:pgbouncer|pgmarina)_[a-zA-Z0-9_]+)")


def strings_under(node, keys):
    """Every string value of a key in `keys`, anywhere in a JSON/YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from strings_under(value, keys)
    elif isinstance(node, list):
        for item in node:
            yield from strings_under(item, keys)


def check_metric_names(etc, documents, pgmarina, helper, workdir):
    helper_run = subprocess.run([helper], capture_output=True, text=True, timeout=30)
    exported = families_of(helper_run.stdout)
    check("metric_families prints pgmarina's families", helper_run.returncode == 0 and
          "pgbouncer_pools_server_active_connections" in exported and
          "pgmarina_failovers_total" in exported, helper_run.stderr)

    (health, _), (ready, _), (status, body) = scrape_running_pgmarina(pgmarina, workdir)
    check("a running pgmarina answers /healthz 200 on its metrics port", health == 200)
    check("a running pgmarina answers /readyz (200 or 503)", ready in (200, 503), str(ready))
    live = families_of(body)
    check("a running pgmarina serves /metrics", status == 200 and "pgbouncer_up" in live,
          body[:200])
    missing = sorted(set(live) - set(exported))
    check("every family the running binary exports is in metric_families' list", not missing,
          f"add {missing} to tests/unit/proxy/metric_families_main.cpp")
    kinds = {name: exported[name] == live[name] for name in live if name in exported}
    check("the running binary's metric types are metric_families'", all(kinds.values()),
          f"{[n for n, same in kinds.items() if not same]}")

    def known(name):
        if name in exported:
            return True
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and exported.get(base) == "histogram":
                return True
        return False

    sources = {
        etc / "grafana" / "pgmarina-dashboard.json": ("expr", "query", "definition"),
        etc / "prometheus" / "pgmarina-alerts.yaml": ("expr",),
    }
    for path, keys in sources.items():
        used = set()
        for document in documents.get(path, []):
            for text in strings_under(document, keys):
                used.update(METRIC.findall(text))
        unknown = sorted(n for n in used if not known(n))
        check(f"{path.relative_to(etc.parent)}: {len(used)} metric names, all exported",
              used and not unknown, f"not exported: {unknown}")


def check_promtool(etc):
    promtool = shutil.which("promtool")
    if promtool is None:
        print("ok - promtool check rules # skipped: promtool is not installed")
        return
    run = subprocess.run([promtool, "check", "rules", str(etc / "prometheus/pgmarina-alerts.yaml")],
                         capture_output=True, text=True, timeout=60)
    check("promtool check rules etc/prometheus/pgmarina-alerts.yaml", run.returncode == 0,
          run.stdout + run.stderr)


def check_systemd(root, etc, pgmarina, workdir):
    unit_path = etc / "systemd" / "pgmarina.service"
    unit = unit_path.read_text()

    def values(key):
        return [line.split("=", 1)[1].strip() for line in unit.splitlines()
                if line.startswith(key + "=")]

    sd_notify = any("sd_notify" in p.read_text() for p in (root / "proxy").glob("*.cpp"))
    check("systemd: Type=notify only if pgmarina calls sd_notify",
          values("Type") and (values("Type")[0] != "notify" or sd_notify), f"{values('Type')}")
    check("systemd: ExecReload sends SIGHUP", "/bin/kill -HUP $MAINPID" in values("ExecReload"))
    defaults = tomllib.loads((etc / "pgmarina.toml").read_text())
    shutdown = seconds(defaults["pgmarina"]["shutdown_timeout"])
    stop = values("TimeoutStopSec")
    check("systemd: TimeoutStopSec above the default shutdown_timeout",
          stop and seconds(stop[0]) > shutdown, f"{stop} vs {shutdown}")
    check("systemd: KillSignal=SIGTERM", values("KillSignal") == ["SIGTERM"])
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                       ("CapabilityBoundingSet", ""),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                       ("User", "pgmarina")):
        check(f"systemd: {key}={value}", values(key) == [value], f"{values(key)}")
    check("systemd: LimitNOFILE set", bool(values("LimitNOFILE")))

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("ok - systemd-analyze verify # skipped: systemd-analyze is not installed")
        return
    # verify wants the executables to exist: point the copy at the built binary.
    copy = workdir / "pgmarina.service"
    copy.write_text(unit.replace("/usr/local/bin/pgmarina", pgmarina))
    run = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    # Outside a booted systemd (containers, CI) verify also complains about the host's own
    # units; only lines about ours count.
    ours = [line for line in (run.stdout + run.stderr).splitlines() if "pgmarina.service" in line]
    check("systemd-analyze verify etc/systemd/pgmarina.service", not ours, "\n".join(ours))


def check_docker(etc, pgmarina):
    dockerfile = (etc / "docker" / "Dockerfile").read_text()
    exposed = {int(p) for line in dockerfile.splitlines() if line.startswith("EXPOSE ")
               for p in line.split()[1:]}
    shipped = etc / "docker" / "pgmarina.toml"
    config = tomllib.loads(shipped.read_text())
    listen = {port_of(a) for a in config["pgmarina"]["listen"]}
    metrics = port_of(config["metrics"]["listen"])
    check("docker: EXPOSE is the shipped pgmarina.toml's ports", exposed == listen | {metrics},
          f"EXPOSE {exposed}, config {listen} + {metrics}")
    check("docker: COPY etc/docker/pgmarina.toml", "COPY etc/docker/pgmarina.toml " in dockerfile)
    ok, output = check_config(pgmarina, shipped)
    check("docker: the shipped pgmarina.toml passes --check-config", ok, output)
    check("docker: the runtime stage runs as a non-root user",
          re.search(r"^USER (?!0\b|root\b)\S+", dockerfile, re.M) is not None)


def main():
    root = pathlib.Path(sys.argv[1])
    pgmarina, helper = (str(pathlib.Path(arg).resolve()) for arg in sys.argv[2:4])
    etc = root / "etc"
    documents = parse_all(etc)
    with tempfile.TemporaryDirectory(prefix="pgmarina-etc-test-") as temp:
        workdir = pathlib.Path(temp)
        check_kubernetes(etc, documents, pgmarina, workdir)
        check_metric_names(etc, documents, pgmarina, helper, workdir)
        check_promtool(etc)
        check_systemd(root, etc, pgmarina, workdir)
        check_docker(etc, pgmarina)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
