#!/usr/bin/env bash
# Private database servers for shadowcut's tests and demo.
#
#   scripts/servers.sh up     start (or reuse) MariaDB primary+replica and PostgreSQL primary+standby,
#                             plus a MariaDB and a PostgreSQL "as they come" (no binlog, wal_level=replica)
#   scripts/servers.sh down   stop them and remove the state dir
#   scripts/servers.sh env    print the sourceable env file if the servers answer, else exit 1
#   scripts/servers.sh galera-up    start (or reuse) a three-node MariaDB Galera cluster (its own state
#                                   dir, ${SHADOWCUT_GALERA_DIR:-<repo>/.servers-galera}); prints its env lines
#   scripts/servers.sh galera-down  stop its nodes (SIGKILL after a bound) and remove its state dir
#   scripts/servers.sh chromium     print the path of Debian's Chromium (for the report page's browser
#                                   test), installing the package first when it is missing
#
# Everything lives under ${SHADOWCUT_SERVERS_DIR:-<repo>/.servers} and listens on random
# loopback ports, so it never collides with the machine's own instances on 3306/5432 and
# several checkouts can each have their own set.  Progress goes to stderr; `up` prints the
# env lines on stdout so callers can `eval "$(scripts/servers.sh up)"`.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SHADOWCUT_SERVERS_DIR:-$REPO_DIR/.servers}"
# Absolute path: it ends up in socket paths and server configs read from other cwds.
mkdir -p "$(dirname "$STATE_DIR")"
STATE_DIR="$(cd "$(dirname "$STATE_DIR")" && pwd)/$(basename "$STATE_DIR")"

WAIT_SECS="${SHADOWCUT_SERVERS_WAIT_SECS:-60}"
# mariadbd lives in /usr/sbin, which a non-login root shell may not have on PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
# Stray libpq settings from the caller's shell would redirect our psql/pg_* calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGOPTIONS PGSERVICE PGSERVICEFILE PGPASSFILE PGSSLMODE

MARKER="$STATE_DIR/.shadowcut-servers"  # proves a dir is ours before we rm -rf it
PORTS_FILE="$STATE_DIR/ports"
ENV_FILE="$STATE_DIR/env"
JSON_FILE="$STATE_DIR/servers.json"

MY_DIR="$STATE_DIR/mysql"
MY_P_DATA="$MY_DIR/primary"; MY_P_SOCK="$MY_DIR/primary.sock"; MY_P_PID="$MY_DIR/primary.pid"; MY_P_LOG="$MY_DIR/primary.log"
MY_R_DATA="$MY_DIR/replica"; MY_R_SOCK="$MY_DIR/replica.sock"; MY_R_PID="$MY_DIR/replica.pid"; MY_R_LOG="$MY_DIR/replica.log"
MY_PL_DATA="$MY_DIR/plain"; MY_PL_SOCK="$MY_DIR/plain.sock"; MY_PL_PID="$MY_DIR/plain.pid"; MY_PL_LOG="$MY_DIR/plain.log"

# As root, the servers run as the postgres OS user (initdb and postgres refuse root) and mariadbd
# with --user=root; as anyone else, both run as that user.
AS_ROOT=false; [[ $EUID -eq 0 ]] && AS_ROOT=true
# Where PostgreSQL's files go. Inside the state dir when the postgres user can reach it; a clone in
# a private directory (mode 0700, like root's home) cannot be, so then a directory of its own under
# /var/tmp, named after the state dir, recorded here so that `env` and `down` find it.
DATA_ROOT_FILE="$STATE_DIR/data-root"
set_pg_paths() { # set_pg_paths <dir>
  PG_DIR="$1"  # owned by the postgres OS user when root
  PG_P_DATA="$PG_DIR/primary"; PG_P_LOG="$PG_DIR/primary.log"
  PG_S_DATA="$PG_DIR/standby"; PG_S_LOG="$PG_DIR/standby.log"
  PG_PL_DATA="$PG_DIR/plain"; PG_PL_LOG="$PG_DIR/plain.log"
}
set_pg_paths "$(cat "$DATA_ROOT_FILE" 2>/dev/null || echo "$STATE_DIR")/pg"

DB_NAME=shadowcut_test
DB_USER=shadowcut
DB_PASS=shadowcut
# On the plain servers the same name is a table owner's login: no replication privileges, no superuser.

log() { printf '[servers] %s\n' "$*" >&2; }

# fail <message> [logfile...]: the log tail is usually the only clue when a server won't start.
fail() {
  local msg=$1; shift
  log "ERROR: $msg"
  local f
  for f in "$@"; do
    if [[ -f $f ]]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
      printf -- '-----\n' >&2
    fi
  done
  exit 1
}

# wait_until <what> <logfile> <pid|""> <command...>
# Bounded so a broken server fails the run instead of hanging CI; bails out early if the
# server process has already died.
wait_until() {
  local what=$1 logf=$2 pid=$3; shift 3
  local deadline=$((SECONDS + WAIT_SECS))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      fail "$what: server process $pid exited" "$logf"
    fi
    if ((SECONDS >= deadline)); then
      fail "timed out after ${WAIT_SECS}s waiting for $what" "$logf"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------------------

pg_bin_dir() {
  # Newest installed major version; Debian keeps each under its own prefix.
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $d && -x $d/initdb ]] && echo "$d"
}

binaries_present() {
  local c d
  for c in mariadbd mariadb-install-db mariadb mariadb-admin; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
  d=$(pg_bin_dir) || return 1
  for c in initdb pg_ctl pg_basebackup psql; do
    [[ -x $d/$c ]] || return 1
  done
}

