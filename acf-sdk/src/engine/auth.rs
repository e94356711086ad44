//! Engine tokens: HS256 JWTs minted and verified with the engine's secret.
//!
//! The Python SDK decodes the token without verifying it and needs the claims `sub` (tenant),
//! `server_url` and `grpc_broadcast_address`; the engine verifies the signature and expiry on
//! every call and answers `UNAUTHENTICATED "invalid auth token"` otherwise (reference §1.3).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Ninety days, Hatchet's default token lifetime.
const TOKEN_LIFETIME_SECS: u64 = 90 * 24 * 3600;

/// The claims carried by an engine token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// Tenant id.
    pub(crate) sub: String,
    /// REST base URL: the engine itself (it serves its REST subset on the gRPC port).
    pub(crate) server_url: String,
    /// gRPC `host:port` clients connect to.
    pub(crate) grpc_broadcast_address: String,
    /// Issuer.
    pub(crate) iss: String,
    /// Audience.
    pub(crate) aud: String,
    /// Issued at (seconds since the epoch).
    pub(crate) iat: u64,
    /// Expiry (seconds since the epoch).
    pub(crate) exp: u64,
    /// Unique token id.
    pub(crate) token_id: String,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub(crate) struct TokenKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys from a secret.
    pub(crate) fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// A fresh random 32-byte secret.
    pub(crate) fn random() -> Self {
        Self::new(rand::random::<[u8; 32]>().to_vec())
    }

    /// The tenant id is derived from the secret, so an engine restarted with the same secret
    /// keeps the tenant its old tokens name.
    pub(crate) fn tenant_id(&self) -> Uuid {
        let mut mac = self.mac();
        mac.update(b"acf-engine-tenant");
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.secret).expect("hmac accepts any key length")
    }

    /// Mints a client token for an engine reachable at `grpc_address`.
    pub(crate) fn mint(&self, grpc_address: &str) -> String {
        let now = now_secs();
        let claims = Claims {
            sub: self.tenant_id().to_string(),
            server_url: format!("http://{grpc_address}"),
            grpc_broadcast_address: grpc_address.to_owned(),
            iss: "acf-engine".to_owned(),
            aud: "acf-engine".to_owned(),
            iat: now,
            exp: now + TOKEN_LIFETIME_SECS,
            token_id: Uuid::new_v4().to_string(),
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{header}.{body}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies signature, expiry and tenant; returns the claims.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, body, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims.exp > now_secs() && claims.sub == self.tenant_id().to_string()).then_some(claims)
    }

    /// Checks an `authorization` header value (`bearer <token>`, scheme case-insensitive).
    pub(crate) fn check_header(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.verify(token.trim()).is_some()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_and_carries_claims() {
        let keys = TokenKeys::new(b"secret".to_vec());
        let token = keys.mint("127.0.0.1:7070");
        assert!(
            token.starts_with("ey"),
            "python requires a JWT starting with ey"
        );
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(claims.grpc_broadcast_address, "127.0.0.1:7070");
        assert_eq!(claims.server_url, "http://127.0.0.1:7070");
        assert_eq!(claims.sub, keys.tenant_id().to_string());
        assert!(keys.check_header(Some(&format!("bearer {token}"))));
        assert!(keys.check_header(Some(&format!("Bearer {token}"))));
    }

    #[test]
    fn forged_or_missing_tokens_are_rejected() {
        let keys = TokenKeys::new(b"secret".to_vec());
        let other = TokenKeys::new(b"other".to_vec());
        let token = other.mint("127.0.0.1:1");
        assert!(keys.verify(&token).is_none());
        assert!(!keys.check_header(None));
        assert!(!keys.check_header(Some("bearer")));
        assert!(!keys.check_header(Some("basic abc")));
        let good = keys.mint("127.0.0.1:1");
        let mut tampered = good.clone();
        tampered.insert(good.find('.').unwrap() + 3, 'x');
        assert!(keys.verify(&tampered).is_none());
    }

    #[test]
    fn same_secret_same_tenant() {
        assert_eq!(
            TokenKeys::new(b"a".to_vec()).tenant_id(),
            TokenKeys::new(b"a".to_vec()).tenant_id()
        );
        assert_ne!(
            TokenKeys::new(b"a".to_vec()).tenant_id(),
            TokenKeys::new(b"b".to_vec()).tenant_id()
        );
    }
}
