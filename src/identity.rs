//! Who is who: session and game ids, bearer tokens (resume tokens, join and
//! watch keys), and the friendly name and color a session gets when it
//! brings none.
//!
//! Ids and tokens use only URL-safe characters (`A-Z a-z 0-9 _`). A token
//! is the random part of the id it opens followed by a secret of
//! [`SECRET_CHARS`] random characters (about 190 bits), so the Lobby finds
//! the session or game by id and compares the secret in constant time.

use rand::{distributions::Alphanumeric, seq::SliceRandom, Rng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Characters in the random part of an id.
const ID_CHARS: usize = 16;

/// Characters in a bearer secret (resume tokens, join and watch keys):
/// 32 of 62 symbols is about 190 bits, above the protocol's 128.
pub const SECRET_CHARS: usize = 32;

/// Prefix of every session id.
pub const SESSION_PREFIX: &str = "s_";

/// Prefix of every game id.
pub const GAME_PREFIX: &str = "g_";

/// The prefix of a bot's seat id, in place of a session id.
pub const BOT_PREFIX: &str = "b_";

const ADJECTIVES: &[&str] = &[
    "Quiet", "Brave", "Clever", "Gentle", "Swift", "Sunny", "Lucky", "Mellow", "Bold", "Curious",
    "Witty", "Calm", "Merry", "Nimble", "Proud", "Jolly", "Keen", "Cosy", "Bright", "Happy",
];

const ANIMALS: &[&str] = &[
    "Otter", "Fox", "Heron", "Badger", "Lynx", "Panda", "Koala", "Falcon", "Marten", "Puffin",
    "Walrus", "Gecko", "Ibis", "Bison", "Lemur", "Owl", "Robin", "Seal", "Tapir", "Wombat",
];

/// A new random id: `prefix` and 16 alphanumeric characters.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_chars(ID_CHARS))
}

/// A new bearer secret of [`SECRET_CHARS`] alphanumeric characters.
pub fn new_secret() -> String {
    random_chars(SECRET_CHARS)
}

/// The token that opens `id` with `secret`: the id's random part, then the secret.
pub fn token(id: &str, secret: &str) -> String {
    let random_part = id.split_once('_').map_or(id, |(_, rest)| rest);
    format!("{random_part}{secret}")
}

/// Splits a token into the id it opens (with `prefix`) and its secret, or
/// `None` if it cannot be a token.
pub fn split_token<'a>(token: &'a str, prefix: &str) -> Option<(String, &'a str)> {
    let valid = token.len() == ID_CHARS + SECRET_CHARS
        && token.bytes().all(|byte| byte.is_ascii_alphanumeric());
    valid.then(|| {
        let (random_part, secret) = token.split_at(ID_CHARS);
        (format!("{prefix}{random_part}"), secret)
    })
}

/// The SHA-256 of a secret, in hex: what is kept of a resume token or a
/// watch key, so that neither memory nor the store holds the secret
/// itself (ARCHITECTURE.md, *Secrets*).
pub fn secret_hash(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// Whether `given` is the secret `hash` was made from, compared in
/// constant time.
pub fn matches_hash(given: &str, hash: &str) -> bool {
    secrets_match(&secret_hash(given), hash)
}

/// Compares two secrets without leaking, through timing, how much matched.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// A random friendly name such as "Quiet Otter".
pub fn random_name() -> String {
    let mut rng = rand::thread_rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("Quiet");
    let animal = ANIMALS.choose(&mut rng).copied().unwrap_or("Otter");
    format!("{adjective} {animal}")
}

/// A random `#rrggbb` color, saturated and mid-light so that it reads on
/// both light and dark backgrounds.
pub fn random_color() -> String {
    let hue: f64 = rand::thread_rng().gen_range(0.0..360.0);
    let (red, green, blue) = hsl_to_rgb(hue, 0.65, 0.5);
    format!("#{red:02x}{green:02x}{blue:02x}")
}

fn hsl_to_rgb(hue: f64, saturation: f64, lightness: f64) -> (u8, u8, u8) {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let offset = lightness - chroma / 2.0;
    let channel = |value: f64| ((value + offset) * 255.0).round().clamp(0.0, 255.0) as u8;
    (channel(r), channel(g), channel(b))
}

fn random_chars(count: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(count)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for prefix in [SESSION_PREFIX, GAME_PREFIX] {
            let id = new_id(prefix);
            let secret = new_secret();
            let token = token(&id, &secret);
            assert_eq!(split_token(&token, prefix), Some((id, secret.as_str())));
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert_eq!(split_token("short", SESSION_PREFIX), None);
        let dashes = "-".repeat(ID_CHARS + SECRET_CHARS);
        assert_eq!(split_token(&dashes, SESSION_PREFIX), None);
    }

    #[test]
    fn a_secret_matches_its_hash_only() {
        let secret = new_secret();
        let hash = secret_hash(&secret);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, secret);
        assert!(matches_hash(&secret, &hash));
        assert!(!matches_hash(&new_secret(), &hash));
        // The FIPS 180-2 test vector.
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abd", "abc"));
        assert!(!secrets_match("ab", "abc"));
    }

    #[test]
    fn colors_are_hex() {
        for _ in 0..100 {
            let color = random_color();
            assert_eq!(color.len(), 7);
            assert!(color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(hsl_to_rgb(0.0, 1.0, 0.5), (255, 0, 0));
        assert_eq!(hsl_to_rgb(240.0, 1.0, 0.5), (0, 0, 255));
    }

    #[test]
    fn random_names_are_valid_names() {
        for _ in 0..50 {
            assert!(crate::protocol::valid_name(&random_name()).is_some());
        }
    }
}
