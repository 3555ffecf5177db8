use std::fmt;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::Invalid;

/// A secret handed to a person once (in a link or a cookie): 256 random bits
/// as 64 hex characters. Only its hash is stored.
#[derive(Debug, Clone)]
pub struct Token(SecretString);

impl Token {
    const HEX_LEN: usize = 64;

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(SecretString::from(hex::encode(bytes)))
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let input = input.trim();
        if input.len() != Self::HEX_LEN || !input.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Invalid::new(
                "invalid_or_expired",
                "this link is invalid or has expired",
            ));
        }
        Ok(Self(SecretString::from(input.to_ascii_lowercase())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(
            self.0.expose_secret().as_bytes(),
        )))
    }
}

/// What the database keeps of a token: its SHA-256, so that a leaked table
/// opens no account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TokenHash {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

crate::text_column!(TokenHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_stably() {
        let token = Token::generate();
        let parsed = Token::parse(token.expose()).expect("a generated token parses");
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(Token::generate().hash(), token.hash());
        assert_eq!(token.hash().as_str().len(), 64);
    }

    #[test]
    fn refuses_malformed_tokens() {
        assert!(Token::parse("abc").is_err());
        assert!(Token::parse(&"z".repeat(64)).is_err());
    }
}
