//! The machine a run or a report was made on: CPU model and core count, for the report's provenance, and the
//! CPU time of finished child processes, which measures work on a shared machine better than the wall clock.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo ("unknown" elsewhere).
    pub cpu: String,
    /// Cores available to this process (what `nproc` prints).
    pub cores: usize,
}

impl Machine {
    pub fn this() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model(&text))
            .unwrap_or_else(|| "unknown".to_string());
        Machine { cpu, cores: cores() }
    }

    /// "Intel(R) Xeon(R) Processor, 2 cores".
    pub fn describe(&self) -> String {
        // The CPU's name comes from a run's test_time.json, written anywhere: one line of plain text in a report.
        let cpu: String = self.cpu.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("{cpu}, {} core{}", self.cores, if self.cores == 1 { "" } else { "s" })
    }
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The first `model name` line of a /proc/cpuinfo text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// User + system CPU seconds of every child process this process has waited for (Linux: `cutime` and `cstime`
/// of /proc/self/stat, in clock ticks of 1/100 s, the USER_HZ of every mainstream Linux). None elsewhere.
pub fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at field 3; cutime and cstime are 16, 17.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    Some((ticks(16)? + ticks(17)?) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) Processor\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(text).as_deref(), Some("Intel(R) Xeon(R) Processor"));
        assert_eq!(cpu_model("flags: avx"), None);
        assert!(Machine::this().cores >= 1);
        // A name read from a run's test_time.json stays one line of a report.
        let m = Machine { cpu: "EPYC\n# injected heading".into(), cores: 2 };
        assert_eq!(m.describe(), "EPYC # injected heading, 2 cores");
    }

    #[test]
    fn child_cpu_time_grows_when_a_child_works() {
        let Some(before) = children_cpu_seconds() else { return };
        // A child that does a fixed amount of work: a few tenths of a second of CPU in any shell.
        let status =
            std::process::Command::new("sh").args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]).status();
        if status.map(|s| s.success()).unwrap_or(false) {
            let after = children_cpu_seconds().unwrap();
            assert!(after > before, "{before} -> {after}");
        }
    }
}
