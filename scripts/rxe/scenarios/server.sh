#!/bin/sh
# ferrite over RoCEv2 on the VM's rxe device, TCP served at the same time.
# Roles: single (server and clients in one VM), server / client (two VMs; the client sets key
# "done" when it has finished, which lets the server VM stop ferrite and check a clean exit).
# A second ferrite (ports 6380 and 7001) runs with RDMA busy polling on (the default is off): it
# gets a verify run of its own and the figures that compare the two.
role=$1 ip_self=$2 ip_peer=$3
server=$ip_self
[ "$role" = client ] && server=$ip_peer
fail() { echo "CHECK FAILED: $*"; exit 1; }
expect() { # WANT COMMAND...: the command's output must be exactly WANT
    want=$1; shift
    got=$("$@" 2>&1)
    [ "$got" = "$want" ] || fail "$* -> '$got', want '$want'"
}
rdma() { timeout 30 ferrite-cli --transport rdma --host "$server" --port 7000 "$@"; }
tcp() { timeout 30 ferrite-cli --port 6379 "$@"; }
stop() { # PID: SIGTERM, then a clean exit
    kill -TERM "$1"; wait "$1" || fail "ferrite exit status $?"
}

if [ "$role" != client ]; then
    ferrite --bind 127.0.0.1 --port 6379 --memcache-port 11211 --rdma-port 7000 --threads "$(nproc)" \
        --memory 512MiB >/tmp/ferrite.log 2>&1 &
    ferrite_pid=$!
    ferrite --bind 127.0.0.1 --port 6380 --memcache-port 11212 --rdma-port 7001 --threads "$(nproc)" \
        --memory 64MiB --rdma-busy-poll-us 50 >/tmp/ferrite-busy.log 2>&1 &
    busy_pid=$!
    tries=0
    until tcp PING >/dev/null 2>&1 && timeout 30 ferrite-cli --port 6380 PING >/dev/null 2>&1; do
        tries=$((tries + 1)); [ $tries -lt 100 ] || { cat /tmp/ferrite*.log; fail "ferrite did not start"; }; sleep 0.1
    done
    grep "RDMA transport" /tmp/ferrite.log /tmp/ferrite-busy.log
fi
if [ "$role" = server ]; then
    tries=0
    until [ "$(tcp GET done)" = '"yes"' ]; do
        tries=$((tries + 1)); [ $tries -lt 600 ] || fail "the client never finished"; sleep 0.2
    done
    stop $ferrite_pid; stop $busy_pid
    exit 0
