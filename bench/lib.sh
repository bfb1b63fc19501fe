# Sourced by the benchmark scripts (bench/run-*, bench/images/photos.sh): installs what
# they need on a fresh Debian machine, each piece only when it is missing. Cargo (the
# Rust toolchain) is assumed, as for scripts/test; PostgreSQL comes from
# scripts/postgres.sh. Everything here reports on stderr, so a script's stdout stays
# its own (photos.sh prints the photo set's directory there).

BENCH_CACHE="${RUN_JOB_CACHE:-$HOME/.cache/run-job}"
# The Python of the image benchmark's helpers (bench/images/photos.sh, bench/images/large.py).
BENCH_VENV="$BENCH_CACHE/bench-venv"
PILLOW_VERSION=13.0.0

bench_log() { echo "$*" >&2; }

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: Debian's packages, after an apt-get update.
apt_install() {
    bench_log "== installing $* (apt)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# need COMMAND:PACKAGE...: installs the Debian package of each command that is missing
# (a command may be a path: /usr/bin/time:time).
need() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Debian's Chromium, as scripts/test installs it: the headless shell the scraping job
# runs by default, and the full browser (BROWSER=/usr/lib/chromium/chromium).
ensure_chromium() {
    if [ ! -x /usr/lib/chromium/chromium-headless-shell ] || [ ! -x /usr/lib/chromium/chromium ]; then
        apt_install chromium-headless-shell chromium
    fi
}

node_major() {
    node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# ensure_node MAJOR: node (at least version MAJOR) and npm, from Debian's packages. When
# the apt sources offer no recent enough nodejs (Debian 12 has Node.js 18), it stops and
# says so rather than add a third-party apt source as root.
ensure_node() {
    local min=$1 candidate version
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ "$(node_major)" -ge "$min" ]; then
        return 0
    fi
    as_root apt-get update -qq >&2
    candidate=$(apt-cache policy nodejs | awk '/Candidate:/ {print $2}')
    version=${candidate#*:}
    version=${version%%.*}
    if [ "$version" -ge "$min" ] 2>/dev/null; then
        need node:nodejs npm:npm
        if [ "$(node_major)" -lt "$min" ]; then apt_install nodejs; fi
    fi
    if ! command -v npm >/dev/null 2>&1 || [ "$(node_major)" -lt "$min" ]; then
        bench_log "this benchmark needs Node.js $min or later with npm; the apt sources offer nodejs ${candidate:-none}"
        bench_log "(node: $(node --version 2>/dev/null || echo none)). Install Node.js $min (for example NodeSource's node_$min.x) and run it again."
        return 1
    fi
}

# npm_deps DIR: the baseline's node packages, exactly as its package-lock.json pins them.
npm_deps() {
    (cd "$1" && npm ci --silent --no-audit --no-fund >&2)
}

# The venv at $BENCH_VENV with Pillow $PILLOW_VERSION (from the Python registry), made
# or repaired when it cannot import PIL.
ensure_bench_venv() {
    if "$BENCH_VENV/bin/python" -c 'import PIL' 2>/dev/null; then
        return 0
    fi
    need python3:python3
    # Debian's python3 makes venvs only with python3-venv (ensurepip).
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    bench_log "== creating $BENCH_VENV with Pillow $PILLOW_VERSION (pip)"
    # A venv whose interpreter no longer runs (python3 upgraded or removed) is made anew.
    if [ -e "$BENCH_VENV" ] && ! "$BENCH_VENV/bin/python" -c '' 2>/dev/null; then
        python3 -m venv --clear "$BENCH_VENV"
    else
        python3 -m venv "$BENCH_VENV"
    fi
    "$BENCH_VENV/bin/pip" install --quiet --disable-pip-version-check "pillow==$PILLOW_VERSION" >&2
}

# cpu_wrap CPUS: sets CPU_WRAP to a command prefix that runs what follows in a cgroup
# allowed CPUS processors (0.25 for a task of 256 CPU units), as a Fargate task of that
# size is; empty when CPUS is at least this machine's cores. The prefix joins the
# cgroup and execs the command, so it stays the same process (time and the memory
# samplers follow it). Needs cgroup v1's cpu controller at /sys/fs/cgroup/cpu, writable.
cpu_wrap() {
    local cpus=$1 cg
    CPU_WRAP=()
    if ! awk -v c="$cpus" 'BEGIN { exit !(c + 0 > 0) }'; then
        bench_log "cpu_wrap: \`$cpus\` is not a positive number of CPUs"
        return 2
    fi
    if awk -v c="$cpus" -v n="$(nproc)" 'BEGIN { exit !(c >= n) }'; then
        return 0
    fi
    cg=/sys/fs/cgroup/cpu/run-job-bench-${cpus//./_}
    if ! { mkdir -p "$cg" 2>/dev/null && [ -w "$cg/cpu.cfs_quota_us" ]; }; then
        bench_log "measuring at $cpus CPU needs cgroup v1's cpu controller at /sys/fs/cgroup/cpu, writable (run as root)"
        return 2
    fi
    # Checked one by one: called as `cpu_wrap ... || exit`, set -e does not apply here.
    echo 100000 >"$cg/cpu.cfs_period_us" || return 2
    awk -v c="$cpus" 'BEGIN { printf "%d\n", c * 100000 }' >"$cg/cpu.cfs_quota_us" || return 2
    CPU_WRAP=(bash -c 'echo $$ >"$0" && exec "$@"' "$cg/tasks")
}
