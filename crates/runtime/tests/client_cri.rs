//! The Kubernetes path: the test plays kubelet, talking CRI (runtime.v1 over gRPC, the
//! `k8s-cri` crate's client) to the CRI plugin of a private containerd 1.6 (Debian's), which
//! runs pods through its runc v2 shim with the runtime handler `rocker` (what a Kubernetes
//! RuntimeClass names): `runtime_type = "io.containerd.runc.v2"`, `options.BinaryName` =
//! the logging wrapper around rocker-runtime. Needs `tests/clients/setup.sh` (as root); see
//! `tests/clients/containerd.md`.
//!
//! The private containerd is the one of client_containerd.rs (`clients/containerd.rs`: own
//! config, root, state and sockets in a temp dir, the wrapper, the end-of-test checks and
//! the cleanup after a failure) with CRI enabled: its sandbox (pause) image is a busybox
//! image whose command sleeps, built here and imported with `ctr` into the `k8s.io`
//! namespace together with the containers' image, both named below `localhost/` so that a
//! pull, were one ever tried, could only reach this machine. CNI takes Debian's plugins
//! (containernetworking-plugins) and a config dir in the temp dir, empty unless a test writes
//! a network there: most pods use the host's network (NamespaceMode NODE), one gets its own
//! from the `bridge` plugin (a bridge of its own, no route out, no masquerading); the runc
//! roots of the `rocker` handler and of the default `runc` one (never used:
//! a fallback to it fails the wrapper-log checks) are in the temp dir too, AppArmor is off
//! (no profile is loaded into the kernel), the streaming server listens on 127.0.0.1 only.
//! Cgroup parents are relative (the test's `TestCgroup`): containerd passes
//! `<parent>/<id>` as cgroupsPath, which rocker-runtime takes below its caller's (the
//! shim's, the test's own) cgroup.
//!
//! Each test ends with the fixture's checks (no task or container left, rocker-runtime called
//! for `create`, `start` and `delete` of every sandbox and container, containerd stopping on
//! SIGTERM, no shim, mount or cgroup left) after its own (no pod or container left in the
//! CRI's view).

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatsRequest, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec, ImageStatusRequest,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListContainersRequest, ListPodSandboxRequest, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PodSandboxState, PodSandboxStatusRequest, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StatusRequest,
    StopContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use rocker_test_support::oci_image::{Compression, Image, Layer};
use rocker_test_support::unique;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use clients::containerd::{Fixture, Setup, CTR_LEFTOVERS};
use clients::{run_checked, wait_until, Cli, Wrapper, STD_PATH};

mod clients;

const SETUP: &str = "tests/clients/setup.sh";
/// The runtime handler (a RuntimeClass's `handler`) that runs rocker-runtime.
const HANDLER: &str = "rocker";
/// The images' names: `<REPO>:<tag>`, a tag per image of the layout the test imports.
const REPO: &str = "localhost/rocker-cri";
const PAUSE_IMAGE: &str = "localhost/rocker-cri:pause";
const IMAGE: &str = "localhost/rocker-cri:busybox";
/// The sandbox's process: it only has to stay (StopPodSandbox kills it with SIGKILL).
const PAUSE_CMD: [&str; 2] = ["/bin/sleep", "86400"];
/// A CRI call's or a ctr command's limit.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Default paths of containerd's CRI plugin and of kubelet on the host: none may appear.
const HOST_PATHS: &[&str] = &[
    "/opt/cni",
    "/run/netns",
    "/var/lib/containerd",
    "/var/log/pods",
    "/run/containerd/runc",
    "/run/containerd/io.containerd.grpc.v1.cri",
    // host-local's default store of the addresses it hands out (ours is in the temp dir).
    "/var/lib/cni/networks",
];
/// Debian's CNI plugins (containernetworking-plugins).
const CNI_PLUGINS: &str = "/usr/lib/cni";

