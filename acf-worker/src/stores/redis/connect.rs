//! Opening the shared Redis connection used by the mutex and the stores.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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

/// A client for `url` whose connections send every command at once (`TCP_NODELAY`). The shared connection
/// pipelines the commands of many concurrent steps; with Nagle's algorithm a command written while an earlier one
/// is unacknowledged waits for that acknowledgement, which Linux may delay by up to 40 ms.
pub(crate) fn redis_client(url: &str) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo as _;
    let info = url.into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    redis::Client::open(info.set_tcp_settings(tcp))
}

/// Connects to `url` and verifies the server answers; reconnects automatically after a connection loss.
pub async fn connect_redis(
    url: &str,
    options: &RedisConnectOptions,
) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis_client(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout))
        .set_number_of_retries(options.reconnect_retries)
        .set_max_delay(Duration::from_millis(500));
    let mut conn = ConnectionManager::new_with_config(client, config).await?;
    redis::cmd("PING").query_async::<String>(&mut conn).await?;
    Ok(conn)
}
