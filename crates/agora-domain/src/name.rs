//! Validated strings: parse once at the edge, then trust the type ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Refuses control characters and enforces a length range in characters.
fn check_text(field: &str, text: &str, min_chars: usize, max_chars: usize) -> Result<(), Error> {
    let count = text.chars().count();
    if count < min_chars {
        return Err(Error::invalid(
            field,
            format!("must have at least {min_chars} characters"),
        ));
    }
    if count > max_chars {
        return Err(Error::invalid(
            field,
            format!("must have at most {max_chars} characters, has {count}"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
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

/// An organisation's display name: 2 to 100 characters, trimmed, unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgName(String);

impl OrgName {
    pub const CHARS_MAX: usize = 100;

    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        check_text("name", trimmed, 2, Self::CHARS_MAX)?;
        Ok(Self(trimmed.to_owned()))
    }

    /// The key under which names are unique: case and inner runs of spaces do not make a new name.
    pub fn unique_key(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}
string_newtype!(OrgName);

/// A person's display name: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        check_text("display_name", trimmed, 1, 100)?;
        Ok(Self(trimmed.to_owned()))
    }
}
string_newtype!(PersonName);

/// An e-mail address used to sign in, kept in lower case.
///
/// Only the shape is checked (one `@`, a non-empty local part, a domain with no spaces);
/// whether the mailbox exists is not this type's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const CHARS_MAX: usize = 254;

    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        check_text("email", trimmed, 3, Self::CHARS_MAX)?;
        let (local, domain) = trimmed
            .split_once('@')
            .ok_or_else(|| Error::invalid("email", "must contain `@`"))?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(Error::invalid("email", "must be of the form name@domain"));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(Error::invalid("email", "must not contain spaces"));
        }
        Ok(Self(trimmed.to_lowercase()))
    }
}
string_newtype!(Email);

/// A password as typed: 12 to 1,024 bytes. Never printed, never serialized.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const CHARS_MIN: usize = 12;
    pub const BYTES_MAX: usize = 1024;

    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.chars().count() < Self::CHARS_MIN {
            return Err(Error::invalid(
                "password",
                format!("must have at least {} characters", Self::CHARS_MIN),
            ));
        }
        if text.len() > Self::BYTES_MAX {
            return Err(Error::invalid(
                "password",
                format!("must have at most {} bytes", Self::BYTES_MAX),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_are_trimmed_and_unique_regardless_of_case_and_spacing() {
        let name = OrgName::parse("  FreshMart   Groceries ").unwrap();
        assert_eq!(name.as_str(), "FreshMart   Groceries");
        assert_eq!(name.unique_key(), "freshmart groceries");
        assert!(OrgName::parse("x").is_err());
        assert!(OrgName::parse(&"a".repeat(101)).is_err());
        assert!(OrgName::parse("bad\u{0}name").is_err());
    }

    #[test]
    fn emails_are_lower_case_and_shaped() {
        assert_eq!(
            Email::parse("Ana@FreshMart.example").unwrap().as_str(),
            "ana@freshmart.example"
        );
        for bad in ["", "no-at", "@x", "x@", "a@b@c", "a b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_never_print() {
        let password = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        assert!(Password::parse("short").is_err());
    }
}
