//! Static files, compiled into the binary. Served with an ETag and
//! `no-cache`, so browsers revalidate cheaply and never run stale code
//! after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/app.css"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        path: "vendor/htmx/htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/vendor/htmx/htmx.min.js"),
    },
];

fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = Sha256::digest(a.bytes);
                let short: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{short}\"")
            })
            .collect()
    })
}

pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        return Err(AppError::not_found("No such file."));
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// `/favicon.ico`, which browsers ask for on their first page: the icon.
pub async fn favicon(headers: HeaderMap) -> Result<Response, AppError> {
    serve(Path("favicon.svg".to_string()), headers).await
}
