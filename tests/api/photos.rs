//! Photos by upload: GraphQL multipart requests as upload clients send them, every file
//! treated as hostile (type from the bytes, size and pixel limits before decoding, re-encoded
//! so metadata is gone), served immutable from `/media`, replaced and removed without leaving
//! files behind, and only by the people who may change the menu or the restaurant.

use std::io::Cursor;

use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::roma_items,
};

const UPLOAD_ITEM: &str = "mutation($input: UploadMenuItemPhotoInput!) { uploadMenuItemPhoto(input: $input) {
    image { url small: url(width: 100) width height alt sizes { width height url } } userErrors { field code message } } }";
const UPLOAD_RESTAURANT: &str =
    "mutation($input: UploadRestaurantImageInput!) { uploadRestaurantImage(input: $input) {
    image { url width height } userErrors { field code message } } }";
const REMOVE_ITEM: &str = "mutation($input: RemoveMenuItemPhotoInput!) { removeMenuItemPhoto(input: $input) { removed userErrors { code } } }";
const ITEM: &str =
    "query($id: ID!) { node(id: $id) { ... on MenuItem { imageUrl image { url alt } } } }";

/// A `width` by `height` picture with some structure, encoded as `format`.
pub(crate) fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 200) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// A JPEG carrying an EXIF segment with a GPS position, as phones write them.
fn jpeg_with_gps() -> Vec<u8> {
    let plain = picture(640, 480, image::ImageFormat::Jpeg);
    let mut exif = b"Exif\0\0MM\0*GPSLatitude=52.5200;GPSLongitude=13.4050".to_vec();
    exif.resize(64, 0);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    segment.extend_from_slice(&exif);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&segment);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A 640 × 480 JPEG whose EXIF orientation says "turn 90° clockwise", as phones store
