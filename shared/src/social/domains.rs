//! Organisations' email domains (docs/social.md, "Organisation
//! connections"): an admin claims a domain, publishes the TXT record
//! `lanyard-verification=<token>` at it, and has Lanyard check it through a
//! DNS-over-HTTPS JSON endpoint (`dns_over_https_url`, default
//! [`DEFAULT_DOH_URL`]). Only a verified claim sends people with an address
//! at the domain to the organisation's connection (home-realm discovery,
//! [`super::org_sso`]); one organisation at most can prove a domain.

use http::header;
use serde::Serialize;
use serde_json::{Value as Json, json};
use url::Url;

use crate::Env;
use crate::config;
use crate::crypto;
use crate::error::{Error, Result};
use crate::orgs::{self, Access, Level};
use crate::store::domain_claims::{self, Claim};
use crate::store::{SqlStore, connections};

/// The DNS-over-HTTPS JSON endpoint used when `dns_over_https_url` is not set.
pub const DEFAULT_DOH_URL: &str = "https://cloudflare-dns.com/dns-query";

/// What the TXT record holds before the claim's token.
pub const TXT_PREFIX: &str = "lanyard-verification=";

/// The longest DNS-over-HTTPS answer read.
const MAX_DOH_BYTES: usize = 64 * 1024;

/// Public mail providers: anyone can have an address there, so nobody may
/// claim them.
const PUBLIC_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "zoho.com",
    "qq.com",
    "163.com",
];

/// A claim as the API and the page show it, with the record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// The domain.
    pub domain: String,
    /// Whether it is proven.
    pub verified: bool,
    /// When it was proven.
    pub verified_at: Option<i64>,
    /// The connection its people are sent to (`None`: the organisation's
    /// first enabled one).
    pub connection_id: Option<String>,
    /// When it was claimed.
    pub created_at: i64,
    /// The TXT record to publish: `{type, name, value}`.
    pub record: Json,
}

impl View {
    fn of(c: Claim) -> View {
        View {
            record: json!({
                "type": "TXT",
                "name": c.domain,
                "value": format!("{TXT_PREFIX}{}", c.token),
            }),
            verified: c.verified_at.is_some(),
            verified_at: c.verified_at,
            connection_id: c.connection_id,
            created_at: c.created_at,
            domain: c.domain,
        }
    }
}

/// A domain as claimed: trimmed, lower-case, without a final dot; a DNS
/// name of at least two labels of `a-z 0-9 -` (not starting or ending with
/// `-`), at most 253 characters, and not a public mail provider's.
pub fn check_domain(raw: &str) -> Result<String> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(Error::bad_request(
            "Give a domain name such as example.com: letters, digits and hyphens, in labels separated by dots.",
        ));
    }
    if PUBLIC_MAIL.contains(&domain.as_str()) {
        return Err(Error::bad_request(format!(
            "{domain} is a public mail provider: anyone can have an address there, so it cannot be claimed."
        )));
    }
    Ok(domain)
}

/// The organisation's claims (admins).
pub fn list(db: &dyn SqlStore, access: &Access) -> Result<Vec<View>> {
    access.require(Level::Admin)?;
    Ok(domain_claims::for_org(db, &access.org.id)?
        .into_iter()
        .map(View::of)
        .collect())
}

/// Claims a domain for the organisation (admins): a fresh token, and the
/// record to publish. `connection_id`, when given, must be one of the
/// organisation's connections.
pub fn claim(
    db: &dyn SqlStore,
    access: &Access,
    domain: &str,
    connection_id: Option<&str>,
    now: i64,
) -> Result<View> {
    access.require_to_change(Level::Admin)?;
    let domain = check_domain(domain)?;
    let connection_id = connection_id.map(str::trim).filter(|c| !c.is_empty());
    if let Some(id) = connection_id {
        let own = connections::get(db, id)?
            .is_some_and(|c| c.org_id.as_deref() == Some(access.org.id.as_str()));
        if !own {
            return Err(Error::bad_request(format!(
                "{} has no connection `{id}`.",
                access.org.name
            )));
        }
    }
    let c = Claim {
        domain: domain.clone(),
        org_id: access.org.id.clone(),
        connection_id: connection_id.map(str::to_owned),
        token: crypto::random_token()?,
        verified_at: None,
        created_at: now,
    };
    if !domain_claims::insert(db, &c)? {
        return Err(Error::Conflict(format!(
            "{} has claimed {domain} already.",
            access.org.name
        )));
    }
    orgs::record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "domain.claimed",
        Some(&domain),
        None,
        Some(&json!({ "domain": domain, "connection_id": c.connection_id })),
    )?;
    Ok(View::of(c))
}

