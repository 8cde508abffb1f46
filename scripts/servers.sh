#!/usr/bin/env bash
# Private database servers for shadowcut's tests, demo and bench.
#
#   scripts/servers.sh up     start (or reuse) the servers scripts/servers.topology lists (or
#                             $SHADOWCUT_SERVERS_TOPOLOGY): a MariaDB primary+replica and a PostgreSQL
#                             primary+standby configured for change capture, plus a MariaDB and a
#                             PostgreSQL "as they come" (no binlog, wal_level=replica) whose login
#                             owns its database and nothing more
#   scripts/servers.sh down   stop them and remove the state dir
#   scripts/servers.sh env    print the sourceable env file if the servers answer, else exit 1
#   scripts/servers.sh galera-up    start (or reuse) a three-node MariaDB Galera cluster (its own state
#                                   dir, ${SHADOWCUT_GALERA_DIR:-<repo>/.servers-galera}); prints its env lines
#   scripts/servers.sh galera-down  stop its nodes (SIGKILL after a bound) and remove its state dir
#   scripts/servers.sh chromium     print the path of Debian's Chromium (for the report page's browser
#                                   test), installing the package first when it is missing
#
# SHADOWCUT_SERVERS_DURABILITY=relaxed (the default, for the tests and the demo) starts every server
# with commits that do not wait for the disk; =durable starts every one (replicas, standbys and Galera
# nodes too) as DBAs run them: MariaDB innodb_flush_log_at_trx_commit=1 and sync_binlog=1, PostgreSQL
# fsync, full_page_writes and synchronous_commit on. The bench asks for durable servers.
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

PORTS_FILE="$STATE_DIR/ports"
ENV_FILE="$STATE_DIR/env"
JSON_FILE="$STATE_DIR/servers.json"
# The set as `up` read it, kept so that `down` and `env` act on what was started even when the
# checkout's list has changed since.
TOPOLOGY="${SHADOWCUT_SERVERS_TOPOLOGY:-$REPO_DIR/scripts/servers.topology}"
STARTED_TOPOLOGY="$STATE_DIR/topology"
MY_DIR="$STATE_DIR/mysql"

# As root, the servers run as the postgres OS user (initdb and postgres refuse root) and mariadbd
# with --user=root; as anyone else, both run as that user.
AS_ROOT=false; [[ $EUID -eq 0 ]] && AS_ROOT=true
# Where PostgreSQL's files go. Inside the state dir when the postgres user can reach it; a clone in
# a private directory (mode 0700, like root's home) cannot be, so then a directory of its own under
# /var/tmp, named after the state dir, recorded here so that `env` and `down` find it.
PG_DIR="$(cat "$STATE_DIR/data-root" 2>/dev/null || echo "$STATE_DIR")/pg" # owned by the postgres OS user when root

DB_NAME=shadowcut_test
DB_USER=shadowcut
DB_PASS=shadowcut
# On the servers of role owner the same name is a table owner's login: no replication privileges, no superuser.
log() { printf '[servers] %s\n' "$*" >&2; }

# What every server gets last, so that it wins over the settings before it: mariadbd takes the last
# occurrence of an option, and PostgreSQL the last line of postgresql.conf. Durable is what the
# servers ship with (MySQL 8's defaults for MariaDB); relaxed adds nothing to the relaxed settings
# below (MARIADB_EVERY, PG_EVERY, the Galera nodes').
DURABILITY="${SHADOWCUT_SERVERS_DURABILITY:-relaxed}"
MARIADB_LAST=() PG_LAST=()
case $DURABILITY in
relaxed) ;;
durable)
  MARIADB_LAST=(--innodb-flush-log-at-trx-commit=1 --sync-binlog=1)
  PG_LAST=(fsync=on synchronous_commit=on full_page_writes=on)
  ;;
*)
  printf '[servers] ERROR: SHADOWCUT_SERVERS_DURABILITY must be durable or relaxed (got "%s")\n' "$DURABILITY" >&2
  exit 2
  ;;
