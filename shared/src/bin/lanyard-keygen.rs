//! Prints a new signing key as a private JWK, for the `signing_key`,
//! `signing_key_next` (ES256, the default), `signing_key_eddsa` (`eddsa`) or
//! `signing_key_rs256` (`rs256`, a 2048-bit RSA key) Spin variable:
//!
//! ```sh
//! export SPIN_VARIABLE_SIGNING_KEY="$(cargo run -q -p lanyard --bin lanyard-keygen)"
//! export SPIN_VARIABLE_SIGNING_KEY_EDDSA="$(cargo run -q -p lanyard --bin lanyard-keygen -- eddsa)"
//! export SPIN_VARIABLE_SIGNING_KEY_RS256="$(cargo run -q -p lanyard --bin lanyard-keygen -- rs256)"
//! ```

use lanyard::oidc::keys::{Alg, generate};

fn main() -> anyhow::Result<()> {
    let alg = match std::env::args().nth(1).as_deref() {
        None | Some("es256") | Some("ES256") => Alg::Es256,
        Some("eddsa") | Some("EdDSA") => Alg::EdDsa,
        Some("rs256") | Some("RS256") => Alg::Rs256,
        Some(other) => anyhow::bail!("unknown algorithm {other:?}: use es256, eddsa or rs256"),
    };
    let (private_jwk, _public) = generate(alg)?;
    println!("{private_jwk}");
    Ok(())
}
