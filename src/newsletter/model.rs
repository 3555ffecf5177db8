use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::accounts::AccountId;
use crate::platform::db::schema::{newsletter_imports, newsletter_subscribers, newsletter_tokens};
use crate::platform::domain::{EmailAddress, Invalid, TokenHash};
pub use crate::platform::mail::suppression::{
    EmailHash, Suppression, SuppressionKey, SuppressionReason,
};

crate::id_type!(SubscriberId);

crate::text_enum! {
    pub enum SubscriberStatus {
        Pending => "pending",
        Confirmed => "confirmed",
        Unsubscribed => "unsubscribed",
    }
}

crate::text_enum! {
    /// Where a sign-up came from: the site's own form, or another client of the API.
    pub enum Source {
        Web => "web",
        Api => "api",
    }
}

crate::text_enum! {
    pub enum TokenPurpose {
        Confirm => "confirm",
        Manage => "manage",
    }
}

/// The sections a subscriber receives: slugs of the site's sections (the
/// `sections` table) in its order, stored as a JSON array. It is empty only
/// for a sign-up made while the site had no section: the newsletter as a
/// whole, which every section added later joins (see
/// `newsletter::tx::section_added`).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
    utoipa::ToSchema,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct Sections(Vec<String>);

impl Sections {
    pub fn all(available: &[String]) -> Self {
        Self(available.to_vec())
    }

    /// The sections asked for, in the order of `available`, each once;
    /// `None` means all of them, and so does an empty choice when there is
    /// nothing to choose from.
    pub fn parse(input: Option<&[String]>, available: &[String]) -> Result<Self, Invalid> {
        let input = match input {
            None => return Ok(Self::all(available)),
            Some([]) if available.is_empty() => return Ok(Self::all(available)),
            Some(input) => input,
        };
        if let Some(unknown) = input
            .iter()
            .find(|s| !available.iter().any(|a| a == s.trim()))
        {
            let choices = if available.is_empty() {
                "the site has no sections yet".to_owned()
            } else {
                format!("choose from {}", available.join(", "))
            };
            return Err(Invalid::new(
                "unknown_section",
                format!(
                    "`{}` is not a section; {choices}",
                    unknown.chars().take(40).collect::<String>(),
                ),
            ));
        }
        let chosen: Vec<String> = available
            .iter()
            .filter(|a| input.iter().any(|s| s.trim() == a.as_str()))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(Invalid::new(
                "required",
                "choose at least one section (or unsubscribe)",
            ));
        }
        Ok(Self(chosen))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The sections that `keep` accepts, in the same order (possibly none).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Self {
        Self(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    /// No section: what a "quiet day" note shows.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(&self.0).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

impl FromStr for Sections {
    type Err = serde_json::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s).map(Self)
    }
}

crate::text_column!(Sections);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_subscribers)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub email: EmailAddress,
    pub account_id: Option<AccountId>,
    pub status: SubscriberStatus,
    pub sections: Sections,
    pub source: Source,
    pub consent_text: String,
    pub paused_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub confirmation_sent_at: Option<NaiveDateTime>,
    pub confirmed_at: Option<NaiveDateTime>,
    pub unsubscribed_at: Option<NaiveDateTime>,
    pub name: Option<String>,
    /// The source another system recorded, for a subscriber imported from it.
    pub origin: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = newsletter_subscribers, treat_none_as_default_value = false)]
pub struct NewSubscriber<'a> {
    pub id: SubscriberId,
    pub email: &'a EmailAddress,
    pub account_id: Option<AccountId>,
    pub status: SubscriberStatus,
    pub sections: &'a Sections,
    pub source: Source,
    pub consent_text: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub confirmation_sent_at: Option<NaiveDateTime>,
    pub confirmed_at: Option<NaiveDateTime>,
}

/// What a repeated sign-up of an unconfirmed address changes.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = newsletter_subscribers, treat_none_as_null = true)]
pub struct SignUpRecord<'a> {
    pub sections: &'a Sections,
    pub source: Source,
    pub consent_text: &'a str,
    pub updated_at: NaiveDateTime,
    pub confirmation_sent_at: Option<NaiveDateTime>,
}

