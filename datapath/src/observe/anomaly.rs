//! Anomaly signals: a sudden drop of the hit ratio, an eviction storm, a jump of the p99
//! latency, each judged against a moving baseline of the shard's own recent windows.
//!
//! Every [`WINDOW_MS`] a shard hands the window's figures to its [`Detector`]. The baseline is
//! an exponentially weighted moving average of past windows (weight [`BASELINE_WEIGHT`] for the
//! newest), and nothing is judged before [`WARMUP_WINDOWS`] windows have built it. A window that
//! fires a signal is counted (for /metrics and INFO); it is logged at most once per
//! [`LOG_INTERVAL_MS`] per signal, with its figures. Anomalous windows still enter the baseline,
//! slowly, so a lasting change of workload stops firing once it is the new normal.

/// Length of a window.
pub const WINDOW_MS: u64 = 1000;
/// Weight of the newest window in the baseline.
pub const BASELINE_WEIGHT: f64 = 0.125;
/// Windows seen before any signal is judged.
pub const WARMUP_WINDOWS: u64 = 5;
/// A window's hit ratio this far (absolute) below the baseline's is a drop.
pub const HIT_RATIO_DROP: f64 = 0.2;
/// Lookups a window needs before its hit ratio means anything.
pub const LOOKUPS_MIN: u64 = 100;
/// Evictions this many times the baseline's are a storm...
pub const EVICTION_STORM_FACTOR: f64 = 4.0;
/// ...when they are also at least this many items in the window.
pub const EVICTION_STORM_MIN: u64 = 1000;
/// A window's p99 this many times the baseline's is a jump...
pub const P99_JUMP_FACTOR: f64 = 4.0;
/// ...when it is also at least this long (shorter latencies are noise on a loaded machine).
pub const P99_JUMP_MIN_NS: u64 = 1_000_000;
/// Commands a window needs before its p99 means anything.
pub const COMMANDS_MIN: u64 = 100;
/// Least time between two log lines of one signal.
pub const LOG_INTERVAL_MS: u64 = 60_000;

/// What a signal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    HitRatioDrop,
    EvictionStorm,
    LatencyJump,
}

impl Signal {
    pub const ALL: [Signal; 3] = [
        Signal::HitRatioDrop,
        Signal::EvictionStorm,
        Signal::LatencyJump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::HitRatioDrop => "hit_ratio_drop",
            Signal::EvictionStorm => "eviction_storm",
            Signal::LatencyJump => "latency_p99_jump",
        }
    }
}

/// One window's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub commands: u64,
    pub p99_ns: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Baseline {
    hit_ratio: f64,
    evictions: f64,
    p99_ns: f64,
}

/// A signal a window fired, with the figures that fired it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fired {
    pub signal: Signal,
    pub observed: f64,
    pub baseline: f64,
    /// False when the signal was logged less than [`LOG_INTERVAL_MS`] ago.
    pub log: bool,
}

/// One shard's detector.
#[derive(Debug, Default)]
pub struct Detector {
    baseline: Baseline,
    /// Windows in the baseline of each figure (a figure is only folded in when it means
    /// something: enough lookups, enough commands).
    windows_hit_ratio: u64,
    windows_evictions: u64,
    windows_p99: u64,
    counts: [u64; 3],
    last_logged_ms: [Option<u64>; 3],
}

fn fold(baseline: &mut f64, windows: &mut u64, value: f64) {
    *baseline = if *windows == 0 {
        value
    } else {
        *baseline + BASELINE_WEIGHT * (value - *baseline)
    };
    *windows += 1;
}

