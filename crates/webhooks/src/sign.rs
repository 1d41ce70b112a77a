//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the signed content is
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, the MAC is HMAC-SHA256 keyed with the base64-decoded part of the
//! `whsec_...` secret, and `webhook-signature` lists one `v1,<base64 MAC>` per secret, separated by spaces (two
//! while a rotated secret's overlap lasts).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A secret that is not `whsec_<base64>`.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret must be whsec_ followed by base64")]
pub struct BadSecret;

/// The HMAC key of a `whsec_...` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(raw).map_err(|_| BadSecret)
}

/// `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>` for one secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret_key(secret)?);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    Ok(format!("v1,{}", STANDARD.encode(ctx.sign().as_ref())))
}

/// The `webhook-signature` header: one signature per secret, space-separated, current secret first.
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let sigs = secrets
        .iter()
        .map(|s| signature(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sigs.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, ts, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn one_signature_per_secret() {
        let a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
        let b = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();
        let h = signature_header(&[a.clone(), b.clone()], "id", 1, b"{}").unwrap();
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&a, "id", 1, b"{}").unwrap());
        assert_eq!(parts[1], signature(&b, "id", 1, b"{}").unwrap());
        assert!(secret_key("whsec_not base64!").is_err());
    }
}
