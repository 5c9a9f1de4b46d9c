//! Committed exit-path figures (`tests/figures/exit-costs.toml`) against the probe's
//! `exit-cost:` lines (issue 8): parsing both and the 10 % rule, host-tested here;
//! `tests/tests/guest_probe.rs` applies them to a probe boot.
//!
//! The file is a small subset of TOML, read by hand: one `[<path>]` table per figure with
//! `committed = <number>` (required) and `target = <number>` (optional), `#` comments and
//! blank lines. The probe prints `exit-cost: path=<path> iterations=<N> ns_per_op=<X.Y> ...`
//! (format: `tests/guests/src/bin/probe.rs`, "Exit-cost lines").

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::paths;

/// The committed figures, relative to the workspace root.
pub const EXIT_COSTS_FILE: &str = "tests/figures/exit-costs.toml";
/// The same figures on a GICv2 machine (`gic-version=2`).
pub const EXIT_COSTS_GICV2_FILE: &str = "tests/figures/exit-costs-gicv2.toml";

/// How far a measured figure may exceed its committed value: 10 %.
pub const TOLERANCE: f64 = 0.10;

/// The committed figures file.
pub fn exit_costs_file() -> PathBuf {
    paths::workspace_root().join(EXIT_COSTS_FILE)
}

/// The committed figures file for a machine with GIC version `gic`, relative to the
/// workspace root.
pub fn exit_costs_file_for(gic: u8) -> &'static str {
    if gic == 2 {
        EXIT_COSTS_GICV2_FILE
    } else {
        EXIT_COSTS_FILE
    }
}

/// One path's committed figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The path, as the probe names it (`smccc-version`, ...).
    pub path: String,
    /// The figure measured when it was last committed (ns; instructions under icount).
    pub committed: f64,
    /// Issue 8's goal, if the file gives one.
    pub target: Option<f64>,
}

/// The largest measured figure that passes for `committed`.
pub fn limit(committed: f64) -> f64 {
    committed * (1.0 + TOLERANCE)
}

/// A path name: non-empty lowercase letters, digits and `-`.
fn valid_path(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A non-negative finite number, TOML style (`1129`, `1129.0`, `1_129.5`).
fn number(text: &str) -> Option<f64> {
    let digits = text.replace('_', "");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    digits.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses the committed figures file; errors name the line.
pub fn parse_committed(text: &str) -> Result<Vec<Committed>, String> {
    let mut out: Vec<Committed> = Vec::new();
    // Per table: the path, and whether `committed` was given.
    let mut current: Option<(usize, bool)> = None;
    let close = |out: &[Committed], current: Option<(usize, bool)>| match current {
        Some((i, false)) => Err(format!("[{}]: no `committed = <number>`", out[i].path)),
        _ => Ok(()),
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let at = |what: &str| format!("line {}: {what}: {raw:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .map(str::trim)
                .filter(|name| valid_path(name))
                .ok_or_else(|| at("want a table header [<path>] of a-z, 0-9 and -"))?;
            if out.iter().any(|c| c.path == name) {
                return Err(at(&format!("[{name}] appears twice")));
            }
            close(&out, current)?;
            out.push(Committed {
                path: name.to_string(),
                committed: f64::NAN,
                target: None,
            });
            current = Some((out.len() - 1, false));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| at("want `key = <number>` or `[<path>]`"))?;
        let Some((i, seen)) = current.as_mut() else {
            return Err(at("a key before the first [<path>] table"));
        };
        let value = number(value).ok_or_else(|| at("want a non-negative number"))?;
        let entry = &mut out[*i];
        match key {
            "committed" if !*seen => {
                entry.committed = value;
                *seen = true;
            }
            "target" if entry.target.is_none() => entry.target = Some(value),
            "committed" | "target" => return Err(at(&format!("`{key}` given twice"))),
            _ => return Err(at("unknown key (want `committed` or `target`)")),
        }
    }
    close(&out, current)?;
    if out.is_empty() {
        return Err("no [<path>] table".into());
    }
    Ok(out)
}

/// One `exit-cost:` line of the probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The path it measured.
    pub path: String,
    /// Its figure (`ns_per_op`).
    pub ns_per_op: f64,
}

/// Parses a probe line (without Tandem's VM tag): `None` if it is no `exit-cost:` line,
/// an error if it is one without a valid `path=` and `ns_per_op=`.
pub fn parse_exit_cost(line: &str) -> Option<Result<Measured, String>> {
    let rest = line.trim_end().strip_prefix("exit-cost: ")?;
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    };
    let path = field("path").filter(|p| valid_path(p));
    let ns = field("ns_per_op").and_then(number);
    Some(match (path, ns) {
        (Some(path), Some(ns_per_op)) => Ok(Measured {
            path: path.to_string(),
            ns_per_op,
        }),
        _ => Err(format!(
            "{line:?}: want `exit-cost: path=<a-z0-9-> ... ns_per_op=<number>`"
        )),
    })
}