fi
tries=0
until rdma PING >/dev/null 2>&1; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || fail "no RDMA PING answer"; sleep 0.2
done
expect PONG rdma PING
expect OK rdma SET greeting hello
expect '"hello"' rdma GET greeting
expect "$(printf '1) "hello"\n2) (nil)')" rdma MGET greeting missing
expect OK rdma MSET a 1 b 2 c 3
expect '(integer) 3' rdma DEL a b c
expect '(integer) 1' rdma DEL greeting
expect '(nil)' rdma GET greeting
# values from 0 bytes to the largest item (key + value), larger than one RDMA message
max=$(timeout 10 ferrite-cli --transport rdma --host "$server" --port 7000 --proto memcache stats settings | awk '/item_size_max/ {print $3}' | tr -d '\r')
[ -n "$max" ] || fail "no item_size_max in stats settings"
for size in 0 1 16383 16384 16385 100000 $((max - 3)); do
    expect OK rdma --fill $size SET big
    # "$<size>\r\n" + value + "\r\n"
    expect $((size + ${#size} + 5)) rdma --length-only GET big
done
expect '(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)' rdma --fill $((max - 2)) SET big
# memcached over RDMA
expect STORED timeout 30 ferrite-cli --transport rdma --host "$server" --port 7000 --proto memcache --fill 5 set mk 0 0 5
expect "$(printf 'VALUE mk 0 5\nxxxxx\nEND')" timeout 30 ferrite-cli --transport rdma --host "$server" --port 7000 --proto memcache get mk
# pipelined, many connections, RDMA and TCP at the same time, every value checked
timeout 120 loadgen --proto redis --port 7000 --host "$server" --mode verify --requests 20000 --conns 4 \
    --pipeline 32 --key-start 1000000 --transport rdma >/tmp/rdma-verify.csv || fail "RDMA verify: $(cat /tmp/rdma-verify.csv)"
tcp_verify=
if [ "$role" = single ]; then
    timeout 120 loadgen --port 6379 --mode verify --requests 20000 --conns 4 --pipeline 32 \
        --key-start 2000000 >/tmp/tcp-verify.csv &
    tcp_verify=$!
fi
timeout 120 loadgen --proto memcache-meta --port 7000 --host "$server" --transport rdma --mode verify \
    --requests 5000 --conns 2 --pipeline 16 --key-start 3000000 >/tmp/meta-verify.csv || fail "RDMA meta verify"
if [ -n "$tcp_verify" ]; then wait "$tcp_verify" || fail "TCP verify while RDMA ran"; fi
# RDMA links are spread over the shards like TCP connections (2 shards in the one-VM run)
if [ "$role" = single ]; then
    for shard in 0 1; do
        grep -q "RDMA client connected shard=$shard " /tmp/ferrite.log ||
            fail "no RDMA link on shard $shard: $(grep 'RDMA client connected' /tmp/ferrite.log | tail -5)"
    done
    echo "RDMA links per shard: $(grep -o 'RDMA client connected shard=[0-9]*' /tmp/ferrite.log | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
fi
# a burst of connects, more than a shard makes into links per loop iteration (the rest wait for
# the next): every one is served
burst=
for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
    (expect PONG rdma PING) &
    burst="$burst $!"
done
for pid in $burst; do wait "$pid" || fail "a link of the connect burst was not served"; done
# the last reply before the server closes a link arrives: QUIT's +OK, a malformed request's
# protocol error (then its link is closed); a message larger than the server's receive buffers
# cuts that client off; the server goes on serving
expect "$(printf '%s\n%s' '+OK' '(closed by the server)')" rdma --raw '*1\r\n$4\r\nQUIT\r\n'
# ...also after a reply other shards are still making (8 keys: some are the other shard's)
expect OK rdma MSET q1 v q2 v q3 v q4 v q5 v q6 v q7 v q8 v
mget='*9\r\n$4\r\nMGET\r\n$2\r\nq1\r\n$2\r\nq2\r\n$2\r\nq3\r\n$2\r\nq4\r\n$2\r\nq5\r\n$2\r\nq6\r\n$2\r\nq7\r\n$2\r\nq8\r\n'
got=$(rdma --raw "$mget"'*1\r\n$4\r\nQUIT\r\n' | tr -d '\r' | tr '\n' ' ')
[ "$got" = '*8 $1 v $1 v $1 v $1 v $1 v $1 v $1 v $1 v +OK (closed by the server) ' ] ||
    fail "MGET then QUIT: '$got'"
expect "$(printf '%s\n%s' '-ERR Protocol error: invalid bulk length' '(closed by the server)')" \
    rdma --raw '*1\r\n$-5\r\n'
# a link over the client limit gets the limit's error before it is dropped (one-VM run: the
# limit is set over TCP, which the other VM cannot reach)
if [ "$role" = single ]; then
    maxclients=$(tcp CONFIG GET maxclients | sed -n 's/^2) "\(.*\)"$/\1/p')
    [ -n "$maxclients" ] || fail "no maxclients in CONFIG GET"
    # no `timeout` wrapper: killing it would leave this link open
    loadgen --port 7000 --host "$server" --transport rdma --mode set --requests 100000000 \
        --conns 1 --pipeline 1 --max-seconds 50 >/dev/null 2>&1 &
    holder=$!
    tries=0
    # that link and this INFO's connection
    until [ "$(tcp INFO clients | sed -n 's/^connected_clients:\([0-9]*\).*/\1/p')" -ge 2 ] 2>/dev/null; do
        tries=$((tries + 1)); [ $tries -lt 100 ] || fail "loadgen never connected"; sleep 0.1
    done
    expect OK tcp CONFIG SET maxclients 1
    expect "$(printf '%s\n%s' '-ERR max number of clients reached' '(closed by the server)')" \
        rdma --raw '*1\r\n$4\r\nPING\r\n'
    kill -9 $holder
    tries=0
    until [ "$(tcp CONFIG SET maxclients "$maxclients" 2>&1)" = OK ]; do
        tries=$((tries + 1)); [ $tries -lt 100 ] || fail "maxclients not restored"; sleep 0.1
    done
fi
if rdma --message-bytes 65536 --fill 60000 SET oversized >/tmp/oversized.out 2>&1; then
    fail "a message larger than the server's buffers was accepted: $(cat /tmp/oversized.out)"
fi
echo "oversized message: $(cat /tmp/oversized.out)"
expect PONG rdma PING
expect '(nil)' rdma GET oversized
# a client killed mid-stream leaves the server serving
timeout 60 loadgen --port 7000 --host "$server" --transport rdma --mode set --requests 100000000 --conns 2 \
    --pipeline 16 --max-seconds 50 >/dev/null 2>&1 &
sleep 1
kill -9 $!
expect PONG rdma PING
[ "$role" = single ] && expect PONG tcp PING
# the same load over both transports, for the README (soft-RoCE is emulation: compare, don't quote);
# "rdma" is the default (busy polling off), "rdma-busy" the second server, busy-polling 50 µs
# (verified in the one-VM run only, to keep the two-VM run short)
if [ "$role" = single ]; then
    timeout 60 loadgen --host "$server" --port 7001 --transport rdma --mode verify --requests 5000 --conns 4 \
        --pipeline 32 --key-start 4000000 >/tmp/busy-verify.csv || fail "RDMA verify with busy polling"
fi
for port in 7000 7001; do
    timeout 60 loadgen --host "$server" --port $port --transport rdma --mode load --requests 5000 --conns 2 \
        --pipeline 32 >/dev/null || fail "preload on $port"
done
for transport in tcp rdma rdma-busy; do
    for p in 1 16; do
        host=$server kind=rdma port=7000
        [ $transport = rdma-busy ] && port=7001
        if [ $transport = tcp ]; then
            [ "$role" = client ] && continue
            host=127.0.0.1 kind=tcp port=6379
        fi
        line=$(timeout 60 loadgen --host $host --port $port --transport $kind --mode get --pipeline $p \
            --conns 4 --requests 5000 --keyspace 5000 --max-seconds 5) || fail "bench $transport P=$p"
        echo "FERRITE-BENCH,$role,$transport,$line"
    done
done
if [ "$role" = client ]; then
    expect OK rdma SET done yes
else
    stop $ferrite_pid; stop $busy_pid
fi
