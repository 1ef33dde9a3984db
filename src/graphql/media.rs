//! Photos in the API: the `Image` type, its loader, and the upload mutations (GraphQL
//! multipart requests, as Apollo Client's and urql's upload links send them).

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, Enum, ID, InputObject, Object, Result, SimpleObject, Upload, dataloader::Loader,
};
use chrono::Utc;
use entities::image;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::{
    auth::guards::viewer,
    error::AppError,
    graphql::{
        loaders::{LoadError, Loaders},
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    media::Media,
    services::photos::{self, Target},
};

/// A photo, stored in a few widths.
#[derive(Clone)]
pub struct Image(pub Arc<image::Model>);

/// One stored width of a photo.
#[derive(SimpleObject)]
pub struct ImageSize {
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Where it is served (`/media/…`, or under the server's CDN; immutable, cache it for
    /// ever).
    pub url: String,
}

/// A photo, stored in a few widths.
#[Object]
impl Image {
    /// The URL of the narrowest stored size at least `width` pixels wide (the widest when
    /// none is; the widest without `width`). Sizes are 96, 480 and 1200 pixels wide, or the
    /// original's width when it is narrower.
    async fn url(&self, ctx: &Context<'_>, width: Option<i32>) -> Result<String> {
        let media = ctx.data::<Media>()?;
        let variants = photos::variants(&self.0);
        let wanted = width
            .and_then(|w| u32::try_from(w).ok())
            .unwrap_or(u32::MAX);
        Ok(variants
            .iter()
            .find(|v| v.width >= wanted)
            .or_else(|| variants.last())
            .map(|variant| photos::url(media, variant))
            .unwrap_or_default())
    }

    /// Width of the widest stored size, in pixels.
    async fn width(&self) -> i32 {
        self.0.width
    }

    /// Height of the widest stored size, in pixels.
    async fn height(&self) -> i32 {
        self.0.height
    }

    /// Text for people who cannot see the photo; may be empty.
    async fn alt(&self) -> &str {
        &self.0.alt
    }

    /// Every stored size, narrowest first (for `srcset`).
    async fn sizes(&self, ctx: &Context<'_>) -> Result<Vec<ImageSize>> {
        let media = ctx.data::<Media>()?;
        Ok(photos::variants(&self.0)
            .iter()
            .map(|v| ImageSize {
                width: i32::try_from(v.width).unwrap_or(i32::MAX),
                height: i32::try_from(v.height).unwrap_or(i32::MAX),
                url: photos::url(media, v),
            })
            .collect())
    }
}

/// Photos by what they show; one statement per batch.
pub struct ImagesByTarget(pub DatabaseConnection);

impl Loader<Target> for ImagesByTarget {
    type Value = Arc<image::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[Target]) -> Result<HashMap<Target, Self::Value>, Self::Error> {
        let backend = self.0.get_database_backend();
        let (mut items, mut restaurants) = (Vec::new(), Vec::new());
        for key in keys {
            match key {
                Target::Item(id) => items.push(*id),
                Target::Logo(id) | Target::Cover(id) => restaurants.push(*id),
            }
        }
        let mut condition = Condition::any();
        if !items.is_empty() {
            condition = condition.add(Condition::all().add(image::Column::Kind.eq("item")).add(
                crate::db::one_of(image::Column::MenuItemId, &items, backend),
            ));
        }
        if !restaurants.is_empty() {
            condition = condition.add(
                Condition::all()
                    .add(image::Column::Kind.is_in(["logo", "cover"]))
                    .add(crate::db::one_of(
                        image::Column::RestaurantId,
                        &restaurants,
                        backend,
                    )),
            );
        }
        let rows = image::Entity::find()
            .filter(condition)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let target = match (row.kind.as_str(), row.menu_item_id) {
                    ("item", Some(id)) => Target::Item(id),
                    ("logo", _) => Target::Logo(row.restaurant_id),
                    ("cover", _) => Target::Cover(row.restaurant_id),
                    _ => return None,
                };
                Some((target, Arc::new(row)))
            })
            .collect())
    }
}

/// The photo showing `target`, through the request's loader.
pub async fn load_image(ctx: &Context<'_>, target: Target) -> Result<Option<Image>> {
    Ok(ctx
        .data::<Loaders>()?
        .images
        .load_one(target)
        .await?
        .map(Image))
}

/// Which picture of a restaurant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RestaurantImageKind {
    /// Its logo (square works best).
    Logo,
    /// The wide picture at the top of its page.
    Cover,
}

/// A photo for a menu item.
#[derive(InputObject)]
pub struct UploadMenuItemPhotoInput {
    /// The item.
    pub menu_item_id: ID,
    /// A JPEG, PNG or WebP file (at most `media.max_file_bytes`, 10 MiB by default, and 40
    /// megapixels); it is re-encoded, so nothing but its pixels is kept.
    pub file: Upload,
    /// Text for people who cannot see it (at most 300 characters).
    #[graphql(default)]
    pub alt: String,
}

