//! The connection: one multiplexed connection to a standalone Redis, or a
//! Cluster connection that routes each command to the master of its
//! key's slot (and `SCRIPT LOAD` to every master). Both reconnect by
//! themselves and fail fast while Redis is down.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to a standalone Redis or to a Cluster.
#[derive(Clone)]
pub(crate) enum Con {
    /// `redis://…`, `rediss://…`, `unix://…`.
    Single(ConnectionManager),
    /// `redis+cluster://host:port,host:port,…`.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

/// The scheme of a Cluster URL.
pub(crate) const CLUSTER_SCHEME: &str = "redis+cluster://";

/// The node URLs of a `redis+cluster://[user:pass@]host:port,host:port/…`
/// URL, each as `redis://[user:pass@]host:port`; `None` if `url` is not a
/// Cluster URL.
pub(crate) fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{userinfo}{h}"))
        .collect();
    Some(nodes)
}

/// A standalone connection that fails fast while Redis is down (one
/// retry, then an error; the next call reconnects).
pub(crate) async fn single(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    client.get_connection_manager_with_config(cfg).await
}

/// A Cluster connection over `nodes` (any subset of the masters).
pub(crate) async fn cluster(
    nodes: &[String],
    timeout: Duration,
) -> redis::RedisResult<ClusterConnection> {
    ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(2)
        .max_retry_wait(200)
        .build()?
        .get_async_connection()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_every_node() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            Some(vec![
                "redis://127.0.0.1:7000".to_owned(),
                "redis://127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@h1:1,h2:2/"),
            Some(vec![
                "redis://u:p@h1:1".to_owned(),
                "redis://u:p@h2:2".to_owned()
            ])
        );
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
    }
}
