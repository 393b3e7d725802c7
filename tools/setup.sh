#!/usr/bin/env bash
# Installs every Debian package nanoattn needs to build, test and run its analysis scripts.
# Idempotent: installs only what is missing, and does nothing when all is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-pthread-dev   # BLAS, the pthread build (OpenBLAS pinned to 1 thread under TBB)
  libtbb-dev                # oneTBB: all parallelism
  libyaml-cpp-dev           # experiment files
  libhdf5-dev hdf5-tools    # checkpoints and prediction dumps; h5dump
  zlib1g-dev                # prediction dumps: chunks deflated in parallel
  doctest-dev               # tests
  libcli11-dev              # the nanoattn command line
  nlohmann-json3-dev        # JSON outputs (--json, summary.json) and resumed metrics.jsonl
  libopenmpi-dev openmpi-bin  # data-parallel training (mpirun -np N nanoattn run); optional to build
  python3-h5py python3-numpy python3-matplotlib  # analysis scripts (/usr/bin/python3)
  bible-kjv                 # the `kjv` corpus, built offline from its `bible` command
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
