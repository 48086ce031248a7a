//! [`HttpDialer`]: a provider reached over HTTP (the API described in [`crate::server`]).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, header};

use crate::wire::{ErrorBody, IDEMPOTENCY_KEY_HEADER, PlaceCallBody, REPLAYED_HEADER};
use crate::{
    DialError, DialRequest, Dialer, Error, IdempotencyKey, Placed, ProviderCall, Result,
    Unavailable,
};

/// Where the provider is and how to talk to it.
#[derive(Clone)]
pub struct HttpDialerConfig {
    /// E.g. `https://api.provider.example/v1` (no trailing slash needed).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub api_token: String,
    /// Whole-request timeout; past it a place request is [`Unavailable::Timeout`].
    pub timeout: Duration,
    /// Connection set-up timeout.
    pub connect_timeout: Duration,
    /// Where the provider should send this deployment's call events (outdial's signed
    /// callback route), sent with every call as `callbackUrl`; `None`: the provider's
    /// account-level setting applies.
    pub callback_url: Option<String>,
}

impl fmt::Debug for HttpDialerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDialerConfig")
            .field("base_url", &self.base_url)
            .field("api_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("callback_url", &self.callback_url)
            .finish()
    }
}

impl HttpDialerConfig {
    /// 10 s timeout, 3 s connect timeout.
    pub fn new(base_url: impl Into<String>, api_token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_token: api_token.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            callback_url: None,
        }
    }
}

/// A provider over HTTP: `POST /calls` with an `Idempotency-Key`, `GET /calls/by-key/{key}`.
/// `Debug` hides the token.
#[derive(Clone)]
pub struct HttpDialer {
    http: reqwest::Client,
    base: String,
    token: String,
    callback_url: Option<String>,
}

impl fmt::Debug for HttpDialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDialer")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Default wait when a 429 carries no readable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

impl HttpDialer {
    /// A client for `config` (rustls, the configured timeouts).
    pub fn new(config: HttpDialerConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let valid = reqwest::Url::parse(&base)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !valid {
            return Err(Error::Url(config.base_url));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // A place request is never replayed elsewhere behind our back.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            http,
            base,
            token: config.api_token,
            callback_url: config.callback_url,
        })
    }
}

fn transport(e: &reqwest::Error) -> DialError {
    let kind = if e.is_timeout() {
        Unavailable::Timeout
    } else if e.is_connect() {
        Unavailable::Connect
    } else {
        Unavailable::Protocol
    };
    DialError::Unavailable(kind)
}

fn retry_after(headers: &header::HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// Maps a non-2xx answer to the error set.
async fn failure(response: reqwest::Response) -> DialError {
    let status = response.status();
    match status {
        StatusCode::TOO_MANY_REQUESTS => DialError::RateLimited {
            retry_after: retry_after(response.headers()),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DialError::Unauthorized {
            status: status.as_u16(),
        },
        StatusCode::REQUEST_TIMEOUT => DialError::Unavailable(Unavailable::Server {
            status: status.as_u16(),
        }),
        s if s.is_client_error() => {
            let code = response
                .json::<ErrorBody>()
                .await
                .map(|b| b.error.code)
                .unwrap_or_else(|_| format!("http_{}", s.as_u16()));
            DialError::Rejected {
                status: s.as_u16(),
                code,
            }
        }
        s if s.is_server_error() => {
            DialError::Unavailable(Unavailable::Server { status: s.as_u16() })
        }
        _ => DialError::Unavailable(Unavailable::Protocol),
    }
}

#[async_trait]
impl Dialer for HttpDialer {
    #[tracing::instrument(skip_all, fields(call.key = %request.key, call.to = %request.to))]
    async fn place(&self, request: DialRequest) -> Result<Placed, DialError> {
        let response = self
            .http
            .post(format!("{}/calls", self.base))
            .bearer_auth(&self.token)
            .header(IDEMPOTENCY_KEY_HEADER, request.key.as_str())
            .json(&PlaceCallBody::from_request(
                &request,
                self.callback_url.clone(),
            ))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            let error = failure(response).await;
            tracing::debug!(http.status = status.as_u16(), error = %error, "place refused");
            return Err(error);
        }
        let replayed = status == StatusCode::OK
            || response
                .headers()
                .get(REPLAYED_HEADER)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        // A 2xx whose body cannot be read still means the call exists: report it as
        // unavailable so the worker looks it up.
        let call: ProviderCall = response.json().await.map_err(|e| transport(&e))?;
        Ok(Placed { call, replayed })
    }

    #[tracing::instrument(skip_all, fields(call.key = %key))]
    async fn lookup(&self, key: &IdempotencyKey) -> Result<Option<ProviderCall>, DialError> {
        let response = self
            .http
            .get(format!("{}/calls/by-key/{}", self.base, key.as_str()))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => response.json().await.map(Some).map_err(|e| transport(&e)),
            _ => Err(failure(response).await),
        }
    }
}
