//! CPU time from /proc: the server's (all threads), ours, and the whole machine's, so a run
//! reports ops per server-CPU-second, the figure that survives client and server sharing cores.

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// utime + stime of a process, all its threads, in seconds; None when it is gone.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and ends at the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

/// CPU seconds this process has used.
pub fn own_seconds() -> f64 {
    process_seconds(std::process::id()).unwrap_or(0.0)
}

/// Busy CPU seconds of the whole machine (all but idle and iowait).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle) / clock_ticks_per_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = own_seconds();
        let mut spin = 0u64;
        let started = std::time::Instant::now();
        while own_seconds() <= before && started.elapsed().as_secs() < 5 {
            spin = spin.wrapping_add(std::hint::black_box(1));
        }
        assert!(
            own_seconds() > before,
            "spun {spin} times without using CPU time"
        );
        assert!(process_seconds(u32::MAX).is_none());
    }
}
