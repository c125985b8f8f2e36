//! Starting execution environments. [`Sandbox`] is the seam: [`ProcessSandbox`] runs the
//! runtime as a plain host process in its own process group (no isolation: the next step is
//! a namespaces + cgroups sandbox behind the same trait). This crate is the only one
//! allowed `unsafe`, for the few calls made between fork and exec.

#![allow(unsafe_code)]

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
}

/// A started environment process. Its stdout and stderr arrive, merged in order, on
/// `output`; `child` is for waiting on its exit; `guard` kills the whole process group when
/// dropped.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub output: pipe::Receiver,
    pub guard: ProcessGuard,
}

/// Owns an environment's process group: dropping it kills the runtime and its children.
#[derive(Debug)]
pub struct ProcessGuard {
    pid: u32,
}

impl ProcessGuard {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the runtime and everything it started.
    pub fn kill(&self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Peak resident memory of the runtime process, in MB (`Max Memory Used`).
    pub fn max_memory_used_mb(&self) -> Option<u64> {
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

/// A way to start environments.
pub trait Sandbox: Send + Sync + 'static {
    /// Short name for logs and `nimbus serve`'s banner.
    fn name(&self) -> &'static str;
    fn launch(&self, spec: &LaunchSpec) -> Result<Running, SandboxError>;
}

/// Plain host processes: fast and portable, and not isolated at all.
#[derive(Debug, Default)]
pub struct ProcessSandbox;

impl Sandbox for ProcessSandbox {
    fn name(&self) -> &'static str {
        "process (UNISOLATED)"
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Running, SandboxError> {
        let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
        let stderr = writer.try_clone().map_err(SandboxError::Pipe)?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe work happens here: one
        // prctl(2) so the runtime dies with the server instead of outliving a crash.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: spec.program.display().to_string(),
            source,
        })?;
        // The Command (holding our copies of the write ends) is dropped here, so the pipe
        // reports EOF once the runtime and its children exit.
        drop(cmd);
        let pid = child.id().unwrap_or(0);
        let output = pipe::Receiver::from_owned_fd(reader.into()).map_err(SandboxError::Pipe)?;
        Ok(Running {
            child,
            output,
            guard: ProcessGuard { pid },
        })
    }
}
