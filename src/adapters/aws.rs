//! AWS SDK clients from the standard environment (region, credentials,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...). Built lazily, once per
//! process ([`Clients`]), so the Function URL path never pays for them.

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// S3 with path-style addressing when an endpoint is overridden (moto, MinIO,
/// LocalStack) or `AWS_S3_FORCE_PATH_STYLE=true`.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if s3_path_style() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

fn s3_path_style() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    std::env::var("AWS_S3_FORCE_PATH_STYLE").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || set("AWS_ENDPOINT_URL")
        || set("AWS_ENDPOINT_URL_S3")
}

/// The process's clients, each built on first use (the SDK configuration
/// with the first of them).
#[derive(Debug, Default)]
pub struct Clients {
    config: OnceCell<SdkConfig>,
    s3: OnceCell<aws_sdk_s3::Client>,
    sqs: OnceCell<aws_sdk_sqs::Client>,
}

impl Clients {
    /// Uses `client` for S3 instead of one built from the environment (tests
    /// give a client whose answers they script).
    pub fn with_s3_client(mut self, client: aws_sdk_s3::Client) -> Self {
        self.s3 = OnceCell::new_with(Some(client));
        self
    }

    async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(load_config).await
    }

    /// The S3 client, created on first use.
    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| async { s3_client(self.config().await) }).await
    }

    /// The SQS client, created on first use.
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| async { sqs_client(self.config().await) }).await
    }

    /// Whether the S3 client exists yet (tests check that a path did not build it).
    pub fn s3_built(&self) -> bool {
        self.s3.initialized()
    }
}