/// A logo or cover picture for a restaurant.
#[derive(InputObject)]
pub struct UploadRestaurantImageInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// Which picture.
    pub kind: RestaurantImageKind,
    /// A JPEG, PNG or WebP file, as for menu items.
    pub file: Upload,
    /// Text for people who cannot see it (at most 300 characters).
    #[graphql(default)]
    pub alt: String,
}

/// Which photo to remove from a menu item.
#[derive(InputObject)]
pub struct RemoveMenuItemPhotoInput {
    /// The item.
    pub menu_item_id: ID,
}

/// Which picture to remove from a restaurant.
#[derive(InputObject)]
pub struct RemoveRestaurantImageInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// Which picture.
    pub kind: RestaurantImageKind,
}

/// The photo after an upload.
#[derive(SimpleObject)]
pub struct ImagePayload {
    /// The photo now shown; null on a user error.
    pub image: Option<Image>,
    /// Problems with the input (the file's among them); empty on success.
    pub user_errors: Vec<UserError>,
}

/// The outcome of removing a photo.
#[derive(SimpleObject)]
pub struct RemoveImagePayload {
    /// Whether the call went through (also when there was no photo to remove).
    pub removed: bool,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn restaurant_target(id: &ID, kind: RestaurantImageKind) -> Result<Target> {
    let id = GlobalId::decode_as(id, NodeKind::Restaurant)?;
    Ok(match kind {
        RestaurantImageKind::Logo => Target::Logo(id),
        RestaurantImageKind::Cover => Target::Cover(id),
    })
}

/// Uploading photos.
#[derive(Default)]
pub struct MediaMutation;

impl MediaMutation {
    async fn upload(
        ctx: &Context<'_>,
        target: Target,
        file: &Upload,
        alt: &str,
    ) -> Result<ImagePayload> {
        let content = file.value(ctx)?.content.to_vec();
        let db = ctx.data::<DatabaseConnection>()?;
        let media = ctx.data::<Media>()?;
        let result = photos::upload(
            db,
            media,
            Some(viewer(ctx)?),
            target,
            content,
            alt,
            Utc::now(),
        )
        .await?;
        Ok(match result {
            Ok(row) => {
                crate::graphql::menu::mutation::announce(ctx, row.restaurant_id).await;
                ImagePayload {
                    image: Some(Image(Arc::new(row))),
                    user_errors: Vec::new(),
                }
            }
            Err(error) => ImagePayload {
                image: None,
                user_errors: vec![error.into()],
            },
        })
    }

    async fn remove(ctx: &Context<'_>, target: Target) -> Result<RemoveImagePayload> {
        let db = ctx.data::<DatabaseConnection>()?;
        let media = ctx.data::<Media>()?;
        Ok(
            match photos::remove(db, media, viewer(ctx)?, target, Utc::now()).await? {
                Ok(restaurant_id) => {
                    crate::graphql::menu::mutation::announce(ctx, restaurant_id).await;
                    RemoveImagePayload {
                        removed: true,
                        user_errors: Vec::new(),
                    }
                }
                Err(error) => RemoveImagePayload {
                    removed: false,
                    user_errors: vec![error.into()],
                },
            },
        )
    }
}

#[Object]
impl MediaMutation {
    /// Sets a menu item's photo (replacing the old one), for the restaurant's owner and staff
    /// and admins; tokens need `menu:write`. Sent as a GraphQL multipart request, with an
    /// `Apollo-Require-Preflight` header (any value): without it multipart is refused, so
    /// a browser cannot be made to send one cross-site.
    async fn upload_menu_item_photo(
        &self,
        ctx: &Context<'_>,
        input: UploadMenuItemPhotoInput,
    ) -> Result<ImagePayload> {
        let id = GlobalId::decode_as(&input.menu_item_id, NodeKind::MenuItem)?;
        Self::upload(ctx, Target::Item(id), &input.file, &input.alt).await
    }

    /// Sets a restaurant's logo or cover picture (replacing the old one), for its owner and
    /// admins; tokens need `menu:write`. Multipart, as `uploadMenuItemPhoto`.
    async fn upload_restaurant_image(
        &self,
        ctx: &Context<'_>,
        input: UploadRestaurantImageInput,
    ) -> Result<ImagePayload> {
        let target = restaurant_target(&input.restaurant_id, input.kind)?;
        Self::upload(ctx, target, &input.file, &input.alt).await
    }

    /// Removes a menu item's photo; its files go once nothing shows them.
    async fn remove_menu_item_photo(
        &self,
        ctx: &Context<'_>,
        input: RemoveMenuItemPhotoInput,
    ) -> Result<RemoveImagePayload> {
        let id = GlobalId::decode_as(&input.menu_item_id, NodeKind::MenuItem)?;
        Self::remove(ctx, Target::Item(id)).await
    }

    /// Removes a restaurant's logo or cover picture.
    async fn remove_restaurant_image(
        &self,
        ctx: &Context<'_>,
        input: RemoveRestaurantImageInput,
    ) -> Result<RemoveImagePayload> {
        Self::remove(ctx, restaurant_target(&input.restaurant_id, input.kind)?).await
    }
}
