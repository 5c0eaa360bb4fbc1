//! SCAN: on one server, one cursor; on a Cluster, every master in turn (listed by
//! `CLUSTER NODES`), each over a plain connection of its own.

use secrecy::ExposeSecret;

use super::{RedisConn, RedisStore, Target};
use crate::channel::ChannelRef;
use crate::store::{ScanCursor, StoreError};

impl RedisStore {
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

pub(super) async fn channels_page(
    store: &RedisStore,
    cursor: &ScanCursor,
    count: usize,
) -> Result<(Vec<ChannelRef>, Option<ScanCursor>), StoreError> {
    let pattern = store.keys.channel_pattern();
    let bad = || StoreError::Malformed {
        key: "(scan cursor)".into(),
        reason: "not a cursor this store made".into(),
    };
    let to_channels = |keys: Vec<String>| -> Vec<ChannelRef> {
        keys.iter()
            .filter_map(|k| store.keys.parse_channel(k))
            .collect()
    };
    match &store.target {
        Target::Single(_) => {
            let at: u64 = match cursor.0.as_str() {
                "" => 0,
                c => c.parse().map_err(|_| bad())?,
            };
            let mut conn = store.conn().await?;
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
            let mut masters = store.master_urls().await?;
            masters.sort();
            let Some(url) = masters.get(node) else {
                return Ok((Vec::new(), None));
            };
            let client = redis::Client::open(url.as_str())?;
            let cfg = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(store.timeout))
                .set_response_timeout(Some(store.timeout));
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

pub(super) async fn matching(store: &RedisStore, pattern: &str) -> Result<Vec<String>, StoreError> {
    match &store.target {
        Target::Single(_) => {
            let mut conn = store.conn().await?;
            scan_conn(&mut conn, pattern).await
        }
        Target::Cluster(_) => {
            let mut out = Vec::new();
            for url in store.master_urls().await? {
                let client = redis::Client::open(url.as_str())?;
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(store.timeout))
                    .set_response_timeout(Some(store.timeout));
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
