//! The machine's cores grouped by NUMA node (hwlocality), the choice of cores for shard threads,
//! and pinning a thread to a core (core_affinity).
//!
//! Cores are handed out NUMA node by node so that shards sharing a node are neighbours. Within a
//! node the first hardware thread of every physical core comes before any SMT sibling, so two
//! shards never share a physical core while a free one remains.

use thiserror::Error;

/// Most threads `choose_threads` puts on one CPU when asked for more threads than CPUs (they
/// then share CPUs, which costs throughput but lets a small machine run a larger layout).
pub const THREADS_PER_CPU_MAX: usize = 4;

/// One NUMA node and the CPUs (OS indexes) this process may run on inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumaNode {
    /// The OS index of the node (`/sys/devices/system/node/nodeN`).
    pub os_index: usize,
    /// Allowed CPUs of the node: first hardware thread of each physical core, then SMT siblings.
    pub cpus: Vec<usize>,
    /// Memory local to the node, in bytes (0 when hwloc does not know).
    pub memory_bytes: u64,
}

/// What the machine offers: NUMA nodes with their allowed CPUs, and where that knowledge came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub nodes: Vec<NumaNode>,
    /// Physical cores seen by hwloc (0 when hwloc was unavailable).
    pub physical_cores: usize,
    /// How the topology was found: `"hwloc"`, or why the fallback was taken.
    pub source: String,
}

/// A CPU chosen for a shard thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChosenCpu {
    pub cpu: usize,
    pub numa_node: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error(
        "{requested} threads requested but only {available} CPUs are allowed for this process"
    )]
    NotEnoughCpus { requested: usize, available: usize },
    #[error("CPU {cpu} is not allowed for this process (allowed: {allowed:?})")]
    CpuNotAllowed { cpu: usize, allowed: Vec<usize> },
    #[error("CPU {cpu} is listed twice")]
    CpuRepeated { cpu: usize },
    #[error("at least one thread is needed")]
    NoThreads,
}

impl Topology {
    /// Asks hwloc for the topology, restricted to the CPUs this process may run on. When hwloc
    /// fails, falls back to one node holding every allowed CPU and says why in `source`.
    pub fn probe() -> Topology {
        let allowed = allowed_cpus();
        match probe_hwloc(&allowed) {
            Ok(topology) => topology,
            Err(reason) => Topology {
                nodes: vec![NumaNode {
                    os_index: 0,
                    cpus: allowed,
                    memory_bytes: 0,
                }],
                physical_cores: 0,
                source: format!(
                    "fallback (hwloc failed: {reason}): one node, CPUs from sched_getaffinity"
                ),
            },
        }
    }

    /// Every allowed CPU, in the order cores are handed out.
    pub fn cpus_in_order(&self) -> impl Iterator<Item = ChosenCpu> + '_ {
        self.nodes.iter().flat_map(|node| {
            node.cpus.iter().map(move |&cpu| ChosenCpu {
                cpu,
                numa_node: node.os_index,
            })
        })
    }

    /// Chooses `threads` CPUs, NUMA node by node.
    pub fn choose_threads(&self, threads: usize) -> Result<Vec<ChosenCpu>, TopologyError> {
        if threads == 0 {
            return Err(TopologyError::NoThreads);
        }
        let available = self.cpu_count();
        if available == 0 || threads > available * THREADS_PER_CPU_MAX {
            return Err(TopologyError::NotEnoughCpus {
                requested: threads,
                available,
            });
        }
        // More threads than CPUs (a small test machine): the order repeats, CPUs are shared.
        let order: Vec<ChosenCpu> = self.cpus_in_order().collect();
        Ok(order.iter().copied().cycle().take(threads).collect())
    }

    /// Takes exactly the CPUs listed (in the order given), checking each is allowed and unique.
    pub fn choose_cpus(&self, cpus: &[usize]) -> Result<Vec<ChosenCpu>, TopologyError> {
        if cpus.is_empty() {
            return Err(TopologyError::NoThreads);
        }
        let mut chosen = Vec::with_capacity(cpus.len());
        for (position, &cpu) in cpus.iter().enumerate() {
            if cpus[..position].contains(&cpu) {
                return Err(TopologyError::CpuRepeated { cpu });
            }
            let found = self.cpus_in_order().find(|candidate| candidate.cpu == cpu);
            match found {
                Some(candidate) => chosen.push(candidate),
                None => {
                    let allowed = self
                        .cpus_in_order()
                        .map(|candidate| candidate.cpu)
                        .collect();
                    return Err(TopologyError::CpuNotAllowed { cpu, allowed });
                }
            }
        }
        Ok(chosen)
    }

    /// Number of allowed CPUs.
    pub fn cpu_count(&self) -> usize {
        self.nodes.iter().map(|node| node.cpus.len()).sum()
    }
}

