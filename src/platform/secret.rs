//! The site's signing key: from `auth.secret`, or generated once into
//! `auth.secret_file` and read from there on every later start.

use std::io::Write;

use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::platform::config::AuthSettings;

/// A shorter key could be guessed offline from one signed link.
pub const MIN_SECRET_BYTES: usize = 32;

pub fn site_key(settings: &AuthSettings) -> anyhow::Result<SecretString> {
    if let Some(secret) = settings
        .secret
        .as_ref()
        .filter(|s| !s.expose_secret().is_empty())
    {
        anyhow::ensure!(
            secret.expose_secret().len() >= MIN_SECRET_BYTES,
            "auth.secret (MASTHEAD__AUTH__SECRET) must be at least {MIN_SECRET_BYTES} bytes; \
             generate one with `openssl rand -hex 32`",
        );
        return Ok(secret.clone());
    }
    let path = &settings.secret_file;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the folder of {}", path.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex::encode(bytes).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the link-signing key");
        }
        // Another instance, or an earlier start, made it: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned();
    anyhow::ensure!(
        key.len() >= MIN_SECRET_BYTES,
        "{} holds no usable key; delete it to have one generated",
        path.display()
    );
    Ok(SecretString::from(key))
}
