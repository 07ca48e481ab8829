//! The CRI RuntimeService: Version, Status and the pod sandbox RPCs ([`crate::pods`]); the
//! container RPCs answer Unimplemented, naming themselves, until they are built.
//! May touch: what [`crate::pods`] may, through it, on blocking threads.
//! Never: claims a condition (RuntimeReady, NetworkReady) it cannot back.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api;
use crate::pods::{PodError, Pods};
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
}

impl RuntimeServer {
    pub fn new(runtime_handlers: Vec<String>, pods: Arc<Pods>) -> Self {
        Self {
            runtime_handlers,
            pods,
        }
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
            PodError::State(StateError::NotFound { .. }) => Status::not_found(msg),
            PodError::State(StateError::AlreadyExists { .. }) => Status::already_exists(msg),
            PodError::State(StateError::InvalidId { .. } | StateError::Ambiguous { .. }) => {
                Status::invalid_argument(msg)
            }
            _ => Status::internal(msg),
        }
    }
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
    Status::unimplemented(format!("{rpc} is not implemented by moat-cri yet"))
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

    type GetContainerEventsStream =
        tokio_stream::Empty<Result<api::ContainerEventResponse, Status>>;

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
        self.blocking(move |pods| pods.stop(&id)).await?;
        Ok(Response::new(api::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        let id = required_id(request.into_inner().pod_sandbox_id)?;
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
        _request: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        Err(not_yet("CreateContainer"))
    }

    async fn start_container(
        &self,
        _request: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        Err(not_yet("StartContainer"))
    }

    async fn stop_container(
        &self,
        _request: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        Err(not_yet("StopContainer"))
    }

    async fn remove_container(
        &self,
        _request: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        Err(not_yet("RemoveContainer"))
    }

    async fn list_containers(
        &self,
        _request: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        Err(not_yet("ListContainers"))
    }

    async fn container_status(
        &self,
        _request: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        Err(not_yet("ContainerStatus"))
    }

    async fn update_container_resources(
        &self,
        _request: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        Err(not_yet("UpdateContainerResources"))
    }

    async fn reopen_container_log(
        &self,
        _request: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        Err(not_yet("ReopenContainerLog"))
    }

    async fn exec_sync(
        &self,
        _request: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        Err(not_yet("ExecSync"))
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
        _request: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        Err(not_yet("ContainerStats"))
    }

    async fn list_container_stats(
        &self,
        _request: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        Err(not_yet("ListContainerStats"))
    }

    async fn pod_sandbox_stats(
        &self,
        _request: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        Err(not_yet("PodSandboxStats"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _request: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        Err(not_yet("ListPodSandboxStats"))
    }

    async fn update_runtime_config(
        &self,
        _request: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        Err(not_yet("UpdateRuntimeConfig"))
    }

    async fn checkpoint_container(
        &self,
        _request: Request<api::CheckpointContainerRequest>,
    ) -> Result<Response<api::CheckpointContainerResponse>, Status> {
        Err(not_yet("CheckpointContainer"))
    }

    async fn get_container_events(
        &self,
        _request: Request<api::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        Err(not_yet("GetContainerEvents"))
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        Err(not_yet("ListMetricDescriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        Err(not_yet("ListPodSandboxMetrics"))
    }

    async fn runtime_config(
        &self,
        _request: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        Err(not_yet("RuntimeConfig"))
    }
}
