//! argon2id hashing of key secrets (and, later, passwords).
//!
//! Parameters are OWASP's argon2id recommendation, written out so a library
//! default change cannot silently weaken them: 19 MiB memory, 2 passes, 1 lane.
//! Hashing is CPU-heavy (tens of milliseconds) and takes 19 MiB, so the `_async`
//! methods run it on a few dedicated threads — one per CPU — never on an async worker
//! and never on tokio's blocking pool: the allocator keeps a 19 MiB block alive in
//! every thread that ran argon2, and the blocking pool grows to hundreds of threads.
//! Measured: ~385 MB resident after 20 cold keys on the blocking pool.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::RecvTimeoutError;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::AdminError;

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes.
pub const T_COST: u32 = 2;
/// Degree of parallelism.
pub const P_COST: u32 = 1;
/// Length of the stored hash, bytes.
const OUTPUT_LEN: usize = 32;

thread_local! {
    /// argon2's 19 MiB working memory, allocated once per thread and reused while
    /// work keeps coming: a fresh allocation per run fragments glibc's heap (a plain
    /// loop of 40 runs reached 138 MB). The argon2 threads give it back once they have
    /// been idle for [`IDLE_RELEASE`] ([`release_memory`]).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Bytes of argon2 working memory currently held, over all threads.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Working-memory allocations made by argon2 threads so far.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Bytes of argon2 working memory the process holds right now: 19 MiB per thread
/// that is hashing (or has hashed and not yet gone idle), 0 at rest.
pub fn held_memory_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

thread_local! {
    /// Set on the argon2 threads: only they keep working memory between runs.
    static ARGON2_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    if !ARGON2_THREAD.get() {
        // Elsewhere (the CLI, a one-off on an async worker) nothing would give a
        // kept buffer back: use one for this run only.
        return work(&mut vec![Block::default(); blocks]);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            HELD.fetch_add(
                (blocks - memory.len()) * std::mem::size_of::<Block>(),
                Ordering::Relaxed,
            );
            memory.resize(blocks, Block::default());
        }
        work(&mut memory[..blocks])
    })
}

/// Frees this thread's argon2 working memory (the next run allocates it again).
fn release_memory() {
    MEMORY.with(|memory| {
        let freed = std::mem::take(&mut *memory.borrow_mut());
        HELD.fetch_sub(
            freed.len() * std::mem::size_of::<Block>(),
            Ordering::Relaxed,
        );
    });
}

/// Hashes and verifies secrets with fixed argon2id parameters.
#[derive(Clone)]
pub struct SecretHasher {
    params: Params,
}

impl Default for SecretHasher {
    fn default() -> Self {
        Self {
            params: Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN))
                .expect("argon2 parameters are valid constants"),
        }
    }
}

impl SecretHasher {
    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `secret`, with a
    /// fresh random salt.
    pub fn hash(&self, secret: &str) -> Result<String, AdminError> {
        let fail = |e: &dyn std::fmt::Display| AdminError::Hashing(e.to_string());
        let salt = Salt::generate();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut out = [0u8; OUTPUT_LEN];
        with_memory(self.params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(
                secret.as_bytes(),
                salt.as_ref(),
                &mut out,
                memory,
            )
        })
        .map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| fail(&e))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `secret` matches the argon2id PHC string `phc` (with the parameters
    /// the string names). A malformed string is a mismatch, never a panic.
    pub fn verify(&self, secret: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let version = parsed
            .version
            .and_then(|v| Version::try_from(v).ok())
            .unwrap_or(Version::V0x13);
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        let computed = with_memory(params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(
                secret.as_bytes(),
                salt.as_ref(),
                &mut out,
                memory,
            )
        });
        computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }
}