/// The CRI plugin's config: the `rocker` handler, the pause image, everything in `dir`.
fn cri_config(dir: &Path, wrapper: &Wrapper) -> String {
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    format!(
        r#"[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # No AppArmor profile loaded into the kernel (this host has no AppArmor anyway).
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod network namespaces (none here: host network) would be mounted below the state dir.
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {restrict}
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.{HANDLER}]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.{HANDLER}.options]
  BinaryName = "{wrapper}"
  Root = "{dir}/runc-cri"
# The default handler: the host's runc, never asked for; its state in the temp dir too.
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  Root = "{dir}/runc-default"
[{cri}.cni]
  bin_dir = "{CNI_PLUGINS}"
  conf_dir = "{dir}/cni/conf"
"#,
        wrapper = wrapper.path.display(),
        dir = dir.display(),
        restrict = !may_lower_oom_score_adj(),
    )
}

/// Whether this process (and so containerd, its shims, rocker-runtime) may lower an
/// oom_score_adj: CAP_SYS_RESOURCE. Without it (some VMs' root lacks it), no runtime can give
/// a sandbox CRI's -998 (runc fails alike: "nsexec: failed to update
/// /proc/self/oom_score_adj: Permission denied"); containerd's `restrict_oom_score_adj`, meant
/// for that case, then asks for no less than its own.
fn may_lower_oom_score_adj() -> bool {
    caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap()
}

/// kubelet's side: a private containerd with CRI, and a CRI client on its socket.
struct Kubelet {
    fx: Fixture<()>,
    /// Current-thread: the calls are made one at a time, and no thread is started.
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Kubelet {
    fn start() -> Kubelet {
        let mut fx = Fixture::with_cri(
            Setup {
                name: "cri",
                script: SETUP,
                ns: Some("k8s.io"),
                runc_on_path: false,
                host_paths: HOST_PATHS,
                // libcni's cache of the plugins' results, which containerd 1.6 cannot move:
                // emptied by the pod's removal, removed at the end if the test made it.
                run_dirs: &[CNI_RESULTS, "/var/lib/cni"],
                names: |s, ids| ids.contains(s),
                leftovers: CTR_LEFTOVERS,
            },
            cri_config,
            // The CNI config dir (empty until a test adds a network) and the pods' log dirs.
            |dir| {
                for d in ["cni/conf", "pods"] {
                    fs::create_dir_all(dir.join(d)).unwrap();
                }
            },
        );
        let ctr = Cli::new(&fx.bins.ctr, fx.dir(), TIMEOUT).args([
            "-a".as_ref(),
            fx.sock.as_os_str(),
            "-n".as_ref(),
            fx.ns.as_ref(),
        ]);
        fx.set_client(ctr);

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let endpoint = Endpoint::from_shared(format!("unix://{}", fx.sock.display()))
            .unwrap()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT);
        let channel = {
            let _in_runtime = rt.enter();
            endpoint.connect_lazy()
        };
        let k = Kubelet {
            fx,
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        };
        // The CRI service answers once its plugin has loaded, after containerd's socket is up.
        let answers = || k.rt.block_on(k.runtime.clone().version(VersionRequest::default())).is_ok();
        k.fx.wait_ready("the CRI plugin to answer Version", 20, answers);
        k.import_images();
        k
    }

