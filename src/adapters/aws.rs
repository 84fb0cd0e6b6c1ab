//! AWS SDK clients from the standard environment (region, credentials,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...). Built lazily, once per
//! process, so the Function URL path never pays for them.

use aws_config::{BehaviorVersion, SdkConfig};

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
