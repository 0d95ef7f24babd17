//! The web console at `/`: static assets embedded in the binary (no CDN,
//! nothing fetched from elsewhere), a page of plain ES modules that talks
//! only to the public `/api/v1`. The assets need no token (they hold no
//! data); every API call the page makes sends the one the user entered.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

/// Every asset: its name under `/ui/`, its content type and its bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../ui/index.html")),
    ("style.css", "text/css; charset=utf-8", include_str!("../ui/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("../ui/favicon.svg")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../ui/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../ui/api.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("../ui/dom.js")),
    ("dag.js", "text/javascript; charset=utf-8", include_str!("../ui/dag.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../ui/charts.js")),
    ("jobs.js", "text/javascript; charset=utf-8", include_str!("../ui/jobs.js")),
    ("job.js", "text/javascript; charset=utf-8", include_str!("../ui/job.js")),
    ("plugins.js", "text/javascript; charset=utf-8", include_str!("../ui/plugins.js")),
    ("savepoints.js", "text/javascript; charset=utf-8", include_str!("../ui/savepoints.js")),
];

/// The page may load and call only this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The console's routes (`/` and `/ui/{file}`), outside the API's auth.
pub fn router() -> Router {
    Router::new().route("/", get(|| async { asset("index.html") })).route("/ui/{file}", get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    asset(&name)
}

fn asset(name: &str) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::not_found("not_found", format!("the console has no file {name}")).into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Assets change with the binary: revalidate rather than keep an old page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        // Each `import … from "./x.js"` and each `/ui/…` the HTML names must be an asset.
        for (name, _, body) in ASSETS {
            for part in body.split("from \"./").skip(1).chain(body.split("\"/ui/").skip(1)) {
                let target = part.split('"').next().unwrap();
                assert!(ASSETS.iter().any(|(n, _, _)| *n == target), "{name} refers to {target}, which is not served");
            }
        }
    }
}
