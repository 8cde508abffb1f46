#!/usr/bin/env bash
# What the writers of a standard load generator feel, at a fixed rate, during shadowcut and during its
# peer: sysbench oltp_write_only on MariaDB (peer pt-online-schema-change), pgbench's simple update on
# PostgreSQL (peer pg_repack, which rebuilds the table the same way but cannot change it). Each tool
# gets a freshly prepared table and the same generator run; a run with no migration comes first, so
# the generator's own noise is on the page beside them. The generator's clock is the writers' timer:
# sysbench reports each second's 100th percentile (its slowest transaction), pgbench logs every
# transaction's latency.
#   bench/fixed-rate.sh [--relaxed] mysql|postgres [rows, 1000000] [rate per second, 200] [seconds, 90]
# SHADOWCUT_ARGS: extra options for shadowcut migrate (e.g. "--defer-indexes off"); TOOLS: which of
# baseline, shadowcut and the peer to run (default all three).
# Servers: the bench's own (scripts/servers.sh in $SHADOWCUT_SERVERS_DIR), started when not up: durable
# (commits wait for the disk) unless --relaxed, each kind in a state dir of its own; read back before
# the runs (refused when not as asked), with the disk's own figures. Each line also says what the
# primary wrote while the generator ran (redo and binlog, or WAL), against the run without a migration.
# Needs the bench built (npm run build): dist/bench/sitting.js reads the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
durability=durable
if [[ ${1:-} == --relaxed ]]; then
  durability=relaxed
  shift
fi
engine=${1:?usage: bench/fixed-rate.sh [--relaxed] mysql|postgres [rows] [rate] [seconds]}
rows=${2:-1000000}
rate=${3:-200}
seconds=${4:-90}
# The migration starts this long into the generator's run, so each figure includes a calm stretch.
lead=10
export SHADOWCUT_SERVERS_DURABILITY=$durability
export SHADOWCUT_SERVERS_DIR=${SHADOWCUT_SERVERS_DIR:-/tmp/shadowcut-bench-fixed-rate-$durability}
bash scripts/servers.sh env >/dev/null 2>&1 || bash scripts/servers.sh up >/dev/null
eval "$(bash scripts/servers.sh env)"
sitting="node dist/bench/sitting.js"
# Read back before anything runs (a set found running may have been started otherwise), then the disk.
conditions=$($sitting check "$engine" "$durability" "stop them (SHADOWCUT_SERVERS_DIR=$SHADOWCUT_SERVERS_DIR bash scripts/servers.sh down) and run again") || exit 1
work=$(mktemp -d /tmp/shadowcut-fixed-rate-XXXXXX)
# Each tool's own output and the generator's log are kept beside the bench's other results, and so is
# what this prints (summary.txt).
kept=bench/results/fixed-rate-$engine-$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p "$kept"
trap 'rm -rf "$work"' EXIT
exec > >(tee "$kept/summary.txt")
cli="node dist/bin/shadowcut.js"

# url_part <url> <username|password|port|db>
url_part() {
  node -e 'const u = new URL(process.argv[1]); const p = { username: u.username, password: decodeURIComponent(u.password), port: u.port, db: u.pathname.slice(1) }; console.log(p[process.argv[2]])' "$1" "$2"
}

if [[ $engine == mysql ]]; then
  url=$SHADOWCUT_MYSQL_URL
  db=$(url_part "$url" db)
  # shadowcut takes the password from MYSQL_PWD and pt-osc from a defaults file; sysbench has only
  # --mysql-password, so the private bench servers' password is on its command line.
  printf '[client]\nuser=%s\npassword=%s\n' "$(url_part "$url" username)" "$(url_part "$url" password)" >"$work/my.cnf"
  chmod 600 "$work/my.cnf"
  sb=(sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$(url_part "$url" port)"
    --mysql-user="$(url_part "$url" username)" --mysql-db="$db" --tables=1 --table-size="$rows")
  export MYSQL_PWD
  MYSQL_PWD=$(url_part "$url" password)
  prepare() { "${sb[@]}" --mysql-password="$MYSQL_PWD" cleanup >/dev/null && "${sb[@]}" --mysql-password="$MYSQL_PWD" --threads=2 prepare >/dev/null; }
  load() { "${sb[@]}" --mysql-password="$MYSQL_PWD" --rate="$rate" --threads=8 --time="$seconds" --report-interval=1 --percentile=100 --mysql-ignore-errors=all run >"$work/load.log" 2>&1; }
  # Each second's line: [ 12s ] thds: 8 tps: ... lat (ms,100%): 219.36 ...; the worst, and the second it fell in.
  slowest() { awk '/lat \(ms,100%\)/ { for (i = 1; i <= NF; i++) if ($i == "(ms,100%):") v = $(i + 1); if (v + 0 > m) { m = v + 0; at = $2 } } END { printf "%.1f ms (second %s)", m, at }' "$work/load.log"; }
  alter='ADD COLUMN x INT NULL, MODIFY k BIGINT NOT NULL DEFAULT 0'
  shadowcut() { $cli migrate --url "mysql://$(url_part "$url" username)@127.0.0.1:$(url_part "$url" port)/$db" --table sbtest1 --alter "$alter" --execute ${SHADOWCUT_ARGS:-} >"$work/tool.log" 2>&1; }
  peer_name=pt-osc
  peer() {
    pt-online-schema-change "--defaults-file=$work/my.cnf" --alter "$alter" "h=127.0.0.1,P=$(url_part "$url" port),D=$db,t=sbtest1" \
      --execute --recursion-method=none --no-check-replication-filters --no-version-check >"$work/tool.log" 2>&1
  }
