#!/usr/bin/env bash
# End-to-end test of the workflow on a real single-node Slurm cluster.
#
# Installs Slurm 22.05 + MUNGE + slurmdbd/MariaDB from Debian 12 packages (when missing), starts
# private daemons (own ports, sockets and state under a temporary folder, so that nothing else on
# the machine is touched), runs the workflow on a small synthetic cohort with
#   snakemake --profile profiles/slurm <CI overrides>
# checks that every job went through sbatch (accounting records + the plugin's Slurm logs) and
# that the key tables equal those of a local run, then stops the daemons it started, by PID.
#
# Why slurmdbd + MariaDB rather than `slurm-status-command: squeue`: the shipped profile asks for
# job status with sacct (what sites with accounting have), so the test runs that path unchanged;
# the accounting records are also the evidence that jobs ran under Slurm.  It costs a few seconds.
#
# Skips (exit 0, "SKIP ..." on stdout) when not root or when the packages cannot be installed.
# Usage: tests/slurm/run-slurm-e2e.sh        (env: PYTHON, E2E_SEED, E2E_KEEP=1 keeps the folder)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
SEED=${E2E_SEED:-5}
T0=$(date +%s)
say() { echo "[slurm-e2e $(($(date +%s) - T0))s] $*"; }
skip() { echo "SKIP slurm e2e: $*"; exit 0; }

[ "$(id -u)" -eq 0 ] || skip "needs root (installs packages and starts Slurm daemons)"
command -v apt-get >/dev/null 2>&1 || skip "apt-get not found (the script installs Debian 12 packages)"

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import snakemake, snakemake_executor_plugin_slurm, cmr_atlas" \
    || { echo "FAIL: $PY lacks snakemake, the slurm executor plugin or cmr_atlas"; exit 1; }

