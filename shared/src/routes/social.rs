//! The social component. Its routes arrive with its own issue; until then every
//! path answers a real 404 (a page, or problem+json under `/api/`).

use super::not_found;
use crate::Env;
use crate::web::{Request, Response};

/// Routes a request to the social component.
pub fn handle(_env: &Env, req: Request) -> Response {
    not_found(&req)
}
