//! AWS Signature Version 4 for DynamoDB requests (the client side).
//!
//! Written here because the benchmark must sign every request cheaply: the
//! signing key is derived once per day and reused.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Credentials and scope used to sign.
#[derive(Clone, Debug)]
pub struct Signer {
    access_key_id: String,
    region: String,
    host: String,
    date: String,
    signing_key: Vec<u8>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// The current UTC time as `YYYYMMDDTHHMMSSZ`.
pub fn amz_date_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl Signer {
    /// A signer for `host` (as sent in the Host header) valid for the day of `amz_date`.
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
        host: &str,
        amz_date: &str,
    ) -> Signer {
        let date = amz_date.get(..8).unwrap_or("19700101").to_string();
        let k_date = hmac(
            format!("AWS4{secret_access_key}").as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, b"dynamodb");
        let signing_key = hmac(&k_service, b"aws4_request");
        Signer {
            access_key_id: access_key_id.to_string(),
            region: region.to_string(),
            host: host.to_string(),
            date,
            signing_key,
        }
    }

    /// The `Authorization` header for a POST / of `body` with `target`, sent at `amz_date`.
    pub fn authorization(&self, amz_date: &str, target: &str, body: &[u8]) -> String {
        let payload_hash = hex(&Sha256::digest(body));
        let canonical = format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n{payload_hash}",
            self.host
        );
        let scope = format!("{}/{}/dynamodb/aws4_request", self.date, self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let signature = hex(&hmac(&self.signing_key, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}",
            self.access_key_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_follow_the_documented_derivation() {
        // AWS's published example of the derived signing key (IAM docs, "Examples of
        // how to derive a signing key for Signature Version 4").
        let signer = Signer::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "host",
            "20150830T123600Z",
        );
        let k_date = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
        let k_region = hmac(&k_date, b"us-east-1");
        let k_service = hmac(&k_region, b"iam");
        let iam_key = hmac(&k_service, b"aws4_request");
        assert_eq!(
            hex(&iam_key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(signer.signing_key.len(), 32);
        assert!(
            signer
                .authorization("20150830T123600Z", "DynamoDB_20120810.GetItem", b"{}")
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request")
        );
        assert_eq!(amz_date_now().len(), 16);
    }
}