    /// `fut` (a CRI call) to its answer; a failure fails the test with the daemon's logs.
    fn call<T>(&self, what: &str, fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> T {
        match self.rt.block_on(fut) {
            Ok(r) => r.into_inner(),
            Err(s) => panic!("CRI {what}: {:?}: {}\n{}", s.code(), s.message(), self.fx.diag()),
        }
    }

    fn rs(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// The pause and busybox images (one layer: busybox) in an OCI layout, tagged `pause` and
    /// `busybox`, imported with `ctr images import --base-name REPO` into `k8s.io` (and
    /// unpacked into the overlayfs snapshotter); then the CRI image service must know them.
    fn import_images(&self) {
        let layout = self.fx.dir().join("images");
        let path = format!("PATH={}", STD_PATH.join(":"));
        let image = || Image::new().layer(Layer::new().busybox(), Compression::None).env(&path);
        image().cmd(&PAUSE_CMD).write_layout(&layout, "pause");
        image().cmd(&["sh"]).write_layout(&layout, "busybox");
        let archive = self.fx.dir().join("images.tar");
        let mut tar = Command::new("tar");
        tar.arg("-C").arg(&layout).arg("-cf").arg(&archive).arg(".");
        run_checked(tar, "tar of the image layout");
        self.fx.cli_ok(&["images", "import", "--base-name", REPO, archive.to_str().unwrap()]);
        for name in [PAUSE_IMAGE, IMAGE] {
            let known = || {
                let req = ImageStatusRequest { image: Some(image_spec(name)), verbose: false };
                self.call("ImageStatus", self.images.clone().image_status(req)).image.is_some()
            };
            wait_until(&format!("the CRI image service to know {name}"), 10, known, || self.fx.diag());
        }
    }

    // ---- pods and containers -------------------------------------------------------------

    /// A pod config as kubelet writes it for a pod with a shared process namespace, on the
    /// host's network (`Node`: no hostname, as kubelet sets none for host-network pods, and
    /// containerd 1.6 gives them the host's UTS namespace) or its own (`Pod`), the pod's own
    /// IPC and PID namespaces, the test's cgroup parent (relative), logs in the temp dir.
    fn pod_config(&self, name: &str, network: NamespaceMode) -> PodSandboxConfig {
        let uid = unique("uid");
        let logs = self.fx.dir().join("pods").join(&uid);
        fs::create_dir(&logs).unwrap();
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: "rocker-test".into(),
                attempt: 0,
            }),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.fx.cg.name.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(network)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox with the `rocker` handler; the sandbox's id.
    fn run_pod(&self, config: &PodSandboxConfig) -> String {
        let req = RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: HANDLER.into() };
        let id = self.call("RunPodSandbox", self.rs().run_pod_sandbox(req)).pod_sandbox_id;
        self.fx.ids.borrow_mut().insert(id.clone());
        id
    }

