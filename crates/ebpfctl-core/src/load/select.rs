//! Which programs of an object load: `--program GLOB` / `--skip GLOB`, and alternatives of
//! one hook (libbpf-tools ship a `tp_btf` and a `raw_tp` program of one tracepoint, an
//! `fentry` and a `kprobe` of one function, and switch one off from user space). Pure.
use glob::Pattern;

use crate::object::ProgramSpec;

/// A bad `--program` / `--skip` value.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{flag} {pattern:?}: not a glob pattern ({msg})")]
    BadPattern {
        flag: &'static str,
        pattern: String,
        msg: String,
    },
    #[error("{flag} {pattern:?} matches no program of the object; its programs: {known}")]
    NoMatch {
        flag: &'static str,
        pattern: String,
        known: String,
    },
    #[error("--program/--skip leave no program to load; the object's programs: {0}")]
    NothingSelected(String),
}

/// The compiled `--program` and `--skip` globs. A glob matches a program's name or its section.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    programs: Vec<Pattern>,
    skip: Vec<Pattern>,
}

fn compile(flag: &'static str, globs: &[String]) -> Result<Vec<Pattern>, SelectError> {
    globs
        .iter()
        .map(|g| {
            Pattern::new(g).map_err(|e| SelectError::BadPattern {
                flag,
                pattern: g.clone(),
                msg: e.msg.to_string(),
            })
        })
        .collect()
}

fn matches(p: &Pattern, prog: &ProgramSpec) -> bool {
    p.matches(&prog.name) || p.matches(&prog.section)
}

fn names(programs: &[ProgramSpec]) -> String {
    programs
        .iter()
        .map(|p| format!("{} ({})", p.name, p.section))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Selection {
    /// Compiles the globs and checks each one matches a program of the object (a typo
    /// would otherwise silently load everything, or nothing).
    pub fn new(
        programs: &[String],
        skip: &[String],
        spec: &[ProgramSpec],
    ) -> Result<Selection, SelectError> {
        let sel = Selection {
            programs: compile("--program", programs)?,
            skip: compile("--skip", skip)?,
        };
        for (flag, pats) in [("--program", &sel.programs), ("--skip", &sel.skip)] {
            for p in pats.iter() {
                if !spec.iter().any(|prog| matches(p, prog)) {
                    return Err(SelectError::NoMatch {
                        flag,
                        pattern: p.as_str().to_string(),
                        known: names(spec),
                    });
                }
            }
        }
        if !spec.is_empty() && !spec.iter().any(|p| sel.wants(p)) {
            return Err(SelectError::NothingSelected(names(spec)));
        }
        Ok(sel)
    }

    /// Whether `prog` loads: named by a `--program` glob (or there are none) and by no `--skip`.
    pub fn wants(&self, prog: &ProgramSpec) -> bool {
        (self.programs.is_empty() || self.programs.iter().any(|p| matches(p, prog)))
            && !self.skip.iter().any(|p| matches(p, prog))
    }

    /// Whether the user named `prog` with `--program` (then it attaches even beside an
    /// alternative of its hook).
    pub fn named(&self, prog: &ProgramSpec) -> bool {
        self.programs.iter().any(|p| matches(p, prog))
    }
}

/// The skip reason of `prog`, an alternative of `first` (attached) on the same hook.
pub fn alternative_reason(
    prog: &ProgramSpec,
    first: &ProgramSpec,
    hook: &(&str, String),
) -> String {
    format!(
        "an alternative for the {} {} that {} ({}) already hooks (running both would count every event twice); to run both pass --program {} --program {}",
        hook.0,
        hook.1,
        first.name,
        first.section,
        first.name,
        prog.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::attach::{hook, AttachPoint};

    fn prog(name: &str, section: &str) -> ProgramSpec {
        ProgramSpec {
            name: name.into(),
            section: section.into(),
            insns: 1,
            attach: AttachPoint::from_section(section),
        }
    }

    #[test]
    fn globs_select_by_name_or_section() {
        let progs = vec![
            prog("sched_switch", "tp_btf/sched_switch"),
            prog("handle_sched_switch", "raw_tp/sched_switch"),
            prog("on_exec", "tracepoint/sched/sched_process_exec"),
        ];
        let s = Selection::new(&["handle_*".into()], &[], &progs).unwrap();
        assert!(s.wants(&progs[1]) && !s.wants(&progs[0]) && !s.wants(&progs[2]));
        let s = Selection::new(&[], &["raw_tp/*".into()], &progs).unwrap();
        assert!(s.wants(&progs[0]) && !s.wants(&progs[1]) && s.wants(&progs[2]));
        assert!(matches!(
            Selection::new(&["nope".into()], &[], &progs),
            Err(SelectError::NoMatch { .. })
        ));
        assert!(matches!(
            Selection::new(&[], &["*".into()], &progs),
            Err(SelectError::NothingSelected(_))
        ));
        assert!(matches!(
            Selection::new(&["[".into()], &[], &progs),
            Err(SelectError::BadPattern { .. })
        ));
    }

    #[test]
    fn hooks_pair_alternatives() {
        assert_eq!(hook("tp_btf/sched_switch"), hook("raw_tp/sched_switch"));
        assert_eq!(
            hook("tracepoint/sched/sched_switch"),
            hook("raw_tracepoint/sched_switch")
        );
        assert_eq!(hook("fentry/vfs_read"), hook("kprobe/vfs_read"));
        assert_eq!(hook("fexit/vfs_read"), hook("kretprobe/vfs_read"));
        assert_ne!(hook("fentry/vfs_read"), hook("fexit/vfs_read"));
        assert_eq!(hook("kprobe"), None);
        assert_eq!(hook("kprobe/vfs_read+0x4"), None);
        assert_eq!(hook("xdp"), None);
    }
}
