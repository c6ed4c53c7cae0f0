//! Value transforms declared in the file, applied on the way to a node.
//!
//! - `trim`, `lowercase`, `uppercase`, `squeeze` (runs of white space become one space) and `e164` /
//!   `e164:+<country code>` (phone numbers to E.164) are one-way: the original cannot be recovered, so
//!   the column must have an owner (only the owner's changes flow, and a normalised value never comes
//!   back to overwrite the original);
//! - `null_as = { <node> = "<text>" }` is its own inverse: NULL is stored as that text on the node, and
//!   that text reads back as NULL.
//!
//! Transforms touch text values only; any other value passes unchanged. Time zones are a node setting
//! (`timezone`), applied by the appliers when they store zone-less date-times.

use std::fmt;
use std::str::FromStr;

use crate::model::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    Trim,
    Lowercase,
    Uppercase,
    Squeeze,
    /// Phone numbers to E.164 (`+` and 8 to 15 digits); numbers without a country code are read
    /// by the rules of `default_country` (digits only; its trunk prefix dropped).
    E164 {
        default_country: Option<String>,
    },
}

/// A value a transform cannot produce a result for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{transform} cannot normalise this value: {reason}")]
pub struct TransformError {
    pub transform: String,
    pub reason: &'static str,
}

impl FromStr for Transform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trim" => Ok(Transform::Trim),
            "lowercase" => Ok(Transform::Lowercase),
            "uppercase" => Ok(Transform::Uppercase),
            "squeeze" => Ok(Transform::Squeeze),
            "e164" => Ok(Transform::E164 { default_country: None }),
            _ => match s.strip_prefix("e164:+") {
                Some(cc) if (1..=3).contains(&cc.len()) && cc.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Transform::E164 { default_country: Some(cc.to_string()) })
                }
                _ => Err(format!(
                    "unknown transform {s:?}; use trim, lowercase, uppercase, squeeze, e164 or e164:+<country code>"
                )),
            },
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Trim => f.write_str("trim"),
            Transform::Lowercase => f.write_str("lowercase"),
            Transform::Uppercase => f.write_str("uppercase"),
            Transform::Squeeze => f.write_str("squeeze"),
            Transform::E164 {
                default_country: None,
            } => f.write_str("e164"),
            Transform::E164 {
                default_country: Some(c),
            } => write!(f, "e164:+{c}"),
        }
    }
}

impl Transform {
    pub fn apply(&self, v: Value) -> Result<Value, TransformError> {
        let Value::Text(s) = v else { return Ok(v) };
        Ok(Value::Text(match self {
            Transform::Trim => s.trim().to_string(),
            Transform::Lowercase => s.to_lowercase(),
            Transform::Uppercase => s.to_uppercase(),
            Transform::Squeeze => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Transform::E164 { default_country } => {
                e164(&s, default_country.as_deref()).map_err(|reason| TransformError {
                    transform: self.to_string(),
                    reason,
                })?
            }
        }))
    }
}

/// Phone number to E.164. The digits and the country's rules (its trunk prefix, whether a leading 0
/// belongs to the number) are libphonenumber's, through the `phonenumber` crate. Kept by hand, so
/// that the values taken and refused stay what they were: the allowed characters (digits and the
/// separators ` -.()/`, nothing else: no letters, no extensions), `00` as an international prefix
/// whatever the country (libphonenumber only knows each country's own, e.g. 011 in the US), and the
/// final check of 8 to 15 digits. The number plan itself is not checked: a number the country does
/// not hand out is normalised all the same, as it always was, and one written with its country code
/// that the metadata cannot read keeps its digits.
fn e164(raw: &str, default_country: Option<&str>) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let (international, rest) = if let Some(r) = trimmed.strip_prefix('+') {
        (true, r)
    } else if let Some(r) = trimmed.strip_prefix("00") {
        (true, r)
    } else {
        (false, trimmed)
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
    {
        return Err("it holds characters other than digits and separators");
    }
    let number = if international {
        phonenumber::parse(None, format!("+{rest}"))
    } else {
        let country =
            default_country.ok_or("it has no country code and the transform names none")?;
        match main_region(country) {
            Some(region) => phonenumber::parse(Some(region), rest),
            // A code shared by no country (+800, +882, ...) has no national form to read.
            None => phonenumber::parse(None, format!("+{country}{rest}")),
        }
    };
    let full = match number {
        Ok(n) => n.format().mode(phonenumber::Mode::E164).to_string(),
        // Written with its country code, a number the metadata cannot place (a code not in use, a
        // number shorter than the plan's) keeps its digits, as before.
        Err(_) if international => format!("+{}", rest.replace(|c: char| !c.is_ascii_digit(), "")),
        Err(phonenumber::ParseError::InvalidCountryCode) => {
            return Err("its country code is not one in use")
        }
        Err(_) => return Err(LENGTH),
    };
    let digits = full.strip_prefix('+').unwrap_or(&full);
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(LENGTH);
    }
    Ok(full)
}