/// Removes the organisation's claim on a domain (admins).
pub fn remove(db: &dyn SqlStore, access: &Access, domain: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    let domain = domain.trim().to_ascii_lowercase();
    let gone = domain_claims::delete(db, &domain, &access.org.id)?.ok_or(Error::NotFound)?;
    orgs::record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "domain.removed",
        Some(&domain),
        Some(&json!({ "domain": domain, "verified": gone.verified_at.is_some() })),
        None,
    )
}

/// Checks the domain's TXT record and marks the claim verified (admins).
/// Another organisation's verified claim on the domain is a conflict (409);
/// a record that is not there yet, a 400 that says what to publish.
pub fn verify(env: &Env, access: &Access, domain: &str) -> Result<View> {
    access.require_to_change(Level::Admin)?;
    let db = env.sql;
    let domain = domain.trim().to_ascii_lowercase();
    let claim = domain_claims::get(db, &domain, &access.org.id)?.ok_or(Error::NotFound)?;
    if claim.verified_at.is_some() {
        return Ok(View::of(claim));
    }
    let taken = || {
        Error::Conflict(format!(
            "Another organisation has proven {domain} already. If it is yours, ask the operator."
        ))
    };
    if domain_claims::verified(db, &domain)?.is_some() {
        return Err(taken());
    }
    let expected = format!("{TXT_PREFIX}{}", claim.token);
    if !txt_records(env, &domain)?
        .iter()
        .any(|r| r.trim() == expected)
    {
        return Err(Error::bad_request(format!(
            "The TXT record {expected} is not published at {domain} yet. Publish it, wait for DNS to update (it can take a while), and try again."
        )));
    }
    let Some(done) = domain_claims::verify(db, &domain, &access.org.id, env.now)? else {
        // Gone meanwhile, verified meanwhile by a racing request of ours,
        // or proven by another organisation first.
        return match domain_claims::get(db, &domain, &access.org.id)? {
            None => Err(Error::NotFound),
            Some(c) if c.verified_at.is_some() => Ok(View::of(c)),
            Some(_) => Err(taken()),
        };
    };
    orgs::record(
        db,
        &access.org.id,
        env.now,
        access.actor(),
        "domain.verified",
        Some(&domain),
        None,
        Some(&json!({ "domain": domain, "verified_at": env.now })),
    )?;
    Ok(View::of(done))
}

/// The DNS-over-HTTPS endpoint: `dns_over_https_url`, or [`DEFAULT_DOH_URL`].
fn doh_url(env: &Env) -> Result<Url> {
    let raw = config::optional(env.vars, "dns_over_https_url")?
        .unwrap_or_else(|| DEFAULT_DOH_URL.to_owned());
    let url = Url::parse(&raw)
        .map_err(|e| Error::config("dns_over_https_url", format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::config(
            "dns_over_https_url",
            "use the https URL of a DNS-over-HTTPS JSON endpoint",
        ));
    }
    Ok(url)
}

