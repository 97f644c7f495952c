//! Marketplace listings: what a partner offers (a product with stock, or a service with bookable
//! slots), the rules a listing's fields obey, and the search query language.
//!
//! Listing is free for every partner; a listing's price is integer minor units of its currency,
//! like every amount in the ledger.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ledger::Currency;
use crate::{Error, ListingId, OrderId, OrgId, SlotId, Timestamp};

pub const TITLE_CHARS_MAX: usize = 200;
pub const DESCRIPTION_CHARS_MAX: usize = 5000;
pub const CATEGORY_CHARS_MAX: usize = 100;
pub const CATEGORY_DEPTH_MAX: usize = 4;
/// The highest price in major units (a billion): totals of many lines stay far from `i64::MAX`.
pub const PRICE_MAJOR_UNITS_MAX: i64 = 1_000_000_000;
/// A service lasts at most a week.
pub const DURATION_MINUTES_MAX: u32 = 7 * 24 * 60;
/// A bookable slot lasts at most 31 days.
pub const SLOT_SECONDS_MAX: i64 = 31 * 24 * 3600;
/// A search uses at most this many words and phrases; the rest are ignored.
pub const SEARCH_TERMS_MAX: usize = 16;
/// A search word or phrase word longer than this is cut.
pub const SEARCH_WORD_CHARS_MAX: usize = 64;

/// A product with stock, or a service booked by slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ListingKind {
    Product {
        /// Units left; none for unlimited.
        stock: Option<u32>,
    },
    Service {
        /// How long one booking lasts.
        duration_minutes: u32,
    },
}

impl ListingKind {
    pub fn name(&self) -> KindName {
        match self {
            ListingKind::Product { .. } => KindName::Product,
            ListingKind::Service { .. } => KindName::Service,
        }
    }

    /// Checks the kind's own numbers.
    pub fn validate(&self) -> Result<(), Error> {
        if let ListingKind::Service { duration_minutes } = self
            && !(1..=DURATION_MINUTES_MAX).contains(duration_minutes)
        {
            return Err(Error::invalid(
                "duration_minutes",
                format!("must be 1 to {DURATION_MINUTES_MAX} minutes, is {duration_minutes}"),
            ));
        }
        Ok(())
    }
}

/// The kind of a listing without its numbers, for filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KindName {
    Product,
    Service,
}

/// Whether a listing is on offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ListingStatus {
    /// On offer: found by browsing and search, and can be ordered.
    Active,
    /// Withdrawn by its seller: still readable by id (orders refer to it), never offered again.
    Archived,
}

macro_rules! text_enum {
    ($name:ident, $field:literal { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok($name::$variant),)*
                    other => Err(Error::invalid($field, format!(
                        "unknown value `{}`; expected one of: {}",
                        other.chars().take(32).collect::<String>(),
                        [$($text),*].join(", ")
                    ))),
                }
            }
        }
    };
}
text_enum!(KindName, "kind" { Product => "product", Service => "service" });
text_enum!(ListingStatus, "status" { Active => "active", Archived => "archived" });

/// A listing's title: 1 to 200 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Title(String);

