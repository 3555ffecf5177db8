use secrecy::{ExposeSecret, SecretString};

use super::Invalid;

/// A new password as the reader chose it. Length is the rule that matters
/// (NIST SP 800-63B): at least 8 characters, and at most 256 so that hashing
/// cost stays bounded.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: SecretString) -> Result<Self, Invalid> {
        let chars = input.expose_secret().chars().count();
        if chars < Self::MIN_CHARS {
            return Err(Invalid::new(
                "too_short",
                format!("a password has at least {} characters", Self::MIN_CHARS),
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(Invalid::new(
                "too_long",
                format!("a password has at most {} characters", Self::MAX_CHARS),
            ));
        }
        if input.expose_secret().trim().is_empty() {
            return Err(Invalid::new("blank", "a password cannot be only spaces"));
        }
        Ok(Self(input))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Password, Invalid> {
        Password::parse(SecretString::from(s.to_owned()))
    }

    #[test]
    fn length_rules() {
        assert_eq!(parse("short").expect_err("short").reason, "too_short");
        assert_eq!(
            parse(&"x".repeat(257)).expect_err("long").reason,
            "too_long"
        );
        assert_eq!(parse("          ").expect_err("blank").reason, "blank");
        assert!(parse("correct horse battery staple").is_ok());
    }

    proptest! {
        #[test]
        fn accepted_iff_length_in_range(input in "\\PC{0,300}") {
            let n = input.chars().count();
            let expected = (Password::MIN_CHARS..=Password::MAX_CHARS).contains(&n) && !input.trim().is_empty();
            prop_assert_eq!(parse(&input).is_ok(), expected);
        }
    }
}