    /// PodSandboxStatus (verbose): the status and containerd's `info` JSON.
    fn pod_status(&self, id: &str) -> (k8s_cri::v1::PodSandboxStatus, Value) {
        let req = PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: true };
        let r = self.call("PodSandboxStatus", self.rs().pod_sandbox_status(req));
        (r.status.expect("PodSandboxStatus without a status"), info(&r.info))
    }

    /// CreateContainer (busybox, `cmd`, the pod's namespaces) and StartContainer; its id.
    fn start_container(&self, pod: &str, pod_config: &PodSandboxConfig, name: &str, cmd: &[&str]) -> String {
        let pod_namespaces = pod_config.linux.as_ref().and_then(|l| l.security_context.as_ref());
        let namespace_options = pod_namespaces.and_then(|s| s.namespace_options.clone());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(image_spec(IMAGE)),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        let id = self.call("CreateContainer", self.rs().create_container(req)).container_id;
        self.fx.ids.borrow_mut().insert(id.clone());
        self.call(
            "StartContainer",
            self.rs().start_container(StartContainerRequest { container_id: id.clone() }),
        );
        id
    }

    /// ContainerStatus (verbose): the status and containerd's `info` JSON.
    fn container_status(&self, id: &str) -> (ContainerStatus, Value) {
        let req = ContainerStatusRequest { container_id: id.into(), verbose: true };
        let r = self.call("ContainerStatus", self.rs().container_status(req));
        (r.status.expect("ContainerStatus without a status"), info(&r.info))
    }

    /// Waits for the container's exit; fails at once when the runtime failed meanwhile (a
    /// failed `kill --all` after the exit leaves the container RUNNING in the CRI's view).
    fn wait_exited(&self, id: &str) -> ContainerStatus {
        let exited = || {
            self.assert_no_runtime_errors();
            self.container_status(id).0.state == ContainerState::ContainerExited as i32
        };
        wait_until(&format!("container {id} to exit"), 20, exited, || self.fx.diag());
        self.container_status(id).0
    }

    fn remove_container(&self, id: &str) {
        let req = RemoveContainerRequest { container_id: id.into() };
        self.call("RemoveContainer", self.rs().remove_container(req));
    }

    /// StopPodSandbox, then RemovePodSandbox.
    fn remove_pod(&self, id: &str) {
        self.call(
            "StopPodSandbox",
            self.rs().stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.into() }),
        );
        let (status, _) = self.pod_status(id);
        assert_eq!(status.state, PodSandboxState::SandboxNotready as i32, "{status:?}");
        let req = RemovePodSandboxRequest { pod_sandbox_id: id.into() };
        self.call("RemovePodSandbox", self.rs().remove_pod_sandbox(req));
    }

    /// Waits for the CRI plugin to have loaded a CNI network (it watches its config dir).
    fn wait_network_ready(&self) {
        let ready = || {
            let status = self.call("Status", self.rs().status(StatusRequest { verbose: false })).status;
            status.is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "NetworkReady" && c.status))
        };
        wait_until("the CRI plugin to load the CNI network", 20, ready, || self.fx.diag());
    }

    /// No pod or container left in the CRI's view, no pull tried, then the fixture's checks.
    fn finish(self) {
        let pods = self.call("ListPodSandbox", self.rs().list_pod_sandbox(ListPodSandboxRequest::default()));
        assert!(pods.items.is_empty(), "pods left: {:?}", pods.items);
        let ctrs = self.call("ListContainers", self.rs().list_containers(ListContainersRequest::default()));
        assert!(ctrs.containers.is_empty(), "containers left: {:?}", ctrs.containers);
        let log = fs::read_to_string(&self.fx.daemons[0].log).unwrap_or_default();
        assert!(
            !log.contains("msg=\"PullImage"),
            "the CRI plugin tried to pull an image:\n{}",
            self.fx.diag()
        );
        self.fx.finish();
    }

    /// The shim reports some runtime failures only as containerd warnings (e.g. `kill --all`
    /// of a container whose init exited, `delete` after the shim exits): none may carry
    /// rocker-runtime's own message.
    fn assert_no_runtime_errors(&self) {
        let log = fs::read_to_string(&self.fx.daemons[0].log).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=warning") || l.contains("level=error"))
            .filter(|l| l.contains("rocker-runtime:"))
            .collect();
        assert!(
            errors.is_empty(),
            "rocker-runtime failed under containerd's CRI:\n{}\n{}",
            errors.join("\n"),
            self.fx.diag()
        );
    }
}

// ---- helpers ---------------------------------------------------------------------------------

/// A CNI network of the test's own in the CRI plugin's config dir: Debian's `bridge` plugin
/// on a bridge named for the test, host-local addresses from a /24 whose first address the
/// bridge takes (so that the host reaches the pods through it), no default route in the pods,
/// no masquerading (no iptables rule), the address store in the temp dir. The plugin makes
/// the bridge at the first pod and never removes it: `Drop` does, and after a failure it also
/// removes what libcni cached of the test's pods (their removal does it otherwise).
struct CniBridge {
    bridge: String,
    /// The /24's first three octets ("10.231.42").
    subnet: String,
    /// host-local's leases: a file per address handed out, under the network's name.
    leases: std::path::PathBuf,
    /// What libcni's results cache held before the test.
    cached_before: Vec<std::ffi::OsString>,
}

const CNI_RESULTS: &str = "/var/lib/cni/results";

fn cni_results() -> Vec<std::ffi::OsString> {
    fs::read_dir(CNI_RESULTS).map_or_else(|_| Vec::new(), |d| d.flatten().map(|e| e.file_name()).collect())
}

