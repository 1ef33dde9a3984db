//! Small value types shared by several domains.

use async_graphql::{Enum, InputObject, SimpleObject};

use crate::{error::AppResult, services::restaurants::Point};

/// An amount of money.
#[derive(Debug, Clone, SimpleObject)]
pub struct Money {
    /// The amount as a decimal string in major units, e.g. `"12.50"`; exact, never a float.
    pub amount: String,
    /// ISO 4217 currency code, e.g. `"EUR"`.
    pub currency: String,
}

impl Money {
    /// Minor units of `currency` in a decimal amount in major units (`"12.5"`, `"12.50"` or
    /// `"12"` for 1250 cents); none for anything else (signs, exponents, more decimals than
    /// the currency has, more than 12 digits).
    pub fn parse_minor(amount: &str, currency: &str) -> Option<i64> {
        let digits = minor_unit_digits(currency) as usize;
        let (major, fraction) = amount.split_once('.').unwrap_or((amount, ""));
        let decimal = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if major.is_empty()
            || major.len() > 12
            || !decimal(major)
            || !decimal(fraction)
            || fraction.len() > digits
            || (amount.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let scale = 10_i64.pow(digits as u32);
        let fraction_value: i64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<i64>().ok()? * 10_i64.pow((digits - fraction.len()) as u32)
        };
        major
            .parse::<i64>()
            .ok()?
            .checked_mul(scale)?
            .checked_add(fraction_value)
    }

    /// Money from an amount in minor units of `currency`.
    pub fn from_minor(minor: i64, currency: &str) -> Self {
        // Written digit by digit rather than with `format!`: a menu shows one price per item.
        let digits = minor_unit_digits(currency);
        let divisor = 10_u64.pow(digits);
        let (major, fraction) = (
            minor.unsigned_abs() / divisor,
            minor.unsigned_abs() % divisor,
        );
        let mut amount = String::with_capacity(24);
        if minor < 0 {
            amount.push('-');
        }
        amount.push_str(itoa::Buffer::new().format(major));
        if digits > 0 {
            let mut buffer = itoa::Buffer::new();
            let fraction = buffer.format(fraction);
            amount.push('.');
            amount.extend(std::iter::repeat_n('0', digits as usize - fraction.len()));
            amount.push_str(fraction);
        }
        Self {
            amount,
            currency: currency.to_owned(),
        }
    }
}

/// Digits after the decimal point in `currency` (ISO 4217 minor units).
fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// A point on earth.
#[derive(Debug, Clone, SimpleObject)]
pub struct GeoPoint {
    /// Degrees north, -90 to 90.
    pub latitude: f64,
    /// Degrees east, -180 to 180.
    pub longitude: f64,
}

/// A point on earth, as input.
#[derive(Debug, Clone, Copy, InputObject)]
pub struct GeoPointInput {
    /// Degrees north, -90 to 90.
    pub latitude: f64,
    /// Degrees east, -180 to 180.
    pub longitude: f64,
}

impl GeoPointInput {
    /// The validated point.
    pub fn to_point(self) -> AppResult<Point> {
        Point::new(self.latitude, self.longitude)
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

#[cfg(test)]
mod tests {
    use super::Money;

    #[test]
    fn money_is_formatted_in_major_units_exactly() {
        assert_eq!(Money::from_minor(1250, "EUR").amount, "12.50");
        assert_eq!(Money::from_minor(5, "EUR").amount, "0.05");
        assert_eq!(Money::from_minor(-199, "USD").amount, "-1.99");
        assert_eq!(Money::from_minor(1200, "JPY").amount, "1200");
        assert_eq!(Money::from_minor(1500, "KWD").amount, "1.500");
        assert_eq!(Money::from_minor(0, "EUR").amount, "0.00");
        assert_eq!(Money::from_minor(-5, "EUR").amount, "-0.05");
        assert_eq!(Money::from_minor(-7, "JPY").amount, "-7");
        assert_eq!(
            Money::from_minor(i64::MIN, "USD").amount,
            "-92233720368547758.08"
        );
    }
}

/// A point in time, as the API shows it: RFC 3339 in UTC with millisecond precision
/// (`2026-12-01T19:30:00.000Z`), the form every client's date parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

/// A point in time: an RFC 3339 string in UTC with millisecond precision, e.g.
/// `"2026-12-01T19:30:00.000Z"`. As input, any RFC 3339 date-time with an offset is accepted
/// (`"2026-12-01T20:30:00+01:00"`) and read as that instant.
#[async_graphql::Scalar(
    name = "DateTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339"
)]
impl async_graphql::ScalarType for Timestamp {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| Self(at.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    async_graphql::InputValueError::custom(
                        "expected an RFC 3339 date-time such as \"2026-12-01T19:30:00Z\"",
                    )
                }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(at)
    }
}

/// Kilometres rounded to whole metres: a distance is never more exact than that, and fifteen
/// decimals of a float only make clients format it.
pub fn round_to_metres(km: f64) -> f64 {
    (km * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod money_tests {
    use super::Money;

    #[test]
    fn decimal_amounts_parse_to_minor_units() {
        assert_eq!(Money::parse_minor("12.50", "EUR"), Some(1250));
        assert_eq!(Money::parse_minor("12.5", "EUR"), Some(1250));
        assert_eq!(Money::parse_minor("12", "EUR"), Some(1200));
        assert_eq!(Money::parse_minor("0.05", "EUR"), Some(5));
        assert_eq!(Money::parse_minor("1500", "JPY"), Some(1500));
        assert_eq!(Money::parse_minor("1.5", "JPY"), None);
        assert_eq!(Money::parse_minor("1.234", "KWD"), Some(1234));
        for bad in [
            "",
            ".5",
            "12.",
            "1.234",
            "-1",
            "+1",
            "1e3",
            "1,50",
            " 1",
            "9999999999999",
        ] {
            assert_eq!(Money::parse_minor(bad, "EUR"), None, "{bad:?}");
        }
        assert_eq!(
            Money::from_minor(Money::parse_minor("7.90", "EUR").unwrap(), "EUR").amount,
            "7.90"
        );
    }
}
