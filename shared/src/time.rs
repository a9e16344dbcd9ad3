//! Wall-clock time, in whole seconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in seconds since the Unix epoch (0 if the clock is before it).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
