#!/usr/bin/env python3
"""Holds the files of deploy/ to the binary they deploy (deploy/ci/check.sh
runs it; so does ctest as deploy_check).

- Every YAML and JSON file parses; docker-compose.yml validates against
  the Compose specification's JSON schema (compose-spec.json).
- Every popgate_* metric an alert, alert test, dashboard panel or HPA rule
  uses is exported, and every fixed label value it matches on (outcome,
  limit, kind, class, ...) exists. The reference is a real scrape of
  --popgate (when given a database), else exported-metrics.txt (a note says
  when the file is stale; --update-metrics rewrites it).
- Every POPGATE_* variable the files set is a real setting (--print-keys),
  every `popgate-admin` command the runbook shows exists.
- Ports, health paths, signals and durations agree between the popgate
  configurations (compose, Kubernetes ConfigMap, image default), the
  Dockerfile, HAProxy, the compose file, Prometheus and the Kubernetes
  manifests; `popgate --check-config` accepts each configuration.
- The runtime image installs exactly the packages of the libraries the
  binaries link (readelf NEEDED, resolved by ldd and dpkg -S).

Exit 0 when everything holds; otherwise each problem on its own line, exit 1.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

import yaml

DEPLOY = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
METRICS_FILE = os.path.join(DEPLOY, "ci", "exported-metrics.txt")
# Labels whose values depend on the deployment, not on the binary.
DYNAMIC_LABELS = {"instance", "job", "namespace", "pod", "cluster", "le", "quantile", "shard", "tenant",
                  "file", "listener", "version", "commit", "compiler", "build_type"}
# After the drain deadline a shard gets this long to finish (shard.h
# stop_grace) before it is stopped regardless.
STOP_GRACE_S = 15
HEALTH_PATHS = {"/healthz/live", "/healthz/ready"}

problems = []


def problem(text):
    problems.append(text)


def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def rel(path):
    return os.path.relpath(path, os.path.dirname(DEPLOY))


# -- metrics -------------------------------------------------------------------

def parse_scrape(text):
    """{family: {"type": t, "labels": {label: set(values)}}} from the text format."""
    families = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = {"type": m.group(2), "labels": {}}
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        if not m:
            continue
        name = m.group(1)
        family = name if name in families else re.sub(r"_(bucket|sum|count)$", "", name)
        if family not in families:
            continue
        for label, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""):
            families[family]["labels"].setdefault(label, set()).add(value)
    return families


def format_metrics(families):
    lines = ["# Metric families popgate exports (# TYPE), with the values of their fixed",
             "# labels, from a scrape of a fresh process. The deploy checks hold alerts,",
             "# dashboards and the HPA to this list; deploy/ci/check.sh --update-metrics",
             "# rewrites it from the binary. Labels whose values depend on the deployment",
             "# (" + ", ".join(sorted(DYNAMIC_LABELS)) + ") are listed without values."]
    for name in sorted(families):
        f = families[name]
        parts = [name, f["type"]]
        for label in sorted(f["labels"]):
            values = "*" if label in DYNAMIC_LABELS else ",".join(sorted(f["labels"][label]))
            parts.append(f"{label}={values}")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def read_metrics_file():
    families = {}
    with open(METRICS_FILE) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, kind, *labels = line.split()
            families[name] = {"type": kind, "labels": {}}
            for item in labels:
                label, values = item.split("=", 1)
                families[name]["labels"][label] = set() if values == "*" else set(values.split(","))
    return families


def scrape_binary(popgate, dsn, certs):
    """A real scrape of a fresh popgate on loopback."""
    work = tempfile.mkdtemp(prefix="popgate-deploy-check-")
    ready = os.path.join(work, "ready")
    args = [popgate, "--dsn", dsn, "--listen", "127.0.0.1:0", "--ready-file", ready, "--shards", "1",
            "--set", "metrics.address=127.0.0.1:0", "--set", "database.startup_wait_ms=10000"]
    if certs:
        args += ["--set", f"tls.certificates={certs}/pop-ecdsa.crt:{certs}/pop-ecdsa.key"]
    log = open(os.path.join(work, "popgate.log"), "w+")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"popgate did not start:\n{log.read()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.1)
        with open(ready) as f:
            status = next(l.split(" ", 1)[1] for l in f.read().splitlines() if l.startswith("metrics "))
        with urllib.request.urlopen(f"http://{status}/metrics", timeout=10) as r:
            return r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def families_of_name(name, families):
    if name in families:
        return name
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if base in families and families[base]["type"] in ("histogram", "summary"):
        return base
    return None


SELECTOR = re.compile(r"\b(popgate_[a-z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def check_expr(expr, families, where):
    """Every popgate_* name in a PromQL expression exists, and so does each
    fixed label value it matches on."""
    for name, selector in SELECTOR.findall(expr):
        family = families_of_name(name, families)
        if family is None:
            problem(f"{where}: metric {name} is not exported by popgate")
            continue
        labels = families[family]["labels"]
        for label, op, value in MATCHER.findall(selector or ""):
            if label in DYNAMIC_LABELS or (label == "le" and name.endswith("_bucket")):
                continue
            if label not in labels:
                problem(f"{where}: {name} has no label {label!r} (it has {sorted(labels) or 'none'})")
                continue
            if op in ("=~", "!~"):
                if not re.fullmatch(r"[a-zA-Z0-9_./-]+(\|[a-zA-Z0-9_./-]+)*", value):
                    continue  # a real regular expression: nothing fixed to compare
                wanted = value.split("|")
            else:
                wanted = [value]
            for v in wanted:
                if v not in labels[label]:
                    problem(f"{where}: {name}{{{label}{op}\"{value}\"}}: {v!r} is not a value of {label} "
                            f"({', '.join(sorted(labels[label]))})")


def check_metric_users(families):
    rules = load_yaml_all(os.path.join(DEPLOY, "prometheus", "alerts.yml"))[0]
    for group in rules["groups"]:
        for rule in group["rules"]:
            check_expr(rule["expr"], families, f"alerts.yml {rule.get('alert', rule.get('record'))}")
            runbook = rule.get("annotations", {}).get("runbook", "")
            anchor = runbook.split("#", 1)[1] if "#" in runbook else ""
            if anchor and anchor not in runbook_anchors():
                problem(f"alerts.yml {rule['alert']}: runbook anchor #{anchor} is not a heading of deploy/README.md")
    tests = load_yaml_all(os.path.join(DEPLOY, "prometheus", "alerts_test.yml"))[0]
    for test in tests["tests"]:
        for series in test.get("input_series", []):
            check_expr(series["series"], families, f"alerts_test.yml {test['name']!r}")
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "popgate.json")) as f:
        dashboard = json.load(f)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            check_expr(target["expr"], families, f"dashboard panel {panel['title']!r}")
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            check_expr(var["definition"], families, f"dashboard variable {var['name']}")
    adapter = load_yaml_all(os.path.join(DEPLOY, "k8s", "prometheus-adapter-rules.yaml"))[0]
    names = set()
    for rule in adapter["rules"]["custom"]:
        check_expr(rule["seriesQuery"], families, "prometheus-adapter-rules.yaml")
        names.add(rule["name"]["as"])
    hpa = k8s_object("HorizontalPodAutoscaler")
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods" and metric["pods"]["metric"]["name"] not in names:
            problem(f"hpa.yaml: metric {metric['pods']['metric']['name']} is not served by the adapter rule ({names})")


_anchors = None


def runbook_anchors():
    """GitHub-style anchors of deploy/README.md's headings."""
    global _anchors
    if _anchors is None:
        _anchors = set()
        path = os.path.join(DEPLOY, "README.md")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    m = re.match(r"#+ (.*)", line)
                    if m:
                        text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
                        _anchors.add(text.replace(" ", "-"))
    return _anchors


