//! `ferrite-probe`: prints what `platform` finds on this machine, the way `ferrite` will see it.
//! Exit status 0 always: finding no device is an answer, not a failure.
fn main() {
    println!("rdma: {}", platform::rdma::probe());
}