impl CniBridge {
    fn add(k: &Kubelet) -> CniBridge {
        let pid = std::process::id();
        // An interface name has at most 15 bytes.
        let bridge = format!("rkcni{pid:x}");
        let net = format!("10.231.{}", 20 + pid % 200);
        let routed = Command::new("ip").args(["route", "show", &format!("{net}.0/24")]).output().unwrap();
        assert!(routed.stdout.is_empty(), "{net}.0/24 is routed on this host already: {routed:?}");
        let name = unique("cni");
        let store = k.fx.dir().join("cni/ipam");
        let config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": format!("{net}.0/24"), "gateway": format!("{net}.1") }]],
                    "dataDir": store,
                },
            }],
        });
        fs::write(k.fx.dir().join("cni/conf/10-rocker-test.conflist"), config.to_string()).unwrap();
        CniBridge { bridge, subnet: net, leases: store.join(name), cached_before: cni_results() }
    }

    /// The interfaces attached to the bridge (the pods' veth ends).
    fn ports(&self) -> Vec<String> {
        let dir = format!("/sys/class/net/{}/brif", self.bridge);
        fs::read_dir(dir).map_or_else(
            |_| Vec::new(),
            |d| d.flatten().map(|e| e.file_name().to_string_lossy().into()).collect(),
        )
    }
}

impl Drop for CniBridge {
    fn drop(&mut self) {
        for f in cni_results().into_iter().filter(|f| !self.cached_before.contains(f)) {
            let _ = fs::remove_file(Path::new(CNI_RESULTS).join(f));
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip").args(["link", "delete", &self.bridge]).status();
        }
        if !std::thread::panicking() {
            assert!(
                !Path::new("/sys/class/net").join(&self.bridge).exists(),
                "bridge {} left behind",
                self.bridge
            );
        }
    }
}

