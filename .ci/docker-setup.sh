#!/usr/bin/env bash
# Make a Docker engine available for the Docker-backed tests, idempotently.
#
#   1. installs docker.io, runsc (gVisor) and mmdebstrap when any is missing (apt-get update first);
#   2. registers runsc as a dockerd runtime in /etc/docker/daemon.json (merging, never clobbering);
#   3. starts dockerd in the background when `docker info` does not answer, and waits for it;
#   4. fails loudly, with the tail of the daemon log, when the engine never comes up.
#
# Run as root (CI) or through sudo. Safe to run again: every step checks before it acts.
# Environment:
#   DOCKER_SETUP_TIMEOUT  seconds to wait for the engine (default 60)
#   DOCKERD_LOG           where a dockerd started here logs (default /tmp/dockerd.log)
set -euo pipefail

timeout_s="${DOCKER_SETUP_TIMEOUT:-60}"
dockerd_log="${DOCKERD_LOG:-/tmp/dockerd.log}"
daemon_json=/etc/docker/daemon.json
started=$(date +%s)

say() { printf 'docker-setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- 1. packages -------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v socat >/dev/null 2>&1 || missing+=(socat) # the remote-engine test's TLS front
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 \
        || die "missing ${missing[*]} and no apt-get to install them; install them by hand"
    say "installing ${missing[*]}"
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "docker.io, runsc, mmdebstrap and socat already installed"
fi

# --- 2. runsc as a dockerd runtime -------------------------------------------------------------
# Debian's runsc package does not register itself with dockerd. Merge a `runtimes.runsc` entry
# into daemon.json, keeping whatever else is configured there.
runsc_path="$(command -v runsc)"
config_changed=0
sudo_if_needed mkdir -p /etc/docker
if [ -s "$daemon_json" ]; then
    if jq -e '.runtimes.runsc' "$daemon_json" >/dev/null 2>&1; then
        say "runsc already registered in $daemon_json"
    else
        command -v jq >/dev/null 2>&1 || die "$daemon_json exists and jq is missing to merge it; add runsc by hand"
        tmp="$(mktemp)"
        jq --arg p "$runsc_path" '.runtimes.runsc = {path: $p}' "$daemon_json" >"$tmp" \
            || die "$daemon_json is not valid JSON; fix it and run again"
        sudo_if_needed install -m 0644 "$tmp" "$daemon_json"
        rm -f "$tmp"
        config_changed=1
        say "registered runsc ($runsc_path) in $daemon_json"
    fi
else
    printf '{\n  "runtimes": {\n    "runsc": { "path": "%s" }\n  }\n}\n' "$runsc_path" \
        | sudo_if_needed tee "$daemon_json" >/dev/null
    config_changed=1
    say "wrote $daemon_json registering runsc ($runsc_path)"
fi

# --- 3. the daemon -----------------------------------------------------------------------------
engine_up() { docker info >/dev/null 2>&1; }

if engine_up; then
    if [ "$config_changed" -eq 1 ]; then
        # `runtimes` is a live-reloadable daemon option: SIGHUP makes a running dockerd re-read it.
        if [ -r /var/run/docker.pid ]; then
            sudo_if_needed kill -HUP "$(cat /var/run/docker.pid)" \
                && say "asked the running dockerd to reload $daemon_json"
        else
            say "warning: dockerd is running but its pid file is missing; restart it to pick up runsc"
        fi
    fi
    say "engine already running"
else
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl list-unit-files docker.service >/dev/null 2>&1; then
        say "starting docker.service"
        sudo_if_needed systemctl start docker.service || say "systemctl start failed; trying dockerd directly"
    fi
    if ! engine_up; then
        say "starting dockerd in the background (log: $dockerd_log)"
        # setsid: the daemon must outlive this script and the CI step's process group.
        sudo_if_needed setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
    fi
    deadline=$(( $(date +%s) + timeout_s ))
    until engine_up; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "dockerd did not answer within ${timeout_s}s; last lines of $dockerd_log:"
            tail -n 30 "$dockerd_log" >&2 2>/dev/null || true
            die "no Docker engine; see the log above"
        fi
        sleep 1
    done
fi

# --- 4. report ---------------------------------------------------------------------------------
server="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo unknown)"
runtimes="$(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' 2>/dev/null || echo unknown)"
say "engine ready: $server; runtimes: $runtimes; took $(( $(date +%s) - started ))s"
