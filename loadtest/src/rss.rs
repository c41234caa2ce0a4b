//! Peak resident memory of the services, from `/proc/<pid>/status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A service whose memory is watched; its PID is re-read from `pid_file` at every sample, so
/// a restarted process is followed.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid_file: PathBuf,
}

/// Highest `VmHWM` seen per service name, in kB.
#[derive(Debug, Default)]
pub struct PeakRss {
    pub kb: BTreeMap<String, u64>,
}

impl PeakRss {
    pub fn sample(&mut self, watched: &[Watched]) {
        for w in watched {
            if let Some(kb) = vm_hwm_kb(w) {
                let peak = self.kb.entry(w.name.clone()).or_default();
                *peak = (*peak).max(kb);
            }
        }
    }
}

fn vm_hwm_kb(w: &Watched) -> Option<u64> {
    let pid = std::fs::read_to_string(&w.pid_file).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `name=path` as given on the command line.
pub fn parse_watched(s: &str) -> Result<Watched, String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=PIDFILE"))?;
    Ok(Watched {
        name: name.to_owned(),
        pid_file: PathBuf::from(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t    4242 kB\nVmRSS:\t 10 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(4242));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }
}
