#!/bin/sh
# platform::verbs across two VMs: the server role echoes, the client role checks the echoes.
RXE_ROLE=$1 RXE_PEER=$3 timeout 120 rdma_link --ignored --exact messages_cross_between_two_hosts 2>&1
