//! Markdown in, safe HTML out. Raw HTML in the source is shown as text, and
//! links and images may only point to http(s), mailto or the site itself:
//! with those two holes closed, pulldown-cmark's writer escapes everything
//! else, so no script, event handler or `javascript:` URL can get through.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

const ALLOWED_SCHEMES: &[&str] = &["http", "https", "mailto"];

pub fn to_html(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 5 / 4);
    html::push_html(&mut out, parser);
    out
}

/// A URL with a scheme outside the allow-list becomes `#`. Browsers ignore
/// control characters and whitespace inside a scheme (`java\tscript:`), so
/// they are dropped before looking.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let squeezed: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = squeezed.find(':');
    let path_start = squeezed.find(['/', '?', '#']);
    let scheme = match (scheme_end, path_start) {
        (Some(colon), Some(path)) if path < colon => None,
        (Some(colon), _) => Some(&squeezed[..colon]),
        (None, _) => None,
    };
    match scheme {
        Some(scheme) if !ALLOWED_SCHEMES.contains(&scheme) => CowStr::Borrowed("#"),
        _ => url,
    }
}

/// Splits the source into its top-level blocks (paragraphs, lists, quotes),
/// as written: blank lines separate them.
pub fn blocks(markdown: &str) -> Vec<&str> {
    markdown
        .split("\n\n")
        .map(str::trim)
        .filter(|block| !block.is_empty())
        .collect()
}

/// The opening of an article for readers without access: whole blocks up to
/// `max_chars`, at least the first, never all of them.
pub fn teaser(markdown: &str, max_chars: usize) -> String {
    let blocks = blocks(markdown);
    let mut kept = Vec::new();
    let mut length = 0;
    for block in blocks.iter().take(blocks.len().saturating_sub(1)) {
        length += block.chars().count();
        if !kept.is_empty() && length > max_chars {
            break;
        }
        kept.push(*block);
    }
    to_html(&kept.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn renders_markdown() {
        let html = to_html("Hello **world** and [a link](https://example.com/x).");
        assert_eq!(
            html,
            "<p>Hello <strong>world</strong> and <a href=\"https://example.com/x\">a link</a>.</p>\n"
        );
    }

    #[test]
    fn strips_scripts_handlers_and_javascript_urls() {
        let html = to_html(
            "<script>alert(1)</script>\n\nText <img src=x onerror=alert(1)> \
             [click](javascript:alert(1)) [tab](java\tscript:alert(1)) \
             [ent](&#106;avascript:alert(1)) ![i](data:text/html;base64,xx) [ok](/articles/a) [mail](mailto:a@example.com)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.to_lowercase().contains("href=\"javascript"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(html.contains("href=\"/articles/a\""), "{html}");
        assert!(html.contains("href=\"mailto:a@example.com\""), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn teaser_cuts_at_a_block_boundary_and_never_gives_everything() {
        let body = "First paragraph.\n\nSecond paragraph is here.\n\nThird.";
        assert_eq!(teaser(body, 20), "<p>First paragraph.</p>\n");
        assert_eq!(
            teaser(body, 1000),
            "<p>First paragraph.</p>\n<p>Second paragraph is here.</p>\n"
        );
        assert_eq!(teaser("Only one paragraph.", 1000), "");
    }

    proptest! {
        #[test]
        fn no_raw_tag_survives(text in "\\PC{0,200}") {
            let html = to_html(&format!("{text}<script>x</script><a onclick=\"y\">z</a>"));
            prop_assert!(!html.contains("<script"));
            prop_assert!(!html.contains("<a onclick"));
        }

        #[test]
        fn links_never_keep_a_script_scheme(scheme in "[jJ][aA][vV][aA]\\s?[sS][cC][rR][iI][pP][tT]", rest in "[a-z()0-9]{0,10}") {
            let html = to_html(&format!("[x]({scheme}:{rest})"));
            let lower = html.to_lowercase();
            prop_assert!(!lower.contains("href=\"java"), "{}", html);
            prop_assert!(!lower.contains("src=\"java"), "{}", html);
        }
    }
}
