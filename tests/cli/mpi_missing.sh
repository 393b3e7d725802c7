#!/usr/bin/env bash
# A nanoattn built without MPI, started by mpirun (OMPI_COMM_WORLD_SIZE in its environment, as
# mpirun sets it): refused with the fix, before anything is read or written. Plain runs are not.
# Usage: mpi_missing.sh <nanoattn binary built without MPI>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=2 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
if OMPI_COMM_WORLD_SIZE=2 "$nanoattn" run exp.yaml --out out > x.log 2>&1; then
  echo "FAIL: accepted under mpirun"; exit 1
fi
grep -q "built without MPI.*tools/setup.sh installs libopenmpi-dev and openmpi-bin" x.log || { cat x.log; echo "FAIL: message"; exit 1; }
[ ! -e out ] || { echo "FAIL: wrote out/"; exit 1; }
"$nanoattn" run exp.yaml --out out > run.log 2>&1 || { cat run.log; echo "FAIL: a plain run"; exit 1; }
echo "mpi_missing: ok"
