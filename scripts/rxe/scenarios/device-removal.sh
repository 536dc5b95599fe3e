#!/bin/sh
# The RDMA device removed under a running ferrite (`rdma link delete rxe0`): the listener's
# removal is logged as an error, the link on the device is closed, TCP goes on being served, and
# ferrite still stops cleanly. One VM only (args: single IP IP).
ip_self=$2
fail() { echo "CHECK FAILED: $*"; cat /tmp/ferrite.log; exit 1; }
tcp() { timeout 30 ferrite-cli --port 6379 "$@"; }
ferrite --bind 127.0.0.1 --port 6379 --memcache-port 11211 --rdma-port 7000 --threads "$(nproc)" \
    --memory 64MiB >/tmp/ferrite.log 2>&1 &
ferrite_pid=$!
tries=0
until timeout 10 ferrite-cli --transport rdma --host "$ip_self" --port 7000 PING >/dev/null 2>&1; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || fail "no RDMA PING answer"; sleep 0.2
done
# a client holding a link while the device goes (no `timeout`: it ends when its link fails)
loadgen --port 7000 --host "$ip_self" --transport rdma --mode set --requests 100000000 --conns 1 \
    --pipeline 1 --max-seconds 50 >/dev/null 2>&1 &
holder=$!
tries=0
until [ "$(grep -c 'RDMA client connected' /tmp/ferrite.log)" -ge 2 ]; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || fail "loadgen never connected"; sleep 0.1
done
# the kernel finishes the removal only once every user has let go of the device: background
timeout 60 rdma link delete rxe0 &
remover=$!
tries=0
until grep -q 'RDMA device removed: the RDMA listener is closed' /tmp/ferrite.log; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || fail "the listener's device removal was not logged"; sleep 0.1
done
[ "$(tcp PING)" = PONG ] || fail "TCP PING after the device removal"
[ "$(tcp SET after removal)" = OK ] || fail "TCP SET after the device removal"
[ "$(tcp GET after)" = '"removal"' ] || fail "TCP GET after the device removal"
kill -9 $holder 2>/dev/null
wait $holder
kill -TERM $ferrite_pid
wait $ferrite_pid || fail "ferrite exit status $?"
wait $remover || fail "rdma link delete failed: $?"
echo "device removal: $(grep -c 'RDMA device removed' /tmp/ferrite.log) log lines, TCP served, clean exit"