esac

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

# Refuse to touch, let alone rm -rf, a directory we didn't create: SHADOWCUT_SERVERS_DIR and
# SHADOWCUT_GALERA_DIR could point anywhere. Each state dir holds the marker file.
ensure_ours() { # ensure_ours <state dir>
  [[ ! -e $1 || -f $1/.shadowcut-servers || -z $(ls -A "$1" 2>/dev/null) ]] ||
    fail "$1 exists but was not created by servers.sh; refusing to touch it"
}

# A state dir the server's OS user (postgres, mysql) cannot reach, such as a clone in root's private
# home, gets the servers' files in a directory of its own under /var/tmp, named after it and recorded
# in its data-root file, so that `env` and `down` find them. Prints where the files go.
data_root() { # data_root <state dir> <OS user> <what: servers, galera>
  local root
  if ! $AS_ROOT || runuser -u "$2" -- test -x "$1"; then echo "$1"; return 0; fi
  root="/var/tmp/shadowcut-$3.$(printf '%s' "$1" | md5sum | cut -c1-12)"
  [[ ! -e $root || -f $root/.shadowcut-servers ]] || fail "$root exists but was not created by servers.sh; refusing to touch it"
  rm -rf "$root"
  mkdir -p "$root"
  chmod 755 "$root"
  touch "$root/.shadowcut-servers"
  echo "$root" >"$1/data-root"
  log "the $2 OS user cannot reach $1; its servers' files go to $root"
  echo "$root"
}

wipe() { # wipe <state dir>: it and its data root
  ensure_ours "$1"
  local root
  root=$(cat "$1/data-root" 2>/dev/null || true)
  if [[ -n $root && -f $root/.shadowcut-servers ]]; then rm -rf "$root"; fi
  rm -rf "$1"
}

# Serialise up/down on one state dir (e.g. two test runs starting at once); long enough for a
# concurrent first-time `up` that has to apt-get install.
take_lock() { # take_lock <state dir>
  local lock
  lock="${TMPDIR:-/tmp}/shadowcut-servers-v2.$(printf '%s' "$1" | md5sum | cut -c1-12).lock"
  exec 9>"$lock"
  flock -w 300 9 || fail "could not lock $lock within 300s (another servers.sh up/down running?)"
}


# ---------------------------------------------------------------------------------------
# the set: scripts/servers.topology, read into these arrays by name
# ---------------------------------------------------------------------------------------

NAMES=()
declare -A ENGINE ROLE OF SETTINGS PORT

read_topology() { # read_topology <file>
  local name engine role of settings
  while read -r name engine role of settings; do
    [[ -z $name || $name == \#* ]] && continue
    [[ $engine == mariadb || $engine == postgres ]] || fail "$1: $name: engine $engine is not mariadb or postgres"
    case $engine/$role in
    */primary | */owner | mariadb/replica | postgres/standby) ;;
    *) fail "$1: $name: a $engine server has no role $role" ;;
    esac
    if [[ $role == replica || $role == standby ]]; then
      [[ -n ${ENGINE[$of]:-} && ${ENGINE[$of]} == "$engine" ]] || fail "$1: $name follows $of, which is not a $engine server listed above it"
    fi
    NAMES+=("$name")
    ENGINE[$name]=$engine ROLE[$name]=$role OF[$name]=$of SETTINGS[$name]=$settings
  done <"$1"
}

# The ports file says each server's port (PORT_<name>=) and PG_BIN; sourced, it is read into PORT.
read_ports() {
  [[ -f $PORTS_FILE ]] || return 1
  # shellcheck source=/dev/null
  source "$PORTS_FILE" || return 1
  local name var
  for name in "${NAMES[@]}"; do
    var="PORT_$name"
    [[ -n ${!var:-} ]] || return 1
    PORT[$name]=${!var}
  done
}

