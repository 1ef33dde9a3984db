//! Photos. Every uploaded file is treated as hostile: its size is bounded, its type is decided
//! by its bytes (JPEG, PNG or WebP only), its dimensions are read from its header and bounded
//! before anything is decoded (a decompression bomb never gets its pixels allocated), and what
//! is stored is never the upload itself: the decoded pixels are re-encoded as JPEG in a few
//! widths, which leaves EXIF, GPS and any payload hidden in the original behind.
//!
//! Files live in a [`Store`] under content-addressed keys (`<sha256 of the upload>-<width>.jpg`):
//! the same photo uploaded twice is stored once, and a key's bytes never change, so
//! `/media/<key>` is served with an immutable cache header.

use std::{
    io::Cursor,
    path::{Path, PathBuf},
    sync::Arc,
};

use futures_util::future::BoxFuture;
use image::{
    DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, codecs::jpeg::JpegEncoder,
    imageops::FilterType, metadata::Orientation,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::MediaSettings;

/// The widths a photo is stored in (narrower originals are not enlarged).
pub const WIDTHS: [u32; 3] = [96, 480, 1200];
/// JPEG quality of stored photos.
const QUALITY: u8 = 85;

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the file is not a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error("the image has more than {0} pixels")]
    TooManyPixels(u64),
    #[error("the image cannot be read (truncated or damaged)")]
    Unreadable,
}

/// One stored size of a photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    /// The file's key in the store.
    pub key: String,
}

/// A photo checked and re-encoded, ready to store.
#[derive(Debug)]
pub struct Processed {
    /// Hex SHA-256 of the upload.
    pub hash: String,
    /// The sizes, narrowest first, with their encoded bytes.
    pub variants: Vec<(Variant, Vec<u8>)>,
}

/// Checks `bytes` and re-encodes them into the stored widths. CPU-bound: call it off the
/// async workers (`spawn_blocking`).
pub fn process(bytes: &[u8], limits: &MediaSettings) -> Result<Processed, Rejected> {
    if bytes.len() > limits.max_file_bytes {
        return Err(Rejected::TooLarge(limits.max_file_bytes));
    }
    let format = image::guess_format(bytes).map_err(|_| Rejected::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(Rejected::NotAnImage);
    }
    // JPEG decoders fill a cut-off scan with grey rather than fail: a complete file ends its
    // last scan with an end-of-image marker.
    if format == ImageFormat::Jpeg && !jpeg_complete(bytes) {
        return Err(Rejected::Unreadable);
    }
    // The header alone first: how many pixels decoding would allocate.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| Rejected::Unreadable)?;
    if u64::from(width) * u64::from(height) > limits.max_pixels || width == 0 || height == 0 {
        return Err(Rejected::TooManyPixels(limits.max_pixels));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decode_limits = Limits::default();
    decode_limits.max_image_width = Some(width);
    decode_limits.max_image_height = Some(height);
    decode_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decode_limits);
    let mut source = reader.into_decoder().map_err(|_| Rejected::Unreadable)?;
    // Phones store portraits sideways with an EXIF orientation; the metadata goes, so the
    // turn is applied to the pixels.
    let orientation = source.orientation().unwrap_or(Orientation::NoTransforms);
    let mut decoded = DynamicImage::from_decoder(source).map_err(|_| Rejected::Unreadable)?;
    decoded.apply_orientation(orientation);
    let (width, height) = (decoded.width(), decoded.height());
    let hash = hex::encode(Sha256::digest(bytes));
    let mut widths: Vec<u32> = WIDTHS.iter().copied().filter(|w| *w < width).collect();
    if widths.len() < WIDTHS.len() {
        // Narrower than the widest size: its own width is the widest it is stored in.
        widths.push(width);
    }
    let variants = widths
        .into_iter()
        .map(|target| {
            let target_height =
                u32::try_from(u64::from(height) * u64::from(target) / u64::from(width))
                    .unwrap_or(1)
                    .max(1);
            let sized = if target == width {
                decoded.clone()
            } else {
                decoded.resize_exact(target, target_height, FilterType::Triangle)
            };
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, QUALITY)
                .encode_image(&sized.to_rgb8())
                .map_err(|_| Rejected::Unreadable)?;
            Ok((
                Variant {
                    width: target,
                    height: target_height,
                    key: format!("{hash}-{target}.jpg"),
                },
                out,
            ))
        })
        .collect::<Result<Vec<_>, Rejected>>()?;
    Ok(Processed { hash, variants })
}

/// Whether a JPEG has an end-of-image marker after its last start-of-scan (an embedded
/// thumbnail's own markers come before the main image's scan).
fn jpeg_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    matches!((last(0xDA), last(0xD9)), (Some(scan), Some(end)) if end > scan)
}

