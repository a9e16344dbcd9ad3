//! A software WebAuthn authenticator for tests: it answers the options a
//! relying party sends (`{"publicKey": …}` JSON) with the credential JSON a
//! browser would send back, signing with a P-256 key (ES256), attestation
//! `none`, user present and verified. It writes the little CBOR it needs
//! itself. Shared by the domain's unit tests and the end-to-end tests
//! (included by path), so it only uses `p256`, `sha2`, `base64` and
//! `serde_json`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One authenticator holding one credential.
pub struct Authenticator {
    key: SigningKey,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The user handle stored at registration (returned with assertions).
    pub user_handle: Option<Vec<u8>>,
    /// The signature counter: each assertion adds one and signs it.
    pub counter: u32,
    /// The relying party id the credential is scoped to.
    pub rp_id: String,
    /// The origin the "browser" reports.
    pub origin: String,
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url")
}

/// A CBOR head: major type and argument.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 0x100 {
        out.extend([m | 24, n as u8]);
    } else if n < 0x1_0000 {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    }
}

fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, 0, v as u64);
    } else {
        head(out, 1, (-1 - v) as u64);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

fn text(out: &mut Vec<u8>, t: &str) {
    head(out, 3, t.len() as u64);
    out.extend_from_slice(t.as_bytes());
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl Authenticator {
    /// An authenticator whose key and credential id derive from `seed`.
    pub fn new(seed: u8, rp_id: &str, origin: &str) -> Self {
        let mut secret = [0x42u8; 32];
        secret[0] = seed.max(1);
        Self {
            key: SigningKey::from_slice(&secret).expect("a P-256 key"),
            credential_id: sha256(&[b"credential".as_slice(), &[seed]].concat())[..20].to_vec(),
            user_handle: None,
            counter: 0,
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let sec1 = point.as_bytes();
        let (x, y) = (&sec1[1..33], &sec1[33..65]);
        let mut out = Vec::new();
        head(&mut out, 5, 5);
        int(&mut out, 1);
        int(&mut out, 2); // kty: EC2
        int(&mut out, 3);
        int(&mut out, -7); // alg: ES256
        int(&mut out, -1);
        int(&mut out, 1); // crv: P-256
        int(&mut out, -2);
        bytes(&mut out, x);
        int(&mut out, -3);
        bytes(&mut out, y);
        out
    }

    /// Answers `navigator.credentials.create()` options: the
    /// `RegisterPublicKeyCredential` JSON. Keeps the user handle.
    pub fn register(&mut self, options: &Value) -> Value {
        let user = &options["publicKey"]["user"]["id"];
        self.user_handle = Some(unb64(user.as_str().expect("a user id")));
        let client_data = self.client_data("webauthn.create", options);
        let mut auth_data = sha256(self.rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04 | 0x40); // user present, verified, attested data
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(&mut attestation, 5, 3);
        text(&mut attestation, "fmt");
        text(&mut attestation, "none");
        text(&mut attestation, "attStmt");
        head(&mut attestation, 5, 0);
        text(&mut attestation, "authData");
        bytes(&mut attestation, &auth_data);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
            },
            "extensions": {},
        })
    }

    /// Answers `navigator.credentials.get()` options with the next counter:
    /// the `PublicKeyCredential` JSON, with the user handle.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let handle = self.user_handle.clone();
        self.assert_with(options, self.counter, handle.as_deref())
    }

    /// An assertion with this counter and user handle (for the refusals).
    pub fn assert_with(&self, options: &Value, counter: u32, user_handle: Option<&[u8]>) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        let mut auth_data = sha256(self.rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04);
        auth_data.extend(counter.to_be_bytes());
        let signed = [auth_data.as_slice(), &sha256(&client_data)].concat();
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": user_handle.map(b64),
            },
            "extensions": {},
        })
    }
}
