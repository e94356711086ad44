//! A private three-master Redis Cluster (no replicas, no persistence) in a temporary directory, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, wait_listening};

/// One master of a [`RedisCluster`].
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// Three `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`.
pub struct RedisCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts three masters on free ports, creates the cluster and waits until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> Self {
        let mut cluster = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            nodes: (0..3)
                .map(|_| Node {
                    port: free_port(),
                    bus_port: free_port(),
                    child: None,
                })
                .collect(),
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        cluster
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// How many nodes (all masters).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        self.cli(0, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot number")
    }

    /// The node serving `slot`, from `CLUSTER NODES`.
    pub fn owner_of(&self, slot: u16) -> usize {
        let nodes = self.cli(0, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(address) = fields.get(1) else {
                continue;
            };
            let port: u16 = address
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let serves = fields.iter().skip(8).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(l), Ok(h)) if (l..=h).contains(&slot))
            });
            if serves && let Some(i) = self.nodes.iter().position(|n| n.port == port) {
                return i;
            }
        }
        panic!("no node serves slot {slot}:\n{nodes}");
    }

    /// Every key on node `i` matching `pattern` (`KEYS`: test data only).
    pub fn keys_on(&self, i: usize, pattern: &str) -> Vec<String> {
        self.cli(i, &["KEYS", pattern])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Stops node `i` and starts it again on the same port with its `nodes.conf`: it rejoins with its slots and
    /// without its data (no persistence). No failover: there are no replicas.
    pub fn restart(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn(i);
        self.wait_ok();
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let config: PathBuf = self.dir.path().join(format!("nodes-{}.conf", node.port));
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &node.port.to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &node.bus_port.to_string(),
                "--cluster-config-file",
                config.to_str().expect("utf-8 temp path"),
                "--cluster-node-timeout",
                "2000",
                "--appendonly",
                "no",
                "--save",
                "",
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir.path().to_str().expect("utf-8 temp path"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        wait_listening(&mut child, node.port);
        self.nodes[i].child = Some(child);
    }

    /// Waits until every node reports `cluster_state:ok`.
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.nodes.len() {
            while !self
                .cli(i, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
            {
                assert!(
                    Instant::now() < deadline,
                    "node {i} never reported cluster_state:ok"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `redis-cli -p {port of node i} args...`, its standard output.
    fn cli(&self, i: usize, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.nodes[i].port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