/// CPUs this process may run on (`sched_getaffinity`), ascending.
fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    if cpus.is_empty() {
        // The affinity call failed: the thread that asks is running somewhere, so CPU 0 is the
        // one thing we may assume.
        cpus.push(0);
    }
    cpus.sort_unstable();
    cpus
}

fn probe_hwloc(allowed: &[usize]) -> Result<Topology, String> {
    use hwlocality::object::types::ObjectType;
    let topology = hwlocality::Topology::new().map_err(|error| error.to_string())?;
    let cores: Vec<Vec<usize>> = topology
        .objects_with_type(ObjectType::Core)
        .filter_map(|core| core.cpuset())
        .map(|cpuset| {
            cpuset
                .iter_set()
                .map(usize::from)
                .filter(|cpu| allowed.contains(cpu))
                .collect::<Vec<_>>()
        })
        .collect();
    let physical_cores = cores.len();
    let mut nodes = Vec::new();
    for node in topology.objects_with_type(ObjectType::NUMANode) {
        let Some(node_cpus) = node.cpuset() else {
            continue;
        };
        let in_node: Vec<&Vec<usize>> = cores
            .iter()
            .filter(|threads| threads.first().is_some_and(|cpu| node_cpus.is_set(*cpu)))
            .collect();
        let max_smt = in_node
            .iter()
            .map(|threads| threads.len())
            .max()
            .unwrap_or(0);
        let cpus: Vec<usize> = (0..max_smt)
            .flat_map(|sibling| {
                in_node
                    .iter()
                    .filter_map(move |threads| threads.get(sibling).copied())
            })
            .collect();
        if cpus.is_empty() {
            continue;
        }
        nodes.push(NumaNode {
            os_index: node.os_index().unwrap_or(nodes.len()),
            cpus,
            memory_bytes: node.total_memory(),
        });
    }
    if nodes.is_empty() {
        return Err(format!(
            "no NUMA node holds an allowed CPU (allowed: {allowed:?})"
        ));
    }
    Ok(Topology {
        nodes,
        physical_cores,
        source: "hwloc".to_owned(),
    })
}

/// Pins the calling thread to `cpu`. Returns false when the kernel refused (the thread then
/// runs wherever the scheduler puts it; callers log it).
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes() -> Topology {
        Topology {
            nodes: vec![
                NumaNode {
                    os_index: 0,
                    cpus: vec![0, 1, 4, 5],
                    memory_bytes: 0,
                },
                NumaNode {
                    os_index: 1,
                    cpus: vec![2, 3, 6, 7],
                    memory_bytes: 0,
                },
            ],
            physical_cores: 4,
            source: "test".to_owned(),
        }
    }

    #[test]
    fn threads_fill_one_node_before_the_next() {
        let chosen = two_nodes().choose_threads(5).unwrap();
        let cpus: Vec<(usize, usize)> = chosen.iter().map(|c| (c.cpu, c.numa_node)).collect();
        assert_eq!(cpus, vec![(0, 0), (1, 0), (4, 0), (5, 0), (2, 1)]);
    }

    #[test]
    fn more_threads_than_cpus_share_them_up_to_a_bound() {
        let chosen = two_nodes().choose_threads(10).unwrap();
        let cpus: Vec<usize> = chosen.iter().map(|c| c.cpu).collect();
        assert_eq!(cpus, vec![0, 1, 4, 5, 2, 3, 6, 7, 0, 1]);
        assert_eq!(
            two_nodes().choose_threads(33),
            Err(TopologyError::NotEnoughCpus {
                requested: 33,
                available: 8
            })
        );
        assert_eq!(two_nodes().choose_threads(0), Err(TopologyError::NoThreads));
    }

    #[test]
    fn explicit_cpus_are_checked() {
        let topology = two_nodes();
        assert_eq!(
            topology.choose_cpus(&[6, 0]).unwrap()[0],
            ChosenCpu {
                cpu: 6,
                numa_node: 1
            }
        );
        assert!(matches!(
            topology.choose_cpus(&[8]),
            Err(TopologyError::CpuNotAllowed { cpu: 8, .. })
        ));
        assert_eq!(
            topology.choose_cpus(&[1, 1]),
            Err(TopologyError::CpuRepeated { cpu: 1 })
        );
    }

    #[test]
    fn the_real_machine_has_every_allowed_cpu_once() {
        let topology = Topology::probe();
        let mut cpus: Vec<usize> = topology.cpus_in_order().map(|c| c.cpu).collect();
        let count = cpus.len();
        cpus.sort_unstable();
        cpus.dedup();
        assert_eq!(cpus.len(), count, "{topology:?}");
        assert_eq!(cpus, allowed_cpus(), "{topology:?}");
        assert!(pin_current_thread(cpus[0]));
    }
}
