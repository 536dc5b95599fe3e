#!/bin/sh
# platform::verbs RC links on the VM's rxe device: echo of every size, pipelining, a client
# that disconnects, a client that never re-posts receives, then a fresh client.
timeout 60 rdma_link --ignored --exact messages_echo_in_order_and_bad_peers_are_cut_off 2>&1