# Names of the servers of one engine, in the list's order.
of_engine() { local n; for n in "${NAMES[@]}"; do [[ ${ENGINE[$n]} == "$1" ]] && echo "$n"; done; return 0; }

# A setting written "?--name=value" is kept where mariadbd's help names the option. Called in a
# subshell (mapfile < <(...)), so the help is read at most once per server, not once per run.
mariadb_settings() { # mariadb_settings <name>: its settings, one per line
  local s MARIADBD_HELP=""
  for s in ${SETTINGS[$1]}; do
    if [[ $s == \?* ]]; then
      s=${s#\?}
      [[ -n $MARIADBD_HELP ]] || MARIADBD_HELP=$(mariadbd --no-defaults --verbose --help 2>/dev/null || true)
      grep -q "^ *${s%%=*}[ =]" <<<"$MARIADBD_HELP" || continue
    fi
    echo "$s"
  done
}

# ---------------------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------------------

# What every MariaDB gets: no system my.cnf (the system instance's), loopback, utf8mb4 as DBAs set it,
# no DNS, and a commit that does not wait for the disk (test data) unless MARIADB_LAST says otherwise.
MARIADB_EVERY=(--skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
  --innodb-flush-log-at-trx-commit=2)

my_data() { echo "$MY_DIR/$1"; }
my_sock() { echo "$MY_DIR/$1.sock"; }

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
    --pid-file="$pidf" --log-error="$logf" --tmpdir="$data.tmp" "${MARIADB_EVERY[@]}" \
    "$@" "${MARIADB_LAST[@]}" </dev/null >>"$logf" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  # Non-interactive bash doesn't make background jobs group leaders, so setsid execs in
  # place and $! is mariadbd itself; it rewrites the same pid into this file.
  LAUNCHED_PID=$!
  echo "$LAUNCHED_PID" >"$pidf"
}

