#!/bin/sh
# platform::verbs RC links on the VM's rxe device: echo of every size, pipelining, a client
# that disconnects, a client that never re-posts receives, then a fresh client; then a request
# moved to another thread's event channel, whose link reports there; then a poll that stops at its
# bound while more completions wait, which the next polls take in order.
timeout 60 rdma_link --ignored --exact messages_echo_in_order_and_bad_peers_are_cut_off 2>&1 &&
    timeout 60 rdma_link --ignored --exact a_migrated_link_reports_to_its_new_channel 2>&1 &&
    timeout 60 rdma_link --ignored --exact a_poll_takes_a_bounded_batch_and_the_rest_follow_in_order 2>&1
