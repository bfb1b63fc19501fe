# Sourced by scripts/test: an S3-compatible server on loopback for the storage tests
# (s3s-fs, from the Rust registry; installed once into ~/.cargo/bin), stopped on exit.

ensure_s3() {
    if ! command -v s3s-fs >/dev/null 2>&1; then
        echo "== installing s3s-fs 0.14.1 (S3-compatible server for the tests)"
        cargo install --quiet --locked s3s-fs@0.14.1 --features binary
    fi
    local data port
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    export RUN_JOB_TEST_S3_ACCESS_KEY=run-job-test RUN_JOB_TEST_S3_SECRET_KEY=run-job-test-secret
    s3s-fs --host 127.0.0.1 --port "$port" --access-key "$RUN_JOB_TEST_S3_ACCESS_KEY" \
        --secret-key "$RUN_JOB_TEST_S3_SECRET_KEY" "$data" >/dev/null 2>&1 &
    S3_PID=$!
    trap 'kill $S3_PID 2>/dev/null || true; rm -rf "'"$data"'"' EXIT
    export RUN_JOB_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    for _ in $(seq 1 50); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "s3s-fs did not start on port $port" >&2
    return 1
}