impl Title {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        let count = trimmed.chars().count();
        if count == 0 {
            return Err(Error::invalid("title", "must not be empty"));
        }
        if count > TITLE_CHARS_MAX {
            return Err(Error::invalid(
                "title",
                format!("must have at most {TITLE_CHARS_MAX} characters, has {count}"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Error::invalid(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

/// A listing's description: at most 5000 characters; line breaks and tabs allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Description(String);

impl Description {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        let count = trimmed.chars().count();
        if count > DESCRIPTION_CHARS_MAX {
            return Err(Error::invalid(
                "description",
                format!("must have at most {DESCRIPTION_CHARS_MAX} characters, has {count}"),
            ));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Error::invalid(
                "description",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

/// A category path such as `groceries/dairy`: 1 to 4 segments of lower-case ASCII letters and
/// digits, joined inside a segment by single hyphens, separated by `/`.
///
/// Invariant: a category holds no `%`, `_` or `\`, so it can be used in a `LIKE` prefix pattern as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category(String);

impl Category {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let refuse = |why: &str| {
            Error::invalid(
                "category",
                format!(
                    "{why}; a category is 1 to {CATEGORY_DEPTH_MAX} segments of lower-case letters, digits and single hyphens, separated by `/`, such as groceries/dairy"
                ),
            )
        };
        if text.is_empty() {
            return Err(refuse("must not be empty"));
        }
        if text.len() > CATEGORY_CHARS_MAX {
            return Err(refuse(&format!(
                "must have at most {CATEGORY_CHARS_MAX} characters"
            )));
        }
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() > CATEGORY_DEPTH_MAX {
            return Err(refuse(&format!(
                "has {} segments, at most {CATEGORY_DEPTH_MAX} are allowed",
                segments.len()
            )));
        }
        for segment in segments {
            let well_formed = !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !segment.starts_with('-')
                && !segment.ends_with('-')
                && !segment.contains("--");
            if !well_formed {
                return Err(refuse(&format!(
                    "`{}` is not a well-formed segment",
                    segment.chars().take(32).collect::<String>()
                )));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The segments from the top (`groceries`, `dairy`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether `self` is `prefix` or lies below it (`groceries/dairy` is within `groceries`).
    pub fn is_within(&self, prefix: &Category) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes()[prefix.0.len()] == b'/')
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_newtype!(Title);
string_newtype!(Description);
string_newtype!(Category);

/// Checks a price: whole minor units of `currency`, not negative, at most a billion major units.
///
/// Points (`PTS`) are a reward spent at checkout, not a currency to price in.
pub fn check_price(price: i64, currency: Currency) -> Result<(), Error> {
    if currency.code() == "PTS" {
        return Err(Error::invalid(
            "currency",
            "listings are priced in money; points (PTS) are spent at checkout",
        ));
    }
    if price < 0 {
        return Err(Error::invalid(
            "price",
            "must not be negative (it is in minor units, such as cents)",
        ));
    }
    let max = PRICE_MAJOR_UNITS_MAX * 10i64.pow(u32::from(currency.exponent()));
    if price > max {
        return Err(Error::invalid(
            "price",
            format!(
                "must be at most {} ({max} minor units)",
                currency.format(max)
            ),
        ));
    }
    Ok(())
}

/// Parses an amount in major units (`12.5`, `12.50`, `1200`) into minor units of `currency`.
pub fn parse_price(text: &str, currency: Currency) -> Result<i64, Error> {
    let exponent = usize::from(currency.exponent());
    let refuse = || {
        Error::invalid(
            "price",
            format!(
                "`{}` is not an amount of {currency} with at most {exponent} decimals, such as {}",
                text.chars().take(32).collect::<String>(),
                if exponent == 0 { "1200" } else { "12.50" }
            ),
        )
    };
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 13
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > exponent
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(refuse());
    }
    let whole: i64 = whole.parse().map_err(|_| refuse())?;
    let fraction_value: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().map_err(|_| refuse())?
            * 10i64.pow((exponent - fraction.len()) as u32)
    };
    let price = whole
        .checked_mul(10i64.pow(exponent as u32))
        .and_then(|minor| minor.checked_add(fraction_value))
        .ok_or_else(refuse)?;
    check_price(price, currency)?;
    Ok(price)
}

/// A price for people: `€12.50` for the currencies with a well-known symbol, else `12.50 CHF`.
pub fn display_price(price: i64, currency: Currency) -> String {
    let formatted = currency.format(price);
    let symbol = match currency.code() {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        "JPY" => "¥",
        "INR" => "₹",
        _ => return formatted,
    };
    let number = formatted
        .strip_suffix(currency.code())
        .map_or(formatted.as_str(), str::trim_end);
    match number.strip_prefix('-') {
        Some(absolute) => format!("-{symbol}{absolute}"),
        None => format!("{symbol}{number}"),
    }
}

/// A product or service a partner offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Listing {
    pub id: ListingId,
    /// The organisation that sells it.
    pub seller: OrgId,
    pub kind: ListingKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Organic whole milk, 1 l"))]
    pub title: Title,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub description: Description,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "groceries/dairy"))]
    pub category: Category,
    /// Minor units of `currency` (cents for EUR).
    pub price: i64,
    pub currency: Currency,
    pub status: ListingStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Listing {
    /// The price for people, such as `€12.50`.
    pub fn display_price(&self) -> String {
        display_price(self.price, self.currency)
    }
}

/// A bookable time of a service listing; booked at most once, by one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Slot {
    pub id: SlotId,
    pub listing_id: ListingId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// The order that booked it; none while free.
    pub booked_by_order: Option<OrderId>,
}

/// Checks a slot's times: it ends after it starts, and lasts at most 31 days.
pub fn check_slot_times(starts_at: Timestamp, ends_at: Timestamp) -> Result<(), Error> {
    if ends_at <= starts_at {
        return Err(Error::invalid("ends_at", "must be after starts_at"));
    }
    if ends_at.as_micros() - starts_at.as_micros() > SLOT_SECONDS_MAX * 1_000_000 {
        return Err(Error::invalid("ends_at", "a slot lasts at most 31 days"));
    }
    Ok(())
}

/// One thing a search looks for: a word, or words that must follow each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTerm {
    Word(String),
    Phrase(Vec<String>),
}

impl SearchTerm {
    fn words(&self) -> &[String] {
        match self {
            SearchTerm::Word(word) => std::slice::from_ref(word),
            SearchTerm::Phrase(words) => words,
        }
    }
}

/// A parsed search: every group must match (a group matches when any of its terms does), and no
/// excluded term may.
///
/// The language is the web-search one: words, `"quoted phrases"`, `OR` between terms, and `-word`
/// to exclude. Only letters and digits survive parsing, so whatever the input, the query handed
/// to a search engine is well-formed and holds no operator the user did not mean.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    pub groups: Vec<Vec<SearchTerm>>,
    pub excluded: Vec<SearchTerm>,
}

impl SearchQuery {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut query = SearchQuery::default();
        let mut chars = text.chars().peekable();
        let mut join_with_previous = false;
        let mut terms = 0;
        while let Some(&c) = chars.peek() {
            if terms >= SEARCH_TERMS_MAX {
                break;
            }
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let excluded = c == '-';
            if excluded {
                chars.next();
            }
            let term = if chars.peek() == Some(&'"') {
                chars.next();
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    inner.push(c);
                }
                let words = words_of(&inner);
                match words.len() {
                    0 => None,
                    1 => Some(SearchTerm::Word(
                        words.into_iter().next().expect("one word"),
                    )),
                    _ => Some(SearchTerm::Phrase(words)),
                }
            } else {
                let mut raw = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '"' {
                        break;
                    }
                    raw.push(c);
                    chars.next();
                }
                if raw == "OR" && !excluded {
                    join_with_previous = !query.groups.is_empty();
                    continue;
                }
                // Punctuation inside a word splits it, as the indexes do (`e-bike` is `e bike`).
                let words = words_of(&raw);
                match words.len() {
                    0 => None,
                    1 => Some(SearchTerm::Word(
                        words.into_iter().next().expect("one word"),
                    )),
                    _ => Some(SearchTerm::Phrase(words)),
                }
            };
            let Some(term) = term else { continue };
            terms += 1;
            if excluded {
                query.excluded.push(term);
            } else if join_with_previous {
                query
                    .groups
                    .last_mut()
                    .expect("OR joins only after a group")
                    .push(term);
            } else {
                query.groups.push(vec![term]);
            }
            join_with_previous = false;
        }
        if query.groups.is_empty() {
            return Err(Error::invalid(
                "q",
                "must contain at least one word of letters or digits to look for (a search cannot only exclude)",
            ));
        }
        Ok(query)
    }

    /// The query in SQLite FTS5 syntax: every word a quoted string, so no input is an operator.
    pub fn to_fts5(&self) -> String {
        let term = |term: &SearchTerm| {
            let quoted: Vec<String> = term.words().iter().map(|w| format!("\"{w}\"")).collect();
            match term {
                SearchTerm::Word(_) => quoted.join(" "),
                // FTS5's phrase: quoted strings joined by `+` must follow each other.
                SearchTerm::Phrase(_) => quoted.join(" + "),
            }
        };
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|group| {
                let alternatives: Vec<String> = group.iter().map(term).collect();
                format!("({})", alternatives.join(" OR "))
            })
            .collect();
        let mut text = groups.join(" AND ");
        for excluded in &self.excluded {
            text.push_str(&format!(" NOT ({})", term(excluded)));
        }
        text
    }

