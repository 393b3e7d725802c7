#!/usr/bin/env bash
# A full disk and a read-only one, for real: a small tmpfs, mounted in a private mount namespace
# where there can be one, else mounted and unmounted by the test. Checkpoint saves (through `nanoattn run`), `eval --dump` and
# `kl --out` are run with every amount of free space from none up to enough, in 4-8 KiB steps:
# each either succeeds with a complete file, or exits with code 1 and an error naming the file
# and the free space, leaves no temporary file, leaves the files already there byte for byte,
# and does not crash on its way out (no "Segmentation fault", no HDF5 "infinite loop"). Then the
# same commands on the file system remounted read-only.
# Mounting needs root (or CAP_SYS_ADMIN); elsewhere the test says so and is skipped (exit 77).
# Usage: full_disk.sh <nanoattn binary>
set -euo pipefail
nanoattn=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
# In a private mount namespace where there can be one (not in a chroot, whose / is no mount
# point); else the tmpfs is mounted here and unmounted on exit.
if [ -z "${NANOATTN_IN_MOUNT_NS:-}" ] && unshare -m --propagation private true 2> /dev/null; then
  exec env NANOATTN_IN_MOUNT_NS=1 unshare -m --propagation private bash "$0" "$@"
fi
# mount(2) through Python: the mount program is not part of a minimal Debian, /usr/bin/python3
# is (tools/setup.sh installs it). sys_mount <folder> new|ro|rw|off: a 2 MiB tmpfs there, the
# same remounted read-only or read-write, or unmounted.
sys_mount() {
  /usr/bin/python3 - "$1" "$2" << 'PY'
import ctypes, os, sys
target, how = sys.argv[1].encode(), sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MNT_DETACH = 1, 32, 2
if how == "off":
    rc = libc.umount2(target, MNT_DETACH)
else:
    flags = {"new": 0, "ro": MS_REMOUNT | MS_RDONLY, "rw": MS_REMOUNT}[how]
    rc = libc.mount(b"tmpfs", target, b"tmpfs", ctypes.c_ulong(flags), b"size=2m")
if rc != 0:
    sys.exit(f"mount ({how}) {sys.argv[1]}: {os.strerror(ctypes.get_errno())}")
PY
}
work=$(mktemp -d)
disk=$work/disk
trap 'sys_mount "$disk" off 2> /dev/null || true; rm -rf "$work"' EXIT
mkdir "$disk"
if ! sys_mount "$disk" new 2> "$work/mount.txt"; then
  echo "SKIP: cannot mount a tmpfs, which needs root or CAP_SYS_ADMIN ($(cat "$work/mount.txt"))"
  exit 77
fi
STEPS=2 source "$here/tiny_experiment.sh"
cd "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Inputs and reference outputs, on the ordinary disk.
"$nanoattn" run exp.yaml --out ref > ref.log 2>&1 || { cat ref.log; exit 1; }
ck=$work/ref/tiny/main/checkpoint.h5
"$nanoattn" eval "$ck" --dump a.h5 > /dev/null
"$nanoattn" eval "$ck" --dump b.h5 --dump-dtype float16 > /dev/null
"$nanoattn" kl a.h5 b.h5 --out kl.h5 > /dev/null
h5text() { h5dump "$1" | sed 1d; }  # its contents, without the file name
params() { h5dump -g /params "$1" | sed 1d; }