/// portraits.
fn sideways_jpeg() -> Vec<u8> {
    let plain = picture(640, 480, image::ImageFormat::Jpeg);
    // TIFF header (big-endian), one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
    let mut exif =
        b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(&[0; 4]);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A PNG whose header says 30000 × 30000 pixels (and whose data would never decode).
fn pixel_bomb() -> Vec<u8> {
    let mut png = picture(4, 4, image::ImageFormat::Png);
    // IHDR's width and height follow the 8-byte signature, the chunk length and its type.
    png[16..20].copy_from_slice(&30_000_u32.to_be_bytes());
    png[20..24].copy_from_slice(&30_000_u32.to_be_bytes());
    // The chunk's CRC covers its type and data (bytes 12..29) and follows them.
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// CRC-32 (ISO 3309), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Sends `query` with `input` as a GraphQL multipart request, the file at `input.file`.
pub(crate) async fn upload(
    app: &TestApp,
    who: &str,
    query: &str,
    input: Value,
    file: Vec<u8>,
    preflight: bool,
) -> (u16, Value) {
    let operations = json!({ "query": query, "variables": { "input": input } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.input.file"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(file)
                .file_name("photo.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .multipart(form);
    if !who.is_empty() {
        request = request.header("authorization", who);
    }
    if preflight {
        request = request.header("apollo-require-preflight", "true");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

db_test! {
    /// The owner uploads a photo: it is re-encoded in three widths without its metadata,
    /// served immutable as JPEG, shown on the item (and in the deprecated `imageUrl`); a new
    /// photo replaces it and the old files go; removing it leaves nothing behind.
    async fn photos_are_reencoded_served_replaced_and_removed(app) {
        let (_, items) = roma_items(&app).await;
        let item = items[0].0.clone();
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let (status, body) = upload(&app, &owner, UPLOAD_ITEM, json!({ "menuItemId": item, "file": null, "alt": "Pizza on a wooden board" }),
            picture(1600, 1000, image::ImageFormat::Png), true).await;
        assert_eq!(status, 200, "{body}");
        let uploaded = body["data"]["uploadMenuItemPhoto"].clone();
        assert_eq!(uploaded["userErrors"], json!([]), "{body}");
        let photo = uploaded["image"].clone();
        assert_eq!((photo["width"].as_i64(), photo["height"].as_i64()), (Some(1200), Some(750)));
        let widths: Vec<i64> = photo["sizes"].as_array().unwrap().iter().map(|s| s["width"].as_i64().unwrap()).collect();
        assert_eq!(widths, [96, 480, 1200]);
        assert_eq!(photo["small"], photo["sizes"][1]["url"], "the narrowest size at least 100 wide");
        assert_eq!(photo["alt"], "Pizza on a wooden board");
        let shown = app.graphql(ITEM, json!({ "id": item })).await;
        assert_eq!(shown.data()["node"]["image"]["url"], photo["url"]);
        assert_eq!(shown.data()["node"]["imageUrl"], photo["url"]);

        let served = get(&app, photo["url"].as_str().unwrap()).await;
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["content-type"], "image/jpeg");
        assert_eq!(served.headers()["x-content-type-options"], "nosniff");
        assert!(served.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let bytes = served.bytes().await.unwrap();
        let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (1200, 750));

        // A phone's JPEG: its GPS position is not in what is stored.
        let (_, body) = upload(&app, &owner, UPLOAD_ITEM, json!({ "menuItemId": item, "file": null }), jpeg_with_gps(), true).await;
        let second = body["data"]["uploadMenuItemPhoto"]["image"].clone();
        assert_eq!(second["width"], 640, "{body}");
        for size in second["sizes"].as_array().unwrap() {
            let bytes = get(&app, size["url"].as_str().unwrap()).await.bytes().await.unwrap();
            assert!(!bytes.windows(4).any(|w| w == b"Exif") && !bytes.windows(3).any(|w| w == b"GPS"), "metadata left in {size}");
        }
        // A portrait stored sideways with an EXIF orientation is turned upright.
        let (_, body) = upload(&app, &owner, UPLOAD_ITEM, json!({ "menuItemId": items[1].0, "file": null }), sideways_jpeg(), true).await;
        let upright = &body["data"]["uploadMenuItemPhoto"]["image"];
        assert_eq!((upright["width"].as_i64(), upright["height"].as_i64()), (Some(480), Some(640)), "{body}");
        app.graphql_as(Some(&owner), REMOVE_ITEM, json!({ "input": { "menuItemId": items[1].0 } })).await;
        // The first photo's files are gone now that nothing shows them.
        for size in photo["sizes"].as_array().unwrap() {
            assert_eq!(get(&app, size["url"].as_str().unwrap()).await.status(), 404, "{size}");
        }

        let removed = app.graphql_as(Some(&owner), REMOVE_ITEM, json!({ "input": { "menuItemId": item } })).await;
        assert_eq!(removed.data()["removeMenuItemPhoto"], json!({ "removed": true, "userErrors": [] }));
        let shown = app.graphql(ITEM, json!({ "id": item })).await;
        assert_eq!(shown.data()["node"], json!({ "imageUrl": null, "image": null }));
        for size in second["sizes"].as_array().unwrap() {
            assert_eq!(get(&app, size["url"].as_str().unwrap()).await.status(), 404);
        }
        for path in ["/media/..%2Fsecret", "/media/notakey.jpg", &format!("/media/{}-480.png", "a".repeat(64))] {
            assert_eq!(get(&app, path).await.status(), 404, "{path}");
        }
        let rows = entities::image::Entity::find().all(&app.db).await.unwrap();
        assert!(rows.is_empty(), "{rows:?}");
    }
}

use sea_orm::EntityTrait;

/// A server whose uploads are limited to 300 KB.
async fn small_uploads(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        settings.media.max_file_bytes = 300_000;
    })
    .await
}

db_test! {
    /// Hostile files and requests: each refused with a clear error, nothing stored.
    setup = small_uploads,
    async fn hostile_uploads_are_refused_and_leave_nothing(app) {
        let (_, items) = roma_items(&app).await;
        let item = items[0].0.clone();
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let input = json!({ "menuItemId": item, "file": null });
        let mut truncated = picture(800, 600, image::ImageFormat::Jpeg);
        truncated.truncate(truncated.len() / 3);
        let mut truncated_png = picture(800, 600, image::ImageFormat::Png);
        truncated_png.truncate(truncated_png.len() / 2);
        let mut polyglot = b"<html><script>alert(1)</script></html>".to_vec();
        polyglot.extend_from_slice(&picture(64, 64, image::ImageFormat::Png));
        for (file, code, what) in [
            (b"GIF89a not really".to_vec(), "INVALID", "not a JPEG"),
            (polyglot, "INVALID", "not a JPEG"),
            (b"hello, I am a text file".to_vec(), "INVALID", "not a JPEG"),
            (pixel_bomb(), "LIMIT_REACHED", "pixels"),
            (truncated, "INVALID", "cannot be read"),
            (truncated_png, "INVALID", "cannot be read"),
        ] {
            let (status, body) = upload(&app, &owner, UPLOAD_ITEM, input.clone(), file, true).await;
            assert_eq!(status, 200, "{body}");
            let errors = &body["data"]["uploadMenuItemPhoto"]["userErrors"];
            assert_eq!(errors[0]["field"], json!(["input", "file"]), "{body}");
            assert_eq!(errors[0]["code"], code, "{body}");
            assert!(errors[0]["message"].as_str().unwrap().contains(what), "{body}");
        }
        // Over the size limit: the request is refused while it is read.
        let big = picture(1200, 1200, image::ImageFormat::Png);
        assert!(big.len() > 300_000, "{}", big.len());
        let (status, body) = upload(&app, &owner, UPLOAD_ITEM, input.clone(), big, true).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("multipart"), "{body}");

        // Without the preflight header a multipart request does not run at all.
        let good = picture(200, 100, image::ImageFormat::Png);
        let (status, body) = upload(&app, &owner, UPLOAD_ITEM, input.clone(), good.clone(), false).await;
        assert_eq!(status, 415, "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("Apollo-Require-Preflight"), "{body}");

        // A map naming a part that is not there; more files than allowed.
        let operations = json!({ "query": UPLOAD_ITEM, "variables": { "input": input } }).to_string();
        let send = |form: reqwest::multipart::Form| {
            app.client.post(format!("{}/graphql", app.address)).header("authorization", &owner)
                .header("apollo-require-preflight", "1").multipart(form).send()
        };
        let missing = reqwest::multipart::Form::new().text("operations", operations.clone())
            .text("map", json!({ "0": ["variables.input.file"], "1": ["variables.input.file"] }).to_string())
            .part("0", reqwest::multipart::Part::bytes(good.clone()).file_name("a.png"));
        let response = send(missing).await.unwrap();
        assert_eq!(response.status(), 400);
        let mut many = reqwest::multipart::Form::new().text("operations", operations.clone());
        let mut map = serde_json::Map::new();
        for n in 0..5 {
            map.insert(n.to_string(), json!(["variables.input.file"]));
        }
        many = many.text("map", Value::Object(map).to_string());
        for n in 0..5 {
            many = many.part(n.to_string(), reqwest::multipart::Part::bytes(good.clone()).file_name(format!("{n}.png")));
        }
        let response = send(many).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("at most 4 files"), "{body}");

        let rows = entities::image::Entity::find().all(&app.db).await.unwrap();
        assert!(rows.is_empty(), "no row from a refused upload: {rows:?}");
        let shown = app.graphql(ITEM, json!({ "id": item })).await;
        assert_eq!(shown.data()["node"]["image"], Value::Null);
        // And no file: a good upload afterwards is the only thing in the directory.
        let (_, body) = upload(&app, &owner, UPLOAD_ITEM, input.clone(), good, true).await;
        assert_eq!(body["data"]["uploadMenuItemPhoto"]["userErrors"], json!([]), "{body}");
        let dir = media_dir(&app);
        let files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(files.len(), 2, "96 and its own 200 px: {files:?}");
    }
}

/// Where the test server keeps its photos.
fn media_dir(app: &TestApp) -> std::path::PathBuf {
    let settings = crate::helpers::test_settings(&app.database_url);
    settings.media.dir.unwrap_or_else(|| {
        let file = app
            .database_url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        std::path::PathBuf::from(format!("{file}.media"))
    })
}

db_test! {
    /// Item photos: the menu's people (owner, staff, admins, `menu:write` tokens); logos and
    /// covers: the owner and admins. Everyone else is refused and nothing is stored.
    async fn only_the_restaurants_people_upload_its_photos(app) {
        let (restaurant, items) = roma_items(&app).await;
        let item = items[0].0.clone();
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let scoped = |scope: &str| format!("Bearer {}", app.tokens.issue(owner_id, Some(&[scope.to_owned()]), None, chrono::Utc::now()));
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, chrono::Utc::now()));
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let file = || picture(300, 200, image::ImageFormat::Png);
        let item_input = json!({ "menuItemId": item, "file": null });
        let logo_input = json!({ "restaurantId": restaurant, "kind": "LOGO", "file": null });
        for who in [&other_owner, &customer, &scoped("orders:write")] {
            for (query, input) in [(UPLOAD_ITEM, &item_input), (UPLOAD_RESTAURANT, &logo_input)] {
                let (_, body) = upload(&app, who, query, input.clone(), file(), true).await;
                assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{who}: {body}");
            }
        }
        let (_, body) = upload(&app, "", UPLOAD_ITEM, item_input.clone(), file(), true).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
        assert!(entities::image::Entity::find().all(&app.db).await.unwrap().is_empty());
        for who in [&owner, &admin, &scoped("menu:write")] {
            let (_, body) = upload(&app, who, UPLOAD_ITEM, item_input.clone(), file(), true).await;
            assert_eq!(body["data"]["uploadMenuItemPhoto"]["userErrors"], json!([]), "{who}: {body}");
        }
        // Staff: the menu's photos, not the restaurant's logo.
        let staff = crate::settings::staff_of(&app, &restaurant).await;
        let (_, body) = upload(&app, &staff, UPLOAD_ITEM, item_input.clone(), file(), true).await;
        assert_eq!(body["data"]["uploadMenuItemPhoto"]["userErrors"], json!([]), "{body}");
        let (_, body) = upload(&app, &staff, UPLOAD_RESTAURANT, logo_input.clone(), file(), true).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
        let (_, body) = upload(&app, &owner, UPLOAD_RESTAURANT, logo_input.clone(), file(), true).await;
        assert_eq!(body["data"]["uploadRestaurantImage"]["image"]["width"], 300, "{body}");
        let (_, body) = upload(&app, &owner, UPLOAD_RESTAURANT, json!({ "restaurantId": restaurant, "kind": "COVER", "file": null }), picture(2000, 600, image::ImageFormat::WebP), true).await;
        assert_eq!(body["data"]["uploadRestaurantImage"]["image"]["width"], 1200, "{body}");
        let shown = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { logo { width } cover { width height } } } }", json!({ "id": restaurant })).await;
        assert_eq!(shown.data()["node"], json!({ "logo": { "width": 300 }, "cover": { "width": 1200, "height": 360 } }));
        let missing = GlobalId::encode(NodeKind::MenuItem, 9_999_999).0;
        let (_, body) = upload(&app, &owner, UPLOAD_ITEM, json!({ "menuItemId": missing, "file": null }), file(), true).await;
        assert_eq!(body["data"]["uploadMenuItemPhoto"]["userErrors"][0]["code"], "NOT_FOUND", "{body}");
    }
}

