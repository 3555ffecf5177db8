use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// An address that can receive mail: one `@`, a local part of at most 64
/// characters, a domain with at least one dot and valid labels, 254
/// characters at most, no spaces, quotes or control characters (which also
/// shuts out header injection). Stored lower-cased, so that one mailbox is one
/// account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct EmailAddress(String);

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

/// The part before the @: RFC 5321's length, and the characters of a
/// dot-atom (RFC 5322) without quoting.
fn check_local(local: &str) -> Result<(), Invalid> {
    if local.chars().count() > 64 {
        return Err(Invalid::new(
            "too_long",
            "the part before the @ has at most 64 characters",
        ));
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        && !local.chars().any(char::is_control)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(Invalid::new(
            "invalid_format",
            "the part before the @ contains characters an address cannot have",
        ));
    }
    Ok(())
}

/// The part after the @, lowercased: two labels or more, each a valid host
/// label, under a top-level domain that is not a number.
fn check_domain(domain: &str) -> Result<(), Invalid> {
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
                })
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| !c.is_ascii_digit()));
    if !domain_ok {
        return Err(Invalid::new(
            "invalid_domain",
            "the part after the @ is not a domain that can receive mail",
        ));
    }
    Ok(())
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let address = input.trim();
        if address.is_empty() {
            return Err(Invalid::new("required", "an email address is required"));
        }
        if address.chars().count() > 254 {
            return Err(Invalid::new(
                "too_long",
                "an email address has at most 254 characters",
            ));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(Invalid::new(
                "invalid_format",
                "an email address needs an @ between name and domain",
            ));
        };
        if local.is_empty() || domain.contains('@') {
            return Err(Invalid::new(
                "invalid_format",
                "an email address has one @ with a name before it",
            ));
        }
        check_local(local)?;
        let domain = domain.to_lowercase();
        check_domain(&domain)?;
        Ok(Self(format!("{}@{}", local.to_lowercase(), domain)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EmailAddress {
    type Err = InvalidStoredEmail;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map_err(|invalid| InvalidStoredEmail(invalid.message))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored email address is invalid: {0}")]
pub struct InvalidStoredEmail(String);

crate::text_column!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises_ordinary_addresses() {
        let email = EmailAddress::parse("  Jane.Doe+news@Example.CO.uk ").expect("valid");
        assert_eq!(email.as_str(), "jane.doe+news@example.co.uk");
        assert_eq!(email.domain(), "example.co.uk");
    }

    #[test]
    fn refuses_what_cannot_receive_mail() {
        for (input, reason) in [
            ("", "required"),
            ("no-at-sign.example.com", "invalid_format"),
            ("@example.com", "invalid_format"),
            ("a@b@example.com", "invalid_format"),
            ("jane@localhost", "invalid_domain"),
            ("jane@example.", "invalid_domain"),
            ("jane@-example.com", "invalid_domain"),
            ("jane@127.0.0.1", "invalid_domain"),
            ("ja ne@example.com", "invalid_format"),
            ("jane@example.com\r\nBcc: x@evil.com", "invalid_format"),
            ("jane@example.com\r\nBcc: evil.com", "invalid_domain"),
            ("jane\r\n@example.com", "invalid_format"),
            (".jane@example.com", "invalid_format"),
        ] {
            let err = EmailAddress::parse(input).expect_err(input);
            assert_eq!(err.reason, reason, "{input:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(300));
        assert_eq!(
            EmailAddress::parse(&long_local).expect_err("long").reason,
            "too_long"
        );
    }

    proptest! {
        #[test]
        fn parsed_addresses_never_hold_control_characters_or_spaces(input in "\\PC{0,80}") {
            if let Ok(email) = EmailAddress::parse(&input) {
                prop_assert!(!email.as_str().chars().any(|c| c.is_control() || c.is_whitespace()));
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
            }
        }

        #[test]
        fn parsing_is_idempotent(local in "[a-z0-9._+-]{1,30}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}") {
            if let Ok(email) = EmailAddress::parse(&format!("{local}@{domain}")) {
                let again = EmailAddress::parse(email.as_str()).expect("a parsed address parses again");
                prop_assert_eq!(again, email);
            }
        }
    }
}
