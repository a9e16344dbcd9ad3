//! What every page of a request shares: the product name and the CSRF
//! token, with the cookie to set when the browser had none. Each page module
//! adds its own rendering methods to [`Page`].

use http::{HeaderValue, header};

use crate::accounts::Auth;
use crate::csrf;
use crate::error::Result;
use crate::web::{Params, Request, Response};

/// A request's page context.
pub struct Page<'a> {
    /// The product name, for the title and header.
    pub product: &'a str,
    /// The CSRF token to put in forms.
    pub csrf: String,
    /// The CSRF cookie to set, when the browser had none.
    pub set_csrf: Option<HeaderValue>,
    /// Whether cookies are `Secure`.
    pub secure: bool,
}

impl<'a> Page<'a> {
    /// The context of this request.
    pub fn new(auth: &'a Auth, req: &Request) -> Result<Self> {
        let (csrf, set_csrf) = csrf::token(req.headers(), auth.policy()?.secure)?;
        Ok(Self {
            product: auth.config.product_name()?,
            csrf,
            set_csrf,
            secure: auth.policy()?.secure,
        })
    }

    /// Adds the CSRF cookie to a response, when one is to be set.
    pub fn finish(&self, mut res: Response) -> Response {
        if let Some(c) = &self.set_csrf {
            res.headers_mut().append(header::SET_COOKIE, c.clone());
        }
        res
    }

    /// Parses a POSTed form and checks its CSRF token.
    pub fn form(&self, req: &Request) -> Result<Params> {
        let form = Params::from_form(req)?;
        csrf::check(req.headers(), &form, self.secure)?;
        Ok(form)
    }
}
