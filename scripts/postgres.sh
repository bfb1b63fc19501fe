# Sourced by scripts/test and scripts/quickstart: makes sure a PostgreSQL server answers
# on 127.0.0.1:5432 and exports DATABASE_URL for it (the server's `postgres` database,
# from which sqlx::test creates one database per test).
#
# On the project's machines PostgreSQL already runs with trust auth. On a fresh Debian
# machine it installs the package, starts the cluster and, if TCP logins need a
# password, gives the postgres role one (local-only development credentials).

pg_ok() {
    PGPASSWORD="${1:-}" psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        return 0
    fi
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        echo "== installing PostgreSQL (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    if ! pg_ok && ! pg_ok postgres; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "== starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        for _ in $(seq 1 30); do
            pg_isready -h 127.0.0.1 -p 5432 -q && break
            sleep 1
        done
    fi
    if pg_ok; then
        export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
        if ! pg_ok postgres; then
            echo "== TCP login needs a password: setting one for the postgres role (local development only)"
            su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
        fi
        pg_ok postgres || { echo "PostgreSQL on 127.0.0.1:5432 does not accept the postgres role" >&2; return 1; }
        export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
    fi
}

# For benchmarks: with DB_LATENCY_MS set (and not 0), starts bench/db/latency-proxy.py on
# 127.0.0.1:15432, adding that much to every round trip to the server, and sets
# RUN_DATABASE_URL to DATABASE_URL through it (LATENCY_PROXY_PID to kill it); otherwise
# RUN_DATABASE_URL is DATABASE_URL. Seeding goes direct; only run-job sees the latency.
start_latency_proxy() {
    RUN_DATABASE_URL="$DATABASE_URL"
    LATENCY_PROXY_PID=
    if [ "${DB_LATENCY_MS:-0}" = 0 ]; then
        return
    fi
    local ready
    ready=$(mktemp)
    python3 bench/db/latency-proxy.py 15432 127.0.0.1:5432 "$DB_LATENCY_MS" >"$ready" &
    LATENCY_PROXY_PID=$!
    for _ in $(seq 1 50); do [ -s "$ready" ] && break; sleep 0.1; done
    rm -f "$ready"
    RUN_DATABASE_URL="${DATABASE_URL/127.0.0.1:5432/127.0.0.1:15432}"
    echo "== run-job reaches PostgreSQL through a proxy adding ${DB_LATENCY_MS} ms per round trip"
}