/// A subscriber brought in from another system's list, with the consent
/// dates that system recorded.
#[derive(Debug, Insertable)]
#[diesel(table_name = newsletter_subscribers, treat_none_as_default_value = false)]
pub struct ImportedSubscriber<'a> {
    pub id: SubscriberId,
    pub email: &'a EmailAddress,
    pub account_id: Option<AccountId>,
    pub name: Option<&'a str>,
    pub status: SubscriberStatus,
    pub sections: &'a Sections,
    pub source: Source,
    pub origin: Option<&'a str>,
    pub consent_text: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
    pub unsubscribed_at: Option<NaiveDateTime>,
}

/// What an import may change on a subscriber already on the list.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = newsletter_subscribers)]
pub struct ImportUpdate {
    pub sections: Option<Sections>,
    pub name: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

impl ImportUpdate {
    pub fn is_empty(&self) -> bool {
        self.sections.is_none() && self.name.is_none()
    }
}

crate::id_type!(ImportId);

crate::text_enum! {
    pub enum ImportKind {
        Subscribers => "subscribers",
        Suppressions => "suppressions",
    }
}

/// One import of a file, and how far it got.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = newsletter_imports, treat_none_as_default_value = false)]
pub struct ImportRecord {
    pub id: ImportId,
    pub kind: ImportKind,
    pub file_sha256: String,
    /// Data rows in the file.
    pub total_rows: i64,
    /// The last row committed, numbered as a spreadsheet shows them (the
    /// header is row 1).
    pub last_row: i64,
    pub new_count: i64,
    pub updated_count: i64,
    pub unchanged_count: i64,
    pub invalid_count: i64,
    pub suppressed_count: i64,
    pub started_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

/// A change of preferences; `None` leaves a field alone, and
/// `paused_until: Some(None)` ends a pause.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = newsletter_subscribers)]
pub struct PreferencesUpdate {
    pub sections: Option<Sections>,
    pub paused_until: Option<Option<NaiveDateTime>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = newsletter_tokens, treat_none_as_default_value = false)]
pub struct NewToken {
    pub token_hash: TokenHash,
    pub subscriber_id: SubscriberId,
    pub purpose: TokenPurpose,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available() -> Vec<String> {
        ["patents", "trademarks", "copyright"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn sections_default_to_all_and_keep_the_sites_order() {
        assert_eq!(
            Sections::parse(None, &available()).expect("all").as_slice(),
            available()
        );
        let chosen = ["copyright", "patents", "copyright"].map(String::from);
        assert_eq!(
            Sections::parse(Some(&chosen), &available())
                .expect("valid")
                .as_slice(),
            ["patents", "copyright"]
        );
    }

    #[test]
    fn sections_refuse_unknown_and_empty_choices() {
        let unknown = ["sport".to_owned()];
        assert_eq!(
            Sections::parse(Some(&unknown), &available())
                .expect_err("unknown")
                .reason,
            "unknown_section"
        );
        assert_eq!(
            Sections::parse(Some(&[]), &available())
                .expect_err("empty")
                .reason,
            "required"
        );
    }

    #[test]
    fn with_no_section_to_choose_from_an_empty_choice_is_the_whole_newsletter() {
        let none: Vec<String> = Vec::new();
        assert!(Sections::parse(Some(&[]), &none).expect("all").is_empty());
        let unknown = ["patents".to_owned()];
        assert_eq!(
            Sections::parse(Some(&unknown), &none)
                .expect_err("unknown")
                .reason,
            "unknown_section"
        );
    }

    #[test]
    fn sections_round_trip_through_their_stored_text() {
        let sections = Sections::parse(None, &available()).expect("all");
        let stored = sections.to_string();
        assert_eq!(stored, r#"["patents","trademarks","copyright"]"#);
        assert_eq!(stored.parse::<Sections>().expect("parses"), sections);
    }
}