impl Detector {
    /// Judges one window, folds it into the baseline, and returns the signals it fired.
    pub fn observe(&mut self, window: &Window, now_ms: u64) -> Vec<Fired> {
        let mut fired = Vec::new();
        let lookups = window.hits + window.misses;
        if lookups >= LOOKUPS_MIN {
            let ratio = window.hits as f64 / lookups as f64;
            if self.windows_hit_ratio >= WARMUP_WINDOWS
                && ratio < self.baseline.hit_ratio - HIT_RATIO_DROP
            {
                fired.push((Signal::HitRatioDrop, ratio, self.baseline.hit_ratio));
            }
            fold(
                &mut self.baseline.hit_ratio,
                &mut self.windows_hit_ratio,
                ratio,
            );
        }
        let evictions = window.evictions as f64;
        if self.windows_evictions >= WARMUP_WINDOWS
            && window.evictions >= EVICTION_STORM_MIN
            && evictions > self.baseline.evictions * EVICTION_STORM_FACTOR
        {
            fired.push((Signal::EvictionStorm, evictions, self.baseline.evictions));
        }
        fold(
            &mut self.baseline.evictions,
            &mut self.windows_evictions,
            evictions,
        );
        if window.commands >= COMMANDS_MIN {
            let p99 = window.p99_ns as f64;
            if self.windows_p99 >= WARMUP_WINDOWS
                && window.p99_ns >= P99_JUMP_MIN_NS
                && p99 > self.baseline.p99_ns * P99_JUMP_FACTOR
            {
                fired.push((Signal::LatencyJump, p99, self.baseline.p99_ns));
            }
            fold(&mut self.baseline.p99_ns, &mut self.windows_p99, p99);
        }
        fired
            .into_iter()
            .map(|(signal, observed, baseline)| {
                let index = signal as usize;
                self.counts[index] += 1;
                let log = self.last_logged_ms[index]
                    .is_none_or(|last| now_ms.saturating_sub(last) >= LOG_INTERVAL_MS);
                if log {
                    self.last_logged_ms[index] = Some(now_ms);
                }
                Fired {
                    signal,
                    observed,
                    baseline,
                    log,
                }
            })
            .collect()
    }

    /// Windows that fired `signal` since start (or the last reset).
    pub fn count(&self, signal: Signal) -> u64 {
        self.counts[signal as usize]
    }

    pub fn reset_counts(&mut self) {
        self.counts = [0; 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEADY: Window = Window {
        hits: 900,
        misses: 100,
        evictions: 10,
        commands: 2000,
        p99_ns: 50_000,
    };

    fn warmed() -> Detector {
        let mut detector = Detector::default();
        for window in 0..WARMUP_WINDOWS {
            assert!(detector.observe(&STEADY, window * WINDOW_MS).is_empty());
        }
        detector
    }

    #[test]
    fn steady_windows_fire_nothing() {
        let mut detector = warmed();
        for window in 0..100 {
            assert!(detector.observe(&STEADY, window * WINDOW_MS).is_empty());
        }
        assert!(Signal::ALL
            .iter()
            .all(|&signal| detector.count(signal) == 0));
    }

    #[test]
    fn each_signal_fires_on_its_own_anomaly() {
        let mut detector = warmed();
        let drop = Window {
            hits: 500,
            misses: 500,
            ..STEADY
        };
        let fired = detector.observe(&drop, 10_000);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].signal, Signal::HitRatioDrop);
        assert_eq!(fired[0].observed, 0.5);
        assert!((fired[0].baseline - 0.9).abs() < 1e-9);
        assert!(fired[0].log);

        let mut detector = warmed();
        let storm = Window {
            evictions: 5000,
            ..STEADY
        };
        let fired = detector.observe(&storm, 10_000);
        assert_eq!(
            fired.iter().map(|f| f.signal).collect::<Vec<_>>(),
            vec![Signal::EvictionStorm]
        );

        let mut detector = warmed();
        let slow = Window {
            p99_ns: 2_000_000,
            ..STEADY
        };
        let fired = detector.observe(&slow, 10_000);
        assert_eq!(
            fired.iter().map(|f| f.signal).collect::<Vec<_>>(),
            vec![Signal::LatencyJump]
        );
        assert_eq!(detector.count(Signal::LatencyJump), 1);
    }

    #[test]
    fn logs_once_per_interval_and_counts_every_window() {
        let mut detector = warmed();
        let slow = Window {
            p99_ns: 20_000_000,
            ..STEADY
        };
        let logged: Vec<bool> = (0..3)
            .map(|window| detector.observe(&slow, 10_000 + window * WINDOW_MS)[0].log)
            .collect();
        assert_eq!(logged, vec![true, false, false]);
        assert_eq!(detector.count(Signal::LatencyJump), 3);
        let later = detector.observe(&slow, 10_000 + LOG_INTERVAL_MS);
        assert!(later.is_empty() || later[0].log);
    }

    #[test]
    fn small_windows_and_short_latencies_are_not_judged() {
        let mut detector = warmed();
        let quiet = Window {
            hits: 1,
            misses: 50,
            evictions: 999,
            commands: 51,
            p99_ns: 10_000_000,
        };
        assert!(detector.observe(&quiet, 10_000).is_empty());
        let fast_jump = Window {
            p99_ns: P99_JUMP_MIN_NS - 1,
            ..STEADY
        };
        assert!(detector.observe(&fast_jump, 11_000).is_empty());
    }
}