/// Whether `key` is one this module makes (and nothing that could name another file).
pub fn is_key(key: &str) -> bool {
    let Some((hash, rest)) = key.split_once('-') else {
        return false;
    };
    let Some(width) = rest.strip_suffix(".jpg") else {
        return false;
    };
    hash.len() == 64
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (1..=5).contains(&width.len())
        && width.bytes().all(|b| b.is_ascii_digit())
}

/// Where photos' files are kept.
pub trait Store: Send + Sync {
    /// Stores `bytes` under `key` (a key's bytes never change, so storing it again is a no-op).
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>>;
    /// The bytes under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>>;
    /// Removes `key` (gone already is fine).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<()>>;
}

/// A directory on this machine: the default, next to the SQLite file.
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// A store in `dir`, made if missing.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        if is_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a media key",
            ))
        }
    }
}

impl Store for LocalStore {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if tokio::fs::try_exists(&path).await? {
                return Ok(());
            }
            // Written aside and renamed into place, so a reader never sees half a file.
            let partial = self.dir.join(format!(".{key}.{}", std::process::id()));
            tokio::fs::write(&partial, bytes).await?;
            tokio::fs::rename(&partial, &path).await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)?).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            }
        })
    }
}

/// An S3-compatible bucket, through `object_store`.
pub struct S3Store {
    bucket: object_store::aws::AmazonS3,
}

impl S3Store {
    /// The bucket `settings` names.
    pub fn new(settings: &crate::config::S3Settings) -> std::io::Result<Self> {
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            .with_allow_http(settings.allow_http);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        Ok(Self {
            bucket: builder.build().map_err(std::io::Error::other)?,
        })
    }
}

fn object_path(key: &str) -> std::io::Result<object_store::path::Path> {
    if is_key(key) {
        Ok(object_store::path::Path::from(key))
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a media key",
        ))
    }
}

impl Store for S3Store {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        use object_store::ObjectStore as _;
        Box::pin(async move {
            let options = object_store::PutOptions {
                attributes: [(
                    object_store::Attribute::ContentType,
                    object_store::AttributeValue::from("image/jpeg"),
                )]
                .into_iter()
                .collect(),
                ..Default::default()
            };
            let path = object_path(key)?;
            // Stored already: a key's bytes never change (and an upload re-stores its files
            // while it holds them against collection, `services::photos::swap`). Anything
            // else (not found, or a 403 from a bucket policy without `s3:ListBucket`) puts.
            if self.bucket.head(&path).await.is_ok() {
                return Ok(());
            }
            self.bucket
                .put_opts(&path, bytes.to_vec().into(), options)
                .await
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        use object_store::ObjectStore as _;
        Box::pin(async move {
            match self.bucket.get(&object_path(key)?).await {
                Ok(found) => Ok(Some(
                    found.bytes().await.map_err(std::io::Error::other)?.to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(error) => Err(std::io::Error::other(error)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<()>> {
        use object_store::ObjectStore as _;
        Box::pin(async move {
            match self.bucket.delete(&object_path(key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(std::io::Error::other(error)),
            }
        })
    }
}

/// Media storage and its limits, shared by the schema and the `/media` route.
#[derive(Clone)]
pub struct Media {
    pub store: Arc<dyn Store>,
    pub limits: MediaSettings,
}

impl Media {
    /// The store `settings` name: `media.s3`, else `media.dir`, else a directory beside the
    /// SQLite file (`<file>.media`), else `./media`.
    pub fn from_settings(
        settings: &MediaSettings,
        database: &crate::config::DatabaseUrl,
    ) -> std::io::Result<Self> {
        if let Some(base) = &settings.public_url {
            let scheme = base.starts_with("https://") || base.starts_with("http://");
            if !scheme || base.contains(['?', '#']) || base.chars().any(char::is_whitespace) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "media.public_url must be an http(s) URL without a query, e.g. \
                         https://cdn.example.com/photos (got `{base}`)"
                    ),
                ));
            }
        }
        if let Some(s3) = &settings.s3 {
            return Ok(Self {
                store: Arc::new(S3Store::new(s3)?),
                limits: settings.clone(),
            });
        }
        let dir = settings
            .dir
            .clone()
            .or_else(|| crate::auth::kept_key::beside_database(database, ".media"))
            .unwrap_or_else(|| PathBuf::from("media"));
        Ok(Self {
            store: Arc::new(LocalStore::new(&dir)?),
            limits: settings.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_only_media_files() {
        let hash = "a".repeat(64);
        assert!(is_key(&format!("{hash}-480.jpg")));
        for bad in [
            format!("{hash}-480.png"),
            format!("{hash}-.jpg"),
            format!("../{hash}-480.jpg"),
            format!("{}-480.jpg", "A".repeat(64)),
            format!("{hash}-480.jpg/.."),
            "x-1.jpg".to_owned(),
        ] {
            assert!(!is_key(&bad), "{bad}");
        }
    }
}