# leave_free <KiB> [file...]: empty the tmpfs, copy the files into it, then fill it to leave that
# much free.
leave_free() {
  local kib=$1
  shift
  find "$disk" -mindepth 1 -delete
  [ $# -eq 0 ] || cp "$@" "$disk/"
  local avail
  avail=$(($(stat -f -c '%a * %S' "$disk")))
  if [ $((kib * 1024)) -lt "$avail" ]; then head -c $((avail - kib * 1024)) /dev/zero > "$disk/filler"; fi
}
# after <what> <rc>: a failure is exit code 1 with a nanoattn error about the disk, and nothing
# crashed; no temporary file is left either way.
after() {
  local what=$1 rc=$2
  if grep -qE "Segmentation fault|infinite loop|internal error|Aborted|core dumped" err.txt; then
    fail "$what: crashed (exit code $rc):"; cat err.txt
  elif [ "$rc" -ne 0 ] && { [ "$rc" -ne 1 ] || ! grep -q "^nanoattn: error: $disk" err.txt; }; then
    fail "$what: exit code $rc, expected 0 or 1 with an error naming a file on the disk:"; cat err.txt
  fi
  if [ "$rc" -ne 0 ] && ! grep -qE "No space left on device|Read-only file system" err.txt; then
    fail "$what: the error does not say the disk is full or read-only:"; cat err.txt
  fi
  if find "$disk" -name '.*.tmp-*' | grep -q .; then
    fail "$what: temporary files left: $(find "$disk" -name '.*.tmp-*')"
  fi
}

# 1. eval --dump over an older dump: a full disk keeps the older dump; a success is the dump.
cp b.h5 preds.h5  # the older dump
dump_failed=0 dump_none=0
for kib in $(seq 0 4 100); do
  leave_free "$kib" preds.h5
  rc=0
  "$nanoattn" eval "$ck" --dump "$disk/preds.h5" > /dev/null 2> err.txt || rc=$?
  after "eval --dump with $kib KiB free" "$rc"
  if [ "$rc" -eq 0 ]; then
    [ "$(h5text "$disk/preds.h5")" = "$(h5text a.h5)" ] || fail "eval --dump with $kib KiB free: a wrong dump"
  else
    dump_failed=$((dump_failed + 1))
    cp err.txt dump_err.txt
    cmp -s "$disk/preds.h5" preds.h5 || fail "eval --dump with $kib KiB free: the older dump changed"
    grep -q "has 0 bytes free" err.txt && dump_none=1
  fi
done
echo "eval --dump: $dump_failed sizes failed cleanly; the last: $(head -c 400 dump_err.txt)"
[ "$dump_failed" -ge 5 ] || fail "eval --dump: only $dump_failed sizes were too small"
[ "$dump_none" -eq 1 ] || fail "eval --dump: never saw a disk with 0 bytes free"

# 2. kl --out over an older KL file.
"$nanoattn" kl b.h5 a.h5 --out old_kl.h5 > /dev/null
kl_failed=0
for kib in $(seq 0 4 72); do
  leave_free "$kib" old_kl.h5
  mv "$disk/old_kl.h5" "$disk/kl.h5"
  rc=0
  "$nanoattn" kl a.h5 b.h5 --out "$disk/kl.h5" > /dev/null 2> err.txt || rc=$?
  after "kl --out with $kib KiB free" "$rc"
  if [ "$rc" -eq 0 ]; then
    [ "$(h5dump -A "$disk/kl.h5" | grep -c ATTRIBUTE)" = "$(h5dump -A kl.h5 | grep -c ATTRIBUTE)" ] \
      || fail "kl --out with $kib KiB free: a wrong KL file"
  else
    kl_failed=$((kl_failed + 1))
    cp err.txt kl_err.txt
    cmp -s "$disk/kl.h5" old_kl.h5 || fail "kl --out with $kib KiB free: the older KL file changed"
  fi
done
echo "kl --out: $kl_failed sizes failed cleanly; the last: $(head -c 400 kl_err.txt)"
[ "$kl_failed" -ge 5 ] || fail "kl --out: only $kl_failed sizes were too small"

# 3. Checkpoints: a whole run in a folder on the disk, from no space up to enough. Some sizes
# fail in config.yaml or the metrics, the others in the checkpoint save (with nothing left when
# it starts, or part way); the message then names the bytes the checkpoint needs.
ck_size=$(stat -c %s "$ck")
ck_failed=0 ck_none=0
for kib in $(seq 0 8 $((ck_size / 1024 + 48))); do
  leave_free "$kib"
  rc=0
  "$nanoattn" run exp.yaml --out "$disk/runs" > /dev/null 2> err.txt || rc=$?
  after "run with $kib KiB free" "$rc"
  if [ "$rc" -eq 0 ]; then
    [ "$(params "$disk/runs/tiny/main/checkpoint.h5")" = "$(params "$ck")" ] || fail "run with $kib KiB free: a wrong checkpoint"
  elif grep -q "checkpoint.h5: checkpoint not saved" err.txt; then
    ck_failed=$((ck_failed + 1))
    grep -h "checkpoint not saved" err.txt > ck_err.txt
    grep -q "it needs at least .* bytes), the file system holding $disk/runs/tiny/main has" err.txt \
      || { fail "run with $kib KiB free: no bytes needed in"; cat err.txt; }
    grep -q "cannot create it (No space left on device)" err.txt && ck_none=1
    [ ! -e "$disk/runs/tiny/main/checkpoint.h5" ] || fail "run with $kib KiB free: a checkpoint appeared"
  fi
done
echo "run: $ck_failed sizes failed cleanly in the checkpoint save; the last: $(head -c 400 ck_err.txt)"
[ "$ck_failed" -ge 5 ] || fail "run: only $ck_failed sizes failed in the checkpoint save"
[ "$ck_none" -eq 1 ] || fail "run: no checkpoint save began with 0 bytes free"
# An earlier checkpoint of the run survives a later save that does not fit: step 1's checkpoint
# fits, step 2's (a second copy, while the first exists) does not.
leave_free $((ck_size * 3 / 2 / 1024 + 24))
rc=0
"$nanoattn" run exp.yaml --out "$disk/runs" --set eval.every=1 > /dev/null 2> err.txt || rc=$?
after "run whose second checkpoint does not fit" "$rc"
grep -q "checkpoint.h5: checkpoint not saved (any previous file there is untouched)" err.txt \
  || { fail "run whose second checkpoint does not fit: exit code $rc"; cat err.txt; }
"$nanoattn" eval "$disk/runs/tiny/main/checkpoint.h5" 2> /dev/null | grep -q "step 1)" \
  || fail "the step-1 checkpoint did not survive"

# 4. Read-only: every command that writes says so, naming the path, and changes nothing.
leave_free 1024 preds.h5 kl.h5
"$nanoattn" run exp.yaml --out "$disk/runs2" > /dev/null 2>&1
(cd "$disk" && find . -type f ! -name filler -exec md5sum {} + | sort) > before.txt
sys_mount "$disk" ro
ro() {  # ro <what> <expected> command...
  local what=$1 expected=$2 rc=0
  shift 2
  "$@" > /dev/null 2> err.txt || rc=$?
  after "$what" "$rc"
  if [ "$rc" -eq 1 ] && grep -qF -- "$expected" err.txt; then
    echo "ok ($what): $(head -c 300 err.txt)"
  else
    fail "$what: exit code $rc, expected 1 and '$expected' in:"; cat err.txt
  fi
}
ro "eval --dump, read-only" "$disk/preds.h5: cannot write the dump: folder $disk is not writable (Read-only file system)" \
  "$nanoattn" eval "$ck" --dump "$disk/preds.h5"
ro "kl --out, read-only" "$disk/kl.h5: cannot write the KL file: folder $disk is not writable (Read-only file system)" \
  "$nanoattn" kl a.h5 b.h5 --out "$disk/kl.h5"
ro "run --out, an existing run folder, read-only" \
  "$disk/runs2/tiny/main: cannot write the run's files: folder $disk/runs2/tiny/main is not writable (Read-only file system)" \
  "$nanoattn" run exp.yaml --out "$disk/runs2" --overwrite
ro "run --out, a new folder, read-only" "$disk/new/tiny/main: cannot create this folder (Read-only file system)" \
  "$nanoattn" run exp.yaml --out "$disk/new"
(cd "$disk" && find . -type f ! -name filler -exec md5sum {} + | sort) > after.txt
cmp -s before.txt after.txt || fail "a file on the read-only disk changed"
sys_mount "$disk" rw

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "full and read-only disks handled"
