//! A mutex and stores that share fencing, on Redis or in memory, for tests generic over the backend.

use std::sync::Arc;

use acf_worker::mutex::{MemorySessionMutex, SessionMutex};
use acf_worker::stores::{RedisConnectOptions, RedisStores, StoreSettings, Stores};

/// One backend's mutex and stores.
pub struct Backend {
    pub mutex: Arc<dyn SessionMutex>,
    pub stores: Stores,
    pub settings: StoreSettings,
}

impl Backend {
    /// How many messages of `session` are open (pending, or absorbed by an uncommitted turn).
    pub async fn open_count(&self, session: &str) -> usize {
        let open = self.stores.messages.open_messages(session).await;
        open.expect("open messages").len()
    }
}

/// Settings with a key prefix unique to this test.
pub fn unique_settings() -> StoreSettings {
    StoreSettings {
        key_prefix: super::unique("stores"),
        ..StoreSettings::default()
    }
}

/// Redis stores at `url` and a mutex on the same connection.
pub async fn redis_at(url: &str, settings: StoreSettings) -> Backend {
    let stores = RedisStores::connect(url, settings.clone(), &RedisConnectOptions::default())
        .await
        .expect("redis reachable");
    let mutex = stores.session_mutex();
    Backend {
        mutex: Arc::new(mutex),
        stores: Stores::from_backend(Arc::new(stores)),
        settings,
    }
}

/// Redis stores on the shared server with a unique prefix.
pub async fn redis() -> Backend {
    redis_at(super::SHARED_REDIS_URL, unique_settings()).await
}

/// In-memory stores and mutex sharing one lock table.
pub fn memory() -> Backend {
    let settings = unique_settings();
    let mutex = MemorySessionMutex::new();
    let stores = Stores::memory(&mutex, settings.clone());
    Backend {
        mutex: Arc::new(mutex),
        stores,
        settings,
    }
}

/// Declares tests for shared async bodies `fn(Backend)`: one per body on the shared Redis and in memory, and one
/// running every body in turn on a private three-master Redis Cluster (hash-tagged keys), each with its own key
/// prefix: one cluster per module rather than one per body.
#[macro_export]
macro_rules! on_every_backend {
    ($($body:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    super::$body(super::support::backends::redis().await).await;
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    super::$body(super::support::backends::memory()).await;
                }
            )*
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn on_a_redis_cluster() {
            let cluster = super::support::cluster::RedisCluster::start();
            $(
                eprintln!("on a Redis Cluster: {}", stringify!($body));
                $body(
                    super::support::backends::redis_at(
                        &cluster.url(),
                        super::support::backends::unique_settings(),
                    )
                    .await,
                )
                .await;
            )*
        }
    };
}