restore_policy_rc_d() {
  if [[ -n ${POLICY_BACKUP:-} ]]; then
    mv -f "$POLICY_BACKUP" /usr/sbin/policy-rc.d
  else
    rm -f /usr/sbin/policy-rc.d
  fi
}

# apt_install_quietly <package>...: apt-get install as root, with the packages' postinst kept from
# starting *system* instances on 3306/5432 (policy-rc.d exiting 101); we only want the binaries.
# Any existing policy (containers often ship one) is put back afterwards, even if interrupted.
apt_install_quietly() {
  # One install at a time across this project's scripts (two test shards may install Galera and
  # Chromium at once), and apt waits for any other holder of the dpkg lock rather than failing.
  exec 7>"${TMPDIR:-/tmp}/shadowcut-apt.lock"
  flock -w 900 7 || fail "could not lock ${TMPDIR:-/tmp}/shadowcut-apt.lock within 900s (another apt-get install running?)"
  POLICY_BACKUP=""
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    POLICY_BACKUP=$(mktemp)
    cp -p /usr/sbin/policy-rc.d "$POLICY_BACKUP"
  fi
  trap restore_policy_rc_d EXIT
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  local rc=0
  {
    apt-get -o DPkg::Lock::Timeout=600 update &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "$@"
  } >&2 || rc=$?
  restore_policy_rc_d
  trap - EXIT
  flock -u 7
  ((rc == 0)) || fail "apt-get install failed (exit $rc)"
}

install_binaries() {
  log "database binaries missing: installing mariadb-server, mariadb-client, postgresql, postgresql-client"
  [[ $EUID -eq 0 ]] || fail "need root to apt-get install the database packages"
  apt_install_quietly mariadb-server mariadb-client postgresql postgresql-client
  binaries_present || fail "packages installed but mariadbd/initdb still not found"
}

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

# Random ports in 20000-31999: below the kernel's ephemeral range (32768+), so an outgoing
# connection can't be sitting on them, and nowhere near the system's 3306/5432.
pick_ports() {
  node -e '
    const net = require("net");
    const want = Number(process.argv[1]);
    const free = (port) => new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
    });
    (async () => {
      const got = new Set();
      for (let i = 0; got.size < want && i < 500; i++) {
        const p = 20000 + Math.floor(Math.random() * 12000);
        if (!got.has(p) && (await free(p))) got.add(p);
      }
      if (got.size < want) process.exit(1);
      console.log([...got].join(" "));
    })();
  ' "$1"
}

my_root() { # my_root <socket> <mariadb client args...>
  local sock=$1; shift
  mariadb --no-defaults --protocol=socket --socket="$sock" -uroot -N -B --connect-timeout=3 "$@"
}

# "Answering" means what clients will actually do: TCP as the shadowcut user.
my_answers() { # my_answers <port>
  mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$1" -u"$DB_USER" -p"$DB_PASS" \
    --connect-timeout=3 -N -B -e 'SELECT 1' "$DB_NAME"
}

pg() { # pg <tool> <args...>, run as the postgres OS user (when root) from a dir it can read
  local tool=$1; shift
  if $AS_ROOT; then
    (cd "$PG_DIR" && runuser -u postgres -- "$PG_BIN/$tool" "$@")
  else
    (cd "$PG_DIR" && "$PG_BIN/$tool" "$@")
  fi
}

# The user the database servers run as: root's servers run as mysql/postgres users, anyone else's as themselves.
my_user_args() { if $AS_ROOT; then echo --user=root; fi; }

psql_at() { # psql_at <port> <db> <sql>; plain psql over TCP (trust auth), so root may run it
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -At -c "$3"
}

pg_answers() { [[ $(psql_at "$1" "$DB_NAME" 'SELECT 1') == 1 ]]; }

# Only ever signal a pid if it is still the server we started on this data dir: pid files
# can outlive a container restart and point at an unrelated process.
pid_is_ours() { # pid_is_ours <pid> <datadir>
  local pid=$1 dir=$2
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -qF -- "$dir"
}

# ---------------------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------------------

launch_mariadbd() { # launch_mariadbd <datadir> <port> <socket> <pidfile> <log> <extra mariadbd args...>; sets LAUNCHED_PID
  local data=$1 port=$2 sock=$3 pidf=$4 logf=$5; shift 5
  # --no-defaults: the system my.cnf belongs to the system instance (its port, socket and
  # datadir). setsid + redirects: detach completely so the server neither dies with the
  # caller's terminal/process group nor holds the caller's pipes open (execFileSync in
  # vitest's globalSetup would otherwise wait forever). 3>&- ... 9>&-: don't let the daemon inherit
  # our lock fd, or a caller's (a run under flock), or it would hold that lock for its whole life.
  # A tmpdir of its own: a starting mariadbd deletes every #sql* file in its tmpdir, so with a
  # shared /tmp another instance starting up would pull the temporary tables from under ours.
  mkdir -p "$data.tmp"
  setsid mariadbd --no-defaults $(my_user_args) \
    --datadir="$data" --port="$port" --bind-address=127.0.0.1 --socket="$sock" \
    --pid-file="$pidf" --log-error="$logf" --tmpdir="$data.tmp" \
    --skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-flush-log-at-trx-commit=2 \
    "$@" </dev/null >>"$logf" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  # Non-interactive bash doesn't make background jobs group leaders, so setsid execs in
  # place and $! is mariadbd itself; it rewrites the same pid into this file.
  LAUNCHED_PID=$!
  echo "$LAUNCHED_PID" >"$pidf"
}

