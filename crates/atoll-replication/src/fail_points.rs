//! The one way tests arm fail points (fail-rs): in this process, for as
//! long as a guard lives, or in a child `atoll` process through the
//! `FAILPOINTS` environment variable it reads at start.
//!
//! Fail points are process-wide: a test arms only points no other test of
//! its binary passes through, and the guard disarms its point even when the
//! test fails half-way (a `fail::remove` at the end of a test would be
//! skipped by the panic and leave the point armed for the tests after it).

/// A fail point armed until this guard is dropped.
#[must_use = "the fail point is disarmed when the guard is dropped"]
pub struct ArmedFailPoint {
    name: &'static str,
}

/// Arms fail point `name` with fail-rs's `action` (`"return"`,
/// `"return(3)"`, `"sleep(100)"`, ...) until the guard is dropped.
pub fn arm(name: &'static str, action: &str) -> Result<ArmedFailPoint, String> {
    fail::cfg(name, action)?;
    Ok(ArmedFailPoint { name })
}

impl Drop for ArmedFailPoint {
    fn drop(&mut self) {
        fail::remove(self.name);
    }
}

/// Arms the fail points the `FAILPOINTS` environment variable names
/// (`name=action;...`) for the life of the process, so tests can stop the
/// real binary at chosen steps.
pub fn arm_from_env() {
    std::mem::forget(fail::FailScenario::setup());
}