# One install-db, copied for every server: identical system tables on all sides, so a replica can
# replay its primary's binlog from the very first event (CREATE USER etc.).
init_mariadb() {
  local names template=$MY_DIR/template n
  mapfile -t names < <(of_engine mariadb)
  ((${#names[@]})) || return 0
  log "MariaDB: initialising data dir"
  mkdir -p "$MY_DIR"
  mariadb-install-db --no-defaults $(my_user_args) --datadir="$template" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$MY_DIR/install-db.log" 2>&1 || fail "mariadb-install-db failed" "$MY_DIR/install-db.log"
  for n in "${names[@]:1}"; do cp -a "$template" "$(my_data "$n")"; done
  mv "$template" "$(my_data "${names[0]}")"
}

launch_mariadb() { # launch_mariadb <name>; sets LAUNCHED_PID
  local n=$1 settings
  mapfile -t settings < <(mariadb_settings "$n")
  log "MariaDB: starting $n (${ROLE[$n]}) on 127.0.0.1:${PORT[$n]}"
  launch_mariadbd "$(my_data "$n")" "${PORT[$n]}" "$(my_sock "$n")" "$MY_DIR/$n.pid" "$MY_DIR/$n.log" "${settings[@]}"
}

replica_running() { # replica_running <name>
  local st sock
  sock=$(my_sock "$1")
  # --column-names -E: "Field: value" lines (my_root's -N would strip the field names).
  st=$(my_root "$sock" --column-names -E -e 'SHOW SLAVE STATUS') || return 1
  grep -q 'Slave_IO_Running: Yes' <<<"$st" &&
    grep -q 'Slave_SQL_Running: Yes' <<<"$st" &&
    [[ $(my_root "$sock" -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$DB_NAME'") == 1 ]]
}

setup_mariadb() { # setup_mariadb <name>: what its role asks of a server that answers
  local n=$1 sock logf
  sock=$(my_sock "$n") logf="$MY_DIR/$n.log"
  case ${ROLE[$n]} in
  primary)
    # A primary's statements are in its binlog, so they reach its replicas.
    my_root "$sock" -e "
      CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
      GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
      CREATE DATABASE $DB_NAME;" || fail "could not create user/database on MariaDB $n" "$logf"
    ;;
  replica)
    # Empty gtid_slave_pos + slave_pos = "from the start of the primary's binlog history".
    my_root "$sock" -e "
      CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${PORT[${OF[$n]}]},
        MASTER_USER='$DB_USER', MASTER_PASSWORD='$DB_PASS',
        MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
      START SLAVE;" || fail "CHANGE MASTER/START SLAVE failed on MariaDB $n" "$logf"
    ;;
  owner)
    # What a table owner has: everything on its database, nothing on replication. PROCESS as a
    # primary's user has it (it lets shadowcut read InnoDB's ids to prove a change in place).
    my_root "$sock" -e "
      CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
      CREATE DATABASE $DB_NAME;
      GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'%';
      GRANT PROCESS ON *.* TO '$DB_USER'@'%';" || fail "could not create user/database on MariaDB $n" "$logf"
    ;;
  esac
}

# mariadbd takes ~2 s to shut down, so `down` signals every one and waits once, overlapping
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

# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

# What every PostgreSQL gets beyond initdb's defaults: loopback, its socket beside its files, and no
# durability a test needs not (PG_LAST, written after the server's own settings, puts it back). Appended
# after initdb's, so they win; a standby inherits its primary's through the base backup and overrides
# only the port.
PG_EVERY=(listen_addresses="'127.0.0.1'" fsync=off synchronous_commit=off full_page_writes=off)

pg_data() { echo "$PG_DIR/$1"; }

pg_conf() { # pg_conf <name>: its postgresql.conf lines
  local s
  echo
  echo "# --- shadowcut private test server $1 (scripts/servers.topology) ---"
  echo "port = ${PORT[$1]}"
  echo "unix_socket_directories = '$PG_DIR'"
  for s in "${PG_EVERY[@]}" ${SETTINGS[$1]} "${PG_LAST[@]}"; do echo "${s%%=*} = ${s#*=}"; done
}

pg_launch() { # pg_launch <name>: starts it without waiting (pg_answers tells when it does)
  local data log as_postgres=()
  data=$(pg_data "$1") log="$PG_DIR/$1.log"
  $AS_ROOT && as_postgres=(runuser -u postgres --)
  log "PostgreSQL: starting $1 (${ROLE[$1]}) on 127.0.0.1:${PORT[$1]}"
  # setsid and the closed descriptors for the same reasons as mariadbd.
  if ! (cd "$PG_DIR" && setsid "${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$data" -l "$log" -W start) >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; then
    fail "PostgreSQL $1 did not start" "$log"
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

standby_ready() { # standby_ready <port>
  [[ $(psql_at "$1" "$DB_NAME" 'SELECT pg_is_in_recovery()') == t ]] &&
    [[ $(psql_at "$1" "$DB_NAME" 'SELECT count(*) FROM pg_stat_wal_receiver WHERE status = $$streaming$$') == 1 ]]
}

# One initdb, copied for every server that is not a standby (a standby is its primary's base backup).
init_postgres() {
  local names=() template n
  for n in $(of_engine postgres); do [[ ${ROLE[$n]} == standby ]] || names+=("$n"); done
  ((${#names[@]})) || return 0
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
  template=$(pg_data template)
  pg initdb -D "$template" --auth=trust -U postgres --encoding=UTF8 --locale="$locale" --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || fail "initdb failed" "$PG_DIR/initdb.log"
  for n in "${names[@]:1}"; do cp -a "$template" "$(pg_data "$n")"; done
  mv "$template" "$(pg_data "${names[0]}")"
  for n in "${names[@]}"; do pg_conf "$n" >>"$(pg_data "$n")/postgresql.conf"; done
}

setup_postgres() { # setup_postgres <name>: what its role asks of a server that answers (a standby: to be made)
  local n=$1 logf="$PG_DIR/$1.log"
  case ${ROLE[$n]} in
  primary)
    # Before its standbys' base backups, so they have the database from the start.
    psql_at "${PORT[$n]}" postgres "CREATE DATABASE $DB_NAME" >/dev/null || fail "could not create database $DB_NAME on PostgreSQL $n" "$logf"
    ;;
  standby)
    log "PostgreSQL: pg_basebackup of ${OF[$n]} for $n"
    pg pg_basebackup -h 127.0.0.1 -p "${PORT[${OF[$n]}]}" -U postgres -D "$(pg_data "$n")" \
      -R -X stream -c fast --no-sync >"$PG_DIR/$n.basebackup.log" 2>&1 ||
      fail "pg_basebackup failed" "$PG_DIR/$n.basebackup.log" "$PG_DIR/${OF[$n]}.log"
    printf '\nport = %s\n' "${PORT[$n]}" >>"$(pg_data "$n")/postgresql.conf"
    pg_launch "$n"
    ;;
  owner)
    # A table owner's login: owns the database, and so (PostgreSQL 15+) may create in its public schema.
    psql_at "${PORT[$n]}" postgres "CREATE ROLE $DB_USER LOGIN NOSUPERUSER NOREPLICATION PASSWORD '$DB_PASS'" >/dev/null &&
      psql_at "${PORT[$n]}" postgres "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null ||
      fail "could not create role/database on PostgreSQL $n" "$logf"
    ;;
  esac
}

# ---------------------------------------------------------------------------------------
# the set's life
# ---------------------------------------------------------------------------------------

# Every server launched as soon as its engine's files are made, each set up when it answers, in the
# list's order (a primary before what follows it), then the replicas and standbys waited for: the
# boots overlap one another and the other engine's initdb.
start_set() {
  local n
  declare -A pid
  init_mariadb
  for n in $(of_engine mariadb); do
    launch_mariadb "$n"
    pid[$n]=$LAUNCHED_PID
  done
  init_postgres
  for n in $(of_engine postgres); do
    [[ ${ROLE[$n]} == standby ]] || pg_launch "$n"
  done
  for n in "${NAMES[@]}"; do
    if [[ ${ENGINE[$n]} == mariadb ]]; then
      wait_until "MariaDB $n on port ${PORT[$n]}" "$MY_DIR/$n.log" "${pid[$n]}" my_root "$(my_sock "$n")" -e 'SELECT 1'
      setup_mariadb "$n"
    else
      [[ ${ROLE[$n]} == standby ]] || wait_until "PostgreSQL $n on port ${PORT[$n]}" "$PG_DIR/$n.log" "" psql_at "${PORT[$n]}" postgres 'SELECT 1'
      setup_postgres "$n"
    fi
  done
  for n in "${NAMES[@]}"; do
    case ${ROLE[$n]} in
    replica) wait_until "MariaDB $n to replicate $DB_NAME from ${OF[$n]}" "$MY_DIR/$n.log" "${pid[$n]}" replica_running "$n" ;;
    standby) wait_until "PostgreSQL $n to stream from ${OF[$n]}" "$PG_DIR/$n.log" "" standby_ready "${PORT[$n]}" ;;
    esac
  done
}

all_answer() {
  [[ -f $STARTED_TOPOLOGY && -f $ENV_FILE && -f $JSON_FILE ]] || return 1
  read_ports || return 1
  [[ -n ${PG_BIN:-} && -x $PG_BIN/psql ]] || return 1
  local n
  for n in "${NAMES[@]}"; do
    if [[ ${ENGINE[$n]} == mariadb ]]; then
      my_answers "${PORT[$n]}" >/dev/null 2>&1 || return 1
    else
      pg_answers "${PORT[$n]}" 2>/dev/null || return 1
    fi
  done
}

stop_all() {
  read_ports || true
  PG_BIN=${PG_BIN:-$(pg_bin_dir || true)}
  local i n
  # Replicas and standbys first (the list's end), so they don't spend the primary's shutdown retrying connections.
  for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do
    n=${NAMES[i]}
    if [[ ${ENGINE[$n]} == mariadb ]]; then term_mariadbd "$(my_data "$n")" "$MY_DIR/$n.pid"; else pg_stop "$(pg_data "$n")"; fi
  done
  wait_mariadbd_stopped
}

# mysqlReplica -> MYSQL_REPLICA
env_name() { sed -E 's/([a-z0-9])([A-Z])/\1_\2/g' <<<"$1" | tr '[:lower:]' '[:upper:]'; }

server_url() { # server_url <name>: how the tests log in
  local n=$1
  if [[ ${ENGINE[$n]} == mariadb ]]; then
    echo "mysql://$DB_USER:$DB_PASS@127.0.0.1:${PORT[$n]}/$DB_NAME"
  elif [[ ${ROLE[$n]} == owner ]]; then
    echo "postgres://$DB_USER:$DB_PASS@127.0.0.1:${PORT[$n]}/$DB_NAME"
  else
    echo "postgres://postgres@127.0.0.1:${PORT[$n]}/$DB_NAME"
  fi
}

write_env() {
  local n var json=""
  : >"$ENV_FILE.tmp"
  for n in "${NAMES[@]}"; do
    var="SHADOWCUT_$(env_name "$n")"
    echo "export ${var}_URL=$(server_url "$n")" >>"$ENV_FILE.tmp"
    [[ ${ENGINE[$n]} == mariadb ]] && echo "export ${var}_SOCKET=$(my_sock "$n")" >>"$ENV_FILE.tmp"
    json+="${json:+,}\"${n}Url\":\"$(server_url "$n")\""
  done
  echo "{$json}" >"$JSON_FILE.tmp"
  # Written last and atomically: their presence is what marks a complete `up`.
  mv "$JSON_FILE.tmp" "$JSON_FILE"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------
# Galera: three MariaDB nodes in one cluster (tests of what shadowcut does on one)
# ---------------------------------------------------------------------------------------

GALERA_DIR="${SHADOWCUT_GALERA_DIR:-$REPO_DIR/.servers-galera}"
mkdir -p "$(dirname "$GALERA_DIR")"
GALERA_DIR="$(cd "$(dirname "$GALERA_DIR")" && pwd)/$(basename "$GALERA_DIR")"
GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
GALERA_NODES=(1 2 3)
# Where the nodes' files go: inside the state dir when the mysql OS user can reach it, else a
# directory of its own under /var/tmp, recorded here (as PostgreSQL's are, above).
galera_root() { cat "$GALERA_DIR/data-root" 2>/dev/null || echo "$GALERA_DIR"; }

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
  # know in seconds. gcache small, no fsync (test data) unless MARIADB_LAST asks for it. Nodes 1 and 2
  # keep a binlog of the whole cluster's writes (log_slave_updates), in the cluster's order, as shops
  # that back up or feed asynchronous replicas from a node do; node 3 has none, as Galera nodes often
  # run (Galera needs none), and as the cluster of the issue 34 report did: there shadowcut follows
  # changes by triggers.
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
    "$@" "${MARIADB_LAST[@]}" </dev/null >>"$N_LOG" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
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

cmd_galera_up() {
  take_lock "$GALERA_DIR"
  if galera_all_answer; then
    log "Galera cluster in $GALERA_DIR already up; reusing it"
    cat "$GALERA_DIR/env"
    return 0
  fi
  if [[ -e $GALERA_DIR ]]; then
    ensure_ours "$GALERA_DIR"
    log "stale $GALERA_DIR (cluster not answering): stopping leftovers and starting fresh"
    galera_stop_all
    wipe "$GALERA_DIR"
  fi
  command -v mariadbd >/dev/null 2>&1 && galera_binaries_present || install_galera

  local t0=$SECONDS ports root
  mkdir -p "$GALERA_DIR"
  chmod 755 "$GALERA_DIR"
  touch "$GALERA_DIR/.shadowcut-servers"
  root=$(data_root "$GALERA_DIR" mysql galera)
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
  take_lock "$GALERA_DIR"
  if [[ ! -e $GALERA_DIR ]]; then
    log "no Galera cluster to stop ($GALERA_DIR does not exist)"
    return 0
  fi
  ensure_ours "$GALERA_DIR"
  [[ -f $GALERA_DIR/ports ]] && source "$GALERA_DIR/ports"
  log "stopping the Galera cluster in $GALERA_DIR"
  galera_stop_all
  wipe "$GALERA_DIR"
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
  take_lock "$STATE_DIR"
  if [[ -f $STARTED_TOPOLOGY ]]; then read_topology "$STARTED_TOPOLOGY"; fi
  if all_answer; then
    log "servers in $STATE_DIR already up; reusing them"
    cat "$ENV_FILE"
    return 0
  fi
  if [[ -e $STATE_DIR ]]; then
    ensure_ours "$STATE_DIR"
    log "stale $STATE_DIR (servers not all answering): stopping leftovers and starting fresh"
    stop_all
    wipe "$STATE_DIR"
  fi
  NAMES=() ENGINE=() ROLE=() OF=() SETTINGS=() PORT=()
  read_topology "$TOPOLOGY"

  binaries_present || install_binaries
  PG_BIN=$(pg_bin_dir)

  local t0=$SECONDS ports n
  mkdir -p "$STATE_DIR"
  chmod 755 "$STATE_DIR" # postgres must be able to traverse it to reach pg/
  touch "$STATE_DIR/.shadowcut-servers" # proves the dir is ours before we rm -rf it
  cp "$TOPOLOGY" "$STARTED_TOPOLOGY"
  id postgres >/dev/null 2>&1 || fail "there is no postgres OS user to run PostgreSQL as (is the postgresql package installed?)"
  PG_DIR="$(data_root "$STATE_DIR" postgres servers)/pg"

  # Unix socket paths are limited to ~107 bytes; the longest one we create is the PG lock file.
  local longest="$PG_DIR/.s.PGSQL.99999.lock"
  ((${#longest} < 100)) || fail "state dir path too long for unix sockets: $STATE_DIR (set SHADOWCUT_SERVERS_DIR to a shorter path)"
  ports=$(pick_ports "${#NAMES[@]}") || fail "could not find ${#NAMES[@]} free loopback ports"
  read -r -a ports <<<"$ports"
  : >"$PORTS_FILE"
  for n in "${NAMES[@]}"; do
    PORT[$n]=${ports[0]}
    ports=("${ports[@]:1}")
    echo "PORT_$n=${PORT[$n]}" >>"$PORTS_FILE"
  done
  echo "PG_BIN=$PG_BIN" >>"$PORTS_FILE"

  # A half-started set is useless and would leak processes: stop it on any failure but keep
  # the dir (logs) for inspection; the next `up` wipes it.
  trap 'rc=$?; if ((rc != 0)); then log "up failed; stopping what was started (logs kept in $STATE_DIR)"; stop_all; fi' EXIT

  start_set
  write_env
  trap - EXIT
  log "all servers up in $((SECONDS - t0))s (state: $STATE_DIR)"
  cat "$ENV_FILE"
}

cmd_down() {
  take_lock "$STATE_DIR"
  if [[ ! -e $STATE_DIR ]]; then
    log "nothing to stop ($STATE_DIR does not exist)"
    return 0
  fi
  ensure_ours "$STATE_DIR"
  # A set started before the list was kept with it is stopped by the checkout's list.
  read_topology "$([[ -f $STARTED_TOPOLOGY ]] && echo "$STARTED_TOPOLOGY" || echo "$TOPOLOGY")"
  log "stopping servers in $STATE_DIR"
  stop_all
  wipe "$STATE_DIR"
  log "down"
}

cmd_env() {
  if [[ -f $STARTED_TOPOLOGY ]] && read_topology "$STARTED_TOPOLOGY" && all_answer; then
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
