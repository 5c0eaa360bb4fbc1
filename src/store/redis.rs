//! The Redis backend: one server (a multiplexed, auto-reconnecting `ConnectionManager`)
//! or a Redis Cluster (`ClusterConnection`, which follows MOVED/ASK). The connection is
//! made lazily and retried on use, so the relay starts (and `/healthz` answers) while
//! Redis is away, and recovers without a restart when it returns.
//!
//! Each thread that uses the store (every actix worker's own runtime, and the main
//! runtime's threads) holds its own multiplexed connection, made there on first use, so
//! a command's driver task runs on the runtime of the handler that sends it: no command
//! crosses threads. A connection whose runtime has shut down is replaced on next use.
//!
//! Every command has a deadline (`store.timeout_ms`); a store that does not answer in
//! time is reported unavailable, and webhooks are answered 503 rather than lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, FromRedisValue, Script};
use secrecy::{ExposeSecret, SecretString};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::routes::{Freshness, RouteCache};
use super::waba::WabaCache;
use super::{ChannelRecord, Keys, ScanCursor, StoreBackend, StoreError};
use crate::channel::ChannelRef;

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

#[derive(Clone)]
enum Target {
    Single(Box<redis::Client>),
    Cluster(Vec<SecretString>),
}

/// The Redis store. Clones share one identity, so one connection per thread.
#[derive(Clone)]
pub struct RedisStore {
    keys: Keys,
    target: Target,
    timeout: Duration,
    id: u64,
    /// Channel → tenant for routing (off unless [`RedisStore::with_channel_cache`]).
    routes: Arc<RouteCache>,
    /// WABA → its WhatsApp channels, for account-level webhooks ([`super::waba`]).
    wabas: Arc<WabaCache>,
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

/// The life of the channels version key (renewed by every channel write).
const CHANNELS_VERSION_TTL_MS: u64 = 86_400_000;

/// A thread's connection and a token that lives as long as the runtime it was made on
/// (held by a task parked on that runtime).
struct LocalConn {
    conn: RedisConn,
    runtime_alive: Weak<()>,
}

thread_local! {
    static LOCAL_CONNS: RefCell<HashMap<u64, LocalConn>> = RefCell::new(HashMap::new());
}

impl RedisStore {
    /// Prepares the client; nothing is connected until first use.
    pub fn new(
        keys: Keys,
        redis_url: &SecretString,
        cluster_nodes: &[SecretString],
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let target = if cluster_nodes.is_empty() {
            Target::Single(Box::new(
                redis::Client::open(redis_url.expose_secret())
                    .map_err(|e| StoreError::Unavailable(format!("store.redis_url: {e}")))?,
            ))
        } else {
            Target::Cluster(cluster_nodes.to_vec())
        };
        Ok(Self {
            keys,
            target,
            timeout,
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            routes: Arc::new(RouteCache::new(Duration::ZERO)),
            wabas: Arc::new(WabaCache::new(Duration::ZERO)),
        })
    }

    /// Serves [`StoreBackend::channel_tenant`] from a cache whose entries live `ttl`
    /// ([`super::routes`]; zero: no cache).
    pub fn with_channel_cache(mut self, ttl: Duration) -> Self {
        self.routes = Arc::new(RouteCache::new(ttl));
        self.wabas = Arc::new(WabaCache::new(ttl));
        self
    }