/// The TXT records at `domain`, each one's strings joined, through the
/// DNS-over-HTTPS JSON API (`?name=…&type=TXT`, `Accept:
/// application/dns-json`). A domain without any is an empty list; an
/// endpoint that is refused, down or answering garbage, a clear error.
pub fn txt_records(env: &Env, domain: &str) -> Result<Vec<String>> {
    let mut url = doh_url(env)?;
    url.query_pairs_mut()
        .append_pair("name", domain)
        .append_pair("type", "TXT");
    let origin = url.origin().ascii_serialization();
    let down = |why: String| {
        Error::Unavailable(format!(
            "The DNS lookup of {domain} failed: the DNS-over-HTTPS endpoint {origin} {why}. Try again in a moment."
        ))
    };
    let req = http::Request::get(url.as_str())
        .header(header::ACCEPT, "application/dns-json")
        .body(Vec::new())
        .map_err(|e| Error::Internal(format!("DNS-over-HTTPS request: {e}")))?;
    let res = env.http.send(req).map_err(|e| match e {
        Error::OutboundDenied(o) => Error::Unavailable(format!(
            "This server may not contact {o}, the DNS-over-HTTPS endpoint that checks domains (dns_over_https_url). The operator must add it to the orgs component's allowed_outbound_hosts in spin.toml."
        )),
        Error::Unavailable(why) => down(format!("is not answering ({why})")),
        other => other,
    })?;
    if !res.status().is_success() {
        return Err(down(format!("answered {}", res.status().as_u16())));
    }
    if res.body().len() > MAX_DOH_BYTES {
        return Err(down("sent an answer that is too large".into()));
    }
    let Ok(Json::Object(answer)) = serde_json::from_slice::<Json>(res.body()) else {
        return Err(down("sent an answer that is not DNS JSON".into()));
    };
    match answer.get("Status").and_then(Json::as_i64) {
        Some(0) => {}
        // NXDOMAIN: no such name, so no record.
        Some(3) => return Ok(Vec::new()),
        Some(code) => return Err(down(format!("could not resolve it (DNS status {code})"))),
        None => return Err(down("sent an answer without a DNS status".into())),
    }
    let records = answer
        .get("Answer")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(records
        .iter()
        // Type 16 is TXT; a CNAME on the way (type 5) is not a record here.
        .filter(|r| r.get("type").and_then(Json::as_i64).is_none_or(|t| t == 16))
        .filter_map(|r| r.get("data").and_then(Json::as_str))
        .map(txt_data)
        .collect())
}