else
  url=$SHADOWCUT_PG_URL
  db=$(url_part "$url" db)
  export PGHOST=127.0.0.1 PGPORT PGUSER PGDATABASE=$db PGOPTIONS='-c client_min_messages=warning'
  PGPORT=$(url_part "$url" port)
  PGUSER=$(url_part "$url" username)
  pgbench=/usr/lib/postgresql/15/bin/pgbench
  prepare() { psql -qc 'CREATE EXTENSION IF NOT EXISTS pg_repack' >/dev/null && $pgbench -q -i -s $((rows / 100000)) >/dev/null 2>&1; }
  # -N: the simple update (accounts, history); every transaction's latency logged.
  load() { (cd "$work" && $pgbench -N -R "$rate" -c 8 -j 2 -T "$seconds" -l --log-prefix=tx >"$work/load.log" 2>&1); }
  # Each log line: client, transaction, latency in microseconds, script, epoch seconds, microseconds.
  slowest() { cat "$work"/tx.* | awk 'NR == 1 || $5 < t0 { t0 = $5 } { if ($3 > m) { m = $3; at = $5 } } END { printf "%.1f ms (second %d)", m / 1000, at - t0 }'; }
  shadowcut() { $cli migrate --url "$url" --table pgbench_accounts --alter 'ALTER COLUMN abalance TYPE bigint, ADD COLUMN x int' --execute ${SHADOWCUT_ARGS:-} >"$work/tool.log" 2>&1; }
  peer_name=pg_repack
  peer() { pg_repack --no-order --table pgbench_accounts >"$work/tool.log" 2>&1; }
fi

# one <name> <tool function or "none">: prepare, run the generator, start the tool after $lead s.
one() {
  rm -f "$work"/tx.*
  prepare
  local counters written
  counters=$($sitting counters "$engine")
  load &
  local gen=$! started ended took=-
  if [[ $2 != none ]]; then
    sleep "$lead"
    started=$(date +%s.%N)
    if ! $2; then
      echo "$1 failed:" >&2
      tail -5 "$work/tool.log" >&2
    fi
    ended=$(date +%s.%N)
    took=$(echo "$ended - $started" | bc)
  fi
  wait "$gen" || true
  written=$($sitting delta "$engine" "$counters")
  cp "$work/load.log" "$kept/$1.load.log"
  [[ -f $work/tool.log ]] && mv "$work/tool.log" "$kept/$1.tool.log"
  printf '%-10s wall %6.1f s   writers'\'' longest wait %s   written: %s\n' "$1" "${took/-/0}" "$(slowest)" \
    "$($sitting text "$written" ${reference:+"$reference"})"
  # The run without a migration is what the others' ratios are against: the generator's own writes.
  if [[ $2 == none ]]; then reference=$written; fi
}

relaxed_mark=""
[[ $durability == relaxed ]] && relaxed_mark=" [RELAXED servers: not durable figures]"
echo "$engine: $rows rows, $rate transactions/s for $seconds s, the tool started at ${lead} s$relaxed_mark"
echo "$conditions"
echo "written: what the primary wrote while the generator ran, (x) against the run without a migration"
reference=""
tools=${TOOLS:-baseline shadowcut $peer_name}
[[ " $tools " == *" baseline "* ]] && one baseline none
[[ " $tools " == *" shadowcut "* ]] && one shadowcut shadowcut
[[ " $tools " == *" $peer_name "* ]] && one "$peer_name" peer
exit 0