/// The namespaces of a pod whose containers share its process namespace
/// (`shareProcessNamespace: true`), on the host's network or its own, for the pod and each
/// container alike.
fn namespaces(network: NamespaceMode) -> NamespaceOption {
    NamespaceOption {
        network: network as i32,
        pid: NamespaceMode::Pod as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn image_spec(name: &str) -> ImageSpec {
    ImageSpec { image: name.into(), ..Default::default() }
}

/// containerd's verbose `info` map: its "info" entry is a JSON document.
fn info(map: &HashMap<String, String>) -> Value {
    let text = map.get("info").map(String::as_str).unwrap_or("null");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("verbose info is not JSON ({e}): {text}"))
}

/// The pid in a verbose `info`.
fn pid_of(info: &Value) -> i32 {
    let pid = info["pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "no pid in the verbose info: {info:#}");
    pid
}

/// The stdout text of a CRI log file: lines `<RFC 3339 time> <stream> <P|F> <text>`, where P
/// marks a partial line continued by the next.
fn cri_log_stdout(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(4, ' ').collect();
        assert!(
            f.len() == 4 && matches!(f[1], "stdout" | "stderr") && matches!(f[2], "P" | "F"),
            "not a CRI log line in {}: {line:?}",
            file.display()
        );
        if f[1] == "stdout" {
            out += f[3];
            if f[2] == "F" {
                out += "\n";
            }
        }
    }
    out
}

/// `key=value` lines of a container's output, as a map.
fn facts(out: &str) -> HashMap<&str, &str> {
    out.lines().filter_map(|l| l.split_once('=')).collect()
}

fn ns_link(pid: impl std::fmt::Display, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap().display().to_string()
}

fn cmdline(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_string()
}

fn oom_score_adj(pid: impl std::fmt::Display) -> String {
    fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap_or_default().trim().to_string()
}

/// Whether the root of process `pid`'s mount namespace is mounted read-only.
fn root_read_only(pid: i32) -> bool {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let root = info.lines().map(|l| l.split(' ').collect::<Vec<_>>()).find(|f| f.len() > 5 && f[4] == "/");
    root.is_some_and(|f| f[5].split(',').any(|o| o == "ro"))
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

// ---- the tests ---------------------------------------------------------------------------------

/// kubelet's calls for a pod, with the `rocker` handler: Version and Status; RunPodSandbox
/// (the sandbox runs the pause image's command with the handler's runc options, in its
/// cgroup below the test's, its root read-only, its oom_score_adj as CRI asks); a container
/// that prints what it sees and exits 7 (its CRI log file, its exit code, the pod's IPC and
/// PID namespaces and PID 1, the host's UTS and network namespaces and hostname); a
/// long-running one (placed in its cgroup under the pod's one shim, ContainerStats, ExecSync
/// with its output and exit code and the file the first left in the pod's /dev/shm,
/// StopContainer's SIGTERM); RemoveContainer, StopPodSandbox, RemovePodSandbox.
/// rocker-runtime must have been called for `create`, `start`, `delete` of the sandbox and
/// both containers, `exec` and `kill`, and none of its calls may have failed: after a
/// container's init exits, the shim calls `kill --all ID 9` when the container has no PID
/// namespace of its own (here: the pod's), which must succeed on a stopped container as it
/// does with runc, or the CRI never sees the container exit.
#[test]
fn a_pod_runs_through_the_cri_with_the_rocker_handler() {
    let k = Kubelet::start();
    let v = k.call("Version", k.rs().version(VersionRequest::default()));
    assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("containerd", "v1"), "{v:?}");
    let status = k.call("Status", k.rs().status(StatusRequest { verbose: false })).status.unwrap_or_default();
    assert!(
        status.conditions.iter().any(|c| c.r#type == "RuntimeReady" && c.status),
        "the runtime is not ready: {status:?}\n{}",
        k.fx.diag()
    );

    // The sandbox.
    let pod_config = k.pod_config("facts", NamespaceMode::Node);
    let pod = k.run_pod(&pod_config);
    let (status, info) = k.pod_status(&pod);
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32, "{status:?}\n{}", k.fx.diag());
    assert_eq!(info["runtimeHandler"], HANDLER, "{info:#}");
    assert_eq!(info["runtimeType"], "io.containerd.runc.v2", "{info:#}");
    let opts = &info["runtimeOptions"];
    assert_eq!(opts["binary_name"], k.fx.wrapper.path.to_str().unwrap(), "{info:#}");
    assert_eq!(opts["root"], k.fx.dir().join("runc-cri").to_str().unwrap(), "{info:#}");
    let pause = pid_of(&info);
    assert_eq!(cmdline(pause), PAUSE_CMD.join(" "), "the sandbox does not run the pause image's command");
    let containerd = k.fx.daemons[0].pid().unwrap();
    let oom = if may_lower_oom_score_adj() { "-998".into() } else { oom_score_adj(containerd) };
    assert_eq!(oom_score_adj(pause), oom, "the sandbox's oom_score_adj (process.oomScoreAdj)");
    assert!(root_read_only(pause), "the sandbox's root is writable (root.readonly)");
    k.fx.assert_placed(&pod, pause);

    // A container that prints what it sees, and leaves a file in the pod's /dev/shm.
    let script =
        "echo hostname=$(hostname); for ns in ipc pid uts net; do echo $ns=$(readlink /proc/self/ns/$ns); \
                  done; echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); echo shared > /dev/shm/facts; exit 7";
    let c1 = k.start_container(&pod, &pod_config, "facts", &["sh", "-c", script]);
    let status = k.wait_exited(&c1);
    assert_eq!(status.exit_code, 7, "{status:?}\n{}", k.fx.diag());
    assert_eq!(status.log_path, format!("{}/facts/0.log", pod_config.log_directory), "{status:?}");
    let out = cri_log_stdout(Path::new(&status.log_path));
    let seen = facts(&out);
    let want = [
        ("ipc", ns_link(pause, "ipc")),
        ("pid", ns_link(pause, "pid")),
        ("pid1", PAUSE_CMD.join(" ")),
        ("uts", ns_link("self", "uts")),
        ("net", ns_link("self", "net")),
        ("hostname", hostname()),
    ];
    for (key, value) in &want {
        assert_eq!(seen.get(key), Some(&value.as_str()), "{key} in the container; its output:\n{out}");
    }
    assert_ne!(ns_link(pause, "ipc"), ns_link("self", "ipc"), "the pod has the host's IPC namespace");
    assert_ne!(ns_link(pause, "pid"), ns_link("self", "pid"), "the pod has the host's PID namespace");
    k.remove_container(&c1);

    // A long-running container, in the pod's PID namespace (not its PID 1).
    let c2 = k.start_container(&pod, &pod_config, "sleeper", &["sleep", "3600"]);
    let (status, info) = k.container_status(&c2);
    assert_eq!(status.state, ContainerState::ContainerRunning as i32, "{status:?}\n{}", k.fx.diag());
    let sleeper = pid_of(&info);
    k.fx.assert_placed(&c2, sleeper);
    assert_eq!(ns_link(sleeper, "pid"), ns_link(pause, "pid"), "not in the pod's PID namespace");

    let stats =
        k.call("ContainerStats", k.rs().container_stats(ContainerStatsRequest { container_id: c2.clone() }));
    let stats = stats.stats.unwrap_or_default();
    let memory = stats.memory.and_then(|m| m.working_set_bytes).map_or(0, |v| v.value);
    assert!(memory > 0, "ContainerStats has no memory working set: {stats:?}");

    let exec = ExecSyncRequest {
        container_id: c2.clone(),
        cmd: ["sh", "-c", "cat /dev/shm/facts; echo oops >&2; exit 3"].map(String::from).to_vec(),
        timeout: 10,
    };
    let r = k.call("ExecSync", k.rs().exec_sync(exec));
    let (stdout, stderr) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        (r.exit_code, stdout.as_ref(), stderr.as_ref()),
        (3, "shared\n", "oops\n"),
        "ExecSync (rocker-runtime `exec`; the file the first container left in the pod's /dev/shm)\n{}",
        k.fx.diag()
    );
    k.fx.assert_runtime_called(&c2, &["exec"]);

    k.call(
        "StopContainer",
        k.rs().stop_container(StopContainerRequest { container_id: c2.clone(), timeout: 2 }),
    );
    let status = k.wait_exited(&c2);
    assert_eq!(status.exit_code, 128 + libc::SIGTERM, "sleep ends on StopContainer's SIGTERM: {status:?}");
    k.fx.assert_runtime_called(&c2, &["kill"]);
    k.remove_container(&c2);

    k.remove_pod(&pod);
    k.fx.assert_runtime_called(&pod, &["kill"]);
    k.assert_no_runtime_errors();
    k.finish();
}

/// A pod with its own network namespace, as most Kubernetes pods have: containerd makes the
/// namespace, has the CNI `bridge` plugin put a veth end named eth0 with an address in it,
/// and hands it to rocker-runtime by path for the sandbox and each container. The pod's
/// containers see that namespace (the sandbox's, not the host's), eth0 with the address the
/// CRI reports, lo up, no default route, the pod's hostname in its own UTS namespace; the
/// host reaches the pod through the bridge (ping). Once the pod is removed, its veth and its
/// address lease are gone.
#[test]
fn a_pod_with_its_own_network_gets_it_through_cni() {
    let host = hostname();
    let k = Kubelet::start();
    let net = CniBridge::add(&k);
    k.wait_network_ready();
    let mut pod_config = k.pod_config("networked", NamespaceMode::Pod);
    pod_config.hostname = "rocker-pod".into();
    let pod = k.run_pod(&pod_config);
    let (status, info) = k.pod_status(&pod);
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32, "{status:?}\n{}", k.fx.diag());
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let subnet = &net.subnet;
    assert!(ip.starts_with(&format!("{subnet}.")), "the pod's address {ip:?} is not from {subnet}.0/24");
    let pause = pid_of(&info);
    assert_ne!(ns_link(pause, "net"), ns_link("self", "net"), "the pod has the host's network namespace");
    assert_eq!(net.ports().len(), 1, "the pod's veth is not on the bridge: {:?}", net.ports());
    assert!(net.leases.join(&ip).exists(), "no lease for {ip} in {}", net.leases.display());

    let script = "echo hostname=$(hostname); echo net=$(readlink /proc/self/ns/net); \
                  echo uts=$(readlink /proc/self/ns/uts); \
                  echo eth0=$(ip -4 addr show eth0 | awk '/inet / {print $2}'); \
                  echo lo=$(ip link show lo | grep -c '[<,]UP[,>]'); echo routes=$(ip route | tr '\\n' ';')";
    let c = k.start_container(&pod, &pod_config, "netfacts", &["sh", "-c", script]);
    let status = k.wait_exited(&c);
    assert_eq!(status.exit_code, 0, "{status:?}\n{}", k.fx.diag());
    let out = cri_log_stdout(Path::new(&status.log_path));
    let seen = facts(&out);
    let want = [
        ("hostname", "rocker-pod".to_string()),
        ("net", ns_link(pause, "net")),
        ("uts", ns_link(pause, "uts")),
        ("eth0", format!("{ip}/24")),
        ("lo", "1".into()),
    ];
    for (key, value) in &want {
        assert_eq!(seen.get(key), Some(&value.as_str()), "{key} in the container; its output:\n{out}");
    }
    // Only the pod's subnet, on eth0: no way out.
    let routes: Vec<&str> =
        seen.get("routes").copied().unwrap_or_default().split(';').map(str::trim).collect();
    assert!(
        matches!(routes.as_slice(), [only, ""] if only.starts_with(&format!("{subnet}.0/24 dev eth0 "))),
        "routes in the pod: {routes:?}"
    );
    assert_ne!(ns_link(pause, "uts"), ns_link("self", "uts"), "the pod has the host's UTS namespace");
    assert_eq!(hostname(), host, "the host was renamed");
    k.remove_container(&c);

    // The host reaches the pod through the bridge, where the gateway address is.
    let ping = Command::new("/bin/busybox").args(["ping", "-c", "1", "-W", "2", &ip]).output().unwrap();
    assert!(ping.status.success(), "ping {ip} from the host: {ping:?}\n{}", k.fx.diag());

    k.remove_pod(&pod);
    assert!(net.ports().is_empty(), "veths left on the bridge: {:?}", net.ports());
    assert!(!net.leases.join(&ip).exists(), "the lease of {ip} is left in {}", net.leases.display());
    k.assert_no_runtime_errors();
    k.finish();
}

