//! Connection handling: [`RedisConn`] (one server's `ConnectionManager`, a Cluster's
//! `ClusterConnection`, or one plain connection), and each thread's own connection per
//! store, made on first use on the caller's runtime and replaced once that runtime has
//! shut down; each thread's [`Pipe`] for the hot path, likewise; the dedicated
//! connection of blocking reads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Script};
use secrecy::ExposeSecret;

use super::pipe::Pipe;
use super::{RedisStore, Target};
use crate::store::StoreError;

/// A connected handle, cheap to clone (both kinds multiplex one connection per node).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// One plain multiplexed connection (blocking reads, per-node SCAN).
    Plain(redis::aio::MultiplexedConnection),
}

impl RedisConn {
    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, StoreError> {
        Ok(match self {
            RedisConn::Single(c) => cmd.query_async(c).await?,
            RedisConn::Cluster(c) => cmd.query_async(c).await?,
            RedisConn::Plain(c) => cmd.query_async(c).await?,
        })
    }

    /// Runs a Lua script (all its keys must share one slot on a cluster).
    pub async fn eval<T: FromRedisValue>(
        &mut self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        Ok(match self {
            RedisConn::Single(c) => inv.invoke_async(c).await?,
            RedisConn::Cluster(c) => inv.invoke_async(c).await?,
            RedisConn::Plain(c) => inv.invoke_async(c).await?,
        })
    }
}

/// A thread's connection and a token that lives as long as the runtime it was made on
/// (held by a task parked on that runtime).
struct LocalConn {
    conn: RedisConn,
    runtime_alive: Weak<()>,
}

thread_local! {
    static LOCAL_CONNS: RefCell<HashMap<u64, LocalConn>> = RefCell::new(HashMap::new());
    static LOCAL_PIPES: RefCell<HashMap<u64, Pipe>> = RefCell::new(HashMap::new());
}

impl RedisStore {
    /// This thread's connection, connecting first if needed (on the current runtime, so
    /// the connection's driver runs beside the caller).
    pub async fn conn(&self) -> Result<RedisConn, StoreError> {
        let held = LOCAL_CONNS.with(|m| {
            let mut m = m.borrow_mut();
            match m.get(&self.id) {
                Some(l) if l.runtime_alive.strong_count() > 0 => Some(l.conn.clone()),
                Some(_) => {
                    m.remove(&self.id);
                    None
                }
                None => None,
            }
        });
        if let Some(conn) = held {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(self.timeout * 2, self.connect())
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".into()))??;
        let alive = Arc::new(());
        let runtime_alive = Arc::downgrade(&alive);
        tokio::spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        });
        LOCAL_CONNS.with(|m| {
            m.borrow_mut().insert(
                self.id,
                LocalConn {
                    conn: conn.clone(),
                    runtime_alive,
                },
            )
        });
        Ok(conn)
    }

    /// This thread's [`Pipe`] for the hot path's commands, connecting first if needed
    /// (on the current runtime); `None` where the target needs redis-rs.
    pub async fn pipe(&self) -> Result<Option<Pipe>, StoreError> {
        let Some(target) = &self.pipe_target else {
            return Ok(None);
        };
        let held = LOCAL_PIPES.with(|m| {
            let mut m = m.borrow_mut();
            match m.get(&self.id) {
                Some(p) if !p.is_dead() => Some(p.clone()),
                Some(_) => {
                    m.remove(&self.id);
                    None
                }
                None => None,
            }
        });
        if let Some(p) = held {
            return Ok(Some(p));
        }
        let pipe = tokio::time::timeout(self.timeout * 2, Pipe::connect(target, self.timeout))
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".into()))??;
        LOCAL_PIPES.with(|m| m.borrow_mut().insert(self.id, pipe.clone()));
        Ok(Some(pipe))
    }

    async fn connect(&self) -> Result<RedisConn, StoreError> {
        match &self.target {
            Target::Single(client) => {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                Ok(RedisConn::Single(
                    ConnectionManager::new_with_config((**client).clone(), cfg).await?,
                ))
            }
            Target::Cluster(nodes) => {
                let client =
                    ClusterClientBuilder::new(nodes.iter().map(|n| n.expose_secret().to_owned()))
                        .connection_timeout(self.timeout)
                        .response_timeout(self.timeout)
                        .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A dedicated connection for blocking commands (`XREADGROUP … BLOCK`), which must
    /// never stall the shared one. Response timeout = `block` + the store deadline.
    pub async fn blocking_conn(&self, block: Duration) -> Result<RedisConn, StoreError> {
        match &self.target {
            Target::Single(client) => {
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(block + self.timeout));
                Ok(RedisConn::Plain(
                    client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                ))
            }
            Target::Cluster(nodes) => {
                let client =
                    ClusterClientBuilder::new(nodes.iter().map(|n| n.expose_secret().to_owned()))
                        .connection_timeout(self.timeout)
                        .response_timeout(block + self.timeout)
                        .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }
}