    /// After a channel write: this process forgets its routes at once, and the version
    /// key tells the other replicas. The write itself is done; a failure here only
    /// leaves the others on their cache TTL, so it is logged, not returned.
    async fn channels_changed(&self) {
        self.routes.clear();
        self.wabas.clear();
        let key = self.keys.channels_version();
        let mut pipe = redis::pipe();
        pipe.cmd("INCR")
            .arg(&key)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(CHANNELS_VERSION_TTL_MS)
            .ignore();
        let done: Result<(), StoreError> = async {
            let mut conn = self.conn().await?;
            match &mut conn {
                RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
                RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
                RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
            }
            Ok(())
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, stage = "processing", "Channel change could not be announced to other replicas; they see it within store.channel_cache_ms.");
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether this is a Redis Cluster (commands over keys of several slots are not
    /// possible there).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

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

    pub(super) fn wabas(&self) -> &WabaCache {
        &self.wabas
    }

    pub(super) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut c = self.conn().await?;
        c.query(cmd).await
    }

    /// The URL of every master, for commands that must visit all (SCAN).
    async fn master_urls(&self) -> Result<Vec<String>, StoreError> {
        match &self.target {
            Target::Single(_) => Ok(Vec::new()),
            Target::Cluster(nodes) => {
                let text: String = self.run(redis::cmd("CLUSTER").arg("NODES")).await?;
                let base = nodes
                    .first()
                    .map(|n| n.expose_secret().to_owned())
                    .unwrap_or_default();
                let mut urls = Vec::new();
                for line in text.lines() {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    if fields.len() < 3 || !fields[2].contains("master") {
                        continue;
                    }
                    let addr = fields[1].split('@').next().unwrap_or_default();
                    let Some((host, port)) = addr.rsplit_once(':') else {
                        continue;
                    };
                    let mut url = url::Url::parse(&base)
                        .map_err(|e| StoreError::Unavailable(format!("cluster node URL: {e}")))?;
                    let _ = url.set_host(Some(host));
                    let _ = url.set_port(port.parse().ok());
                    urls.push(url.to_string());
                }
                Ok(urls)
            }
        }
    }
}

const CAS_SECRETS: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'token')
if cur ~= ARGV[1] then return 0 end
local ws = redis.call('HGET', KEYS[1], 'webhook_secret')
if (ws or '') ~= ARGV[2] then return 0 end
local pin = redis.call('HGET', KEYS[1], 'pin')
if (pin or '') ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'webhook_secret', ARGV[4]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'pin', ARGV[6]) end
return 1
"#;

const CAS_TOKEN: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'token')
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'expires_at', ARGV[3], 'updated_at', ARGV[4])
return 1
"#;

/// One SCAN step on one connection: the keys and the next cursor (0 = done).
async fn scan_step(
    conn: &mut RedisConn,
    cursor: u64,
    pattern: &str,
    count: usize,
) -> Result<(u64, Vec<String>), StoreError> {
    conn.query(
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count.max(1)),
    )
    .await
}

fn record_from_hash(
    key: &str,
    mut h: HashMap<String, String>,
) -> Result<ChannelRecord, StoreError> {
    let malformed = |reason: &str| StoreError::Malformed {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    Ok(ChannelRecord {
        tenant: h
            .remove("tenant")
            .ok_or_else(|| malformed("no `tenant` field"))?,
        token: SecretString::from(
            h.remove("token")
                .ok_or_else(|| malformed("no `token` field"))?,
        ),
        webhook_secret: h
            .remove("webhook_secret")
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        updated_at: h.remove("updated_at"),
        user_id: h.remove("user_id").filter(|s| !s.is_empty()),
        waba_id: h.remove("waba_id").filter(|s| !s.is_empty()),
        graph: h.remove("graph").filter(|s| !s.is_empty()),
        expires_at: h.remove("expires_at").filter(|s| !s.is_empty()),
        pin: h
            .remove("pin")
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
    })
}

async fn scan_conn(conn: &mut RedisConn, pattern: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = conn
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000),
            )
            .await?;
        out.extend(batch);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

impl StoreBackend for RedisStore {
    async fn get_channel(&self, c: &ChannelRef) -> Result<Option<ChannelRecord>, StoreError> {
        let key = self.keys.channel(c);
        let h: HashMap<String, String> = match self.run(redis::cmd("HGETALL").arg(&key)).await {
            Ok(h) => h,
            // Someone wrote another type at a channel key: that channel is broken, the
            // store is fine.
            Err(StoreError::Unavailable(m)) if m.contains("WRONGTYPE") => {
                return Err(StoreError::Malformed {
                    key,
                    reason: "not a hash".into(),
                })
            }
            Err(e) => return Err(e),
        };
        if h.is_empty() {
            return Ok(None);
        }
        record_from_hash(&key, h).map(Some)
    }

