//! Which session configuration file a command reads: `--config FILE`, else
//! `$KEYSMITH_CONFIG`, else the default path if that file exists
//! (`$XDG_CONFIG_HOME/keysmith/config.toml`, or `~/.config/keysmith/config.toml` when
//! `XDG_CONFIG_HOME` is unset or not absolute, as the XDG base directory spec says).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the configuration file.
pub const ENV: &str = "KEYSMITH_CONFIG";

/// The configuration file: the flag, else `KEYSMITH_CONFIG`, else the default path when
/// that file exists; `None` when there is none (commands that need one say so).
pub fn resolve(flag: Option<PathBuf>) -> Option<PathBuf> {
    resolve_from(
        flag,
        std::env::var_os(ENV),
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

fn resolve_from(
    flag: Option<PathBuf>,
    env: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return Some(PathBuf::from(e));
    }
    default_path(xdg, home).filter(|p| p.is_file())
}

/// `$XDG_CONFIG_HOME/keysmith/config.toml`, else `$HOME/.config/keysmith/config.toml`.
fn default_path(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = match xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(x) => x,
        None => Path::new(&home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join("keysmith").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn the_flag_then_the_environment_then_the_default() {
        let flag = Some(PathBuf::from("flag.toml"));
        assert_eq!(
            resolve_from(flag.clone(), os("env.toml"), os("/x"), os("/h")),
            flag
        );
        assert_eq!(
            resolve_from(None, os("env.toml"), os("/x"), os("/h")),
            Some(PathBuf::from("env.toml"))
        );
        // An empty variable is unset; a default file that does not exist is no config.
        assert_eq!(resolve_from(None, os(""), os("/nonexistent"), None), None);
    }

    #[test]
    fn default_path_follows_xdg() {
        assert_eq!(
            default_path(os("/x"), os("/h")),
            Some(PathBuf::from("/x/keysmith/config.toml"))
        );
        // A relative XDG_CONFIG_HOME is ignored.
        assert_eq!(
            default_path(os("rel"), os("/h")),
            Some(PathBuf::from("/h/.config/keysmith/config.toml"))
        );
        assert_eq!(default_path(None, None), None);
    }
}
