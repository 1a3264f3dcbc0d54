# lib.sh: helpers for a scenario's dom0 script, sourced before it runs (busybox sh).
#
# The script runs in the scenario's folder (/scenarios/NAME: its files, the guest image
# `guest`, `guest.cfg`) while the guest runs, with
#   DOMID        the guest's domain id          DOMU      its name (the scenario's)
#   CONSOLE_LOG  the guest's console log so far  SCENARIO  the scenario's folder
#   BRIDGE       xenbr0, the guests' bridge      DOM0_IP   10.0.0.1, dom0's address on it
# Each helper that waits prints what it waited for when it gives up, and returns 1.

# backend KIND [DEVID]: the xenstore path of the guest's backend device KIND (vif, vbd)
# number DEVID (default 0; a disk's DEVID is its vdev's number: `vdev xvda`).
backend() { echo "/local/domain/0/backend/$1/$DOMID/${2:-0}"; }

# frontend KIND [DEVID]: the xenstore path of the guest's side of the device.
frontend() { echo "/local/domain/$DOMID/device/$1/${2:-0}"; }

# vdev NAME: the device number of a xvdX disk (xvda 51712, xvdb 51728).
vdev() {
  local letter=${1#xvd}
  echo $((202 * 256 + ($(printf '%d' "'$letter") - 97) * 16))
}

# wait_until SECS COMMAND...: run COMMAND every 0.2 s until it succeeds, at most SECS seconds.
wait_until() {
  local secs=$1 end
  shift
  end=$(($(uptime_s) + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$(uptime_s)" -ge "$end" ]; then
      echo "testbed: gave up after ${secs}s waiting for: $*"
      return 1
    fi
    sleep 0.2
  done
}

# wait_xenstore PATH VALUE [SECS]: wait (default 20 s) until PATH holds VALUE.
wait_xenstore() {
  wait_until "${3:-20}" xenstore_is "$1" "$2" || {
    echo "testbed: $1 is $(xenstore-read "$1" 2>&1)"
    return 1
  }
}
xenstore_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }

# wait_console TEXT [SECS]: wait (default 30 s) until the guest's console shows TEXT.
wait_console() { wait_until "${2:-30}" grep -qF -- "$1" "$CONSOLE_LOG"; }

# uptime_s: whole seconds since dom0 booted.
uptime_s() {
  local up
  read -r up _ </proc/uptime
  echo "${up%.*}"
}
