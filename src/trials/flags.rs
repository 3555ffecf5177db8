//! Risk flags that depend only on the request itself.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::model::RiskFlag;

static FREE_MAIL: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| domains(include_str!("data/free_mail_domains.txt")));
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| domains(include_str!("data/disposable_domains.txt")));

/// Words in company names that say nothing about which company it is.
const GENERIC_WORDS: &[&str] = &[
    "the",
    "and",
    "ltd",
    "limited",
    "inc",
    "llp",
    "llc",
    "plc",
    "gmbh",
    "company",
    "group",
    "corp",
    "corporation",
    "partners",
    "holdings",
    "law",
    "legal",
    "firm",
];

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

/// Whether the company's name shows in the mail domain, or the domain's
/// name in the company: "Analytical Engines Ltd" and analyticalengines.co.uk.
pub fn company_matches_domain(company: &str, domain: &str) -> bool {
    let lower = company.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3 && !GENERIC_WORDS.contains(w))
        .collect();
    let compact: String = words.concat();
    let labels: Vec<&str> = domain.split('.').collect();
    let names = &labels[..labels.len().saturating_sub(1)];
    names.iter().filter(|label| label.len() >= 3).any(|label| {
        let label = label.replace('-', "");
        compact.contains(&label) || words.iter().any(|w| label.contains(w))
    })
}

pub fn of_address(domain: &str, company: &str) -> Vec<RiskFlag> {
    let mut flags = Vec::new();
    if is_free_mail(domain) {
        flags.push(RiskFlag::FreeMailDomain);
    }
    if is_disposable(domain) {
        flags.push(RiskFlag::DisposableDomain);
    }
    if flags.is_empty() && !company_matches_domain(company, domain) {
        flags.push(RiskFlag::CompanyDomainMismatch);
    }
    flags
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

    #[test]
    fn matches_companies_to_domains() {
        assert!(company_matches_domain(
            "Analytical Engines Ltd",
            "analyticalengines.co.uk"
        ));
        assert!(company_matches_domain("Acme", "mail.acme.com"));
        assert!(company_matches_domain(
            "Smith & Jones LLP",
            "smith-jones.com"
        ));
        assert!(!company_matches_domain("Acme", "globex.com"));
        assert!(!company_matches_domain("The Law Firm", "law.com"));
    }

    #[test]
    fn flags_by_address() {
        assert_eq!(of_address("gmail.com", "Acme"), [RiskFlag::FreeMailDomain]);
        assert_eq!(
            of_address("mailinator.com", "Acme"),
            [RiskFlag::DisposableDomain]
        );
        assert_eq!(
            of_address("globex.com", "Acme"),
            [RiskFlag::CompanyDomainMismatch]
        );
        assert!(of_address("acme.com", "Acme Ltd").is_empty());
    }
}
