//! What changed between two versions of an article's text, line by line,
//! for the revisions page (the `similar` crate's Myers diff).

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Same,
    Added,
    Removed,
}

/// One line of a diff, without its line break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub change: Change,
    pub text: String,
}

/// The changed lines of `after` against `before`, in hunks with up to
/// `context` unchanged lines around them: a long body shows only what
/// moved. No hunk when the two are equal.
pub fn hunks(before: &str, after: &str, context: usize) -> Vec<Vec<Line>> {
    let diff = TextDiff::from_lines(before, after);
    diff.grouped_ops(context)
        .iter()
        .map(|group| {
            group
                .iter()
                .flat_map(|op| diff.iter_changes(op))
                .map(|change| Line {
                    change: match change.tag() {
                        ChangeTag::Equal => Change::Same,
                        ChangeTag::Insert => Change::Added,
                        ChangeTag::Delete => Change::Removed,
                    },
                    text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(change: Change, text: &str) -> Line {
        Line {
            change,
            text: text.to_owned(),
        }
    }

    #[test]
    fn equal_texts_have_no_hunk() {
        assert!(hunks("a\nb\n", "a\nb\n", 2).is_empty());
    }

    #[test]
    fn a_changed_line_is_removed_then_added_with_its_context() {
        let before = "one\ntwo\nthree\nfour\nfive\nsix\n";
        let after = "one\ntwo\nthree\nFOUR\nfive\nsix\n";
        assert_eq!(
            hunks(before, after, 1),
            vec![vec![
                line(Change::Same, "three"),
                line(Change::Removed, "four"),
                line(Change::Added, "FOUR"),
                line(Change::Same, "five"),
            ]]
        );
    }

    #[test]
    fn a_last_line_without_a_break_compares_as_text() {
        assert_eq!(
            hunks("Old title", "New title", 0),
            vec![vec![
                line(Change::Removed, "Old title"),
                line(Change::Added, "New title"),
            ]]
        );
    }
}
