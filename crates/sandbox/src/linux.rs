//! The namespace sandbox (Linux): each environment gets new mount, PID, IPC, UTS and
//! network namespaces; a root assembled from read-only bind mounts of what the runtime needs,
//! with `/var/task` (code) and `/opt` (layers) read-only, `/tmp` a tmpfs of EphemeralStorage
//! size, a fresh `/proc` and a minimal `/dev`; an unprivileged uid with no_new_privs and no
//! capabilities; Lambda's rlimits; and its own cgroups.
//!
//! The network namespace is made first, on a short-lived thread, so that the server can open
//! the Runtime API listener (`127.0.0.1:9001`) inside it: only that environment can reach it.
//! Everything else happens between fork and exec, in the order below, with every path and
//! string prepared beforehand (no allocation after fork):
//!
//! 1. join the environment's cgroups and network namespace;
//! 2. unshare mount, PID, IPC and UTS namespaces and fork: the parent stays behind as a
//!    reaper that mirrors the child's exit; the child is PID 1 of the new namespace;
//! 3. build the root on a tmpfs, pivot into it, detach the host's tree, make it read-only;
//! 4. set rlimits, drop to the environment's uid/gid, set no_new_privs; then exec.

use std::ffi::CString;
use std::fs;

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use nix::sched::CloneFlags;

use crate::cgroup::{Cgroups, Join, Limits};
use crate::{vnet, EnvNetwork, LaunchSpec, Layout, Running, Sandbox, SandboxError};

/// Lambda's limits on file descriptors and processes/threads.
const RLIMIT_FDS: u64 = crate::LAMBDA_NOFILE;
const RLIMIT_PROCS: u64 = 1024;
/// Environments run as uids from here on, one per environment (so per-uid limits and
/// signals never cross environments).
const UID_BASE: u32 = 200_000;
const UID_SPAN: u32 = 100_000;

/// System calls a function never needs (they administer the machine, cross isolation
/// boundaries or inspect other processes); they fail with EPERM in an environment.
const DENIED_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_syslog,
    libc::SYS_fanotify_init,
    libc::SYS_lookup_dcookie,
    libc::SYS_iopl,
    libc::SYS_ioperm,
];

/// The seccomp filter every environment gets (built once).
// `c_long` is not `i64` on every target.
#[allow(clippy::useless_conversion)]
fn seccomp_filter() -> Result<seccompiler::BpfProgram, SandboxError> {
    let rules = DENIED_SYSCALLS
        .iter()
        .map(|nr| (i64::from(*nr), vec![]))
        .collect();
    let arch = if cfg!(target_arch = "aarch64") {
        seccompiler::TargetArch::aarch64
    } else {
        seccompiler::TargetArch::x86_64
    };
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| SandboxError::Setup(std::io::Error::other(e)))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SandboxError::Setup(std::io::Error::other(e)))
}

/// The namespace sandbox. Needs root (or CAP_SYS_ADMIN) on the host.
#[derive(Debug)]
pub struct NamespaceSandbox {
    /// Whether the probe could make a TUN device (see [`Sandbox::outbound_device`]).
    tun: std::io::Result<()>,
    work: PathBuf,
    cgroups: Cgroups,
    next_uid: AtomicU32,
    seccomp: Arc<seccompiler::BpfProgram>,
}

/// One step of building the root, with its paths already converted for use after fork.
#[derive(Debug)]
enum Step {
    Mkdir(CString),
    Symlink {
        target: CString,
        at: CString,
    },
    /// Bind `src` at `dst` (a file or a directory), then make it read-only if asked.
    Bind {
        src: CString,
        dst: CString,
        readonly: bool,
    },
    Tmpfs {
        dst: CString,
        data: CString,
    },
    Proc(CString),
    /// A file with `content`, created in the root's tmpfs.
    File {
        path: CString,
        content: Vec<u8>,
    },
}

