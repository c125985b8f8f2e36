//! Per-environment cgroups, on cgroup v1 (separate memory/cpu/pids hierarchies) and v2
//! (one unified tree). Every environment gets `nimbus/<id>` under the server's own cgroup:
//! a memory limit of its MemorySize, a CPU quota in proportion to memory (1769 MB = 1 vCPU,
//! capped at the host's cores) and a pids limit.
//!
//! Like Lambda, which runs the init phase with burst CPU, an environment starts with at
//! least [`INIT_VCPUS`] (or the host's cores, if fewer); its memory-proportional share takes
//! over when init ends ([`InitBoost::end`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Lambda's memory-to-CPU ratio: one vCPU at 1769 MB.
const MB_PER_VCPU: u64 = 1769;
const CPU_PERIOD_US: u64 = 100_000;
/// vCPUs an environment gets during init, whatever its memory (Lambda's init burst).
const INIT_VCPUS: u64 = 2;

#[derive(Debug, Clone)]
enum Layout {
    /// `controller name → <hierarchy>/<our cgroup>/nimbus`.
    V1(Vec<(&'static str, PathBuf)>),
    /// `<unified>/<our cgroup>/nimbus`.
    V2(PathBuf),
}

/// Where this server's environment cgroups live.
#[derive(Debug, Clone)]
pub struct Cgroups {
    layout: Layout,
    cpus: u64,
}

/// Limits of one environment.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mb: u32,
    pub pids: u32,
}

/// The cgroup(s) of one environment.
#[derive(Debug)]
pub struct EnvCgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

/// Freezes an environment while it waits between invocations, and thaws it for the next.
/// Freezing can be deferred ([`Freezer::idle`] then [`Freezer::freeze_if_idle`]): an
/// environment busy again by then is never frozen, so back-to-back invocations pay for
/// neither freezing nor thawing.
#[derive(Debug)]
pub struct Freezer {
    file: PathBuf,
    frozen: &'static str,
    thawed: &'static str,
    /// The state, and the ticket of the latest idle period; held across the cgroup write
    /// so that a freeze and a thaw never cross.
    state: std::sync::Mutex<(FreezeState, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreezeState {
    Busy,
    Idle,
    Frozen,
}

impl Freezer {
    fn state(&self) -> std::sync::MutexGuard<'_, (FreezeState, u64)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The environment went idle: returns the ticket that freezes this idle period.
    pub fn idle(&self) -> u64 {
        let mut s = self.state();
        if s.0 == FreezeState::Busy {
            *s = (FreezeState::Idle, s.1 + 1);
        }
        s.1
    }

    /// Freezes the environment if it is still in the idle period of `ticket`.
    pub fn freeze_if_idle(&self, ticket: u64) {
        let mut s = self.state();
        if *s == (FreezeState::Idle, ticket) && write(&self.file, self.frozen).is_ok() {
            s.0 = FreezeState::Frozen;
        }
    }

    /// The environment gets work: thawed if it was frozen.
    pub fn busy(&self) {
        let mut s = self.state();
        if s.0 == FreezeState::Frozen {
            let _ = write(&self.file, self.thawed);
        }
        s.0 = FreezeState::Busy;
    }
}

/// See [`EnvCgroup::join`].
#[derive(Debug)]
pub enum Join {
    /// v1: the `tasks` file of each hierarchy.
    Tasks(Vec<fs::File>),
    /// v2: the cgroup's directory (for `CLONE_INTO_CGROUP`) and its `cgroup.procs`.
    BornInto { dir: fs::File, procs: fs::File },
}

/// An environment's CPU quota while it initialises; [`InitBoost::end`] lowers it to the
/// share its memory pays for.
#[derive(Debug)]
pub struct InitBoost {
    file: PathBuf,
    steady: String,
}

impl InitBoost {
    /// Ends the init burst: from now on the environment gets its memory's CPU share.
    pub fn end(self) {
        if let Err(e) = write(&self.file, &self.steady) {
            tracing::warn!(error = %e, file = %self.file.display(), "could not set the CPU quota after init");
        }
    }
}

fn own_path(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `oom_kill N` in memory.oom_control (v1) or memory.events (v2).
fn oom_kills(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

impl Cgroups {
    /// Finds the cgroup hierarchy and prepares `nimbus/` under the server's own cgroup.
    /// `NIMBUS_CGROUP2_MOUNT` names a cgroup v2 mount to use instead (for tests of the v2
    /// path on hybrid hosts, whose unified hierarchy has no controllers).
    pub fn detect() -> std::io::Result<Cgroups> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let v2_mount = std::env::var_os("NIMBUS_CGROUP2_MOUNT").map(PathBuf::from);
        let root = v2_mount
            .clone()
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
        if v2_mount.is_some() || root.join("cgroup.controllers").exists() {
            let base = root.join(own_path("").unwrap_or_default()).join("nimbus");
            fs::create_dir_all(&base)?;
            // Best effort: delegate the controllers to the environments.
            let _ = write(&base.join("cgroup.subtree_control"), "+memory +pids +cpu");
            return Ok(Cgroups {
                layout: Layout::V2(base),
                cpus,
            });
        }
        let root = Path::new("/sys/fs/cgroup");
        let mut dirs = Vec::new();
        for ctrl in ["memory", "cpu", "pids", "freezer"] {
            let hierarchy = root.join(ctrl);
            if !hierarchy.join("cgroup.procs").exists() {
                return Err(std::io::Error::other(format!(
                    "cgroup v1 controller {ctrl} is not mounted"
                )));
            }
            let base = hierarchy
                .join(own_path(ctrl).unwrap_or_default())
                .join("nimbus");
            fs::create_dir_all(&base)?;
            dirs.push((ctrl, base));
        }
        Ok(Cgroups {
            layout: Layout::V1(dirs),
            cpus,
        })
    }

    /// A placeholder for tests that never create cgroups.
    #[cfg(test)]
    pub(crate) fn unavailable() -> Cgroups {
        Cgroups {
            layout: Layout::V2(PathBuf::from("/nonexistent")),
            cpus: 1,
        }
    }

    pub fn version(&self) -> &'static str {
        match self.layout {
            Layout::V1(_) => "v1",
            Layout::V2(_) => "v2",
        }
    }

    fn bases(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1(d) => d.iter().map(|(_, p)| p.clone()).collect(),
            Layout::V2(p) => vec![p.clone()],
        }
    }

    /// Creates the cgroup of one environment with its limits, its CPU quota raised for
    /// init (see [`InitBoost`]).
    pub fn create(
        &self,
        id: &str,
        limits: Limits,
    ) -> std::io::Result<(EnvCgroup, Option<InitBoost>)> {
        let mem = u64::from(limits.memory_mb) * 1024 * 1024;
        let max = self.cpus * CPU_PERIOD_US;
        let steady = (u64::from(limits.memory_mb) * CPU_PERIOD_US / MB_PER_VCPU)
            .clamp(CPU_PERIOD_US / 100, max);
        let boosted = steady.max((INIT_VCPUS * CPU_PERIOD_US).min(max));
        match &self.layout {
            Layout::V1(bases) => {
                let mut dirs = Vec::new();
                let mut quota_file = PathBuf::new();
                for (ctrl, base) in bases {
                    let dir = base.join(id);
                    fs::create_dir(&dir)?;
                    match *ctrl {
                        "memory" => {
                            write(&dir.join("memory.limit_in_bytes"), &mem.to_string())?;
                            let _ =
                                write(&dir.join("memory.memsw.limit_in_bytes"), &mem.to_string());
                        }
                        "cpu" => {
                            quota_file = dir.join("cpu.cfs_quota_us");
                            write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                            write(&quota_file, &boosted.to_string())?;
                        }
                        "pids" => write(&dir.join("pids.max"), &limits.pids.to_string())?,
                        _ => {}
                    }
                    dirs.push(dir);
                }
                let boost = InitBoost {
                    file: quota_file,
                    steady: steady.to_string(),
                };
                Ok((EnvCgroup { dirs, v2: false }, Some(boost)))
            }
            Layout::V2(base) => {
                let dir = base.join(id);
                fs::create_dir(&dir)?;
                let _ = write(&dir.join("memory.max"), &mem.to_string());
                let _ = write(&dir.join("memory.swap.max"), "0");
                // No boost to end where the cpu controller is not delegated.
                let boost = write(&dir.join("cpu.max"), &format!("{boosted} {CPU_PERIOD_US}"))
                    .ok()
                    .map(|()| InitBoost {
                        file: dir.join("cpu.max"),
                        steady: format!("{steady} {CPU_PERIOD_US}"),
                    });
                let _ = write(&dir.join("pids.max"), &limits.pids.to_string());
                Ok((
                    EnvCgroup {
                        dirs: vec![dir],
                        v2: true,
                    },
                    boost,
                ))
            }
        }
    }

    /// Removes cgroups left behind by a server that crashed, killing what ran in them.
    pub fn reap_stale(&self) -> usize {
        let mut n = 0;
        for base in self.bases() {
            for e in fs::read_dir(&base).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    let cg = EnvCgroup {
                        dirs: vec![e.path()],
                        v2: matches!(self.layout, Layout::V2(_)),
                    };
                    cg.kill_all();
                    if cg.remove() {
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

impl EnvCgroup {
    /// How the child joins its cgroup(s), prepared before fork.
    ///
    /// On v1, by writing "0" to each `tasks` file, not `cgroup.procs`: moving only the
    /// calling thread (which, in a child between fork and exec, is the whole process) is the
    /// one migration the kernel makes without taking the global `cgroup_threadgroup_rwsem`
    /// for writing, whose RCU grace period otherwise costs 6–20 ms on every cold start.
    ///
    /// On v2, where every migration takes that lock, the runtime is instead born in its
    /// cgroup: `clone3(CLONE_INTO_CGROUP)` with the directory's descriptor; `cgroup.procs`
    /// stays as the fallback for kernels before 5.7.
    pub fn join(&self) -> std::io::Result<Join> {
        let open_w = |file: &str| -> std::io::Result<Vec<fs::File>> {
            self.dirs
                .iter()
                .map(|d| fs::OpenOptions::new().write(true).open(d.join(file)))
                .collect()
        };
        if self.v2 {
            use std::os::unix::fs::OpenOptionsExt;
            let dir = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(&self.dirs[0])?;
            Ok(Join::BornInto {
                dir,
                procs: open_w("cgroup.procs")?.remove(0),
            })
        } else {
            Ok(Join::Tasks(open_w("tasks")?))
        }
    }

    fn memory_dir(&self) -> &Path {
        self.dirs
            .iter()
            .find(|d| self.v2 || d.components().any(|c| c.as_os_str() == "memory"))
            .unwrap_or(&self.dirs[0])
    }

    /// Peak memory of the environment in MB (`Max Memory Used`).
    pub fn peak_memory_mb(&self) -> Option<u64> {
        let dir = self.memory_dir();
        let bytes = if self.v2 {
            read_u64(&dir.join("memory.peak"))
        } else {
            read_u64(&dir.join("memory.max_usage_in_bytes"))
        }?;
        Some(bytes.div_ceil(1024 * 1024))
    }

    /// Whether the kernel's OOM killer struck inside the environment.
    pub fn oom_killed(&self) -> bool {
        let dir = self.memory_dir();
        oom_kills(&dir.join(if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        })) > 0
    }

    /// The environment's freezer, if its cgroups have one.
    pub fn freezer(&self) -> Option<Freezer> {
        let (file, frozen, thawed) = self.freezer_file()?;
        Some(Freezer {
            file,
            frozen,
            thawed,
            state: std::sync::Mutex::new((FreezeState::Busy, 0)),
        })
    }

    fn freezer_file(&self) -> Option<(PathBuf, &'static str, &'static str)> {
        if self.v2 {
            return Some((self.dirs[0].join("cgroup.freeze"), "1", "0"));
        }
        self.dirs
            .iter()
            .find(|d| d.components().any(|c| c.as_os_str() == "freezer"))
            .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED"))
    }

    /// Thaws every process of the environment (frozen tasks cannot die).
    fn thaw(&self) -> bool {
        self.freezer_file()
            .is_some_and(|(f, _, thawed)| write(&f, thawed).is_ok())
    }

    /// Kills every process in the environment.
    pub fn kill_all(&self) {
        // Frozen tasks cannot die: thaw first.
        self.thaw();
        if self.v2 && write(&self.dirs[0].join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for dir in &self.dirs {
            for pid in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }

    /// Removes the (empty) cgroup directories; false if some are still busy.
    pub fn remove(&self) -> bool {
        self.dirs
            .iter()
            .all(|d| fs::remove_dir(d).is_ok() || !d.exists())
    }
}

impl Drop for EnvCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // Processes take a moment to leave after SIGKILL: retry off the caller's thread.
        if !self.remove() {
            let dirs = std::mem::take(&mut self.dirs);
            let v2 = self.v2;
            std::thread::spawn(move || {
                let cg = EnvCgroup { dirs, v2 };
                for _ in 0..100 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    cg.kill_all();
                    if cg.remove() {
                        break;
                    }
                }
                std::mem::forget(cg);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freezer(file: &Path) -> Freezer {
        fs::write(file, "").unwrap();
        Freezer {
            file: file.to_path_buf(),
            frozen: "FROZEN",
            thawed: "THAWED",
            state: std::sync::Mutex::new((FreezeState::Busy, 0)),
        }
    }

    #[test]
    fn a_deferred_freeze_only_catches_the_idle_period_it_was_meant_for() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("freezer.state");
        let f = freezer(&file);
        let stale = f.idle();
        f.busy(); // taken again before the freeze came due
        f.freeze_if_idle(stale);
        assert_eq!(fs::read_to_string(&file).unwrap(), "", "busy: not frozen");
        let current = f.idle();
        f.freeze_if_idle(stale);
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "",
            "an old ticket freezes nothing"
        );
        f.freeze_if_idle(current);
        assert_eq!(fs::read_to_string(&file).unwrap(), "FROZEN");
        f.busy();
        assert_eq!(fs::read_to_string(&file).unwrap(), "THAWED");
    }

    #[test]
    fn an_environment_never_frozen_is_not_thawed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("freezer.state");
        let f = freezer(&file);
        f.idle();
        f.busy();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "",
            "no cgroup write on the warm path"
        );
    }
}