    async fn put_channel(&self, c: &ChannelRef, r: &ChannelRecord) -> Result<(), StoreError> {
        let key = self.keys.channel(c);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("tenant")
            .arg(&r.tenant)
            .arg("token")
            .arg(r.token.expose_secret())
            .arg("updated_at")
            .arg(
                r.updated_at
                    .clone()
                    .unwrap_or_else(crate::time::now_rfc3339),
            )
            .ignore();
        match &r.webhook_secret {
            Some(ws) => pipe
                .cmd("HSET")
                .arg(&key)
                .arg("webhook_secret")
                .arg(ws.expose_secret())
                .ignore(),
            None => pipe.cmd("HDEL").arg(&key).arg("webhook_secret").ignore(),
        };
        let optional = [
            ("user_id", r.user_id.as_deref()),
            ("waba_id", r.waba_id.as_deref()),
            ("graph", r.graph.as_deref()),
            ("expires_at", r.expires_at.as_deref()),
            ("pin", r.pin.as_ref().map(|p| p.expose_secret())),
        ];
        for (field, value) in optional {
            match value {
                Some(v) => pipe.cmd("HSET").arg(&key).arg(field).arg(v).ignore(),
                None => pipe.cmd("HDEL").arg(&key).arg(field).ignore(),
            };
        }
        let mut conn = self.conn().await?;
        match &mut conn {
            RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
            RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
            RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
        }
        self.channels_changed().await;
        Ok(())
    }

    async fn delete_channel(&self, c: &ChannelRef) -> Result<bool, StoreError> {
        let n: i64 = self
            .run(redis::cmd("DEL").arg(self.keys.channel(c)))
            .await?;
        self.channels_changed().await;
        Ok(n > 0)
    }

    async fn channel_tenant(&self, c: &ChannelRef) -> Result<Option<String>, StoreError> {
        if !self.routes.enabled() {
            return Ok(self.get_channel(c).await?.map(|r| r.tenant));
        }
        let now = Instant::now();
        if self.routes.freshness(now) == Freshness::CheckVersion {
            let key = self.keys.channels_version();
            match self.run::<Option<i64>>(redis::cmd("GET").arg(&key)).await {
                Ok(v) => self.routes.observe_version(v),
                Err(_) => self.routes.version_unknown(),
            }
        }
        if let Some(tenant) = self.routes.get(c, now) {
            return Ok(Some(tenant));
        }
        let record = self.get_channel(c).await?;
        if let Some(r) = &record {
            // Aged from before the read, so a write during it is never trusted longer.
            self.routes.insert(c, &r.tenant, now);
        }
        Ok(record.map(|r| r.tenant))
    }

    async fn waba_channels(&self, waba_id: &str) -> Result<Vec<(ChannelRef, String)>, StoreError> {
        super::waba::redis_lookup(self, waba_id).await
    }

