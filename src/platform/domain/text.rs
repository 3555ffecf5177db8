use std::fmt;

use super::Invalid;

/// A short line of text from a person (a name, a company, a job title):
/// trimmed, not empty, bounded, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct PlainText(String);

impl PlainText {
    pub fn parse(input: &str, max_chars: usize) -> Result<Self, Invalid> {
        let text = input.trim();
        if text.is_empty() {
            return Err(Invalid::new("required", "this field cannot be empty"));
        }
        if text.chars().count() > max_chars {
            return Err(Invalid::new(
                "too_long",
                format!("at most {max_chars} characters"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid::new(
                "invalid_characters",
                "line breaks and control characters are not allowed",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PlainText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An optional field: absent or blank means none.
pub fn optional_text(input: Option<&str>, max_chars: usize) -> Result<Option<PlainText>, Invalid> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => PlainText::parse(text, max_chars).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(PlainText::parse("  Ada  ", 10).expect("ok").as_str(), "Ada");
        assert_eq!(
            PlainText::parse("   ", 10).expect_err("blank").reason,
            "required"
        );
        assert_eq!(
            PlainText::parse("abcdefghijk", 10)
                .expect_err("long")
                .reason,
            "too_long"
        );
        assert_eq!(
            PlainText::parse("a\nb", 10).expect_err("ctl").reason,
            "invalid_characters"
        );
        assert_eq!(optional_text(Some("  "), 10), Ok(None));
        assert_eq!(optional_text(None, 10), Ok(None));
    }

    proptest! {
        #[test]
        fn parsed_text_is_trimmed_and_clean(input in "\\PC{0,60}") {
            if let Ok(text) = PlainText::parse(&input, 40) {
                prop_assert_eq!(text.as_str().trim(), text.as_str());
                prop_assert!(!text.as_str().is_empty());
                prop_assert!(text.as_str().chars().count() <= 40);
            }
        }
    }
}