db_test! {
    /// Apollo Client with apollo-upload-client (what web apps send): the photo is stored and
    /// shown; without the preflight header the same client is refused.
    async fn apollo_upload_client_uploads_a_photo(app) {
        let (_, items) = roma_items(&app).await;
        let item = items[0].0.clone();
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dish.png");
        std::fs::write(&path, picture(700, 500, image::ImageFormat::Png)).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/upload.mjs");
        let run = |preflight: &'static str| {
            let (url, owner, item, path) = (format!("{}/graphql", app.address), owner.clone(), item.clone(), path.clone());
            async move {
                let output = tokio::process::Command::new("node")
                    .args([script, &url, &owner, &item, path.to_str().unwrap(), preflight])
                    .output().await.expect("node runs (npm ci --prefix tests/clients first)");
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                serde_json::from_slice::<Value>(&output.stdout).unwrap()
            }
        };
        let refused = run("no").await;
        assert_eq!(refused["status"], 415, "{refused}");
        let done = run("yes").await;
        let photo = &done["data"]["uploadMenuItemPhoto"];
        assert_eq!(photo["userErrors"], json!([]), "{done}");
        assert_eq!((photo["image"]["width"].as_i64(), photo["image"]["height"].as_i64()), (Some(700), Some(500)));
        assert_eq!(photo["image"]["alt"], "From Apollo Client");
        assert_eq!(get(&app, photo["image"]["url"].as_str().unwrap()).await.status(), 200);
    }
}