fn cstr(p: impl AsRef<Path>) -> Result<CString, SandboxError> {
    CString::new(p.as_ref().as_os_str().as_bytes())
        .map_err(|e| SandboxError::Setup(std::io::Error::other(e)))
}

/// An `ifreq` naming `name` (shorter than IFNAMSIZ).
fn ifreq(name: &[u8]) -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    ifr
}

fn sockaddr_v4(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sockaddr_in` and `sockaddr` have the same size; the kernel reads the former.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// A datagram socket for interface ioctls in the current network namespace.
fn ioctl_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: a plain socket(2); the result is checked and owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl<T>(fd: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: every request used here takes a pointer to the `T` given with it.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) })
}

/// Brings interface `name` of the current network namespace up.
fn link_up(sock: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
    let mut ifr = ifreq(name);
    ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    ioctl(sock, libc::SIOCSIFFLAGS, &mut ifr)
}

/// Creates the namespace's outbound interface (see [`vnet`]): a TUN device with the
/// environment's address, up, and the default route through it. Returns the device, whose
/// packets the server's user-mode network stack carries.
fn tun_up() -> std::io::Result<OwnedFd> {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const RTF_UP: libc::c_ushort = 0x1;
    const RTF_GATEWAY: libc::c_ushort = 0x2;
    // SAFETY: open(2) of a constant path; the result is checked and owned.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    check(fd)?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let tun = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ifr = ifreq(vnet::DEVICE);
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    ioctl(&tun, TUNSETIFF, &mut ifr)?;
    let sock = ioctl_socket()?;
    let mut ifr = ifreq(vnet::DEVICE);
    ifr.ifr_ifru.ifru_addr = sockaddr_v4(vnet::ADDRESS);
    ioctl(&sock, libc::SIOCSIFADDR, &mut ifr)?;
    ifr.ifr_ifru.ifru_netmask = sockaddr_v4(vnet::NETMASK);
    ioctl(&sock, libc::SIOCSIFNETMASK, &mut ifr)?;
    ifr.ifr_ifru.ifru_mtu = libc::c_int::from(vnet::MTU);
    ioctl(&sock, libc::SIOCSIFMTU, &mut ifr)?;
    link_up(&sock, vnet::DEVICE)?;
    let mut dev = *b"tun0\0";
    debug_assert_eq!(&dev[..4], vnet::DEVICE);
    // SAFETY: `rtentry` is plain old data; all-zero is a valid value.
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr_v4(Ipv4Addr::UNSPECIFIED);
    route.rt_genmask = sockaddr_v4(Ipv4Addr::UNSPECIFIED);
    route.rt_gateway = sockaddr_v4(vnet::GATEWAY);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = dev.as_mut_ptr().cast();
    ioctl(&sock, libc::SIOCADDRT, &mut route)?;
    Ok(tun)
}

impl NamespaceSandbox {
    /// Checks that this host can run the sandbox (root, namespaces, cgroups) and reaps
    /// what a crashed server left behind. `work` holds per-environment files.
    pub fn new(work: &Path) -> Result<Self, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SandboxError::Setup(std::io::Error::other(
                "the namespace sandbox needs root (use --isolation process otherwise)",
            )));
        }
        let cgroups = Cgroups::detect().map_err(SandboxError::Setup)?;
        let stale = cgroups.reap_stale();
        if stale > 0 {
            tracing::info!(
                cgroups = stale,
                "removed environments left by a previous run"
            );
        }
        let _ = fs::remove_dir_all(work);
        fs::create_dir_all(work.join("root")).map_err(SandboxError::Setup)?;
        // Prove namespaces work here before promising them, and learn whether environments
        // can have an outbound TUN device (a throwaway namespace takes the probe's).
        let tun = std::thread::spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            Ok::<_, std::io::Error>(tun_up().map(drop))
        })
        .join()
        .map_err(|_| SandboxError::Setup(std::io::Error::other("namespace probe panicked")))?
        .map_err(SandboxError::Setup)?;
        Ok(NamespaceSandbox {
            tun,
            work: work.to_path_buf(),
            cgroups,
            next_uid: AtomicU32::new(0),
            seccomp: Arc::new(seccomp_filter()?),
        })
    }

    pub fn cgroup_version(&self) -> &'static str {
        self.cgroups.version()
    }

    /// Writes the environment's synthetic /etc files and plans its root.
    fn plan(&self, spec: &LaunchSpec, uid: u32, root: &Path) -> Result<Vec<Step>, SandboxError> {
        let files = [
            ("passwd", format!("root:x:0:0:root:/root:/sbin/nologin\nsbx_user:x:{uid}:{uid}::/tmp:/sbin/nologin\n")),
            ("group", format!("root:x:0:\nsbx_user:x:{uid}:\n")),
            ("hosts", "127.0.0.1\tlocalhost sandbox.localdomain\n::1\tlocalhost\n".to_string()),
            ("hostname", "localhost\n".to_string()),
            ("resolv.conf", format!("nameserver {}\n", vnet::DNS)),
        ];
        let r = |p: &str| root.join(p.trim_start_matches('/'));
        let mut steps = Vec::new();
        let mut made: Vec<PathBuf> = Vec::new();
        let mut mkdir_p = |steps: &mut Vec<Step>, path: &Path| -> Result<(), SandboxError> {
            let mut acc = PathBuf::new();
            for c in path.components() {
                acc.push(c);
                if acc.starts_with(root) && acc != root && !made.contains(&acc) {
                    steps.push(Step::Mkdir(cstr(&acc)?));
                    made.push(acc.clone());
                }
            }
            Ok(())
        };
        // The system: /usr and the merged-usr links, libraries' caches, certificates.
        for top in [
            "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr",
        ] {
            let host = Path::new(top);
            match fs::symlink_metadata(host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(host).map_err(SandboxError::Setup)?;
                    steps.push(Step::Symlink {
                        target: cstr(&target)?,
                        at: cstr(r(top))?,
                    });
                }
                Ok(m) if m.is_dir() => {
                    mkdir_p(&mut steps, &r(top))?;
                    steps.push(Step::Bind {
                        src: cstr(host)?,
                        dst: cstr(r(top))?,
                        readonly: true,
                    });
                }
                _ => {}
            }
        }
        mkdir_p(&mut steps, &r("/etc"))?;
        // The synthetic files are written straight into the root's tmpfs (read-only once
        // the root is): nothing per environment is written on the host.
        for (name, content) in files {
            steps.push(Step::File {
                path: cstr(r(&format!("/etc/{name}")))?,
                content: content.into_bytes(),
            });
        }
        for shared in [
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/ssl",
            "/etc/ca-certificates",
            "/etc/alternatives",
            "/etc/localtime",
            "/etc/nsswitch.conf",
            "/etc/mime.types",
        ] {
            let host = Path::new(shared);
            if let Ok(m) = fs::metadata(host) {
                if m.is_dir() {
                    mkdir_p(&mut steps, &r(shared))?;
                }
                steps.push(Step::Bind {
                    src: cstr(host)?,
                    dst: cstr(r(shared))?,
                    readonly: true,
                });
            }
        }
        // Lambda's own layout.
        mkdir_p(&mut steps, &r("/var/task"))?;
        steps.push(Step::Bind {
            src: cstr(&spec.cwd)?,
            dst: cstr(r("/var/task"))?,
            readonly: true,
        });
        mkdir_p(&mut steps, &r("/opt"))?;
        if let Some(opt) = &spec.opt_dir {
            steps.push(Step::Bind {
                src: cstr(opt)?,
                dst: cstr(r("/opt"))?,
                readonly: true,
            });
        }
        for (host, inside) in &spec.mounts {
            if host.exists() && !inside.starts_with("/usr") {
                let dst = root.join(inside.strip_prefix("/").unwrap_or(inside));
                mkdir_p(&mut steps, &dst)?;
                steps.push(Step::Bind {
                    src: cstr(host)?,
                    dst: cstr(&dst)?,
                    readonly: true,
                });
            }
        }
        mkdir_p(&mut steps, &r("/tmp"))?;
        steps.push(Step::Tmpfs {
            dst: cstr(r("/tmp"))?,
            data: cstr(format!("size={}m,mode=1777", spec.ephemeral_mb))?,
        });
        mkdir_p(&mut steps, &r("/proc"))?;
        steps.push(Step::Proc(cstr(r("/proc"))?));
        mkdir_p(&mut steps, &r("/dev"))?;
        steps.push(Step::Tmpfs {
            dst: cstr(r("/dev"))?,
            data: cstr("size=64k,mode=755")?,
        });
        for dev in ["null", "zero", "random", "urandom", "full"] {
            // An empty file to bind the device node onto (created after /dev's tmpfs).
            steps.push(Step::Bind {
                src: cstr(format!("/dev/{dev}"))?,
                dst: cstr(r(&format!("/dev/{dev}")))?,
                readonly: false,
            });
        }
        steps.push(Step::Symlink {
            target: cstr("/proc/self/fd")?,
            at: cstr(r("/dev/fd"))?,
        });
        mkdir_p(&mut steps, &r("/.oldroot"))?;
        Ok(steps)
    }
}

impl Sandbox for NamespaceSandbox {
    fn name(&self) -> &'static str {
        "sandbox (namespaces + cgroups)"
    }

    fn layout(&self) -> Layout {
        Layout::Lambda
    }

    fn outbound_device(&self) -> std::io::Result<()> {
        match &self.tun {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }

    fn network(&self, extra_ports: &[u16], tun: bool) -> Result<EnvNetwork, SandboxError> {
        let ports = extra_ports.to_vec();
        let made = std::thread::spawn(move || -> std::io::Result<_> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            link_up(&ioctl_socket()?, b"lo")?;
            let tun = if tun { Some(tun_up()?) } else { None };
            let api = std::net::TcpListener::bind(("127.0.0.1", 9001))?;
            let extra = ports
                .iter()
                .map(|p| std::net::TcpListener::bind(("127.0.0.1", *p)))
                .collect::<std::io::Result<Vec<_>>>()?;
            let ns: OwnedFd = fs::File::open("/proc/thread-self/ns/net")?.into();
            Ok((api, extra, ns, tun))
        })
        .join()
        .map_err(|_| SandboxError::Network(std::io::Error::other("network setup thread panicked")))?
        .map_err(SandboxError::Network)?;
        let (runtime_api, extra, ns, tun) = made;
        let tun = tun
            .map(crate::vnet::TunDevice::new)
            .transpose()
            .map_err(SandboxError::Network)?;
        Ok(EnvNetwork {
            runtime_api,
            runtime_api_addr: "127.0.0.1:9001".into(),
            extra,
            netns: Some(Arc::new(ns)),
            tun,
        })
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Running, SandboxError> {
        let n = self.next_uid.fetch_add(1, Ordering::Relaxed) % UID_SPAN;
        let uid = UID_BASE + n;
        // Every environment mounts its own tmpfs on the same (empty) host directory, each in
        // its own mount namespace.
        let root_dir = self.work.join("root");
        let steps = self.plan(spec, uid, &root_dir)?;
        let root = cstr(&root_dir)?;
        let old_root = cstr(root_dir.join(".oldroot"))?;
        let (cgroup, boost) = self
            .cgroups
            .create(
                &spec.id,
                Limits {
                    memory_mb: spec.memory_mb,
                    pids: RLIMIT_PROCS as u32,
                },
            )
            .map_err(SandboxError::Setup)?;
        let join = cgroup.join().map_err(SandboxError::Setup)?;
        let (tasks_fds, born_into): (Vec<i32>, Option<(i32, i32)>) = match &join {
            Join::Tasks(files) => (files.iter().map(AsRawFd::as_raw_fd).collect(), None),
            Join::BornInto { dir, procs } => (vec![], Some((dir.as_raw_fd(), procs.as_raw_fd()))),
        };
        let netns = spec.netns.clone();
        let netns_fd = netns.as_ref().map(|f| f.as_raw_fd());
        let seccomp = self.seccomp.clone();

        let (mut cmd, reader) = crate::command(spec)?;
        // SAFETY: the closure runs in the forked child before exec and only makes raw system
        // calls on data prepared above (no allocation, no locks). See the module docs for
        // the order and why each step is there.
        unsafe {
            cmd.pre_exec(move || {
                child_setup(
                    &tasks_fds, born_into, netns_fd, &steps, &root, &old_root, uid,
                )?;
                // Last: every step above needed calls the filter takes away.
                seccompiler::apply_filter(&seccomp).map_err(|_| std::io::Error::last_os_error())
            });
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: spec.program.display().to_string(),
            source,
        })?;
        drop(cmd);
        drop(join);
        crate::running(child, reader, Some((cgroup, boost)))
    }
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Everything between fork and exec (see the module docs). Runs in the forked child.
fn child_setup(
    tasks_fds: &[i32],
    born_into: Option<(i32, i32)>,
    netns_fd: Option<i32>,
    steps: &[Step],
    root: &CString,
    old_root: &CString,
    uid: u32,
) -> std::io::Result<()> {
    // SAFETY: raw system calls with valid, NUL-terminated paths prepared before fork.
    unsafe {
        // The runtime dies with the server.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        for fd in tasks_fds {
            check(libc::write(*fd, b"0".as_ptr().cast(), 1) as libc::c_int)?;
        }
        if let Some(fd) = netns_fd {
            check(libc::setns(fd, libc::CLONE_NEWNET))?;
        }
        check(libc::unshare(
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
        ))?;
        let pid = match born_into {
            Some((dir, procs)) => fork_into_cgroup(dir, procs),
            None => libc::fork(),
        };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid > 0 {
            // The reaper: hold nothing open (so spawn() sees the exec), wait, mirror the exit.
            libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0 {}
            if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                libc::signal(sig, libc::SIG_DFL);
                libc::kill(libc::getpid(), sig);
            }
            libc::_exit(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                1
            });
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        let none = std::ptr::null::<libc::c_char>();
        check(libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            root.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=1m,mode=755".as_ptr().cast(),
        ))?;
        for step in steps {
            match step {
                Step::Mkdir(p) => {
                    let rc = libc::mkdir(p.as_ptr(), 0o755);
                    if rc < 0 && *libc::__errno_location() != libc::EEXIST {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Step::Symlink { target, at } => check(libc::symlink(target.as_ptr(), at.as_ptr()))?,
                Step::Bind { src, dst, readonly } => {
                    let mut st: libc::stat = std::mem::zeroed();
                    check(libc::stat(src.as_ptr(), &mut st))?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        let fd = libc::open(
                            dst.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        check(fd)?;
                        libc::close(fd);
                    }
                    check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                    if *readonly {
                        let flags = libc::MS_BIND
                            | libc::MS_REMOUNT
                            | libc::MS_RDONLY
                            | libc::MS_NOSUID
                            | libc::MS_NODEV;
                        check(libc::mount(
                            none,
                            dst.as_ptr(),
                            none,
                            flags,
                            std::ptr::null(),
                        ))?;
                    }
                }
                Step::Tmpfs { dst, data } => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    data.as_ptr().cast(),
                ))?,
                Step::File { path, content } => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                        0o644,
                    );
                    check(fd)?;
                    let written = libc::write(fd, content.as_ptr().cast(), content.len());
                    libc::close(fd);
                    if written != content.len() as isize {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Step::Proc(dst) => check(libc::mount(
                    c"proc".as_ptr(),
                    dst.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ))?,
            }
        }
        check(
            libc::syscall(libc::SYS_pivot_root, root.as_ptr(), old_root.as_ptr()) as libc::c_int,
        )?;
        check(libc::chdir(c"/".as_ptr()))?;
        check(libc::umount2(c"/.oldroot".as_ptr(), libc::MNT_DETACH))?;
        libc::rmdir(c"/.oldroot".as_ptr());
        // The root itself becomes read-only too: only /tmp is writable.
        check(libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            std::ptr::null(),
        ))?;
        check(libc::sethostname(c"localhost".as_ptr(), 9))?;
        check(libc::chdir(c"/var/task".as_ptr()))?;
        let fds = libc::rlimit {
            rlim_cur: RLIMIT_FDS,
            rlim_max: RLIMIT_FDS,
        };
        check(libc::setrlimit(libc::RLIMIT_NOFILE, &fds))?;
        let procs = libc::rlimit {
            rlim_cur: RLIMIT_PROCS,
            rlim_max: RLIMIT_PROCS,
        };
        check(libc::setrlimit(libc::RLIMIT_NPROC, &procs))?;
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(uid, uid, uid))?;
        check(libc::setresuid(uid, uid, uid))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
    }
    Ok(())
}

/// Forks a child born in the cgroup v2 directory `dir` (`clone3` with `CLONE_INTO_CGROUP`,
/// which takes no global lock); on kernels without it, joins by writing "0" to `procs`
/// first and forks plainly. Returns what fork(2) returns.
///
/// # Safety
/// As fork(2) between fork and exec: the child may only make raw system calls until exec.
unsafe fn fork_into_cgroup(dir: i32, procs: i32) -> libc::pid_t {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid `clone_args` of the size passed; without CLONE_VM and with
    // no stack, the child continues on a copy of this stack, as after fork(2).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid >= 0 {
        return pid as libc::pid_t;
    }
    // SAFETY: plain write(2) and fork(2) on descriptors prepared before the first fork.
    unsafe {
        if libc::write(procs, b"0".as_ptr().cast(), 1) < 0 {
            return -1;
        }
        libc::fork()
    }
}

/// The plan, one step per line (for tests and debugging).
#[cfg(test)]
fn describe(steps: &[Step]) -> String {
    steps.iter().map(|s| format!("{s:?}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seccomp_filter_compiles() {
        let prog = seccomp_filter().unwrap();
        // An architecture check, one test per denied call, and the default action at least.
        assert!(prog.len() > DENIED_SYSCALLS.len());
    }

    #[test]
    fn the_root_plan_has_lambdas_layout() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir(&code).unwrap();
        let sandbox = NamespaceSandbox {
            tun: Ok(()),
            work: dir.path().to_path_buf(),
            cgroups: Cgroups::unavailable(),
            next_uid: AtomicU32::new(0),
            seccomp: Arc::new(seccomp_filter().unwrap()),
        };
        let spec = LaunchSpec {
            program: "/usr/bin/true".into(),
            args: vec![],
            cwd: code,
            env: vec![],
            memory_mb: 128,
            ephemeral_mb: 512,
            opt_dir: None,
            mounts: vec![],
            netns: None,
            id: "t".into(),
        };
        let plan = describe(
            &sandbox
                .plan(&spec, 200_000, &dir.path().join("root"))
                .unwrap(),
        );
        for needle in [
            "var/task",
            "\"size=512m,mode=1777\"",
            "Proc(",
            "/.oldroot",
            "etc/passwd",
        ] {
            assert!(plan.contains(needle), "{needle} missing from\n{plan}");
        }
        let passwd = "sbx_user:x:200000:200000"
            .bytes()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            plan.contains(&passwd),
            "passwd content missing from\n{plan}"
        );
    }
}
