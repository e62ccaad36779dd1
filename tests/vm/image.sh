#!/usr/bin/env bash
# Builds the guest image of the real-systemd VM test (tests/vm/run.sh calls it):
# a minimal Debian (bookworm = Debian 12, systemd 252; trixie = Debian 13, systemd 257) with
# systemd as PID 1, its kernel and initrd, and a generic test runner that executes a payload
# disk and hands the results back on another disk.
#
#   bash tests/vm/image.sh OUT_DIR [SUITE]  ->  OUT_DIR/{base.img,vmlinuz,initrd.img,packages.txt}
#   bash tests/vm/image.sh --mirror         ->  prints the Debian mirror the image would use
#
# SUITE defaults to bookworm. The Debian mirror is the host's own: the first `deb` URI of its
# apt configuration that serves a Debian archive suite (one-line /etc/apt/sources.list and
# sources.list.d/*.list, deb822 sources.list.d/*.sources, in apt's order; -security excluded),
# unless AVWAP_VM_MIRROR is set.
#
# Needs root, debootstrap and mkfs.ext4 (e2fsprogs >= 1.43 for -d; no loop mount is used).
# The SHA-256 of THIS FILE plus the suite is the cache key of the image (tests/vm/run.sh):
# change anything that should rebuild the images here, and only here.
#
# Guest contract (what tests/vm/run.sh relies on):
#   /dev/vda  this image (booted with -kernel/-initrd, root=/dev/vda; run.sh uses snapshot=on)
#   /dev/vdb  payload: an ext4 file system with an executable `run` at its top; mounted
#             read-only at /vmtest and run as root with RESULTS=/results, output on ttyS0;
#             its first line of output is "VMTEST-BEGIN", the last "VMTEST-EXIT rc=N"
#   /dev/vdc  results: a raw disk; /results is written onto it as one tar stream at the end
#   then the guest powers off. A payload that runs past VMTEST_TIMEOUT seconds (read from
#   /vmtest/timeout, default 1800) is killed, and the results are still written.
set -euo pipefail

