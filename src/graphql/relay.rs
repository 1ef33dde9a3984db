//! Relay conventions: opaque global IDs, cursors, page arguments, `PageInfo`.

use async_graphql::{ID, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{AppError, AppResult};

/// Largest page a connection serves.
pub const MAX_PAGE_SIZE: i32 = 100;

/// The complexity of a connection field: the page it asks for times the cost of its
/// selection, plus one; an out-of-range size counts as the largest page.
pub fn connection_cost(
    first: Option<i32>,
    last: Option<i32>,
    default: usize,
    child: usize,
) -> usize {
    let size = first
        .or(last)
        .map_or(default, |size| size.clamp(1, MAX_PAGE_SIZE) as usize);
    size.saturating_mul(child).saturating_add(1)
}

/// The kinds of object a global ID can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Restaurant,
    MenuCategory,
    MenuItem,
    Review,
    User,
    ApiToken,
    Order,
    Delivery,
    WebhookEndpoint,
    WebhookDelivery,
    Address,
    MenuOptionGroup,
    MenuOption,
}

impl NodeKind {
    const ALL: [Self; 13] = [
        Self::Restaurant,
        Self::MenuCategory,
        Self::MenuItem,
        Self::Review,
        Self::User,
        Self::ApiToken,
        Self::Order,
        Self::Delivery,
        Self::WebhookEndpoint,
        Self::WebhookDelivery,
        Self::Address,
        Self::MenuOptionGroup,
        Self::MenuOption,
    ];

    /// The GraphQL type name, which is also the prefix inside the ID.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Restaurant => "Restaurant",
            Self::MenuCategory => "MenuCategory",
            Self::MenuItem => "MenuItem",
            Self::Review => "Review",
            Self::User => "User",
            Self::ApiToken => "ApiToken",
            Self::Order => "Order",
            Self::Delivery => "Delivery",
            Self::WebhookEndpoint => "WebhookEndpoint",
            Self::WebhookDelivery => "WebhookDelivery",
            Self::Address => "Address",
            Self::MenuOptionGroup => "MenuOptionGroup",
            Self::MenuOption => "MenuOption",
        }
    }
}

/// A decoded global ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalId {
    pub kind: NodeKind,
    pub id: i64,
}

impl GlobalId {
    /// The opaque ID clients see: base64url of `Type:id`.
    pub fn encode(kind: NodeKind, id: i64) -> ID {
        // `Type:id` is put together on the stack, without the formatting machinery: a response
        // makes one ID per row it shows.
        let (name, mut digits) = (kind.type_name().as_bytes(), itoa::Buffer::new());
        let digits = digits.format(id).as_bytes();
        let mut raw = [0_u8; 64];
        let len = name.len() + 1 + digits.len();
        raw[..name.len()].copy_from_slice(name);
        raw[name.len()] = b':';
        raw[name.len() + 1..len].copy_from_slice(digits);
        ID(URL_SAFE_NO_PAD.encode(&raw[..len]))
    }

    /// Decodes any global ID; a malformed one is a user error.
    pub fn decode(id: &ID) -> AppResult<Self> {
        let malformed = || AppError::bad_input(format!("`{}` is not a valid ID", cut(id.as_str())));
        let bytes = URL_SAFE_NO_PAD
            .decode(id.as_str())
            .map_err(|_| malformed())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?;
        let (type_name, raw_id) = text.split_once(':').ok_or_else(malformed)?;
        let kind = NodeKind::ALL
            .into_iter()
            .find(|kind| kind.type_name() == type_name)
            .ok_or_else(malformed)?;
        let id = raw_id
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(malformed)?;
        Ok(Self { kind, id })
    }

    /// Decodes an ID that must name a `kind`; an ID of another type is a user error.
    pub fn decode_as(id: &ID, kind: NodeKind) -> AppResult<i64> {
        let global = Self::decode(id)?;
        if global.kind != kind {
            return Err(AppError::bad_input(format!(
                "`{}` is a {} ID, but a {} ID is expected",
                id.as_str(),
                global.kind.type_name(),
                kind.type_name()
            )));
        }
        Ok(global.id)
    }
}

/// Encodes a cursor (any serializable position) as an opaque string.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    let json = serde_json::to_vec(position).expect("cursor positions serialize");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor made by `encode_cursor`; anything else is a user error.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> AppResult<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| AppError::bad_input(format!("`{}` is not a valid cursor", cut(cursor))))
}

/// At most the first 40 characters of client-supplied `text`, marked when cut: errors name
/// what was wrong without echoing a megabyte back.
pub fn cut(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Which way a page is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `first`/`after`: from the start of the ordering.
    Forward,
    /// `last`/`before`: from the end of the ordering.
    Backward,
}

/// Validated `first/after/last/before` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageArgs {
    pub direction: Direction,
    /// Rows wanted, 0 to `MAX_PAGE_SIZE`.
    pub limit: u64,
    /// The cursor to start after (forward) or before (backward).
    pub cursor: Option<String>,
}