/// A pod on the host's network has the host's UTS namespace (containerd 1.6 gives it none
/// of its own): a hostname in its config would rename the host. rocker-runtime, like runc,
/// refuses that spec at `create`, and RunPodSandbox fails with its message.
#[test]
fn a_host_network_pod_with_a_hostname_is_refused() {
    let k = Kubelet::start();
    let host = hostname();
    let mut config = k.pod_config("named", NamespaceMode::Node);
    config.hostname = "rocker-pod".into();
    let req = RunPodSandboxRequest { config: Some(config), runtime_handler: HANDLER.into() };
    let r = k.rt.block_on(k.rs().run_pod_sandbox(req));
    let err = match r {
        Ok(r) => panic!("RunPodSandbox succeeded: {:?}\n{}", r.into_inner(), k.fx.diag()),
        Err(s) => s.message().to_string(),
    };
    assert!(
        err.contains("need a new UTS namespace"),
        "RunPodSandbox failed otherwise: {err}\n{}",
        k.fx.diag()
    );
    assert_eq!(hostname(), host, "the host was renamed");
    // The sandbox's id only shows in the runtime's calls: its create failed, CRI removed it.
    let creates: Vec<String> =
        k.fx.wrapper
            .calls()
            .into_iter()
            .filter(|(s, _)| s == "create")
            .filter_map(|(_, args)| args.last().cloned())
            .collect();
    assert_eq!(creates.len(), 1, "{creates:?}\n{}", k.fx.diag());
    k.fx.ids.borrow_mut().extend(creates.iter().cloned());
    k.fx.failed_creates.borrow_mut().extend(creates);
    k.finish();
}