# -- configuration and topology -------------------------------------------------

_k8s = None


def k8s_objects():
    global _k8s
    if _k8s is None:
        _k8s = []
        directory = os.path.join(DEPLOY, "k8s")
        for name in sorted(os.listdir(directory)):
            if name.endswith(".yaml") and name != "prometheus-adapter-rules.yaml":
                for doc in load_yaml_all(os.path.join(directory, name)):
                    doc["_file"] = name
                    _k8s.append(doc)
    return _k8s


def k8s_object(kind, name=None):
    found = [o for o in k8s_objects() if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise SystemExit(f"k8s: expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def popgate_config_ports(config):
    """{listener name: port} and the status port of a popgate TOML config."""
    listeners = {l["name"]: port_of(l["address"]) for l in config.get("listeners", [])}
    return listeners, port_of(config["metrics"]["address"])


def check_config_with_binary(popgate, path, label):
    if not popgate:
        return
    env = dict(os.environ, POPGATE_DATABASE_DSN=os.environ.get("POPGATE_DATABASE_DSN", "host=db.invalid"))
    run = subprocess.run([popgate, "--config", path, "--check-config"], capture_output=True, text=True, env=env,
                         timeout=60)
    if run.returncode != 0:
        problem(f"{label}: popgate --check-config refuses it: {(run.stdout + run.stderr).strip()}")


# POPGATE_* names in deploy/ that are not configuration keys: read by popgate
# itself outside the key table, by the image's scripts, or by compose.
OTHER_VARIABLES = {"POPGATE_CONFIG", "POPGATE_LISTENERS", "POPGATE_HEALTHCHECK_ADDRESS",
                   "POPGATE_DB_PASSWORD", "POPGATE_GRAFANA_PASSWORD"}


def check_environment_names(popgate):
    """Every POPGATE_<SECTION>_<KEY> the deploy files set or mention is a
    key of this binary (popgate --print-keys)."""
    if not popgate:
        return
    keys = subprocess.run([popgate, "--print-keys"], capture_output=True, text=True, timeout=60).stdout
    known = set(re.findall(r"env (POPGATE_[A-Z0-9_]+)", keys)) | OTHER_VARIABLES
    if len(known) < 20:
        problem("popgate --print-keys did not list the environment variables")
        return
    for root, _, files in os.walk(DEPLOY):
        for name in files:
            if name.endswith((".json", ".LICENSE")) or name == "exported-metrics.txt" or root.endswith("/ci"):
                continue
            path = os.path.join(root, name)
            with open(path, errors="replace") as f:
                for variable in sorted(set(re.findall(r"\bPOPGATE_[A-Z0-9_]*[A-Z0-9]\b", f.read()))):
                    if variable not in known and not variable.endswith("_"):
                        problem(f"{rel(path)}: {variable} is not a setting of this popgate (--print-keys)")


def subcommands(admin, words):
    """Subcommand names listed by `popgate-admin WORDS --help`, or None."""
    run = subprocess.run([admin, *words, "--help"], capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        return None
    listed = run.stdout.split("Subcommands:", 1)
    return set(re.findall(r"^  ([a-z-]+) ", listed[1], flags=re.MULTILINE)) if len(listed) == 2 else set()


def check_admin_commands(admin):
    """Every `popgate-admin SUB [SUB]` in deploy/README.md's code exists."""
    if not admin:
        return
    with open(os.path.join(DEPLOY, "README.md")) as f:
        text = f.read()
    code = "\n".join(re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text))
    top = subcommands(admin, [])
    for first, second in sorted(set(re.findall(r"popgate-admin ([a-z]+)(?: ([a-z]+))?", code))):
        if first not in (top or set()):
            problem(f"deploy/README.md: popgate-admin {first}: no such command")
            continue
        below = subcommands(admin, [first])
        if second and below and second not in below:
            problem(f"deploy/README.md: popgate-admin {first} {second}: no such command ({sorted(below)})")


def check_compose(popgate):
    with open(os.path.join(DEPLOY, "compose", "popgate.toml"), "rb") as f:
        config = tomllib.load(f)
    check_config_with_binary(popgate, os.path.join(DEPLOY, "compose", "popgate.toml"), "compose/popgate.toml")
    listeners, status = popgate_config_ports(config)
    drain_s = config.get("server", {}).get("drain_timeout_ms", 30000) / 1000
    compose = load_yaml_all(os.path.join(DEPLOY, "docker-compose.yml"))[0]
    services = compose["services"]
    for name, service in services.items():
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            if not os.path.isfile(os.path.join(DEPLOY, env_file)):
                problem(f"docker-compose.yml: {name}: env_file {env_file} does not exist")
    if "postgres/malloc.env" not in str(services["postgres"].get("env_file")):
        problem("docker-compose.yml: postgres does not load postgres/malloc.env (deploy/README.md, PostgreSQL settings)")
    gateways = [n for n, s in services.items() if s.get("image") == "popgate:dev" and n != "migrate"]
    if len(gateways) < 2:
        problem(f"docker-compose.yml: expected two popgate services, found {gateways}")
    for name in gateways:
        s = services[name]
        exposed = {int(p) for p in s.get("expose", [])}
        if exposed != set(listeners.values()) | {status}:
            problem(f"docker-compose.yml {name}: expose {sorted(exposed)} != the listener and status ports "
                    f"{sorted(set(listeners.values()) | {status})} of compose/popgate.toml")
        grace = s.get("stop_grace_period", "10s")
        grace_s = int(grace.rstrip("s"))
        if grace_s < drain_s + STOP_GRACE_S:
            problem(f"docker-compose.yml {name}: stop_grace_period {grace} < drain {drain_s:.0f} s + "
                    f"{STOP_GRACE_S} s for the last replies")
        if "./compose/popgate.toml:/etc/popgate/popgate.toml:ro" not in s.get("volumes", []):
            problem(f"docker-compose.yml {name}: does not mount compose/popgate.toml over the image's config")
        if s.get("environment", {}).get("POPGATE_SERVER_INSTANCE_NAME") != name:
            problem(f"docker-compose.yml {name}: POPGATE_SERVER_INSTANCE_NAME is not the service name")
    haproxy_ip = services["haproxy"]["networks"]["popgate"]["ipv4_address"]
    for l in config["listeners"]:
        if l.get("proxy_protocol") and l.get("trusted_proxies") != haproxy_ip:
            problem(f"compose/popgate.toml {l['name']}: trusted_proxies {l.get('trusted_proxies')!r} is not "
                    f"HAProxy's address {haproxy_ip}")
    migrate = services["migrate"]
    if migrate.get("entrypoint") != ["/usr/local/bin/popgate-admin"] or migrate.get("command") != ["migrate"]:
        problem("docker-compose.yml migrate: must run popgate-admin migrate")

    # HAProxy: servers are the compose gateways on PROXY listeners, checked on the status port.
    with open(os.path.join(DEPLOY, "haproxy", "haproxy.cfg")) as f:
        cfg = f.read()
    proxied = {port for name, port in listeners.items()
               if any(l["name"] == name and l.get("proxy_protocol") for l in config["listeners"])}
    servers = re.findall(r"^\s*server (\S+) (\S+):(\d+) (.*)$", cfg, flags=re.MULTILINE)
    if not servers:
        problem("haproxy.cfg: no server lines")
    for name, host, port, rest in servers:
        if host not in gateways or name != host:
            problem(f"haproxy.cfg: server {name} {host} is not a compose gateway ({gateways})")
        if int(port) not in proxied:
            problem(f"haproxy.cfg: server {name} port {port} is not a PROXY listener of compose/popgate.toml "
                    f"({sorted(proxied)})")
        if "send-proxy-v2" not in rest.split():
            problem(f"haproxy.cfg: server {name}:{port} does not send-proxy-v2")
        m = re.search(r"\bcheck port (\d+)", rest)
        if not m or int(m.group(1)) != status:
            problem(f"haproxy.cfg: server {name}:{port} is not checked on the status port {status}")
    for path in re.findall(r"http-check send meth GET uri (\S+)", cfg):
        if path != "/healthz/ready":
            problem(f"haproxy.cfg: health check of {path}, not /healthz/ready")
    published = {int(p.split(":")[-1]) for p in services["haproxy"].get("ports", []) if isinstance(p, str)}
    binds = {int(p) for p in re.findall(r"^\s*bind :(\d+)$", cfg, flags=re.MULTILINE)}
    if published != binds:
        problem(f"docker-compose.yml haproxy: published ports {sorted(published)} != haproxy.cfg binds {sorted(binds)}")

    # Prometheus scrapes the gateways' status ports and HAProxy's exporter.
    prom = load_yaml_all(os.path.join(DEPLOY, "prometheus", "prometheus.yml"))[0]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    if "popgate" not in jobs:
        problem("prometheus.yml: the alert rules need a scrape job named popgate")
    else:
        targets = {t for c in jobs["popgate"]["static_configs"] for t in c["targets"]}
        if targets != {f"{g}:{status}" for g in gateways}:
            problem(f"prometheus.yml: popgate targets {sorted(targets)} are not the gateways' status ports")
        if jobs["popgate"].get("metrics_path", "/metrics") != "/metrics":
            problem("prometheus.yml: popgate serves /metrics")
    if "haproxy" in jobs:
        targets = {t for c in jobs["haproxy"]["static_configs"] for t in c["targets"]}
        if not re.search(r"use-service prometheus-exporter if \{ path /metrics \}", cfg) or \
                any(port_of(t) not in binds for t in targets):
            problem(f"prometheus.yml: haproxy targets {sorted(targets)} do not reach its exporter")
    if prom.get("rule_files") != ["alerts.yml"]:
        problem("prometheus.yml: rule_files must load alerts.yml")


def check_dockerfile(popgate):
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    with open(os.path.join(DEPLOY, "docker", "popgate.toml"), "rb") as f:
        image_config = tomllib.load(f)
    check_config_with_binary(popgate, os.path.join(DEPLOY, "docker", "popgate.toml"), "docker/popgate.toml")
    check_config_with_binary(popgate, os.path.join(DEPLOY, "popgate.example.toml"), "popgate.example.toml")
    exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", text, flags=re.MULTILINE).group(1).split()}
    wanted = set()
    for path in ("compose/popgate.toml", "docker/popgate.toml"):
        with open(os.path.join(DEPLOY, path), "rb") as f:
            listeners, status = popgate_config_ports(tomllib.load(f))
        wanted |= set(listeners.values()) | {status}
    if not wanted <= exposed:
        problem(f"Dockerfile: EXPOSE {sorted(exposed)} misses {sorted(wanted - exposed)}")
    if port_of(image_config["metrics"]["address"]) != 9110 or "/healthz/live" not in text:
        problem("Dockerfile: the HEALTHCHECK must call /healthz/live on the image's status port 9110")
    if "USER 10001" not in text:
        problem("Dockerfile: the runtime stage must run as the non-root user 10001")
    # What it copies from the build context exists and is not .dockerignored.
    root = os.path.dirname(DEPLOY)
    with open(os.path.join(DEPLOY, "Dockerfile.dockerignore")) as f:
        ignored = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, flags=re.MULTILINE):
        if source == ".":
            continue
        if not os.path.exists(os.path.join(root, source)):
            problem(f"Dockerfile: COPY {source}: no such file in the checkout")
        if any(source == i or source.startswith(i.rstrip("/") + "/") for i in ignored):
            problem(f"Dockerfile: COPY {source} is excluded by Dockerfile.dockerignore")
    # The build stage installs the "# Build" and "# Libraries" packages.
    run = subprocess.run(["sh", os.path.join(DEPLOY, "docker", "build-deps.sh"),
                          os.path.join(root, "ops", "packages.txt")], capture_output=True, text=True)
    build_deps = run.stdout.split()
    for package in ("cmake", "ninja-build", "libpq-dev", "liburing-dev", "libssl-dev"):
        if package not in build_deps:
            problem(f"docker/build-deps.sh: {package} is not among the image's build packages ({run.stderr.strip()})")


def runtime_packages(dockerfile_text):
    stage = dockerfile_text.split("AS runtime", 1)[1]
    block = re.search(r"apt-get install -y --no-install-recommends \\\n(.*?)\n \&\&", stage, flags=re.S).group(1)
    return {w for w in block.replace("\\", " ").split() if not w.startswith("-")}


def needed_packages(binaries):
    """Debian packages of the shared libraries the binaries link directly."""
    packages = set()
    for binary in binaries:
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]",
                            subprocess.run(["readelf", "-d", binary], capture_output=True, text=True).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", binary], capture_output=True,
                                                                      text=True).stdout, flags=re.MULTILINE))
        for lib in needed:
            if re.match(r"lib(a|ub|t|l)san\.so", lib):
                continue  # a sanitizer build's runtime (ops/dev.sh asan/tsan stages), not the image's
            path = paths.get(lib)
            if path is None:
                problem(f"{binary}: ldd cannot resolve {lib}")
                continue
            real = os.path.realpath(path)
            owner = None
            for candidate in (path, real, real.replace("/usr/lib/", "/lib/"), path.replace("/lib/", "/usr/lib/", 1)):
                run = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if run.returncode == 0:
                    owner = run.stdout.split(":")[0]
                    break
            if owner is None:
                problem(f"{binary}: no Debian package owns {path}")
            else:
                packages.add(owner)
    return packages


