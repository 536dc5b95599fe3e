#!/bin/sh
# platform::verbs RC links on the VM's rxe device: echo of every size, pipelining, a client
# that disconnects, a client that never re-posts receives, then a fresh client.
timeout 60 rdma_link --ignored --test-threads=1 2>&1
