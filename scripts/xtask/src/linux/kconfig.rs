//! Kconfig fragments: what the fragment asks for, and whether `.config` has it.
//!
//! `merge_config.sh` + `olddefconfig` silently drop a symbol whose
//! dependencies are not met. [`missing`] compares the fragment with the final
//! `.config` so that such a drop is an error naming the symbol.

/// One setting of a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `CONFIG_NAME=value` (value as written: `y`, a number, a quoted string).
    Value(String, String),
    /// `# CONFIG_NAME is not set`.
    Unset(String),
}

/// Parses the settings of a fragment or `.config`, ignoring comments and blank lines.
pub fn parse(text: &str) -> Vec<Setting> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.strip_suffix(" is not set")?;
                return name
                    .starts_with("CONFIG_")
                    .then(|| Setting::Unset(name.to_string()));
            }
            let (name, value) = line.split_once('=')?;
            name.starts_with("CONFIG_")
                .then(|| Setting::Value(name.to_string(), value.to_string()))
        })
        .collect()
}

/// The fragment settings that the final `.config` does not honour, each as
/// `"CONFIG_X=y (final .config: ...)"`.
pub fn missing(fragment: &str, config: &str) -> Vec<String> {
    let final_settings = parse(config);
    let value_of = |name: &str| {
        final_settings.iter().find_map(|s| match s {
            Setting::Value(n, v) if n == name => Some(v.as_str()),
            _ => None,
        })
    };
    parse(fragment)
        .into_iter()
        .filter_map(|wanted| match wanted {
            Setting::Value(name, value) => match value_of(&name) {
                Some(v) if v == value => None,
                Some(v) => Some(format!("{name}={value} (final .config: {name}={v})")),
                None => Some(format!("{name}={value} (final .config: not set)")),
            },
            Setting::Unset(name) => match value_of(&name) {
                Some(v) if v == "y" || v == "m" => {
                    Some(format!("{name} off (final .config: {name}={v})"))
                }
                _ => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values, unset markers and comments parse as Kconfig writes them.
    #[test]
    fn parses_fragment_syntax() {
        let text =
            "# comment\n\nCONFIG_A=y\nCONFIG_S=\"-tandem\"\n# CONFIG_B is not set\nCONFIG_N=8\n";
        assert_eq!(
            parse(text),
            [
                Setting::Value("CONFIG_A".into(), "y".into()),
                Setting::Value("CONFIG_S".into(), "\"-tandem\"".into()),
                Setting::Unset("CONFIG_B".into()),
                Setting::Value("CONFIG_N".into(), "8".into()),
            ]
        );
    }

    /// A fully honoured fragment reports nothing.
    #[test]
    fn honoured_fragment_is_clean() {
        let fragment = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=8\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=8\nCONFIG_OTHER=y\n";
        assert!(missing(fragment, config).is_empty());
        // An unset symbol may also be absent altogether (its menu is off).
        assert!(missing("# CONFIG_B is not set\n", "CONFIG_A=y\n").is_empty());
    }

    /// Dropped, changed and wrongly enabled symbols are each named.
    #[test]
    fn reports_every_difference() {
        let fragment = "CONFIG_GONE=y\nCONFIG_N=8\n# CONFIG_ON is not set\nCONFIG_OK=y\n";
        let config = "# CONFIG_GONE is not set\nCONFIG_N=4\nCONFIG_ON=y\nCONFIG_OK=y\n";
        assert_eq!(
            missing(fragment, config),
            [
                "CONFIG_GONE=y (final .config: not set)",
                "CONFIG_N=8 (final .config: CONFIG_N=4)",
                "CONFIG_ON off (final .config: CONFIG_ON=y)",
            ]
        );
    }
}