def check_image_libraries(binaries):
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        listed = runtime_packages(f.read())
    needed = needed_packages(binaries)
    listed_libs = listed - {"ca-certificates"}
    if needed - listed_libs:
        problem(f"Dockerfile: the runtime stage lacks {sorted(needed - listed_libs)} (the binaries link them)")
    if listed_libs - needed:
        problem(f"Dockerfile: the runtime stage installs {sorted(listed_libs - needed)}, which no binary links")


# Current GA API versions of the kinds in k8s/.
API_VERSIONS = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1",
                "Job": "batch/v1", "PodDisruptionBudget": "policy/v1",
                "HorizontalPodAutoscaler": "autoscaling/v2", "NetworkPolicy": "networking.k8s.io/v1",
                "PodMonitor": "monitoring.coreos.com/v1", "Kustomization": "kustomize.config.k8s.io/v1beta1"}


def check_k8s(popgate):
    for o in k8s_objects():
        if API_VERSIONS.get(o.get("kind")) != o.get("apiVersion"):
            problem(f"{o['_file']}: {o.get('kind')} with apiVersion {o.get('apiVersion')} "
                    f"(expected {API_VERSIONS.get(o.get('kind'), 'a known kind')})")
        if o.get("kind") != "Kustomization" and not o.get("metadata", {}).get("name"):
            problem(f"{o['_file']}: {o.get('kind')} without metadata.name")
    cm = k8s_object("ConfigMap", "popgate-config")
    config = tomllib.loads(cm["data"]["popgate.toml"])
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(cm["data"]["popgate.toml"])
        f.flush()
        check_config_with_binary(popgate, f.name, "k8s configmap.yaml popgate.toml")
    listeners, status = popgate_config_ports(config)
    drain_s = config.get("server", {}).get("drain_timeout_ms", 30000) / 1000

    deploy = k8s_object("Deployment", "popgate")
    pod = deploy["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if deploy["spec"]["selector"]["matchLabels"].items() - labels.items():
        problem("deployment.yaml: the selector does not match the pod labels")
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "popgate")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for name, port in listeners.items():
        if ports.get(name) != port:
            problem(f"deployment.yaml: container port {name} is {ports.get(name)}, the ConfigMap listens on {port}")
    if ports.get("status") != status:
        problem(f"deployment.yaml: container port status is {ports.get('status')}, metrics.address is {status}")
    if set(ports) - set(listeners) - {"status"}:
        problem(f"deployment.yaml: container ports {sorted(set(ports) - set(listeners) - {'status'})} serve nothing")
    for probe, path in (("startupProbe", "/healthz/live"), ("livenessProbe", "/healthz/live"),
                        ("readinessProbe", "/healthz/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("status", status):
            problem(f"deployment.yaml: {probe} must GET {path} on the status port (has {get})")
    env = {e["name"]: e for e in container.get("env", [])}
    config_path = env.get("POPGATE_CONFIG", {}).get("value", "")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mount = mounts.get(os.path.dirname(config_path))
    if mount is None or volumes[mount].get("configMap", {}).get("name") != "popgate-config" or \
            os.path.basename(config_path) not in cm["data"]:
        problem(f"deployment.yaml: POPGATE_CONFIG {config_path!r} is not the ConfigMap's popgate.toml")
    tls_files = config.get("tls", {}).get("certificates", "").replace(":", " ").split()
    for path in tls_files:
        m = mounts.get(os.path.dirname(path))
        if m is None or "secret" not in volumes[m]:
            problem(f"deployment.yaml: {path} (tls.certificates) is not on a Secret volume")
    if "PGPASSWORD" not in env or "secretKeyRef" not in env["PGPASSWORD"].get("valueFrom", {}):
        problem("deployment.yaml: PGPASSWORD must come from a Secret")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep_s = 0
    if "exec" in pre_stop:
        sleep_s = int(pre_stop["exec"]["command"][-1])
    elif "sleep" in pre_stop:
        sleep_s = int(pre_stop["sleep"]["seconds"])
    else:
        problem("deployment.yaml: no preStop hook")
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < sleep_s + drain_s + STOP_GRACE_S:
        problem(f"deployment.yaml: terminationGracePeriodSeconds {grace} < preStop {sleep_s} s + drain "
                f"{drain_s:.0f} s + {STOP_GRACE_S} s for the last replies")
    if not container.get("resources", {}).get("requests") or not container["resources"].get("limits"):
        problem("deployment.yaml: resource requests and limits are required")
    cpu = str(container["resources"]["limits"].get("cpu", ""))
    shards = config.get("server", {}).get("shards", 0)
    if not cpu or shards != int(float(cpu)):
        problem(f"deployment.yaml: server.shards {config.get('server', {}).get('shards')} != limits.cpu {cpu}")
    if "podAntiAffinity" not in pod["spec"].get("affinity", {}):
        problem("deployment.yaml: no pod anti-affinity")

    def selects(selector, what):
        if selector.items() - labels.items():
            problem(f"{what}: selector {selector} does not select the gateway pods {labels}")
    for svc in (o for o in k8s_objects() if o.get("kind") == "Service"):
        selects(svc["spec"]["selector"], f"{svc['_file']} {svc['metadata']['name']}")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                problem(f"{svc['_file']}: targetPort {p['targetPort']} is not a container port ({sorted(ports)})")
            elif p["targetPort"] in listeners and svc["spec"].get("type") == "LoadBalancer":
                listener = next(l for l in config["listeners"] if l["name"] == p["targetPort"])
                if not listener.get("proxy_protocol"):
                    problem(f"{svc['_file']}: the load balancer sends PROXY v2 but {p['targetPort']} does not expect it")
        ann = svc["metadata"].get("annotations", {})
        if svc["spec"].get("type") == "LoadBalancer":
            if ann.get("service.beta.kubernetes.io/aws-load-balancer-healthcheck-path") != "/healthz/ready" or \
                    int(ann.get("service.beta.kubernetes.io/aws-load-balancer-healthcheck-port", 0)) != status:
                problem(f"{svc['_file']}: the NLB health check must be /healthz/ready on {status}")
    selects(k8s_object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], "pdb.yaml")
    hpa = k8s_object("HorizontalPodAutoscaler")
    if hpa["spec"]["scaleTargetRef"]["name"] != deploy["metadata"]["name"]:
        problem("hpa.yaml: scaleTargetRef is not the Deployment")
    netpol = k8s_object("NetworkPolicy")
    if netpol["spec"]["podSelector"]["matchLabels"].items() - labels.items():
        problem("networkpolicy.yaml: podSelector does not select the gateway pods")
    allowed = {p["port"] for rule in netpol["spec"]["ingress"] for p in rule.get("ports", [])}
    if allowed != set(ports.values()):
        problem(f"networkpolicy.yaml: ingress ports {sorted(allowed)} != container ports {sorted(ports.values())}")
    job = k8s_object("Job", "popgate-migrate")
    jc = job["spec"]["template"]["spec"]["containers"][0]
    if jc["command"] != ["/usr/local/bin/popgate-admin", "migrate"]:
        problem("job-migrate.yaml: must run popgate-admin migrate")
    job_dsn = next((e["value"] for e in jc["env"] if e["name"] == "POPGATE_DATABASE_DSN"), None)
    if job_dsn != config["database"]["dsn"]:
        problem("job-migrate.yaml: POPGATE_DATABASE_DSN differs from database.dsn in the ConfigMap")
    if jc["image"].split(":")[0] != container["image"].split(":")[0]:
        problem("job-migrate.yaml: not the gateway's image")
    pm = k8s_object("PodMonitor")
    selects(pm["spec"]["selector"]["matchLabels"], "podmonitor.yaml")
    for ep in pm["spec"]["podMetricsEndpoints"]:
        if ep["port"] not in ports or ports[ep["port"]] != status or ep.get("path") != "/metrics":
            problem("podmonitor.yaml: must scrape /metrics on the status port")
        if {"targetLabel": "job", "replacement": "popgate"} not in ep.get("relabelings", []):
            problem("podmonitor.yaml: the alert rules need job=\"popgate\"")
    kustomization = load_yaml_all(os.path.join(DEPLOY, "k8s", "kustomization.yaml"))[0]
    for res in kustomization["resources"]:
        if not os.path.exists(os.path.join(DEPLOY, "k8s", res)):
            problem(f"kustomization.yaml: {res} does not exist")


def check_compose_schema():
    compose = load_yaml_all(os.path.join(DEPLOY, "docker-compose.yml"))[0]
    with open(os.path.join(DEPLOY, "ci", "compose-spec.json")) as f:
        schema = json.load(f)
    try:
        import jsonschema
    except ImportError:
        problem("python3-jsonschema is not installed: cannot validate docker-compose.yml (ops/packages.txt lists it)")
        return
    # The schema says draft 2019-09 (as "http://...#", which older
    # jsonschema releases do not recognise by that spelling).
    validator_class = getattr(jsonschema, "Draft201909Validator", None) or jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path)
        problem(f"docker-compose.yml: {where}: {error.message}")


