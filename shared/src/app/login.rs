//! The login component: pages and static assets. Sign-up, login and sessions
//! arrive with the identity issue; until then it serves the assets and a
//! friendly 404 page for every other path.

use super::{get_only, not_found};
use crate::Env;
use crate::assets;
use crate::config::Config;
use crate::error::Style;
use crate::web::{Request, Response};

/// Routes a request to the login component.
pub fn handle(env: &Env, req: Request) -> Response {
    if req.uri().path().starts_with(assets::PREFIX) {
        let served = get_only(&req)
            .and_then(|()| Config::load(env.vars))
            .map(|config| assets::serve(&req, &config));
        return match served {
            Ok(Some(res)) => res,
            Ok(None) => not_found(&req),
            Err(e) => e.into_response(Style::Page),
        };
    }
    not_found(&req)
}
