//! Prints a new signing key as a private JWK, for the `signing_key`,
//! `signing_key_next` (ES256, the default), `signing_key_eddsa` (`eddsa`) or
//! `signing_key_rs256` (`rs256`, a 2048-bit RSA key) Spin variable:
//!
//! ```sh
//! export SPIN_VARIABLE_SIGNING_KEY="$(cargo run -q -p lanyard --bin lanyard-keygen)"
//! export SPIN_VARIABLE_SIGNING_KEY_EDDSA="$(cargo run -q -p lanyard --bin lanyard-keygen -- eddsa)"
//! export SPIN_VARIABLE_SIGNING_KEY_RS256="$(cargo run -q -p lanyard --bin lanyard-keygen -- rs256)"
//! ```
//!
//! Every key it prints has been checked: its public half is the one its
//! private half derives. `check` reads a private ES256 or EdDSA JWK made
//! elsewhere from standard input and checks the same, before it goes into a
//! variable (Lanyard signs with the key's `d` and `x` as given and does not
//! derive one from the other per request):
//!
//! ```sh
//! cargo run -q -p lanyard --bin lanyard-keygen -- check < key.jwk
//! ```

use std::io::Read;

use lanyard::oidc::keys::{Alg, check_private_jwk, generate};

fn main() -> anyhow::Result<()> {
    let alg = match std::env::args().nth(1).as_deref() {
        Some("check") => {
            let mut jwk = String::new();
            std::io::stdin().read_to_string(&mut jwk)?;
            let alg = check_private_jwk(jwk.trim()).map_err(|e| match e {
                lanyard::error::Error::Internal(why) => {
                    anyhow::anyhow!("not a usable signing key: {why}")
                }
                other => anyhow::anyhow!("not a usable signing key: {other}"),
            })?;
            println!(
                "ok: the {} key's public half is the one its private half derives",
                alg.name()
            );
            return Ok(());
        }
        None | Some("es256") | Some("ES256") => Alg::Es256,
        Some("eddsa") | Some("EdDSA") => Alg::EdDsa,
        Some("rs256") | Some("RS256") => Alg::Rs256,
        Some(other) => {
            anyhow::bail!("unknown algorithm {other:?}: use es256, eddsa, rs256 or check")
        }
    };
    let (private_jwk, _public) = generate(alg)?;
    println!("{private_jwk}");
    Ok(())
}
