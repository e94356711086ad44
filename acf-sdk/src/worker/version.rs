//! Engine version gates (`Dispatcher/GetVersion`), as in Python's `engine_version.py`.

/// A parsed engine version; unparsable or missing (`UNIMPLEMENTED`) versions are `0.0.0` (legacy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EngineVersion(pub u64, pub u64, pub u64);

impl EngineVersion {
    /// `slot_config` at registration (older engines take the deprecated `slots`).
    pub const SLOT_CONFIG: Self = Self(0, 78, 23);
    /// The `DurableTask` stream (older engines use `RegisterDurableEvent` / `ListenForDurableEvent`).
    pub const DURABLE_TASK_STREAM: Self = Self(0, 80, 0);

    /// Parses `v0.94.16`, `0.94.16-rc1`…: strips a leading `v` and any `-suffix`; invalid → `0.0.0`.
    pub fn parse(text: &str) -> Self {
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Self(a, b, c),
            _ => Self::default(),
        }
    }

    /// Whether `Register` may use `slot_config`.
    pub fn supports_slot_config(self) -> bool {
        self >= Self::SLOT_CONFIG
    }

    /// Whether durable waits use the `DurableTask` stream.
    pub fn supports_durable_stream(self) -> bool {
        self >= Self::DURABLE_TASK_STREAM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_gates() {
        assert_eq!(EngineVersion::parse("v0.94.16"), EngineVersion(0, 94, 16));
        assert_eq!(EngineVersion::parse("0.80.0-rc.1"), EngineVersion(0, 80, 0));
        assert_eq!(EngineVersion::parse("garbage"), EngineVersion(0, 0, 0));
        assert!(EngineVersion::parse("v0.78.23").supports_slot_config());
        assert!(!EngineVersion::parse("v0.78.22").supports_slot_config());
        assert!(!EngineVersion::parse("v0.79.9").supports_durable_stream());
        assert!(EngineVersion::parse("v1.0.0").supports_durable_stream());
    }
}
