#!/bin/sh
# Debian's daemon packages (prometheus) start a system service on install; Shardwarden's tests and
# demo run their own instances on free ports, so the system one is stopped and kept from starting
# at boot. Used by `make system-packages` and testenv/debian-packages.ts.
for name in "$@"; do
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$name" >/dev/null 2>&1 || true
  else
    service "$name" stop >/dev/null 2>&1 || true
    update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
done