def check_parses():
    for root, _, files in os.walk(DEPLOY):
        for name in files:
            path = os.path.join(root, name)
            try:
                if name.endswith((".yml", ".yaml")):
                    load_yaml_all(path)
                elif name.endswith(".json"):
                    with open(path) as f:
                        json.load(f)
                elif name.endswith(".toml"):
                    with open(path, "rb") as f:
                        tomllib.load(f)
            except Exception as e:  # noqa: BLE001 - any parse error is the finding
                problem(f"{rel(path)}: does not parse: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popgate", help="the popgate binary (--check-config, a real scrape, linked libraries)")
    parser.add_argument("--admin", help="the popgate-admin binary (linked libraries)")
    parser.add_argument("--dsn", help="a database with the schema, for the real scrape")
    parser.add_argument("--certs", help="directory with pop-ecdsa.crt/.key, so the scrape has the TLS families")
    parser.add_argument("--update-metrics", action="store_true", help="rewrite exported-metrics.txt from the scrape")
    args = parser.parse_args()

    check_parses()
    check_compose_schema()
    scraped = None
    if args.popgate and args.dsn:
        scraped = parse_scrape(scrape_binary(args.popgate, args.dsn, args.certs))
        if args.update_metrics:
            with open(METRICS_FILE, "w") as f:
                f.write(format_metrics(scraped))
            print(f"wrote {rel(METRICS_FILE)}: {len(scraped)} families")
    elif args.update_metrics:
        parser.error("--update-metrics needs --popgate and --dsn")
    families = read_metrics_file()
    if scraped is not None:
        # The scrape is the reference. The file only stands in when there is
        # no binary, so a stale file is reported but fails nothing: what the
        # deploy files use is checked against the scrape below.
        if format_metrics(scraped) != format_metrics(families):
            print(f"deploy check: note: {rel(METRICS_FILE)} differs from what the binary exports; "
                  "deploy/ci/check.sh --update-metrics refreshes it")
        families = scraped
    check_metric_users(families)
    check_environment_names(args.popgate)
    check_admin_commands(args.admin)
    check_compose(args.popgate)
    check_dockerfile(args.popgate)
    check_k8s(args.popgate)
    if args.popgate and args.admin:  # the image ships both
        check_image_libraries([args.popgate, args.admin])

    for p in problems:
        print(f"deploy check: {p}")
    if problems:
        print(f"deploy check: {len(problems)} problem(s)")
        return 1
    print(f"deploy check: ok ({len(families)} metric families{', scraped from the binary' if scraped else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
