//! The CRI RuntimeService: Version, Status, the pod sandbox RPCs ([`crate::pods`]) and the
//! container RPCs ([`crate::containers`]). Exec, Attach, PortForward (streaming) and
//! CheckpointContainer answer Unimplemented, naming themselves.
//! May touch: what [`crate::pods`] and [`crate::containers`] may, through them, on blocking
//! threads.
//! Never: claims a condition (RuntimeReady, NetworkReady) it cannot back.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::api;
use crate::containers::{ContainerError, Containers};
use crate::pods::{PodError, Pods};
use crate::rootfs::RootfsError;
use crate::state::StateError;

/// The runtime name Version reports.
pub const RUNTIME_NAME: &str = "moat";
/// The version of the kubelet-runtime API wire format Version reports.
pub const KUBELET_API_VERSION: &str = "0.1.0";

/// Serves the RuntimeService of one daemon.
#[derive(Debug, Clone)]
pub struct RuntimeServer {
    runtime_handlers: Vec<String>,
    pods: Arc<Pods>,
    containers: Arc<Containers>,
    cgroup_driver: api::CgroupDriver,
    /// The pod CIDR kubelet last gave (UpdateRuntimeConfig); CNI configs carry their own
    /// ranges, so it is kept for Status only.
    pod_cidr: Arc<std::sync::Mutex<String>>,
}

impl RuntimeServer {
    pub fn new(
        runtime_handlers: Vec<String>,
        pods: Arc<Pods>,
        containers: Arc<Containers>,
        cgroup_driver: api::CgroupDriver,
    ) -> Self {
        Self {
            runtime_handlers,
            pods,
            containers,
            cgroup_driver,
            pod_cidr: Arc::default(),
        }
    }

    /// Runs `f` on the containers on a blocking thread.
    async fn on_containers<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arc<Containers>, &Pods) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, Status> {
        let (containers, pods) = (self.containers.clone(), self.pods.clone());
        tokio::task::spawn_blocking(move || f(&containers, &pods))
            .await
            .map_err(|e| Status::internal(format!("a container operation panicked: {e}")))?
            .map_err(Status::from)
    }

    /// Runs `f` on the pods on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Pods) -> Result<T, PodError> + Send + 'static,
    ) -> Result<T, Status> {
        let pods = self.pods.clone();
        tokio::task::spawn_blocking(move || f(&pods))
            .await
            .map_err(|e| Status::internal(format!("a pod operation panicked: {e}")))?
            .map_err(Status::from)
    }
}

impl From<PodError> for Status {
    fn from(e: PodError) -> Self {
        let msg = crate::error_chain(&e);
        match &e {
            PodError::Invalid(_) | PodError::Convert(_) | PodError::Handler { .. } => {
                Status::invalid_argument(msg)
            }
            PodError::NetworkNotReady(_) | PodError::MoatMissing(_) => {
                Status::failed_precondition(msg)
            }
            PodError::State(e) => state_status(e, msg),
            _ => Status::internal(msg),
        }
    }
}

fn state_status(e: &StateError, msg: String) -> Status {
    match e {
        StateError::NotFound { .. } => Status::not_found(msg),
        StateError::AlreadyExists { .. } => Status::already_exists(msg),
        StateError::InvalidId { .. } | StateError::Ambiguous { .. } => {
            Status::invalid_argument(msg)
        }
        _ => Status::internal(msg),
    }
}

impl From<ContainerError> for Status {
    fn from(e: ContainerError) -> Self {
        let msg = crate::error_chain(&e);
        match e {
            ContainerError::Invalid(_)
            | ContainerError::Convert(_)
            | ContainerError::User(_)
            | ContainerError::Rootfs(RootfsError::BadMount { .. }) => Status::invalid_argument(msg),
            ContainerError::Precondition(_) => Status::failed_precondition(msg),
            ContainerError::NoImage(_) => Status::not_found(msg),
            ContainerError::Image(e) => {
                let code = Status::from(e).code();
                Status::new(code, msg)
            }
            ContainerError::Timeout(_) => Status::deadline_exceeded(msg),
            ContainerError::State(e) => state_status(&e, msg),
            _ => Status::internal(msg),
        }
    }
}

/// A container id the request must carry.
fn required_container(id: String) -> Result<String, Status> {
    if id.is_empty() {
        Err(Status::invalid_argument("container_id is required"))
    } else {
        Ok(id)
    }
}

/// A timeout in seconds as CRI gives it (negative: invalid).
fn seconds(what: &str, s: i64) -> Result<std::time::Duration, Status> {
    u64::try_from(s)
        .map(std::time::Duration::from_secs)
        .map_err(|_| Status::invalid_argument(format!("{what} may not be negative")))
}

