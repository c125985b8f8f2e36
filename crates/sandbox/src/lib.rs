//! Starting execution environments. [`Sandbox`] is the seam: [`ProcessSandbox`] runs the
//! runtime as a plain host process in its own process group (no isolation);
//! [`NamespaceSandbox`] runs it in its own mount, PID, IPC, UTS and network namespaces, on a
//! read-only root, as an unprivileged user, inside its own cgroups, with a TUN device as its
//! only way out ([`vnet`]). This crate is the only one allowed `unsafe`: for the calls made
//! between fork and exec, the interface ioctls, and rlimits.

#![allow(unsafe_code)]

mod cgroup;
mod linux;
pub mod vnet;

pub use cgroup::{Cgroups, EnvCgroup, Freezer, InitBoost, Limits};
pub use linux::NamespaceSandbox;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use thiserror::Error;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("could not create the output pipe: {0}")]
    Pipe(std::io::Error),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("could not set up the environment's network: {0}")]
    Network(std::io::Error),
    #[error("could not prepare the sandbox: {0}")]
    Setup(std::io::Error),
}

/// Where an environment sees its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Host paths (process isolation): the code tree where it is stored.
    Host,
    /// Lambda's paths: code at `/var/task`, layers at `/opt`.
    Lambda,
}

/// The listeners an environment's runtime can reach, opened where it can reach them.
#[derive(Debug)]
pub struct EnvNetwork {
    /// The Runtime API listener.
    pub runtime_api: std::net::TcpListener,
    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub runtime_api_addr: String,
    /// Listeners on the other ports asked for (e.g. the Nimbus API inside the namespace).
    pub extra: Vec<std::net::TcpListener>,
    /// The environment's network namespace, if it has one.
    pub netns: Option<Arc<OwnedFd>>,
    /// The namespace's outbound TUN device, if asked for: its packets are the
    /// environment's traffic to the outside (see [`vnet`]).
    pub tun: Option<vnet::TunDevice>,
}

/// Everything needed to start one environment's runtime process.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The code directory; the runtime starts here.
    pub cwd: PathBuf,
    /// The complete environment (nothing is inherited from the server).
    pub env: Vec<(String, String)>,
    pub memory_mb: u32,
    pub ephemeral_mb: u32,
    /// Merged layers (mounted at `/opt` in the Lambda layout).
    pub opt_dir: Option<std::path::PathBuf>,
    /// Host directories the runtime needs (interpreter prefix, bootstraps, managed SDK), as
    /// `(host path, path inside)`, mounted read-only.
    pub mounts: Vec<(std::path::PathBuf, std::path::PathBuf)>,
    /// The network namespace from [`Sandbox::network`].
    pub netns: Option<Arc<OwnedFd>>,
    /// A short unique id (names the cgroup).
    pub id: String,
}

/// A started environment process. Its stdout and stderr arrive, merged in order, on
/// `output`; `child` is for waiting on its exit; `guard` kills the whole process group when
/// dropped; `init_boost`, if any, is to be ended when the runtime's init is done.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub output: pipe::Receiver,
    pub guard: ProcessGuard,
    pub init_boost: Option<InitBoost>,
}

/// Owns an environment's process group (and cgroup): dropping it kills the runtime and its
/// children.
#[derive(Debug)]
pub struct ProcessGuard {
    pid: u32,
    cgroup: Option<EnvCgroup>,
    freezer: Option<Arc<Freezer>>,
}

impl ProcessGuard {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the runtime and everything it started.
    pub fn kill(&self) {
        // A freeze still pending must not catch the dying processes.
        self.thaw();
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }

    /// Freezes the environment between invocations, after `delay` if it is still idle
    /// then (no-op without a freezer). Needs a Tokio runtime for a non-zero delay.
    pub fn freeze_after(&self, delay: std::time::Duration) {
        let Some(freezer) = &self.freezer else { return };
        let ticket = freezer.idle();
        if delay.is_zero() {
            freezer.freeze_if_idle(ticket);
            return;
        }
        let freezer = freezer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            freezer.freeze_if_idle(ticket);
        });
    }

    /// Thaws the environment (if it was frozen) before it gets an event.
    pub fn thaw(&self) {
        if let Some(freezer) = &self.freezer {
            freezer.busy();
        }
    }

    /// Whether the environment was killed for exceeding its memory.
    pub fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(EnvCgroup::oom_killed)
    }

    /// Peak memory of the environment in MB (`Max Memory Used`): from its cgroup, else the
    /// runtime process' high-water mark.
    pub fn max_memory_used_mb(&self) -> Option<u64> {
        if let Some(mb) = self.cgroup.as_ref().and_then(EnvCgroup::peak_memory_mb) {
            return Some(mb);
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb.div_ceil(1024))
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lambda's limit on an environment's open files.
pub const LAMBDA_NOFILE: u64 = 1024;

/// Raises this process' soft limit on open files to its hard limit: every environment
/// holds several descriptors in the server (pipes, listeners, its namespace and network
/// device), more than the usual soft limit of 1024 allows for hundreds of environments.
/// Environments themselves get Lambda's 1024. Returns the new limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    // SAFETY: getrlimit/setrlimit on a valid, initialised `rlimit`.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(lim.rlim_cur)
    }
}