    /// The query in PostgreSQL's `websearch_to_tsquery` syntax, rebuilt from the parsed terms.
    pub fn to_websearch(&self) -> String {
        let term = |term: &SearchTerm| match term {
            SearchTerm::Word(word) => word.clone(),
            SearchTerm::Phrase(words) => format!("\"{}\"", words.join(" ")),
        };
        let mut parts: Vec<String> = self
            .groups
            .iter()
            .map(|group| group.iter().map(term).collect::<Vec<_>>().join(" or "))
            .collect();
        parts.extend(self.excluded.iter().map(|t| format!("-{}", term(t))));
        parts.join(" ")
    }
}

/// The words of a text: runs of letters and digits, lower-cased, each cut to its limit.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.chars()
                .take(SEARCH_WORD_CHARS_MAX)
                .collect::<String>()
                .to_lowercase()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn euro() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn fields_are_checked_and_errors_name_them() {
        let field = |result: Result<(), Error>| match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(field(Title::parse("  ").map(drop)), "title");
        assert_eq!(field(Title::parse(&"x".repeat(201)).map(drop)), "title");
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            field(Description::parse(&"x".repeat(5001)).map(drop)),
            "description"
        );
        assert!(Description::parse("two\nlines\tand tab").is_ok());
        assert_eq!(field(check_price(-1, euro())), "price");
        assert_eq!(
            field(check_price(100_000_000_001, euro())),
            "price",
            "a billion euros and a cent"
        );
        assert!(check_price(100_000_000_000, euro()).is_ok());
        assert_eq!(
            field(check_price(1, Currency::parse("PTS").unwrap())),
            "currency"
        );
        assert_eq!(
            field(
                ListingKind::Service {
                    duration_minutes: 0
                }
                .validate()
            ),
            "duration_minutes"
        );
    }

    #[test]
    fn categories_are_slug_paths() {
        for good in [
            "groceries",
            "groceries/dairy",
            "health/dental-care/kids",
            "a1/b2",
        ] {
            assert!(Category::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Groceries",
            "groceries/",
            "/groceries",
            "a//b",
            "a_b",
            "a%",
            "-a",
            "a-",
            "a--b",
            "a/b/c/d/e",
            "grocerïes",
            "a b",
        ] {
            assert!(Category::parse(bad).is_err(), "{bad}");
        }
        let dairy = Category::parse("groceries/dairy").unwrap();
        assert!(dairy.is_within(&Category::parse("groceries").unwrap()));
        assert!(!dairy.is_within(&Category::parse("grocer").unwrap()));
    }

    #[test]
    fn prices_parse_in_major_units_and_display_with_symbols() {
        assert_eq!(parse_price("12.5", euro()).unwrap(), 1250);
        assert_eq!(parse_price("12.50", euro()).unwrap(), 1250);
        assert_eq!(parse_price("0", euro()).unwrap(), 0);
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(parse_price("1200", yen).unwrap(), 1200);
        for bad in [
            "12.505",
            "-1",
            "1,50",
            "",
            ".5",
            "12.",
            "1e3",
            "99999999999999",
        ] {
            assert!(parse_price(bad, euro()).is_err(), "{bad}");
        }
        assert!(parse_price("1.5", yen).is_err());
        assert_eq!(display_price(1250, euro()), "€12.50");
        assert_eq!(display_price(1200, yen), "¥1200");
        assert_eq!(
            display_price(1250, Currency::parse("CHF").unwrap()),
            "12.50 CHF"
        );
    }

    #[test]
    fn listing_kinds_serialize_with_a_type_tag() {
        let product = ListingKind::Product { stock: None };
        assert_eq!(
            serde_json::to_value(product).unwrap(),
            serde_json::json!({ "type": "product", "stock": null })
        );
        let service: ListingKind = serde_json::from_value(
            serde_json::json!({ "type": "service", "duration_minutes": 45 }),
        )
        .unwrap();
        assert_eq!(
            service,
            ListingKind::Service {
                duration_minutes: 45
            }
        );
    }

    fn check(input: &str, fts5: &str, websearch: &str) {
        let query = SearchQuery::parse(input).unwrap();
        assert_eq!(query.to_fts5(), fts5, "fts5 of {input:?}");
        assert_eq!(query.to_websearch(), websearch, "websearch of {input:?}");
    }

    #[test]
    fn search_queries_keep_only_words_and_the_operators_meant() {
        check("Milk", "(\"milk\")", "milk");
        check("whole milk", "(\"whole\") AND (\"milk\")", "whole milk");
        check(
            "\"whole milk\" -goat",
            "(\"whole\" + \"milk\") NOT (\"goat\")",
            "\"whole milk\" -goat",
        );
        check(
            "milk OR cream butter",
            "(\"milk\" OR \"cream\") AND (\"butter\")",
            "milk or cream butter",
        );
        // Hostile input: FTS5 operators, column filters, quotes and SQL are words or nothing.
        check("NEAR(milk", "(\"near\" + \"milk\")", "\"near milk\"");
        check("milk*", "(\"milk\")", "milk");
        check("\"unclosed", "(\"unclosed\")", "unclosed");
        check("title:milk", "(\"title\" + \"milk\")", "\"title milk\"");
        check(
            "'; DROP TABLE listings; --",
            "(\"drop\") AND (\"table\") AND (\"listings\")",
            "drop table listings",
        );
        check("OR milk", "(\"milk\")", "milk");
        check("milk OR", "(\"milk\")", "milk");
        check(
            "AND NOT milk",
            "(\"and\") AND (\"not\") AND (\"milk\")",
            "and not milk",
        );
        for nothing in ["", "   ", "\"\"", "*", "-milk", "- OR \" ( ) ^ :"] {
            assert!(SearchQuery::parse(nothing).is_err(), "{nothing:?}");
        }
        let many = "w ".repeat(100);
        assert_eq!(
            SearchQuery::parse(&many).unwrap().groups.len(),
            SEARCH_TERMS_MAX
        );
    }
}
