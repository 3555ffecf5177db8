//! Risk flags that depend only on the request itself.

use super::model::RiskFlag;
use crate::platform::domain::mail_domains::{is_disposable, is_free_mail};

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