    async fn list_channels(&self) -> Result<Vec<(ChannelRef, ChannelRecord)>, StoreError> {
        let keys = self.scan(&self.keys.channel_pattern()).await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(channel) = self.keys.parse_channel(&key) else {
                continue;
            };
            // A record that vanished or is malformed is skipped here; get_channel says why.
            if let Ok(Some(r)) = self.get_channel(&channel).await {
                out.push((channel, r));
            }
        }
        out.sort_by_key(|a| a.0.to_string());
        Ok(out)
    }

    async fn replace_channel_secrets(
        &self,
        c: &ChannelRef,
        expected: &ChannelRecord,
        updated: &ChannelRecord,
    ) -> Result<bool, StoreError> {
        let key = self.keys.channel(c);
        let script = Script::new(CAS_SECRETS);
        let mut conn = self.conn().await?;
        let empty = SecretString::from(String::new());
        let n: i64 = conn
            .eval(
                &script,
                &[&key],
                &[
                    expected.token.expose_secret(),
                    expected
                        .webhook_secret
                        .as_ref()
                        .unwrap_or(&empty)
                        .expose_secret(),
                    updated.token.expose_secret(),
                    updated
                        .webhook_secret
                        .as_ref()
                        .unwrap_or(&empty)
                        .expose_secret(),
                    expected.pin.as_ref().unwrap_or(&empty).expose_secret(),
                    updated.pin.as_ref().unwrap_or(&empty).expose_secret(),
                ],
            )
            .await?;
        if n == 1 {
            self.channels_changed().await;
        }
        Ok(n == 1)
    }

    async fn scan_channels(
        &self,
        cursor: &ScanCursor,
        count: usize,
    ) -> Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError> {
        let pattern = self.keys.channel_pattern();
        let bad = || StoreError::Malformed {
            key: "(scan cursor)".into(),
            reason: "not a cursor this store made".into(),
        };
        let to_channels = |keys: Vec<String>| -> Vec<ChannelRef> {
            keys.iter()
                .filter_map(|k| self.keys.parse_channel(k))
                .collect()
        };
        match &self.target {
            Target::Single(_) => {
                let at: u64 = match cursor.0.as_str() {
                    "" => 0,
                    c => c.parse().map_err(|_| bad())?,
                };
                let mut conn = self.conn().await?;
                let (next, keys) = scan_step(&mut conn, at, &pattern, count).await?;
                Ok((
                    to_channels(keys),
                    (next != 0).then(|| ScanCursor(next.to_string())),
                ))
            }
            Target::Cluster(_) => {
                // `{node index}:{cursor}` over the masters in CLUSTER NODES order.
                let (node, at) = match cursor.0.split_once(':') {
                    None if cursor.0.is_empty() => (0usize, 0u64),
                    Some((n, c)) => (n.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?),
                    None => return Err(bad()),
                };
                let mut masters = self.master_urls().await?;
                masters.sort();
                let Some(url) = masters.get(node) else {
                    return Ok((Vec::new(), None));
                };
                let client = redis::Client::open(url.as_str())?;
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let mut conn = RedisConn::Plain(
                    client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                );
                let (next, keys) = scan_step(&mut conn, at, &pattern, count).await?;
                let next = match next {
                    0 if node + 1 < masters.len() => Some(ScanCursor(format!("{}:0", node + 1))),
                    0 => None,
                    n => Some(ScanCursor(format!("{node}:{n}"))),
                };
                Ok((to_channels(keys), next))
            }
        }
    }

    async fn replace_channel_token(
        &self,
        c: &ChannelRef,
        expected_token: &SecretString,
        token: &SecretString,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        let key = self.keys.channel(c);
        let script = Script::new(CAS_TOKEN);
        let mut conn = self.conn().await?;
        let now = crate::time::now_rfc3339();
        let n: i64 = conn
            .eval(
                &script,
                &[&key],
                &[
                    expected_token.expose_secret(),
                    token.expose_secret(),
                    expires_at,
                    &now,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = self.run(redis::cmd("EXISTS").arg(key)).await?;
        Ok(n > 0)
    }

    async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let ms = ttl.as_millis().max(1) as u64;
        match &mut conn {
            RedisConn::Single(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
            RedisConn::Cluster(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
            RedisConn::Plain(c) => c.pset_ex::<_, _, ()>(key, value, ms).await?,
        }
        Ok(())
    }

    async fn set_ex_all(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let ms = ttl.as_millis().max(1) as u64;
        if self.is_cluster() {
            // The keys live in different slots: one command each.
            for key in keys {
                self.set_ex(key, value, ttl).await?;
            }
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PSETEX").arg(key).arg(ms).arg(value).ignore();
        }
        let mut conn = self.conn().await?;
        match &mut conn {
            RedisConn::Single(m) => pipe.query_async::<()>(m).await?,
            RedisConn::Cluster(m) => pipe.query_async::<()>(m).await?,
            RedisConn::Plain(m) => pipe.query_async::<()>(m).await?,
        }
        Ok(())
    }

    async fn set_nx_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let r: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64),
            )
            .await?;
        Ok(r.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    async fn del(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = self.run(redis::cmd("DEL").arg(key)).await?;
        if self.keys.parse_channel(key).is_some() {
            self.channels_changed().await;
        }
        Ok(n > 0)
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        match &self.target {
            Target::Single(_) => {
                let mut conn = self.conn().await?;
                scan_conn(&mut conn, pattern).await
            }
            Target::Cluster(_) => {
                let mut out = Vec::new();
                for url in self.master_urls().await? {
                    let client = redis::Client::open(url.as_str())?;
                    let cfg = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout));
                    let mut conn = RedisConn::Plain(
                        client
                            .get_multiplexed_async_connection_with_config(&cfg)
                            .await?,
                    );
                    out.extend(scan_conn(&mut conn, pattern).await?);
                }
                out.sort();
                out.dedup();
                Ok(out)
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }
}
