//! Opening the shared Redis connection used by the mutex and the stores: to one server, or to a Redis Cluster.
//!
//! `connection_url` names a cluster when it lists several nodes, comma-separated
//! (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`), or uses the `redis+cluster://` (`rediss+cluster://`) form
//! (`redis+cluster://user:pass@10.0.0.1:6379,10.0.0.2:6379`); the nodes listed are only the seeds the client
//! learns the cluster's layout from. Anything else is one server.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::mutex::KeyLayout;

/// Connection settings. The defaults suit a Redis on the same host or network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConnectOptions {
    /// Limit on opening one TCP connection.
    pub connect_timeout: Duration,
    /// Limit on one command's reply (blocking inbox reads use their own connections and are not affected).
    pub response_timeout: Duration,
    /// Reconnection attempts after a connection is lost before commands start failing.
    pub reconnect_retries: usize,
}

impl Default for RedisConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 3,
        }
    }
}

/// The seed node URLs when `url` names a Redis Cluster (see the module docs), `None` for one server.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    for (scheme, plain) in [
        ("redis+cluster://", "redis://"),
        ("rediss+cluster://", "rediss://"),
    ] {
        if let Some(rest) = url.strip_prefix(scheme) {
            // `[userinfo@]host:port,host:port[/db][?query]`: the userinfo and the tail apply to every node.
            let (authority, tail) = rest
                .find(['/', '?'])
                .map_or((rest, ""), |at| rest.split_at(at));
            let (userinfo, hosts) = authority
                .rsplit_once('@')
                .map_or(("", authority), |(user, hosts)| (user, hosts));
            let at = if userinfo.is_empty() { "" } else { "@" };
            return Some(
                hosts
                    .split(',')
                    .map(str::trim)
                    .filter(|host| !host.is_empty())
                    .map(|host| format!("{plain}{userinfo}{at}{host}{tail}"))
                    .collect(),
            );
        }
    }
    url.contains(',').then(|| {
        url.split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(|node| {
                if node.contains("://") {
                    node.to_owned()
                } else {
                    format!("redis://{node}")
                }
            })
            .collect()
    })
}

/// A client for one server whose connections send every command at once (`TCP_NODELAY`). The shared connection
/// pipelines the commands of many concurrent steps; with Nagle's algorithm a command written while an earlier one
/// is unacknowledged waits for that acknowledgement, which Linux may delay by up to 40 ms.
fn single_client(url: &str) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo as _;
    let info = url.into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    redis::Client::open(info.set_tcp_settings(tcp))
}

/// A client that opens connections: to one server, or to a cluster.
#[derive(Clone)]
pub(crate) enum RedisClient {
    Single(redis::Client),
    // Boxed: the cluster client is twice the size of the single-server one.
    Cluster(Box<ClusterClient>),
}

impl RedisClient {
    pub(crate) fn open(url: &str, options: &RedisConnectOptions) -> redis::RedisResult<Self> {
        match cluster_nodes(url) {
            None => single_client(url).map(Self::Single),
            Some(nodes) => ClusterClient::builder(nodes)
                .connection_timeout(options.connect_timeout)
                .response_timeout(options.response_timeout)
                .retries(u32::try_from(options.reconnect_retries).unwrap_or(u32::MAX))
                .build()
                .map(|client| Self::Cluster(Box::new(client))),
        }
    }

    /// A dedicated connection with no response timeout, for blocking reads.
    pub(crate) async fn blocking_connection(&self) -> redis::RedisResult<RedisConnection> {
        let connect_timeout = Duration::from_secs(2);
        match self {
            Self::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(RedisConnection::Dedicated)
            }
            Self::Cluster(client) => client
                .get_async_connection_with_config(
                    ClusterConfig::new().set_connection_timeout(connect_timeout),
                )
                .await
                .map(RedisConnection::Cluster),
        }
    }
}

/// A connection to one server or to a cluster (which routes each command to the node owning its keys' slot).
/// Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub enum RedisConnection {
    /// The shared connection to one server, reconnecting after a loss.
    Single(ConnectionManager),
    /// A dedicated connection to one server.
    Dedicated(MultiplexedConnection),
    /// A connection to a Redis Cluster (reconnects and follows slot moves itself).
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// The key layout this connection needs: hash-tagged session keys on a cluster.
    pub fn layout(&self) -> KeyLayout {
        match self {
            Self::Single(_) | Self::Dedicated(_) => KeyLayout::Standalone,
            Self::Cluster(_) => KeyLayout::Cluster,
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RedisConnection")
            .field(&self.layout())
            .finish()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Dedicated(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Dedicated(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Connects to `url` (one server, or a cluster: see the module docs) and verifies it answers; reconnects
/// automatically after a connection loss.
pub async fn connect_redis(
    url: &str,
    options: &RedisConnectOptions,
) -> Result<RedisConnection, redis::RedisError> {
    connect_client(&RedisClient::open(url, options)?, options).await
}

pub(crate) async fn connect_client(
    client: &RedisClient,
    options: &RedisConnectOptions,
) -> Result<RedisConnection, redis::RedisError> {
    let mut conn = match client {
        RedisClient::Single(client) => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(options.response_timeout))
                .set_number_of_retries(options.reconnect_retries)
                .set_max_delay(Duration::from_millis(500));
            RedisConnection::Single(
                ConnectionManager::new_with_config(client.clone(), config).await?,
            )
        }
        RedisClient::Cluster(client) => {
            RedisConnection::Cluster(client.get_async_connection().await?)
        }
    };
    redis::cmd("PING").query_async::<String>(&mut conn).await?;
    Ok(conn)
}
