//! GraphiQL, served from the binary: the page on `GET /graphql` (for browsers) and its assets
//! on `/graphiql/{file}`. Nothing is loaded from elsewhere, so it works offline, behind strict
//! proxies and under a Content-Security-Policy that lets only this origin's scripts run.
//!
//! The files are the production builds of pinned npm packages (`assets/graphiql/package.json`,
//! `update.sh` copies them into `assets/graphiql/dist`), embedded at compile time: serving
//! them needs no npm.

use std::sync::LazyLock;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use sha2::{Digest, Sha256};

/// The page's policy (`assets/graphiql/CSP.txt`, which explains it): scripts and styles from
/// this origin only (plus the hash of the one inline style GraphiQL's dialogs add), images and
/// fonts from the CSS's `data:` URLs, requests to this origin only (WebSocket included), and
/// no framing.
static CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(include_str!("../assets/graphiql/CSP.txt").trim())
        .expect("the policy is a header value")
});

/// The first tab's document in a browser that has none saved.
const DEFAULT_QUERY: &str =
    "# Welcome to dishpatch. Paste an {\"Authorization\": \"Bearer …\"} header into the
# Headers tab below to act as someone (`serve --demo` prints one per demo account).
{
  restaurants(first: 5, filter: { openNow: true }) {
    totalCount
    edges { node { name cuisines rating { average count } } }
  }
}
";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/graphiql/dist/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("graphiql.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql.min.css", "text/css; charset=utf-8"),
    asset!("react.production.min.js", "text/javascript; charset=utf-8"),
    asset!(
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("init.js", "text/javascript; charset=utf-8"),
    asset!("page.css", "text/css; charset=utf-8"),
    asset!("THIRD_PARTY_LICENSES.txt", "text/plain; charset=utf-8"),
];

/// Each asset's entity tag: a hash of its bytes, so a browser revalidates cheaply and never
/// keeps a file across an upgrade that changed it.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..12])))
                .expect("hex is a header value")
        })
        .collect()
});

/// The page, with its policy.
pub fn page() -> HttpResponse {
    let config = serde_json::json!({ "query": DEFAULT_QUERY })
        .to_string()
        // A data block ends at `</script>`: no `<` may appear in it as such.
        .replace('<', "\\u003c");
    let html = include_str!("../assets/graphiql/dist/index.html").replace(
        "<!-- graphiql-config -->",
        &format!(r#"<script type="application/json" id="graphiql-config">{config}</script>"#),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY.clone(),
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

/// `GET /graphiql/{file}`: an embedded asset, revalidated by its entity tag.
pub async fn asset(request: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    let (asset, etag) = (&ASSETS[index], &ETAGS[index]);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|given| given == etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.bytes)
}
