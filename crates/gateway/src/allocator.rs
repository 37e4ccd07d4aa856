//! The allocator's settings for a serving gateway.
//!
//! mimalloc reads its settings from the environment once, before `main` runs (its first
//! arena is made by the runtime's first allocation), and its defaults favour speed over
//! memory: the arena committed eagerly and backed by transparent huge pages, freed
//! memory kept for a second before it goes back to the system. Measured on the create
//! path (docs/performance.md, "Memory"), committing on demand and giving freed memory
//! back after 10 ms cut the peak resident memory at 1 024 connections by a third (130–148
//! → 93–94 MB), for about 5 % more of the gateway's CPU per create and 0–3 % of create
//! throughput (the heap off transparent huge pages). On Linux `serve` therefore starts
//! with those two settings in its environment: when the operator left one unset, the
//! process replaces itself (`exec`, same process id, same arguments) with them set. A
//! value the operator set is kept as it is (`MIMALLOC_PURGE_DELAY=1000
//! MIMALLOC_ARENA_EAGER_COMMIT=2` are mimalloc's own defaults). One-off commands keep
//! mimalloc's defaults: they exit before memory matters.

use std::ffi::OsString;

/// mimalloc's settings a serving gateway starts with, as environment variables and
/// their values: commit arena memory as it is used, and give freed memory back to the
/// system after 10 ms instead of a second.
pub const SERVING_DEFAULTS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "10"),
];

/// The settings of [`SERVING_DEFAULTS`] missing from `environment` (the operator's own
/// values win, whatever they are, an empty one included).
pub fn missing(
    environment: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(&'static str, &'static str)> {
    let set: Vec<OsString> = environment.into_iter().map(|(name, _)| name).collect();
    SERVING_DEFAULTS
        .into_iter()
        .filter(|(name, _)| !set.iter().any(|have| have == name))
        .collect()
}

/// Restarts this process in place with the serving defaults the environment lacks.
/// Returns only when nothing was missing (`None`) or the restart failed (the error: the
/// gateway then serves with mimalloc's own defaults, which only cost memory).
pub fn serve_with_defaults() -> Option<std::io::Error> {
    let missing = missing(std::env::vars_os());
    if missing.is_empty() {
        return None;
    }
    restart_with(&missing)
}

#[cfg(target_os = "linux")]
fn restart_with(settings: &[(&str, &str)]) -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    // The running binary's own file (still the same one if its path was replaced or
    // removed since it started), under the name it was started with.
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    command.args(args).envs(settings.iter().copied());
    Some(command.exec())
}

#[cfg(not(target_os = "linux"))]
fn restart_with(_settings: &[(&str, &str)]) -> Option<std::io::Error> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn both_settings_are_missing_from_a_plain_environment() {
        assert_eq!(
            missing(env(&[("PATH", "/usr/bin"), ("MIMALLOC_SHOW_STATS", "1")])),
            SERVING_DEFAULTS.to_vec()
        );
    }

    #[test]
    fn an_operators_value_is_kept_even_an_empty_one() {
        assert_eq!(
            missing(env(&[("MIMALLOC_PURGE_DELAY", "1000")])),
            vec![("MIMALLOC_ARENA_EAGER_COMMIT", "0")]
        );
        assert!(
            missing(env(&[
                ("MIMALLOC_PURGE_DELAY", ""),
                ("MIMALLOC_ARENA_EAGER_COMMIT", "2")
            ]))
            .is_empty()
        );
    }
}