/// A way to start environments.
pub trait Sandbox: Send + Sync + 'static {
    /// Short name for logs and `nimbus serve`'s banner.
    fn name(&self) -> &'static str;
    /// Where environments see their code and layers.
    fn layout(&self) -> Layout;
    /// Whether environments can have an outbound TUN device (`network(.., true)`), and why
    /// not.
    fn outbound_device(&self) -> std::io::Result<()> {
        Err(std::io::Error::other(
            "this sandbox has no network of its own",
        ))
    }
    /// Opens the listeners of a new environment (the Runtime API, plus `extra_ports`) and,
    /// if `tun` and the environment has a network of its own, its outbound device.
    fn network(&self, extra_ports: &[u16], tun: bool) -> Result<EnvNetwork, SandboxError>;
    fn launch(&self, spec: &LaunchSpec) -> Result<Running, SandboxError>;
}

/// The runtime's command: the whole environment given explicitly, stdout and stderr merged
/// into one pipe (returned), its own process group, killed if dropped.
pub(crate) fn command(spec: &LaunchSpec) -> Result<(Command, std::io::PipeReader), SandboxError> {
    let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
    let stderr = writer.try_clone().map_err(SandboxError::Pipe)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    Ok((cmd, reader))
}

/// Wraps a spawned runtime.
pub(crate) fn running(
    child: Child,
    reader: std::io::PipeReader,
    cgroup: Option<(EnvCgroup, Option<InitBoost>)>,
) -> Result<Running, SandboxError> {
    let pid = child.id().unwrap_or(0);
    let output = pipe::Receiver::from_owned_fd(reader.into()).map_err(SandboxError::Pipe)?;
    let (cgroup, init_boost) = cgroup.unzip();
    let init_boost = init_boost.flatten();
    let freezer = cgroup.as_ref().and_then(EnvCgroup::freezer).map(Arc::new);
    Ok(Running {
        child,
        output,
        guard: ProcessGuard {
            pid,
            cgroup,
            freezer,
        },
        init_boost,
    })
}

/// Plain host processes: fast and portable, and not isolated at all.
#[derive(Debug, Default)]
pub struct ProcessSandbox;

impl Sandbox for ProcessSandbox {
    fn name(&self) -> &'static str {
        "process (UNISOLATED)"
    }

    fn layout(&self) -> Layout {
        Layout::Host
    }

    /// A loopback listener on a free port; functions reach the real Nimbus endpoint.
    fn network(&self, _extra_ports: &[u16], _tun: bool) -> Result<EnvNetwork, SandboxError> {
        let runtime_api =
            std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(SandboxError::Network)?;
        let runtime_api_addr = runtime_api
            .local_addr()
            .map_err(SandboxError::Network)?
            .to_string();
        Ok(EnvNetwork {
            runtime_api,
            runtime_api_addr,
            extra: vec![],
            netns: None,
            tun: None,
        })
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Running, SandboxError> {
        let (mut cmd, reader) = command(spec)?;
        cmd.current_dir(&spec.cwd);
        // SAFETY: between fork and exec only async-signal-safe work happens here: prctl(2)
        // so the runtime dies with the server instead of outliving a crash, and setrlimit(2)
        // for Lambda's limit on open files (the server's own is raised).
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                let files = libc::rlimit {
                    rlim_cur: LAMBDA_NOFILE,
                    rlim_max: LAMBDA_NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &files) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: spec.program.display().to_string(),
            source,
        })?;
        // The Command holds our copies of the pipe's write ends: drop it so the pipe
        // reports EOF once the runtime and its children exit.
        drop(cmd);
        running(child, reader, None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_servers_open_file_limit_is_raised_to_the_hard_limit() {
        let raised = super::raise_fd_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit on a valid `rlimit`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!((lim.rlim_cur, raised), (lim.rlim_max, lim.rlim_max));
    }
}
