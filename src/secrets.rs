//! Encryption at rest for managed databases' connection URLs: XChaCha20-
//! Poly1305 (an AEAD) with a random nonce per value and the database's name
//! as associated data, so a sealed URL cannot be moved to another row.
//! The key comes from `secret_key` (CUSTODIAN_SECRET_KEY) or from
//! `<data_dir>/secret.key`, created with mode 0600 on first start.
//!
//! The same key also yields MAC keys (HMAC-SHA256), one per purpose, for
//! values the panel must recognise as its own without storing them: the
//! sign-in form's token, the hashed names the sign-in throttle counts.
//! Instances sharing a store share the key, so they agree on these too.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::Config;

pub use crate::files::KEY_FILE;

const NONCE_LEN: usize = 24;

/// Seals and opens secrets with the panel's key.
#[derive(Clone)]
pub struct Secrets {
    cipher: XChaCha20Poly1305,
    /// HMAC keyed with the secret key; MAC keys are derived through it.
    derive: Hmac<Sha256>,
    /// Where the key came from, for messages.
    pub source: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets(key from {})", self.source)
    }
}

/// A sealed value that does not open with this key (or was tampered with).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decrypt a stored secret: the key differs from the one it was sealed with, or the value is damaged"
)]
pub struct OpenError;

const KEY_HELP: &str =
    "the secret key must be 32 random bytes, base64- or hex-encoded (e.g. `openssl rand -base64 32`)";

fn decode_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .ok()
    };
    match bytes {
        Some(b) if b.len() == 32 => Ok(b.try_into().expect("length checked")),
        _ => bail!("{KEY_HELP}"),
    }
}

/// Read the key file, or create it (mode 0600) with a new random key.
fn key_file(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            // A key file an older version left readable is made private.
            if let Err(e) = crate::files::tighten(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the key file private");
            }
            decode_key(&text).with_context(|| format!("bad key file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::files::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .with_context(|| format!("cannot create key file {}", path.display()))?;
            std::io::Write::write_all(&mut file, format!("{}\n", STANDARD.encode(key)).as_bytes())
                .with_context(|| format!("cannot write key file {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new secret key file; back it up with the store");
            Ok(key.into())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read key file {}", path.display())),
    }
}

impl Secrets {
    pub fn load(config: &Config) -> anyhow::Result<Secrets> {
        let (key, source) = match &config.secret_key {
            Some(text) => (
                decode_key(text.expose_secret()).context("CUSTODIAN_SECRET_KEY / secret_key")?,
                "CUSTODIAN_SECRET_KEY".to_string(),
            ),
            None => (
                key_file(&config.data_dir)?,
                config.data_dir.join(KEY_FILE).display().to_string(),
            ),
        };
        Ok(Secrets {
            cipher: XChaCha20Poly1305::new(&key.into()),
            derive: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length"),
            source,
        })
    }

    /// A MAC key for one `purpose`: HMAC(secret key, purpose), so a tag made
    /// for one purpose is worthless for another and the secret key itself
    /// never signs anything.
    pub fn mac_key(&self, purpose: &str) -> MacKey {
        let mut derive = self.derive.clone();
        derive.update(b"custodian mac key\0");
        derive.update(purpose.as_bytes());
        let subkey = derive.finalize().into_bytes();
        MacKey(<Hmac<Sha256> as Mac>::new_from_slice(&subkey).expect("HMAC takes keys of any length"))
    }

    /// Encrypt `plaintext`, bound to `context` (e.g. the database's name).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Decrypt what `seal` made with the same key and context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, OpenError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

/// An HMAC-SHA256 key for one purpose (see [`Secrets::mac_key`]).
#[derive(Clone)]
pub struct MacKey(Hmac<Sha256>);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    fn over(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The tag of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.over(parts).finalize().into_bytes().into()
    }

    /// Is `tag` the tag of `parts`? Compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.over(parts).verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &str) -> Secrets {
        let config = Config {
            secret_key: Some(key.to_string().into()),
            ..Config::default()
        };
        Secrets::load(&config).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let a = with_key(&STANDARD.encode([7u8; 32]));
        let url = "postgres://u:correct-horse-battery@h/db";
        let sealed = a.seal("prod", url);
        assert!(!sealed.contains("correct-horse-battery") && !sealed.contains("postgres://"));
        assert_eq!(a.open("prod", &sealed).unwrap(), url);
        assert!(a.open("staging", &sealed).is_err(), "bound to its row");
        let b = with_key(&"ab".repeat(32));
        assert!(b.open("prod", &sealed).is_err(), "another key cannot open it");
        assert_ne!(
            a.seal("prod", "x"),
            a.seal("prod", "x"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn mac_keys_differ_by_purpose_and_secret() {
        let a = with_key(&STANDARD.encode([7u8; 32]));
        let tag = a.mac_key("form").tag(&[b"nonce", b"123"]);
        assert!(a.mac_key("form").verify(&[b"nonce", b"123"], &tag));
        assert!(!a.mac_key("form").verify(&[b"nonce", b"124"], &tag));
        assert!(
            !a.mac_key("form").verify(&[b"nonc", b"e123"], &tag),
            "parts are framed"
        );
        assert!(
            !a.mac_key("names").verify(&[b"nonce", b"123"], &tag),
            "another purpose"
        );
        let b = with_key(&"ab".repeat(32));
        assert!(
            !b.mac_key("form").verify(&[b"nonce", b"123"], &tag),
            "another secret key"
        );
    }

    #[test]
    fn keys_must_be_32_bytes() {
        for bad in ["", "short", &STANDARD.encode([1u8; 16])] {
            let config = Config {
                secret_key: Some(bad.to_string().into()),
                ..Config::default()
            };
            let err = Secrets::load(&config).unwrap_err();
            assert!(format!("{err:#}").contains("32 random bytes"), "{err:#}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let first = Secrets::load(&config).unwrap();
        let path = dir.path().join("data").join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("data"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "a data dir the panel creates is private");
        let sealed = first.seal("db", "secret");
        let again = Secrets::load(&config).unwrap();
        assert_eq!(
            again.open("db", &sealed).unwrap(),
            "secret",
            "the same key is read back"
        );
    }
}
