#!/bin/sh
# ferrite-probe must find the rxe device, its port active on Ethernet, and the RoCEv2 GID of the
# VM's IPv4 address.
ip_self=$2
out=$(timeout 20 ferrite-probe) || exit 1
echo "$out"
echo "$out" | grep -q "rdma: rxe0 port 1 active Ethernet" || exit 2
echo "$out" | grep -q "RoCEv2 gid\[[0-9]*\]=$ip_self" || exit 3
