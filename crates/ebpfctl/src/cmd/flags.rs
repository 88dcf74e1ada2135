//! Flag values shared by every command, defined once (docs/cli.md): durations, the output
//! vocabulary (`-o json|table|none|log`) and colours (`--color`, `NO_COLOR`).
use std::io::IsTerminal;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

/// A duration flag's value: `500ms`, `2s`, `1m`, `1.5h`, `250us`, or a bare number of
/// seconds (`2`, `0.5`). Every duration and interval flag of every command parses with this.
pub fn duration(text: &str) -> Result<Duration, String> {
    let d = ebpfctl_core::decode::time::parse_cli_duration(text)?;
    // parse_cli_duration saturates huge values; a year is already more than anyone means.
    if d > Duration::from_secs(365 * 24 * 3600) {
        return Err(format!("{text:?} is longer than a year"));
    }
    Ok(d)
}

/// What a command prints on stdout. Each command accepts the subset it has, under these
/// names; where it has a table, `table` is that table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns for people (a live view on a terminal where the command has one).
    Table,
    /// JSON (lines for streams).
    Json,
    /// Nothing on stdout (metrics, OTLP or a graph only).
    None,
    /// One line per record in the tool's own log form (observe).
    Log,
    /// Folded stacks, at exit, for flame graphs (`run` on maps keyed by stack ids).
    Folded,
}

impl Output {
    fn name(self) -> &'static str {
        match self {
            Output::Table => "table",
            Output::Json => "json",
            Output::None => "none",
            Output::Log => "log",
            Output::Folded => "folded",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Output::Table => "aligned columns for people",
            Output::Json => "JSON (one object per line for streams)",
            Output::None => "nothing on stdout",
            Output::Log => "one line per record",
            Output::Folded => "folded stacks at exit (flame graphs)",
        }
    }

    fn from_name(s: &str) -> Output {
        match s {
            "json" => Output::Json,
            "none" => Output::None,
            "log" => Output::Log,
            "folded" => Output::Folded,
            // "table" and its older spellings.
            _ => Output::Table,
        }
    }
}

/// The value parser of `-o` for a command that has these forms. `human` (the introspection
/// commands' older name for `table`) stays accepted, hidden, where `table` is.
pub fn outputs(allowed: &'static [Output]) -> impl TypedValueParser<Value = Output> {
    let mut values: Vec<PossibleValue> = allowed
        .iter()
        .map(|o| PossibleValue::new(o.name()).help(o.help()))
        .collect();
    if allowed.contains(&Output::Table) {
        values.push(PossibleValue::new("human").hide(true));
    }
    PossibleValuesParser::new(values).map(|s| Output::from_name(&s))
}

/// The words of the output vocabulary, refused where `-o` means a file (`build -o`,
/// `pull -o`) so that `-o json` there is not silently a file named `json`.
pub fn out_file(text: &str) -> Result<std::path::PathBuf, String> {
    if matches!(text, "json" | "table" | "none" | "log" | "human") {
        return Err(format!(
            "{text:?} is an output format, but this command's -o is the file to write: use --out FILE"
        ));
    }
    Ok(text.into())
}

static COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Records `--color` (the global flag) once, at start.
pub fn set_color(when: ColorWhen) {
    let _ = COLOR.set(when.enabled());
}

/// Whether commands may write styling escape codes to stdout (`--color`, NO_COLOR).
pub fn color() -> bool {
    *COLOR.get_or_init(|| ColorWhen::Auto.enabled())
}

/// `--color auto|always|never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colours and bold on a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether styling escape codes go to stdout: `always` and `never` win; `auto` means a
    /// terminal and no (non-empty) NO_COLOR (https://no-color.org).
    pub fn enabled(self) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("0.25"), Ok(Duration::from_millis(250)));
        assert!(duration("soon").is_err());
        assert!(duration("-1s").is_err());
        assert!(duration("99999999999999999999").is_err());
    }
}
