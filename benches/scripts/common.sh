# Sourced by the benchmark scripts, which set NAME (their name in messages) first. It moves to the
# repo root, makes a scratch directory ($work; removed at exit when REMOVE_WORK=1), stops every
# process whose PID is in $pids at exit, and builds the release ferrite and loadgen ($loadgen).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
work=$(mktemp -d -t "ferrite-$NAME.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${REMOVE_WORK:-0} == 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# need "PACKAGES" TOOL...: stops with the apt-get line that installs what is missing.
need() {
    local packages=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$NAME: $tool missing: apt-get install $packages" >&2; exit 1; }
    done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do [[ -n $(ss -Hltn "sport = :$1") ]] && return 0; sleep 0.05; done
    echo "$NAME: nothing listening on 127.0.0.1:$1" >&2; exit 1
}

cargo build -q --release --bin ferrite --bin loadgen
loadgen=target/release/loadgen
