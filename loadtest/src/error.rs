//! What can stop a load test.

/// Errors of the load generator and its reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad argument {arg}: {reason}")]
    BadArgument { arg: &'static str, reason: String },
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("metric {name} is missing from {url}")]
    MissingMetric { name: &'static str, url: String },
    #[error("offers database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("outage file {path}: {reason}")]
    Outage { path: String, reason: String },
    #[error("proxy: cannot {action}: {source}")]
    Proxy {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster: {0}")]
    Cluster(#[from] test_support::ClusterError),
    #[error("fault schedule: {0}")]
    Schedule(String),
    #[error("stopped before {before}")]
    Stopped { before: String },
    #[error("faults file {path}: {reason}")]
    Faults { path: String, reason: String },
}
