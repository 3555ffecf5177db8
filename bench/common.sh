# Shared by the bench scripts: build, a throw-away database, a server on
# loopback, and wrk. Everything started here is stopped on exit.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/masthead-target}"
BIN="$CARGO_TARGET_DIR/release/masthead"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
WORK="$(mktemp -d)"
SERVER_PID=""
SINK_PID=""
PG_DB=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need_wrk() {
  command -v wrk >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  }
}

build() {
  (cd "$ROOT" && cargo build --release --locked -q)
}

# Sets MASTHEAD__DATABASE__URL for a fresh database of the given backend.
fresh_database() {
  export MASTHEAD__LOG__LEVEL="${LOG_LEVEL:-warn}"
  case "$1" in
    sqlite) export MASTHEAD__DATABASE__URL="sqlite://$WORK/bench.db" ;;
    postgres)
      PG_DB="masthead_bench_$$"
      psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
      export MASTHEAD__DATABASE__URL="${PG_ADMIN_URL%/*}/$PG_DB" ;;
    *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
  esac
}

# Starts `masthead serve` on a free loopback port and waits until it is ready.
start_server() {
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  export MASTHEAD__SERVER__BIND="127.0.0.1:$PORT" MASTHEAD__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
  export MASTHEAD__MAIL__OUTBOX_DIR="$WORK/outbox" MASTHEAD__LOG__LEVEL="${LOG_LEVEL:-warn}"
  "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$WORK/server.log" >&2
  echo "server did not become ready" >&2
  exit 1
}

# CPU seconds (user + system) the server has used so far.
server_cpu() {
  python3 -c "import os; f=open('/proc/$SERVER_PID/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))"
}

# CPU seconds (user + system) this machine's PostgreSQL processes have used
# so far; 0 when none runs here.
database_cpu() {
  python3 - <<'PY'
import os
ticks = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    if stat[stat.index("(") + 1:stat.rindex(")")].startswith("postgres"):
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
print(ticks / os.sysconf("SC_CLK_TCK"))
PY
}

# wrk against one URL; prints "name backend=… rps=… p50_ms=… p99_ms=…
# non_2xx=… cpu_ms_per_req=… db_cpu_ms_per_req=…": the server's CPU time per
# request, and that of the PostgreSQL processes on this machine.
measure() {
  local name="$1" backend="$2" url="$3"; shift 3
  local out cpu_before cpu_after db_before db_after
  cpu_before="$(server_cpu)"
  db_before="$(database_cpu)"
  out="$(wrk --latency -t "${THREADS:-2}" -c "${CONNECTIONS:-32}" -d "${DURATION:-15}s" "$@" "$url")"
  cpu_after="$(server_cpu)"
  db_after="$(database_cpu)"
  echo "$out" >"$WORK/$name.wrk"
  python3 - "$name" "$backend" "$WORK/$name.wrk" "$cpu_before" "$cpu_after" "$db_before" "$db_after" <<'PY'
import re, sys
name, backend, path = sys.argv[1:4]
cpu = float(sys.argv[5]) - float(sys.argv[4])
db_cpu = float(sys.argv[7]) - float(sys.argv[6])
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
requests = int(re.search(r"(\d+) requests in", text).group(1))
def ms(value):
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if not match:
        raise SystemExit(f"{name}: cannot read the latency {value!r} in:\n{text}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
# Anchored: "72.99%" in the thread stats must not be taken for the 99th percentile.
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
bad = int(errors.group(1)) if errors else 0
per_request = cpu * 1000 / requests if requests else 0.0
db_per_request = db_cpu * 1000 / requests if requests else 0.0
print(f"{name} backend={backend} rps={rps:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} non_2xx={bad} "
      f"cpu_ms_per_req={per_request:.3f} db_cpu_ms_per_req={db_per_request:.3f}")
PY
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# Postfix's smtp-sink and smtp-source, from Debian's postfix package with
# the "No configuration" choice (no system mail server is set up).
need_postfix_tools() {
  postfix_tool() {
    for dir in /usr/sbin /usr/lib/postfix/sbin /usr/bin; do
      [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
    done
    return 1
  }
  if ! postfix_tool smtp-sink >/dev/null || ! postfix_tool smtp-source >/dev/null; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
  fi
  SMTP_SINK="$(postfix_tool smtp-sink)"
  SMTP_SOURCE="$(postfix_tool smtp-source)"
}

# smtp-sink on a loopback port, stopped on exit with the rest.
start_sink() {
  "$SMTP_SINK" -u postfix "127.0.0.1:$1" 1024 >"$WORK/sink.log" 2>&1 &
  SINK_PID=$!
  for _ in $(seq 1 50); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "smtp-sink did not start" >&2
  exit 1
}
