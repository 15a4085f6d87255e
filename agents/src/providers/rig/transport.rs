//! rig's HTTP transport, on Brain's own reqwest client: one TLS stack, the timeouts Brain
//! configures, and — for a tenant's own endpoint — the egress policy's guarded resolver.
//! Errors never carry the request URL (Gemini puts the API key in the query string).

use bytes::Bytes;
use futures::StreamExt;
use rig_core::http_client::{self, HttpClientExt, LazyBody, MultipartForm, Request, Response};

#[derive(Clone)]
pub(super) struct Transport(pub(super) reqwest::Client);

/// A request that got no answer, as rig's transport error (no URL in it).
fn send_failed(error: reqwest::Error) -> http_client::Error {
    http_client::Error::instance(error.without_url())
}

/// Sends `request` through `http`. The request is converted before the returned future,
/// which so holds nothing of the caller's body type.
fn open<T: Into<Bytes>>(
    http: &reqwest::Client,
    request: Request<T>,
) -> impl Future<Output = Result<reqwest::Response, http_client::Error>> + Send + 'static {
    let converted = reqwest::Request::try_from(request.map(Into::<Bytes>::into));
    let http = http.clone();
    async move {
        http.execute(converted.map_err(send_failed)?)
            .await
            .map_err(send_failed)
    }
}

/// The status and headers of `response`, over `body`.
#[expect(
    clippy::result_large_err,
    reason = "rig's transport error type, returned as is"
)]
fn head<B>(response: &reqwest::Response, body: B) -> Result<Response<B>, http_client::Error> {
    let mut builder = Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(response.headers().clone());
    }
    Ok(builder.body(body)?)
}

impl HttpClientExt for Transport {
    fn send<T, U>(
        &self,
        request: Request<T>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + Send + 'static
    where
        T: Into<Bytes> + Send,
        U: From<Bytes> + Send + 'static,
    {
        let opened = open(&self.0, request);
        async move {
            let response = opened.await?;
            let parts = head(&response, ())?;
            let body: LazyBody<U> = Box::pin(async move {
                let bytes = response.bytes().await.map_err(send_failed)?;
                Ok(U::from(bytes))
            });
            Ok(parts.map(|()| body))
        }
    }

    fn send_multipart<U>(
        &self,
        _request: Request<MultipartForm>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + Send + 'static
    where
        U: From<Bytes> + Send + 'static,
    {
        // Chat completions never upload files.
        std::future::ready(Err(http_client::Error::instance(std::io::Error::other(
            "multipart requests are not used by Brain's model providers",
        ))))
    }

    fn send_streaming<T>(
        &self,
        request: Request<T>,
    ) -> impl Future<Output = http_client::Result<http_client::StreamingResponse>> + Send
    where
        T: Into<Bytes> + Send,
    {
        let opened = open(&self.0, request);
        async move {
            let response = opened.await?;
            let empty: http_client::BoxedStream = Box::pin(futures::stream::empty());
            let mut parts = head(&response, empty)?;
            let chunks = futures::stream::unfold(Some(response), |response| async move {
                let mut response = response?;
                match response.chunk().await {
                    Ok(Some(bytes)) => Some((Ok(bytes), Some(response))),
                    Ok(None) => None,
                    Err(e) => Some((Err(send_failed(e)), None)),
                }
            });
            *parts.body_mut() = Box::pin(chunks.boxed());
            Ok(parts)
        }
    }
}