/// BLAKE2s-256 of `data` as lower-case hex: how session tokens and request
/// fingerprints are stored and compared.
pub fn blake2s_hex(data: &[u8]) -> String {
    use blake2::{Blake2s256, Digest};
    Blake2s256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether two secrets (tokens) are equal, in time that depends on neither: both are
/// digested first, so even their lengths do not show.
pub fn secrets_equal(presented: &str, expected: &str) -> bool {
    use blake2::{Blake2s256, Digest};
    let a = Blake2s256::digest(presented.as_bytes());
    let b = Blake2s256::digest(expected.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

type Job = Box<dyn FnOnce() + Send>;

/// An argon2 thread that has waited this long for work gives its memory back. Not
/// sooner: during a burst of cold keys the queue runs dry between jobs all the time,
/// and giving 19 MiB back then only to take it again at the next job doubled what a
/// thread held for a moment (the allocator returns freed memory to the system with a
/// delay) — peak RSS 95-103 MB for 100 cold keys instead of ~77.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// The process's argon2 threads, started on first use. They share one queue, each
/// waiting on it with a timeout of its own, so every idle thread notices it is idle.
fn hashing_threads() -> &'static crossbeam_channel::Sender<Job> {
    static THREADS: std::sync::OnceLock<crossbeam_channel::Sender<Job>> =
        std::sync::OnceLock::new();
    THREADS.get_or_init(|| {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    ARGON2_THREAD.set(true);
                    loop {
                        match queue.recv_timeout(IDLE_RELEASE) {
                            Ok(job) => job(),
                            Err(RecvTimeoutError::Timeout) => release_memory(),
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .expect("an argon2 thread starts");
        }
        jobs
    })
}

async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    let (done, answer) = tokio::sync::oneshot::channel();
    hashing_threads()
        .send(Box::new(move || {
            let _ = done.send(work());
        }))
        .map_err(|_| AdminError::Hashing("the argon2 threads have stopped".into()))?;
    answer
        .await
        .map_err(|_| AdminError::Hashing("an argon2 job was dropped".into()))
}

impl SecretHasher {
    /// [`SecretHasher::hash`] on the argon2 threads.
    pub async fn hash_async(&self, secret: &str) -> Result<String, AdminError> {
        let (hasher, secret) = (self.clone(), secret.to_owned());
        on_hashing_thread(move || hasher.hash(&secret)).await?
    }

    /// [`SecretHasher::verify`] on the argon2 threads.
    pub async fn verify_async(&self, secret: &str, phc: &str) -> Result<bool, AdminError> {
        let (hasher, secret, phc) = (self.clone(), secret.to_owned(), phc.to_owned());
        on_hashing_thread(move || hasher.verify(&secret, &phc)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_threads_give_their_working_memory_back_when_idle() {
        let hasher = SecretHasher::default();
        let phc = hasher.hash_async("secret").await.unwrap();
        assert!(hasher.verify_async("secret", &phc).await.unwrap());
        // Other tests in this process may be hashing too: wait for every thread to
        // go idle, which must happen once they are done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while held_memory_bytes() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "still holding {} bytes",
                held_memory_bytes()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_burst_reuses_each_threads_working_memory() {
        let hasher = SecretHasher::default();
        let phc = hasher.hash_async("secret").await.unwrap();
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..6 {
            assert!(hasher.verify_async("secret", &phc).await.unwrap());
        }
        // Back-to-back jobs keep the buffer: at most one allocation per thread (one
        // that had not hashed yet, or that other tests' idleness let go) — not one per
        // job, as when memory was given back whenever the queue ran dry.
        let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert!(
            made <= threads,
            "{made} allocations for 6 jobs on {threads} threads"
        );
        assert!(held_memory_bytes() > 0, "released in the middle of a burst");
    }

    #[test]
    fn a_hash_is_argon2id_with_the_written_parameters_and_verifies() {
        let hasher = SecretHasher::default();
        let phc = hasher.hash("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("s3cret"));
        assert!(hasher.verify("s3cret", &phc));
        assert!(!hasher.verify("s3cres", &phc));
    }

    #[test]
    fn the_same_secret_hashes_differently_each_time() {
        let hasher = SecretHasher::default();
        assert_ne!(hasher.hash("x").unwrap(), hasher.hash("x").unwrap());
    }

    #[tokio::test]
    async fn the_async_forms_run_on_the_argon2_threads_and_agree() {
        let hasher = SecretHasher::default();
        let phc = hasher.hash_async("s3cret").await.unwrap();
        assert!(hasher.verify_async("s3cret", &phc).await.unwrap());
        assert!(!hasher.verify_async("other", &phc).await.unwrap());
        let name = on_hashing_thread(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("argon2-"));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_itself_verify_and_ours_verify_there() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap(),
        );
        let theirs = reference.hash_password(b"s3cret").unwrap().to_string();
        assert!(SecretHasher::default().verify("s3cret", &theirs));
        let ours = SecretHasher::default().hash("s3cret").unwrap();
        assert!(reference.verify_password(b"s3cret", ours.as_str()).is_ok());
        assert!(reference.verify_password(b"other", ours.as_str()).is_err());
    }

    #[test]
    fn secrets_compare_by_value_and_digests_are_hex() {
        assert!(secrets_equal("token-1", "token-1"));
        assert!(!secrets_equal("token-1", "token-2"));
        assert!(!secrets_equal("token", "token-longer"));
        let hex = blake2s_hex(b"x");
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn a_malformed_hash_is_a_mismatch() {
        assert!(!SecretHasher::default().verify("x", "not a phc string"));
    }
}
