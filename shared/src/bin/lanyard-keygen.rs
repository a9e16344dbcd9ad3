//! Prints a new ES256 signing key as a private JWK, for the `signing_key`
//! (or `signing_key_next`) Spin variable:
//!
//! ```sh
//! export SPIN_VARIABLE_SIGNING_KEY="$(cargo run -q -p lanyard --bin lanyard-keygen)"
//! ```

fn main() -> anyhow::Result<()> {
    let (private_jwk, _public) = lanyard::oidc::keys::generate()?;
    println!("{private_jwk}");
    Ok(())
}