/// A pod sandbox id the request must carry.
fn required_id(id: String) -> Result<String, Status> {
    if id.is_empty() {
        Err(Status::invalid_argument("pod_sandbox_id is required"))
    } else {
        Ok(id)
    }
}

/// The answer of an RPC that a later piece of work implements.
fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not implemented by moat-cri yet (streaming and checkpoints come later)"
    ))
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> api::RuntimeCondition {
    api::RuntimeCondition {
        r#type: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

#[tonic::async_trait]
impl api::RuntimeService for RuntimeServer {
    async fn version(
        &self,
        _request: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        Ok(Response::new(api::VersionResponse {
            version: KUBELET_API_VERSION.to_owned(),
            runtime_name: RUNTIME_NAME.to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_api_version: api::API_VERSION.to_owned(),
        }))
    }

    async fn status(
        &self,
        _request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        let network = self
            .blocking(|pods| Ok(pods.cni().status().map_err(|e| crate::error_chain(&e))))
            .await?;
        let network = match network {
            Ok(_) => condition("NetworkReady", true, "", ""),
            Err(message) => condition("NetworkReady", false, "NetworkPluginNotReady", &message),
        };
        let conditions = vec![condition("RuntimeReady", true, "", ""), network];
        let runtime_handlers = self
            .runtime_handlers
            .iter()
            .map(|name| api::RuntimeHandler {
                name: name.clone(),
                features: None,
            })
            .collect();
        Ok(Response::new(api::StatusResponse {
            status: Some(api::RuntimeStatus { conditions }),
            info: Default::default(),
            runtime_handlers,
            features: None,
        }))
    }

    type GetContainerEventsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<api::ContainerEventResponse, Status>> + Send>,
    >;

    async fn run_pod_sandbox(
        &self,
        request: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        let r = request.into_inner();
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("RunPodSandbox needs a config"))?;
        let pod_sandbox_id = self
            .blocking(move |pods| pods.run(&config, &r.runtime_handler))
            .await?;
        Ok(Response::new(api::RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        let id = required_id(request.into_inner().pod_sandbox_id)?;
        let pod_id = id.clone();
        self.on_containers(move |c, pods| match pods.store().get_pod(&pod_id) {
            Ok(p) => c.stop_pod_containers(&p.id),
            Err(_) => Ok(()),
        })
        .await?;
        self.blocking(move |pods| pods.stop(&id)).await?;
        Ok(Response::new(api::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        let id = required_id(request.into_inner().pod_sandbox_id)?;
        let pod_id = id.clone();
        self.on_containers(move |c, pods| match pods.store().get_pod(&pod_id) {
            Ok(p) => c.remove_pod_containers(&p.id),
            Err(_) => Ok(()),
        })
        .await?;
        self.blocking(move |pods| pods.remove(&id)).await?;
        Ok(Response::new(api::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        let id = required_id(request.into_inner().pod_sandbox_id)?;
        let status = self.blocking(move |pods| pods.status(&id)).await?;
        Ok(Response::new(api::PodSandboxStatusResponse {
            status: Some(status),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        let filter = request.into_inner().filter;
        let items = self
            .blocking(move |pods| pods.list(filter.as_ref()))
            .await?;
        Ok(Response::new(api::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        request: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        let r = request.into_inner();
        let pod_id = required_id(r.pod_sandbox_id)?;
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("CreateContainer needs a config"))?;
        let container_id = self
            .on_containers(move |c, _| c.create(&pod_id, &config))
            .await?;
        Ok(Response::new(api::CreateContainerResponse { container_id }))
    }

    async fn start_container(
        &self,
        request: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        let id = required_container(request.into_inner().container_id)?;
        self.on_containers(move |c, _| c.start(&id)).await?;
        Ok(Response::new(api::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        request: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        let r = request.into_inner();
        let id = required_container(r.container_id)?;
        let timeout = seconds("timeout", r.timeout)?;
        self.on_containers(move |c, _| c.stop(&id, timeout)).await?;
        Ok(Response::new(api::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        let id = required_container(request.into_inner().container_id)?;
        self.on_containers(move |c, _| c.remove(&id)).await?;
        Ok(Response::new(api::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        request: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        let filter = request.into_inner().filter;
        let containers = self
            .on_containers(move |c, _| c.list(filter.as_ref()))
            .await?;
        Ok(Response::new(api::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        let r = request.into_inner();
        let id = required_container(r.container_id)?;
        let (status, info) = self
            .on_containers(move |c, _| c.status(&id, r.verbose))
            .await?;
        Ok(Response::new(api::ContainerStatusResponse {
            status: Some(status),
            info,
        }))
    }

    async fn update_container_resources(
        &self,
        request: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        let r = request.into_inner();
        let id = required_container(r.container_id)?;
        self.on_containers(move |c, _| c.update_resources(&id, r.linux.as_ref()))
            .await?;
        Ok(Response::new(api::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        request: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        let id = required_container(request.into_inner().container_id)?;
        self.on_containers(move |c, _| c.reopen_log(&id)).await?;
        Ok(Response::new(api::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        request: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        let r = request.into_inner();
        let id = required_container(r.container_id)?;
        let timeout = seconds("timeout", r.timeout)?;
        let out = self
            .on_containers(move |c, _| c.exec_sync(&id, r.cmd, timeout))
            .await?;
        Ok(Response::new(api::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        }))
    }

    async fn exec(
        &self,
        _request: Request<api::ExecRequest>,
    ) -> Result<Response<api::ExecResponse>, Status> {
        Err(not_yet("Exec"))
    }

    async fn attach(
        &self,
        _request: Request<api::AttachRequest>,
    ) -> Result<Response<api::AttachResponse>, Status> {
        Err(not_yet("Attach"))
    }

    async fn port_forward(
        &self,
        _request: Request<api::PortForwardRequest>,
    ) -> Result<Response<api::PortForwardResponse>, Status> {
        Err(not_yet("PortForward"))
    }

    async fn container_stats(
        &self,
        request: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        let id = required_container(request.into_inner().container_id)?;
        let stats = self.on_containers(move |c, _| c.stats(&id)).await?;
        Ok(Response::new(api::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        request: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        let filter = request.into_inner().filter;
        let stats = self
            .on_containers(move |c, _| c.list_stats(filter.as_ref()))
            .await?;
        Ok(Response::new(api::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        let id = required_id(request.into_inner().pod_sandbox_id)?;
        let stats = self
            .on_containers(move |c, pods| {
                let pod = pods.store().get_pod(&id)?;
                c.pod_stats(&pod)
            })
            .await?;
        Ok(Response::new(api::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        let filter = request.into_inner().filter;
        let stats = self
            .on_containers(move |c, pods| {
                let f = crate::state::PodFilter {
                    id: filter
                        .as_ref()
                        .map(|f| f.id.clone())
                        .filter(|i| !i.is_empty()),
                    state: None,
                    labels: filter
                        .as_ref()
                        .map(|f| crate::state::cri::string_map(&f.label_selector))
                        .unwrap_or_default(),
                };
                pods.store()
                    .list_pods(&f)?
                    .iter()
                    .map(|p| c.pod_stats(p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(Response::new(api::ListPodSandboxStatsResponse { stats }))
    }

    async fn update_runtime_config(
        &self,
        request: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        let cidr = request
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !cidr.is_empty() {
            tracing::info!(pod_cidr = %cidr, "kubelet set the pod CIDR (the CNI config decides addresses)");
            *self.pod_cidr.lock().unwrap_or_else(|e| e.into_inner()) = cidr;
        }
        Ok(Response::new(api::UpdateRuntimeConfigResponse {}))
    }

    async fn checkpoint_container(
        &self,
        _request: Request<api::CheckpointContainerRequest>,
    ) -> Result<Response<api::CheckpointContainerResponse>, Status> {
        Err(not_yet("CheckpointContainer"))
    }

    async fn get_container_events(
        &self,
        request: Request<api::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        let _ = request;
        let rx = self.containers.subscribe();
        let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|ev| match ev {
            Ok(ev) => Some(Ok(ev)),
            Err(e) => {
                tracing::warn!(error = %e, "a container events client fell behind");
                None
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_metric_descriptors(
        &self,
        request: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        let _ = request;
        Ok(Response::new(api::ListMetricDescriptorsResponse {
            descriptors: crate::containers::metric_descriptors(),
        }))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        let _ = request;
        let metrics = self
            .on_containers(|c, pods| {
                pods.store()
                    .list_pods(&crate::state::PodFilter::default())?
                    .iter()
                    .map(|p| c.pod_metrics(p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(Response::new(api::ListPodSandboxMetricsResponse {
            pod_metrics: metrics,
        }))
    }

    async fn runtime_config(
        &self,
        request: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        let _ = request;
        Ok(Response::new(api::RuntimeConfigResponse {
            linux: Some(api::LinuxRuntimeConfiguration {
                cgroup_driver: self.cgroup_driver as i32,
            }),
        }))
    }
}