WORK=$(mktemp -d /tmp/cmr-slurm-e2e.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK"/{etc,log,state,spool,munge,db,run}
PIDS=()
cleanup() {
    local rc=$?
    set +e  # clean up as much as possible, whatever fails
    # cancel this cluster's jobs first: slurmstepd outlives slurmd, so jobs still running when the
    # daemons stop would be orphaned
    if [ -n "${SLURM_CONF:-}" ] && scontrol ping 2>/dev/null | grep -q UP; then
        scancel --full --user=root 2>/dev/null || true
        for _ in $(seq 75); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
        # whatever is left of the job steps: their processes, as slurmd lists them
        STEP_PIDS=$(scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}')
        [ -n "$STEP_PIDS" ] && kill $STEP_PIDS 2>/dev/null
    fi
    # stop what this script started, newest first; SIGTERM, then SIGKILL after 10 s
    # (a negative entry is a process group: the input generator and its children)
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -- "${PIDS[i]}" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 -- "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 -- "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        echo "--- logs (last lines) ---"
        for f in "$WORK"/log/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }; done
    fi
    if [ "${E2E_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
    say "done (exit $rc)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages -------------------------------------------------------------------------------------
PKGS="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
if ! { command -v slurmctld && command -v slurmd && command -v slurmdbd && command -v sbatch \
       && command -v munged && command -v mariadbd; } >/dev/null 2>&1; then
    say "installing $PKGS"
    export DEBIAN_FRONTEND=noninteractive
    # never start services from package scripts (no systemd here; we start our own daemons)
    POLICY=/usr/sbin/policy-rc.d; ADDED_POLICY=0
    if [ ! -e "$POLICY" ]; then printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; ADDED_POLICY=1; fi
    ok=0
    timeout 300 apt-get install -y -q --no-install-recommends $PKGS >"$WORK/log/apt.log" 2>&1 && ok=1
    if [ $ok = 0 ]; then
        timeout 180 apt-get update -q >>"$WORK/log/apt.log" 2>&1 \
            && timeout 300 apt-get install -y -q --no-install-recommends $PKGS >>"$WORK/log/apt.log" 2>&1 && ok=1
    fi
    [ $ADDED_POLICY = 1 ] && rm -f "$POLICY"
    [ $ok = 1 ] || { tail -n 5 "$WORK/log/apt.log"; rm -rf "$WORK"; trap - EXIT; skip "apt cannot install $PKGS (offline?)"; }
fi

# --- inputs, made while the cluster starts ------------------------------------------------------
say "synthetic cohort (3 exams, seed $SEED) and tiny untrained models"
# own process group (setsid), so that cleanup can stop it and its children at once
setsid "$PY" -c "
import subprocess, sys
subprocess.run([sys.executable, '-m', 'cmr_atlas', 'synth', '--n-exams', '3', '--seed', '$SEED',
                '--observers', '2', '--jobs', '2', '--out', '$WORK/cohort'], check=True)
subprocess.run([sys.executable, '$REPO/tests/slurm/tiny_models.py', '$WORK/models'], check=True)
" >"$WORK/log/inputs.log" 2>&1 &
INPUTS_PID=$!
PIDS+=("-$INPUTS_PID")

# --- daemons --------------------------------------------------------------------------------------
read -r P_CTLD P_SLURMD P_DBD P_SQL < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
NODE=$(hostname -s)
NCPU=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
CLUSTER=cmrci$$
MSOCK=$WORK/munge/munge.sock

if [ ! -s /etc/munge/munge.key ]; then mungekey -c -k /etc/munge/munge.key; chown munge: /etc/munge/munge.key; fi
chown munge: "$WORK/munge"
runuser -u munge -- /usr/sbin/munged --foreground --socket="$MSOCK" --pid-file="$WORK/munge/munged.pid" \
    --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/munged.seed" >"$WORK/log/munged.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$MSOCK" ] && break; sleep 0.1; done
munge -S "$MSOCK" -n | unmunge -S "$MSOCK" >/dev/null || { echo "FAIL: munge does not work"; exit 1; }

say "MariaDB + slurmdbd (ports $P_SQL, $P_DBD)"
mariadb-install-db --no-defaults --user=root --datadir="$WORK/db" --auth-root-authentication-method=normal \
    --skip-test-db >"$WORK/log/mariadb-install.log" 2>&1
# private, throw-away database on 127.0.0.1 only; grant tables skipped: no users to create
mariadbd --no-defaults --user=root --datadir="$WORK/db" --socket="$WORK/run/mysql.sock" --port="$P_SQL" \
    --bind-address=127.0.0.1 --pid-file="$WORK/run/mariadb.pid" --skip-grant-tables \
    --log-error="$WORK/log/mariadb.log" >"$WORK/log/mariadb.out" 2>&1 &
PIDS+=($!)

cat >"$WORK/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$P_DBD
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$P_SQL
StorageUser=root
StorageLoc=slurm_acct_db_$CLUSTER
LogFile=$WORK/log/slurmdbd.log
PidFile=$WORK/run/slurmdbd.pid
EOF
chmod 600 "$WORK/etc/slurmdbd.conf"

cat >"$WORK/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmctldAddr=127.0.0.1
SlurmctldPort=$P_CTLD
SlurmdPort=$P_SLURMD
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MSOCK
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool/%n
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$P_DBD
# with slurmdbd + MUNGE this names the MUNGE socket that clients (sacct, sacctmgr) use
AccountingStoragePass=$MSOCK
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=2
# one fake GPU (its device file is /dev/null): enough for Slurm to schedule --gpus=1 like on a GPU node
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=$NODE Name=gpu File=/dev/null Count=1" >"$WORK/etc/gres.conf"
mkdir -p "$WORK/spool/$NODE"
export SLURM_CONF=$WORK/etc/slurm.conf
# snakemake-executor-plugin-slurm-jobstep 0.6.1 removes every SLURM_* variable but the job's
# identity, SLURM_CONF included, before it calls srun inside a job; sites with
# /etc/slurm/slurm.conf or configless slurmd do not notice.  This private cluster's config lives
# elsewhere, so srun (first on PATH, which jobs inherit) is a shim that sets it again.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$WORK/bin/srun"
chmod 755 "$WORK/bin/srun"
export PATH="$WORK/bin:$PATH"

for _ in $(seq 100); do [ -S "$WORK/run/mysql.sock" ] && break; sleep 0.2; done
[ -S "$WORK/run/mysql.sock" ] || { echo "FAIL: mariadbd did not start"; exit 1; }
# slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF (exported above)
slurmdbd -D >"$WORK/log/slurmdbd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
timeout 20 sacctmgr -i add account cmr_ci Cluster="$CLUSTER" Description=ci Organization=ci >/dev/null
timeout 20 sacctmgr -i add user root Account=cmr_ci Cluster="$CLUSTER" >/dev/null

say "slurmctld + slurmd (node $NODE, $NCPU CPUs, $MEM_MB MB, ports $P_CTLD/$P_SLURMD)"
slurmctld -D -i -f "$SLURM_CONF" >"$WORK/log/slurmctld.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || { echo "FAIL: slurmctld is not up"; exit 1; }
slurmd -D -N "$NODE" -f "$SLURM_CONF" >"$WORK/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do sinfo -h -o %t 2>/dev/null | grep -qE '^idle' && break; sleep 0.2; done
sinfo -h -o %t | grep -qE '^idle' || { sinfo; echo "FAIL: node not idle"; exit 1; }
[ "$(timeout 60 srun -N1 -n1 hostname)" = "$(hostname)" ] || { echo "FAIL: srun smoke test"; exit 1; }
say "cluster up: $(sinfo -h -o '%P %D %t %G')"

[ "${E2E_HOLD:-0}" = 1 ] && { echo "export SLURM_CONF=$SLURM_CONF  # holding; kill $$ to stop"; sleep 3600; }
wait "$INPUTS_PID" || { cat "$WORK/log/inputs.log"; echo "FAIL: synthetic inputs"; exit 1; }

# --- the two runs ---------------------------------------------------------------------------------
for mode in slurm local; do
    cat >"$WORK/config-$mode.yaml" <<EOF
cohort_dir: $WORK/cohort
results_dir: $WORK/results-$mode
models_dir: $WORK/models
device: auto
stats: {folds: 2, bootstrap: 20, n_pcs: 2}
atlas: {n_components: 2}
EOF
done

cd "$REPO"
# the local reference run goes at the same time (its own process group; disjoint outputs, so the
# two Snakemake processes do not lock each other out)
say "same workflow locally, in the background"
setsid "$PY" -m snakemake --cores "$NCPU" --configfile "$WORK/config-local.yaml" >"$WORK/log/snakemake-local.log" 2>&1 &
LOCAL_PID=$!
PIDS+=("-$LOCAL_PID")
say "workflow through Slurm: snakemake --profile profiles/slurm + CI overrides"
# CI overrides: the test cluster's partition/account, small defaults, quick status checks (the
# plugin waits 40 s before its first check by default), the node's 2 CPUs (--cores/--max-threads:
# jobs ask for at most what exists), logs kept for the checks below.  SIGINT on timeout: Snakemake
# stops and cancels its Slurm jobs on SIGINT.
SLURM_OVERRIDES=(
    --default-resources slurm_partition=debug slurm_account=cmr_ci mem_mb=1000 runtime=10
    --jobs 4 --cores "$NCPU" --max-threads "$NCPU" --retries 0 --latency-wait 5
    --slurm-init-seconds-before-status-checks 2 --seconds-between-status-checks 2
    --slurm-logdir "$WORK/slurm_logs" --slurm-keep-successful-logs
)
set +e
timeout -s INT "${E2E_TIMEOUT:-600}" "$PY" -m snakemake --profile profiles/slurm --configfile "$WORK/config-slurm.yaml" \
    "${SLURM_OVERRIDES[@]}" >"$WORK/log/snakemake-slurm.log" 2>&1
rc=$?
set -e
tail -n 4 "$WORK/log/snakemake-slurm.log"
[ $rc -eq 0 ] || { echo "FAIL: Slurm run exited $rc"; grep -iE "error|fail" "$WORK/log/snakemake-slurm.log" | head -20; exit 1; }

wait "$LOCAL_PID" || { tail -n 20 "$WORK/log/snakemake-local.log"; echo "FAIL: local run"; exit 1; }
say "local run done too"

# --- checks ---------------------------------------------------------------------------------------
say "checks"
START=$(date -d "@$T0" +%Y-%m-%dT%H:%M:%S)
sacct -X -n -P -S "$START" --format=JobID,JobName,State,AllocTRES >"$WORK/log/sacct.txt"
"$PY" "$REPO/tests/slurm/check_e2e.py" --snakemake-log "$WORK/log/snakemake-slurm.log" \
    --sacct "$WORK/log/sacct.txt" --slurm-logs "$WORK/slurm_logs" \
    --slurm-results "$WORK/results-slurm" --local-results "$WORK/results-local"
say "PASS: workflow ran through sbatch and matches the local run"
