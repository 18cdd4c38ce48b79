//! The broker's `Logs` service: a proxy. A client asks the broker for a pod's logs (as
//! kubectl asks the API server); the broker finds the pod's node (`spec.nodeName` → Node →
//! its InternalIP and `daemonEndpoints.kubeletEndpoint.Port`) and forwards the request and
//! the reply stream to that node agent.

use std::pin::Pin;
use std::time::Duration;

use bosun_api::v1::logs_client::LogsClient;
use bosun_api::v1::logs_server::Logs;
use bosun_api::v1::{Kind, LogChunk, LogsRequest};
use futures::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::Store;

/// How long reaching a node agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Forwards `PodLogs` to the node agent running the pod.
pub struct LogsProxy {
    pub store: Store,
}

/// The forwarded stream.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;

/// The node agent's logs address from a Node: `http://<InternalIP>:<kubelet port>`.
pub fn node_logs_address(node: &bosun_api::v1::Node) -> Option<String> {
    let status = node.status.as_ref()?;
    let port = status
        .daemon_endpoints
        .as_ref()?
        .kubelet_endpoint
        .as_ref()?
        .port;
    let ip = status
        .addresses
        .iter()
        .find(|a| a.r#type == "InternalIP")
        .or_else(|| status.addresses.first())?;
    (port > 0).then(|| format!("http://{}:{port}", ip.address))
}

fn not_found(err: Error) -> Status {
    match err {
        Error::NotFound { resource, name } => {
            Status::not_found(format!("{resource} \"{name}\" not found"))
        }
        other => Status::from(other),
    }
}

#[tonic::async_trait]
impl Logs for LogsProxy {
    type PodLogsStream = LogStream;

    async fn pod_logs(&self, req: Request<LogsRequest>) -> Result<Response<LogStream>, Status> {
        let req = req.into_inner();
        let pod = self
            .store
            .get(Kind::Pod, &req.namespace, &req.pod)
            .await
            .map_err(not_found)?
            .into_pod()
            .ok_or_else(|| Status::internal("the stored object is not a pod"))?;
        let node_name = pod.spec.map(|s| s.node_name).unwrap_or_default();
        if node_name.is_empty() {
            return Err(Status::failed_precondition(format!(
                "pod \"{}\" is not scheduled yet: it does not have a host assigned",
                req.pod
            )));
        }
        let node = self
            .store
            .get(Kind::Node, "", &node_name)
            .await
            .map_err(not_found)?
            .into_node()
            .ok_or_else(|| Status::internal("the stored object is not a node"))?;
        let addr = node_logs_address(&node).ok_or_else(|| {
            Status::failed_precondition(format!(
                "node \"{node_name}\" does not advertise a logs endpoint (is its node agent running?)"
            ))
        })?;
        let endpoint = tonic::transport::Endpoint::from_shared(addr.clone())
            .map_err(|e| Status::internal(format!("node address {addr}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| {
            Status::unavailable(format!(
                "cannot reach the node agent of \"{node_name}\" at {addr}: {e}"
            ))
        })?;
        let stream = LogsClient::new(channel).pod_logs(req).await?.into_inner();
        Ok(Response::new(stream.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1;

    #[test]
    fn the_logs_address_is_the_internal_ip_and_the_kubelet_port() {
        let node = v1::Node {
            status: Some(v1::NodeStatus {
                addresses: vec![
                    v1::NodeAddress {
                        r#type: "Hostname".into(),
                        address: "n1".into(),
                    },
                    v1::NodeAddress {
                        r#type: "InternalIP".into(),
                        address: "10.0.0.5".into(),
                    },
                ],
                daemon_endpoints: Some(v1::NodeDaemonEndpoints {
                    kubelet_endpoint: Some(v1::DaemonEndpoint { port: 10250 }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            node_logs_address(&node).as_deref(),
            Some("http://10.0.0.5:10250")
        );
        assert_eq!(node_logs_address(&v1::Node::default()), None);
    }
}