/// A local S3-compatible server (moto's, from the Python package index; `tests/run` installs it), stopped when
/// dropped, with one bucket.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    async fn start(bucket: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs moto's server (pip install 'moto[server]'; tests/run does)");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{}/moto-api/", server.endpoint))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let made = client
            .put(format!("{}/{bucket}", server.endpoint))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(made.status().is_success(), "{}", made.status());
        server
    }
}

db_test! {
    /// With `media.s3`, photos go to the bucket (under the same keys), are served from it on
    /// `/media`, and leave it when replaced.
    setup = with_s3,
    async fn photos_are_kept_in_s3_compatible_storage(app) {
        let app_and_server = app;
        let (app, bucket) = (&app_and_server.0, &app_and_server.1);
        let (_, items) = roma_items(app).await;
        let item = items[0].0.clone();
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let (_, body) = upload(app, &owner, UPLOAD_ITEM, json!({ "menuItemId": item, "file": null }), picture(900, 600, image::ImageFormat::Png), true).await;
        let photo = body["data"]["uploadMenuItemPhoto"]["image"].clone();
        assert_eq!(photo["width"], 900, "{body}");
        let listing = || async {
            reqwest::get(format!("{}/photos?list-type=2", bucket.endpoint)).await.unwrap().text().await.unwrap()
        };
        let key = |url: &Value| url.as_str().unwrap().trim_start_matches("/media/").to_owned();
        let listed = listing().await;
        for size in photo["sizes"].as_array().unwrap() {
            assert!(listed.contains(&format!("<Key>{}</Key>", key(&size["url"]))), "{size} is in the bucket: {listed}");
            let served = get(app, size["url"].as_str().unwrap()).await;
            assert_eq!(served.status(), 200);
            let decoded = image::load_from_memory(&served.bytes().await.unwrap()).unwrap();
            assert_eq!(i64::from(decoded.width()), size["width"].as_i64().unwrap());
        }
        let local = media_dir(app);
        assert!(!local.exists() || std::fs::read_dir(&local).unwrap().next().is_none(), "nothing on the local disk");
        // Replaced: the old objects leave the bucket.
        let (_, body) = upload(app, &owner, UPLOAD_ITEM, json!({ "menuItemId": item, "file": null }), picture(300, 300, image::ImageFormat::Jpeg), true).await;
        assert_eq!(body["data"]["uploadMenuItemPhoto"]["userErrors"], json!([]), "{body}");
        let listed = listing().await;
        for size in photo["sizes"].as_array().unwrap() {
            assert!(!listed.contains(&key(&size["url"])), "{size} left the bucket: {listed}");
            assert_eq!(get(app, size["url"].as_str().unwrap()).await.status(), 404);
        }
        assert_eq!(listed.matches("<Key>").count(), 2, "the new photo's two sizes: {listed}");
    }
}

