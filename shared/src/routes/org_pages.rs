//! The organisation pages under `/orgs`.

use crate::Env;
use crate::accounts::Auth;
use crate::error::{Error, Result};
use crate::web::{Request, Response};

/// Routes the pages.
pub fn route(_env: &Env, _auth: &Auth, _req: &Request) -> Result<Response> {
    Err(Error::NotFound)
}
