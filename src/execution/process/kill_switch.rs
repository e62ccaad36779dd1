//! The kill switch: while engaged, no new entries are sent (exits and protective stops keep
//! working). An operator engages it with `touch <state_dir>/KILL_SWITCH` (effective on the next
//! cycle, no restart) or the config flag. It is checked every cycle with one `stat`, and it
//! fails closed: if we cannot tell whether the file exists, it counts as engaged.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The kill-switch file's name inside the state directory. Its content is irrelevant.
pub const KILL_SWITCH_FILE_NAME: &str = "KILL_SWITCH";

/// What engaged the kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSwitchSource {
    File,
    Config,
}

impl KillSwitchSource {
    pub fn as_str(self) -> &'static str {
        match self {
            KillSwitchSource::File => "file",
            KillSwitchSource::Config => "config",
        }
    }
}

impl fmt::Display for KillSwitchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one check. `Display` gives an operator-facing sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitchState {
    pub engaged: bool,
    /// `Some` exactly when engaged.
    pub source: Option<KillSwitchSource>,
    /// Why it is engaged, with what to do about it; `None` when not engaged.
    pub reason: Option<String>,
}

impl KillSwitchState {
    fn off() -> KillSwitchState {
        KillSwitchState {
            engaged: false,
            source: None,
            reason: None,
        }
    }

    fn on(source: KillSwitchSource, reason: String) -> KillSwitchState {
        KillSwitchState {
            engaged: true,
            source: Some(source),
            reason: Some(reason),
        }
    }
}

impl fmt::Display for KillSwitchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(reason) => write!(f, "kill switch engaged: {reason}"),
            None => f.write_str("kill switch off"),
        }
    }
}

/// Namespace for the check; the switch has no state of its own between cycles.
#[derive(Debug)]
pub struct KillSwitch;

impl KillSwitch {
    /// The kill-switch file for `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(KILL_SWITCH_FILE_NAME)
    }

    /// Check the config flag, then the file. The config flag wins (and saves the `stat`).
    pub fn check(state_dir: &Path, config_flag: bool) -> KillSwitchState {
        if config_flag {
            return KillSwitchState::on(
                KillSwitchSource::Config,
                "the configuration sets the kill switch; unset it in the configuration file to \
                 resume entries"
                    .to_string(),
            );
        }
        let path = KillSwitch::path(state_dir);
        // symlink_metadata: any entry named KILL_SWITCH (even a dangling symlink or a
        // directory) expresses the operator's intent.
        match std::fs::symlink_metadata(&path) {
            Ok(_) => KillSwitchState::on(
                KillSwitchSource::File,
                format!("{} exists; remove it to resume entries", path.display()),
            ),
            Err(error) if error.kind() == io::ErrorKind::NotFound => KillSwitchState::off(),
            Err(error) => KillSwitchState::on(
                KillSwitchSource::File,
                format!(
                    "cannot check {}: {error}; treating it as engaged until the state directory \
                     is readable again",
                    path.display()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_file_or_flag() {
        let dir = tempfile::tempdir().unwrap();
        let state = KillSwitch::check(dir.path(), false);
        assert_eq!(state, KillSwitchState::off());
        assert!(!state.engaged);
        assert_eq!(state.to_string(), "kill switch off");
    }

    #[test]
    fn the_file_engages_it_whatever_its_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(KillSwitch::path(dir.path()), "").unwrap();
        let state = KillSwitch::check(dir.path(), false);
        assert!(state.engaged);
        assert_eq!(state.source, Some(KillSwitchSource::File));
        assert_eq!(state.source.unwrap().as_str(), "file");
        let text = state.to_string();
        assert!(text.contains("KILL_SWITCH exists"), "{text}");
        assert!(text.contains("remove it"), "{text}");

        std::fs::remove_file(KillSwitch::path(dir.path())).unwrap();
        assert!(!KillSwitch::check(dir.path(), false).engaged);
    }

    #[test]
    fn a_dangling_symlink_or_directory_counts_as_present() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), KillSwitch::path(dir.path()))
            .unwrap();
        assert!(KillSwitch::check(dir.path(), false).engaged);

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(KillSwitch::path(dir.path())).unwrap();
        assert!(KillSwitch::check(dir.path(), false).engaged);
    }

    #[test]
    fn the_config_flag_engages_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = KillSwitch::check(dir.path(), true);
        assert!(state.engaged);
        assert_eq!(state.source, Some(KillSwitchSource::Config));
        assert_eq!(state.source.unwrap().to_string(), "config");
        assert!(state.to_string().contains("configuration"));
    }

    #[test]
    fn a_stat_error_other_than_not_found_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        // The "state directory" is a regular file: stat of a path below it fails with
        // ENOTDIR, which is not "the kill-switch file is absent".
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, "").unwrap();
        let state = KillSwitch::check(&not_a_dir, false);
        assert!(state.engaged, "{state:?}");
        assert_eq!(state.source, Some(KillSwitchSource::File));
        let text = state.to_string();
        assert!(text.contains("cannot check"), "{text}");
        assert!(text.contains("treating it as engaged"), "{text}");
    }

    #[test]
    fn a_missing_state_dir_is_not_found_hence_off() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!KillSwitch::check(&dir.path().join("absent"), false).engaged);
    }
}