start_mariadbd() { # start_mariadbd <datadir> <port> <socket> <pidfile> <log> <extra mariadbd args...>
  launch_mariadbd "$@"
  wait_until "MariaDB on port $2" "$5" "$LAUNCHED_PID" my_root "$3" -e 'SELECT 1'
}

# What the primary and replica run with beyond the defaults; the plain server, a MariaDB as it
# comes (log_bin OFF, binlog_format MIXED), gets none of it.
STREAM_SERVER_ARGS=(--max-connections=500 --sync-binlog=0 --binlog-format=ROW --binlog-row-image=FULL
  --binlog-row-metadata=FULL --log-slave-updates=ON --gtid-strict-mode=OFF)

# MariaDB 10.8+ replicates an ALTER as START/COMMIT ALTER, which replicas with parallel threads
# run alongside other events: shadowcut's index build after the copy then lags no replica.
two_phase_alter() {
  if mariadbd --no-defaults --verbose --help 2>/dev/null | grep -q '^ *--binlog-alter-two-phase'; then
    echo --binlog-alter-two-phase=ON
  fi
}

# mariadbd takes ~2 s to shut down, so `down` signals both and waits once, overlapping
# those seconds with the PostgreSQL shutdowns.
STOPPING=()

term_mariadbd() { # term_mariadbd <datadir> <pidfile>
  local data=$1 pidf=$2 pid
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf" 2>/dev/null || true)
  pid_is_ours "$pid" "$data" || return 0
  # SIGTERM is mariadbd's clean shutdown, and unlike mariadb-admin it needs no working login.
  kill -TERM "$pid" 2>/dev/null || true
  STOPPING+=("$pid")
}

wait_mariadbd_stopped() { # wait_mariadbd_stopped [seconds], then SIGKILL what is left
  local pid secs=${1:-$WAIT_SECS}
  local deadline=$((SECONDS + secs))
  for pid in "${STOPPING[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "mariadbd $pid did not stop in ${secs}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
  STOPPING=()
}