/// A test server storing photos in a fresh bucket of a local S3-compatible server.
async fn with_s3(backend: Backend) -> Option<(TestApp, S3Server)> {
    let server = S3Server::start("photos").await;
    let endpoint = server.endpoint.clone();
    let app = TestApp::spawn_with(backend, 1, move |settings| {
        settings.media.s3 = Some(dishpatch::config::S3Settings {
            bucket: "photos".into(),
            endpoint: Some(endpoint),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: dishpatch::config::Secret::new("test"),
            allow_http: true,
        });
    })
    .await?;
    Some((app, server))
}

/// Puts left before the pause, the signal that they are done, and the go-ahead.
type Pause = (
    usize,
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

/// A local store whose next upload stops after storing its files, until the test lets it go
/// on (the moment between an upload's files and its row), or whose next deletion stops before
/// deleting (a collection that found no row and is about to delete).
struct PausingStore {
    inner: dishpatch::media::LocalStore,
    pause: std::sync::Mutex<Option<Pause>>,
    /// The signal that a deletion was reached, and the go-ahead.
    pause_delete: std::sync::Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::sync::oneshot::Receiver<()>,
        )>,
    >,
}

impl PausingStore {
    fn new(dir: &std::path::Path) -> Self {
        Self {
            inner: dishpatch::media::LocalStore::new(dir).unwrap(),
            pause: std::sync::Mutex::new(None),
            pause_delete: std::sync::Mutex::new(None),
        }
    }
}

