//! Mail domains anyone can have an address at: free mailbox providers and
//! throwaway ones. Neither says which company a reader works for.

use std::collections::HashSet;
use std::sync::LazyLock;

static FREE_MAIL: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| domains(include_str!("data/free_mail_domains.txt")));
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| domains(include_str!("data/disposable_domains.txt")));

fn domains(list: &'static str) -> HashSet<&'static str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(domain)
}

/// The domain or any domain it belongs to (`x.mailinator.com`).
pub fn is_disposable(domain: &str) -> bool {
    let mut rest = domain;
    loop {
        if DISPOSABLE.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_free_and_disposable_mail() {
        assert!(is_free_mail("gmail.com"));
        assert!(!is_free_mail("acme.com"));
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("inbox.mailinator.com"));
        assert!(!is_disposable("acme.com"));
    }
}
