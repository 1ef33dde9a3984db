//! dishpatch's own access tokens: short-lived JWTs signed with keys named by `kid`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{AuthSettings, Secret, SigningKey};

/// `iss` and `aud` of dishpatch's own tokens.
pub const ISSUER: &str = "dishpatch";

/// Claims of a dishpatch access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Space-separated scopes that narrow the user's rights; absent for full sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Why a token was refused. Never shown in detail to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// Signs and verifies access tokens.
pub struct AccessTokens {
    signing_kid: String,
    signing_secret: Secret,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("signing_kid", &self.signing_kid)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Keys from `settings`, or one random key (with a warning) when none are configured.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = settings.signing_keys.clone();
        if keys.is_empty() {
            tracing::warn!(
                "no auth.signing_keys configured (and no SQLite file to keep a key beside): using \
                 a random key, so tokens end with this process and other replicas refuse them; \
                 configure auth.signing_keys, the same on every replica"
            );
            keys.push(SigningKey {
                kid: "ephemeral".into(),
                secret: Secret::new(super::secrets::random_secret()),
            });
        }
        for key in &keys {
            anyhow::ensure!(
                key.secret.expose().len() >= 32,
                "signing key `{}` must be at least 32 bytes long",
                key.kid
            );
        }
        let signing = &keys[0];
        Ok(Self {
            signing_kid: signing.kid.clone(),
            signing_secret: signing.secret.clone(),
            encoding: EncodingKey::from_secret(signing.secret.expose().as_bytes()),
            decoding: keys
                .iter()
                .map(|k| {
                    (
                        k.kid.clone(),
                        DecodingKey::from_secret(k.secret.expose().as_bytes()),
                    )
                })
                .collect(),
            ttl: chrono::Duration::seconds(
                i64::try_from(settings.access_token_ttl_secs).unwrap_or(i64::MAX / 2),
            ),
        })
    }

    /// The current signing secret, from which other server keys (the login cookie's) derive.
    pub fn signing_secret(&self) -> &[u8] {
        self.signing_secret.expose().as_bytes()
    }

    /// Lifetime of tokens issued by `issue`.
    pub fn ttl(&self) -> chrono::Duration {
        self.ttl
    }

    /// A token for `user_id`, limited to `scopes` when given, valid for `ttl` (default TTL
    /// when `None`).
    pub fn issue(
        &self,
        user_id: i64,
        scopes: Option<&[String]>,
        ttl: Option<chrono::Duration>,
        now: DateTime<Utc>,
    ) -> String {
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp: (now + ttl.unwrap_or(self.ttl)).timestamp(),
            scope: scopes.map(|s| s.join(" ")),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// Whether `token` claims to be one of ours (it may still be invalid).
    pub fn is_own(token: &str) -> bool {
        jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(token)
            .is_ok_and(|claims| claims["iss"] == ISSUER)
    }

    /// The claims of a valid, unexpired token signed by one of our keys.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(keys: &[(&str, &str)]) -> AuthSettings {
        AuthSettings {
            signing_keys: keys
                .iter()
                .map(|(kid, secret)| SigningKey {
                    kid: (*kid).into(),
                    secret: Secret::new(*secret),
                })
                .collect(),
            ..AuthSettings::default()
        }
    }

    const OLD: &str = "an-old-secret-that-is-long-enough-32";
    const NEW: &str = "a-new-secret-that-is-long-enough-too";

    #[test]
    fn tokens_verify_until_they_expire_and_not_after_tampering() {
        let tokens = AccessTokens::from_settings(&settings(&[("k1", OLD)])).unwrap();
        let token = tokens.issue(7, None, None, Utc::now());
        assert!(AccessTokens::is_own(&token));
        assert_eq!(tokens.verify(&token).unwrap().sub, "7");
        let expired = tokens.issue(7, None, Some(chrono::Duration::seconds(-5)), Utc::now());
        assert_eq!(tokens.verify(&expired).unwrap_err(), TokenError::Expired);
        let mut tampered = token.clone();
        tampered.insert(token.len() - 3, 'x');
        assert_eq!(tokens.verify(&tampered).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn rotated_keys_keep_old_tokens_valid_and_drop_removed_keys() {
        let old = AccessTokens::from_settings(&settings(&[("k1", OLD)])).unwrap();
        let token = old.issue(1, None, None, Utc::now());
        let rotated = AccessTokens::from_settings(&settings(&[("k2", NEW), ("k1", OLD)])).unwrap();
        assert!(rotated.verify(&token).is_ok());
        assert!(
            rotated
                .verify(&rotated.issue(1, None, None, Utc::now()))
                .is_ok()
        );
        let retired = AccessTokens::from_settings(&settings(&[("k2", NEW)])).unwrap();
        assert_eq!(retired.verify(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(AccessTokens::from_settings(&settings(&[("k", "short")])).is_err());
    }
}