impl PageArgs {
    /// Checks the four Relay arguments; `default_size` applies when neither count is given.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        default_size: i32,
    ) -> AppResult<Self> {
        let check = |name: &str, value: i32| -> AppResult<u64> {
            if !(0..=MAX_PAGE_SIZE).contains(&value) {
                return Err(AppError::bad_input(format!(
                    "`{name}` must be between 0 and {MAX_PAGE_SIZE}, got {value}"
                )));
            }
            Ok(u64::try_from(value).unwrap_or_default())
        };
        match (first, last) {
            (Some(_), Some(_)) => Err(AppError::bad_input(
                "pass either `first` or `last`, not both",
            )),
            (_, Some(last)) => {
                if after.is_some() {
                    return Err(AppError::bad_input("`after` goes with `first`, not `last`"));
                }
                Ok(Self {
                    direction: Direction::Backward,
                    limit: check("last", last)?,
                    cursor: before,
                })
            }
            (first, None) => {
                if before.is_some() {
                    return Err(AppError::bad_input(
                        "`before` goes with `last`, not `first`",
                    ));
                }
                Ok(Self {
                    direction: Direction::Forward,
                    limit: check("first", first.unwrap_or(default_size))?,
                    cursor: after,
                })
            }
        }
    }
}

/// Where a page sits in its connection (Relay `PageInfo`).
#[derive(Debug, Clone, Default, SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Whether more items precede this page.
    pub has_previous_page: bool,
    /// Cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page.
    pub end_cursor: Option<String>,
}

/// A page cut from rows fetched with one extra row to detect more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Default for Page<T> {
    /// No items.
    fn default() -> Self {
        Self {
            items: Vec::new(),
            has_more: false,
        }
    }
}

impl<T> Page<T> {
    /// `rows` were read in page direction with `limit + 1`; puts them back in display order.
    pub fn from_rows(mut rows: Vec<T>, args: &PageArgs) -> Self {
        let has_more = rows.len() as u64 > args.limit;
        rows.truncate(usize::try_from(args.limit).unwrap_or(usize::MAX));
        if args.direction == Direction::Backward {
            rows.reverse();
        }
        Self {
            items: rows,
            has_more,
        }
    }

    /// Relay `PageInfo` given each item's cursor.
    pub fn page_info(&self, args: &PageArgs, cursor: impl Fn(&T) -> String) -> PageInfo {
        let (has_next_page, has_previous_page) = match args.direction {
            Direction::Forward => (self.has_more, args.cursor.is_some()),
            Direction::Backward => (args.cursor.is_some(), self.has_more),
        };
        PageInfo {
            has_next_page,
            has_previous_page,
            start_cursor: self.items.first().map(&cursor),
            end_cursor: self.items.last().map(&cursor),
        }
    }
}

/// A cursor position in a list ordered by one key and then by id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeysetPosition<K> {
    /// The ordering the cursor was made for; a cursor of another ordering is refused.
    #[serde(rename = "o")]
    pub ordering: String,
    #[serde(rename = "k")]
    pub key: K,
    pub id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_are_typed() {
        let id = GlobalId::encode(NodeKind::Restaurant, 42);
        assert_eq!(GlobalId::decode_as(&id, NodeKind::Restaurant).unwrap(), 42);
        assert!(GlobalId::decode_as(&id, NodeKind::User).is_err());
        assert!(GlobalId::decode(&ID("not base64!".into())).is_err());
        assert!(GlobalId::decode(&ID(URL_SAFE_NO_PAD.encode("Restaurant:-1"))).is_err());
        assert!(GlobalId::decode(&ID(URL_SAFE_NO_PAD.encode("Spaceship:1"))).is_err());
        assert_eq!(id.as_str(), URL_SAFE_NO_PAD.encode("Restaurant:42"));
        for kind in NodeKind::ALL {
            let id = GlobalId::encode(kind, i64::MAX);
            assert_eq!(GlobalId::decode_as(&id, kind).unwrap(), i64::MAX);
            // The longest `Type:id` there is; not a valid ID, but it must encode.
            let raw = format!("{}:{}", kind.type_name(), i64::MIN);
            assert_eq!(
                GlobalId::encode(kind, i64::MIN).as_str(),
                URL_SAFE_NO_PAD.encode(raw)
            );
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert!(PageArgs::new(Some(101), None, None, None, 20).is_err());
        assert!(PageArgs::new(Some(-1), None, None, None, 20).is_err());
        assert!(PageArgs::new(Some(1), None, Some(1), None, 20).is_err());
        let args = PageArgs::new(None, None, Some(5), Some("c".into()), 20).unwrap();
        assert_eq!(args.direction, Direction::Backward);
        assert_eq!(args.limit, 5);
    }

    #[test]
    fn backward_pages_come_back_in_display_order() {
        let args = PageArgs::new(None, None, Some(2), None, 20).unwrap();
        let page = Page::from_rows(vec![5, 4, 3], &args);
        assert_eq!(page.items, vec![4, 5]);
        assert!(page.page_info(&args, ToString::to_string).has_previous_page);
    }
}
