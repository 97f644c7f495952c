//! Instants as microseconds since the Unix epoch, shown as RFC 3339.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant in UTC with microsecond precision.
///
/// Stored as an integer so that both databases order and compare it the same way,
/// and so that the audit hash of an entry does not depend on a text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000) as i64)
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `seconds` (saturating; used for expiries).
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }

    pub fn to_rfc3339(self) -> String {
        let datetime = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .expect("an i64 of microseconds is always within time's range");
        datetime
            .format(&Rfc3339)
            .expect("RFC 3339 formatting of a UTC instant cannot fail")
    }

    pub fn parse_rfc3339(text: &str) -> Result<Self, crate::Error> {
        let datetime = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            crate::Error::invalid("timestamp", format!("not an RFC 3339 time: {e}"))
        })?;
        Ok(Self((datetime.unix_timestamp_nanos() / 1_000) as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_microseconds() {
        let instant = Timestamp::from_micros(1_763_880_000_123_456);
        let text = instant.to_rfc3339();
        assert_eq!(text, "2025-11-23T06:40:00.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&text).unwrap(), instant);
    }
}
