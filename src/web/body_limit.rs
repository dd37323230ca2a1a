//! Refuse a body by its declared size before reading any of it: a request
//! whose `Content-Length` is past [`BODY_LIMIT`] gets the panel's 413 (JSON
//! for `/api/`, a page otherwise) at once, instead of being waited on.
//! Bodies without a length are still cut at the limit while read
//! (`DefaultBodyLimit`).

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::BODY_LIMIT;
use crate::error::AppError;

/// After answering 413, read and discard at most this much of what the
/// client is already sending, for at most `DRAIN_FOR`: closing a socket with
/// unread data resets it, and a client still writing its body would see the
/// reset instead of the answer.
const DRAIN_BYTES: usize = 1 << 20;
const DRAIN_FOR: Duration = Duration::from_secs(2);

pub async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_none_or(|n| n <= BODY_LIMIT as u64) {
        return next.run(request).await;
    }
    let body = request.into_body();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DRAIN_FOR, drain(body)).await;
    });
    let mut response = AppError::TooLarge(format!(
        "The request body is larger than the {} KiB this server accepts.",
        BODY_LIMIT / 1024
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn drain(mut body: Body) {
    let mut seen = 0;
    while seen < DRAIN_BYTES {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(1, |d| d.len().max(1)),
            _ => return,
        }
    }
}