impl dishpatch::media::Store for PausingStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> futures_util::future::BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            self.inner.put(key, bytes).await?;
            let resume = {
                let mut pause = self.pause.lock().unwrap();
                match pause.as_mut() {
                    Some((left, _, _)) if *left > 1 => {
                        *left -= 1;
                        None
                    }
                    Some(_) => pause.take().map(|(_, stored, resume)| {
                        stored.send(()).unwrap();
                        resume
                    }),
                    None => None,
                }
            };
            if let Some(resume) = resume {
                resume.await.unwrap();
            }
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        self.inner.get(key)
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let paused = self.pause_delete.lock().unwrap().take();
            if let Some((reached, go)) = paused {
                reached.send(()).unwrap();
                go.await.unwrap();
            }
            self.inner.delete(key).await
        })
    }
}

/// Two items of Trattoria Roma (`a`, `b`), two pictures (`p`, `q`) and media in a pausing
/// store of their own: the cast of the photo race tests.
struct Race {
    _dir: tempfile::TempDir,
    store: std::sync::Arc<PausingStore>,
    media: std::sync::Arc<dishpatch::media::Media>,
    a: i64,
    b: i64,
    p: Vec<u8>,
    q: Vec<u8>,
    now: chrono::DateTime<chrono::Utc>,
}

impl Race {
    async fn new(app: &TestApp) -> Self {
        use entities::menu_item;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(PausingStore::new(dir.path()));
        let media = std::sync::Arc::new(dishpatch::media::Media {
            store: store.clone(),
            limits: dishpatch::config::MediaSettings::default(),
        });
        let items: Vec<i64> = menu_item::Entity::find()
            .filter(menu_item::Column::RestaurantId.eq(1))
            .order_by_asc(menu_item::Column::Id)
            .all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .map(|item| item.id)
            .collect();
        Self {
            _dir: dir,
            store,
            media,
            a: items[0],
            b: items[1],
            p: picture(1600, 1000, image::ImageFormat::Png),
            q: picture(900, 700, image::ImageFormat::Png),
            now: chrono::Utc::now(),
        }
    }
}

/// Every file `row` names (the photo of item `item`) is in `store`.
async fn assert_stored(store: &PausingStore, row: &entities::image::Model, item: i64) {
    use dishpatch::media::Store as _;
    for variant in dishpatch::services::photos::variants(row) {
        assert!(
            store.get(&variant.key).await.unwrap().is_some(),
            "{} is shown for item {item} and must be stored",
            variant.key
        );
    }
}

db_test! {
    /// Item A shows photo P; the same P is uploaded for item B and, between B's files and B's
    /// row, A's photo is replaced (P's last row goes, so P's files are collected). B's row
    /// must still find every file it names.
    async fn a_photo_collected_while_the_same_bytes_are_uploaded_keeps_the_new_rows_files(app) {
        use dishpatch::services::photos::{self, Target};
        let Race { _dir, store, media, a, b, p, q, now } = Race::new(&app).await;

        let shown = photos::upload(&app.db, &media, None, Target::Item(a), p.clone(), "", now)
            .await
            .unwrap()
            .unwrap();
        let keys: Vec<String> = photos::variants(&shown).into_iter().map(|v| v.key).collect();

        // B's upload of the same bytes stops once its files are stored.
        let (stored, stored_rx) = tokio::sync::oneshot::channel();
        let (resume, resume_rx) = tokio::sync::oneshot::channel();
        *store.pause.lock().unwrap() = Some((keys.len(), stored, resume_rx));
        let upload_b = tokio::spawn({
            let (db, media) = (app.db.clone(), media.clone());
            async move { photos::upload(&db, &media, None, Target::Item(b), p, "", now).await }
        });
        stored_rx.await.unwrap();

        // Meanwhile A gets another photo: P has no row left, and its files are collected.
        photos::upload(&app.db, &media, None, Target::Item(a), q, "", now)
            .await
            .unwrap()
            .unwrap();
        resume.send(()).unwrap();
        let row = upload_b.await.unwrap().unwrap().unwrap();
        assert_eq!(row.hash, shown.hash, "the same bytes");
        assert_stored(&store, &row, b).await;
    }
}

