//! argon2id hashing, off the async executor, a bounded number at a time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::platform::config::Argon2Settings;
use crate::platform::domain::Password;

/// Hashes with the configured parameters. The hash string records the
/// parameters it was made with, so raising them takes effect for each
/// account at its next login.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    /// One permit per hash that may run at once: each holds `memory_kib`,
    /// so a flood of password requests costs bounded memory and CPU.
    permits: Arc<Semaphore>,
    max_wait: Duration,
    /// Verified against when no account matches, so that an unknown address
    /// costs as much time as a known one.
    dummy_hash: String,
    threads: HashingThreads,
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashing runs on threads of its own, one per permit, never on tokio's
/// blocking pool: each run allocates `memory_kib`, and the allocator keeps
/// what a thread freed in that thread's arena for the next allocation
/// there. Spread over dozens of blocking threads, two hashes at a time held
/// 900 MB (bench/http, 32 logins at once); on one thread per permit the
/// memory they keep is bounded by permits × `memory_kib`. The threads end
/// when the hasher is dropped.
struct HashingThreads {
    jobs: std::sync::mpsc::Sender<Job>,
}

/// More hashes at once than this wait their turn on the threads there are.
const MAX_HASHING_THREADS: usize = 64;

impl HashingThreads {
    fn start(count: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..count {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    match next {
                        Ok(job) => job(),
                        Err(_hasher_dropped) => break,
                    }
                })
                .context("starting a password hashing thread")?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread and waits for it, blocking.
    fn run_now<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads stopped"))?;
        result.recv().context("password hashing thread stopped")?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            // The caller may have gone away; the work is finished anyway.
            let _ = done.send(span.in_scope(work));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the password hashing threads stopped"))?;
        result.await.context("password hashing task stopped")?
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot stayed taken for the whole wait: the caller should come
    /// back later rather than queue.
    #[error("all password hashing slots are busy")]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Valid { needs_rehash: bool },
    Invalid,
}

impl PasswordHasher {
    pub fn new(settings: &Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("auth.argon2 parameters: {e}"))?;

        let permits = match settings.max_concurrent {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let threads = HashingThreads::start(permits.clamp(1, MAX_HASHING_THREADS))?;
        // On a hashing thread, whose kept memory serves later hashes too.
        let dummy_params = params.clone();
        let dummy_hash =
            threads.run_now(move || hash_with(&dummy_params, "a password nobody has"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                permits: Arc::new(Semaphore::new(permits)),
                max_wait: Duration::from_millis(settings.max_wait_ms),
                dummy_hash,
                threads,
            }),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let inner = Arc::clone(&self.inner);
        let secret = password.secret().clone();
        self.run(move || hash_with(&inner.params, secret.expose_secret()))
            .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when
    /// there is no stored hash (the result is then always invalid).
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verification, HashError> {
        let inner = Arc::clone(&self.inner);
        self.run(move || {
            let known = stored.is_some();
            let hash_text = stored.unwrap_or_else(|| inner.dummy_hash.clone());
            let hash = PasswordHash::new(&hash_text)
                .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
            let matches = matches(&hash, password.expose_secret());
            Ok(if matches && known {
                Verification::Valid {
                    needs_rehash: !is_current(&hash, &inner.params),
                }
            } else {
                Verification::Invalid
            })
        })
        .await
    }

    /// Runs `work` on a hashing thread once a permit is free. The thread
    /// holds the permit, so a caller that goes away does not free it before
    /// the work ends.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let busy = || HashError::Busy {
            retry_after: self.inner.max_wait.max(Duration::from_secs(1)),
        };
        let permits = Arc::clone(&self.inner.permits);
        let permit = tokio::time::timeout(self.inner.max_wait, permits.acquire_owned())
            .await
            .map_err(|_elapsed| busy())?
            // The semaphore is never closed.
            .map_err(|_closed| busy())?;
        Ok(self
            .inner
            .threads
            .run(move || {
                let result = work();
                drop(permit);
                result
            })
            .await?)
    }
}

thread_local! {
    /// argon2's working memory, kept for this thread's next hash instead of
    /// being allocated and freed each time: freed, 19 MiB blocks made the
    /// allocator raise its mmap threshold and keep them in fragmented heaps
    /// (RSS 240 MB after 5 s of logins on two threads, 63 MB kept this way).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into an output of `len` bytes, in this
/// thread's kept memory.
fn argon2_output(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> anyhow::Result<Output> {
    let count = argon2.params().block_count();
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        Output::init_with(len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..count])?)
        })
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
}

fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = argon2_output(&argon2, password.as_bytes(), salt_bytes, len)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives `hash`, computed with the parameters the hash
/// records; the comparison of outputs takes constant time.
fn matches(hash: &PasswordHash<'_>, password: &str) -> bool {
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(hash)) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    argon2_output(&argon2, password.as_bytes(), salt_bytes, expected.len())
        .is_ok_and(|output| output == expected)
}

fn is_current(hash: &PasswordHash<'_>, params: &Params) -> bool {
    hash.algorithm == Algorithm::Argon2id.ident()
        && Params::try_from(hash).is_ok_and(|used| {
            used.m_cost() == params.m_cost()
                && used.t_cost() == params.t_cost()
                && used.p_cost() == params.p_cost()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes stored by argon2's own API (and so by earlier releases) still
    /// verify, and ours verify with argon2's own verifier.
    #[test]
    fn hashes_agree_with_argon2s_own_api() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(1024, 2, 1, None).expect("parameters");
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"correct horse", &salt)
            .expect("a hash")
            .to_string();
        let theirs = PasswordHash::new(&theirs).expect("parsed");
        assert!(matches(&theirs, "correct horse"));
        assert!(!matches(&theirs, "correct horsE"));

        let ours = hash_with(&params, "battery staple").expect("a hash");
        let ours = PasswordHash::new(&ours).expect("parsed");
        assert!(Argon2::default()
            .verify_password(b"battery staple", &ours)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"battery", &ours)
            .is_err());
    }

    fn settings(memory_kib: u32) -> Argon2Settings {
        Argon2Settings {
            memory_kib,
            iterations: 2,
            parallelism: 1,
            max_concurrent: None,
            max_wait_ms: 1000,
        }
    }

    fn password(s: &str) -> Password {
        Password::parse(SecretString::from(s.to_owned())).expect("valid password")
    }

    #[tokio::test]
    async fn verifies_and_asks_for_rehash_when_parameters_rise() {
        let old = PasswordHasher::new(&settings(8192)).expect("hasher");
        let stored = old.hash(&password("correct horse")).await.expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        let secret = || SecretString::from("correct horse".to_owned());
        assert_eq!(
            old.verify(secret(), Some(stored.clone()))
                .await
                .expect("verify"),
            Verification::Valid {
                needs_rehash: false
            }
        );
        let new = PasswordHasher::new(&settings(19456)).expect("hasher");
        assert_eq!(
            new.verify(secret(), Some(stored.clone()))
                .await
                .expect("verify"),
            Verification::Valid { needs_rehash: true }
        );
        assert_eq!(
            new.verify(SecretString::from("wrong horse".to_owned()), Some(stored))
                .await
                .expect("verify"),
            Verification::Invalid
        );
        assert_eq!(
            new.verify(secret(), None).await.expect("verify"),
            Verification::Invalid
        );
    }
}