replica_running() {
  local st
  # --column-names -E: "Field: value" lines (my_root's -N would strip the field names).
  st=$(my_root "$MY_R_SOCK" --column-names -E -e 'SHOW SLAVE STATUS') || return 1
  grep -q 'Slave_IO_Running: Yes' <<<"$st" &&
    grep -q 'Slave_SQL_Running: Yes' <<<"$st" &&
    [[ $(my_root "$MY_R_SOCK" -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$DB_NAME'") == 1 ]]
}

start_mysql() {
  log "MariaDB: initialising data dir"
  mkdir -p "$MY_DIR"
  # One install-db, copied for the replica: identical system tables on both sides, so the
  # replica can replay the primary's binlog from its very first event (CREATE USER etc.).
  mariadb-install-db --no-defaults $(my_user_args) --datadir="$MY_P_DATA" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$MY_DIR/install-db.log" 2>&1 || fail "mariadb-install-db failed" "$MY_DIR/install-db.log"
  cp -a "$MY_P_DATA" "$MY_R_DATA"
  cp -a "$MY_P_DATA" "$MY_PL_DATA"

  # Started first and waited for last: it boots while the primary and replica do.
  log "MariaDB: starting plain server (no binlog) on 127.0.0.1:$MY_PL_PORT"
  launch_mariadbd "$MY_PL_DATA" "$MY_PL_PORT" "$MY_PL_SOCK" "$MY_PL_PID" "$MY_PL_LOG"
  local plain_pid=$LAUNCHED_PID

  log "MariaDB: starting primary on 127.0.0.1:$MY_P_PORT"
  start_mariadbd "$MY_P_DATA" "$MY_P_PORT" "$MY_P_SOCK" "$MY_P_PID" "$MY_P_LOG" "${STREAM_SERVER_ARGS[@]}" \
    --server-id=1 --log-bin=primary-bin \
    --event-scheduler=ON --innodb-buffer-pool-size=1G $(two_phase_alter)
  # Created after log_bin is on, so these statements are in the binlog and reach the replica.
  my_root "$MY_P_SOCK" -e "
    CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
    GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
    CREATE DATABASE $DB_NAME;" || fail "could not create user/database on the MariaDB primary" "$MY_P_LOG"

  log "MariaDB: starting replica on 127.0.0.1:$MY_R_PORT"
  # Replica keeps its own binlog (log_slave_updates) so tools can also tail a replica.
  start_mariadbd "$MY_R_DATA" "$MY_R_PORT" "$MY_R_SOCK" "$MY_R_PID" "$MY_R_LOG" "${STREAM_SERVER_ARGS[@]}" \
    --server-id=2 --log-bin=replica-bin --relay-log=replica-relay-bin \
    --read-only=ON --innodb-buffer-pool-size=256M --slave-parallel-threads=2
  # Empty gtid_slave_pos + slave_pos = "from the start of the primary's binlog history".
  my_root "$MY_R_SOCK" -e "
    CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$MY_P_PORT,
      MASTER_USER='$DB_USER', MASTER_PASSWORD='$DB_PASS',
      MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
    START SLAVE;" || fail "CHANGE MASTER/START SLAVE failed on the MariaDB replica" "$MY_R_LOG"
  wait_until "MariaDB replica to replicate $DB_NAME" "$MY_R_LOG" "" replica_running

  wait_until "MariaDB plain server on port $MY_PL_PORT" "$MY_PL_LOG" "$plain_pid" my_root "$MY_PL_SOCK" -e 'SELECT 1'
  # What a table owner has: everything on its database, nothing on replication. PROCESS as the
  # primary's user has it (it lets shadowcut read InnoDB's ids to prove a change in place).
  my_root "$MY_PL_SOCK" -e "
    CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
    CREATE DATABASE $DB_NAME;
    GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'%';
    GRANT PROCESS ON *.* TO '$DB_USER'@'%';" || fail "could not create user/database on the plain MariaDB" "$MY_PL_LOG"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

pg_start() { # pg_start <datadir> <log> <what>
  # pg_ctl -w does the bounded wait; setsid and the closed descriptors for the same reasons as mariadbd.
  local as_postgres=(); $AS_ROOT && as_postgres=(runuser -u postgres --)
  if ! (cd "$PG_DIR" && setsid "${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$1" -l "$2" -w -t "$WAIT_SECS" start) >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; then
    fail "PostgreSQL $3 did not start" "$2"
  fi
}

pg_stop() { # pg_stop <datadir>
  local data=$1 pid
  [[ -f $data/postmaster.pid ]] || return 0
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
  pid_is_ours "$pid" "$data" || return 0
  if [[ -n ${PG_BIN:-} ]] && pg pg_ctl -D "$data" -m fast -w -t "$WAIT_SECS" stop >/dev/null 2>&1; then
    return 0
  fi
  log "pg_ctl stop failed for $data; killing postmaster $pid"
  kill -QUIT "$pid" 2>/dev/null || true # immediate shutdown; the data dir is about to be deleted anyway
}

standby_ready() {
  [[ $(psql_at "$PG_S_PORT" "$DB_NAME" 'SELECT pg_is_in_recovery()') == t ]] &&
    [[ $(psql_at "$PG_S_PORT" "$DB_NAME" 'SELECT count(*) FROM pg_stat_wal_receiver WHERE status = $$streaming$$') == 1 ]]
}

# A clone the postgres user cannot reach gets PostgreSQL's files in a directory of its own.
choose_data_root() {
  $AS_ROOT || return 0
  id postgres >/dev/null 2>&1 || fail "there is no postgres OS user to run PostgreSQL as (is the postgresql package installed?)"
  runuser -u postgres -- test -x "$STATE_DIR" && return 0
  local root
  root="/var/tmp/shadowcut-servers.$(printf '%s' "$STATE_DIR" | md5sum | cut -c1-12)"
  [[ ! -e $root || -f $root/.shadowcut-servers ]] || fail "$root exists but was not created by servers.sh; refusing to touch it"
  rm -rf "$root"
  mkdir -p "$root"
  chmod 755 "$root"
  touch "$root/.shadowcut-servers"
  echo "$root" >"$DATA_ROOT_FILE"
  set_pg_paths "$root/pg"
  log "the postgres OS user cannot reach $STATE_DIR; PostgreSQL's files go to $root"
}

start_pg() {
  mkdir -p "$PG_DIR"
  if $AS_ROOT; then
    chown postgres:postgres "$PG_DIR"
    runuser -u postgres -- test -w "$PG_DIR" ||
      fail "the postgres OS user cannot write $PG_DIR; set SHADOWCUT_SERVERS_DIR to a directory it can reach"
  fi
  chmod 700 "$PG_DIR"

  log "PostgreSQL: initdb"
  local locale=C
  # C.UTF-8 keeps byte-order collation (deterministic across machines) with UTF-8 ctype.
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
  pg initdb -D "$PG_P_DATA" --auth=trust -U postgres --encoding=UTF8 --locale="$locale" --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || fail "initdb failed" "$PG_DIR/initdb.log"
  cp -a "$PG_P_DATA" "$PG_PL_DATA"

  # Appended last so these win over initdb's defaults; the standby inherits them via the
  # base backup and only overrides its port.
  cat >>"$PG_P_DATA/postgresql.conf" <<EOF

# --- shadowcut private test server ---
port = $PG_P_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
wal_keep_size = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 200
hot_standby = on
hot_standby_feedback = on
EOF
  log "PostgreSQL: starting primary on 127.0.0.1:$PG_P_PORT"
  pg_start "$PG_P_DATA" "$PG_P_LOG" primary
  # Before the base backup, so the standby has it from the start.
  psql_at "$PG_P_PORT" postgres "CREATE DATABASE $DB_NAME" >/dev/null ||
    fail "could not create database $DB_NAME on the PostgreSQL primary" "$PG_P_LOG"

  log "PostgreSQL: pg_basebackup for the standby"
  pg pg_basebackup -h 127.0.0.1 -p "$PG_P_PORT" -U postgres -D "$PG_S_DATA" \
    -R -X stream -c fast --no-sync >"$PG_DIR/basebackup.log" 2>&1 ||
    fail "pg_basebackup failed" "$PG_DIR/basebackup.log" "$PG_P_LOG"
  printf '\nport = %s\n' "$PG_S_PORT" >>"$PG_S_DATA/postgresql.conf"

  log "PostgreSQL: starting standby on 127.0.0.1:$PG_S_PORT"
  pg_start "$PG_S_DATA" "$PG_S_LOG" standby
  wait_until "PostgreSQL standby to stream from the primary" "$PG_S_LOG" "" standby_ready

  # As it comes (wal_level=replica, shared_buffers 128MB, ...), but without the durability a test needs not.
  cat >>"$PG_PL_DATA/postgresql.conf" <<EOF

# --- shadowcut private test server, as it comes ---
port = $PG_PL_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  log "PostgreSQL: starting plain server (wal_level=replica) on 127.0.0.1:$PG_PL_PORT"
  pg_start "$PG_PL_DATA" "$PG_PL_LOG" "plain server"
  # A table owner's login: owns the database, and so (PostgreSQL 15+) may create in its public schema.
  psql_at "$PG_PL_PORT" postgres "CREATE ROLE $DB_USER LOGIN NOSUPERUSER NOREPLICATION PASSWORD '$DB_PASS'" >/dev/null &&
    psql_at "$PG_PL_PORT" postgres "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null ||
    fail "could not create role/database on the plain PostgreSQL" "$PG_PL_LOG"
}

# ---------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------

all_answer() {
  [[ -f $PORTS_FILE && -f $ENV_FILE && -f $JSON_FILE ]] || return 1
  # shellcheck source=/dev/null
  source "$PORTS_FILE"
  [[ -n ${PG_BIN:-} && -x $PG_BIN/psql ]] || return 1
  # A state dir from before the plain servers has no ports for them: not all up.
  [[ -n ${MY_PL_PORT:-} && -n ${PG_PL_PORT:-} ]] || return 1
  my_answers "$MY_P_PORT" >/dev/null 2>&1 &&
    my_answers "$MY_R_PORT" >/dev/null 2>&1 &&
    my_answers "$MY_PL_PORT" >/dev/null 2>&1 &&
    pg_answers "$PG_P_PORT" 2>/dev/null &&
    pg_answers "$PG_S_PORT" 2>/dev/null &&
    pg_answers "$PG_PL_PORT" 2>/dev/null
}

stop_all() {
  if [[ -f $PORTS_FILE ]]; then
    # shellcheck source=/dev/null
    source "$PORTS_FILE" || true
  fi
  PG_BIN=${PG_BIN:-$(pg_bin_dir || true)}
  # Replicas first, so they don't spend the primary's shutdown retrying connections.
  term_mariadbd "$MY_R_DATA" "$MY_R_PID"
  term_mariadbd "$MY_P_DATA" "$MY_P_PID"
  term_mariadbd "$MY_PL_DATA" "$MY_PL_PID"
  pg_stop "$PG_S_DATA"
  pg_stop "$PG_P_DATA"
  pg_stop "$PG_PL_DATA"
  wait_mariadbd_stopped
}

# Refuse to touch, let alone rm -rf, a directory we didn't create: SHADOWCUT_SERVERS_DIR
# could point anywhere.
ensure_ours() {
  [[ ! -e $STATE_DIR || -f $MARKER || -z $(ls -A "$STATE_DIR" 2>/dev/null) ]] ||
    fail "$STATE_DIR exists but was not created by servers.sh; refusing to touch it"
}

wipe_state_dir() {
  ensure_ours
  local root
  root=$(cat "$DATA_ROOT_FILE" 2>/dev/null || true)
  if [[ -n $root && -f $root/.shadowcut-servers ]]; then rm -rf "$root"; fi
  rm -rf "$STATE_DIR"
}

write_env() {
  local my="mysql://$DB_USER:$DB_PASS@127.0.0.1:$MY_P_PORT/$DB_NAME"
  local myr="mysql://$DB_USER:$DB_PASS@127.0.0.1:$MY_R_PORT/$DB_NAME"
  local pgp="postgres://postgres@127.0.0.1:$PG_P_PORT/$DB_NAME"
  local pgs="postgres://postgres@127.0.0.1:$PG_S_PORT/$DB_NAME"
  local mypl="mysql://$DB_USER:$DB_PASS@127.0.0.1:$MY_PL_PORT/$DB_NAME"
  local pgpl="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PG_PL_PORT/$DB_NAME"
  cat >"$ENV_FILE.tmp" <<EOF
export SHADOWCUT_MYSQL_URL=$my
export SHADOWCUT_MYSQL_REPLICA_URL=$myr
export SHADOWCUT_PG_URL=$pgp
export SHADOWCUT_PG_STANDBY_URL=$pgs
export SHADOWCUT_MYSQL_SOCKET=$MY_P_SOCK
export SHADOWCUT_MYSQL_REPLICA_SOCKET=$MY_R_SOCK
export SHADOWCUT_MYSQL_PLAIN_URL=$mypl
export SHADOWCUT_PG_PLAIN_URL=$pgpl
EOF
  printf '{"mysqlUrl":"%s","mysqlReplicaUrl":"%s","pgUrl":"%s","pgStandbyUrl":"%s","mysqlPlainUrl":"%s","pgPlainUrl":"%s"}\n' \
    "$my" "$myr" "$pgp" "$pgs" "$mypl" "$pgpl" >"$JSON_FILE.tmp"
  # Written last and atomically: their presence is what marks a complete `up`.
  mv "$JSON_FILE.tmp" "$JSON_FILE"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# Serialise up/down on the same state dir (e.g. two test runs starting at once).
take_lock() {
  local lock
  lock="${TMPDIR:-/tmp}/shadowcut-servers-v2.$(printf '%s' "$STATE_DIR" | md5sum | cut -c1-12).lock"
  exec 9>"$lock"
  # Long enough for a concurrent first-time `up` that has to apt-get install.
  flock -w 300 9 || fail "could not lock $lock within 300s (another servers.sh up/down running?)"
}


# ---------------------------------------------------------------------------------------
# Galera: three MariaDB nodes in one cluster (tests of what shadowcut does on one)
# ---------------------------------------------------------------------------------------

GALERA_DIR="${SHADOWCUT_GALERA_DIR:-$REPO_DIR/.servers-galera}"
mkdir -p "$(dirname "$GALERA_DIR")"
GALERA_DIR="$(cd "$(dirname "$GALERA_DIR")" && pwd)/$(basename "$GALERA_DIR")"
GALERA_MARKER="$GALERA_DIR/.shadowcut-servers"
GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
GALERA_NODES=(1 2 3)
# Where the nodes' files go: inside the state dir when the mysql OS user can reach it, else a
# directory of its own under /var/tmp, recorded here (as PostgreSQL's are, above).
GALERA_ROOT_FILE="$GALERA_DIR/data-root"
galera_root() { cat "$GALERA_ROOT_FILE" 2>/dev/null || echo "$GALERA_DIR"; }

galera_ensure_ours() {
  [[ ! -e $GALERA_DIR || -f $GALERA_MARKER || -z $(ls -A "$GALERA_DIR" 2>/dev/null) ]] ||
    fail "$GALERA_DIR exists but was not created by servers.sh; refusing to touch it"
}

galera_binaries_present() {
  [[ -r $GALERA_PROVIDER ]] && command -v rsync >/dev/null 2>&1 && command -v wsrep_sst_rsync >/dev/null 2>&1
}

install_galera() {
  log "Galera binaries missing: installing galera-4, rsync (and the MariaDB packages)"
  [[ $EUID -eq 0 ]] || fail "need root to apt-get install galera-4 and rsync"
  apt_install_quietly mariadb-server mariadb-client galera-4 rsync
  galera_binaries_present || fail "packages installed but $GALERA_PROVIDER, rsync or wsrep_sst_rsync still not found"
}

# As root the nodes run as the mysql OS user: the rsync SST script drops privileges to the server's
# user, and a node running as root leaves it files the joiner's rsync daemon cannot take over.
galera_user_args() { if $AS_ROOT; then echo --user=mysql; fi; }

galera_node_paths() { # galera_node_paths <n>: sets N_DATA N_SOCK N_PID N_LOG
  local root
  root=$(galera_root)/nodes
  N_DATA="$root/node$1"; N_SOCK="$root/node$1.sock"; N_PID="$root/node$1.pid"; N_LOG="$root/node$1.log"
}

galera_launch() { # galera_launch <n> <extra args...>; sets LAUNCHED_PID
  local n=$1; shift
  galera_node_paths "$n"
  local port_var="GA_PORT_$n" g_var="GA_GCOMM_$n" ist_var="GA_IST_$n" sst_var="GA_SST_$n"
  local gcomm="gcomm://127.0.0.1:$GA_GCOMM_1,127.0.0.1:$GA_GCOMM_2,127.0.0.1:$GA_GCOMM_3"
  mkdir -p "$N_DATA.tmp"
  $AS_ROOT && chown mysql:mysql "$N_DATA.tmp"
  # Short timeouts: a node of a loopback cluster that stops answering is gone, and the tests want to
  # know in seconds. gcache small, no fsync: test data. Nodes 1 and 2 keep a binlog of the whole
  # cluster's writes (log_slave_updates), in the cluster's order, as shops that back up or feed
  # asynchronous replicas from a node do; node 3 has none, as Galera nodes often run (Galera needs
  # none), and as the cluster of the issue 34 report did: there shadowcut follows changes by triggers.
  local binlog=(--log-bin="node$n-bin" --log-slave-updates=ON --binlog-row-image=FULL --sync-binlog=0)
  ((n == 3)) && binlog=(--skip-log-bin)
  setsid mariadbd --no-defaults $(galera_user_args) \
    --datadir="$N_DATA" --port="${!port_var}" --bind-address=127.0.0.1 --socket="$N_SOCK" \
    --pid-file="$N_PID" --log-error="$N_LOG" --tmpdir="$N_DATA.tmp" \
    --skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=128M --max-connections=300 \
    --binlog-format=ROW --innodb-autoinc-lock-mode=2 --default-storage-engine=InnoDB \
    --server-id="$n" "${binlog[@]}" \
    --wsrep-on=ON --wsrep-provider="$GALERA_PROVIDER" --wsrep-cluster-name=shadowcut \
    --wsrep-cluster-address="$gcomm" --wsrep-node-name="node$n" \
    --wsrep-node-address="127.0.0.1:${!g_var}" --wsrep-node-incoming-address="127.0.0.1:${!port_var}" \
    --wsrep-sst-receive-address="127.0.0.1:${!sst_var}" --wsrep-sst-method=rsync \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:${!g_var};ist.recv_addr=127.0.0.1:${!ist_var};gcache.size=64M;evs.inactive_timeout=PT6S;evs.suspect_timeout=PT3S;pc.wait_prim_timeout=PT20S" \
    --wsrep-slave-threads=2 \
    "$@" </dev/null >>"$N_LOG" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  LAUNCHED_PID=$!
  # Our own record beside the server's pid file (which belongs to the mysql user and is written late).
  echo "$LAUNCHED_PID" >"$N_PID.launched"
}

galera_synced() { # galera_synced <n>: the node is Synced in a primary component of all three
  galera_node_paths "$1"
  local st
  st=$(my_root "$N_SOCK" -e "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='wsrep_local_state_comment'), (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='wsrep_cluster_size')") || return 1
  [[ $st == $'Synced\t3' || $1 != 1 && $st == Synced* ]]
}

galera_all_answer() {
  [[ -f $GALERA_DIR/ports && -f $GALERA_DIR/env ]] || return 1
  # shellcheck source=/dev/null
  source "$GALERA_DIR/ports"
  local n port_var
  for n in "${GALERA_NODES[@]}"; do
    port_var="GA_PORT_$n"
    my_answers "${!port_var}" >/dev/null 2>&1 || return 1
  done
  galera_synced 1
}

galera_stop_all() {
  local n pid
  STOPPING=()
  # The joiners first, the bootstrap node last: a cluster that shrinks node by node shuts down cleanly.
  for n in 3 2 1; do
    galera_node_paths "$n"
    term_mariadbd "$N_DATA" "$N_PID.launched"
  done
  # A node waiting on a wedged cluster may never finish a clean shutdown: bounded, then SIGKILL.
  wait_mariadbd_stopped 20
  # The rsync SST's daemons and scripts, should a node have died mid-transfer: only those whose
  # command line names one of our nodes' files.
  local root
  root=$(galera_root)/nodes
  for pid in $(pgrep -f -- "$root/" 2>/dev/null || true); do
    [[ $pid != "$$" ]] && pid_is_ours "$pid" "$root/" && kill -KILL "$pid" 2>/dev/null || true
  done
  STOPPING=()
}

galera_wipe() {
  galera_ensure_ours
  local root
  root=$(cat "$GALERA_ROOT_FILE" 2>/dev/null || true)
  if [[ -n $root && -f $root/.shadowcut-servers ]]; then rm -rf "$root"; fi
  rm -rf "$GALERA_DIR"
}

galera_take_lock() {
  local lock
  lock="${TMPDIR:-/tmp}/shadowcut-galera.$(printf '%s' "$GALERA_DIR" | md5sum | cut -c1-12).lock"
  exec 9>"$lock"
  flock -w 300 9 || fail "could not lock $lock within 300s (another servers.sh galera-up/down running?)"
}

cmd_galera_up() {
  galera_take_lock
  if galera_all_answer; then
    log "Galera cluster in $GALERA_DIR already up; reusing it"
    cat "$GALERA_DIR/env"
    return 0
  fi
  if [[ -e $GALERA_DIR ]]; then
    galera_ensure_ours
    log "stale $GALERA_DIR (cluster not answering): stopping leftovers and starting fresh"
    galera_stop_all
    galera_wipe
  fi
  command -v mariadbd >/dev/null 2>&1 && galera_binaries_present || install_galera

  local t0=$SECONDS ports root
  mkdir -p "$GALERA_DIR"
  chmod 755 "$GALERA_DIR"
  touch "$GALERA_MARKER"
  if $AS_ROOT && ! runuser -u mysql -- test -x "$GALERA_DIR"; then
    root="/var/tmp/shadowcut-galera.$(printf '%s' "$GALERA_DIR" | md5sum | cut -c1-12)"
    [[ ! -e $root || -f $root/.shadowcut-servers ]] || fail "$root exists but was not created by servers.sh; refusing to touch it"
    rm -rf "$root"
    mkdir -p "$root"
    chmod 755 "$root"
    touch "$root/.shadowcut-servers"
    echo "$root" >"$GALERA_ROOT_FILE"
  fi
  root=$(galera_root)
  mkdir -p "$root/nodes"
  $AS_ROOT && chown mysql:mysql "$root/nodes"
  ports=$(pick_ports 12) || fail "could not find 12 free loopback ports"
  read -r GA_PORT_1 GA_PORT_2 GA_PORT_3 GA_GCOMM_1 GA_GCOMM_2 GA_GCOMM_3 GA_IST_1 GA_IST_2 GA_IST_3 GA_SST_1 GA_SST_2 GA_SST_3 <<<"$ports"
  local n v
  : >"$GALERA_DIR/ports"
  for v in PORT GCOMM IST SST; do
    for n in "${GALERA_NODES[@]}"; do
      local var="GA_${v}_$n"
      echo "$var=${!var}" >>"$GALERA_DIR/ports"
    done
  done

  trap 'rc=$?; if ((rc != 0)); then log "galera-up failed; stopping what was started (logs kept in $(galera_root)/nodes)"; galera_stop_all; fi' EXIT

  galera_node_paths 1
  log "Galera: initialising node 1"
  mariadb-install-db --no-defaults $(galera_user_args) --datadir="$N_DATA" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$root/nodes/install-db.log" 2>&1 || fail "mariadb-install-db failed" "$root/nodes/install-db.log"
  log "Galera: bootstrapping the cluster on node 1 (127.0.0.1:$GA_PORT_1)"
  galera_launch 1 --wsrep-new-cluster
  local pid1=$LAUNCHED_PID
  wait_until "Galera node 1 on port $GA_PORT_1" "$N_LOG" "$pid1" my_root "$N_SOCK" -e 'SELECT 1'
  # Replicated to the joiners by their state transfer.
  my_root "$N_SOCK" -e "
    CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
    GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
    CREATE DATABASE $DB_NAME;" || fail "could not create user/database on Galera node 1" "$N_LOG"
  # The joiners start with empty data dirs (owned by the server's user) and take node 1's state by
  # rsync; one at a time, since a donor serves one transfer at a time.
  for n in 2 3; do
    galera_node_paths "$n"
    mkdir -p "$N_DATA"
    $AS_ROOT && chown mysql:mysql "$N_DATA"
    log "Galera: node $n joins (127.0.0.1:$(v="GA_PORT_$n"; echo "${!v}"))"
    galera_launch "$n"
    wait_until "Galera node $n to join and sync" "$N_LOG" "$LAUNCHED_PID" galera_synced "$n"
  done
  wait_until "the Galera cluster to have 3 synced nodes" "$(galera_root)/nodes/node1.log" "$pid1" galera_synced 1

  local urls=() socks=()
  for n in "${GALERA_NODES[@]}"; do
    v="GA_PORT_$n"
    galera_node_paths "$n"
    urls+=("mysql://$DB_USER:$DB_PASS@127.0.0.1:${!v}/$DB_NAME")
    socks+=("$N_SOCK")
  done
  cat >"$GALERA_DIR/env.tmp" <<EOF
export SHADOWCUT_GALERA_URLS=$(IFS=,; echo "${urls[*]}")
export SHADOWCUT_GALERA_SOCKETS=$(IFS=,; echo "${socks[*]}")
EOF
  mv "$GALERA_DIR/env.tmp" "$GALERA_DIR/env"
  trap - EXIT
  log "Galera cluster up in $((SECONDS - t0))s (state: $GALERA_DIR)"
  cat "$GALERA_DIR/env"
}

cmd_galera_down() {
  galera_take_lock
  if [[ ! -e $GALERA_DIR ]]; then
    log "no Galera cluster to stop ($GALERA_DIR does not exist)"
    return 0
  fi
  galera_ensure_ours
  [[ -f $GALERA_DIR/ports ]] && source "$GALERA_DIR/ports"
  log "stopping the Galera cluster in $GALERA_DIR"
  galera_stop_all
  galera_wipe
  log "Galera down"
}

cmd_galera_env() {
  if galera_all_answer; then
    cat "$GALERA_DIR/env"
  else
    log "the Galera cluster in $GALERA_DIR is not up"
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------

cmd_up() {
  take_lock
  if all_answer; then
    log "servers in $STATE_DIR already up; reusing them"
    cat "$ENV_FILE"
    return 0
  fi
  if [[ -e $STATE_DIR ]]; then
    ensure_ours
    log "stale $STATE_DIR (servers not all answering): stopping leftovers and starting fresh"
    stop_all
    wipe_state_dir
  fi

  binaries_present || install_binaries
  PG_BIN=$(pg_bin_dir)

  local t0=$SECONDS ports
  mkdir -p "$STATE_DIR"
  chmod 755 "$STATE_DIR" # postgres must be able to traverse it to reach pg/
  touch "$MARKER"
  set_pg_paths "$STATE_DIR/pg"
  choose_data_root

  # Unix socket paths are limited to ~107 bytes; the longest one we create is the PG lock file.
  local longest="$PG_DIR/.s.PGSQL.99999.lock"
  ((${#longest} < 100)) || fail "state dir path too long for unix sockets: $STATE_DIR (set SHADOWCUT_SERVERS_DIR to a shorter path)"
  ports=$(pick_ports 6) || fail "could not find 6 free loopback ports"
  read -r MY_P_PORT MY_R_PORT MY_PL_PORT PG_P_PORT PG_S_PORT PG_PL_PORT <<<"$ports"
  cat >"$PORTS_FILE" <<EOF
MY_P_PORT=$MY_P_PORT
MY_R_PORT=$MY_R_PORT
MY_PL_PORT=$MY_PL_PORT
PG_P_PORT=$PG_P_PORT
PG_S_PORT=$PG_S_PORT
PG_PL_PORT=$PG_PL_PORT
PG_BIN=$PG_BIN
EOF

  # A half-started set is useless and would leak processes: stop it on any failure but keep
  # the dir (logs) for inspection; the next `up` wipes it.
  trap 'rc=$?; if ((rc != 0)); then log "up failed; stopping what was started (logs kept in $STATE_DIR)"; stop_all; fi' EXIT

  start_mysql
  start_pg
  write_env
  trap - EXIT
  log "all servers up in $((SECONDS - t0))s (state: $STATE_DIR)"
  cat "$ENV_FILE"
}

cmd_down() {
  take_lock
  if [[ ! -e $STATE_DIR ]]; then
    log "nothing to stop ($STATE_DIR does not exist)"
    return 0
  fi
  ensure_ours
  log "stopping servers in $STATE_DIR"
  stop_all
  wipe_state_dir
  log "down"
}

cmd_env() {
  if all_answer; then
    cat "$ENV_FILE"
  else
    log "servers in $STATE_DIR are not up"
    exit 1
  fi
}

# Debian's Chromium, for the test that opens the report page and the live page in a real browser.
cmd_chromium() {
  local lock="${TMPDIR:-/tmp}/shadowcut-chromium.lock"
  exec 8>"$lock"
  flock -w 600 8 || fail "could not lock $lock within 600s (another install of chromium running?)"
  if ! command -v chromium >/dev/null 2>&1; then
    log "chromium missing: installing Debian's chromium package"
    [[ $EUID -eq 0 ]] || fail "need root to apt-get install chromium"
    apt_install_quietly chromium
  fi
  command -v chromium
}

case "${1:-}" in
up) cmd_up ;;
chromium) cmd_chromium ;;
down) cmd_down ;;
env) cmd_env ;;
galera-up) cmd_galera_up ;;
galera-down) cmd_galera_down ;;
galera-env) cmd_galera_env ;;
*)
  echo "usage: $0 up|down|env|galera-up|galera-down|galera-env|chromium" >&2
  exit 2
  ;;
esac
