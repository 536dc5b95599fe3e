#!/bin/sh
# PID 1 of a soft-RoCE test VM. Kernel arguments:
#   rxe.mode=single            one VM: rxe0 on a veth at 10.0.0.1, client and server both local
#   rxe.mode=node rxe.ip=A rxe.peer=B rxe.role=R   one of two VMs joined by a qemu socket link
# Runs /scenario.sh ROLE IP PEER and prints its verdict on the serial console as
# "FERRITE-RXE: PASS" or "FERRITE-RXE: FAIL rc=N": qemu exits 0 whatever happens, so the host
# judges by these markers.
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mount -t tmpfs tmpfs /tmp
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
mode=$(arg rxe.mode); ip_self=$(arg rxe.ip); ip_peer=$(arg rxe.peer); role=$(arg rxe.role)
M=/lib/modules/$(uname -r)/kernel
# crc32_generic first: rxe's ICRC needs it and nothing autoloads it here
modules="crypto/crc32_generic net/ipv4/udp_tunnel net/ipv6/ip6_udp_tunnel drivers/infiniband/core/ib_core
 drivers/infiniband/core/ib_uverbs drivers/infiniband/sw/rxe/rdma_rxe fs/configfs/configfs
 drivers/infiniband/core/iw_cm drivers/infiniband/core/ib_cm drivers/infiniband/core/rdma_cm
 drivers/infiniband/core/rdma_ucm drivers/net/veth"
[ "$mode" = node ] && modules="$modules drivers/virtio/virtio_ring drivers/virtio/virtio
 drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
 net/core/failover drivers/net/net_failover drivers/net/virtio_net"
for m in $modules; do [ -f "$M/$m.ko" ] && insmod "$M/$m.ko"; done
/usr/bin/ip link set lo up
if [ "$mode" = node ]; then
    netdev=eth0
    /usr/bin/ip addr add "$ip_self/24" dev eth0; /usr/bin/ip link set eth0 up
else
    netdev=veth0 ip_self=10.0.0.1 ip_peer=10.0.0.1 role=single
    /usr/bin/ip link add veth0 type veth peer name veth1
    /usr/bin/ip addr add 10.0.0.1/24 dev veth0; /usr/bin/ip link set veth0 up; /usr/bin/ip link set veth1 up
fi
/usr/bin/rdma link add rxe0 type rxe netdev "$netdev"
# the GID of the IPv4 address (::ffff:a.b.c.d, what RoCEv2 uses) appears a moment after the link
tries=0
until cat /sys/class/infiniband/rxe0/ports/1/gids/* 2>/dev/null | grep -q ':ffff:' || [ $tries -ge 50 ]; do
    sleep 0.1; tries=$((tries + 1))
done
if [ "$mode" = node ]; then
    tries=0
    until ping -c 1 -W 1 "$ip_peer" >/dev/null 2>&1 || [ $tries -ge 30 ]; do tries=$((tries + 1)); done
fi
echo "FERRITE-RXE: start role=$role ip=$ip_self peer=$ip_peer"
sh /scenario.sh "$role" "$ip_self" "$ip_peer"
rc=$?
if [ $rc -eq 0 ]; then echo "FERRITE-RXE: PASS"; else echo "FERRITE-RXE: FAIL rc=$rc"; fi
poweroff -f