const LENGTH: &str = "an E.164 number has 8 to 15 digits and does not start with 0";

/// The country whose rules numbers under a calling code follow: libphonenumber lists it first (the
/// US for +1, Russia for +7, the UK for +44).
fn main_region(calling_code: &str) -> Option<phonenumber::country::Id> {
    let code: u16 = calling_code.parse().ok()?;
    phonenumber::metadata::DATABASE
        .region(&code)?
        .first()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &Transform, s: &str) -> Result<String, TransformError> {
        match t.apply(Value::Text(s.into()))? {
            Value::Text(s) => Ok(s),
            other => panic!("text became {other:?}"),
        }
    }

    #[test]
    fn normalisations() {
        assert_eq!(text(&Transform::Trim, "  a b  ").unwrap(), "a b");
        assert_eq!(
            text(&Transform::Lowercase, "Ada@Example.COM").unwrap(),
            "ada@example.com"
        );
        assert_eq!(text(&Transform::Squeeze, " a \t b\n c ").unwrap(), "a b c");
        assert_eq!(
            Transform::Uppercase.apply(Value::Int(3)).unwrap(),
            Value::Int(3)
        );
    }

    #[test]
    fn phone_numbers() {
        let us: Transform = "e164:+1".parse().unwrap();
        assert_eq!(text(&us, "(415) 555-2671").unwrap(), "+14155552671");
        assert_eq!(text(&us, "+44 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(text(&us, "0044 20 7946 0958").unwrap(), "+442079460958");
        let de: Transform = "e164:+49".parse().unwrap();
        assert_eq!(text(&de, "030 123456").unwrap(), "+4930123456");
        assert!(text(
            &Transform::E164 {
                default_country: None
            },
            "555-2671"
        )
        .is_err());
        assert!(text(&us, "call me").is_err());
        assert!("e164:+12345".parse::<Transform>().is_err());
        assert!("shout".parse::<Transform>().is_err());
    }

    /// Trunk prefixes differ by country, which a rule of "drop a leading 0" gets wrong: Italy keeps
    /// its leading 0 after +39, Russia's trunk prefix is 8, the NANP's is 1, and "(0)" written after a
    /// country code is the trunk prefix, never part of the number.
    #[test]
    fn trunk_prefixes_follow_each_country_s_rules() {
        let e164 = |cc: &str, raw: &str| {
            let t: Transform = format!("e164:+{cc}").parse().unwrap();
            text(&t, raw).unwrap()
        };
        assert_eq!(e164("39", "06 1234 5678"), "+390612345678");
        assert_eq!(e164("7", "8 495 123-45-67"), "+74951234567");
        assert_eq!(e164("1", "1 (415) 555-2671"), "+14155552671");
        assert_eq!(e164("1", "+44 (0)20 7946 0958"), "+442079460958");
        assert_eq!(e164("44", "020 7946 0958"), "+442079460958");
        // Written with a code no country uses, the digits stay as written, as before.
        assert_eq!(e164("1", "+999 1234 5678"), "+99912345678");
    }
}
