use std::fmt;

use super::Invalid;

/// A URL segment: lower-case ASCII letters, digits and single hyphens,
/// 1 to 120 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct Slug(String);

const MAX_CHARS: usize = 120;
/// Derived slugs stay short enough to read in a link.
const DERIVED_MAX_CHARS: usize = 80;

impl Slug {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let valid = !input.is_empty()
            && input.len() <= MAX_CHARS
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !input.starts_with('-')
            && !input.ends_with('-')
            && !input.contains("--");
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(Invalid::new(
                "invalid_format",
                "lower-case letters, digits and single hyphens, at most 120 characters",
            ))
        }
    }

    /// The slug a title suggests: accents folded, everything else that is
    /// not a letter or digit turned into single hyphens.
    pub fn from_title(title: &str) -> Self {
        let mut slug = String::with_capacity(title.len());
        for c in title.chars().flat_map(fold) {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut slug: String = slug.chars().take(DERIVED_MAX_CHARS).collect();
        while slug.ends_with('-') {
            slug.pop();
        }
        if slug.is_empty() {
            slug.push_str("article");
        }
        Self(slug)
    }

    /// `slug-2`, `slug-3` … for when the plain one is taken.
    pub fn numbered(&self, n: u32) -> Self {
        Self(format!("{}-{n}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn fold(c: char) -> impl Iterator<Item = char> {
    let folded: &str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'ç' | 'Ç' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "i",
        'ñ' | 'Ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        '&' => " and ",
        _ => "",
    };
    let single = folded.is_empty().then_some(c);
    folded.chars().chain(single)
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Slug {
    type Err = InvalidStoredSlug;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map_err(|_| InvalidStoredSlug(s.chars().take(40).collect()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored slug `{0}` is invalid")]
pub struct InvalidStoredSlug(String);

crate::text_column!(Slug);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn derives_readable_slugs() {
        assert_eq!(
            Slug::from_title("Court Rejects Café's Trade-Mark Appeal!").as_str(),
            "court-rejects-cafe-s-trade-mark-appeal"
        );
        assert_eq!(
            Slug::from_title("  R&D: 50% more  ").as_str(),
            "r-and-d-50-more"
        );
        assert_eq!(Slug::from_title("!!!").as_str(), "article");
        assert_eq!(Slug::from_title("x").numbered(2).as_str(), "x-2");
        assert!(Slug::parse("Bad Slug").is_err());
        assert!(Slug::parse("double--hyphen").is_err());
    }

    proptest! {
        #[test]
        fn every_derived_slug_parses(title in "\\PC{0,200}") {
            let slug = Slug::from_title(&title);
            prop_assert!(Slug::parse(slug.as_str()).is_ok(), "{:?}", slug);
        }
    }
}