/// The text of a TXT record's `data`: its quoted strings (`"a" "b"`, with
/// `\"`, `\\` and `\DDD` escapes) joined, as a long record is split into
/// strings of 255 bytes; unquoted data as it is.
pub fn txt_data(data: &str) -> String {
    let data = data.trim();
    if !data.starts_with('"') {
        return data.to_owned();
    }
    let mut out: Vec<u8> = Vec::new();
    let mut bytes = data.bytes().peekable();
    let mut quoted = false;
    while let Some(b) = bytes.next() {
        match (quoted, b) {
            (false, b'"') => quoted = true,
            (false, _) => {}
            (true, b'"') => quoted = false,
            (true, b'\\') => {
                let mut digits = Vec::new();
                while digits.len() < 3 {
                    match bytes.peek() {
                        Some(d) if d.is_ascii_digit() => {
                            digits.push(*d);
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                if digits.is_empty() {
                    if let Some(next) = bytes.next() {
                        out.push(next);
                    }
                } else {
                    let n = digits
                        .iter()
                        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                    out.push(u8::try_from(n).unwrap_or(b'?'));
                }
            }
            (true, _) => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::identity::{self, Identity};
    use crate::mail::HttpClient;
    use crate::orgs::{Policy, create_own, open};
    use crate::store::memberships;
    use crate::testkit::{self, World};

    const NOW: i64 = 1_700_000_000;

    /// A DNS-over-HTTPS endpoint: answers `Ok((status, body))` or fails.
    struct Doh {
        answer: Result<(u16, String)>,
        asked: RefCell<Vec<String>>,
    }

    impl Doh {
        fn txt(records: &[&str]) -> Doh {
            let answer: Vec<Json> = records
                .iter()
                .map(|d| json!({"name": "acme.test", "type": 16, "TTL": 300, "data": d}))
                .collect();
            Doh::answering(200, &json!({"Status": 0, "Answer": answer}).to_string())
        }

        fn answering(status: u16, body: &str) -> Doh {
            Doh {
                answer: Ok((status, body.to_owned())),
                asked: RefCell::default(),
            }
        }

        fn failing(e: Error) -> Doh {
            Doh {
                answer: Err(e),
                asked: RefCell::default(),
            }
        }
    }

    impl HttpClient for Doh {
        fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
            assert_eq!(req.headers()[header::ACCEPT], "application/dns-json");
            self.asked.borrow_mut().push(req.uri().to_string());
            let (status, body) = self.answer.clone()?;
            Ok(http::Response::builder()
                .status(status)
                .body(body.into_bytes())
                .unwrap())
        }
    }

    fn env<'a>(w: &'a World, http: &'a Doh) -> Env<'a> {
        Env {
            kv: &w.kv,
            sql: &w.sql,
            vars: &w.vars,
            http,
            now: NOW,
            logout: &crate::oidc::signout::HandOver,
        }
    }

    fn verified(w: &World, email: &str) -> Identity {
        let who = testkit::person(&w.sql, email, NOW);
        identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
        identity::by_id(&w.sql, &who.id).unwrap().unwrap()
    }

    /// Ada owns `slug`; returns her access.
    fn org(w: &World, email: &str, slug: &str) -> Access {
        let ada = verified(w, email);
        create_own(&w.sql, Policy { self_service: true }, &ada, slug, slug, NOW).unwrap();
        open(&w.sql, slug, &ada).unwrap()
    }

    fn record_of(v: &View) -> String {
        v.record["value"].as_str().unwrap().to_owned()
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(check_domain(" Acme.Test. ").unwrap(), "acme.test");
        assert_eq!(
            check_domain("mail.eu.acme-corp.fi").unwrap(),
            "mail.eu.acme-corp.fi"
        );
        for bad in [
            "",
            "acme",
            "acme..test",
            "-acme.test",
            "acme-.test",
            "ac_me.test",
            "acme.123",
            "ädmé.test",
            "acme.test/x",
            "user@acme.test",
            &format!("{}.test", "a".repeat(64)),
        ] {
            assert!(check_domain(bad).is_err(), "{bad:?}");
        }
        for public in ["gmail.com", "Outlook.com", "yahoo.com", "icloud.com"] {
            let e = check_domain(public).unwrap_err();
            assert!(e.detail().contains("public mail provider"), "{e}");
        }
    }

    #[test]
    fn txt_data_joins_quoted_strings() {
        assert_eq!(
            txt_data("\"lanyard-verification=abc\""),
            "lanyard-verification=abc"
        );
        assert_eq!(
            txt_data("\"lanyard-verification=ab\" \"cd\""),
            "lanyard-verification=abcd"
        );
        assert_eq!(txt_data(r#""a\"b\\c\059d""#), "a\"b\\c;d");
        assert_eq!(txt_data("unquoted text"), "unquoted text");
    }

    #[test]
    fn a_claim_is_verified_by_its_txt_record() {
        let w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        let v = claim(&w.sql, &acme, "Acme.Test", None, NOW).unwrap();
        assert!(!v.verified);
        assert_eq!(v.record["type"], "TXT");
        assert_eq!(v.record["name"], "acme.test");
        let record = record_of(&v);
        assert!(record.starts_with("lanyard-verification=") && record.len() > 40);
        let again = claim(&w.sql, &acme, "acme.test", None, NOW).unwrap_err();
        assert!(matches!(again, Error::Conflict(_)), "{again}");

        // A wrong record, or none, is not proof.
        let wrong = Doh::txt(&["\"v=spf1 -all\"", "\"lanyard-verification=someone-else\""]);
        let e = verify(&env(&w, &wrong), &acme, "acme.test").unwrap_err();
        assert!(
            matches!(e, Error::BadRequest(_)) && e.detail().contains(&record),
            "{e}"
        );
        assert!(
            wrong.asked.borrow()[0]
                .starts_with("https://cloudflare-dns.com/dns-query?name=acme.test&type=TXT")
        );
        let nxdomain = Doh::answering(200, r#"{"Status": 3}"#);
        assert!(matches!(
            verify(&env(&w, &nxdomain), &acme, "acme.test"),
            Err(Error::BadRequest(_))
        ));
        assert!(!list(&w.sql, &acme).unwrap()[0].verified);

        // The right one, split into two strings as long records are.
        let (head, tail) = record.split_at(30);
        let split = format!("\"{head}\" \"{tail}\"");
        let right = Doh::txt(&["\"v=spf1 -all\"", &split]);
        let done = verify(&env(&w, &right), &acme, "acme.test").unwrap();
        assert!(done.verified && done.verified_at == Some(NOW));
        // Verified once; again is the same answer without a lookup.
        let idle = Doh::failing(Error::Unavailable("down".into()));
        assert!(
            verify(&env(&w, &idle), &acme, "acme.test")
                .unwrap()
                .verified
        );
        assert!(idle.asked.borrow().is_empty());

        let actions: Vec<String> = crate::orgs::audit(&w.sql, &acme, None, 50)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&"domain.claimed".to_owned()));
        assert!(actions.contains(&"domain.verified".to_owned()));

        remove(&w.sql, &acme, "acme.test", NOW).unwrap();
        assert!(list(&w.sql, &acme).unwrap().is_empty());
        assert!(matches!(
            remove(&w.sql, &acme, "acme.test", NOW),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn a_second_organisation_cannot_prove_a_proven_domain() {
        let w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        let evil = org(&w, "eve@evil.test", "evil");
        let mine = claim(&w.sql, &acme, "acme.test", None, NOW).unwrap();
        let theirs = claim(&w.sql, &evil, "acme.test", None, NOW).unwrap();
        assert_ne!(record_of(&mine), record_of(&theirs));
        let both = Doh::txt(&[
            &format!("\"{}\"", record_of(&mine)),
            &format!("\"{}\"", record_of(&theirs)),
        ]);
        verify(&env(&w, &both), &acme, "acme.test").unwrap();
        let e = verify(&env(&w, &both), &evil, "acme.test").unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert_eq!(e.status(), http::StatusCode::CONFLICT);
        // Even when the first check passed and the race is lost in the
        // statement itself.
        assert!(
            domain_claims::verify(&w.sql, "acme.test", &evil.org.id, NOW)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_endpoint_failing_is_a_clear_error() {
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        claim(&w.sql, &acme, "acme.test", None, NOW).unwrap();
        let cases = [
            (
                Doh::failing(Error::OutboundDenied("https://cloudflare-dns.com".into())),
                "allowed_outbound_hosts",
            ),
            (
                Doh::failing(Error::Unavailable("timed out".into())),
                "is not answering (timed out)",
            ),
            (Doh::answering(502, "bad gateway"), "answered 502"),
            (Doh::answering(200, "<html>"), "not DNS JSON"),
            (Doh::answering(200, r#"{"Status": 2}"#), "DNS status 2"),
        ];
        for (doh, words) in cases {
            let e = verify(&env(&w, &doh), &acme, "acme.test").unwrap_err();
            assert!(matches!(e, Error::Unavailable(_)), "{e}");
            assert!(e.detail().contains(words), "{e}");
        }
        w.set("dns_over_https_url", Some("https://dns.google/resolve"));
        let doh = Doh::txt(&[]);
        assert!(verify(&env(&w, &doh), &acme, "acme.test").is_err());
        assert!(
            doh.asked.borrow()[0].starts_with("https://dns.google/resolve?name=acme.test&type=TXT")
        );
        w.set("dns_over_https_url", Some("not a url"));
        assert!(matches!(
            verify(&env(&w, &doh), &acme, "acme.test"),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn only_admins_manage_domains_and_other_organisations_see_nothing() {
        let w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        let bob = verified(&w, "bob@acme.test");
        memberships::insert(&w.sql, &acme.org.id, &bob.id, "member", None, NOW).unwrap();
        let as_bob = open(&w.sql, "acme", &bob).unwrap();
        assert!(matches!(list(&w.sql, &as_bob), Err(Error::Forbidden(_))));
        assert!(matches!(
            claim(&w.sql, &as_bob, "acme.test", None, NOW),
            Err(Error::Forbidden(_))
        ));
        claim(&w.sql, &acme, "acme.test", None, NOW).unwrap();
        let doh = Doh::txt(&[]);
        assert!(matches!(
            verify(&env(&w, &doh), &as_bob, "acme.test"),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            remove(&w.sql, &as_bob, "acme.test", NOW),
            Err(Error::Forbidden(_))
        ));
        // Another organisation's admin cannot touch Acme's claim.
        let other = org(&w, "oz@other.test", "other");
        assert!(matches!(
            verify(&env(&w, &doh), &other, "acme.test"),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            remove(&w.sql, &other, "acme.test", NOW),
            Err(Error::NotFound)
        ));
        let oz = identity::by_id(&w.sql, other.actor()).unwrap().unwrap();
        assert!(matches!(open(&w.sql, "acme", &oz), Err(Error::NotFound)));
        // A connection of another organisation cannot be named.
        assert!(matches!(
            claim(&w.sql, &acme, "eu.acme.test", Some("org-other-x"), NOW),
            Err(Error::BadRequest(_))
        ));
    }
}
