//! `run.json`: what a reproduction records of itself (profile, commit, device, and the
//! seconds of each stage), written after every stage and read back by the next invocation.

use serde::{Deserialize, Serialize};

/// The record of a reproduction. A run cut short holds only its `stages` so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    /// The profile's name.
    pub profile: String,
    /// The profile's one-line summary.
    pub summary: String,
    /// The device the stages ran on.
    pub device: String,
    /// The commit the binary was built from.
    pub commit: String,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
    /// Seconds of the stages when they computed their results (a rerun reuses them).
    pub first_seconds: f64,
    /// Studies skipped, one line each.
    pub skipped: Vec<String>,
    /// The stages, in the plan's order.
    pub stages: Vec<StageTime>,
}

/// The seconds of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageTime {
    /// The stage's label.
    pub stage: String,
    /// Seconds in this invocation.
    pub seconds: f64,
    /// Seconds when it computed its results.
    pub first_seconds: f64,
}

impl RunRecord {
    /// The recorded stage `label`.
    pub fn stage(&self, label: &str) -> Option<&StageTime> {
        self.stages.iter().find(|s| s.stage == label)
    }
}
