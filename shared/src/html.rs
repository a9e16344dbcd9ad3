//! Server-rendered pages. Templates live in `static/templates/`, are compiled
//! into the component by askama, and escape every value they print.

use askama::Template;
use http::StatusCode;

use crate::web::{self, Response};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    detail: &'a str,
    status: u16,
}

/// The page shown to a person when something went wrong.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = ErrorPage {
        title,
        detail,
        status: status.as_u16(),
    };
    match page.render() {
        Ok(body) => web::html(status, body),
        Err(_) => web::response(
            status,
            "text/plain; charset=utf-8",
            detail.as_bytes().to_vec(),
        ),
    }
}
