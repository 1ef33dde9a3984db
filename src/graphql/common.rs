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