# The Debian archive mirror of the host's apt configuration (see the header); empty if none.
host_debian_mirror() {
  local suites='(bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable)(-updates|-backports|-proposed-updates)?'
  local f files=() etc=${AVWAP_VM_APT_ETC:-/etc/apt} # (AVWAP_VM_APT_ETC: for testing the parser)
  [ -f "$etc/sources.list" ] && files+=("$etc/sources.list")
  for f in "$etc"/sources.list.d/*; do
    case $f in *.list | *.sources) [ -f "$f" ] && files+=("$f") ;; esac
  done
  for f in "${files[@]}"; do
    case $f in
      *.sources) # deb822: stanzas of "Field: value" lines, separated by blank lines
        awk -v re="^$suites\$" '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false)$/ && uri != "" && uri !~ /security/) {
              n = split(suites, s, " ")
              for (i = 1; i <= n; i++) if (s[i] ~ re) { print uri; exit }
            }
            types = ""; uri = ""; suites = ""; enabled = ""
          }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          tolower($1) == "types:" { $1 = ""; types = $0 }
          tolower($1) == "uris:" { uri = $2 }
          tolower($1) == "suites:" { $1 = ""; suites = $0 }
          tolower($1) == "enabled:" { enabled = tolower($2) }
          END { flush() }' "$f"
        ;;
      *) # one-line: deb [options] URI SUITE COMPONENTS...
        awk -v re="^$suites\$" '
          $1 != "deb" { next }
          { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } }
          $(i + 1) ~ re && $i !~ /security/ { print $i; exit }' "$f"
        ;;
    esac
  done | head -n1
}

if [ "${1:-}" = --mirror ]; then
  echo "${AVWAP_VM_MIRROR:-$(host_debian_mirror)}"
  exit 0
fi
OUT=${1:?usage: image.sh OUT_DIR [SUITE] | image.sh --mirror}
SUITE=${2:-bookworm}
MIRROR=${AVWAP_VM_MIRROR:-$(host_debian_mirror)}
# systemd-sysv: systemd as PID 1. tzdata: America/New_York for the timers. dbus: timedatectl,
# systemctl's bus fallbacks. procps, kmod, udev: a normal small server.
INCLUDE=systemd-sysv,udev,linux-image-amd64,tzdata,dbus,procps,kmod
IMAGE_SIZE=1536M
ATTEMPTS=3

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ -z "$MIRROR" ]; then
  log "no Debian archive in the host's apt sources (/etc/apt/sources.list{,.d/}); set AVWAP_VM_MIRROR"
  exit 1
fi
log "suite $SUITE, mirror $MIRROR"

[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap)"; exit 1; }
mkdir -p "$OUT"
ROOT=$(mktemp -d "$OUT/rootfs.XXXXXX")
# debootstrap may leave /proc, /sys or /dev mounted inside a half-built root: never recurse
# into them.
unmount_root() { for m in proc sys dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null || true; done; }
cleanup() {
  unmount_root
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT

keyring=()
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
  keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)

# Network hiccups on the mirror are retried from scratch; anything else fails the same way
# every time and is reported with the end of debootstrap's log.
attempt=1
while :; do
  log "debootstrap $SUITE (minbase + $INCLUDE), attempt $attempt/$ATTEMPTS"
  if debootstrap --variant=minbase "${keyring[@]}" --include="$INCLUDE" \
    "$SUITE" "$ROOT" "$MIRROR" >"$OUT/debootstrap.log" 2>&1; then
    break
  fi
  tail -n 25 "$OUT/debootstrap.log" >&2
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    log "debootstrap failed $ATTEMPTS times; log: $OUT/debootstrap.log"
    exit 1
  fi
  attempt=$((attempt + 1))
  unmount_root
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$ROOT"
  sleep 15
done

# ---------------------------------------------------------------------------------------------
log "configuring the guest"
# shellcheck disable=SC2016  # dpkg-query's own ${field} syntax
chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' >"$OUT/packages.txt"
rm -f "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin
rm -rf "$ROOT"/var/lib/apt/lists/*
echo avwap-vm >"$ROOT/etc/hostname"
printf '127.0.1.1 avwap-vm\n' >>"$ROOT/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$ROOT/etc/fstab"
# The host runs in UTC, as servers usually do; the units name America/New_York themselves.
ln -sf /usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime"
echo Etc/UTC >"$ROOT/etc/timezone"
# No timers of the distribution in the test's way, and a quick boot.
chroot "$ROOT" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  fstrim.timer dpkg-db-backup.timer >/dev/null 2>&1 || true
# systemd-timesyncd (pulled in on newer suites) would move the clock the scenario sets.
chroot "$ROOT" systemctl mask systemd-timesyncd.service >/dev/null 2>&1 || true
# A getty on ttyS0 (generated from console=ttyS0) hangs up the serial line about 2 s after
# boot and silently eats the runner's output: no gettys at all.
chroot "$ROOT" systemctl mask serial-getty@ttyS0.service getty@tty1.service >/dev/null
chroot "$ROOT" systemctl set-default multi-user.target >/dev/null

install -d "$ROOT/usr/local/sbin"
cat >"$ROOT/usr/local/sbin/vmtest-runner" <<'EOF'
#!/bin/bash
# Generic test runner of the avwap VM image (see tests/vm/image.sh): runs /vmtest/run from the
# payload disk, then writes /results to the results disk and powers off.
set -u
R=/results
mkdir -p /vmtest "$R"
for _ in $(seq 60); do [ -b /dev/vdb ] && [ -b /dev/vdc ] && break; sleep 0.5; done
rc=0
if ! mount -o ro /dev/vdb /vmtest; then
  echo "VMTEST-BEGIN (no payload disk)"
  rc=97
elif [ ! -x /vmtest/run ]; then
  echo "VMTEST-BEGIN (payload has no executable 'run')"
  rc=98
else
  limit=$(cat /vmtest/timeout 2>/dev/null || echo 1800)
  echo "VMTEST-BEGIN uptime=$(cut -d' ' -f1 /proc/uptime)s clock=$(date -u +%FT%TZ) limit=${limit}s"
  RESULTS=$R timeout -k 10 "$limit" /vmtest/run 2>&1 | tee "$R/console.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "VMTEST-TIMEOUT the payload ran longer than ${limit}s and was killed"
fi
echo "$rc" >"$R/rc"
echo "VMTEST-EXIT rc=$rc"
if [ -b /dev/vdc ]; then
  tar -C "$R" -cf /dev/vdc . || echo "VMTEST-RESULTS-NOT-WRITTEN"
fi
sync
systemctl --no-block poweroff
EOF
chmod 0755 "$ROOT/usr/local/sbin/vmtest-runner"
cat >"$ROOT/etc/systemd/system/vmtest.service" <<'EOF'
[Unit]
Description=avwap VM test runner (payload /dev/vdb, results /dev/vdc)
After=multi-user.target
Wants=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmtest-runner
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
chroot "$ROOT" systemctl enable vmtest.service >/dev/null 2>&1

cp "$ROOT"/boot/vmlinuz-* "$OUT/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$OUT/initrd.img"
log "mkfs.ext4 -d ($IMAGE_SIZE, sparse)"
rm -f "$OUT/base.img"
mkfs.ext4 -q -F -L avwap-vm -d "$ROOT" "$OUT/base.img" "$IMAGE_SIZE"
log "image ready: $(du -h "$OUT/base.img" | cut -f1) allocated; $(grep -E '^(systemd|linux-image-[0-9])' "$OUT/packages.txt" | tr '\n' ' ')"