/// A server whose photos are fetched from a CDN.
async fn behind_a_cdn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        settings.media.public_url = Some("https://cdn.example.test/photos/".to_owned());
    })
    .await
}

db_test! {
    /// With `media.public_url`, photos are linked under it (the file name the same as on
    /// `/media/`, which still serves them to the CDN); a value that is not an http(s) URL
    /// stops the server from starting, saying why.
    setup = behind_a_cdn,
    async fn photos_behind_a_cdn_are_linked_under_its_url(app) {
        let (_, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let input = json!({ "menuItemId": items[0].0, "alt": "", "file": null });
        let (status, body) = upload(&app, &owner, UPLOAD_ITEM, input, picture(700, 500, image::ImageFormat::Png), true).await;
        assert_eq!(status, 200, "{body}");
        let image = &body["data"]["uploadMenuItemPhoto"]["image"];
        let url = image["url"].as_str().unwrap_or_else(|| panic!("a url: {body}"));
        let name = url.strip_prefix("https://cdn.example.test/photos/").unwrap_or_else(|| panic!("{url} is under the CDN"));
        assert!(dishpatch::media::is_key(name), "{name}");
        for size in image["sizes"].as_array().unwrap() {
            assert!(size["url"].as_str().unwrap().starts_with("https://cdn.example.test/photos/"), "{size}");
        }
        let origin = get(&app, &format!("/media/{name}")).await;
        assert_eq!(origin.status(), 200, "the CDN's origin still serves it");

        for bad in ["cdn.example.test/photos", "https://cdn.example.test/p?x=1", "ftp://cdn.example.test"] {
            let mut settings = crate::helpers::test_settings(&app.database_url);
            settings.media.public_url = Some(bad.to_owned());
            let Err(error) = dishpatch::app::Application::build(settings).await else {
                panic!("{bad} was accepted");
            };
            assert!(format!("{error:#}").contains("media.public_url"), "{bad}: {error:#}");
        }
    }
}

db_test! {
    /// Item A's photo P is replaced, and its collection, finding no row left with P, is about
    /// to delete P's files when P is uploaded for item B. B's row must not go in until the
    /// collection is done (it holds P), and then brings P's files back. On SQLite the
    /// collection's write transaction already keeps B out; on PostgreSQL the hold does.
    async fn a_photo_uploaded_while_its_files_are_being_collected_keeps_them(app) {
        use dishpatch::services::photos::{self, Target};
        let Race { _dir, store, media, a, b, p, q, now } = Race::new(&app).await;
        photos::upload(&app.db, &media, None, Target::Item(a), p.clone(), "", now)
            .await
            .unwrap()
            .unwrap();

        // A's new photo: the collection of P stops just before deleting.
        let (reached, reached_rx) = tokio::sync::oneshot::channel();
        let (go, go_rx) = tokio::sync::oneshot::channel();
        *store.pause_delete.lock().unwrap() = Some((reached, go_rx));
        let replace_a = tokio::spawn({
            let (db, media) = (app.db.clone(), media.clone());
            async move { photos::upload(&db, &media, None, Target::Item(a), q, "", now).await }
        });
        reached_rx.await.unwrap();
        // P for B meanwhile; were it not held, it would be in well within this wait.
        let upload_b = tokio::spawn({
            let (db, media) = (app.db.clone(), media.clone());
            async move { photos::upload(&db, &media, None, Target::Item(b), p, "", now).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        go.send(()).unwrap();
        replace_a.await.unwrap().unwrap().unwrap();
        let row = upload_b.await.unwrap().unwrap().unwrap();
        assert_stored(&store, &row, b).await;
    }
}