/// Every `exit-cost:` line among `lines`; an error for a malformed one or a path measured
/// twice.
pub fn parse_log<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Vec<Measured>, String> {
    let mut out: Vec<Measured> = Vec::new();
    for line in lines {
        if let Some(m) = parse_exit_cost(line) {
            let m = m?;
            if out.iter().any(|o| o.path == m.path) {
                return Err(format!("path {} measured twice", m.path));
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// How one path fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within 10 % above the committed figure, or below it by at most 10 %.
    Within,
    /// More than 10 % below the committed figure: passes, but the file wants the new one.
    Improved,
    /// More than 10 % above the committed figure: fails.
    Exceeds,
    /// Committed but not in the log: fails.
    Missing,
    /// In the log but not committed: fails (add it to the file).
    Uncommitted,
}

impl Verdict {
    /// Whether this verdict fails the test.
    pub fn fails(self) -> bool {
        matches!(
            self,
            Verdict::Exceeds | Verdict::Missing | Verdict::Uncommitted
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Verdict::Within => "ok",
            Verdict::Improved => "ok, more than 10 % below: commit the new figure",
            Verdict::Exceeds => "FAIL: more than 10 % above the committed figure",
            Verdict::Missing => "FAIL: committed, but the probe printed no such exit-cost line",
            Verdict::Uncommitted => "FAIL: not in the figures file; add it",
        }
    }
}

/// One path in the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The path.
    pub path: String,
    /// Its measured figure, if the log had one.
    pub measured: Option<f64>,
    /// Its committed figure, if the file has one.
    pub committed: Option<f64>,
    /// Its target, if the file gives one.
    pub target: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
}

/// Every committed path (in file order), then every measured path the file lacks.
pub fn compare(measured: &[Measured], committed: &[Committed]) -> Vec<Row> {
    let mut rows: Vec<Row> = committed
        .iter()
        .map(|c| {
            let m = measured
                .iter()
                .find(|m| m.path == c.path)
                .map(|m| m.ns_per_op);
            let verdict = match m {
                None => Verdict::Missing,
                Some(v) if v > limit(c.committed) => Verdict::Exceeds,
                Some(v) if v < c.committed * (1.0 - TOLERANCE) => Verdict::Improved,
                Some(_) => Verdict::Within,
            };
            Row {
                path: c.path.clone(),
                measured: m,
                committed: Some(c.committed),
                target: c.target,
                verdict,
            }
        })
        .collect();
    rows.extend(
        measured
            .iter()
            .filter(|m| !committed.iter().any(|c| c.path == m.path))
            .map(|m| Row {
                path: m.path.clone(),
                measured: Some(m.ns_per_op),
                committed: None,
                target: None,
                verdict: Verdict::Uncommitted,
            }),
    );
    rows
}

/// The comparison as a table, one path a line: measured, committed, the limit (+10 %),
/// the target, the verdict.
pub fn table(rows: &[Row]) -> String {
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut out = format!(
        "{:<16} {:>10} {:>10} {:>10} {:>8}  verdict (ns = instructions under -icount shift=0)\n",
        "path", "measured", "committed", "limit", "target"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>10} {:>8}  {}",
            r.path,
            num(r.measured),
            num(r.committed),
            num(r.committed.map(limit)),
            num(r.target),
            r.verdict.describe()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
[smccc-version]
# hvc
committed = 782.0   # today
target = 150

[gicd-read]
committed = 1_129
";

    fn m(path: &str, ns: f64) -> Measured {
        Measured {
            path: path.into(),
            ns_per_op: ns,
        }
    }

    #[test]
    fn parses_tables() {
        assert_eq!(
            parse_committed(FILE),
            Ok(vec![
                Committed {
                    path: "smccc-version".into(),
                    committed: 782.0,
                    target: Some(150.0)
                },
                Committed {
                    path: "gicd-read".into(),
                    committed: 1129.0,
                    target: None
                },
            ])
        );
    }

    #[test]
    fn rejects_malformed_files() {
        for (text, want) in [
            ("", "no [<path>] table"),
            ("committed = 1\n", "line 1: a key before the first"),
            ("[a]\n", "[a]: no `committed"),
            (
                "[a]\ntarget = 1\n[b]\ncommitted = 2\n",
                "[a]: no `committed",
            ),
            (
                "[a]\ncommitted = 1\n[a]\ncommitted = 2\n",
                "line 3: [a] appears twice",
            ),
            (
                "[a]\ncommitted = 1\ncommitted = 2\n",
                "line 3: `committed` given twice",
            ),
            (
                "[a]\ncommitted = fast\n",
                "line 2: want a non-negative number",
            ),
            (
                "[a]\ncommitted = -1\n",
                "line 2: want a non-negative number",
            ),
            ("[a]\ncommitted = 1\nlimit = 2\n", "line 3: unknown key"),
            ("[A b]\ncommitted = 1\n", "line 1: want a table header"),
            ("[a]\ncommitted 1\n", "line 2: want `key = <number>`"),
        ] {
            let err = parse_committed(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn parses_exit_cost_lines() {
        assert_eq!(
            parse_exit_cost(
                "exit-cost: path=smccc-version iterations=100000 ns_per_op=782.0 gross_ns_per_op=787.0"
            ),
            Some(Ok(m("smccc-version", 782.0)))
        );
        assert_eq!(
            parse_exit_cost("hvc-roundtrip: calls=1 ns_per_call=927.0"),
            None
        );
        assert!(matches!(
            parse_exit_cost("exit-cost: path=x ns_per_op=fast"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_exit_cost("exit-cost: ns_per_op=1.0"),
            Some(Err(_))
        ));
        // `gross_ns_per_op=` is not `ns_per_op=`.
        assert!(matches!(
            parse_exit_cost("exit-cost: path=x gross_ns_per_op=1.0"),
            Some(Err(_))
        ));
    }

    #[test]
    fn log_rejects_a_path_twice() {
        let lines = [
            "exit-cost: path=a ns_per_op=1.0",
            "[T] x PASS",
            "exit-cost: path=a ns_per_op=2.0",
        ];
        assert!(parse_log(lines).is_err());
        assert_eq!(parse_log(lines[..2].iter().copied()), Ok(vec![m("a", 1.0)]));
    }

    #[test]
    fn ten_percent_rule() {
        let committed = parse_committed(FILE).unwrap();
        let verdicts = |smccc: f64| {
            compare(
                &[m("smccc-version", smccc), m("gicd-read", 1129.0)],
                &committed,
            )
            .iter()
            .map(|r| r.verdict)
            .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(782.0), [Verdict::Within, Verdict::Within]);
        assert_eq!(verdicts(860.0), [Verdict::Within, Verdict::Within]);
        assert_eq!(verdicts(861.0), [Verdict::Exceeds, Verdict::Within]);
        assert_eq!(verdicts(704.0), [Verdict::Within, Verdict::Within]);
        assert_eq!(verdicts(150.0), [Verdict::Improved, Verdict::Within]);
        assert!(Verdict::Exceeds.fails() && !Verdict::Improved.fails());
    }

    #[test]
    fn missing_and_uncommitted_paths_fail() {
        let committed = parse_committed(FILE).unwrap();
        let rows = compare(&[m("gicd-read", 1.0), m("new-path", 5.0)], &committed);
        let got: Vec<(&str, Verdict)> = rows.iter().map(|r| (r.path.as_str(), r.verdict)).collect();
        assert_eq!(
            got,
            [
                ("smccc-version", Verdict::Missing),
                ("gicd-read", Verdict::Improved),
                ("new-path", Verdict::Uncommitted),
            ]
        );
        let t = table(&rows);
        assert!(t.contains("smccc-version"), "{t}");
        assert!(
            t.contains("FAIL: committed, but the probe printed no such"),
            "{t}"
        );
    }

    /// The committed file itself parses.
    #[test]
    fn committed_file_parses() {
        let text = std::fs::read_to_string(exit_costs_file()).unwrap();
        let figures = parse_committed(&text).unwrap();
        for path in [
            "smccc-version",
            "tandem-version",
            "gicd-read",
            "vtimer-latency",
        ] {
            assert!(
                figures.iter().any(|f| f.path == path),
                "{path} not committed"
            );
        }
    }
}
